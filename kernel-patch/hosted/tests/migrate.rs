//! Moving frames against a real ramfs: a page migrated while a fork tree of 5 levels maps
//! it is seen at its new frame, with the same bytes, by every process; `vacate` empties a
//! range of frames or fails naming the frame and why, with nothing moved; an exited
//! program's idle image's pages and mount-cache pages move and are found again by the next
//! exec or read. Every page is stamped with its index, so a page swapped for another
//! cannot pass.

mod common;

use common::*;
use hosted::mnt::OpenMode;
use hosted::vm::{Access, Frame, MigrateError, Unmovable, PAGE_SIZE};
use hosted::{ForkFlags, Kernel, KernelError, MapRequest, MountFlags, NamespaceShare, Pid, Prot};

const PAGE: u64 = PAGE_SIZE as u64;
const PAGES: u64 = 4;

fn stamp(index: u64, generation: u8) -> u8 {
    (index as u8)
        .wrapping_mul(29)
        .wrapping_add(generation.wrapping_mul(83))
        | 1
}

fn share() -> ForkFlags {
    ForkFlags {
        namespace: NamespaceShare::Share,
    }
}

fn map_file(kernel: &Kernel, pid: Pid, fd: usize, shared: bool) -> u64 {
    kernel
        .mmap(
            pid,
            MapRequest {
                fd: Some(fd),
                offset: 0,
                len: PAGES * PAGE,
                shared,
                prot: Prot::READ_WRITE,
                addr: None,
            },
        )
        .expect("mmap")
}

fn page_of(kernel: &Kernel, pid: Pid, addr: u64) -> Vec<u8> {
    let mut page = vec![0; PAGE_SIZE];
    kernel.read_memory(pid, addr, &mut page).expect("load");
    page
}

/// A kernel with a stamped file on a real ramfs; init maps it shared and private, and
/// stores into private page 1 (generation 1); then a fork tree of 5 levels (each level
/// forks two, the first forks on). Returns the processes and the two bases.
fn fork_tree(kernel: &Kernel, server: &ListeningServer) -> (Vec<Pid>, u64, u64) {
    let init = kernel.spawn();
    kernel
        .mount(init, server.connect(), "/n/a", MountFlags::REPLACE)
        .expect("mount");
    let bytes: Vec<u8> = (0..PAGES * PAGE).map(|at| stamp(at / PAGE, 0)).collect();
    copy_in(kernel, init, "/n/a/file", &bytes);
    let fd = kernel.open(init, "/n/a/file", OpenMode::RDWR).unwrap();
    let shared = map_file(kernel, init, fd, true);
    let private = map_file(kernel, init, fd, false);
    kernel
        .write_memory(init, private + PAGE, &vec![stamp(1, 1); PAGE_SIZE])
        .unwrap();
    let mut procs = vec![init];
    let mut parent = init;
    for _level in 1..5 {
        let first = kernel.fork(parent, share()).unwrap();
        let second = kernel.fork(parent, share()).unwrap();
        procs.extend([first, second]);
        parent = first;
    }
    (procs, shared, private)
}

