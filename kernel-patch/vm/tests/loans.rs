//! Page loans (`mapping/loan.rs`): a loan is a snapshot of the pages it lent, read only in
//! every mapping while it lives; a store breaks it by copying; an owner letting go of a lent
//! page leaves an orphan that the last loan frees; untouched anonymous memory lends the
//! zero page and allocates nothing.

mod map_common;

use std::sync::Arc;

use map_common::{
    check, load, loan_bytes, mmu, spec, stamp, store, world, Mmu, ServerFile, World, PAGE,
};
use vm::{ImageFile, LendError, MappingRef, ObjectRef, SpaceRef};

const BASE: u64 = 0x4000_0000;
const OTHER: u64 = 0x8000_0000;

fn file_object(world: &World, file: &ServerFile) -> ObjectRef {
    world.vm.file_object(file.open()).expect("object")
}

fn map(object: &ObjectRef, space: &Arc<Mmu>, base: u64, pages: u64, shared: bool) -> MappingRef {
    object
        .map(space.clone() as SpaceRef, spec(base, pages, 0, shared))
        .expect("map")
}

fn anon(world: &World, space: &Arc<Mmu>, pages: u64) -> MappingRef {
    world
        .vm
        .map_private_anon(space.clone() as SpaceRef, spec(BASE, pages, 0, false))
        .expect("map")
}

#[test]
fn a_store_after_a_lend_breaks_the_loan_and_the_loan_keeps_the_old_bytes() {
    let world = world();
    let file = ServerFile::stamped(1, 4 * PAGE as usize);
    let object = file_object(&world, &file);
    let space = mmu(1);
    let map = map(&object, &space, BASE, 4, true);
    let loan = map.lend(BASE, 4 * PAGE).expect("lend");
    assert_eq!((loan.pages(), loan.len()), (4, 4 * PAGE));
    assert_eq!(
        loan_bytes(&world, &loan),
        (0..4).map(|i| stamp(i, 0)).collect::<Vec<_>>()
    );
    check(&world, &[&space]);
    store(&world, &map, BASE + PAGE, 0xee).expect("store");
    assert_eq!(load(&world, &map, BASE + PAGE), Ok(0xee));
    assert_eq!(
        loan_bytes(&world, &loan)[1],
        stamp(1, 0),
        "the loan is a snapshot"
    );
    let stats = world.vm.statistics();
    assert_eq!((stats.loan_breaks, stats.pages_lent), (1, 4));
    check(&world, &[&space]);
    drop(loan);
    let stats = world.vm.statistics();
    assert_eq!((stats.pages_lent, stats.orphan_pages), (0, 0));
    check(&world, &[&space]);
}

#[test]
fn sixteen_untouched_anonymous_pages_lend_the_zero_page_and_allocate_nothing() {
    let world = world();
    let space = mmu(1);
    let map = anon(&world, &space, 16);
    let before = (
        world.frames.stats().allocated,
        world.vm.statistics().pages_allocated,
    );
    let loan = map.lend(BASE, 16 * PAGE).expect("lend");
    assert_eq!(loan.zero_pages(), 16);
    assert!(loan.frames().all(|frame| frame == world.vm.zero_frame()));
    assert_eq!(
        (
            world.frames.stats().allocated,
            world.vm.statistics().pages_allocated
        ),
        before
    );
    assert_eq!(world.vm.statistics().zero_page_loans, 16);
    check(&world, &[&space]);
}

#[test]
fn a_misaligned_or_outside_range_is_refused() {
    let world = world();
    let space = mmu(1);
    let map = anon(&world, &space, 4);
    assert_eq!(map.lend(BASE + 1, PAGE).unwrap_err(), LendError::BadRange);
    assert_eq!(map.lend(BASE, 0).unwrap_err(), LendError::BadRange);
    assert_eq!(map.lend(BASE, 5 * PAGE).unwrap_err(), LendError::BadRange);
    assert_eq!(map.lend(OTHER, PAGE).unwrap_err(), LendError::BadRange);
}

