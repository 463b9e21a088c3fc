//! Fills and validation at open: hits after a fill, partial fills, what an open keeps
//! and what it wipes, files never cached.

use super::*;

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
