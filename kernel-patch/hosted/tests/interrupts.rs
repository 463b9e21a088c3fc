//! Notes flush what a call waits for: a read, a page fault's read. A server that never
//! answers one request stalls only its caller. A note reaches every call its process has
//! in progress, each on its own interrupt, and is not left over for a later call once they
//! took it.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use hosted::inject::{FlushPolicy, Hold};
use hosted::mnt::ninep::mtype;
use hosted::mnt::OpenMode;
use hosted::vm::{Access, PAGE_SIZE};
use hosted::ForkFlags;

#[test]
fn an_interrupted_read_is_flushed() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let info = server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/f", b"contents");
    let fd = kernel.open(init, "/n/ram/f", OpenMode::READ).unwrap();
    server.wire.hold(Hold {
        mtype: mtype::TREAD,
        count: 1,
        flush: FlushPolicy::Answer,
    });
    let (done, result) = mpsc::channel();
    {
        let kernel = kernel.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8];
            done.send(kernel.read(init, fd, &mut buf).map(|n| buf[..n].to_vec()))
        });
    }
    assert!(server.wire.wait_held(1, DEADLINE));
    kernel.interrupt(init).unwrap();
    let err = result
        .recv_timeout(DEADLINE)
        .expect("read never returned")
        .unwrap_err();
    assert!(err.is_interrupted(), "{err}");
    assert!(server
        .wire
        .events()
        .iter()
        .any(|e| e.mtype == mtype::TFLUSH));
    assert_eq!(info.mount.stats().flushes, 1);
    // The descriptor still works, from where it was.
    let mut buf = [0u8; 8];
    assert_eq!(kernel.read(init, fd, &mut buf).unwrap(), 8);
    assert_eq!(&buf, b"contents");
    check(&kernel);
}

#[test]
fn an_interrupted_page_read_fails_the_fault_and_caches_nothing() {
    let binary = static_binary();
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/prog", binary);
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(pid, "/n/ram/prog", &["prog"]).unwrap();
    let text = program_pages(binary)
        .into_iter()
        .find(|p| !p.writable)
        .unwrap();
    server.wire.hold(Hold {
        mtype: mtype::TREAD,
        count: 1,
        flush: FlushPolicy::Answer,
    });
    let (done, result) = mpsc::channel();
    {
        let kernel = kernel.clone();
        std::thread::spawn(move || done.send(kernel.touch(pid, text.addr, Access::Read)));
    }
    assert!(server.wire.wait_held(1, DEADLINE));
    kernel.interrupt(pid).unwrap();
    let err = result
        .recv_timeout(DEADLINE)
        .expect("fault never returned")
        .unwrap_err();
    assert!(err.is_interrupted(), "{err}");
    assert_eq!(kernel.statistics().vm.cached_pages, 0);
    check(&kernel);
    let mut got = vec![0u8; PAGE_SIZE];
    kernel.read_memory(pid, text.addr, &mut got).unwrap();
    assert!(got == text.bytes);
    check(&kernel);
}

#[test]
fn a_request_never_answered_stalls_only_its_caller() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    let mut other = Server::start();
    other.mount(&kernel, init, "/n/other");
    copy_in(&kernel, init, "/n/ram/a", b"aaaa");
    copy_in(&kernel, init, "/n/ram/b", b"bbbb");
    let stuck = kernel.fork(init, ForkFlags::default()).unwrap();
    let fd = kernel.open(stuck, "/n/ram/a", OpenMode::READ).unwrap();
    server.wire.hold(Hold {
        mtype: mtype::TREAD,
        count: 1,
        flush: FlushPolicy::Ignore,
    });
    let (done, result) = mpsc::channel();
    {
        let kernel = kernel.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4];
            done.send(kernel.read(stuck, fd, &mut buf))
        });
    }
    assert!(server.wire.wait_held(1, DEADLINE));
    // The same mount serves everyone else, and so does another mount.
    let fd_b = kernel.open(init, "/n/ram/b", OpenMode::READ).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(kernel.read(init, fd_b, &mut buf).unwrap(), 4);
    assert_eq!(&buf, b"bbbb");
    copy_in(&kernel, init, "/n/other/c", b"cc");
    assert_eq!(kernel.stat(init, "/n/other/c").unwrap().length, 2);
    // A flush the server ignores too leaves the caller waiting.
    kernel.interrupt(stuck).unwrap();
    assert!(result.recv_timeout(Duration::from_millis(200)).is_err());
    // Until the server goes away.
    server.wire.cut();
    let err = result.recv_timeout(DEADLINE).expect("read never returned");
    assert!(err.is_err());
    kernel.close(init, fd_b).ok();
    kernel.exit(stuck, "").unwrap();
    check(&kernel);
}

