//! Unit tests of the mount cache: validation at open, fills, our own writes, wipes, limits,
//! reclaim, no double caching with the image cache, and stale fills.

mod common;

use common::*;
use vm::{Access, CachedFile, Config, FileIdentity, MountCacheConfig, OpenKind, SegmentKind};

fn mc_config() -> MountCacheConfig {
    MountCacheConfig {
        max_file_bytes: 8 * PAGE,
        max_bytes: 16 * PAGE,
        max_files: 4,
    }
}

fn mworld() -> World {
    mc_world(small_config(), mc_config())
}

/// A data file (not a program) on mount `dev`.
fn data_ident(path: u64, vers: u64) -> FileIdentity {
    ident(7, 1000 + path, vers)
}

fn open(world: &World, identity: FileIdentity, data: &[u8]) -> CachedFile {
    world
        .vm
        .mount_cache()
        .open(identity, data.len() as u64, OpenKind::Existing, false)
}

#[test]
fn a_read_hits_after_a_fill() {
    let world = mworld();
    let data = patterned_bytes(1, 3 * PAGE as usize + 100);
    let file = open(&world, data_ident(1, 0), &data);
    assert!(file.is_cached());
    let (bytes, cached) = read_through(&file, &data, 0, data.len());
    assert_eq!((bytes.as_slice(), cached), (data.as_slice(), 0));
    let (bytes, cached) = read_through(&file, &data, 0, data.len());
    assert_eq!((bytes.as_slice(), cached), (data.as_slice(), data.len()));
    // An unaligned piece from the middle, across a page boundary.
    let (bytes, cached) = read_through(&file, &data, PAGE - 10, 30);
    assert_eq!(
        (bytes.as_slice(), cached),
        (&data[PAGE as usize - 10..][..30], 30)
    );
    let stats = world.vm.statistics();
    assert_eq!((stats.mcache_hits, stats.mcache_misses), (2, 1));
    assert_eq!((stats.mcache_files, stats.mcache_pages), (1, 4));
    let report = check(&world, &[]);
    assert_eq!((report.mcache_files, report.mcache_pages), (1, 4));
    assert_eq!(report.open_channels, 0, "the mount cache holds no channel");
}

#[test]
fn partial_fills_answer_their_prefix_only() {
    let world = mworld();
    let data = patterned_bytes(2, 2 * PAGE as usize);
    let file = open(&world, data_ident(2, 0), &data);
    // The server's reply to a read of 100 bytes at 50.
    let miss = file.read(50, &mut [0; 100]);
    assert_eq!(miss.len, 0);
    assert_eq!(file.fill(miss.ticket, 50, &data[50..150]), 100);
    let mut buf = vec![0u8; 200];
    assert_eq!(file.read(0, &mut buf).len, 0, "byte 0 was never read");
    assert_eq!(
        file.read(60, &mut buf).len,
        90,
        "the valid bytes end at 150"
    );
    assert_eq!(&buf[..90], &data[60..150]);
    // An adjacent fill joins the range; a disjoint, smaller one is dropped.
    let ticket = file.read(150, &mut [0; 1]).ticket;
    assert_eq!(file.fill(ticket, 150, &data[150..400]), 250);
    let ticket = file.read(1000, &mut [0; 1]).ticket;
    assert_eq!(file.fill(ticket, 1000, &data[1000..1010]), 0);
    assert_eq!(file.read(50, &mut buf).len, 200);
    assert_eq!(&buf[..], &data[50..250]);
    // A page whose valid bytes end early stops a read that spans pages.
    let ticket = file.read(PAGE, &mut [0; 1]).ticket;
    file.fill(ticket, PAGE, &data[PAGE as usize..]);
    assert_eq!(file.read(300, &mut vec![0; PAGE as usize]).len, 100);
    check(&world, &[]);
}

#[test]
fn the_same_version_and_length_at_open_keeps_the_cache() {
    let world = mworld();
    let data = patterned_bytes(3, 2 * PAGE as usize);
    drop({
        let file = open(&world, data_ident(3, 5), &data);
        read_through(&file, &data, 0, data.len());
        file
    });
    let file = open(&world, data_ident(3, 5), &data);
    let (bytes, cached) = read_through(&file, &data, 0, data.len());
    assert_eq!((bytes, cached), (data.clone(), data.len()));
    assert_eq!(world.vm.statistics().mcache_wipes, 0);
}

