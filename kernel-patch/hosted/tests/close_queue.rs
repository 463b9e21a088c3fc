//! Close as Plan 9 does it: `close` clunks and waits; exit, an image letting go and an
//! unmounted mount point queue their clunks, and a server that never answers a clunk
//! wedges no caller.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use hosted::inject::{Direction, FlushPolicy, Hold};
use hosted::mnt::ninep::mtype;
use hosted::mnt::OpenMode;
use hosted::ForkFlags;

#[test]
fn close_waits_for_the_rclunk() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/f", b"data");
    let fd = kernel.open(init, "/n/ram/f", OpenMode::READ).unwrap();
    let mark = server.wire.mark();
    kernel.close(init, fd).unwrap();
    let events = server.wire.events_since(mark);
    let tclunk = events
        .iter()
        .find(|e| e.mtype == mtype::TCLUNK)
        .expect("a Tclunk");
    assert!(
        events.iter().any(|e| e.mtype == mtype::RCLUNK
            && e.tag == tclunk.tag
            && e.direction == Direction::ToKernel),
        "close returned before the Rclunk: {events:?}"
    );
    assert_eq!(kernel.statistics().closes_queued, 0);
    check(&kernel);
}

#[test]
fn a_shared_descriptor_is_clunked_by_its_last_holder() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/f", b"data");
    let fd = kernel.open(init, "/n/ram/f", OpenMode::READ).unwrap();
    let child = kernel.fork(init, ForkFlags::default()).unwrap();
    let mark = server.wire.mark();
    kernel.close(init, fd).unwrap();
    assert!(!server
        .wire
        .events_since(mark)
        .iter()
        .any(|e| e.mtype == mtype::TCLUNK));
    let mut buf = [0u8; 4];
    assert_eq!(kernel.pread(child, fd, &mut buf, 0).unwrap(), 4);
    kernel.exit(child, "").unwrap();
    assert!(kernel.wait_closes(DEADLINE));
    assert!(server
        .wire
        .events_since(mark)
        .iter()
        .any(|e| e.mtype == mtype::RCLUNK));
    let stats = kernel.statistics();
    assert_eq!(stats.closes_queued, 1);
    check(&kernel);
}

#[test]
fn exit_never_waits_for_a_server_that_ignores_clunks() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/f", b"data");
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.open(pid, "/n/ram/f", OpenMode::READ).unwrap();
    server.wire.hold(Hold {
        mtype: mtype::TCLUNK,
        count: 1,
        flush: FlushPolicy::Ignore,
    });
    let (done, exited) = mpsc::channel();
    {
        let kernel = kernel.clone();
        std::thread::spawn(move || done.send(kernel.exit(pid, "")));
    }
    exited
        .recv_timeout(DEADLINE)
        .expect("exit waited for the server")
        .unwrap();
    assert!(server.wire.wait_held(1, DEADLINE));
    assert_eq!(kernel.statistics().closes_pending, 1);
    assert!(!kernel.wait_closes(Duration::from_millis(50)));
    // Other requests on the mount still go through.
    assert_eq!(kernel.stat(init, "/n/ram/f").unwrap().length, 4);
    // The server dies: the stuck clunk fails, and nothing is left over.
    server.wire.cut();
    assert!(kernel.wait_closes(DEADLINE));
    let stats = kernel.statistics();
    assert!(stats.clunk_failures >= 1, "{stats}");
    kernel.unmount(init, "/n/ram").unwrap();
    let report = check(&kernel);
    assert_eq!(report.live_channels, 0);
}

#[test]
fn an_open_file_keeps_an_unmounted_server() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/f", b"still here");
    let fd = kernel.open(init, "/n/ram/f", OpenMode::READ).unwrap();
    kernel.unmount(init, "/n/ram").unwrap();
    assert!(kernel.wait_closes(DEADLINE));
    assert!(server.running());
    let mut buf = [0u8; 10];
    assert_eq!(kernel.read(init, fd, &mut buf).unwrap(), 10);
    assert_eq!(&buf, b"still here");
    kernel.close(init, fd).unwrap();
    assert!(server.exits_cleanly(DEADLINE));
    assert_eq!(check(&kernel).live_channels, 0);
}
