//! Moving the pages of images' hash chains to other frames (`Vm::migrate`, `Vm::vacate`):
//! an idle executable image's pages and mount-cache pages move, keep their bytes (each
//! byte is a function of its file offset) and are found again by the next exec or read;
//! a page an attached segment maps refuses with `SegmentMapped`, and a vacate with one in
//! its range moves nothing; allocation failure leaves the invariants and the bytes intact.

mod common;

use common::*;
use vm::testkit::{pattern_byte, HeapFrames};
use vm::{Access, Frame, MigrateError, MountCacheConfig, OpenKind, Unmovable, Vm, PAGE_SIZE};

/// A world whose zero frame is the kernel's (vm's own would be in a range of every frame
/// vm was given, and vacate refuses it), with a mount cache.
fn vacate_world() -> World {
    let config = small_config();
    let frames = HeapFrames::with_zero_frame(config.max_pages + 8);
    let vm =
        Vm::with_mount_cache(frames.allocator(), config, MountCacheConfig::default()).expect("vm");
    World { vm, frames }
}

/// Every frame vm was given so far (HeapFrames hands out 0, 1, 2, ...).
fn every_frame(world: &World) -> core::ops::Range<u64> {
    0..world.frames.stats().allocated
}

/// The text frames of a process, read-faulted.
fn text_frames(process: &Process) -> Vec<Frame> {
    fault_all(process.text(), Access::Read)
}

/// Makes `program`'s image idle with its text cached: an exec that reads every page, then
/// the process goes.
fn idle_image(world: &World, program: &Program) -> Vec<Frame> {
    let process = exec(world, program);
    verify_process(world, &process);
    let frames = text_frames(&process);
    drop(process);
    world.vm.run_parked_closes();
    assert_eq!(world.vm.statistics().images_idle, 1);
    frames
}

#[test]
fn an_idle_images_pages_move_and_the_next_exec_reads_them_from_the_cache() {
    let world = vacate_world();
    let program = program(ident(1, 40, 0), 4 * PAGE + 100, 2 * PAGE, PAGE);
    let old = idle_image(&world, &program);
    let cached = world.vm.statistics().cached_pages;
    assert!(cached >= 4, "{cached}");
    // One page by migrate, then every frame by vacate.
    let moved_to = world
        .vm
        .migrate(old[1])
        .expect("an idle image's page moves");
    assert_ne!(moved_to, old[1]);
    check(&world, &[]);
    let range = every_frame(&world);
    world.frames.reserve(range.clone());
    let done = world.vm.vacate(range.clone()).expect("vacate");
    assert_eq!(done.moved, cached, "every cached page moved, nothing else");
    assert_eq!(world.vm.statistics().migrations, cached + 1);
    assert_eq!(
        world.frames.reserved_free(),
        range.end as usize,
        "every frame of the range is back with the kernel"
    );
    check(&world, &[]);
    let reads = program.file.counts().reads;
    let again = exec(&world, &program);
    verify_process(&world, &again);
    for frame in text_frames(&again) {
        assert!(
            !range.contains(&frame.0),
            "{frame:?} moved out of the range"
        );
    }
    assert_eq!(program.file.counts().reads, reads, "all from the cache");
    check(&world, &again.refs());
}

#[test]
fn a_page_a_segment_maps_refuses_and_a_vacate_over_it_moves_nothing() {
    let world = vacate_world();
    let idle = program(ident(1, 41, 0), 3 * PAGE, PAGE, 0);
    let running = program(ident(1, 42, 0), 3 * PAGE, PAGE, 0);
    let idle_frames = idle_image(&world, &idle);
    let process = exec(&world, &running);
    let mapped = text_frames(&process);
    assert_eq!(
        world.vm.migrate(mapped[0]),
        Err(MigrateError {
            frame: mapped[0],
            reason: Unmovable::SegmentMapped
        })
    );
    let range = every_frame(&world);
    assert!(idle_frames.iter().all(|frame| range.contains(&frame.0)));
    let err = world.vm.vacate(range).unwrap_err();
    assert!(
        matches!(
            err.reason,
            Unmovable::SegmentMapped | Unmovable::NoReverseMap
        ),
        "{err:?}"
    );
    assert_eq!(world.vm.statistics().migrations, 0, "nothing moved");
    check(&world, &process.refs());
    // The running process's pages are as they were, and so are the idle image's.
    assert_eq!(text_frames(&process), mapped);
    verify_process(&world, &process);
    drop(process);
    world.vm.run_parked_closes();
    check(&world, &[]);
    let again = exec(&world, &idle);
    assert_eq!(text_frames(&again), idle_frames, "the idle pages stayed");
    verify_process(&world, &again);
    check(&world, &again.refs());
}

/// Opens a mount-cache file of `data`, fills every page of it, and returns its handle.
fn cached_file(world: &World, path: u64, data: &[u8]) -> vm::CachedFile {
    let file = world.vm.mount_cache().open(
        ident(7, path, 0),
        data.len() as u64,
        OpenKind::Existing,
        false,
    );
    assert!(file.is_cached());
    let (bytes, hit) = read_through(&file, data, 0, data.len());
    assert_eq!((bytes.as_slice(), hit), (data, 0));
    file
}

/// A file whose every byte is its pattern byte at its offset (so each page is stamped with
/// its index).
fn stamped(path: u64, len: usize) -> Vec<u8> {
    let identity = ident(7, path, 0);
    (0..len as u64)
        .map(|offset| pattern_byte(&identity, offset))
        .collect()
}

#[test]
fn mount_cache_pages_move_and_are_read_back_from_the_cache() {
    let world = vacate_world();
    let data = stamped(50, 3 * PAGE_SIZE + 123);
    let file = cached_file(&world, 50, &data);
    assert_eq!(world.vm.statistics().mcache_pages, 4);
    let range = every_frame(&world);
    world.frames.reserve(range.clone());
    let done = world.vm.vacate(range.clone()).expect("vacate");
    assert_eq!(done.moved, 4);
    assert_eq!(world.frames.reserved_free(), range.end as usize);
    check(&world, &[]);
    let mut buf = vec![0; data.len()];
    let hit = file.read(0, &mut buf);
    assert_eq!(hit.len, data.len(), "every byte from the cache");
    assert_eq!(buf, data);
    check(&world, &[]);
}

#[test]
fn allocation_failure_at_a_cached_pages_move_leaves_the_pages_and_invariants_intact() {
    let mut refused = 0;
    for nth in 0.. {
        let world = vacate_world();
        let program = program(ident(1, 43, 0), 2 * PAGE, PAGE, 0);
        idle_image(&world, &program);
        let data = stamped(51, 2 * PAGE_SIZE);
        let file = cached_file(&world, 51, &data);
        let range = every_frame(&world);
        world.frames.reserve(range.clone());
        world.frames.fail_allocation(nth);
        let result = world.vm.vacate(range);
        world.frames.never_fail();
        check(&world, &[]);
        let mut buf = vec![0; data.len()];
        let hit = file.read(0, &mut buf);
        assert_eq!((hit.len, &buf), (data.len(), &data), "nth {nth}");
        let process = exec(&world, &program);
        verify_process(&world, &process);
        check(&world, &process.refs());
        match result {
            Ok(done) => {
                assert!(done.moved >= 4, "{done:?}");
                break;
            }
            Err(MigrateError {
                reason: Unmovable::NoMemory,
                ..
            }) => refused += 1,
            Err(err) => panic!("nth {nth}: {err:?}"),
        }
    }
    assert!(refused >= 1, "{refused}");
}
