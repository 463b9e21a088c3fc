//! Moving pages to other frames through the reverse map: `Vm::migrate` of an object page
//! mapped by several spaces and of a private page shared after fork, a page mid write-back
//! refusing to move, and `Vm::vacate` of a range of frames (all or nothing at the check).

mod map_common;

use std::sync::{Arc, Mutex};

use map_common::{check, mmu, spec, stamp, store, world, world_of, Mmu, ServerFile, World, PAGE};
use vm::testkit::HeapFrames;
use vm::{Access, Frame, MappingRef, MigrateError, SpaceRef, Unmovable, PAGE_SIZE};

/// The page at `addr` as the program reads it (faulting), and the frame it came from.
fn read_page(world: &World, map: &MappingRef, addr: u64) -> (Frame, Vec<u8>) {
    let mapping = map.fault(addr, Access::Read).expect("read fault");
    (mapping.frame, world.frames.read(mapping.frame))
}

fn translated(mmu: &Mmu, addr: u64) -> Option<Frame> {
    mmu.entries.lock().unwrap().get(&addr).map(|entry| entry.0)
}

#[test]
fn a_migrated_page_is_seen_at_its_new_frame_by_every_mapping_with_the_same_bytes() {
    let world = world();
    let file = ServerFile::stamped(1, 4 * PAGE_SIZE);
    let (a, b, parent, child) = (mmu(1), mmu(2), mmu(3), mmu(4));
    let object = world.vm.file_object(file.open()).unwrap();
    let map_a = object
        .map(a.clone() as SpaceRef, spec(0x10000, 4, 0, true))
        .unwrap();
    let map_b = object
        .map(b.clone() as SpaceRef, spec(0x90000, 4, 0, true))
        .unwrap();
    let private = object
        .map(parent.clone() as SpaceRef, spec(0x40000, 4, 0, false))
        .unwrap();
    // A dirty shared page, and a private copy that fork then shares.
    store(&world, &map_a, 0x10000 + 2 * PAGE, 0x5a).unwrap();
    store(&world, &private, 0x40000 + PAGE, 0x77).unwrap();
    let forked = private.fork(child.clone() as SpaceRef).unwrap();
    let (old, before) = read_page(&world, &map_b, 0x90000 + 2 * PAGE);
    assert_eq!(translated(&a, 0x10000 + 2 * PAGE), Some(old));
    let (copy, copied) = read_page(&world, &forked, 0x40000 + PAGE);
    assert_eq!(read_page(&world, &private, 0x40000 + PAGE).0, copy);
    let freed = world.frames.stats().freed;

    let new = world.vm.migrate(old).expect("object page moves");
    assert_ne!(new, old);
    // Every translation of the old frame went; each mapping faults to the new one.
    assert_eq!(translated(&a, 0x10000 + 2 * PAGE), None);
    assert_eq!(translated(&b, 0x90000 + 2 * PAGE), None);
    check(&world, &[&a, &b, &parent, &child]);
    assert_eq!(
        read_page(&world, &map_a, 0x10000 + 2 * PAGE),
        (new, before.clone())
    );
    assert_eq!(read_page(&world, &map_b, 0x90000 + 2 * PAGE), (new, before));
    // The old frame went back to the kernel (and was poisoned there).
    assert_eq!(world.frames.stats().freed, freed + 1);
    // Still dirty: the write-back sends the store from the new frame.
    assert_eq!(object.dirty_pages(), 1);
    map_a.sync(0x10000, 4 * PAGE).unwrap();
    assert_eq!(file.bytes(2 * PAGE, 8), vec![0x5a; 8]);
    assert_eq!(file.bytes(2 * PAGE + 8, 1)[0], stamp(2, 0));

    let moved = world.vm.migrate(copy).expect("private page moves");
    assert_eq!(translated(&parent, 0x40000 + PAGE), None);
    assert_eq!(translated(&child, 0x40000 + PAGE), None);
    check(&world, &[&a, &b, &parent, &child]);
    assert_eq!(
        read_page(&world, &forked, 0x40000 + PAGE),
        (moved, copied.clone())
    );
    assert_eq!(read_page(&world, &private, 0x40000 + PAGE), (moved, copied));
    // Still shared by the two: a store of one copies, the other keeps the old bytes.
    store(&world, &forked, 0x40000 + PAGE, 0x99).unwrap();
    assert_eq!(read_page(&world, &private, 0x40000 + PAGE).1[0], 0x77);
    assert_eq!(world.vm.statistics().migrations, 2);
    check(&world, &[&a, &b, &parent, &child]);

    assert_eq!(
        world.vm.migrate(Frame(250)),
        Err(MigrateError {
            frame: Frame(250),
            reason: Unmovable::NotVms
        })
    );
    // The last frame number there is: no page, and no overflow either.
    assert_eq!(
        world.vm.migrate(Frame(u64::MAX)).unwrap_err().reason,
        Unmovable::NotVms
    );
    drop((map_a, map_b, private, forked, object));
    check(&world, &[&a, &b, &parent, &child]);
}

