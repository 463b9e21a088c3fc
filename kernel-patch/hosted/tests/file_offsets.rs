//! Reads and writes whose end would pass the largest file offset are refused before the
//! server is asked, and leave the descriptor's offset alone; I/O that ends exactly at the
//! largest offset is the server's to answer.

mod common;

use common::*;
use hosted::mnt::ninep::mtype;
use hosted::mnt::OpenMode;
use hosted::KernelError;

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