#[test]
fn a_page_migrated_while_a_fork_tree_of_5_levels_maps_it_is_seen_at_its_new_frame_by_every_process()
{
    let server = ListeningServer::start();
    let kernel = kernel();
    let (procs, shared, private) = fork_tree(&kernel, &server);
    assert_eq!(procs.len(), 9);
    let expect = |page: u64, generation: u8| vec![stamp(page, generation); PAGE_SIZE];
    // Every process maps every page (the private page 1 is one page, shared copy on write).
    for &pid in &procs {
        for page in 0..PAGES {
            assert_eq!(page_of(&kernel, pid, shared + page * PAGE), expect(page, 0));
        }
        assert_eq!(page_of(&kernel, pid, private + PAGE), expect(1, 1));
    }
    let old_shared = kernel
        .translation(procs[0], shared + 2 * PAGE)
        .unwrap()
        .unwrap();
    let old_private = kernel
        .translation(procs[0], private + PAGE)
        .unwrap()
        .unwrap();
    for &pid in &procs {
        assert_eq!(
            kernel.translation(pid, private + PAGE).unwrap(),
            Some(old_private)
        );
    }
    let new_shared = kernel.migrate(old_shared).expect("the shared page moves");
    let new_private = kernel.migrate(old_private).expect("the private page moves");
    assert_ne!(new_shared, old_shared);
    assert_ne!(new_private, old_private);
    // vm invalidated every process's translation of both pages.
    for &pid in &procs {
        assert_eq!(kernel.translation(pid, shared + 2 * PAGE).unwrap(), None);
        assert_eq!(kernel.translation(pid, private + PAGE).unwrap(), None);
    }
    check(&kernel);
    for &pid in &procs {
        assert_eq!(page_of(&kernel, pid, shared + 2 * PAGE), expect(2, 0));
        assert_eq!(page_of(&kernel, pid, private + PAGE), expect(1, 1));
        let seen = (
            kernel.translation(pid, shared + 2 * PAGE).unwrap(),
            kernel.translation(pid, private + PAGE).unwrap(),
        );
        assert_eq!(seen, (Some(new_shared), Some(new_private)), "process {pid}");
        // The neighbours did not move, and are still their own pages.
        assert_eq!(page_of(&kernel, pid, shared + 3 * PAGE), expect(3, 0));
    }
    assert_eq!(kernel.statistics().vm.migrations, 2);
    // A store through the moved shared page reaches every process and the server.
    kernel
        .write_memory(procs[8], shared + 2 * PAGE, &[0x5a; 8])
        .unwrap();
    for &pid in &procs {
        assert_eq!(page_of(&kernel, pid, shared + 2 * PAGE)[..8], [0x5a; 8]);
    }
    kernel.msync(procs[0], shared, PAGES * PAGE).unwrap();
    check(&kernel);
    for &pid in procs.iter().rev() {
        kernel.exit(pid, "").unwrap();
    }
    check(&kernel);
}

#[test]
fn vacate_empties_a_range_or_fails_naming_the_frame_and_moves_nothing() {
    let server = ListeningServer::start();
    let kernel = kernel();
    let (procs, shared, private) = fork_tree(&kernel, &server);
    for &pid in &procs {
        for page in 0..PAGES {
            page_of(&kernel, pid, shared + page * PAGE);
            page_of(&kernel, pid, private + page * PAGE);
        }
    }
    // A frame of a page with no reverse map: a text page a running program maps.
    let exec_pid = kernel.spawn();
    kernel
        .mount(exec_pid, server.connect(), "/n/a", MountFlags::REPLACE)
        .unwrap();
    copy_in(&kernel, exec_pid, "/n/a/prog", static_binary());
    let info = kernel.exec(exec_pid, "/n/a/prog", &["prog"]).expect("exec");
    let text = kernel
        .touch(exec_pid, info.entry, hosted::vm::Access::Read)
        .unwrap()
        .frame;
    let before = kernel.statistics().vm.migrations;
    let err = kernel.vacate(text.0..text.0 + 1).unwrap_err();
    assert_eq!(
        err,
        KernelError::Unmovable(MigrateError {
            frame: text,
            reason: Unmovable::SegmentMapped
        })
    );
    // The range of every frame the mappings use, with that text page in it: refused at
    // the check, nothing moved.
    let mut frames: Vec<Frame> = Vec::new();
    for page in 0..PAGES {
        frames.extend(kernel.translation(procs[0], shared + page * PAGE).unwrap());
        frames.extend(kernel.translation(procs[0], private + page * PAGE).unwrap());
    }
    // A private mapping maps the object's pages it has not copied: 5 pages in all.
    frames.sort();
    frames.dedup();
    assert_eq!(frames.len(), 5);
    let lo = frames.iter().chain([&text]).map(|f| f.0).min().unwrap();
    let hi = frames.iter().chain([&text]).map(|f| f.0).max().unwrap() + 1;
    assert!(matches!(
        kernel.vacate(lo..hi),
        Err(KernelError::Unmovable(MigrateError { .. }))
    ));
    assert_eq!(kernel.statistics().vm.migrations, before, "nothing moved");
    kernel.exit(exec_pid, "").unwrap();
    kernel.reclaim(usize::MAX);
    // Without the program (and the cache's idle pages reclaimed), the range empties.
    let lo = frames.iter().map(|f| f.0).min().unwrap();
    let hi = frames.iter().map(|f| f.0).max().unwrap() + 1;
    let done = kernel.vacate(lo..hi).expect("vacate");
    assert!(done.moved >= frames.len() as u64, "{done:?}");
    assert_eq!(kernel.frames().reserved_free() as u64, hi - lo);
    for &pid in &procs {
        for page in 0..PAGES {
            let at = shared + page * PAGE;
            assert_eq!(page_of(&kernel, pid, at), vec![stamp(page, 0); PAGE_SIZE]);
            let frame = kernel.translation(pid, at).unwrap().unwrap();
            assert!(!(lo..hi).contains(&frame.0), "moved out of the range");
        }
        assert_eq!(
            page_of(&kernel, pid, private + PAGE),
            vec![stamp(1, 1); PAGE_SIZE]
        );
    }
    check(&kernel);
    kernel.release_range();
    for &pid in procs.iter().rev() {
        kernel.exit(pid, "").unwrap();
    }
    check(&kernel);
}

