//! Limits and memory: per-file and total limits, LRU eviction, reclaim, no double caching
//! with the image cache, forget, statistics, every frame back at the end.

use super::*;

#[test]
fn one_file_holds_at_most_its_limit() {
    let world = mc_world(
        small_config(),
        MountCacheConfig {
            max_file_bytes: 3 * PAGE,
            ..mc_config()
        },
    );
    let data = patterned_bytes(11, 6 * PAGE as usize);
    let file = open(&world, data_ident(11, 0), &data);
    let (bytes, _) = read_through(&file, &data, 0, data.len());
    assert_eq!(bytes, data);
    assert_eq!(world.vm.statistics().mcache_pages, 3);
    assert_eq!(
        read_through(&file, &data, 0, data.len()).1,
        3 * PAGE as usize
    );
    // Bytes of the cached pages still update; no page past the limit appears.
    let mut server = data.clone();
    write_through(&file, &mut server, 2 * PAGE - 5, &[1; 10]);
    assert_eq!(world.vm.statistics().mcache_pages, 3);
    assert_eq!(read_through(&file, &server, 0, server.len()).0, server);
    check(&world, &[]);
}

#[test]
fn the_whole_cache_holds_at_most_its_limit_and_evicts_the_least_recently_used() {
    let world = mc_world(
        small_config(),
        MountCacheConfig {
            max_file_bytes: 8 * PAGE,
            max_bytes: 5 * PAGE,
            max_files: 8,
        },
    );
    let old = patterned_bytes(12, 3 * PAGE as usize);
    let new = patterned_bytes(13, 4 * PAGE as usize);
    let old_file = open(&world, data_ident(12, 0), &old);
    read_through(&old_file, &old, 0, old.len());
    let new_file = open(&world, data_ident(13, 0), &new);
    read_through(&new_file, &new, 0, new.len());
    let stats = world.vm.statistics();
    assert_eq!(stats.mcache_pages, 5);
    assert_eq!(read_through(&new_file, &new, 0, new.len()).1, new.len());
    assert!(read_through(&old_file, &old, 0, old.len()).1 < old.len());
    check(&world, &[]);
}

#[test]
fn too_many_files_evict_the_least_recently_used_file() {
    let world = mc_world(
        small_config(),
        MountCacheConfig {
            max_files: 2,
            ..mc_config()
        },
    );
    let data = patterned_bytes(14, PAGE as usize);
    let files: Vec<CachedFile> = (0..3)
        .map(|n| {
            let file = open(&world, data_ident(20 + n, 0), &data);
            read_through(&file, &data, 0, data.len());
            file
        })
        .collect();
    assert!(!files[0].is_cached(), "the first file went");
    assert!(files[1].is_cached() && files[2].is_cached());
    let stats = world.vm.statistics();
    assert_eq!((stats.mcache_files, stats.mcache_pages), (2, 2));
    assert_eq!(read_through(&files[0], &data, 0, data.len()).1, 0);
    check(&world, &[]);
}

#[test]
fn reclaim_frees_mount_cache_pages_under_pressure() {
    let world = mc_world(
        Config {
            max_pages: 12,
            ..small_config()
        },
        mc_config(),
    );
    let data = patterned_bytes(15, 8 * PAGE as usize);
    let file = open(&world, data_ident(15, 0), &data);
    read_through(&file, &data, 0, data.len());
    assert_eq!(world.vm.statistics().mcache_pages, 8);
    // A program needs more pages than are free: faults reclaim the mount cache's.
    let program = program(ident(1, 60, 0), 6 * PAGE, 2 * PAGE, 0);
    let process = exec(&world, &program);
    verify_process(&world, &process);
    let stats = world.vm.statistics();
    assert!(stats.mcache_pages < 8, "{stats:?}");
    assert!(stats.reclaimed_pages > 0);
    check(&world, &process.refs());
    // What is left still reads right.
    assert_eq!(read_through(&file, &data, 0, data.len()).0, data);
    drop(process);
    // Vm::reclaim takes idle images' pages first, then the mount cache's.
    let cached = world.vm.statistics().mcache_pages;
    let idle = world.vm.statistics().idle_pages;
    world.vm.reclaim(idle as usize);
    let stats = world.vm.statistics();
    assert_eq!((stats.idle_pages, stats.mcache_pages), (0, cached));
    world.vm.reclaim(100);
    assert_eq!(world.vm.statistics().mcache_pages, 0);
    check(&world, &[]);
}