/// Waits until `ready` holds, or fails after the deadline.
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_fault_waiting_for_another_faults_page_read_is_interrupted_alone() {
    let binary = static_binary();
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/prog", binary);
    let loader = kernel.fork(init, ForkFlags::default()).unwrap();
    let waiter = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(loader, "/n/ram/prog", &["prog"]).unwrap();
    kernel.exec(waiter, "/n/ram/prog", &["prog"]).unwrap();
    let text = program_pages(binary)
        .into_iter()
        .find(|p| !p.writable)
        .unwrap();
    server.wire.hold(Hold {
        mtype: mtype::TREAD,
        count: 1,
        flush: FlushPolicy::Answer,
    });
    let (loader_done, loader_result) = mpsc::channel();
    {
        let kernel = kernel.clone();
        std::thread::spawn(move || loader_done.send(kernel.touch(loader, text.addr, Access::Read)));
    }
    assert!(server.wire.wait_held(1, DEADLINE));
    // The second process's fault on the same page sends nothing: it waits for the load.
    let (waiter_done, waiter_result) = mpsc::channel();
    {
        let kernel = kernel.clone();
        std::thread::spawn(move || waiter_done.send(kernel.touch(waiter, text.addr, Access::Read)));
    }
    wait_for("the second fault waits for the first one's load", || {
        kernel.statistics().vm.page_load_waits >= 1
    });
    assert_eq!(server.wire.held(), 1, "the second fault read the page too");

    kernel.interrupt(waiter).unwrap();
    let err = waiter_result
        .recv_timeout(DEADLINE)
        .expect("the waiting fault never returned")
        .unwrap_err();
    assert!(err.is_interrupted(), "{err}");
    // The loader still waits for its read; now flush that too.
    assert!(loader_result.try_recv().is_err());
    kernel.interrupt(loader).unwrap();
    let err = loader_result
        .recv_timeout(DEADLINE)
        .expect("the loading fault never returned")
        .unwrap_err();
    assert!(err.is_interrupted(), "{err}");
    assert_eq!(kernel.statistics().vm.cached_pages, 0);
    check(&kernel);

    // Both fault again and see the file's bytes, read once.
    let loads = kernel.statistics().vm.page_loads;
    for pid in [waiter, loader] {
        let mut got = vec![0u8; PAGE_SIZE];
        kernel.read_memory(pid, text.addr, &mut got).unwrap();
        assert!(got == text.bytes);
    }
    assert_eq!(kernel.statistics().vm.page_loads, loads + 1);
    check(&kernel);
}

#[test]
fn a_note_interrupts_every_call_of_its_process_and_no_later_one() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/a", b"aaaa");
    copy_in(&kernel, init, "/n/ram/b", b"bbbb");
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    let fds = [
        kernel.open(pid, "/n/ram/a", OpenMode::READ).unwrap(),
        kernel.open(pid, "/n/ram/b", OpenMode::READ).unwrap(),
    ];
    server.wire.hold(Hold {
        mtype: mtype::TREAD,
        count: 2,
        flush: FlushPolicy::Answer,
    });
    // Two calls of one process at once (two of its threads), both waiting for the server.
    let (done, results) = mpsc::channel();
    for fd in fds {
        let kernel = kernel.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4];
            done.send(kernel.read(pid, fd, &mut buf))
        });
    }
    assert!(
        server.wire.wait_held(2, DEADLINE),
        "both reads reach the server"
    );

    // One note ends both.
    kernel.interrupt(pid).unwrap();
    for _ in fds {
        let err = results
            .recv_timeout(DEADLINE)
            .expect("a call of the process was not interrupted by its note")
            .unwrap_err();
        assert!(err.is_interrupted(), "{err}");
    }
    // Both took it: the next call runs uninterrupted.
    let mut buf = [0u8; 4];
    assert_eq!(kernel.read(pid, fds[0], &mut buf), Ok(4));
    assert_eq!(&buf, b"aaaa");
    // A note posted with no call in progress interrupts the next call, once.
    kernel.interrupt(pid).unwrap();
    let err = kernel.pread(pid, fds[1], &mut buf, 0).unwrap_err();
    assert!(err.is_interrupted(), "{err}");
    assert_eq!(kernel.pread(pid, fds[1], &mut buf, 0), Ok(4));
    assert_eq!(&buf, b"bbbb");
    kernel.exit(pid, "").unwrap();
    check(&kernel);
}
