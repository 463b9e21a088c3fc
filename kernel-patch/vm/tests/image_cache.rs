//! Unit tests of the image cache, segments and faults with recording fakes.

mod common;

use common::*;
use vm::{Access, Config, FaultError, SegmentKind, VmError};

#[test]
fn exec_shares_text_and_reads_each_page_once() {
    let world = world(small_config());
    let program = program(ident(1, 10, 0), 5 * PAGE + 100, 2 * PAGE, PAGE);
    let first = exec(&world, &program);
    let second = exec(&world, &program);
    assert!(first.text().same_segment(second.text()));
    let frames_a = fault_all(first.text(), Access::Read);
    let frames_b = fault_all(second.text(), Access::Read);
    assert_eq!(frames_a, frames_b);
    assert_eq!(program.file.counts().reads, 6, "one read per text page");
    let stats = world.vm.statistics();
    assert_eq!((stats.attach_misses, stats.attach_hits), (1, 1));
    assert_eq!(stats.images_active, 1);
    verify_process(&world, &first);
    let mut all = first.refs();
    all.extend(second.refs());
    let report = check(&world, &all);
    assert_eq!(report.open_channels, 1);
    // Two handles were opened; the second attach let its extra one go at once, parked
    // until the kernel's safe point.
    assert_eq!(world.vm.parked_closes(), 1);
    world.vm.run_parked_closes();
    assert_eq!(program.file.counts().open_handles(), 1);
}

#[test]
fn exit_closes_the_channel_and_leaves_an_idle_image() {
    let world = world(small_config());
    let program = program(ident(1, 11, 0), 3 * PAGE, PAGE, 0);
    let process = exec(&world, &program);
    verify_process(&world, &process);
    assert_eq!(program.file.counts().open_handles(), 1);
    drop(process);
    world.vm.run_parked_closes();
    let counts = program.file.counts();
    assert_eq!(
        counts.open_handles(),
        0,
        "the exited program keeps no channel"
    );
    assert_eq!(counts.unclosed_drops, 0);
    let stats = world.vm.statistics();
    assert_eq!((stats.images_active, stats.images_idle), (0, 1));
    assert_eq!(stats.cached_pages, 4);
    assert_eq!(stats.idle_pages, 4);
    let report = check(&world, &[]);
    assert_eq!((report.cached_pages, report.open_channels), (4, 0));
}

#[test]
fn concurrent_faults_read_each_page_once() {
    let world = world(Config {
        max_pages: 1024,
        ..small_config()
    });
    let text_pages = 48;
    let program = program(ident(1, 14, 0), text_pages * PAGE, 8 * PAGE, PAGE);
    let processes: Vec<Process> = (0..4).map(|_| exec(&world, &program)).collect();
    std::thread::scope(|scope| {
        for (n, process) in processes.iter().enumerate() {
            scope.spawn(move || {
                // Each from a different page, so that they run into each other's loads.
                let text = process.text();
                for i in 0..text_pages {
                    let page = (i + n as u64 * 7) % text_pages;
                    text.fault(TEXT_VA + page * PAGE, Access::Read).unwrap();
                }
                fault_all(process.data(), Access::Read);
            });
        }
    });
    for process in &processes {
        verify_process(&world, process);
    }
    // 48 text pages, 8 data pages: each read from the file once, however many faulted it.
    let data_pages = 8;
    let stats = world.vm.statistics();
    assert_eq!(stats.page_loads, text_pages + data_pages);
    assert_eq!(
        program.file.counts().bytes_read,
        (text_pages + data_pages) * PAGE
    );
    let all: Vec<&vm::SegmentRef> = processes.iter().flat_map(|p| p.refs()).collect();
    check(&world, &all);
}