#[test]
fn a_loan_from_one_shared_mapping_keeps_its_bytes_when_another_stores() {
    let world = world();
    let file = ServerFile::stamped(2, 2 * PAGE as usize);
    let object = file_object(&world, &file);
    let (a, b) = (mmu(1), mmu(2));
    let map_a = map(&object, &a, BASE, 2, true);
    let map_b = map(&object, &b, OTHER, 2, true);
    // b stores first: its page is dirty and mapped writable there.
    store(&world, &map_b, OTHER, stamp(0, 1)).expect("store");
    assert!(b.entries.lock().unwrap()[&OTHER].1);
    let loan = map_a.lend(BASE, 2 * PAGE).expect("lend");
    // The first loan write-protected b's writable translation of the dirty page: one
    // invalidation in each writable shared mapping of it (a's and b's).
    assert!(!b.entries.lock().unwrap().contains_key(&OTHER));
    assert_eq!(world.vm.statistics().loan_invalidations, 2);
    check(&world, &[&a, &b]);
    store(&world, &map_b, OTHER, stamp(0, 2)).expect("store");
    assert_eq!(loan_bytes(&world, &loan), vec![stamp(0, 1), stamp(1, 0)]);
    // Both views and a read see the new bytes.
    assert_eq!(load(&world, &map_a, BASE), Ok(stamp(0, 2)));
    assert_eq!(load(&world, &map_b, OTHER), Ok(stamp(0, 2)));
    let mut read = vec![0; 8];
    world.vm.read_mapped(&file.identity, 0, &mut read);
    assert_eq!(read, vec![stamp(0, 2); 8]);
    // The dirty mark moved with the bytes: one dirty page, written back once.
    assert_eq!(object.dirty_pages(), 1);
    check(&world, &[&a, &b]);
    assert_eq!(map_b.sync(OTHER, 2 * PAGE), Ok(1));
    assert_eq!(file.bytes(0, 8), vec![stamp(0, 2); 8]);
    drop(loan);
    check(&world, &[&a, &b]);
}

#[test]
fn a_private_page_lent_before_fork_keeps_its_bytes_when_the_child_writes() {
    let world = world();
    let (parent, child) = (mmu(1), mmu(2));
    let map = anon(&world, &parent, 2);
    store(&world, &map, BASE, 0x11).expect("store");
    let loan = map.lend(BASE, 2 * PAGE).expect("lend");
    // The parent's writable translation went with the first loan.
    assert!(!parent.entries.lock().unwrap().contains_key(&BASE));
    assert_eq!(loan.zero_pages(), 1);
    let forked = map.fork(child.clone() as SpaceRef).expect("fork");
    store(&world, &forked, BASE, 0x22).expect("child store");
    store(&world, &map, BASE, 0x33).expect("parent store");
    assert_eq!(load(&world, &forked, BASE), Ok(0x22));
    assert_eq!(load(&world, &map, BASE), Ok(0x33));
    assert_eq!(loan_bytes(&world, &loan), vec![0x11, 0]);
    let stats = world.vm.statistics();
    // Both stores copied the lent page; it is now held by its loan alone.
    assert_eq!((stats.loan_breaks, stats.orphan_pages), (2, 1));
    check(&world, &[&parent, &child]);
    drop(loan);
    assert_eq!(world.vm.statistics().orphan_pages, 0);
    check(&world, &[&parent, &child]);
}

#[test]
fn a_lent_file_page_truncated_away_is_an_orphan_freed_at_the_release() {
    let world = world();
    let file = ServerFile::stamped(3, 2 * PAGE as usize);
    let object = file_object(&world, &file);
    let space = mmu(1);
    let map = map(&object, &space, BASE, 2, true);
    let loan = map.lend(BASE, 2 * PAGE).expect("lend");
    let in_use = world.frames.stats().outstanding();
    world
        .vm
        .truncate_mapped(&file.identity, 0)
        .expect("truncate");
    file.data.lock().unwrap().clear();
    assert_eq!(object.resident_pages(), 0);
    let stats = world.vm.statistics();
    assert_eq!((stats.orphan_pages, stats.pages_lent), (2, 2));
    // Orphans keep their frames: none went back.
    assert_eq!(world.frames.stats().outstanding(), in_use);
    assert_eq!(loan_bytes(&world, &loan), vec![stamp(0, 0), stamp(1, 0)]);
    check(&world, &[&space]);
    drop(loan);
    let stats = world.vm.statistics();
    assert_eq!((stats.orphan_pages, stats.pages_lent), (0, 0));
    // The two frames are freed now (the pool keeps them free, or gave them back).
    assert_eq!(
        stats.free_pages as u64 + in_use - world.frames.stats().outstanding(),
        2
    );
    check(&world, &[&space]);
}

