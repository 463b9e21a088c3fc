//! File and anonymous mappings: shared stores seen by every shared mapping and written
//! back, private copies, fork, bus errors, the reverse map and the checker's rules.

mod map_common;

use std::sync::{Arc, Mutex};

use map_common::{check, load, mmu, spec, stamp, store, world, ServerFile, World};

use map_common::PAGE;
use vm::check::{check_invariants, check_translations, MapViolation, Translation};
use vm::testkit::HeapFrames;
use vm::{
    Access, AllocSite, Config, FaultError, FileError, ImageFile, Mapper, SpaceRef, Vm, VmError,
    PAGE_SIZE,
};

#[test]
fn a_shared_store_is_seen_by_every_shared_mapping_and_written_back_at_sync() {
    let world = world();
    let file = ServerFile::stamped(1, 4 * PAGE_SIZE);
    let (a, b) = (mmu(1), mmu(2));
    let object = world.vm.file_object(file.open()).unwrap();
    // The same file opened again is the same object (no version in the key).
    let again = world.vm.file_object(file.open()).unwrap();
    let map_a = object
        .map(a.clone() as SpaceRef, spec(0x10000, 4, 0, true))
        .unwrap();
    let map_b = again
        .map(b.clone() as SpaceRef, spec(0x90000, 4, 0, true))
        .unwrap();
    for page in 0..4 {
        assert_eq!(
            load(&world, &map_b, 0x90000 + page * PAGE).unwrap(),
            stamp(page, 0)
        );
    }
    // A read maps a clean shared page read only: the first store must fault.
    assert!(!b.entries.lock().unwrap()[&0x90000].1);
    store(&world, &map_a, 0x10000 + 2 * PAGE + 16, stamp(2, 1)).unwrap();
    assert_eq!(
        load(&world, &map_b, 0x90000 + 2 * PAGE + 16).unwrap(),
        stamp(2, 1)
    );
    assert_eq!(object.dirty_pages(), 1);
    assert_eq!(world.vm.statistics().dirty_pages, 1);
    check(&world, &[&a, &b]);
    assert_eq!(
        file.bytes(2 * PAGE + 16, 1)[0],
        stamp(2, 0),
        "not written before sync"
    );
    assert_eq!(map_b.sync(0x90000, 4 * PAGE).unwrap(), 1);
    assert_eq!(file.bytes(2 * PAGE + 16, 8), vec![stamp(2, 1); 8]);
    // Only the page it wrote changed at the server.
    assert_eq!(file.bytes(PAGE, 1)[0], stamp(1, 0));
    // Written back: clean, and the writable translation is gone so the next store faults.
    assert_eq!(object.dirty_pages(), 0);
    assert!(!a
        .entries
        .lock()
        .unwrap()
        .contains_key(&(0x10000 + 2 * PAGE)));
    check(&world, &[&a, &b]);
    let stats = world.vm.statistics();
    assert_eq!(
        (stats.writebacks, stats.mappings, stats.rmap_records),
        (1, 2, 2)
    );
    drop((map_a, map_b, object, again));
    check(&world, &[&a, &b]);
    assert_eq!(world.vm.statistics().rmap_records, 0);
}

#[test]
fn unmap_and_exit_write_dirty_pages_back_and_a_private_mapping_never_does() {
    let world = world();
    let file = ServerFile::stamped(2, 3 * PAGE_SIZE);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let shared = object
        .map(space.clone() as SpaceRef, spec(0x10000, 3, 0, true))
        .unwrap();
    let private = object
        .map(space.clone() as SpaceRef, spec(0x50000, 3, 0, false))
        .unwrap();
    store(&world, &private, 0x50000, 0xEE).unwrap();
    // The private copy is its own: the shared mapping still sees the file's bytes.
    assert_eq!(load(&world, &shared, 0x10000).unwrap(), stamp(0, 0));
    store(&world, &shared, 0x10000 + PAGE, stamp(1, 2)).unwrap();
    check(&world, &[&space]);
    assert_eq!(shared.unmap().unwrap(), 1);
    assert_eq!(file.bytes(PAGE, 8), vec![stamp(1, 2); 8]);
    drop(private);
    assert_eq!(
        file.bytes(0, 1)[0],
        stamp(0, 0),
        "a private store never goes back"
    );
    // Exit: the drop writes back.
    let shared = object
        .map(space.clone() as SpaceRef, spec(0x10000, 3, 0, true))
        .unwrap();
    store(&world, &shared, 0x10000 + 2 * PAGE, stamp(2, 3)).unwrap();
    drop(shared);
    assert_eq!(file.bytes(2 * PAGE, 8), vec![stamp(2, 3); 8]);
    assert!(
        space.entries.lock().unwrap().is_empty(),
        "unmap invalidates"
    );
    check(&world, &[&space]);
}

