//! Our own writes and length changes: what they keep, update and wipe, and fills from
//! before a change dropped.

use super::*;

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
