//! Memory mappings against a real ramfs: a shared store is seen by `read` and reaches the
//! server at msync, munmap and exit (checked through a second mount of the same tree,
//! which shares no page with the first); a `write` is seen through every shared mapping;
//! private mappings copy on write after fork and never write back; a page past the end of
//! the file is a bus error, an address outside every mapping a segmentation fault; and
//! write-protecting a range in one process's mapping removes exactly the overlapping
//! pages' translations in every process. Every page is stamped with its index.

mod common;

use common::*;
use hosted::mnt::OpenMode;
use hosted::vm::{FaultError, PAGE_SIZE};
use hosted::{ForkFlags, Kernel, KernelError, MapRequest, MountFlags, NamespaceShare, Pid, Prot};

const PAGE: u64 = PAGE_SIZE as u64;

/// The byte page `index` holds in generation `generation` of the file.
fn stamp(index: u64, generation: u8) -> u8 {
    (index as u8)
        .wrapping_mul(29)
        .wrapping_add(generation.wrapping_mul(83))
        | 1
}

fn stamped(pages: u64, generation: u8) -> Vec<u8> {
    (0..pages * PAGE)
        .map(|at| stamp(at / PAGE, generation))
        .collect()
}

type Setup = TwoMounts;

fn setup(pages: u64) -> Setup {
    two_mounts(&stamped(pages, 0))
}

/// The server's bytes, through the other mount.
fn server_bytes(setup: &Setup, offset: u64, len: usize) -> Vec<u8> {
    let kernel = &setup.kernel;
    let fd = kernel
        .open(setup.init, "/n/b/file", OpenMode::READ)
        .unwrap();
    let mut buf = vec![0; len];
    let n = kernel.pread(setup.init, fd, &mut buf, offset).unwrap();
    buf.truncate(n);
    kernel.close(setup.init, fd).unwrap();
    buf
}

fn map_file(kernel: &Kernel, pid: Pid, fd: usize, pages: u64, first: u64, shared: bool) -> u64 {
    kernel
        .mmap(
            pid,
            MapRequest {
                fd: Some(fd),
                offset: first * PAGE,
                len: pages * PAGE,
                shared,
                prot: Prot::READ_WRITE,
                addr: None,
            },
        )
        .expect("mmap")
}

fn peek(kernel: &Kernel, pid: Pid, addr: u64) -> u8 {
    let mut byte = [0];
    kernel.read_memory(pid, addr, &mut byte).expect("load");
    byte[0]
}

fn share() -> ForkFlags {
    ForkFlags {
        namespace: NamespaceShare::Share,
    }
}

#[test]
fn a_shared_store_is_seen_by_read_and_reaches_the_server_at_msync() {
    let setup = setup(4);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let base = map_file(kernel, pid, fd, 4, 0, true);
    for page in 0..4 {
        assert_eq!(peek(kernel, pid, base + page * PAGE + 7), stamp(page, 0));
    }
    kernel
        .write_memory(pid, base + 2 * PAGE + 100, &[stamp(2, 1); 16])
        .unwrap();
    // read() sees the store at once; the server does not have it yet.
    let mut buf = [0; 16];
    kernel.pread(pid, fd, &mut buf, 2 * PAGE + 100).unwrap();
    assert_eq!(buf, [stamp(2, 1); 16]);
    assert_eq!(
        server_bytes(&setup, 2 * PAGE + 100, 16),
        vec![stamp(2, 0); 16]
    );
    assert_eq!(kernel.statistics().vm.dirty_pages, 1);
    check(kernel);
    kernel.msync(pid, base, 4 * PAGE).unwrap();
    assert_eq!(
        server_bytes(&setup, 2 * PAGE + 100, 16),
        vec![stamp(2, 1); 16]
    );
    // Only that page was written: its neighbours are the file's.
    assert_eq!(server_bytes(&setup, PAGE, 1), vec![stamp(1, 0)]);
    assert_eq!(server_bytes(&setup, 3 * PAGE, 1), vec![stamp(3, 0)]);
    let stats = kernel.statistics().vm;
    assert_eq!((stats.dirty_pages, stats.writebacks), (0, 1));
    check(kernel);
}