#[test]
fn a_failed_write_back_keeps_the_page_dirty_and_the_next_sync_writes_it() {
    let world = world();
    let file = ServerFile::stamped(3, 2 * PAGE_SIZE);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let map = object
        .map(space.clone() as SpaceRef, spec(0x10000, 2, 0, true))
        .unwrap();
    store(&world, &map, 0x10000, 0x55).unwrap();
    *file.fail_writes.lock().unwrap() = true;
    assert_eq!(map.sync(0x10000, 2 * PAGE), Err(VmError::Io(FileError::Io)));
    assert_eq!(object.dirty_pages(), 1);
    check(&world, &[&space]);
    *file.fail_writes.lock().unwrap() = false;
    assert_eq!(map.sync(0x10000, 2 * PAGE).unwrap(), 1);
    assert_eq!(file.bytes(0, 8), vec![0x55; 8]);
    assert_eq!(world.vm.statistics().writeback_errors, 1);
}

#[test]
fn a_page_past_the_end_of_the_file_is_a_bus_error_and_outside_the_mapping_a_bad_address() {
    let world = world();
    // One page and a half: the second page holds the end and reads zeros past it.
    let file = ServerFile::stamped(4, PAGE_SIZE + PAGE_SIZE / 2);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let map = object
        .map(space.clone() as SpaceRef, spec(0x10000, 4, 0, true))
        .unwrap();
    assert_eq!(load(&world, &map, 0x10000 + PAGE + 8).unwrap(), stamp(1, 0));
    assert_eq!(
        load(&world, &map, 0x10000 + PAGE + PAGE / 2 + 8).unwrap(),
        0
    );
    assert_eq!(
        map.fault(0x10000 + 2 * PAGE, Access::Read),
        Err(FaultError::PastEnd)
    );
    assert_eq!(
        map.fault(0x10000 + 4 * PAGE, Access::Read),
        Err(FaultError::BadAddress)
    );
    assert_eq!(world.vm.statistics().bus_errors, 1);
    // A store into the last page writes back no byte past the end.
    store(&world, &map, 0x10000 + PAGE, 0x77).unwrap();
    drop(map);
    assert_eq!(file.data.lock().unwrap().len(), PAGE_SIZE + PAGE_SIZE / 2);
    check(&world, &[&space]);
}

