//! Page loans (`mapping/loan.rs`): a loan is a snapshot of the pages it lent, read only in
//! every mapping while it lives; a store breaks it by copying; an owner letting go of a lent
//! page leaves an orphan that the last loan frees; untouched anonymous memory lends the
//! zero page and allocates nothing.

mod map_common;

use std::sync::Arc;

use map_common::{check, load, mmu, spec, stamp, store, world, Mmu, ServerFile, World, PAGE};
use vm::{LendError, Loan, MapSpec, MappingRef, ObjectRef, SpaceRef};

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
        .map_private_anon(
            space.clone() as SpaceRef,
            MapSpec {
                base: BASE,
                len: pages * PAGE,
                offset: 0,
                shared: false,
                writable: true,
            },
        )
        .expect("map")
}

/// The first byte of each page of the loan.
fn loan_bytes(world: &World, loan: &Loan) -> Vec<u8> {
    loan.frames()
        .map(|frame| world.frames.read(frame)[0])
        .collect()
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