#[test]
fn a_new_version_at_open_wipes() {
    let world = mworld();
    let old = patterned_bytes(4, 2 * PAGE as usize);
    let new = patterned_bytes(40, 2 * PAGE as usize);
    let file = open(&world, data_ident(4, 1), &old);
    read_through(&file, &old, 0, old.len());
    assert_eq!(world.vm.statistics().mcache_pages, 2);
    // Another client changed the file: same length, new version.
    let reopened = open(&world, data_ident(4, 2), &new);
    let stats = world.vm.statistics();
    assert_eq!((stats.mcache_pages, stats.mcache_wipes), (0, 1));
    let (bytes, cached) = read_through(&reopened, &new, 0, new.len());
    assert_eq!((bytes, cached), (new.clone(), 0), "never a stale byte");
    // The old channel reads the current contents too, as it would from the server.
    let (bytes, cached) = read_through(&file, &new, 0, new.len());
    assert_eq!((bytes, cached), (new.clone(), new.len()));
    check(&world, &[]);
}

#[test]
fn a_new_length_at_open_wipes() {
    let world = mworld();
    let data = patterned_bytes(5, 2 * PAGE as usize);
    let file = open(&world, data_ident(5, 1), &data);
    read_through(&file, &data, 0, data.len());
    let longer = [data.as_slice(), &[9; 10]].concat();
    let reopened = open(&world, data_ident(5, 1), &longer);
    assert_eq!(world.vm.statistics().mcache_wipes, 1);
    assert_eq!(read_through(&reopened, &longer, 0, longer.len()).1, 0);
}

#[test]
fn create_and_a_truncating_open_wipe() {
    let world = mworld();
    let cache = world.vm.mount_cache();
    let data = patterned_bytes(6, PAGE as usize);
    for kind in [OpenKind::Truncated, OpenKind::Created] {
        let file = open(&world, data_ident(6, 3), &data);
        read_through(&file, &data, 0, data.len());
        assert_eq!(world.vm.statistics().mcache_pages, 1);
        let fresh = cache.open(data_ident(6, 3), 0, kind, false);
        assert!(fresh.is_cached());
        assert_eq!(world.vm.statistics().mcache_pages, 0, "{kind:?}");
        assert_eq!(fresh.read(0, &mut [0; 10]).len, 0);
        check(&world, &[]);
    }
    // Two by the truncating open and the create, and one by the second round's first open,
    // which found the length 0 the truncation left.
    assert_eq!(world.vm.statistics().mcache_wipes, 3);
}

#[test]
fn our_own_write_keeps_the_cache_valid_and_updates_it() {
    let world = mworld();
    let mut server = patterned_bytes(7, 2 * PAGE as usize);
    let file = open(&world, data_ident(7, 10), &server);
    read_through(&file, &server, 0, server.len());
    write_through(&file, &mut server, 100, b"our own bytes");
    assert_eq!(file.vers(), 11, "the channel's version is bumped too");
    assert_eq!(file.identity(), data_ident(7, 11));
    let (bytes, cached) = read_through(&file, &server, 0, server.len());
    assert_eq!((bytes, cached), (server.clone(), server.len()));
    // The next open sees the server's new version, and the cache is still valid.
    drop(file);
    let file = open(&world, data_ident(7, 11), &server);
    let (bytes, cached) = read_through(&file, &server, 0, server.len());
    assert_eq!((bytes, cached), (server.clone(), server.len()));
    assert_eq!(world.vm.statistics().mcache_wipes, 0);
    check(&world, &[]);
}

#[test]
fn our_write_does_not_vouch_for_another_clients_change() {
    let world = mworld();
    let mut server = patterned_bytes(26, PAGE as usize);
    let file = open(&world, data_ident(26, 0), &server);
    read_through(&file, &server, 0, server.len());
    // Another client changes the first bytes (version 1); then we write elsewhere (2).
    server_write(&mut server, 0, b"theirs");
    assert_eq!(write_through(&file, &mut server, 100, b"ours"), 1);
    // The cache counted one change, the server two: the next open must wipe.
    let reopened = open(&world, data_ident(26, 2), &server);
    let (bytes, cached) = read_through(&reopened, &server, 0, server.len());
    assert_eq!((bytes, cached), (server.clone(), 0));
    assert_eq!(world.vm.statistics().mcache_wipes, 1);
}