#[test]
fn fork_shares_shared_mappings_and_makes_private_ones_copy_on_write() {
    let world = world();
    let (parent, child) = (mmu(1), mmu(2));
    let anon = world.vm.anon_object(2 * PAGE).unwrap();
    let shared = anon
        .map(parent.clone() as SpaceRef, spec(0x10000, 2, 0, true))
        .unwrap();
    let private = world
        .vm
        .map_private_anon(parent.clone() as SpaceRef, spec(0x40000, 2, 0, false))
        .unwrap();
    store(&world, &shared, 0x10000, 0x11).unwrap();
    store(&world, &private, 0x40000, 0x22).unwrap();
    let child_shared = shared.fork(child.clone() as SpaceRef).unwrap();
    let child_private = private.fork(child.clone() as SpaceRef).unwrap();
    // Fork write-protected the parent's private translations.
    assert!(!parent.entries.lock().unwrap().contains_key(&0x40000));
    check(&world, &[&parent, &child]);
    assert_eq!(load(&world, &child_private, 0x40000).unwrap(), 0x22);
    // Before anyone copies, both spaces map the private page: the lineage finds them.
    let both = vec![
        Mapper {
            space: 1,
            addr: 0x40000,
        },
        Mapper {
            space: 2,
            addr: 0x40000,
        },
    ];
    let mut found = private.mappers_at(0x40000).unwrap();
    found.sort();
    assert_eq!(found, both);
    store(&world, &child_private, 0x40000, 0x33).unwrap();
    assert_eq!(load(&world, &private, 0x40000).unwrap(), 0x22);
    assert_eq!(private.mappers_at(0x40000).unwrap(), vec![both[0]]);
    assert_eq!(child_private.mappers_at(0x40000).unwrap(), vec![both[1]]);
    // Shared anonymous memory is shared: the child's store is the parent's.
    store(&world, &child_shared, 0x10000 + 8, 0x44).unwrap();
    assert_eq!(load(&world, &shared, 0x10000 + 8).unwrap(), 0x44);
    check(&world, &[&parent, &child]);
    drop((child_shared, child_private));
    check(&world, &[&parent, &child]);
    drop((shared, private, anon));
    check(&world, &[&parent, &child]);
    assert_eq!(world.vm.statistics().rmap_records, 0);
}

#[test]
fn two_spaces_mapping_overlapping_ranges_lose_exactly_the_overlapping_pages() {
    let world = world();
    let file = ServerFile::stamped(5, 8 * PAGE_SIZE);
    let (a, b) = (mmu(1), mmu(2));
    let object = world.vm.file_object(file.open()).unwrap();
    // a maps file pages 0..6, b maps pages 3..8: they overlap in pages 3..6.
    let map_a = object
        .map(a.clone() as SpaceRef, spec(0x10000, 6, 0, true))
        .unwrap();
    let map_b = object
        .map(b.clone() as SpaceRef, spec(0x80000, 5, 3, true))
        .unwrap();
    for page in 0..6 {
        store(&world, &map_a, 0x10000 + page * PAGE, stamp(page, 4)).unwrap();
    }
    for page in 0..5 {
        let at = 0x80000 + page * PAGE;
        // File pages 3..6 are a's stores, 6..8 the file's own bytes.
        let generation = if page + 3 < 6 { 4 } else { 0 };
        assert_eq!(
            load(&world, &map_b, at).unwrap(),
            stamp(page + 3, generation),
            "b's page {page}"
        );
        store(&world, &map_b, at + 8, stamp(page + 3, 4)).unwrap();
    }
    assert_eq!(
        map_a.mappers_at(0x10000 + 4 * PAGE).unwrap(),
        vec![
            Mapper {
                space: 1,
                addr: 0x10000 + 4 * PAGE
            },
            Mapper {
                space: 2,
                addr: 0x80000 + PAGE
            }
        ]
    );
    assert_eq!(map_a.mappers_at(0x10000 + PAGE).unwrap().len(), 1);
    check(&world, &[&a, &b]);
    // Write back (and so write-protect) a's pages 2..5: file pages 2..5.
    assert_eq!(map_a.sync(0x10000 + 2 * PAGE, 3 * PAGE).unwrap(), 3);
    let a_left: Vec<u64> = a
        .entries
        .lock()
        .unwrap()
        .keys()
        .map(|at| (at - 0x10000) / PAGE)
        .collect();
    let b_left: Vec<u64> = b
        .entries
        .lock()
        .unwrap()
        .keys()
        .map(|at| (at - 0x80000) / PAGE + 3)
        .collect();
    assert_eq!(a_left, vec![0, 1, 5]);
    assert_eq!(b_left, vec![5, 6, 7]);
    for page in 2..5 {
        assert_eq!(
            file.bytes(page * PAGE, 1)[0],
            stamp(page, 4),
            "file page {page}"
        );
    }
    check(&world, &[&a, &b]);
}

