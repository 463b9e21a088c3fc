//! The channel rule against a real ramfs: a server that refuses the write-back at munmap
//! (the interposer answers its `Twrite`s with "no space") and then recovers gets the bytes
//! later, through `Kernel::write_back_dirty` or at unmount (which then lets the mount
//! close, and the server exit); a mount that is cut loses them, counted. Pages are
//! stamped with their index.

mod common;

use common::*;
use hosted::inject::{Direction, Fate};
use hosted::mnt::OpenMode;
use hosted::vm::PAGE_SIZE;
use hosted::{Kernel, KernelError, MapRequest, Pid, Prot};
use ninep::mtype;

const PAGE: u64 = PAGE_SIZE as u64;

fn stamp(index: u64, generation: u8) -> u8 {
    (index as u8)
        .wrapping_mul(37)
        .wrapping_add(generation.wrapping_mul(59))
        | 1
}

/// A file of `pages` stamped pages at `/n/a/file`, mapped shared; every page stored with
/// generation 1. Returns the address.
fn map_dirty(kernel: &Kernel, pid: Pid, pages: u64) -> u64 {
    let bytes: Vec<u8> = (0..pages * PAGE).map(|at| stamp(at / PAGE, 0)).collect();
    copy_in(kernel, pid, "/n/a/file", &bytes);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let base = kernel
        .mmap(
            pid,
            MapRequest {
                fd: Some(fd),
                offset: 0,
                len: pages * PAGE,
                shared: true,
                prot: Prot::READ_WRITE,
                addr: None,
            },
        )
        .unwrap();
    kernel.close(pid, fd).unwrap();
    for page in 0..pages {
        kernel
            .write_memory(pid, base + page * PAGE, &[stamp(page, 1); 8])
            .unwrap();
    }
    base
}

/// The file's bytes at `offset`, read with a descriptor (from the server: the object that
/// held the pages is gone once they are written).
fn file_bytes(kernel: &Kernel, pid: Pid, offset: u64) -> Vec<u8> {
    let fd = kernel.open(pid, "/n/a/file", OpenMode::READ).unwrap();
    let mut buf = vec![0; 8];
    let n = kernel.pread(pid, fd, &mut buf, offset).unwrap();
    buf.truncate(n);
    kernel.close(pid, fd).unwrap();
    buf
}

/// The `Twrite`s the server saw since `mark`, by offset.
fn forwarded_writes(server: &Server, mark: usize) -> Vec<u64> {
    let mut offsets: Vec<u64> = server
        .wire
        .events_since(mark)
        .iter()
        .filter(|event| {
            event.direction == Direction::ToServer
                && event.fate == Fate::Forwarded
                && event.mtype == mtype::TWRITE
        })
        .filter_map(|event| event.offset)
        .collect();
    offsets.sort_unstable();
    offsets
}

#[test]
fn a_refused_write_back_reaches_the_server_when_it_recovers() {
    let kernel = kernel();
    let pid = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, pid, "/n/a");
    let base = map_dirty(&kernel, pid, 2);
    let mark = server.wire.mark();
    server.wire.refuse(mtype::TWRITE, usize::MAX);
    assert!(matches!(
        kernel.munmap(pid, base, 2 * PAGE),
        Err(KernelError::Vm(_))
    ));
    // Unmapped, nobody holds the file, and vm keeps both pages dirty with the channel.
    let stats = kernel.statistics().vm;
    assert_eq!(
        (stats.mappings, stats.dirty_pages, stats.dirty_pages_dropped),
        (0, 2, 0)
    );
    assert_eq!(forwarded_writes(&server, mark), Vec::<u64>::new());
    check(&kernel);
    // Still refusing: they stay for the next try.
    assert!(kernel.write_back_dirty().is_err());
    assert_eq!(kernel.statistics().vm.dirty_pages, 2);
    // The server recovered: the bytes get there.
    server.wire.clear_holds();
    assert_eq!(kernel.write_back_dirty(), Ok(2));
    assert_eq!(forwarded_writes(&server, mark), vec![0, PAGE]);
    assert_eq!(kernel.statistics().vm.dirty_pages, 0);
    for page in 0..2 {
        assert_eq!(
            file_bytes(&kernel, pid, page * PAGE),
            vec![stamp(page, 1); 8]
        );
    }
    check(&kernel);
}