#[test]
fn an_anonymous_page_lent_outlives_its_mapping() {
    let world = world();
    let space = mmu(1);
    let map = anon(&world, &space, 1);
    store(&world, &map, BASE, 0x5a).expect("store");
    let loan = map.lend(BASE, PAGE).expect("lend");
    drop(map); // the process exits
    assert_eq!(world.vm.statistics().orphan_pages, 1);
    assert_eq!(loan_bytes(&world, &loan), vec![0x5a]);
    check(&world, &[&space]);
    let free = world.vm.statistics().free_pages;
    loan.release();
    let stats = world.vm.statistics();
    assert_eq!((stats.orphan_pages, stats.free_pages), (0, free + 1));
    check(&world, &[&space]);
}

#[test]
fn a_non_resident_file_page_is_faulted_in_to_be_lent() {
    let world = world();
    let file = ServerFile::stamped(4, 3 * PAGE as usize);
    let object = file_object(&world, &file);
    let space = mmu(1);
    let map = map(&object, &space, BASE, 3, false);
    let loan = map.lend(BASE, 3 * PAGE).expect("lend");
    assert_eq!(object.resident_pages(), 3);
    assert_eq!(
        loan_bytes(&world, &loan),
        (0..3).map(|i| stamp(i, 0)).collect::<Vec<_>>()
    );
    // A private store copies; the object's lent page is untouched.
    store(&world, &map, BASE, 0x77).expect("store");
    assert_eq!(loan_bytes(&world, &loan)[0], stamp(0, 0));
    check(&world, &[&space]);
}

#[test]
fn a_loan_reaching_past_the_end_of_the_file_gives_back_what_it_took() {
    let world = world();
    let file = ServerFile::stamped(5, 2 * PAGE as usize);
    let object = file_object(&world, &file);
    let space = mmu(1);
    let map = map(&object, &space, BASE, 4, true);
    assert_eq!(map.lend(BASE, 4 * PAGE).unwrap_err(), LendError::PastEnd);
    let stats = world.vm.statistics();
    assert_eq!((stats.pages_lent, stats.loans), (0, 0));
    check(&world, &[&space]);
    // Nothing stayed read only: a store does not break anything.
    store(&world, &map, BASE, 1).expect("store");
    assert_eq!(world.vm.statistics().loan_breaks, 0);
}

#[test]
fn the_loan_count_overflowing_is_an_error_and_the_loan_gives_back_every_page() {
    let world = world();
    let space = mmu(1);
    let map = anon(&world, &space, 3);
    for page in 0..3 {
        store(&world, &map, BASE + page * PAGE, 9).expect("store");
    }
    assert!(vm::testkit::preset_loans(&map, BASE + 2 * PAGE, u32::MAX));
    assert_eq!(
        map.lend(BASE, 3 * PAGE).unwrap_err(),
        LendError::TooManyLoans
    );
    assert_eq!(world.vm.statistics().pages_lent, u64::from(u32::MAX));
    // Pages 0 and 1 were lent and given back: they are writable again, in place.
    let before = map.fault(BASE, vm::Access::Write).expect("store").frame;
    assert!(vm::testkit::preset_loans(&map, BASE + 2 * PAGE, 0));
    assert_eq!(world.vm.statistics().pages_lent, 0);
    check(&world, &[&space]);
    let again = map.lend(BASE, 3 * PAGE).expect("lend");
    assert_eq!(again.frame(0), Some(before));
    assert_eq!(world.vm.statistics().loan_breaks, 0);
}