#[test]
fn the_checker_refuses_a_translation_the_reverse_map_does_not_list() {
    let world = world();
    let file = ServerFile::stamped(6, 2 * PAGE_SIZE);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let map = object
        .map(space.clone() as SpaceRef, spec(0x10000, 2, 0, true))
        .unwrap();
    let frame = map.fault(0x10000, Access::Read).unwrap().frame;
    check(&world, &[&space]);
    // The same frame at an address no mapping maps it at.
    let stray = Translation {
        space: 1,
        addr: 0x10000 + PAGE,
        frame,
        writable: false,
    };
    assert_eq!(
        check_translations(&world.vm, &[stray]),
        Err(MapViolation::Unlisted {
            space: 1,
            addr: 0x10000 + PAGE
        })
    );
    // Writable, though the page is clean.
    let writable = Translation {
        space: 1,
        addr: 0x10000,
        frame,
        writable: true,
    };
    assert_eq!(
        check_translations(&world.vm, &[writable]),
        Err(MapViolation::WritableNotAllowed {
            space: 1,
            addr: 0x10000
        })
    );
    drop(map);
    check_invariants(&world.vm, None).expect("invariants after unmap");
}

#[test]
fn allocation_failure_at_every_mapping_site_leaves_the_invariants_intact() {
    let sites = [
        AllocSite::MemObject,
        AllocSite::Mapping,
        AllocSite::Channel,
        AllocSite::Page,
        AllocSite::PageTable,
        AllocSite::WriteBackBuffer,
    ];
    for site in sites {
        let world = world();
        let file = ServerFile::stamped(7, 2 * PAGE_SIZE);
        let (a, b) = (mmu(1), mmu(2));
        world.frames.fail_site(site);
        let result = (|| -> Result<(), String> {
            let object = world
                .vm
                .file_object(file.open())
                .map_err(|e| e.to_string())?;
            let map = object
                .map(a.clone() as SpaceRef, spec(0x10000, 2, 0, true))
                .map_err(|e| e.to_string())?;
            let private = world
                .vm
                .map_private_anon(a.clone() as SpaceRef, spec(0x40000, 1, 0, false))
                .map_err(|e| e.to_string())?;
            store(&world, &map, 0x10000, 0x99).map_err(|e| e.to_string())?;
            store(&world, &private, 0x40000, 0x98).map_err(|e| e.to_string())?;
            let child = private
                .fork(b.clone() as SpaceRef)
                .map_err(|e| e.to_string())?;
            check(&world, &[&a, &b]);
            map.sync(0x10000, 2 * PAGE).map_err(|e| e.to_string())?;
            drop(child);
            Ok(())
        })();
        assert!(result.is_err(), "{site:?} was never reached");
        check(&world, &[&a, &b]);
        let stats = world.vm.statistics();
        assert_eq!((stats.mappings, stats.rmap_records), (0, 0), "{site:?}");
        world.frames.never_fail();
    }
}

#[test]
fn discard_gives_private_pages_back_to_the_file_and_keeps_shared_ones() {
    let world = world();
    let file = ServerFile::stamped(8, 2 * PAGE_SIZE);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let private = object
        .map(space.clone() as SpaceRef, spec(0x10000, 2, 0, false))
        .unwrap();
    let shared = object
        .map(space.clone() as SpaceRef, spec(0x50000, 2, 0, true))
        .unwrap();
    let anon = world
        .vm
        .map_private_anon(space.clone() as SpaceRef, spec(0x90000, 1, 0, false))
        .unwrap();
    store(&world, &private, 0x10000, 0x12).unwrap();
    store(&world, &shared, 0x50000 + PAGE, 0x34).unwrap();
    store(&world, &anon, 0x90000, 0x56).unwrap();
    assert_eq!(private.discard(0x10000, 2 * PAGE), 1);
    assert_eq!(anon.discard(0x90000, PAGE), 1);
    assert_eq!(shared.discard(0x50000, 2 * PAGE), 1);
    assert!(space.entries.lock().unwrap().is_empty());
    assert_eq!(
        load(&world, &private, 0x10000).unwrap(),
        stamp(0, 0),
        "the file's bytes again"
    );
    assert_eq!(load(&world, &anon, 0x90000).unwrap(), 0, "zero fill again");
    assert_eq!(
        load(&world, &shared, 0x50000 + PAGE).unwrap(),
        0x34,
        "the object keeps it"
    );
    assert_eq!(object.dirty_pages(), 1);
    check(&world, &[&space]);
}