#[test]
fn a_write_caches_the_pages_it_writes() {
    let world = mworld();
    let mut server = Vec::new();
    let file = world
        .vm
        .mount_cache()
        .open(data_ident(8, 0), 0, OpenKind::Created, false);
    let payload = patterned_bytes(8, PAGE as usize + 500);
    write_through(&file, &mut server, 0, &payload);
    write_through(&file, &mut server, payload.len() as u64, b"appended");
    let (bytes, cached) = read_through(&file, &server, 0, server.len());
    assert_eq!((bytes, cached), (server.clone(), server.len()));
    // A write of nothing past the end changes no length (but is a write: one version).
    write_through(&file, &mut server, 3 * PAGE, b"");
    let again = open(&world, data_ident(8, 3), &server);
    assert_eq!(
        read_through(&again, &server, 0, server.len()).1,
        server.len()
    );
    check(&world, &[]);
}

#[test]
fn the_cached_length_follows_opens_writes_and_length_changes() {
    let world = mworld();
    let cache = world.vm.mount_cache();
    let mut server = patterned_bytes(27, PAGE as usize + 7);
    let file = open(&world, data_ident(27, 0), &server);
    assert_eq!(file.length(), Some(server.len() as u64));
    // Our write past the end grows it; a write inside does not.
    write_through(&file, &mut server, 2 * PAGE, b"tail");
    assert_eq!(file.length(), Some(2 * PAGE + 4));
    write_through(&file, &mut server, 0, b"head");
    assert_eq!(file.length(), Some(2 * PAGE + 4));
    file.set_length(3, 3);
    assert_eq!(file.length(), Some(3));
    // Another handle's open of a new length relabels the shared entry.
    let other = cache.open(data_ident(27, 9), 50, OpenKind::Existing, false);
    assert_eq!((file.length(), other.length()), (Some(50), Some(50)));
    // Not cached: no length.
    assert!(cache.forget(data_ident(27, 9)));
    assert_eq!((file.length(), other.length()), (None, None));
    let append = cache.open(data_ident(28, 0), 10, OpenKind::Existing, true);
    assert_eq!(append.length(), None);
    check(&world, &[]);
}

#[test]
fn a_length_change_wipes() {
    let world = mworld();
    let mut server = patterned_bytes(9, 2 * PAGE as usize);
    let file = open(&world, data_ident(9, 0), &server);
    read_through(&file, &server, 0, server.len());
    server.truncate(10);
    file.set_length(10, 1);
    assert_eq!(file.vers(), 1);
    assert_eq!(world.vm.statistics().mcache_pages, 0);
    let (bytes, cached) = read_through(&file, &server, 0, 100);
    assert_eq!((bytes, cached), (server.clone(), 0));
    // The cache was relabelled: an open of the new version and length keeps it.
    let again = open(&world, data_ident(9, 1), &server);
    assert_eq!(read_through(&again, &server, 0, 100).1, 10);
    check(&world, &[]);
}

#[test]
fn append_only_files_are_never_cached() {
    let world = mworld();
    let cache = world.vm.mount_cache();
    let data = patterned_bytes(10, PAGE as usize);
    let cached = open(&world, data_ident(10, 0), &data);
    read_through(&cached, &data, 0, data.len());
    // The file became append-only: its entry goes, and nothing is cached for it.
    let file = cache.open(
        data_ident(10, 0),
        data.len() as u64,
        OpenKind::Existing,
        true,
    );
    assert!(!file.is_cached());
    assert!(!cached.is_cached());
    assert_eq!(read_through(&file, &data, 0, data.len()).1, 0);
    assert_eq!(read_through(&file, &data, 0, data.len()).1, 0);
    let mut server = data.clone();
    write_through(&file, &mut server, 0, b"x");
    let stats = world.vm.statistics();
    assert_eq!((stats.mcache_files, stats.mcache_pages), (0, 0));
    check(&world, &[]);
}

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
fn a_fill_from_before_a_change_is_dropped() {
    let world = mworld();
    let cache = world.vm.mount_cache();
    let old = patterned_bytes(18, PAGE as usize);
    let file = open(&world, data_ident(18, 0), &old);
    // A read misses and goes to the server; meanwhile another open sees a new version.
    let miss = file.read(0, &mut [0; 100]);
    let _newer = cache.open(
        data_ident(18, 1),
        old.len() as u64,
        OpenKind::Existing,
        false,
    );
    assert_eq!(
        file.fill(miss.ticket, 0, &old[..100]),
        0,
        "stale bytes dropped"
    );
    // Likewise across our own write, and while one is in flight.
    let miss = file.read(0, &mut [0; 100]);
    let mut server = old.clone();
    write_through(&file, &mut server, 0, b"new");
    assert_eq!(file.fill(miss.ticket, 0, &old[..100]), 0);
    let pending = file.begin_write();
    let miss = file.read(200, &mut [0; 100]);
    assert_eq!(file.fill(miss.ticket, 200, &server[200..300]), 0);
    server_write(&mut server, 200, b"in flight");
    pending.done(200, b"in flight");
    assert_eq!(read_through(&file, &server, 0, server.len()).0, server);
    // A ticket of another file is no good either.
    let other = open(&world, data_ident(19, 0), &old);
    let foreign = other.read(0, &mut [0; 10]).ticket;
    assert_eq!(file.fill(foreign, 0, &old[..10]), 0);
    check(&world, &[]);
}

