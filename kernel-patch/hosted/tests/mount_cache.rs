//! The mount cache through the kernel, against real ramfs servers: a second read sends no
//! Tread, another client's change is read after the next open, our own writes keep the
//! cache valid, truncation and create wipe, append-only files and mounts without the cache
//! flag are never cached, a write of unknown outcome wipes, and exec takes a file out of the
//! mount cache.

mod common;

use std::sync::mpsc;

use common::*;
use hosted::inject::{FlushPolicy, Hold};
use hosted::mnt::ninep::{dm, mtype};
use hosted::mnt::{MountOptions, OpenMode};
use hosted::vm::{Access, PAGE_SIZE};
use hosted::{ForkFlags, Kernel, MountFlags, MountInfo, MountSpec, Pid};

/// `len` bytes that differ for every `seed`.
fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(37))
        .collect()
}

/// Opens `path`, reads it to its end and closes it; returns the bytes and the Treads
/// `mount` sent meanwhile.
fn read_file(kernel: &Kernel, pid: Pid, mount: &MountInfo, path: &str) -> (Vec<u8>, u64) {
    let fd = kernel.open(pid, path, OpenMode::READ).expect("open");
    let before = mount.mount.stats().treads();
    let data = read_to_end(kernel, pid, fd);
    let treads = mount.mount.stats().treads() - before;
    kernel.close(pid, fd).expect("close");
    (data, treads)
}

/// A file written through the cached mount and then dropped from the cache, so that its
/// first read really goes to the server.
fn cached_file_on_server(kernel: &Kernel, pid: Pid, path: &str, contents: &[u8]) {
    copy_in(kernel, pid, path, contents);
    kernel.reclaim(usize::MAX);
    assert_eq!(kernel.statistics().vm.mcache_pages, 0);
}

#[test]
fn a_second_read_of_a_cached_file_sends_no_tread() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let mount = kernel
        .mount(init, server.transport(), "/n/ram", MountFlags::CACHE)
        .unwrap();
    assert!(kernel.has_mount_cache());
    let contents = bytes(1, 5 * PAGE_SIZE + 123);
    cached_file_on_server(&kernel, init, "/n/ram/file", &contents);

    let (first, first_treads) = read_file(&kernel, init, &mount, "/n/ram/file");
    assert_eq!(first, contents);
    assert!(first_treads > 0);
    let stats = kernel.statistics().vm;
    assert_eq!(stats.mcache_files, 1);
    assert_eq!(stats.mcache_pages, 6);

    let (second, second_treads) = read_file(&kernel, init, &mount, "/n/ram/file");
    assert_eq!(second, contents);
    assert_eq!(second_treads, 0, "the second read went to the server");
    // Every read of the second pass, the end of file included, was a hit.
    assert!(kernel.statistics().vm.mcache_hits > 0);
    assert_eq!(kernel.statistics().vm.mcache_wipes, 0);

    // pread of a piece across a page boundary: no Tread either.
    let fd = kernel.open(init, "/n/ram/file", OpenMode::READ).unwrap();
    let before = mount.mount.stats().treads();
    let mut piece = vec![0u8; 300];
    let at = 2 * PAGE_SIZE - 100;
    assert_eq!(kernel.pread(init, fd, &mut piece, at as u64).unwrap(), 300);
    assert_eq!(piece, contents[at..at + 300]);
    assert_eq!(mount.mount.stats().treads(), before);
    kernel.close(init, fd).unwrap();
    check(&kernel);

    drop(mount);
    kernel.unmount(init, "/n/ram").unwrap();
    assert!(server.exits_cleanly(DEADLINE));
    check(&kernel);
}

#[test]
fn a_second_read_sends_no_tread_over_9p2000_l() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let spec = MountSpec {
        options: MountOptions {
            dialect: hosted::mnt::ninep::Dialect::L,
            ..MountOptions::default()
        },
        ..MountSpec::default()
    };
    let mount = kernel
        .mount_with(init, server.transport(), "/n/ram", MountFlags::CACHE, &spec)
        .unwrap();
    assert_eq!(mount.mount.dialect(), hosted::mnt::ninep::Dialect::L);
    let contents = bytes(2, 3 * PAGE_SIZE + 1);
    cached_file_on_server(&kernel, init, "/n/ram/file", &contents);
    let (first, first_treads) = read_file(&kernel, init, &mount, "/n/ram/file");
    let (second, second_treads) = read_file(&kernel, init, &mount, "/n/ram/file");
    assert_eq!(
        (first.as_slice(), second.as_slice()),
        (&contents[..], &contents[..])
    );
    assert!(first_treads > 0);
    assert_eq!(second_treads, 0);
    check(&kernel);
}

