//! Handles that outlive their entry: writes through a handle whose entry was evicted,
//! forgotten, replaced mid-write or opened uncached, and length changes by path.

use super::*;

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