#[test]
fn unmount_writes_the_refused_pages_back_and_the_server_then_exits() {
    let kernel = kernel();
    let pid = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, pid, "/n/a");
    let base = map_dirty(&kernel, pid, 3);
    let mark = server.wire.mark();
    server.wire.refuse(mtype::TWRITE, usize::MAX);
    assert!(kernel.munmap(pid, base, 3 * PAGE).is_err());
    check(&kernel);
    server.wire.clear_holds();
    kernel.unmount(pid, "/n/a").unwrap();
    assert_eq!(forwarded_writes(&server, mark), vec![0, PAGE, 2 * PAGE]);
    assert_eq!(kernel.statistics().vm.dirty_pages, 0);
    check(&kernel);
    // The file's channel was the mount's last: the server sees end of file and exits.
    assert!(server.exits_cleanly(DEADLINE), "ramfs did not exit");
}

#[test]
fn a_cut_mount_drops_the_refused_pages_and_counts_them() {
    let kernel = kernel();
    let pid = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, pid, "/n/a");
    let base = map_dirty(&kernel, pid, 2);
    server.wire.refuse(mtype::TWRITE, usize::MAX);
    assert!(kernel.munmap(pid, base, 2 * PAGE).is_err());
    server.wire.clear_holds();
    server.wire.cut();
    let deadline = std::time::Instant::now() + DEADLINE;
    while !server.wire.ended() {
        assert!(
            std::time::Instant::now() < deadline,
            "the cut never ended the wire"
        );
        std::thread::yield_now();
    }
    assert_eq!(kernel.write_back_dirty(), Ok(0));
    let stats = kernel.statistics().vm;
    assert_eq!((stats.dirty_pages, stats.dirty_pages_dropped), (0, 2));
    check(&kernel);
}

#[test]
fn a_writable_mapping_after_a_read_only_one_of_the_same_file_writes_back() {
    let kernel = kernel();
    let pid = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, pid, "/n/a");
    let bytes: Vec<u8> = (0..2 * PAGE).map(|at| stamp(at / PAGE, 0)).collect();
    copy_in(&kernel, pid, "/n/a/file", &bytes);
    // The file's object is made through a descriptor open for reading only.
    let reader = kernel.open(pid, "/n/a/file", OpenMode::READ).unwrap();
    let read_only = kernel
        .mmap(
            pid,
            MapRequest {
                fd: Some(reader),
                offset: 0,
                len: 2 * PAGE,
                shared: true,
                prot: Prot::READ,
                addr: None,
            },
        )
        .unwrap();
    let writer = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let base = kernel
        .mmap(
            pid,
            MapRequest {
                fd: Some(writer),
                offset: 0,
                len: 2 * PAGE,
                shared: true,
                prot: Prot::READ_WRITE,
                addr: None,
            },
        )
        .unwrap();
    kernel
        .write_memory(pid, base + PAGE, &[stamp(1, 1); 8])
        .unwrap();
    let mark = server.wire.mark();
    kernel.munmap(pid, base, 2 * PAGE).unwrap();
    assert_eq!(forwarded_writes(&server, mark), vec![PAGE]);
    kernel.munmap(pid, read_only, 2 * PAGE).unwrap();
    assert_eq!(file_bytes(&kernel, pid, PAGE), vec![stamp(1, 1); 8]);
    assert_eq!(kernel.statistics().vm.dirty_pages, 0);
    check(&kernel);
}