#[test]
fn image_status_follows_an_image_through_its_life_and_attaches_nothing() {
    let world = world(small_config());
    let identity = ident(1, 13, 0);
    assert_eq!(world.vm.image_status(&identity), None);
    let program = program(identity, 3 * PAGE, PAGE, 0);
    let process = exec(&world, &program);
    verify_process(&world, &process);
    let active = world.vm.image_status(&identity).expect("an image");
    assert!(active.has_channel && !active.idle);
    assert!(active.refs > active.pgref);
    assert_eq!(active.pgref, 4);
    drop(process);
    let idle = world.vm.image_status(&identity).expect("an idle image");
    assert_eq!(
        idle,
        vm::ImageStatus {
            refs: 4,
            pgref: 4,
            has_channel: false,
            idle: true,
        }
    );
    // Looking is no attach.
    let stats = world.vm.statistics();
    assert_eq!((stats.attach_hits, stats.attach_misses), (0, 1));
    assert_eq!((stats.images_active, stats.images_idle), (0, 1));
    assert_eq!(world.vm.reclaim(usize::MAX), 4);
    assert_eq!(world.vm.image_status(&identity), None);
    // Another version of the file is another image.
    assert_eq!(world.vm.image_status(&ident(1, 13, 1)), None);
    check(&world, &[]);
}

#[test]
fn exec_of_an_idle_image_reattaches_and_reads_nothing_again() {
    let world = world(small_config());
    let program = program(ident(1, 12, 0), 4 * PAGE, PAGE, 0);
    drop({
        let process = exec(&world, &program);
        verify_process(&world, &process);
        process
    });
    let reads = program.file.counts().reads;
    let again = exec(&world, &program);
    verify_process(&world, &again);
    assert_eq!(
        program.file.counts().reads,
        reads,
        "all pages came from the cache"
    );
    world.vm.run_parked_closes();
    assert_eq!(
        program.file.counts().open_handles(),
        1,
        "channel re-attached"
    );
    let stats = world.vm.statistics();
    assert_eq!(
        (stats.images_active, stats.images_idle, stats.attach_hits),
        (1, 0, 1)
    );
    check(&world, &again.refs());
}

#[test]
fn a_new_version_or_a_remount_never_sees_stale_pages() {
    let world = world(small_config());
    let old = program(ident(1, 13, 0), 2 * PAGE, PAGE, 0);
    drop({
        let process = exec(&world, &old);
        verify_process(&world, &process);
        process
    });
    // The file changes: same path, new version.
    let changed = program(ident(1, 13, 1), 2 * PAGE, PAGE, 0);
    let process = exec(&world, &changed);
    verify_process(&world, &process);
    assert!(changed.file.counts().reads > 0);
    // The server is remounted: same path and version, new device number.
    let remounted = program(ident(2, 13, 1), 2 * PAGE, PAGE, 0);
    let other = exec(&world, &remounted);
    verify_process(&world, &other);
    let stats = world.vm.statistics();
    assert_eq!(stats.attach_misses, 3);
    let mut all = process.refs();
    all.extend(other.refs());
    check(&world, &all);
}

#[test]
fn a_data_write_copies_and_never_touches_the_image_page() {
    let world = world(small_config());
    let program = program(ident(1, 14, 0), PAGE, 2 * PAGE, 0);
    let writer = exec(&world, &program);
    let data_load = program.loads[1];
    let addr = writer.data().base();
    let read = writer.data().fault(addr, Access::Read).unwrap();
    assert!(!read.writable, "an image page is mapped read only");
    let write = writer.data().fault(addr, Access::Write).unwrap();
    assert!(write.writable);
    assert_ne!(read.frame, write.frame, "the write got a copy");
    world.frames.write(write.frame, 0, b"scribble");
    // Another process sees the file's bytes, not the scribble.
    let reader = exec(&world, &program);
    let mapping = reader.data().fault(addr, Access::Read).unwrap();
    assert_eq!(mapping.frame, read.frame);
    assert_page_eq(
        &world.frames.read(mapping.frame),
        &expected_page(&program.file, &data_load, addr),
        "data page of the reader",
    );
    // A second write fault on the private copy maps it in place.
    let again = writer.data().fault(addr, Access::Write).unwrap();
    assert_eq!(again.frame, write.frame);
    let mut all = writer.refs();
    all.extend(reader.refs());
    check(&world, &all);
}