/// Every page of the program's file bytes in `pid`, as it reads them, and its frame.
fn program_frames(kernel: &Kernel, pid: Pid, binary: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    for page in program_pages(binary) {
        let mut got = vec![0u8; PAGE_SIZE];
        kernel.read_memory(pid, page.addr, &mut got).unwrap();
        assert!(got == page.bytes, "page at {:#x} differs", page.addr);
        frames.push(kernel.touch(pid, page.addr, Access::Read).unwrap().frame);
    }
    frames
}

#[test]
fn an_exited_programs_idle_image_pages_move_and_the_next_exec_runs_the_same_bytes() {
    let server = ListeningServer::start();
    let kernel = kernel();
    let init = kernel.spawn();
    kernel
        .mount(init, server.connect(), "/n/a", MountFlags::REPLACE)
        .unwrap();
    let binary = static_binary();
    copy_in(&kernel, init, "/n/a/prog", binary);
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(pid, "/n/a/prog", &["prog"]).expect("exec");
    let old = program_frames(&kernel, pid, binary);
    kernel.exit(pid, "").unwrap();
    kernel.wait(init).unwrap();
    let stats = kernel.statistics().vm;
    assert_eq!(stats.images_idle, 1, "{stats:?}");
    assert!(stats.idle_pages > 0);
    let lo = old.iter().map(|frame| frame.0).min().unwrap();
    let hi = old.iter().map(|frame| frame.0).max().unwrap() + 1;
    let before = kernel.statistics().vm.migrations;
    let done = kernel
        .vacate(lo..hi)
        .expect("vacate of an idle image's pages");
    assert!(done.moved >= 1, "{done:?}");
    assert_eq!(kernel.statistics().vm.migrations - before, done.moved);
    check(&kernel);
    let again = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel
        .exec(again, "/n/a/prog", &["prog"])
        .expect("exec again");
    assert!(kernel.statistics().vm.attach_hits >= 1, "the idle image");
    for frame in program_frames(&kernel, again, binary) {
        assert!(
            !(lo..hi).contains(&frame.0),
            "{frame:?} in the vacated range"
        );
    }
    check(&kernel);
    kernel.release_range();
    kernel.exit(again, "").unwrap();
    kernel.wait(init).unwrap();
    check(&kernel);
}

#[test]
fn mount_cache_pages_move_and_are_read_back_without_a_tread() {
    let server = ListeningServer::start();
    let kernel = kernel();
    let init = kernel.spawn();
    let mount = kernel
        .mount(init, server.connect(), "/n/c", MountFlags::CACHE)
        .unwrap();
    let bytes: Vec<u8> = (0..PAGES * PAGE).map(|at| stamp(at / PAGE, 3)).collect();
    copy_in(&kernel, init, "/n/c/file", &bytes);
    let read = |what: &str| {
        let fd = kernel.open(init, "/n/c/file", OpenMode::READ).unwrap();
        let treads = mount.mount.stats().treads();
        let got = read_to_end(&kernel, init, fd);
        kernel.close(init, fd).unwrap();
        assert!(got == bytes, "{what}: the file's bytes");
        mount.mount.stats().treads() - treads
    };
    read("first read");
    assert_eq!(kernel.statistics().vm.mcache_pages, PAGES);
    assert_eq!(read("cached"), 0, "the cache answers");
    // HostFrames hands out its lowest frames first: every frame ever used is below the
    // peak, and nothing but the mount cache holds vm pages now.
    let peak = kernel.frames().stats().peak;
    let done = kernel.vacate(0..peak).expect("vacate of mount-cache pages");
    assert_eq!(done.moved, PAGES, "{done:?}");
    check(&kernel);
    assert_eq!(read("after the move"), 0, "still cached, same bytes");
    check(&kernel);
    kernel.release_range();
    drop(mount);
    check(&kernel);
}