#[test]
fn a_change_by_another_client_is_read_after_the_next_open() {
    let kernel = kernel();
    let init = kernel.spawn();
    let server = ListeningServer::start();
    let cached = kernel
        .mount(init, server.connect(), "/n/cached", MountFlags::CACHE)
        .unwrap();
    // The other client: a second connection to the same tree, not cached.
    kernel
        .mount(init, server.connect(), "/n/other", MountFlags::REPLACE)
        .unwrap();
    let old = bytes(3, 2 * PAGE_SIZE + 10);
    copy_in(&kernel, init, "/n/other/file", &old);

    let (first, first_treads) = read_file(&kernel, init, &cached, "/n/cached/file");
    let (second, second_treads) = read_file(&kernel, init, &cached, "/n/cached/file");
    assert_eq!((first, second), (old.clone(), old.clone()));
    assert!(first_treads > 0);
    assert_eq!(second_treads, 0);

    // Same length, new bytes: only qid.vers tells.
    let new = bytes(4, old.len());
    let fd = kernel.open(init, "/n/other/file", OpenMode::WRITE).unwrap();
    assert_eq!(kernel.write(init, fd, &new).unwrap(), new.len());
    kernel.close(init, fd).unwrap();

    let wipes = kernel.statistics().vm.mcache_wipes;
    let (third, third_treads) = read_file(&kernel, init, &cached, "/n/cached/file");
    assert_eq!(third, new, "the cache served the old version");
    assert!(third_treads > 0);
    assert_eq!(kernel.statistics().vm.mcache_wipes, wipes + 1);
    let (fourth, fourth_treads) = read_file(&kernel, init, &cached, "/n/cached/file");
    assert_eq!((fourth, fourth_treads), (new, 0));
    check(&kernel);
}

#[test]
fn our_own_write_keeps_the_cache_valid() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let mount = kernel
        .mount(init, server.transport(), "/n/ram", MountFlags::CACHE)
        .unwrap();
    let mut contents = bytes(5, 3 * PAGE_SIZE);
    cached_file_on_server(&kernel, init, "/n/ram/file", &contents);
    read_file(&kernel, init, &mount, "/n/ram/file");

    let fd = kernel.open(init, "/n/ram/file", OpenMode::RDWR).unwrap();
    let ours = b"our own bytes, across a page boundary";
    let at = PAGE_SIZE - 10;
    assert_eq!(
        kernel.pwrite(init, fd, ours, at as u64).unwrap(),
        ours.len()
    );
    contents[at..at + ours.len()].copy_from_slice(ours);
    // And past the end: the file grows, in the cache too.
    let tail = b"appended by us";
    let end = contents.len() as u64;
    assert_eq!(kernel.pwrite(init, fd, tail, end).unwrap(), tail.len());
    contents.extend_from_slice(tail);
    let before = mount.mount.stats().treads();
    let got = read_to_end(&kernel, init, fd);
    assert_eq!(got, contents);
    assert_eq!(
        mount.mount.stats().treads(),
        before,
        "our bytes came from the server"
    );
    kernel.close(init, fd).unwrap();

    // The server counted one version a write, as the cache did: the next open keeps it.
    let (again, treads) = read_file(&kernel, init, &mount, "/n/ram/file");
    assert_eq!((again, treads), (contents, 0));
    assert_eq!(kernel.statistics().vm.mcache_wipes, 0);
    check(&kernel);
}