#[test]
fn overlapping_writes_and_unknown_outcomes_wipe() {
    let world = mworld();
    let mut server = patterned_bytes(20, PAGE as usize);
    let file = open(&world, data_ident(21, 0), &server);
    read_through(&file, &server, 0, server.len());
    let first = file.begin_write();
    let second = file.begin_write();
    server_write(&mut server, 0, b"second");
    server_write(&mut server, 0, b"first");
    first.done(0, b"first");
    second.done(0, b"second");
    assert_eq!(world.vm.statistics().mcache_pages, 0);
    assert_eq!(read_through(&file, &server, 0, server.len()).0, server);
    // A write that failed or was flushed may or may not have happened.
    assert_eq!(world.vm.statistics().mcache_pages, 1);
    let unknown = file.begin_write();
    drop(unknown);
    assert_eq!(world.vm.statistics().mcache_pages, 0);
    // Once the writes are over, writes update the cache again.
    read_through(&file, &server, 0, server.len());
    write_through(&file, &mut server, 5, b"later");
    assert_eq!(
        read_through(&file, &server, 0, server.len()),
        (server.clone(), server.len())
    );
    check(&world, &[]);
}

#[test]
fn bad_offsets_and_empty_ranges_do_not_panic() {
    let world = mworld();
    let file = open(&world, data_ident(22, 0), &[]);
    let ticket = file.read(u64::MAX - 3, &mut [0; 100]).ticket;
    assert!(file.fill(ticket, u64::MAX - 3, &[1; 100]) <= 3);
    assert_eq!(file.read(u64::MAX - 3, &mut [0; 100]).len, 3);
    assert_eq!(file.read(5, &mut []).len, 0);
    let ticket = file.read(0, &mut []).ticket;
    assert_eq!(file.fill(ticket, 0, &[]), 0);
    let pending = file.begin_write();
    pending.done(u64::MAX, &[1; 10]);
    check(&world, &[]);
}