#[test]
fn reads_see_unwritten_shared_stores_and_writes_are_seen_through_the_mappings() {
    let world = world();
    let file = ServerFile::stamped(9, 2 * PAGE_SIZE);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let map = object
        .map(space.clone() as SpaceRef, spec(0x10000, 3, 0, true))
        .unwrap();
    store(&world, &map, 0x10000 + 8, 0x61).unwrap();
    // What the server returns, overlaid with the resident page.
    let mut buf = file.bytes(0, 32);
    assert_eq!(world.vm.read_mapped(&file.identity, 0, &mut buf), 1);
    assert_eq!(&buf[8..16], &[0x61; 8]);
    // A write to the server, told to vm, is seen by the mapping (and grows the size: the
    // third page was past the end, now it is not).
    assert_eq!(
        map.fault(0x10000 + 2 * PAGE, Access::Read),
        Err(FaultError::PastEnd)
    );
    // Resident before the write, so only vm's copy can make the mapping see it.
    assert_eq!(load(&world, &map, 0x10000 + PAGE + 4).unwrap(), stamp(1, 0));
    file.write_at(PAGE + 4, &[0x62; 4]).unwrap();
    assert_eq!(
        world.vm.wrote_mapped(&file.identity, PAGE + 4, &[0x62; 4]),
        1
    );
    file.write_at(2 * PAGE, &[0x63; 4]).unwrap();
    world.vm.wrote_mapped(&file.identity, 2 * PAGE, &[0x63; 4]);
    assert_eq!(load(&world, &map, 0x10000 + PAGE + 4).unwrap(), 0x62);
    assert_eq!(load(&world, &map, 0x10000 + 2 * PAGE).unwrap(), 0x63);
    assert_eq!(object.size(), 2 * PAGE + 4);
    check(&world, &[&space]);
}

#[test]
fn a_write_told_while_a_fault_reads_the_page_makes_the_fault_read_it_again() {
    let world = world();
    let file = ServerFile::stamped(10, 2 * PAGE_SIZE);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let map = object
        .map(space.clone() as SpaceRef, spec(0x10000, 2, 0, true))
        .unwrap();
    // The kernel's write lands after the fault's read took the old bytes and before the
    // fault caches them.
    let ran = Arc::new(Mutex::new(false));
    let (vm, server, identity, flag) = (world.vm.clone(), file.clone(), file.identity, ran.clone());
    *file.after_read.lock().unwrap() = Some(Box::new(move || {
        server.write_at(8, &[0x7e; 8]).unwrap();
        assert_eq!(
            vm.wrote_mapped(&identity, 8, &[0x7e; 8]),
            0,
            "not resident yet"
        );
        *flag.lock().unwrap() = true;
    }));
    let loads = world.vm.statistics().page_loads;
    assert_eq!(load(&world, &map, 0x10000 + 8).unwrap(), 0x7e);
    assert!(*ran.lock().unwrap(), "the write was staged inside the load");
    assert_eq!(world.vm.statistics().page_loads - loads, 2, "read again");
    // With a writable shared mapping, a told write marks a resident page dirty (a
    // write-back in flight may be sending an older copy).
    assert_eq!(object.dirty_pages(), 0);
    world.vm.wrote_mapped(&identity, 16, &[0x7f; 8]);
    assert_eq!(object.dirty_pages(), 1);
    check(&world, &[&space]);
}