#[test]
fn a_write_is_seen_through_every_shared_mapping() {
    let setup = setup(3);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let mine = map_file(kernel, pid, fd, 3, 0, true);
    let child = kernel.fork(pid, share()).unwrap();
    // The child's own mapping of pages 1..3, besides the one fork shared.
    let theirs = map_file(kernel, child, fd, 2, 1, true);
    assert_eq!(peek(kernel, pid, mine + PAGE), stamp(1, 0));
    assert_eq!(peek(kernel, child, mine + PAGE), stamp(1, 0));
    assert_eq!(peek(kernel, child, theirs), stamp(1, 0));
    kernel.pwrite(pid, fd, &[stamp(1, 2); 8], PAGE).unwrap();
    assert_eq!(peek(kernel, pid, mine + PAGE), stamp(1, 2));
    assert_eq!(peek(kernel, child, mine + PAGE), stamp(1, 2));
    assert_eq!(peek(kernel, child, theirs), stamp(1, 2));
    // And a store through one mapping is seen through the others.
    kernel.write_memory(child, theirs + PAGE, &[0x5a]).unwrap();
    assert_eq!(peek(kernel, pid, mine + 2 * PAGE), 0x5a);
    check(kernel);
    kernel.exit(child, "").unwrap();
    // The child's exit wrote its store back.
    assert_eq!(server_bytes(&setup, 2 * PAGE, 1), vec![0x5a]);
    check(kernel);
}

#[test]
fn private_mappings_copy_on_write_after_fork_and_never_write_back() {
    let setup = setup(2);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::READ).unwrap();
    let base = map_file(kernel, pid, fd, 2, 0, false);
    kernel.write_memory(pid, base, &[0x11; 8]).unwrap();
    let child = kernel.fork(pid, share()).unwrap();
    assert_eq!(peek(kernel, child, base), 0x11);
    assert_eq!(peek(kernel, child, base + PAGE), stamp(1, 0));
    kernel.write_memory(child, base, &[0x22; 8]).unwrap();
    kernel.write_memory(child, base + PAGE, &[0x33; 8]).unwrap();
    assert_eq!(peek(kernel, pid, base), 0x11, "the parent keeps its copy");
    assert_eq!(
        peek(kernel, pid, base + PAGE),
        stamp(1, 0),
        "and the file's page"
    );
    check(kernel);
    kernel.exit(child, "").unwrap();
    kernel.munmap(pid, base, 2 * PAGE).unwrap();
    assert_eq!(server_bytes(&setup, 0, 1), vec![stamp(0, 0)]);
    assert_eq!(server_bytes(&setup, PAGE, 1), vec![stamp(1, 0)]);
    // Anonymous memory too: private copies after fork, shared stays shared.
    let anon = |shared| MapRequest {
        fd: None,
        offset: 0,
        len: PAGE,
        shared,
        prot: Prot::READ_WRITE,
        addr: None,
    };
    let private = kernel.mmap(pid, anon(false)).unwrap();
    let shared = kernel.mmap(pid, anon(true)).unwrap();
    kernel.write_memory(pid, private, &[1]).unwrap();
    kernel.write_memory(pid, shared, &[1]).unwrap();
    let child = kernel.fork(pid, share()).unwrap();
    kernel.write_memory(child, private, &[2]).unwrap();
    kernel.write_memory(child, shared, &[2]).unwrap();
    assert_eq!(
        (peek(kernel, pid, private), peek(kernel, pid, shared)),
        (1, 2)
    );
    // discard: the private page goes back to zero fill.
    assert_eq!(kernel.discard(pid, private, PAGE).unwrap(), 1);
    assert_eq!(peek(kernel, pid, private), 0);
    check(kernel);
}

#[test]
fn munmap_and_exit_write_back() {
    let setup = setup(2);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let base = map_file(kernel, pid, fd, 2, 0, true);
    kernel.write_memory(pid, base, &[0x44; 4]).unwrap();
    // Closing the descriptor does not unmap.
    kernel.close(pid, fd).unwrap();
    kernel.write_memory(pid, base + PAGE, &[0x46; 4]).unwrap();
    // Unmapping part of the mapping writes back that part's pages only.
    kernel.munmap(pid, base, PAGE).unwrap();
    assert_eq!(server_bytes(&setup, 0, 4), vec![0x44; 4]);
    assert_eq!(server_bytes(&setup, PAGE, 1), vec![stamp(1, 0)]);
    check(kernel);
    kernel.munmap(pid, base, 2 * PAGE).unwrap();
    assert_eq!(server_bytes(&setup, PAGE, 4), vec![0x46; 4]);
    let child = kernel.fork(pid, share()).unwrap();
    let fd = kernel.open(child, "/n/a/file", OpenMode::RDWR).unwrap();
    let base = map_file(kernel, child, fd, 2, 0, true);
    kernel.write_memory(child, base + PAGE, &[0x45; 4]).unwrap();
    kernel.exit(child, "").unwrap();
    assert_eq!(server_bytes(&setup, PAGE, 4), vec![0x45; 4]);
    check(kernel);
}