#[test]
fn data_past_the_file_range_reads_as_zero() {
    let world = world(small_config());
    // Data ends 100 bytes into a page; then two pages of bss follow.
    let program = program(ident(1, 15, 0), PAGE + 8, PAGE + 100, 2 * PAGE);
    let process = exec(&world, &program);
    verify_process(&world, &process);
    // The partial page is private (and so writable at once); the image page is not.
    let partial = process.data().base() + PAGE;
    let mapping = process.data().fault(partial, Access::Read).unwrap();
    assert!(mapping.writable);
    check(&world, &process.refs());
}

#[test]
fn protection_and_range_errors() {
    let world = world(small_config());
    let program = program(ident(1, 16, 0), PAGE, PAGE, 0);
    let process = exec(&world, &program);
    assert_eq!(
        process.text().fault(TEXT_VA, Access::Write),
        Err(FaultError::ReadOnly)
    );
    assert_eq!(
        process.text().fault(TEXT_VA + 64 * PAGE, Access::Read),
        Err(FaultError::BadAddress)
    );
    assert_eq!(
        process.text().fault(TEXT_VA - 1, Access::Read),
        Err(FaultError::BadAddress)
    );
    check(&world, &process.refs());
}

#[test]
fn text_is_reused_only_when_its_length_matches() {
    let world = world(small_config());
    let program = program(ident(1, 17, 0), 3 * PAGE, PAGE, 0);
    let first = exec(&world, &program);
    let same = exec(&world, &program);
    assert!(first.text().same_segment(same.text()));
    // Same file, a loader that claims a shorter text: a segment of its own.
    let mut shorter = program.clone();
    shorter.loads[0].file_len = 2 * PAGE;
    shorter.loads[0].mem_len = 2 * PAGE;
    let other = exec(&world, &shorter);
    assert!(!first.text().same_segment(other.text()));
    assert_eq!(world.vm.statistics().images_active, 1);
    let mut all = first.refs();
    all.extend(same.refs());
    all.extend(other.refs());
    check(&world, &all);
}

#[test]
fn bad_layouts_are_refused_and_close_the_file() {
    let world = world(small_config());
    let program = program(ident(1, 18, 0), PAGE, PAGE, 0);
    let mut misaligned = program.loads.clone();
    misaligned[1].vaddr += 1;
    let mut beyond = program.loads.clone();
    beyond[1].file_len += 1;
    beyond[1].mem_len += 1;
    let mut text_zero = program.loads.clone();
    text_zero[0].mem_len += 2 * PAGE;
    let mut overlap = program.loads.clone();
    overlap[1].vaddr = TEXT_VA + PAGE % PAGE;
    for (loads, why) in [
        (misaligned, vm::LayoutError::Misaligned),
        (beyond, vm::LayoutError::BeyondFile),
        (text_zero, vm::LayoutError::TextBeyondFile),
        (overlap, vm::LayoutError::Overlap),
    ] {
        let err = world.vm.exec(program.file.open(), &loads).unwrap_err();
        assert_eq!(err, VmError::BadLayout(why));
    }
    assert_eq!(program.file.counts().open_handles(), 0);
    assert_eq!(world.vm.statistics().attach_misses, 0);
    check(&world, &[]);
}

#[test]
fn reclaim_frees_idle_images_first_and_never_an_active_one() {
    let world = world(small_config());
    let busy = program(ident(1, 20, 0), PAGE, 3 * PAGE, 0);
    let idle = program(ident(1, 21, 0), 2 * PAGE, 2 * PAGE, 0);
    drop({
        let process = exec(&world, &idle);
        verify_process(&world, &process);
        process
    });
    let process = exec(&world, &busy);
    // Write every data page: the image's data pages drop to ref 0 but stay cached.
    fault_all(process.data(), Access::Write);
    assert_eq!(world.vm.statistics().cached_pages, 4 + 3);
    assert_eq!(world.vm.reclaim(4), 4);
    let stats = world.vm.statistics();
    assert_eq!((stats.images_active, stats.images_idle), (1, 0));
    assert_eq!(stats.cached_pages, 3, "the idle image went first");
    check(&world, &process.refs());
    // Now the busy image's unmapped pages go, but the image stays.
    assert_eq!(world.vm.reclaim(100), 3);
    let stats = world.vm.statistics();
    assert_eq!((stats.images_active, stats.cached_pages), (1, 0));
    assert_eq!(busy.file.counts().open_handles(), 1);
    verify_process(&world, &process);
    check(&world, &process.refs());
}

