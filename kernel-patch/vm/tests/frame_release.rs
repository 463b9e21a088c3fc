//! vm gives frames back to the kernel: free pages past `Config::max_free_pages` when
//! segments go away, and anything free or reclaimable on `Vm::shrink`; running out of its
//! pool is an error, never a panic. The test kit's frame allocator counts the frames vm
//! holds (`outstanding`), the zero page's among them: vm allocates it as it is created and
//! keeps it till the instance goes (`ZERO_FRAME`), whatever it gives back. The mount
//! cache's wipes, forgets, relabels and evictions give the frames of the pages they free
//! back at once too.

mod common;

use common::*;
use vm::{
    Access, CachedFile, Config, FaultError, FileIdentity, MountCacheConfig, OpenKind, SegmentKind,
};

/// The frame of vm's zero page, held from the vm's creation to its end.
const ZERO_FRAME: u64 = 1;

fn config(max_free_pages: u32) -> Config {
    Config {
        max_pages: 16,
        max_images: 4,
        max_idle_images: 4,
        reclaim_batch: 4,
        max_free_pages,
    }
}

#[test]
fn free_pages_past_the_bound_go_back_when_a_segment_goes() {
    let world = world(config(2));
    let stack = world
        .vm
        .zero_segment(SegmentKind::Stack, STACK_VA, 10 * PAGE)
        .expect("stack");
    fault_all(&stack, Access::Write);
    assert_eq!(world.frames.stats().outstanding(), 10 + ZERO_FRAME);
    drop(stack);
    // Ten pages freed; two stay for the next faults, eight went back.
    assert_eq!(world.frames.stats().outstanding(), 2 + ZERO_FRAME);
    let stats = world.vm.statistics();
    assert_eq!((stats.free_pages, stats.pool_pages), (2, 2));
    assert_eq!(stats.frames_released, 8);
    check(&world, &[]);
}

#[test]
fn shrink_gives_back_free_and_reclaimable_frames_and_faults_bind_new_ones() {
    let world = world(config(16));
    let program = program(ident(1, 70, 0), 3 * PAGE, PAGE, 0);
    let process = exec(&world, &program);
    verify_process(&world, &process);
    let stack = world
        .vm
        .zero_segment(SegmentKind::Stack, STACK_VA, 4 * PAGE)
        .expect("stack");
    fault_all(&stack, Access::Write);
    drop(stack);
    drop(process);
    // Four free pages (the stack's) and the idle image's cached pages, all still bound.
    let held = world.frames.stats().outstanding();
    assert!(held >= 4 + 3 + ZERO_FRAME, "{held}");
    assert_eq!(world.vm.shrink(2), 2, "free pages first");
    assert_eq!(world.frames.stats().outstanding(), held - 2);
    assert_eq!(
        world.vm.shrink(usize::MAX) as u64,
        held - 2 - ZERO_FRAME,
        "all but the zero page's"
    );
    assert_eq!(
        world.frames.stats().outstanding(),
        ZERO_FRAME,
        "every frame went back but the zero page's"
    );
    assert_eq!(world.vm.statistics().cached_pages, 0);
    check(&world, &[]);

    // The entries are unbound again: the next exec faults in new frames, the right bytes.
    let again = exec(&world, &program);
    verify_process(&world, &again);
    assert!(world.frames.stats().outstanding() > 0);
    check(&world, &again.refs());
}

#[test]
fn an_exhausted_pool_fails_the_fault_and_recovers() {
    let world = world(config(0));
    let pages = u64::from(world.vm.config().max_pages);
    let stack = world
        .vm
        .zero_segment(SegmentKind::Stack, STACK_VA, (pages + 1) * PAGE)
        .expect("stack");
    for page in 0..pages {
        stack
            .fault(STACK_VA + page * PAGE, Access::Write)
            .expect("a page of the pool");
    }
    // Every page is mapped and nothing can be reclaimed: an error the kernel turns into a
    // segmentation fault.
    assert_eq!(
        stack.fault(STACK_VA + pages * PAGE, Access::Write),
        Err(FaultError::NoMemory)
    );
    check(&world, &[&stack]);
    drop(stack);
    assert_eq!(
        world.frames.stats().outstanding(),
        ZERO_FRAME,
        "max_free_pages 0 keeps none"
    );
    let stack = world
        .vm
        .zero_segment(SegmentKind::Stack, STACK_VA, PAGE)
        .expect("stack");
    stack
        .fault(STACK_VA, Access::Write)
        .expect("after the exhaustion");
    check(&world, &[&stack]);
}