#[test]
fn a_page_mid_write_back_cannot_move_and_vacate_moves_nothing_then() {
    let world = Arc::new(world());
    let file = ServerFile::stamped(2, 2 * PAGE_SIZE);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let map = object
        .map(space.clone() as SpaceRef, spec(0x10000, 2, 0, true))
        .unwrap();
    // The other page first: a vacate that moved pages before checking them all would
    // move it before it found the held one.
    let (other, _) = read_page(&world, &map, 0x10000);
    store(&world, &map, 0x10000 + PAGE, 0x42).unwrap();
    let frame = read_page(&world, &map, 0x10000 + PAGE).0;
    let seen = Arc::new(Mutex::new(None));
    {
        let (world, seen) = (world.clone(), seen.clone());
        *file.before_write.lock().unwrap() = Some(Box::new(move || {
            // The write-back holds the page while it sends its copy.
            let lo = frame.0.min(other.0);
            let hi = frame.0.max(other.0) + 1;
            *seen.lock().unwrap() = Some((world.vm.migrate(frame), world.vm.vacate(lo..hi)));
        }));
    }
    map.sync(0x10000, 2 * PAGE).unwrap();
    let (migrated, vacated) = seen.lock().unwrap().take().expect("the hook ran");
    let held = Err(MigrateError {
        frame,
        reason: Unmovable::Held,
    });
    assert_eq!(migrated, held.map(|_: ()| Frame(0)));
    assert_eq!(vacated, held.map(|_: ()| Default::default()));
    // Nothing moved: not the held page, nor the other page of the range.
    assert_eq!(world.vm.statistics().migrations, 0);
    assert_eq!(read_page(&world, &map, 0x10000).0, other);
    assert_eq!(file.bytes(PAGE, 8), vec![0x42; 8]);
    check(&world, &[&space]);
    // Once the write-back let go, it moves.
    assert_ne!(world.vm.migrate(frame).unwrap(), frame);
    check(&world, &[&space]);
}