#[test]
fn past_the_end_of_the_file_is_a_bus_error_outside_every_mapping_a_segmentation_fault() {
    let setup = setup(1);
    let (kernel, pid) = (&setup.kernel, setup.init);
    // One page and a half: the page holding the end reads zeros past it.
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    kernel
        .pwrite(pid, fd, &[0x66; PAGE_SIZE / 2], PAGE)
        .unwrap();
    let base = map_file(kernel, pid, fd, 4, 0, true);
    assert_eq!(peek(kernel, pid, base + PAGE + 10), 0x66);
    assert_eq!(peek(kernel, pid, base + PAGE + PAGE / 2 + 10), 0);
    let mut byte = [0];
    assert_eq!(
        kernel.read_memory(pid, base + 2 * PAGE, &mut byte),
        Err(KernelError::BusError {
            addr: base + 2 * PAGE
        })
    );
    assert_eq!(
        kernel.read_memory(pid, base + 4 * PAGE, &mut byte),
        Err(KernelError::Fault {
            addr: base + 4 * PAGE,
            error: FaultError::BadAddress
        })
    );
    assert_eq!(kernel.statistics().vm.bus_errors, 1);
    // A read-only protection refuses stores, and mprotect gives them back.
    kernel.mprotect(pid, base, 4 * PAGE, Prot::READ).unwrap();
    assert_eq!(
        kernel.write_memory(pid, base, &[1]),
        Err(KernelError::ReadOnly(base))
    );
    kernel
        .mprotect(pid, base, 4 * PAGE, Prot::READ_WRITE)
        .unwrap();
    kernel.write_memory(pid, base, &[1]).unwrap();
    check(kernel);
}

#[test]
fn write_protecting_one_range_removes_exactly_the_overlapping_pages_in_each_process() {
    let setup = setup(8);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let other = kernel.fork(pid, share()).unwrap();
    // pid maps file pages 0..6, other pages 3..8: they overlap in 3..6.
    let a = map_file(kernel, pid, fd, 6, 0, true);
    let b = map_file(kernel, other, fd, 5, 3, true);
    for page in 0..6 {
        kernel
            .write_memory(pid, a + page * PAGE, &[stamp(page, 5)])
            .unwrap();
    }
    for page in 0..5 {
        let expect = if page + 3 < 6 {
            stamp(page + 3, 5)
        } else {
            stamp(page + 3, 0)
        };
        assert_eq!(
            peek(kernel, other, b + page * PAGE),
            expect,
            "other's page {page}"
        );
        kernel
            .write_memory(other, b + page * PAGE + 1, &[expect])
            .unwrap();
    }
    check(kernel);
    // Write back (and so write-protect) pid's pages 2..5, file pages 2..5.
    kernel.msync(pid, a + 2 * PAGE, 3 * PAGE).unwrap();
    // Which translations went shows in which loads fault.
    let faults_at = |who: Pid, addr: u64| {
        let before = kernel.statistics().faults;
        peek(kernel, who, addr);
        kernel.statistics().faults - before
    };
    let a_faulted: Vec<u64> = (0..6)
        .filter(|&p| faults_at(pid, a + p * PAGE) == 1)
        .collect();
    let b_faulted: Vec<u64> = (0..5)
        .filter(|&p| faults_at(other, b + p * PAGE) == 1)
        .map(|p| p + 3)
        .collect();
    assert_eq!(a_faulted, vec![2, 3, 4]);
    assert_eq!(b_faulted, vec![3, 4]);
    for page in 2..5 {
        assert_eq!(server_bytes(&setup, page * PAGE, 1), vec![stamp(page, 5)]);
    }
    check(kernel);
}