#[test]
fn a_disabled_mount_cache_caches_nothing() {
    let world = mc_world(
        small_config(),
        MountCacheConfig {
            max_bytes: 0,
            ..mc_config()
        },
    );
    let data = patterned_bytes(23, PAGE as usize);
    let file = open(&world, data_ident(23, 0), &data);
    assert!(!file.is_cached());
    assert_eq!(read_through(&file, &data, 0, data.len()).0, data);
    assert_eq!(read_through(&file, &data, 0, data.len()).1, 0);
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

/// Opens, reads, writes, evicts and execs through the mount cache, checking every byte
/// read against the server. Each step may cache less when an allocation fails, never
/// wrongly.
fn mount_cache_workload(world: &World, program: &Program, round: u64) {
    let cache = world.vm.mount_cache();
    let mut first = patterned_bytes(30, 3 * PAGE as usize);
    let a = open(world, data_ident(30, round), &first);
    assert_eq!(read_through(&a, &first, 0, first.len()).0, first);
    write_through(&a, &mut first, 3 * PAGE - 2, b"spills onto a new page");
    assert_eq!(read_through(&a, &first, 0, first.len()).0, first);
    let second = patterned_bytes(31, PAGE as usize);
    let b = open(world, data_ident(31, round), &second);
    assert_eq!(read_through(&b, &second, 0, second.len()).0, second);
    // A third file evicts the least recently used one (max_files is 2).
    let third = patterned_bytes(32, PAGE as usize);
    let c = cache.open(
        data_ident(32, round),
        third.len() as u64,
        OpenKind::Created,
        false,
    );
    assert_eq!(read_through(&c, &third, 0, third.len()).0, third);
    // The program's header read through the cache, then the program run.
    let contents = program.file.data().to_vec();
    let header = open(world, program.file.identity(), &contents);
    assert_eq!(read_through(&header, &contents, 0, 100).0, &contents[..100]);
    match world.vm.exec(program.file.open(), &program.loads) {
        Ok(segments) => {
            assert!(!header.is_cached());
            drop(segments);
        }
        Err(vm::VmError::NoMemory) => {}
        Err(err) => panic!("exec: {err}"),
    }
    assert_eq!(read_through(&a, &first, 0, first.len()).0, first);
}

#[test]
fn allocation_failure_at_every_site_leaves_the_invariants_intact() {
    let config = MountCacheConfig {
        max_files: 2,
        ..mc_config()
    };
    for nth in 0.. {
        assert!(nth < 1000, "the workload never stops allocating");
        let world = mc_world(small_config(), config);
        let frames = world.frames.clone();
        let program = program(ident(7, 80, 0), 2 * PAGE, PAGE, 0);
        let before = frames.stats().admitted;
        frames.fail_allocation(nth);
        mount_cache_workload(&world, &program, 0);
        frames.never_fail();
        let made = frames.stats().admitted - before;
        check(&world, &[]);
        // Nothing is broken for later: the workload again, and a file read twice hits.
        mount_cache_workload(&world, &program, 1);
        check(&world, &[]);
        let data = patterned_bytes(33, 2 * PAGE as usize);
        let file = open(&world, data_ident(33, 0), &data);
        read_through(&file, &data, 0, data.len());
        assert_eq!(
            read_through(&file, &data, 0, data.len()),
            (data.clone(), data.len()),
            "allocation {nth}"
        );
        drop(file);
        drop(world);
        assert_eq!(
            frames.stats().outstanding(),
            0,
            "allocation {nth}: frames leaked"
        );
        let counts = program.file.counts();
        assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
        if made <= nth {
            assert!(nth >= 10, "files, pages and exec's allocations: {nth}");
            break;
        }
    }
}

/// Our write through a handle whose entry was evicted, after a later open made the file a
/// new entry, updates that entry: the later handle reads our bytes (the hardening issue's
/// stale read after our own write).
#[test]
fn a_write_through_a_handle_whose_entry_was_evicted_reaches_the_new_entry() {
    let world = mc_world(
        small_config(),
        MountCacheConfig {
            max_files: 1,
            ..mc_config()
        },
    );
    let mut server = patterned_bytes(40, PAGE as usize);
    let other = patterned_bytes(41, PAGE as usize);
    let a = open(&world, data_ident(40, 0), &server);
    let g = open(&world, data_ident(41, 0), &other);
    assert!(!a.is_cached(), "g's open evicted f");
    let b = open(&world, data_ident(40, 0), &server);
    assert!(!g.is_cached(), "f's second open evicted g");
    assert!(a.is_cached(), "a uses f's current entry");
    read_through(&b, &server, 0, server.len());
    assert_eq!(write_through(&a, &mut server, 0, b"NEWBYTES"), 1);
    let (bytes, hit) = read_through(&b, &server, 0, 8);
    assert_eq!((bytes.as_slice(), hit), (&b"NEWBYTES"[..], 8));
    assert_eq!(read_through(&b, &server, 0, server.len()).0, server);
    check(&world, &[]);
}

/// The same after a forget: the handle of the first open writes into the entry of the
/// second.
#[test]
fn a_write_through_a_handle_whose_entry_was_forgotten_reaches_the_new_entry() {
    let world = mworld();
    let mut server = patterned_bytes(42, 2 * PAGE as usize);
    let a = open(&world, data_ident(42, 0), &server);
    assert!(world.vm.mount_cache().forget(data_ident(42, 0)));
    let b = open(&world, data_ident(42, 0), &server);
    read_through(&b, &server, 0, server.len());
    write_through(&a, &mut server, PAGE + 5, b"written through a");
    assert_eq!(read_through(&b, &server, 0, server.len()).0, server);
    a.set_length(10, 7);
    assert_eq!(b.length(), Some(10));
    check(&world, &[]);
}

/// A handle opened uncached (the file was append-only then) changes the file behind the
/// cache: the entry another open made goes, so that open's reads go to the server.
#[test]
fn a_write_through_a_handle_opened_uncached_forgets_the_entry() {
    let world = mworld();
    let cache = world.vm.mount_cache();
    let mut server = patterned_bytes(43, PAGE as usize + 700);
    let appender = cache.open(
        data_ident(43, 0),
        server.len() as u64,
        OpenKind::Existing,
        true,
    );
    let b = open(&world, data_ident(43, 0), &server);
    assert!(b.is_cached() && !appender.is_cached());
    read_through(&b, &server, 0, server.len());
    write_through(&appender, &mut server, 100, b"behind the cache");
    assert!(!b.is_cached(), "the entry went");
    assert!(!appender.is_cached(), "an uncached open stays uncached");
    assert_eq!(read_through(&b, &server, 0, server.len()).0, server);
    // A length change and a wipe through it do the same.
    let c = open(&world, data_ident(43, 1), &server);
    assert!(c.is_cached());
    appender.set_length(5, 2);
    assert!(!c.is_cached());
    let d = open(&world, data_ident(43, 2), &server[..5]);
    appender.wipe();
    assert!(!d.is_cached());
    assert_eq!(world.vm.statistics().mcache_files, 0);
    check(&world, &[]);
}

/// A write in flight while its entry is replaced (forgotten, and a new open filled a new
/// entry from the server, which may not have applied the write yet): when it ends, the
/// new entry is wiped, so nothing read before the write was applied outlives it.
#[test]
fn a_write_in_flight_while_the_entry_is_replaced_wipes_the_new_entry() {
    let world = mworld();
    let mut server = patterned_bytes(44, PAGE as usize);
    let a = open(&world, data_ident(44, 0), &server);
    let pending = a.begin_write();
    assert!(world.vm.mount_cache().forget(data_ident(44, 0)));
    let b = open(&world, data_ident(44, 0), &server);
    // b reads before the server applies the write.
    read_through(&b, &server, 0, server.len());
    server_write(&mut server, 0, b"late");
    pending.done(0, b"late");
    let (bytes, hit) = read_through(&b, &server, 0, server.len());
    assert_eq!((bytes, hit), (server.clone(), 0), "the new entry was wiped");
    // The same when the outcome is unknown.
    let pending = a.begin_write();
    world.vm.mount_cache().forget(data_ident(44, 0));
    let c = open(&world, data_ident(44, 0), &server);
    read_through(&c, &server, 0, server.len());
    drop(pending);
    assert_eq!(read_through(&c, &server, 0, server.len()).1, 0);
    check(&world, &[]);
}

/// A length change by path relabels the file's entry and makes none for a file without.
#[test]
fn a_length_change_by_path_relabels_and_makes_no_entry() {
    let world = mworld();
    let cache = world.vm.mount_cache();
    cache.set_length(data_ident(45, 3), 10);
    assert_eq!(world.vm.statistics().mcache_files, 0);
    let data = patterned_bytes(45, PAGE as usize);
    let file = open(&world, data_ident(45, 0), &data);
    read_through(&file, &data, 0, data.len());
    cache.set_length(data_ident(45, 1), 10);
    assert_eq!(file.length(), Some(10));
    assert_eq!(world.vm.statistics().mcache_pages, 0, "wiped");
    let again = cache.open(data_ident(45, 1), 10, OpenKind::Existing, false);
    assert_eq!(
        read_through(&again, &data[..10], 0, 10),
        (data[..10].to_vec(), 0)
    );
    assert_eq!(
        read_through(&again, &data[..10], 0, 10).1,
        10,
        "still valid"
    );
    check(&world, &[]);
}

/// `MountCache::uncached`: the file's entry goes, the handle reads nothing from the cache,
/// and its writes forget the entry a later open made.
#[test]
fn an_uncached_handle_forgets_the_entry_now_and_with_each_write() {
    let world = mworld();
    let cache = world.vm.mount_cache();
    let mut server = patterned_bytes(46, PAGE as usize);
    let before = open(&world, data_ident(46, 0), &server);
    read_through(&before, &server, 0, server.len());
    let removing = cache.uncached(data_ident(46, 0));
    assert!(!removing.is_cached() && !before.is_cached());
    let later = open(&world, data_ident(46, 0), &server);
    read_through(&later, &server, 0, server.len());
    assert_eq!(read_through(&removing, &server, 0, 8).1, 0);
    assert_eq!(write_through(&removing, &mut server, 0, b"gone"), 1);
    assert!(!later.is_cached());
    assert_eq!(read_through(&later, &server, 0, server.len()).0, server);
    check(&world, &[]);
}