/// Pages of the mount-cache file the next test fills.
const CACHED_PAGES: u64 = 10;

/// Each way the mount cache frees a file's pages without a fault, a segment drop or a
/// reclaim of vm's: the frames past `max_free_pages` must go back before it returns.
#[test]
fn mount_cache_operations_give_the_frames_they_free_back_at_once() {
    type Operation = fn(&World, &CachedFile, FileIdentity);
    let operations: [(&str, Operation); 8] = [
        ("a wipe", |_, file, _| file.wipe()),
        ("a forget", |world, _, identity| {
            assert!(world.vm.mount_cache().forget(identity));
        }),
        ("a new version at open", |world, _, identity| {
            let newer = FileIdentity {
                version: identity.version + 1,
                ..identity
            };
            let reopened =
                world
                    .vm
                    .mount_cache()
                    .open(newer, CACHED_PAGES * PAGE, OpenKind::Existing, false);
            assert!(reopened.is_cached());
        }),
        ("a length change", |_, file, identity| {
            file.set_length(PAGE, identity.version + 1);
        }),
        ("a length change by path", |world, _, identity| {
            world.vm.mount_cache().set_length(identity, 0);
        }),
        ("an unknown write outcome", |_, file, _| {
            drop(file.begin_write());
        }),
        (
            "the eviction of the least recently used file",
            |world, _, _| {
                let other =
                    world
                        .vm
                        .mount_cache()
                        .open(ident(9, 2, 0), PAGE, OpenKind::Existing, false);
                assert!(other.is_cached());
            },
        ),
        ("a mount cache reclaim", |world, _, _| {
            assert_eq!(
                world.vm.mount_cache().reclaim(usize::MAX),
                CACHED_PAGES as usize
            );
        }),
    ];
    for (what, operation) in operations {
        let world = mc_world(
            config(2),
            MountCacheConfig {
                max_file_bytes: 16 * PAGE,
                max_bytes: 16 * PAGE,
                max_files: 1,
            },
        );
        let identity = ident(9, 1, 3);
        let data = patterned_bytes(1, (CACHED_PAGES * PAGE) as usize);
        let file =
            world
                .vm
                .mount_cache()
                .open(identity, data.len() as u64, OpenKind::Existing, false);
        assert_eq!(read_through(&file, &data, 0, data.len()).0, data);
        assert_eq!(world.vm.statistics().mcache_pages, CACHED_PAGES);
        assert_eq!(
            world.frames.stats().outstanding(),
            CACHED_PAGES + ZERO_FRAME,
            "{what}"
        );
        operation(&world, &file, identity);
        assert_eq!(world.vm.statistics().mcache_pages, 0, "{what}");
        assert_eq!(
            world.frames.stats().outstanding(),
            2 + ZERO_FRAME,
            "{what}: the frames past max_free_pages went back"
        );
        check(&world, &[]);
    }
}

#[test]
fn forgetting_a_device_gives_the_frames_back_at_once() {
    let world = mc_world(config(2), MountCacheConfig::default());
    let data = patterned_bytes(2, (CACHED_PAGES * PAGE) as usize);
    let file =
        world
            .vm
            .mount_cache()
            .open(ident(9, 1, 0), data.len() as u64, OpenKind::Existing, false);
    read_through(&file, &data, 0, data.len());
    let program = program(ident(9, 70, 0), 3 * PAGE, PAGE, 0);
    let process = exec(&world, &program);
    verify_process(&world, &process);
    drop(process);
    let held = world.frames.stats().outstanding();
    assert!(held >= CACHED_PAGES + 3 + ZERO_FRAME, "{held}");
    assert!(world.vm.forget_device(u32::from(b'M'), 9) as u64 >= CACHED_PAGES + 3);
    assert_eq!(world.frames.stats().outstanding(), 2 + ZERO_FRAME);
    check(&world, &[]);
}