#[test]
fn truncate_truncating_open_and_create_wipe() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let mount = kernel
        .mount(init, server.transport(), "/n/ram", MountFlags::CACHE)
        .unwrap();
    let contents = bytes(6, 2 * PAGE_SIZE + 5);
    cached_file_on_server(&kernel, init, "/n/ram/file", &contents);
    read_file(&kernel, init, &mount, "/n/ram/file");
    assert_eq!(kernel.statistics().vm.mcache_pages, 3);

    // truncate: wiped, relabelled with the server's version and length; an open file
    // sees the new length.
    let fd = kernel.open(init, "/n/ram/file", OpenMode::READ).unwrap();
    let wipes = kernel.statistics().vm.mcache_wipes;
    kernel.truncate(init, "/n/ram/file", 10).unwrap();
    assert_eq!(kernel.statistics().vm.mcache_wipes, wipes + 1);
    assert_eq!(kernel.statistics().vm.mcache_pages, 0);
    assert_eq!(read_to_end(&kernel, init, fd), contents[..10]);
    kernel.close(init, fd).unwrap();
    assert_eq!(kernel.stat(init, "/n/ram/file").unwrap().length, 10);
    // The relabelled cache is valid at the next open.
    let (short, treads) = read_file(&kernel, init, &mount, "/n/ram/file");
    assert_eq!((short.as_slice(), treads), (&contents[..10], 0));

    // A truncating open wipes; the file reads empty without asking.
    let fd = kernel
        .open(init, "/n/ram/file", OpenMode::RDWR.truncating())
        .unwrap();
    assert_eq!(kernel.statistics().vm.mcache_wipes, wipes + 2);
    let before = mount.mount.stats().treads();
    assert!(read_to_end(&kernel, init, fd).is_empty());
    assert_eq!(mount.mount.stats().treads(), before);
    kernel.close(init, fd).unwrap();

    // remove forgets the file; a create of the same name starts a new, empty entry.
    kernel.remove(init, "/n/ram/file").unwrap();
    assert_eq!(kernel.statistics().vm.mcache_files, 0);
    let fresh = bytes(7, PAGE_SIZE + 1);
    copy_in(&kernel, init, "/n/ram/file", &fresh);
    let (got, treads) = read_file(&kernel, init, &mount, "/n/ram/file");
    assert_eq!((got, treads), (fresh, 0), "the create's writes are cached");
    assert_eq!(kernel.statistics().vm.mcache_files, 1);
    check(&kernel);
}

#[test]
fn append_only_files_are_never_cached() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let mount = kernel
        .mount(init, server.transport(), "/n/ram", MountFlags::CACHE)
        .unwrap();
    let fd = kernel
        .create(init, "/n/ram/log", dm::APPEND | 0o644, OpenMode::WRITE)
        .unwrap();
    let contents = bytes(8, PAGE_SIZE + 50);
    assert_eq!(kernel.write(init, fd, &contents).unwrap(), contents.len());
    kernel.close(init, fd).unwrap();
    for _ in 0..2 {
        let (got, treads) = read_file(&kernel, init, &mount, "/n/ram/log");
        assert_eq!(got, contents);
        assert!(treads > 0, "an append-only file was served from the cache");
    }
    let stats = kernel.statistics().vm;
    assert_eq!((stats.mcache_files, stats.mcache_pages), (0, 0));
    check(&kernel);
}

#[test]
fn a_mount_without_the_cache_flag_is_never_cached() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let mount = server.mount(&kernel, init, "/n/ram");
    let contents = bytes(9, 2 * PAGE_SIZE);
    copy_in(&kernel, init, "/n/ram/file", &contents);
    for _ in 0..2 {
        let (got, treads) = read_file(&kernel, init, &mount, "/n/ram/file");
        assert_eq!(got, contents);
        assert!(treads > 0);
    }
    let stats = kernel.statistics().vm;
    assert_eq!(
        (stats.mcache_files, stats.mcache_pages, stats.mcache_hits),
        (0, 0, 0)
    );
    check(&kernel);
}

#[test]
fn exec_of_a_file_read_through_the_cache_takes_it_out_of_the_mount_cache() {
    let binary = static_binary();
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let mount = kernel
        .mount(init, server.transport(), "/n/ram", MountFlags::CACHE)
        .unwrap();
    cached_file_on_server(&kernel, init, "/n/ram/prog", binary);
    let (got, _) = read_file(&kernel, init, &mount, "/n/ram/prog");
    assert!(got == binary);
    let stats = kernel.statistics().vm;
    assert_eq!(stats.mcache_files, 1);
    assert!(stats.mcache_pages > 0);
    check(&kernel);

    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(pid, "/n/ram/prog", &["prog"]).unwrap();
    let stats = kernel.statistics().vm;
    assert_eq!(
        (stats.mcache_files, stats.mcache_pages),
        (0, 0),
        "the file stayed in the mount cache after exec"
    );
    for page in program_pages(binary) {
        let mut bytes = vec![0u8; PAGE_SIZE];
        kernel.read_memory(pid, page.addr, &mut bytes).unwrap();
        assert!(bytes == page.bytes, "page at {:#x} is wrong", page.addr);
    }
    kernel
        .touch(pid, program_pages(binary)[0].addr, Access::Read)
        .unwrap();
    check(&kernel);

    // A read of the version the image holds is not cached twice.
    let (again, treads) = read_file(&kernel, init, &mount, "/n/ram/prog");
    assert!(again == binary);
    assert!(treads > 0);
    assert_eq!(kernel.statistics().vm.mcache_files, 0);
    kernel.exit(pid, "").unwrap();
    check(&kernel);
}