#[test]
fn reclaim_and_migration_leave_lent_pages_alone() {
    let world = world();
    let file = ServerFile::stamped(6, 2 * PAGE as usize);
    let object = file_object(&world, &file);
    let space = mmu(1);
    let map = map(&object, &space, BASE, 2, true);
    let loan = map.lend(BASE, PAGE).expect("lend");
    load(&world, &map, BASE + PAGE).expect("load");
    let frame = loan.frame(0).unwrap();
    let err = world.vm.migrate(frame).unwrap_err();
    assert_eq!((err.frame, err.reason), (frame, vm::Unmovable::Lent));
    let vacate = world.vm.vacate(frame.0..frame.0 + 1).unwrap_err();
    assert_eq!(vacate.reason, vm::Unmovable::Lent);
    // Reclaim takes the clean unlent page only.
    world.vm.shrink(u64::MAX as usize);
    assert_eq!(object.resident_pages(), 1);
    assert_eq!(loan_bytes(&world, &loan), vec![stamp(0, 0)]);
    check(&world, &[&space]);
    drop(loan);
    world.vm.shrink(u64::MAX as usize);
    assert_eq!(object.resident_pages(), 0);
    check(&world, &[&space]);
}

#[test]
fn a_write_of_the_kernels_into_a_lent_page_copies_it_first() {
    let world = world();
    let file = ServerFile::stamped(7, PAGE as usize);
    let object = file_object(&world, &file);
    let space = mmu(1);
    let map = map(&object, &space, BASE, 1, true);
    let loan = map.lend(BASE, PAGE).expect("lend");
    assert_eq!(world.vm.wrote_mapped(&file.identity, 0, &[0xab; 8]), 1);
    assert_eq!(loan_bytes(&world, &loan), vec![stamp(0, 0)]);
    assert_eq!(load(&world, &map, BASE), Ok(0xab));
    assert_eq!(world.vm.statistics().loan_snapshots_lost, 0);
    check(&world, &[&space]);
    drop(loan);
    check(&world, &[&space]);
}

/// Runs `op` on a fresh world once for each allocation it asks for, refusing that one:
/// each run ends in success or in `out_of_memory`, leaves the invariants true and, once
/// everything is dropped, every frame given back. Returns how many allocations the
/// successful run asked for.
fn fail_each_allocation<T>(
    setup: impl Fn(&World) -> T,
    op: impl Fn(&World, &T) -> Result<(), LendError>,
    mmus: impl Fn(&T) -> Vec<Arc<Mmu>>,
) -> u64 {
    for nth in 0.. {
        assert!(nth < 1000, "the operation never stops allocating");
        let world = world();
        let state = setup(&world);
        let before = world.frames.stats().admitted;
        world.frames.fail_allocation(nth);
        let result = op(&world, &state);
        world.frames.never_fail();
        let made = world.frames.stats().admitted - before;
        let spaces = mmus(&state);
        check(&world, &spaces.iter().collect::<Vec<_>>());
        drop(state);
        check(&world, &[]);
        let frames = world.frames.clone();
        drop(world);
        assert_eq!(
            frames.stats().outstanding(),
            0,
            "allocation {nth}: frames leaked"
        );
        match result {
            Ok(()) if made <= nth => return made,
            Ok(()) => {}
            Err(LendError::NoMemory) => assert!(nth < made, "NoMemory, nothing refused"),
            Err(err) => panic!("allocation {nth}: {err:?}"),
        }
    }
    unreachable!()
}

type Setup = (ServerFile, ObjectRef, Arc<Mmu>, MappingRef);

fn shared_file(world: &World) -> Setup {
    let file = ServerFile::stamped(8, 2 * PAGE as usize);
    let object = file_object(world, &file);
    let space = mmu(1);
    let map = map(&object, &space, BASE, 2, true);
    (file, object, space, map)
}

#[test]
fn a_lend_that_faults_pages_in_fails_cleanly_at_every_allocation() {
    let made = fail_each_allocation(
        shared_file,
        |world, (_, _, _, map)| {
            let loan = map.lend(BASE, 2 * PAGE)?;
            assert_eq!(loan_bytes(world, &loan), vec![stamp(0, 0), stamp(1, 0)]);
            Ok(())
        },
        |(_, _, space, _)| vec![space.clone()],
    );
    // The loan's list, and for each page a page and its load buffer (and the table leaf).
    assert!(made >= 5, "only {made} allocations");
}

