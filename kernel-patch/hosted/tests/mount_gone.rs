//! When a mount's last channel goes, vm forgets what it cached of the mount: the idle
//! image of a program that ran from it and its mount-cache files no longer hold pages nor
//! idle slots (nothing could hit them: mount and attach ids are never reused). A program
//! still running keeps its pages until it exits.

mod common;

use common::*;
use hosted::vm::PAGE_SIZE;
use hosted::{ForkFlags, MountFlags};

const PROGRAM: &str = "/n/ram/prog";

#[test]
fn the_last_channel_of_a_mount_takes_its_idle_image_and_cached_files() {
    the_last_channel_takes_the_mounts_caches(kernel());
}

/// The same with no close procs: the channels the close queue is given are dropped at
/// once (mnt queues their clunks), and that path forgets the mount's caches too.
#[test]
fn without_close_workers_the_last_channel_still_takes_the_mounts_caches() {
    let config = hosted::KernelConfig {
        max_close_workers: 0,
        ..hosted::KernelConfig::default()
    };
    the_last_channel_takes_the_mounts_caches(hosted::Kernel::new(config).expect("kernel"));
}

fn the_last_channel_takes_the_mounts_caches(kernel: hosted::Kernel) {
    let init = kernel.spawn();
    let mut server = Server::start();
    kernel
        .mount(init, server.transport(), "/n/ram", MountFlags::CACHE)
        .unwrap();
    copy_in(&kernel, init, PROGRAM, static_binary());
    copy_in(&kernel, init, "/n/ram/data", &vec![7u8; 3 * PAGE_SIZE]);
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(pid, PROGRAM, &["prog"]).unwrap();
    for page in program_pages(static_binary()) {
        let mut got = vec![0u8; PAGE_SIZE];
        kernel.read_memory(pid, page.addr, &mut got).unwrap();
    }
    kernel.exit(pid, "").unwrap();
    assert!(kernel.wait_closes(DEADLINE));
    let before = kernel.statistics().vm;
    assert_eq!(before.images_idle, 1, "the exited program's image is idle");
    assert!(before.idle_pages > 0);
    assert_eq!(
        before.mcache_files, 1,
        "the data file is in the mount cache"
    );

    kernel.unmount(init, "/n/ram").unwrap();
    assert!(server.exits_cleanly(DEADLINE));
    let report = check(&kernel);
    assert_eq!(report.live_channels, 0);
    let after = kernel.statistics().vm;
    assert_eq!(
        (after.images_idle, after.idle_pages, after.cached_pages),
        (0, 0, 0),
        "the image of a mount that is gone stayed cached"
    );
    assert_eq!((after.mcache_files, after.mcache_pages), (0, 0));
    assert_eq!(after.free_pages, after.pool_pages, "every page is free");
}

#[test]
fn a_program_still_running_keeps_its_pages_until_it_exits() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, PROGRAM, static_binary());
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(pid, PROGRAM, &["prog"]).unwrap();
    let pages = program_pages(static_binary());
    let (first, rest) = pages.split_at(pages.len() / 2);
    let mut got = vec![0u8; PAGE_SIZE];
    for page in first {
        kernel.read_memory(pid, page.addr, &mut got).unwrap();
        assert!(got == page.bytes);
    }
    kernel.unmount(init, "/n/ram").unwrap();
    check(&kernel);
    assert!(
        server.running(),
        "the running program's image holds a channel"
    );
    assert_eq!(kernel.statistics().vm.images_active, 1);
    for page in rest {
        kernel.read_memory(pid, page.addr, &mut got).unwrap();
        assert!(got == page.bytes, "page at {:#x} differs", page.addr);
    }
    kernel.exit(pid, "").unwrap();
    assert!(server.exits_cleanly(DEADLINE));
    check(&kernel);
    let after = kernel.statistics().vm;
    assert_eq!(
        (after.images_active, after.images_idle, after.cached_pages),
        (0, 0, 0)
    );
}

/// The same over 9P2000.L, where the attach's own fid counts as a channel of the mount
/// until the attach's last channel goes.
#[test]
fn a_9p2000_l_mount_forgets_its_image_too() {
    use hosted::mnt::ninep::Dialect;
    use hosted::MountSpec;
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let mut spec = MountSpec::default();
    spec.options.dialect = Dialect::L;
    kernel
        .mount_with(init, server.transport(), "/n/ram", MountFlags::CACHE, &spec)
        .unwrap();
    copy_in(&kernel, init, PROGRAM, static_binary());
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(pid, PROGRAM, &["prog"]).unwrap();
    let mut got = vec![0u8; PAGE_SIZE];
    for page in program_pages(static_binary()) {
        kernel.read_memory(pid, page.addr, &mut got).unwrap();
    }
    kernel.exit(pid, "").unwrap();
    assert!(kernel.wait_closes(DEADLINE));
    assert_eq!(kernel.statistics().vm.images_idle, 1);
    kernel.unmount(init, "/n/ram").unwrap();
    assert!(server.exits_cleanly(DEADLINE));
    check(&kernel);
    let after = kernel.statistics().vm;
    assert_eq!(
        (after.images_idle, after.cached_pages, after.mcache_files),
        (0, 0, 0)
    );
}

/// A mount hung up by force (its server given up) is closed while channels of it live: a
/// later channel release must not forget what a program still running from it has cached,
/// since no page of it can be read again.
#[test]
fn a_hung_up_mount_with_live_channels_keeps_its_cached_pages() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let info = server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, PROGRAM, static_binary());
    // A first run caches every page of the program and exits.
    let first = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(first, PROGRAM, &["prog"]).unwrap();
    let pages = program_pages(static_binary());
    let mut got = vec![0u8; PAGE_SIZE];
    for page in &pages {
        kernel.read_memory(first, page.addr, &mut got).unwrap();
    }
    kernel.exit(first, "").unwrap();
    // A second run maps nothing yet: every page it will touch is cached at ref 0.
    let second = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(second, PROGRAM, &["prog"]).unwrap();
    let fd = kernel
        .open(init, "/n/ram/prog", hosted::mnt::OpenMode::READ)
        .unwrap();
    info.mount.hangup();
    // A channel of the hung-up mount goes while the program's image still holds its own.
    let _ = kernel.close(init, fd);
    assert!(kernel.wait_closes(DEADLINE));
    for page in &pages {
        kernel
            .read_memory(second, page.addr, &mut got)
            .expect("a cached page of a running program was forgotten");
        assert!(got == page.bytes, "page at {:#x}", page.addr);
    }
    kernel.exit(second, "").unwrap();
    check(&kernel);
}