#[test]
fn the_idle_limit_evicts_the_least_recently_used_image() {
    let world = world(Config {
        max_idle_images: 2,
        ..small_config()
    });
    let programs: Vec<Program> = (0..3)
        .map(|n| program(ident(1, 30 + n, 0), PAGE, PAGE, 0))
        .collect();
    for program in &programs {
        let process = exec(&world, program);
        verify_process(&world, &process);
    }
    let stats = world.vm.statistics();
    assert_eq!((stats.images_idle, stats.cached_pages), (2, 4));
    check(&world, &[]);
    // The first one is gone (a miss); the last one is still there (a hit).
    let misses = world.vm.statistics().attach_misses;
    drop(exec(&world, &programs[2]));
    assert_eq!(world.vm.statistics().attach_misses, misses);
    drop(exec(&world, &programs[0]));
    assert_eq!(world.vm.statistics().attach_misses, misses + 1);
    check(&world, &[]);
}

#[test]
fn a_full_table_reclaims_an_idle_image_or_says_so() {
    let world = world(Config {
        max_images: 2,
        ..small_config()
    });
    let programs: Vec<Program> = (0..3)
        .map(|n| program(ident(1, 40 + n, 0), PAGE, PAGE, 0))
        .collect();
    drop(exec(&world, &programs[0]));
    let second = exec(&world, &programs[1]);
    // The table is full, but image 0 is idle: it makes room.
    let third = exec(&world, &programs[2]);
    let mut all = second.refs();
    all.extend(third.refs());
    check(&world, &all);
    // Both images are active now: no room.
    let err = world
        .vm
        .exec(programs[0].file.open(), &programs[0].loads)
        .unwrap_err();
    assert_eq!(err, VmError::ImageTableFull);
    world.vm.run_parked_closes();
    assert_eq!(programs[0].file.counts().open_handles(), 0);
    check(&world, &all);
}

#[test]
fn memory_pressure_reclaims_cached_pages() {
    let world = world(Config {
        max_pages: 16,
        ..small_config()
    });
    let first = program(ident(1, 50, 0), 8 * PAGE, 2 * PAGE, 0);
    drop({
        let process = exec(&world, &first);
        verify_process(&world, &process);
        process
    });
    assert_eq!(world.vm.statistics().cached_pages, 10);
    let second = program(ident(1, 51, 0), 10 * PAGE, 2 * PAGE, 0);
    let process = exec(&world, &second);
    verify_process(&world, &process);
    let stats = world.vm.statistics();
    assert!(stats.reclaimed_pages >= 6, "{stats:?}");
    assert!(stats.pool_pages <= 16);
    check(&world, &process.refs());
}

#[test]
fn running_out_of_memory_is_an_error_not_a_panic() {
    let world = world(Config {
        max_pages: 4,
        ..small_config()
    });
    let stack = world
        .vm
        .zero_segment(SegmentKind::Stack, STACK_VA, 8 * PAGE)
        .unwrap();
    for page in 0..4 {
        stack.fault(STACK_VA + page * PAGE, Access::Write).unwrap();
    }
    assert_eq!(
        stack.fault(STACK_VA + 4 * PAGE, Access::Write),
        Err(FaultError::NoMemory)
    );
    check(&world, &[&stack]);
}