#[test]
fn a_store_that_breaks_a_loan_fails_cleanly_without_a_page() {
    let made = fail_each_allocation(
        |world| {
            let setup = shared_file(world);
            let loan = setup.3.lend(BASE, 2 * PAGE).expect("lend");
            (setup, loan)
        },
        |world, ((_, _, _, map), loan)| {
            match store(world, map, BASE, 0x44) {
                Err(vm::FaultError::NoMemory) => return Err(LendError::NoMemory),
                other => other.expect("store"),
            }
            assert_eq!(loan_bytes(world, loan)[0], stamp(0, 0));
            assert_eq!(load(world, map, BASE), Ok(0x44));
            Ok(())
        },
        |((_, _, space, _), _)| vec![space.clone()],
    );
    assert_eq!(made, 1, "the copy");
}

#[test]
fn a_write_of_the_kernels_into_lent_pages_without_memory_for_copies() {
    // Page 0 clean, page 1 dirty; both lent; the kernel writes both.
    fail_each_allocation(
        |world| {
            let setup = shared_file(world);
            store(world, &setup.3, BASE + PAGE, 0x66).expect("store");
            let loan = setup.3.lend(BASE, 2 * PAGE).expect("lend");
            (setup, loan)
        },
        |world, ((file, _, _, map), loan)| {
            file.write_at(0, &[0x99; 2 * PAGE as usize])
                .expect("server write");
            world
                .vm
                .wrote_mapped(&file.identity, 0, &[0x99; 2 * PAGE as usize]);
            assert_eq!(load(world, map, BASE), Ok(0x99));
            assert_eq!(load(world, map, BASE + PAGE), Ok(0x99));
            let lost = world.vm.statistics().loan_snapshots_lost;
            // The clean page kept its snapshot either way (copied, or left the object);
            // the dirty one did unless there was no memory for its copy.
            assert_eq!(loan_bytes(world, loan)[0], stamp(0, 0));
            let dirty = loan_bytes(world, loan)[1];
            assert_eq!(
                (dirty == 0x66, lost),
                if lost == 0 { (true, 0) } else { (false, 1) }
            );
            if lost != 0 {
                return Err(LendError::NoMemory);
            }
            Ok(())
        },
        |((_, _, space, _), _)| vec![space.clone()],
    );
}

#[test]
fn a_truncate_into_a_lent_page_zeroes_a_copy_and_the_loan_keeps_the_tail() {
    let world = world();
    let file = ServerFile::stamped(11, 2 * PAGE as usize);
    let object = file_object(&world, &file);
    let space = mmu(1);
    let map = map(&object, &space, BASE, 2, true);
    let loan = map.lend(BASE, 2 * PAGE).expect("lend");
    let half = PAGE / 2;
    file.data.lock().unwrap().truncate(half as usize);
    world
        .vm
        .truncate_mapped(&file.identity, half)
        .expect("truncate");
    // The mapping reads zeros past the new end; the loan still has the old tail.
    let frame = map.fault(BASE, vm::Access::Read).expect("load").frame;
    assert_ne!(Some(frame), loan.frame(0));
    assert!(world.frames.read(frame)[half as usize..]
        .iter()
        .all(|&b| b == 0));
    let lent = world.frames.read(loan.frame(0).unwrap());
    assert!(lent.iter().all(|&b| b == stamp(0, 0)));
    assert_eq!(world.vm.statistics().orphan_pages, 2);
    check(&world, &[&space]);
    drop(loan);
    assert_eq!(world.vm.statistics().orphan_pages, 0);
    check(&world, &[&space]);
}

#[test]
fn untouched_shared_anonymous_memory_lends_the_zero_page() {
    let world = world();
    let object = world.vm.anon_object(2 * PAGE).expect("object");
    let space = mmu(1);
    let map = map(&object, &space, BASE, 2, true);
    store(&world, &map, BASE + PAGE, 3).expect("store");
    let loan = map.lend(BASE, 2 * PAGE).expect("lend");
    assert_eq!(loan.frame(0), Some(world.vm.zero_frame()));
    assert_eq!(loan.zero_pages(), 1);
    // A store where the zero page was lent makes a page; the loan still reads zeros.
    store(&world, &map, BASE, 4).expect("store");
    assert_eq!(loan_bytes(&world, &loan), vec![0, 3]);
    store(&world, &map, BASE + PAGE, 5).expect("store");
    assert_eq!(loan_bytes(&world, &loan), vec![0, 3]);
    check(&world, &[&space]);
}