#[test]
fn a_flushed_write_wipes_the_cache() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let mount = kernel
        .mount(init, server.transport(), "/n/ram", MountFlags::CACHE)
        .unwrap();
    let contents = bytes(10, 2 * PAGE_SIZE);
    copy_in(&kernel, init, "/n/ram/file", &contents);
    let fd = kernel.open(init, "/n/ram/file", OpenMode::RDWR).unwrap();
    // The server never sees the write; whether it wrote is unknown to the kernel.
    server.wire.hold(Hold {
        mtype: mtype::TWRITE,
        count: 1,
        flush: FlushPolicy::Answer,
    });
    let (done, result) = mpsc::channel();
    {
        let kernel = kernel.clone();
        std::thread::spawn(move || done.send(kernel.pwrite(init, fd, b"lost", 0)));
    }
    assert!(server.wire.wait_held(1, DEADLINE));
    kernel.interrupt(init).unwrap();
    let err = result
        .recv_timeout(DEADLINE)
        .expect("write never returned")
        .unwrap_err();
    assert!(err.is_interrupted(), "{err}");
    let stats = kernel.statistics().vm;
    assert_eq!((stats.mcache_pages, stats.mcache_wipes), (0, 1));
    // The next read asks the server, which has the old bytes.
    let before = mount.mount.stats().treads();
    assert_eq!(read_to_end(&kernel, init, fd), contents);
    assert!(mount.mount.stats().treads() > before);
    kernel.close(init, fd).unwrap();
    check(&kernel);
}

#[test]
fn a_read_cut_short_by_a_note_keeps_the_note_for_the_next_call() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let mount = kernel
        .mount(init, server.transport(), "/n/ram", MountFlags::CACHE)
        .unwrap();
    let contents = bytes(11, 3 * PAGE_SIZE);
    cached_file_on_server(&kernel, init, "/n/ram/file", &contents);
    let fd = kernel.open(init, "/n/ram/file", OpenMode::READ).unwrap();
    // The first page comes into the cache; the rest stays on the server.
    let mut page = vec![0u8; PAGE_SIZE];
    assert_eq!(kernel.pread(init, fd, &mut page, 0).unwrap(), PAGE_SIZE);
    // A read of two pages: the first from the cache, the second held on the wire and
    // interrupted. The cached part comes back, as a short read.
    server.wire.hold(Hold {
        mtype: mtype::TREAD,
        count: 1,
        flush: FlushPolicy::Answer,
    });
    let (done, result) = mpsc::channel();
    {
        let kernel = kernel.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 2 * PAGE_SIZE];
            done.send(kernel.pread(init, fd, &mut buf, 0))
        });
    }
    assert!(server.wire.wait_held(1, DEADLINE));
    kernel.interrupt(init).unwrap();
    let short = result.recv_timeout(DEADLINE).expect("read never returned");
    assert_eq!(short.unwrap(), PAGE_SIZE);
    // The note was not lost with the short count: the next call that would ask the server
    // fails, and sends nothing.
    let before = mount.mount.stats().treads();
    let err = kernel
        .pread(init, fd, &mut page, PAGE_SIZE as u64)
        .unwrap_err();
    assert!(err.is_interrupted(), "{err}");
    assert_eq!(mount.mount.stats().treads(), before);
    // After it, reading goes on.
    assert_eq!(
        kernel.pread(init, fd, &mut page, PAGE_SIZE as u64).unwrap(),
        PAGE_SIZE
    );
    assert_eq!(&page[..], &contents[PAGE_SIZE..2 * PAGE_SIZE]);
    kernel.close(init, fd).unwrap();
    check(&kernel);
}

/// A kernel whose mount cache has room for one file.
fn one_file_kernel() -> Kernel {
    Kernel::new(hosted::KernelConfig {
        mount_cache: hosted::vm::MountCacheConfig {
            max_files: 1,
            ..hosted::vm::MountCacheConfig::default()
        },
        ..hosted::KernelConfig::default()
    })
    .expect("kernel")
}