#[test]
fn fork_shares_private_pages_copy_on_write() {
    let world = world(small_config());
    let bss = world
        .vm
        .zero_segment(SegmentKind::Bss, DATA_VA, 2 * PAGE)
        .unwrap();
    let parent = bss.fault(DATA_VA, Access::Write).unwrap();
    world.frames.write(parent.frame, 0, b"parent");
    let child = bss.fork().unwrap();
    check(&world, &[&bss, &child]);
    let shared_read = child.fault(DATA_VA, Access::Read).unwrap();
    assert_eq!(shared_read.frame, parent.frame);
    assert!(!shared_read.writable);
    let child_write = child.fault(DATA_VA, Access::Write).unwrap();
    assert_ne!(child_write.frame, parent.frame);
    world.frames.write(child_write.frame, 0, b"child!");
    assert_eq!(&world.frames.read(parent.frame)[..6], b"parent");
    // The parent is the only holder again: its write maps in place.
    let parent_again = bss.fault(DATA_VA, Access::Write).unwrap();
    assert_eq!(parent_again.frame, parent.frame);
    check(&world, &[&bss, &child]);
    // Text is shared by fork, not copied.
    let program = program(ident(1, 60, 0), PAGE, PAGE, 0);
    let process = exec(&world, &program);
    let text = process.text().fork().unwrap();
    assert!(text.same_segment(process.text()));
    let data = process.data().fork().unwrap();
    let mut all = process.refs();
    all.extend([&bss, &child, &text, &data]);
    check(&world, &all);
}

#[test]
fn a_read_error_fails_the_fault_cleanly() {
    let world = world(small_config());
    let program = program(ident(1, 70, 0), 2 * PAGE, PAGE, 0);
    let process = exec(&world, &program);
    program.file.fail_reads(true);
    assert_eq!(
        process.text().fault(TEXT_VA, Access::Read),
        Err(FaultError::Io(vm::FileError::Io))
    );
    check(&world, &process.refs());
    program.file.fail_reads(false);
    verify_process(&world, &process);
    check(&world, &process.refs());
}

#[test]
fn short_reads_are_completed() {
    let world = world(small_config());
    let program = program(ident(1, 71, 0), 2 * PAGE + 5, PAGE, 0);
    program.file.limit_reads(1000);
    let process = exec(&world, &program);
    verify_process(&world, &process);
    assert!(program.file.counts().reads >= 5 * 3);
    check(&world, &process.refs());
}

#[test]
fn dropping_everything_returns_every_frame_and_handle() {
    let frames;
    let program = program(ident(1, 80, 0), 3 * PAGE, 2 * PAGE, PAGE);
    {
        let world = world(small_config());
        frames = world.frames.clone();
        let process = exec(&world, &program);
        verify_process(&world, &process);
        fault_all(process.data(), Access::Write);
        let forked: Vec<_> = process.segments.iter().map(|s| s.fork().unwrap()).collect();
        drop(forked);
        drop(process);
        assert!(frames.stats().outstanding() > 0);
    }
    assert_eq!(frames.stats().outstanding(), 0);
    let counts = program.file.counts();
    assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
}

#[test]
fn statistics_read_as_text() {
    let world = world(small_config());
    let program = program(ident(1, 90, 0), PAGE, PAGE, 0);
    // An image that never cached a page goes away with its last user.
    drop(exec(&world, &program));
    assert_eq!(world.vm.statistics().images_idle, 0);
    assert_eq!(world.vm.statistics().images_active, 0);
    drop({
        let process = exec(&world, &program);
        verify_process(&world, &process);
        process
    });
    let text = world.vm.statistics().to_string();
    assert!(text.contains("images_idle 1\n"), "{text}");
    assert!(text.contains("attach_misses 2\n"), "{text}");
}

