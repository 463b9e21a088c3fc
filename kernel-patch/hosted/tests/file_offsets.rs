//! Reads and writes whose end would pass the largest file offset are refused before the
//! server is asked, and leave the descriptor's offset alone; I/O that ends exactly at the
//! largest offset is the server's to answer. A descriptor's offset is never locked across
//! a server call: a stuck read through a shared descriptor stalls no other process's seek
//! or read of it.

mod common;

use common::*;
use std::sync::mpsc;

use hosted::inject::{FlushPolicy, Hold};
use hosted::mnt::ninep::mtype;
use hosted::mnt::OpenMode;
use hosted::{ForkFlags, KernelError};

const FILE: &str = "/n/ram/file";

#[test]
fn io_past_the_largest_offset_is_refused() {
    let kernel = kernel();
    let pid = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, pid, "/n/ram");
    copy_in(&kernel, pid, FILE, b"contents");
    let fd = kernel.open(pid, FILE, OpenMode::RDWR).unwrap();

    let near_end = u64::MAX - 2;
    let mark = server.wire.mark();
    kernel.seek(pid, fd, near_end).unwrap();
    let mut buf = [0u8; 8];
    let past = KernelError::OffsetOverflow {
        offset: near_end,
        len: 8,
    };
    assert_eq!(kernel.read(pid, fd, &mut buf), Err(past.clone()));
    assert_eq!(kernel.write(pid, fd, b"12345678"), Err(past.clone()));
    assert_eq!(kernel.pread(pid, fd, &mut buf, near_end), Err(past.clone()));
    assert_eq!(kernel.pwrite(pid, fd, b"12345678", near_end), Err(past));
    let sent: Vec<u8> = server
        .wire
        .events_since(mark)
        .iter()
        .map(|event| event.mtype)
        .filter(|kind| [mtype::TREAD, mtype::TWRITE].contains(kind))
        .collect();
    assert!(sent.is_empty(), "refused I/O reached the server: {sent:?}");

    // Two bytes end exactly at the largest offset: the server answers (nothing is there),
    // and the descriptor's offset was left where the refused calls found it.
    assert_eq!(kernel.read(pid, fd, &mut buf[..2]), Ok(0));
    assert_eq!(
        kernel.read(pid, fd, &mut buf[..3]),
        Err(KernelError::OffsetOverflow {
            offset: near_end,
            len: 3
        })
    );

    // The file is as it was.
    kernel.seek(pid, fd, 0).unwrap();
    assert_eq!(kernel.read(pid, fd, &mut buf), Ok(8));
    assert_eq!(&buf, b"contents");
    kernel.close(pid, fd).unwrap();
    check(&kernel);
    kernel.exit(pid, "").unwrap();
    drop(kernel);
    assert!(server.exits_cleanly(DEADLINE), "ramfs did not exit");
}

#[test]
fn a_stuck_read_holds_no_lock_on_the_shared_offset() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, FILE, b"contents");
    let fd = kernel.open(init, FILE, OpenMode::READ).unwrap();
    // The child shares the descriptor, and so its offset.
    let stuck = kernel.fork(init, ForkFlags::default()).unwrap();
    server.wire.hold(Hold {
        mtype: mtype::TREAD,
        count: 1,
        flush: FlushPolicy::Answer,
    });
    let (read_done, read_result) = mpsc::channel();
    {
        let kernel = kernel.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8];
            read_done.send(kernel.read(stuck, fd, &mut buf))
        });
    }
    assert!(
        server.wire.wait_held(1, DEADLINE),
        "the read never reached the server"
    );

    // The parent seeks and reads through the same descriptor while the child's read waits
    // for a server that does not answer it.
    let (seek_done, seek_result) = mpsc::channel();
    {
        let kernel = kernel.clone();
        std::thread::spawn(move || {
            let seeked = kernel.seek(init, fd, 3);
            let mut buf = [0u8; 8];
            let read = kernel.read(init, fd, &mut buf).map(|n| buf[..n].to_vec());
            seek_done.send((seeked, read))
        });
    }
    let (seeked, read) = seek_result
        .recv_timeout(DEADLINE)
        .expect("seek and read waited behind another process's stuck read");
    assert_eq!(seeked, Ok(()));
    assert_eq!(read.unwrap(), b"tents");

    // A note ends the stuck read; it moved the offset by nothing.
    kernel.interrupt(stuck).unwrap();
    let err = read_result
        .recv_timeout(DEADLINE)
        .expect("the note never ended the stuck read")
        .unwrap_err();
    assert!(err.is_interrupted(), "{err}");
    kernel.seek(init, fd, 0).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(kernel.read(init, fd, &mut buf), Ok(8));
    assert_eq!(&buf, b"contents");
    let mut buf = [0u8; 8];
    assert_eq!(
        kernel.read(stuck, fd, &mut buf),
        Ok(0),
        "the offset is shared"
    );
    kernel.exit(stuck, "").unwrap();
    kernel.close(init, fd).unwrap();
    check(&kernel);
    kernel.exit(init, "").unwrap();
}