#[test]
fn the_mount_cache_makes_room_in_itself_never_in_idle_images() {
    let world = mc_world(
        Config {
            max_pages: 10,
            ..small_config()
        },
        mc_config(),
    );
    let program = program(ident(1, 61, 0), 4 * PAGE, PAGE, 0);
    drop({
        let process = exec(&world, &program);
        verify_process(&world, &process);
        process
    });
    let idle = world.vm.statistics().idle_pages;
    assert_eq!(idle, 5);
    let data = patterned_bytes(16, 8 * PAGE as usize);
    let file = open(&world, data_ident(16, 0), &data);
    assert_eq!(read_through(&file, &data, 0, data.len()).0, data);
    let stats = world.vm.statistics();
    assert_eq!(stats.idle_pages, idle, "{stats:?}");
    assert_eq!(stats.mcache_pages, 5, "the pool's remaining pages");
    check(&world, &[]);
}

#[test]
fn a_file_whose_channel_becomes_an_image_channel_leaves_the_cache() {
    let world = mworld();
    let cache = world.vm.mount_cache();
    let program = program(ident(7, 70, 3), 2 * PAGE, PAGE, 0);
    let identity = program.file.identity();
    let contents = program.file.data().to_vec();
    // The kernel reads the header through the cache, then execs the file.
    let file = open(&world, identity, &contents);
    read_through(&file, &contents, 0, 64);
    assert_eq!(world.vm.statistics().mcache_files, 1);
    let process = exec(&world, &program);
    assert!(!file.is_cached(), "the channel left the mount cache");
    let stats = world.vm.statistics();
    assert_eq!((stats.mcache_files, stats.mcache_pages), (0, 0));
    // While the image holds these contents, opens of the same version are not cached...
    let again = open(&world, identity, &contents);
    assert!(!again.is_cached());
    assert_eq!(read_through(&again, &contents, 0, 64).1, 0);
    assert_eq!(read_through(&again, &contents, 0, 64).1, 0);
    // ... but another version is.
    let older = FileIdentity {
        version: 2,
        ..identity
    };
    let changed = cache.open(older, 10, OpenKind::Existing, false);
    assert!(changed.is_cached());
    check(&world, &process.refs());
    // A write through it bumps it to the image's version, so it leaves.
    let mut server = contents[..10].to_vec();
    assert_eq!(write_through(&changed, &mut server, 0, b"x"), 3);
    assert!(!changed.is_cached());
    check(&world, &process.refs());
    verify_process(&world, &process);
}

#[test]
fn forget_drops_the_entry() {
    let world = mworld();
    let data = patterned_bytes(17, PAGE as usize);
    let file = open(&world, data_ident(17, 0), &data);
    read_through(&file, &data, 0, data.len());
    assert!(world.vm.mount_cache().forget(data_ident(17, 99)));
    assert!(!world.vm.mount_cache().forget(data_ident(17, 0)));
    assert!(!file.is_cached());
    assert_eq!(world.vm.statistics().mcache_pages, 0);
    check(&world, &[]);
}

#[test]
fn mount_cache_statistics_read_as_text() {
    let world = mworld();
    let data = patterned_bytes(24, PAGE as usize);
    let file = open(&world, data_ident(24, 0), &data);
    read_through(&file, &data, 0, data.len());
    read_through(&file, &data, 0, data.len());
    let text = world.vm.statistics().to_string();
    for line in [
        "mcache_files 1\n",
        "mcache_pages 1\n",
        "mcache_hits 1\n",
        "mcache_misses 1\n",
        "mcache_wipes 0\n",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

#[test]
fn everything_comes_back_when_the_vm_goes() {
    let world = mworld();
    let data = patterned_bytes(25, 3 * PAGE as usize);
    let file = open(&world, data_ident(25, 0), &data);
    read_through(&file, &data, 0, data.len());
    let stack = world
        .vm
        .zero_segment(SegmentKind::Stack, STACK_VA, PAGE)
        .unwrap();
    stack.fault(STACK_VA, Access::Write).unwrap();
    let frames = world.frames.clone();
    drop((stack, file));
    drop(world);
    assert_eq!(frames.stats().outstanding(), 0);
}