#[test]
fn vacate_empties_a_range_of_frames_of_every_vm_page() {
    // The kernel's zero frame (vm's own would be in the range: vacate refuses it).
    let world = world_of(HeapFrames::with_zero_frame(256), 200);
    let file = ServerFile::stamped(3, 16 * PAGE_SIZE);
    let (parent, child) = (mmu(1), mmu(2));
    let object = world.vm.file_object(file.open()).unwrap();
    let shared = object
        .map(parent.clone() as SpaceRef, spec(0x10000, 16, 0, true))
        .unwrap();
    let anon = world
        .vm
        .map_private_anon(parent.clone() as SpaceRef, spec(0x80000, 16, 0, false))
        .unwrap();
    let mut expected = Vec::new();
    for page in 0..16 {
        expected.push(read_page(&world, &shared, 0x10000 + page * PAGE).1);
        store(&world, &anon, 0x80000 + page * PAGE, page as u8 + 1).unwrap();
    }
    let forked = anon.fork(child.clone() as SpaceRef).unwrap();
    // Some free pages of vm's too: a discarded range.
    let spare = world
        .vm
        .map_private_anon(parent.clone() as SpaceRef, spec(0xc0000, 4, 0, false))
        .unwrap();
    for page in 0..4 {
        store(&world, &spare, 0xc0000 + page * PAGE, 0xff).unwrap();
    }
    spare.discard(0xc0000, 4 * PAGE);
    // Every frame vm was given so far (HeapFrames hands out 0, 1, 2, ...).
    let range = 0..world.frames.stats().allocated;
    let reserved_free = world.frames.reserve(range.clone());
    let done = world.vm.vacate(range.clone()).expect("vacate");
    assert_eq!(done.moved, 32, "16 object pages, 16 private pages");
    assert!(done.released >= 1, "{done:?}");
    assert_eq!(
        world.frames.reserved_free(),
        range.end as usize,
        "every frame of the range is back with the kernel ({reserved_free} were free)"
    );
    assert_eq!(world.vm.statistics().migrations, 32);
    check(&world, &[&parent, &child]);
    for page in 0..16 {
        let (frame, bytes) = read_page(&world, &shared, 0x10000 + page * PAGE);
        assert!(!range.contains(&frame.0));
        assert_eq!(bytes, expected[page as usize], "object page {page}");
        for map in [&anon, &forked] {
            let (frame, bytes) = read_page(&world, map, 0x80000 + page * PAGE);
            assert!(!range.contains(&frame.0));
            assert_eq!(bytes[..8], [page as u8 + 1; 8], "private page {page}");
        }
    }
    check(&world, &[&parent, &child]);
    drop((shared, anon, forked, spare, object));
    check(&world, &[&parent, &child]);
}

#[test]
fn allocation_failure_at_every_site_of_a_migration_leaves_the_invariants_intact() {
    let mut failed = 0;
    for nth in 0.. {
        let world = world();
        let file = ServerFile::stamped(4, 2 * PAGE_SIZE);
        let (a, b) = (mmu(1), mmu(2));
        let object = world.vm.file_object(file.open()).unwrap();
        let shared = object
            .map(a.clone() as SpaceRef, spec(0x10000, 2, 0, true))
            .unwrap();
        let private = world
            .vm
            .map_private_anon(a.clone() as SpaceRef, spec(0x40000, 1, 0, false))
            .unwrap();
        store(&world, &private, 0x40000, 0x33).unwrap();
        let forked = private.fork(b.clone() as SpaceRef).unwrap();
        let (page, bytes) = read_page(&world, &shared, 0x10000 + PAGE);
        let (copy, _) = read_page(&world, &forked, 0x40000);
        world.frames.fail_allocation(nth);
        let moved = (world.vm.migrate(page), world.vm.migrate(copy));
        world.frames.never_fail();
        let refused = [moved.0, moved.1]
            .iter()
            .filter(|result| {
                matches!(
                    result,
                    Err(MigrateError {
                        reason: Unmovable::NoMemory,
                        ..
                    })
                )
            })
            .count();
        for result in [moved.0, moved.1] {
            assert!(
                matches!(
                    result,
                    Ok(_)
                        | Err(MigrateError {
                            reason: Unmovable::NoMemory,
                            ..
                        })
                ),
                "{result:?}"
            );
        }
        check(&world, &[&a, &b]);
        assert_eq!(read_page(&world, &shared, 0x10000 + PAGE).1, bytes);
        for map in [&private, &forked] {
            assert_eq!(read_page(&world, map, 0x40000).1[..8], [0x33; 8]);
        }
        check(&world, &[&a, &b]);
        drop((shared, private, forked, object));
        check(&world, &[&a, &b]);
        if refused == 0 {
            break;
        }
        failed += refused;
    }
    // The fresh page of each of the two moves was refused once at least.
    assert!(failed >= 2, "{failed}");
}