#[test]
fn truncate_unmaps_every_page_past_the_size_private_copies_too_and_zeroes_the_tail() {
    let world = world();
    let file = ServerFile::stamped(11, 4 * PAGE_SIZE);
    let (a, b) = (mmu(1), mmu(2));
    let object = world.vm.file_object(file.open()).unwrap();
    let shared = object
        .map(a.clone() as SpaceRef, spec(0x10000, 4, 0, true))
        .unwrap();
    // b maps file pages 1..4 privately.
    let private = object
        .map(b.clone() as SpaceRef, spec(0x80000, 3, 1, false))
        .unwrap();
    for page in 0..4 {
        store(&world, &shared, 0x10000 + page * PAGE, stamp(page, 6)).unwrap();
    }
    // A private copy of file page 2, and file page 3 mapped as the object's.
    store(&world, &private, 0x80000 + PAGE, 0x77).unwrap();
    assert_eq!(
        load(&world, &private, 0x80000 + 2 * PAGE).unwrap(),
        stamp(3, 6)
    );
    assert_eq!(object.dirty_pages(), 4);
    // The server truncates to a page and a half; then vm is told.
    let size = PAGE + PAGE / 2;
    file.data.lock().unwrap().truncate(size as usize);
    assert_eq!(world.vm.truncate_mapped(&file.identity, size).unwrap(), 2);
    assert_eq!(object.size(), size);
    assert_eq!(object.dirty_pages(), 2);
    // Pages 2 and 3 are gone from both spaces, the private copy of page 2 too.
    let a_left: Vec<u64> = a.entries.lock().unwrap().keys().copied().collect();
    let b_left: Vec<u64> = b.entries.lock().unwrap().keys().copied().collect();
    assert!(
        a_left.iter().all(|at| *at < 0x10000 + 2 * PAGE),
        "{a_left:x?}"
    );
    assert!(b_left.iter().all(|at| *at < 0x80000 + PAGE), "{b_left:x?}");
    for (map, at) in [(&shared, 0x10000 + 2 * PAGE), (&private, 0x80000 + PAGE)] {
        assert_eq!(map.fault(at, Access::Read), Err(FaultError::PastEnd));
    }
    // The last page reads zeros past the size; before it, our store stays.
    assert_eq!(load(&world, &shared, 0x10000 + PAGE).unwrap(), stamp(1, 6));
    assert_eq!(load(&world, &shared, 0x10000 + PAGE + PAGE / 2).unwrap(), 0);
    assert_eq!(load(&world, &private, 0x80000 + PAGE / 2).unwrap(), 0);
    check(&world, &[&a, &b]);
    // Write-back sends nothing past the size.
    drop((shared, private));
    assert_eq!(file.data.lock().unwrap().len(), size as usize);
    check(&world, &[&a, &b]);
}

#[test]
fn reclaim_unmaps_clean_mapped_pages_through_the_reverse_map_and_never_takes_dirty_ones() {
    // Room for 8 pages, and a file of 12 mapped by two spaces.
    let frames = HeapFrames::new(16);
    let vm = Vm::new(
        frames.allocator(),
        Config {
            max_pages: 8,
            reclaim_batch: 2,
            ..Config::default()
        },
    )
    .unwrap();
    let world = World { vm, frames };
    let file = ServerFile::stamped(12, 12 * PAGE_SIZE);
    let (a, b) = (mmu(1), mmu(2));
    let object = world.vm.file_object(file.open()).unwrap();
    let map_a = object
        .map(a.clone() as SpaceRef, spec(0x10000, 12, 0, true))
        .unwrap();
    let map_b = object
        .map(b.clone() as SpaceRef, spec(0x90000, 12, 0, false))
        .unwrap();
    // Three dirty pages.
    for page in 0..3 {
        store(&world, &map_a, 0x10000 + page * PAGE, stamp(page, 7)).unwrap();
    }
    // Every other page read through both mappings, twice: more than fit.
    for _ in 0..2 {
        for page in 3..12 {
            assert_eq!(
                load(&world, &map_a, 0x10000 + page * PAGE).unwrap(),
                stamp(page, 0)
            );
            assert_eq!(
                load(&world, &map_b, 0x90000 + page * PAGE).unwrap(),
                stamp(page, 0)
            );
            check(&world, &[&a, &b]);
        }
    }
    assert!(world.vm.statistics().reclaimed_pages > 0);
    assert!(object.resident_pages() <= 8);
    // The dirty pages stayed (and so did their stores).
    assert_eq!(object.dirty_pages(), 3);
    for page in 0..3 {
        assert_eq!(
            load(&world, &map_b, 0x90000 + page * PAGE).unwrap(),
            stamp(page, 7)
        );
    }
    assert_eq!(map_a.sync(0x10000, 12 * PAGE).unwrap(), 3);
    for page in 0..3 {
        assert_eq!(file.bytes(page * PAGE, 1), vec![stamp(page, 7)]);
    }
    check(&world, &[&a, &b]);
}