/// An attach of an image that is active already touches nothing of the instance's, nor
/// of the channel's: its `ImageRef` reaches the vm through the image's channel, which
/// holds the one handle an active image keeps, without a clone of it. (Each attach used to
/// clone the `Vm` handle, one counter shared by every attach of every executable, and then
/// the channel; these counts then grew by one an `ImageRef`.) The
/// last `ImageRef` of an image gives that handle back, and an `ImageRef` that outlives
/// every `Vm` handle keeps the instance until it goes.
#[test]
fn attaches_of_an_active_image_take_no_handle_of_the_instance() {
    let world = world(small_config());
    let program = program(ident(1, 40, 0), PAGE, 0, 0);
    let alone = vm::check::instance_handles(&world.vm);
    let first = world.vm.attach(program.file.open()).expect("attach");
    let active = vm::check::instance_handles(&world.vm);
    assert_eq!(active, alone + 1, "the active image's channel holds one");
    let identity = program.file.identity();
    assert_eq!(vm::check::channel_clones(&world.vm, &identity), Some(1));
    let more: Vec<_> = (0..10)
        .map(|_| world.vm.attach(program.file.open()).expect("attach"))
        .collect();
    assert_eq!(vm::check::instance_handles(&world.vm), active);
    assert_eq!(
        vm::check::channel_clones(&world.vm, &identity),
        Some(1),
        "an ImageRef holds no clone of the channel"
    );
    drop(more);
    drop(first);
    world.vm.run_parked_closes();
    assert_eq!(vm::check::instance_handles(&world.vm), alone);
    assert_eq!(program.file.counts().open_handles(), 0);

    let last = world.vm.attach(program.file.open()).expect("attach");
    let World { vm, frames } = world;
    drop(vm);
    assert_eq!(
        program.file.counts().open_handles(),
        1,
        "the image, and its channel, outlive the last Vm handle"
    );
    drop(last);
    assert_eq!(
        program.file.counts().open_handles(),
        0,
        "the last reference to the instance closed the parked file"
    );
    drop(frames);
}

/// `attach_on` finds the image its CPU attached last without the table, but only while it
/// is active: an image that went idle (its channel gone) or was freed since is found
/// through the table as any attach finds it, so it leaves the idle list, or a new image is
/// made; the image held is always the table's, with its channel.
#[test]
fn a_cpus_last_image_is_reused_only_while_it_is_active() {
    const CPU: usize = 3;
    let world = world(small_config());
    let program = program(ident(1, 41, 0), PAGE, PAGE, PAGE);
    let identity = program.file.identity();
    let hits = |world: &World| world.vm.statistics().attach_hits;
    let misses = |world: &World| world.vm.statistics().attach_misses;

    // Active: the second attach on the CPU is a hit on the same image.
    let first = world
        .vm
        .attach_on(CPU, program.file.open())
        .expect("attach");
    let second = world
        .vm
        .attach_on(CPU, program.file.open())
        .expect("attach");
    assert_eq!((hits(&world), misses(&world)), (1, 1));
    assert_eq!(world.vm.image_status(&identity).map(|s| s.refs), Some(2));
    drop((first, second));
    // No page cached: the last put freed the image. The CPU's slot still names it, but
    // it has no channel: the next attach makes a new image through the table.
    assert!(world.vm.image_status(&identity).is_none());
    let fresh = world
        .vm
        .attach_on(CPU, program.file.open())
        .expect("attach");
    assert_eq!((hits(&world), misses(&world)), (1, 2));
    let status = world.vm.image_status(&identity).expect("linked");
    assert!(status.has_channel && !status.idle && status.refs == 1);
    drop(fresh);

    // Idle (a cached page keeps it): the next exec on the CPU finds it in the table and
    // takes it off the idle list.
    let segments = world
        .vm
        .exec_on(CPU, program.file.open(), &program.loads)
        .expect("exec");
    segments[0].fault(TEXT_VA, Access::Read).expect("fault");
    drop(segments);
    assert!(world.vm.image_status(&identity).expect("idle").idle);
    let again = world
        .vm
        .exec_on(CPU, program.file.open(), &program.loads)
        .expect("exec");
    let status = world.vm.image_status(&identity).expect("linked");
    assert!(status.has_channel && !status.idle);
    assert_eq!(world.vm.statistics().images_idle, 0);
    let refs: Vec<&vm::SegmentRef> = again.iter().collect();
    check(&world, &refs);
    drop(again);
    world.vm.run_parked_closes();
    let counts = program.file.counts();
    assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
}
