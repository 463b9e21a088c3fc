//! Private anonymous memory and the zero page: a read of an untouched page maps the one
//! shared zero page read only and allocates nothing; the first write allocates a private
//! zeroed page; fork copies an entry of the zero page as it is.

mod map_common;

use std::sync::Arc;

use map_common::{check, mmu, spec, world_of, Mmu, World, PAGE};
use vm::check::check_invariants;
use vm::testkit::HeapFrames;
use vm::{Access, MappingRef, SpaceRef};

const BASE: u64 = 0x1_0000_0000;

/// A vm with room for far fewer pages than the tests read: a read that allocated would
/// run out.
fn world() -> World {
    world_of(HeapFrames::new(64), 32)
}

fn anon(world: &World, space: &Arc<Mmu>, pages: u64) -> MappingRef {
    world
        .vm
        .map_private_anon(space.clone() as SpaceRef, spec(BASE, pages, 0, false))
        .expect("map")
}

#[test]
fn reading_a_gib_of_untouched_private_anonymous_memory_allocates_no_frame() {
    let world = world();
    let space = mmu(1);
    let pages = (1u64 << 30) / PAGE;
    let map = anon(&world, &space, pages);
    let before = (
        world.frames.stats().allocated,
        world.vm.statistics().pages_allocated,
    );
    let zero = world.vm.zero_frame();
    for page in 0..pages {
        let mapping = map
            .fault(BASE + page * PAGE, Access::Read)
            .unwrap_or_else(|err| panic!("read of page {page}: {err:?}"));
        assert_eq!(
            (mapping.frame, mapping.writable),
            (zero, false),
            "page {page}"
        );
    }
    assert!(world.frames.read(zero).iter().all(|&byte| byte == 0));
    assert_eq!(
        (
            world.frames.stats().allocated,
            world.vm.statistics().pages_allocated
        ),
        before,
        "a read of untouched memory allocated"
    );
    assert_eq!(world.vm.statistics().zero_page_maps, pages);
    // Every translation is the zero page's, read only.
    let entries = space.entries.lock().unwrap();
    assert_eq!(entries.len() as u64, pages);
    assert!(entries
        .values()
        .all(|&(frame, writable)| frame == zero && !writable));
    drop(entries);
    // A read again (after the translation went) maps it again, still allocating nothing.
    space.entries.lock().unwrap().clear();
    assert_eq!(map.fault(BASE, Access::Read).unwrap().frame, zero);
    assert_eq!(world.frames.stats().allocated, before.0);
    check_invariants(&world.vm, Some(&[])).expect("invariants");
}

#[test]
fn a_write_after_a_read_gets_a_private_zeroed_page() {
    let world = world();
    let space = mmu(1);
    let map = anon(&world, &space, 4);
    let zero = world.vm.zero_frame();
    assert_eq!(map.fault(BASE + PAGE, Access::Read).unwrap().frame, zero);
    let before = world.frames.stats().allocated;
    let written = map.fault(BASE + PAGE, Access::Write).unwrap();
    assert!(written.writable);
    assert_ne!(written.frame, zero, "a write must not get the zero page");
    assert_eq!(world.frames.stats().allocated, before + 1);
    assert!(world
        .frames
        .read(written.frame)
        .iter()
        .all(|&byte| byte == 0));
    world.frames.write(written.frame, 8, &[0x5a; 8]);
    // The write is the mapping's own: a read sees it, the zero page stays zeros.
    let read = map.fault(BASE + PAGE, Access::Read).unwrap();
    assert_eq!(read.frame, written.frame);
    assert_eq!(world.frames.read(read.frame)[8], 0x5a);
    assert!(world.frames.read(zero).iter().all(|&byte| byte == 0));
    let stats = world.vm.statistics();
    assert_eq!((stats.zero_page_maps, stats.zero_page_breaks), (1, 1));
    check(&world, &[&space]);
    drop(map);
    check_invariants(&world.vm, Some(&[])).expect("invariants after unmap");
    let World { vm, frames } = world;
    drop(vm);
    assert_eq!(frames.stats().outstanding(), 0, "a frame leaked");
}

#[test]
fn fork_copies_an_entry_of_the_zero_page() {
    let world = world();
    let (parent_space, child_space) = (mmu(1), mmu(2));
    let parent = anon(&world, &parent_space, 4);
    let zero = world.vm.zero_frame();
    assert_eq!(parent.fault(BASE, Access::Read).unwrap().frame, zero);
    let child = parent.fork(child_space.clone() as SpaceRef).unwrap();
    let before = world.frames.stats().allocated;
    // The child's entry maps the zero page as the parent's does: a read allocates nothing.
    let read = child.fault(BASE, Access::Read).unwrap();
    assert_eq!((read.frame, read.writable), (zero, false));
    assert_eq!(world.frames.stats().allocated, before);
    check(&world, &[&parent_space, &child_space]);
    // A write in the child gets the child a page of its own; the parent still reads zeros
    // through the zero page.
    let written = child.fault(BASE, Access::Write).unwrap();
    assert_ne!(written.frame, zero);
    world.frames.write(written.frame, 0, &[0x77; 8]);
    let parent_read = parent.fault(BASE, Access::Read).unwrap();
    assert_eq!(parent_read.frame, zero);
    assert!(world.frames.read(zero).iter().all(|&byte| byte == 0));
    // And a write in the parent its own.
    let parent_written = parent.fault(BASE, Access::Write).unwrap();
    assert_ne!(parent_written.frame, zero);
    assert_ne!(parent_written.frame, written.frame);
    assert_eq!(world.frames.read(parent_written.frame)[0], 0);
    check(&world, &[&parent_space, &child_space]);
    drop((parent, child));
    check_invariants(&world.vm, Some(&[])).expect("invariants after unmap");
    let World { vm, frames } = world;
    drop(vm);
    assert_eq!(frames.stats().outstanding(), 0, "a frame leaked");
}

#[test]
fn a_mappings_zero_page_entries_are_counted_through_fork_write_carve_and_unmap() {
    let world = world();
    let (parent_space, child_space) = (mmu(1), mmu(2));
    let entries = || world.vm.statistics().zero_page_entries;
    let parent = anon(&world, &parent_space, 4);
    for page in 0..3 {
        parent.fault(BASE + page * PAGE, Access::Read).unwrap();
    }
    assert_eq!(entries(), 3);
    check(&world, &[&parent_space]);
    let child = parent.fork(child_space.clone() as SpaceRef).unwrap();
    assert_eq!(entries(), 6, "fork copies the entries");
    check(&world, &[&parent_space, &child_space]);
    parent.fault(BASE, Access::Write).unwrap();
    assert_eq!(entries(), 5, "a write replaces one");
    check(&world, &[&parent_space, &child_space]);
    // A carve moves entries and counts nothing; unmapping the middle releases its one.
    let carved = child.carve(BASE + PAGE, BASE + 2 * PAGE, true).unwrap();
    assert_eq!(entries(), 5);
    check(&world, &[&parent_space, &child_space]);
    carved.middle.unmap().unwrap();
    assert_eq!(entries(), 4);
    check(&world, &[&parent_space, &child_space]);
    drop((carved.head, carved.tail, parent));
    assert_eq!(entries(), 0);
    check(&world, &[&parent_space, &child_space]);
}