#[test]
fn a_store_past_the_end_reads_as_zeros_once_the_file_grows_over_it() {
    let world = world();
    let size = PAGE + PAGE / 2;
    let file = ServerFile::stamped(12, size as usize);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let map = object
        .map(space.clone() as SpaceRef, spec(0x10000, 2, 0, true))
        .unwrap();
    // A store into the last page, past the end: in memory, never written back.
    let past = 0x10000 + size + 8;
    store(&world, &map, past, 0x55).unwrap();
    assert_eq!(load(&world, &map, past).unwrap(), 0x55);
    // The file grows by truncate: the server has zeros there, and so has the page.
    file.data.lock().unwrap().resize(2 * PAGE_SIZE - 64, 0);
    world
        .vm
        .truncate_mapped(&file.identity, 2 * PAGE - 64)
        .unwrap();
    assert_eq!(
        load(&world, &map, past).unwrap(),
        0,
        "the store past the end"
    );
    // Another store past the new end, then a write beyond it: the hole reads as zeros.
    let past = 0x10000 + 2 * PAGE - 32;
    store(&world, &map, past, 0x56).unwrap();
    file.write_at(2 * PAGE - 8, &[0x57; 8]).unwrap();
    world
        .vm
        .wrote_mapped(&file.identity, 2 * PAGE - 8, &[0x57; 8]);
    assert_eq!(load(&world, &map, past).unwrap(), 0, "the hole");
    assert_eq!(load(&world, &map, 0x10000 + 2 * PAGE - 8).unwrap(), 0x57);
    check(&world, &[&space]);
    // Written back, the server's bytes are the page's.
    map.sync(0x10000, 2 * PAGE).unwrap();
    let server = file.bytes(0, 2 * PAGE_SIZE);
    let mut seen = server.clone();
    assert_eq!(world.vm.read_mapped(&file.identity, 0, &mut seen), 1);
    assert_eq!(seen, server, "the resident page and the server differ");
}

#[test]
fn a_truncate_the_server_refuses_loses_no_store() {
    let world = world();
    let file = ServerFile::stamped(13, 2 * PAGE_SIZE);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let map = object
        .map(space.clone() as SpaceRef, spec(0x10000, 2, 0, true))
        .unwrap();
    store(&world, &map, 0x10000 + PAGE + 8, 0x6b).unwrap();
    // vm's part: past the new size a bus error, the translation gone.
    let pending = world.vm.begin_truncate(&file.identity, 8).unwrap();
    assert_eq!(object.size(), 8);
    assert_eq!(
        map.fault(0x10000 + PAGE, Access::Read),
        Err(FaultError::PastEnd)
    );
    // The server refused: the old size is back, and so is the store, still dirty.
    pending.abort();
    assert_eq!(object.size(), 2 * PAGE);
    assert_eq!(object.dirty_pages(), 1);
    assert_eq!(load(&world, &map, 0x10000 + PAGE + 8).unwrap(), 0x6b);
    assert_eq!(load(&world, &map, 0x10000 + 8).unwrap(), stamp(0, 0));
    check(&world, &[&space]);
    map.sync(0x10000, 2 * PAGE).unwrap();
    assert_eq!(file.bytes(PAGE + 8, 1), vec![0x6b]);
    // Dropped without a commit it aborts too; a commit drops the pages past the size.
    drop(world.vm.begin_truncate(&file.identity, 8).unwrap());
    assert_eq!(object.size(), 2 * PAGE);
    let pending = world.vm.begin_truncate(&file.identity, PAGE).unwrap();
    file.data.lock().unwrap().truncate(PAGE_SIZE);
    assert_eq!(pending.commit(), 1);
    assert_eq!(object.size(), PAGE);
    check(&world, &[&space]);
}