#[test]
fn a_write_back_is_seen_by_a_later_read_through_the_mount_cache() {
    let kernel = kernel();
    let pid = kernel.spawn();
    let mut server = Server::start();
    kernel
        .mount(pid, server.transport(), "/n/c", MountFlags::CACHE)
        .expect("mount");
    copy_in(&kernel, pid, "/n/c/file", &stamped(2, 0));
    let fd = kernel.open(pid, "/n/c/file", OpenMode::RDWR).unwrap();
    // The cache holds the file's pages (a read fills it).
    let mut buf = vec![0; 2 * PAGE_SIZE];
    kernel.pread(pid, fd, &mut buf, 0).unwrap();
    assert!(kernel.statistics().vm.mcache_pages > 0);
    let base = map_file(&kernel, pid, fd, 2, 0, true);
    kernel.write_memory(pid, base + PAGE, &[0x71; 8]).unwrap();
    kernel.munmap(pid, base, 2 * PAGE).unwrap();
    // The mapping is gone; the cache's older page must not answer.
    let mut after = [0; 8];
    kernel.pread(pid, fd, &mut after, PAGE).unwrap();
    assert_eq!(after, [0x71; 8]);
    kernel.close(pid, fd).unwrap();
    check(&kernel);
}

#[test]
fn ftruncate_makes_every_mapping_past_the_end_a_bus_error_and_zeroes_the_tail() {
    let setup = setup(4);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let shared = map_file(kernel, pid, fd, 4, 0, true);
    let child = kernel.fork(pid, share()).unwrap();
    let private = map_file(kernel, child, fd, 4, 0, false);
    for page in 0..4 {
        assert_eq!(peek(kernel, pid, shared + page * PAGE), stamp(page, 0));
    }
    // A private copy of page 3 in the child, and page 2 mapped as the file's.
    kernel
        .write_memory(child, private + 3 * PAGE, &[0x3c])
        .unwrap();
    assert_eq!(peek(kernel, child, private + 2 * PAGE), stamp(2, 0));
    let size = PAGE + PAGE / 2;
    kernel.ftruncate(pid, fd, size).unwrap();
    for (who, base) in [(pid, shared), (child, private)] {
        for page in 2..4 {
            let addr = base + page * PAGE;
            let mut byte = [0];
            assert_eq!(
                kernel.read_memory(who, addr, &mut byte),
                Err(KernelError::BusError { addr }),
                "pid {who} page {page}"
            );
        }
        assert_eq!(peek(kernel, who, base + PAGE + PAGE / 2), 0, "the tail");
        assert_eq!(peek(kernel, who, base + PAGE), stamp(1, 0));
    }
    assert_eq!(kernel.stat(pid, "/n/b/file").unwrap().length, size);
    check(kernel);
    // Truncating by path is the same: the mapping loses page 1 too.
    kernel.truncate(pid, "/n/a/file", PAGE).unwrap();
    let mut byte = [0];
    assert_eq!(
        kernel.read_memory(pid, shared + PAGE, &mut byte),
        Err(KernelError::BusError {
            addr: shared + PAGE
        })
    );
    check(kernel);
}

/// NetBSD's `mmap_truncate_signal` and gVisor's `TruncateAfterCOWBreak`, through a
/// truncating open to 0: loads and stores of a shared and of a private mapping are bus
/// errors, never segmentation faults, and the private copy a store made is freed with the
/// file's pages.
#[test]
fn after_a_truncating_open_every_access_of_every_mapping_is_a_bus_error_and_copies_are_freed() {
    let setup = setup(2);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let shared = map_file(kernel, pid, fd, 2, 0, true);
    let private = map_file(kernel, pid, fd, 2, 0, false);
    assert_eq!(peek(kernel, pid, shared), stamp(0, 0));
    // The copy on write of page 1 (the file's page 1 is read into the object first).
    kernel.write_memory(pid, private + PAGE, &[0x5a]).unwrap();
    let copy = kernel
        .translation(pid, private + PAGE)
        .unwrap()
        .expect("mapped");
    assert_ne!(Some(copy), kernel.translation(pid, shared + PAGE).unwrap());
    let before = kernel.statistics();
    let mut empty = OpenMode::WRITE;
    empty.truncate = true;
    let fd2 = kernel.open(pid, "/n/a/file", empty).unwrap();
    for base in [shared, private] {
        for page in 0..2 {
            let addr = base + page * PAGE;
            let mut byte = [0];
            assert_eq!(
                kernel.read_memory(pid, addr, &mut byte),
                Err(KernelError::BusError { addr })
            );
            assert_eq!(
                kernel.write_memory(pid, addr, &[1]),
                Err(KernelError::BusError { addr })
            );
        }
    }
    let after = kernel.statistics();
    let released = (u64::from(after.vm.free_pages) + after.frames.freed)
        - (u64::from(before.vm.free_pages) + before.frames.freed);
    assert_eq!(
        released, 3,
        "the file's two pages and the private copy are freed"
    );
    assert_eq!(kernel.translation(pid, private + PAGE).unwrap(), None);
    assert_eq!(kernel.stat(pid, "/n/b/file").unwrap().length, 0);
    kernel.close(pid, fd2).unwrap();
    check(kernel);
}