/// The hardening issue's stale read after our own write: a file's entry is evicted while a
/// descriptor `a` of it stays open, a second open `b` makes and fills a new entry, and a
/// write through `a` must reach that entry: `b` reads our bytes.
#[test]
fn a_write_through_a_descriptor_whose_entry_was_evicted_is_read_by_a_later_open() {
    let kernel = one_file_kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let mount = kernel
        .mount(init, server.transport(), "/n/ram", MountFlags::CACHE)
        .unwrap();
    let contents = bytes(11, 2 * PAGE_SIZE);
    copy_in(&kernel, init, "/n/ram/f", &contents);
    copy_in(&kernel, init, "/n/ram/g", &bytes(12, 100));

    let a = kernel.open(init, "/n/ram/f", OpenMode::RDWR).unwrap();
    let g = kernel.open(init, "/n/ram/g", OpenMode::READ).unwrap();
    let b = kernel.open(init, "/n/ram/f", OpenMode::READ).unwrap();
    assert_eq!(kernel.statistics().vm.mcache_files, 1);
    let mut old = vec![0u8; 8];
    assert_eq!(kernel.pread(init, b, &mut old, 0).unwrap(), 8);
    assert_eq!(old, contents[..8]);
    assert_eq!(kernel.pwrite(init, a, b"NEWBYTES", 0).unwrap(), 8);
    let mut got = vec![0u8; 8];
    assert_eq!(kernel.pread(init, b, &mut got, 0).unwrap(), 8);
    assert_eq!(&got, b"NEWBYTES", "b read the bytes from before our write");
    for fd in [a, g, b] {
        kernel.close(init, fd).unwrap();
    }
    check(&kernel);
    drop(mount);
    kernel.unmount(init, "/n/ram").unwrap();
    assert!(server.exits_cleanly(DEADLINE));
}

/// `truncate` by path is no open: a file that was never opened through the cached mount
/// gets no entry from it, while a file with an entry has it relabelled.
#[test]
fn truncate_of_a_file_never_opened_cached_makes_no_entry() {
    let kernel = kernel();
    let init = kernel.spawn();
    let server = ListeningServer::start();
    let cached = kernel
        .mount(init, server.connect(), "/n/cached", MountFlags::CACHE)
        .unwrap();
    kernel
        .mount(init, server.connect(), "/n/other", MountFlags::REPLACE)
        .unwrap();
    let contents = bytes(13, PAGE_SIZE + 10);
    copy_in(&kernel, init, "/n/other/file", &contents);
    assert_eq!(kernel.statistics().vm.mcache_files, 0);
    kernel.truncate(init, "/n/cached/file", 10).unwrap();
    assert_eq!(
        kernel.statistics().vm.mcache_files,
        0,
        "truncate made an entry"
    );
    // Opened cached, the file has an entry, and a truncate relabels it.
    let (got, _) = read_file(&kernel, init, &cached, "/n/cached/file");
    assert_eq!(got, contents[..10]);
    kernel.truncate(init, "/n/cached/file", 4).unwrap();
    let (got, treads) = read_file(&kernel, init, &cached, "/n/cached/file");
    assert_eq!((got.as_slice(), treads), (&contents[..4], 1));
    assert_eq!(kernel.statistics().vm.mcache_files, 1);
    check(&kernel);
}

/// A descriptor opened to be removed at close is not cached, yet its writes must not leave
/// stale bytes in the entry a later open of the file makes: they forget it.
#[test]
fn a_write_through_a_remove_on_close_descriptor_is_read_by_a_later_open() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    kernel
        .mount(init, server.transport(), "/n/ram", MountFlags::CACHE)
        .unwrap();
    let contents = bytes(14, PAGE_SIZE + 7);
    copy_in(&kernel, init, "/n/ram/f", &contents);
    let mode = OpenMode {
        remove_on_close: true,
        ..OpenMode::RDWR
    };
    let a = kernel.open(init, "/n/ram/f", mode).unwrap();
    let b = kernel.open(init, "/n/ram/f", OpenMode::READ).unwrap();
    assert_eq!(kernel.statistics().vm.mcache_files, 1);
    let mut old = vec![0u8; 8];
    assert_eq!(kernel.pread(init, b, &mut old, 0).unwrap(), 8);
    assert_eq!(old, contents[..8]);
    assert_eq!(kernel.pwrite(init, a, b"NEWBYTES", 0).unwrap(), 8);
    let mut got = vec![0u8; 8];
    assert_eq!(kernel.pread(init, b, &mut got, 0).unwrap(), 8);
    assert_eq!(&got, b"NEWBYTES", "b read the bytes from before a's write");
    assert_eq!(kernel.statistics().vm.mcache_files, 0);
    kernel.close(init, b).unwrap();
    kernel.close(init, a).unwrap();
    assert!(kernel.stat(init, "/n/ram/f").is_err(), "removed at close");
    check(&kernel);
}