/// Hugh Dickins' racy page, staged: a fault's page read has been answered by the server
/// (with the file's old bytes) but not yet seen when a truncate past that page runs;
/// then the reply arrives. The fault ends in a bus error and caches nothing past the end:
/// grown again, the file reads the server's zeros there, never the old bytes.
#[test]
fn a_fault_whose_read_is_answered_before_a_truncate_and_seen_after_it_is_a_bus_error() {
    let kernel = kernel();
    let pid = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, pid, "/n/ram");
    copy_in(&kernel, pid, "/n/ram/file", &stamped(4, 0));
    let fd = kernel.open(pid, "/n/ram/file", OpenMode::RDWR).unwrap();
    let base = map_file(&kernel, pid, fd, 4, 0, true);
    server
        .wire
        .hold_replies(hosted::mnt::ninep::mtype::RREAD, 1);
    let addr = base + 3 * PAGE;
    let fault = {
        let kernel = kernel.clone();
        std::thread::spawn(move || {
            let mut byte = [0];
            kernel.read_memory(pid, addr, &mut byte).map(|()| byte[0])
        })
    };
    assert!(
        server.wire.wait_replies_held(1, DEADLINE),
        "the fault never read its page"
    );
    kernel.ftruncate(pid, fd, PAGE).unwrap();
    assert_eq!(server.wire.release_replies(), 1);
    assert_eq!(
        fault.join().expect("fault thread"),
        Err(KernelError::BusError { addr })
    );
    assert_eq!(kernel.translation(pid, addr).unwrap(), None);
    check(&kernel);
    kernel.ftruncate(pid, fd, 4 * PAGE).unwrap();
    assert_eq!(peek(&kernel, pid, addr), 0, "the old bytes came back");
    assert_eq!(peek(&kernel, pid, base), stamp(0, 0));
    check(&kernel);
}

fn segfault(addr: u64) -> KernelError {
    KernelError::Fault {
        addr,
        error: FaultError::BadAddress,
    }
}

#[test]
fn munmap_of_a_middle_and_of_a_range_over_several_mappings_and_holes() {
    let setup = setup(8);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let base = map_file(kernel, pid, fd, 8, 0, true);
    for page in 0..8 {
        kernel
            .write_memory(pid, base + page * PAGE, &[stamp(page, 1); 8])
            .unwrap();
    }
    kernel.munmap(pid, base + 3 * PAGE, 2 * PAGE).unwrap();
    check(kernel);
    for page in 0..8 {
        let expected = if (3..5).contains(&page) {
            stamp(page, 1)
        } else {
            stamp(page, 0)
        };
        assert_eq!(
            server_bytes(&setup, page * PAGE, 1),
            vec![expected],
            "page {page}"
        );
    }
    let mut byte = [0];
    for page in [3, 4] {
        let addr = base + page * PAGE;
        assert_eq!(
            kernel.read_memory(pid, addr, &mut byte),
            Err(segfault(addr))
        );
    }
    for page in [0, 1, 2, 5, 6, 7] {
        assert_eq!(peek(kernel, pid, base + page * PAGE), stamp(page, 1));
    }
    // Anonymous memory, a hole, a private file mapping: one munmap over parts of each.
    let anon = kernel
        .mmap(
            pid,
            MapRequest {
                fd: None,
                offset: 0,
                len: 2 * PAGE,
                shared: false,
                prot: Prot::READ_WRITE,
                addr: Some(0x7000_0000),
            },
        )
        .unwrap();
    let private = kernel
        .mmap(
            pid,
            MapRequest {
                fd: Some(fd),
                offset: 0,
                len: 3 * PAGE,
                shared: false,
                prot: Prot::READ_WRITE,
                addr: Some(anon + 3 * PAGE),
            },
        )
        .unwrap();
    kernel.write_memory(pid, anon, &[0x5A; 8]).unwrap();
    kernel.write_memory(pid, anon + PAGE, &[0x5B; 8]).unwrap();
    kernel.write_memory(pid, private, &[0x5C; 8]).unwrap();
    kernel.munmap(pid, anon + PAGE, 4 * PAGE).unwrap();
    check(kernel);
    assert_eq!(peek(kernel, pid, anon), 0x5A);
    for addr in [anon + PAGE, anon + 3 * PAGE, anon + 4 * PAGE] {
        assert_eq!(
            kernel.read_memory(pid, addr, &mut byte),
            Err(segfault(addr))
        );
    }
    // The private mapping's last page is the file object's page 2: the shared mapping's
    // store, not yet written back (one copy of a page within the kernel).
    assert_eq!(peek(kernel, pid, anon + 5 * PAGE), stamp(2, 1));
    // A range of holes only is fine (POSIX), and unmaps nothing.
    kernel.munmap(pid, anon + PAGE, 4 * PAGE).unwrap();
    assert_eq!(peek(kernel, pid, anon), 0x5A);
    check(kernel);
    kernel.munmap(pid, base, 8 * PAGE).unwrap();
    for page in 0..8 {
        assert_eq!(
            server_bytes(&setup, page * PAGE, 1),
            vec![stamp(page, 1)],
            "page {page}"
        );
    }
    check(kernel);
}

#[test]
fn mprotect_of_part_of_a_shared_mapping_and_write_access_needs_the_file_open_for_writing() {
    let setup = setup(4);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let base = map_file(kernel, pid, fd, 4, 0, true);
    for page in 0..4 {
        kernel
            .write_memory(pid, base + page * PAGE, &[stamp(page, 1); 8])
            .unwrap();
    }
    kernel
        .mprotect(pid, base + PAGE, 2 * PAGE, Prot::READ)
        .unwrap();
    check(kernel);
    for page in [1, 2] {
        let addr = base + page * PAGE;
        assert_eq!(
            kernel.write_memory(pid, addr, &[0]),
            Err(KernelError::ReadOnly(addr))
        );
        assert_eq!(peek(kernel, pid, addr), stamp(page, 1));
    }
    kernel
        .write_memory(pid, base + 3 * PAGE, &[stamp(3, 2); 8])
        .unwrap();
    // Unmapped pages in the range: refused, nothing changed.
    assert_eq!(
        kernel.mprotect(pid, base, 5 * PAGE, Prot::READ),
        Err(KernelError::BadMapping("range not wholly mapped"))
    );
    kernel.write_memory(pid, base, &[stamp(0, 2); 8]).unwrap();
    kernel
        .mprotect(pid, base + 2 * PAGE, PAGE, Prot::READ_WRITE)
        .unwrap();
    kernel
        .write_memory(pid, base + 2 * PAGE, &[stamp(2, 2); 8])
        .unwrap();
    check(kernel);
    // The read-only page's store made before the mprotect goes back too.
    kernel.munmap(pid, base, 4 * PAGE).unwrap();
    let expected = [stamp(0, 2), stamp(1, 1), stamp(2, 2), stamp(3, 2)];
    for (page, byte) in expected.into_iter().enumerate() {
        assert_eq!(
            server_bytes(&setup, page as u64 * PAGE, 8),
            vec![byte; 8],
            "page {page}"
        );
    }
    // A shared mapping of a file open for reading only may not become writable (EACCES);
    // a private one may.
    let fd = kernel.open(pid, "/n/a/file", OpenMode::READ).unwrap();
    let read_only = kernel
        .mmap(
            pid,
            MapRequest {
                fd: Some(fd),
                offset: 0,
                len: 2 * PAGE,
                shared: true,
                prot: Prot::READ,
                addr: None,
            },
        )
        .unwrap();
    assert_eq!(
        kernel.mprotect(pid, read_only + PAGE, PAGE, Prot::READ_WRITE),
        Err(KernelError::BadMapping(
            "shared writable mapping of a file not open for writing"
        ))
    );
    assert_eq!(
        kernel.write_memory(pid, read_only + PAGE, &[0]),
        Err(KernelError::ReadOnly(read_only + PAGE))
    );
    let private = kernel
        .mmap(
            pid,
            MapRequest {
                fd: Some(fd),
                offset: 0,
                len: 2 * PAGE,
                shared: false,
                prot: Prot::READ,
                addr: None,
            },
        )
        .unwrap();
    kernel
        .mprotect(pid, private + PAGE, PAGE, Prot::READ_WRITE)
        .unwrap();
    kernel
        .write_memory(pid, private + PAGE, &[0x77; 8])
        .unwrap();
    assert_eq!(peek(kernel, pid, private + PAGE), 0x77);
    assert_eq!(peek(kernel, pid, read_only + PAGE), stamp(1, 1));
    check(kernel);
}
