//! Carving a mapping (partial munmap and mprotect): the head, middle and tail each keep
//! their pages, records and lineage; the unmapped part's dirty pages are written back and
//! its private pages freed; a carve that cannot allocate changes nothing; a truncate that
//! collected the old mapping before the carve still leaves nothing mapped past the end.

mod map_common;

use std::sync::{Arc, Mutex};

use map_common::{check, load, mmu, spec, stamp, store, world, Mmu, ServerFile, World, PAGE};
use vm::{
    AddressSpace, FaultError, Frame, LayoutError, Mapper, MappingRef, SpaceRef, VmError, PAGE_SIZE,
};

/// Stores `stamp(page, generation)` at the start of each page of `pages` of `map`.
fn stamp_pages(world: &World, map: &MappingRef, pages: std::ops::Range<u64>, generation: u8) {
    for page in pages {
        store(
            world,
            map,
            map.base() + page * PAGE,
            stamp(page, generation),
        )
        .unwrap();
    }
}

#[test]
fn unmapping_the_middle_writes_its_dirty_pages_back_and_keeps_head_and_tail() {
    let world = world();
    let file = ServerFile::stamped(1, 6 * PAGE_SIZE);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let map = object
        .map(space.clone() as SpaceRef, spec(0x10000, 6, 0, true))
        .unwrap();
    stamp_pages(&world, &map, 0..6, 1);
    assert_eq!(object.dirty_pages(), 6);
    check(&world, &[&space]);
    let carved = map
        .carve(0x10000 + 2 * PAGE, 0x10000 + 4 * PAGE, true)
        .unwrap();
    let (head, tail) = (carved.head.unwrap(), carved.tail.unwrap());
    assert_eq!((head.base(), head.end()), (0x10000, 0x10000 + 2 * PAGE));
    assert_eq!(
        (carved.middle.base(), carved.middle.end()),
        (0x10000 + 2 * PAGE, 0x10000 + 4 * PAGE)
    );
    assert_eq!(
        (tail.base(), tail.end()),
        (0x10000 + 4 * PAGE, 0x10000 + 6 * PAGE)
    );
    // Same contents, same translations: nothing refaults.
    assert_eq!(space.entries.lock().unwrap().len(), 6);
    let stats = world.vm.statistics();
    assert_eq!((stats.mappings, stats.rmap_records), (3, 3));
    check(&world, &[&space]);
    assert_eq!(carved.middle.unmap().unwrap(), 2);
    for page in 0..6 {
        let expected = if (2..4).contains(&page) {
            stamp(page, 1)
        } else {
            stamp(page, 0)
        };
        assert_eq!(file.bytes(page * PAGE, 1)[0], expected, "page {page}");
    }
    assert_eq!(object.dirty_pages(), 4, "head and tail stay dirty");
    let entries: Vec<u64> = space.entries.lock().unwrap().keys().copied().collect();
    assert_eq!(
        entries,
        [0, 1, 4, 5].map(|page| 0x10000 + page * PAGE).to_vec(),
        "only the middle's translations went"
    );
    for page in [0, 1] {
        assert_eq!(
            load(&world, &head, 0x10000 + page * PAGE).unwrap(),
            stamp(page, 1)
        );
    }
    for page in [4, 5] {
        assert_eq!(
            load(&world, &tail, 0x10000 + page * PAGE).unwrap(),
            stamp(page, 1)
        );
    }
    assert_eq!(
        tail.mappers_at(0x10000 + 5 * PAGE).unwrap(),
        vec![Mapper {
            space: 1,
            addr: 0x10000 + 5 * PAGE
        }]
    );
    let stats = world.vm.statistics();
    assert_eq!((stats.mappings, stats.rmap_records), (2, 2));
    check(&world, &[&space]);
    // The rest goes back when head and tail go.
    drop((head, tail));
    for page in 0..6 {
        assert_eq!(file.bytes(page * PAGE, 1)[0], stamp(page, 1), "page {page}");
    }
    assert_eq!(world.vm.statistics().mappings, 0);
    check(&world, &[&space]);
}

#[test]
fn unmapping_a_private_head_frees_its_copies_and_the_lineage_keeps_the_rest() {
    let world = world();
    let file = ServerFile::stamped(2, 4 * PAGE_SIZE);
    let (parent_space, child_space) = (mmu(1), mmu(2));
    let object = world.vm.file_object(file.open()).unwrap();
    let parent = object
        .map(parent_space.clone() as SpaceRef, spec(0x10000, 4, 0, false))
        .unwrap();
    stamp_pages(&world, &parent, 0..4, 1);
    // The child shares the parent's copies of pages 2 and 3 copy on write.
    let child = parent.fork(child_space.clone() as SpaceRef).unwrap();
    let before = world.vm.statistics().free_pages;
    let carved = parent.carve(0x10000, 0x10000 + 2 * PAGE, true).unwrap();
    assert!(carved.head.is_none());
    let tail = carved.tail.unwrap();
    check(&world, &[&parent_space, &child_space]);
    carved.middle.unmap().unwrap();
    check(&world, &[&parent_space, &child_space]);
    // Nothing was written back, and the child still sees the parent's copies.
    assert_eq!(file.bytes(0, 1)[0], stamp(0, 0));
    for page in 0..4 {
        assert_eq!(
            load(&world, &child, 0x10000 + page * PAGE).unwrap(),
            stamp(page, 1)
        );
    }
    // The tail's pages are still shared with the child through the lineage.
    let mut mappers = tail.mappers_at(0x10000 + 3 * PAGE).unwrap();
    mappers.sort();
    assert_eq!(
        mappers,
        vec![
            Mapper {
                space: 1,
                addr: 0x10000 + 3 * PAGE
            },
            Mapper {
                space: 2,
                addr: 0x10000 + 3 * PAGE
            },
        ]
    );
    // The head's copies are the child's alone now; unmapping the child's head frees them.
    let carved = child.carve(0x10000, 0x10000 + 2 * PAGE, true).unwrap();
    carved.middle.unmap().unwrap();
    assert_eq!(
        world.vm.statistics().free_pages,
        before + 2,
        "two private copies freed"
    );
    check(&world, &[&parent_space, &child_space]);
    drop((tail, carved.tail, object));
    check(&world, &[&parent_space, &child_space]);
    assert_eq!(world.vm.statistics().rmap_records, 0);
}

#[test]
fn mprotect_of_part_of_a_shared_mapping_changes_its_writability_and_keeps_its_stores() {
    let world = world();
    let file = ServerFile::stamped(3, 3 * PAGE_SIZE);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let map = object
        .map(space.clone() as SpaceRef, spec(0x10000, 3, 0, true))
        .unwrap();
    stamp_pages(&world, &map, 0..3, 1);
    let carved = map
        .carve(0x10000 + PAGE, 0x10000 + 2 * PAGE, false)
        .unwrap();
    let (head, middle, tail) = (carved.head.unwrap(), carved.middle, carved.tail.unwrap());
    assert!(head.is_writable() && !middle.is_writable() && tail.is_writable());
    // The middle's writable translation went: the next store is refused, a load is not.
    assert!(!space
        .entries
        .lock()
        .unwrap()
        .contains_key(&(0x10000 + PAGE)));
    assert_eq!(
        store(&world, &middle, 0x10000 + PAGE, 0),
        Err(FaultError::ReadOnly)
    );
    assert_eq!(load(&world, &middle, 0x10000 + PAGE).unwrap(), stamp(1, 1));
    assert!(!space.entries.lock().unwrap()[&(0x10000 + PAGE)].1);
    check(&world, &[&space]);
    // The store made before mprotect still goes back at unmap, though read only now.
    assert_eq!(middle.unmap().unwrap(), 1);
    assert_eq!(file.bytes(PAGE, 1)[0], stamp(1, 1));
    check(&world, &[&space]);
    // Writable again, as a whole mapping: a store goes through and back.
    let map = object
        .map(space.clone() as SpaceRef, spec(0x40000, 1, 1, true))
        .unwrap()
        .carve(0x40000, 0x40000 + PAGE, false)
        .unwrap()
        .middle;
    assert_eq!(store(&world, &map, 0x40000, 0), Err(FaultError::ReadOnly));
    let map = map.carve(0x40000, 0x40000 + PAGE, true).unwrap().middle;
    store(&world, &map, 0x40000, stamp(1, 2)).unwrap();
    check(&world, &[&space]);
    assert_eq!(map.unmap().unwrap(), 1);
    assert_eq!(file.bytes(PAGE, 1)[0], stamp(1, 2));
    drop((head, tail));
    check(&world, &[&space]);
}

#[test]
fn a_carve_outside_the_mapping_or_unaligned_is_refused_and_changes_nothing() {
    let world = world();
    let space = mmu(1);
    let map = world
        .vm
        .map_private_anon(space.clone() as SpaceRef, spec(0x10000, 2, 0, false))
        .unwrap();
    let cases = [
        (0x10000 + 1, 0x10000 + PAGE, LayoutError::Misaligned),
        (0x10000, 0x10000 + 3 * PAGE, LayoutError::OutsideMapping),
        (0x10000 - PAGE, 0x10000 + PAGE, LayoutError::OutsideMapping),
        (0x10000 + PAGE, 0x10000 + PAGE, LayoutError::OutsideMapping),
    ];
    let mut map = map;
    for (start, end, why) in cases {
        let refused = map.carve(start, end, true).unwrap_err();
        assert_eq!(refused.error, VmError::BadLayout(why));
        map = refused.mapping;
        assert_eq!((map.base(), map.end()), (0x10000, 0x10000 + 2 * PAGE));
    }
    check(&world, &[&space]);
}

#[test]
fn a_carve_that_cannot_allocate_changes_nothing() {
    // Every allocation a three-way carve of a mapping with two page-table leaves makes
    // (the new mappings and their tables, the leaves of the copies) refused in turn.
    let mut refused = 0;
    for nth in 0.. {
        let world = world();
        let file = ServerFile::stamped(4, 6 * PAGE_SIZE);
        let space = mmu(1);
        let object = world.vm.file_object(file.open()).unwrap();
        let map = object
            .map(space.clone() as SpaceRef, spec(0x10000, 6, 0, false))
            .unwrap();
        stamp_pages(&world, &map, 0..6, 1);
        let before = (
            space.entries.lock().unwrap().clone(),
            world.vm.statistics().mappings,
            world.vm.statistics().rmap_records,
            (
                world.frames.stats().outstanding(),
                world.vm.statistics().free_pages,
            ),
        );
        world.frames.fail_allocation(nth);
        match map.carve(0x10000 + PAGE, 0x10000 + 5 * PAGE, true) {
            Ok(carved) => {
                world.frames.never_fail();
                check(&world, &[&space]);
                drop(carved);
                break;
            }
            Err(failed) => {
                world.frames.never_fail();
                assert_eq!(failed.error, VmError::NoMemory);
                let after = (
                    space.entries.lock().unwrap().clone(),
                    world.vm.statistics().mappings,
                    world.vm.statistics().rmap_records,
                    (
                        world.frames.stats().outstanding(),
                        world.vm.statistics().free_pages,
                    ),
                );
                assert_eq!(after, before, "allocation {nth} refused");
                check(&world, &[&space]);
                for page in 0..6 {
                    assert_eq!(
                        load(&world, &failed.mapping, 0x10000 + page * PAGE).unwrap(),
                        stamp(page, 1)
                    );
                }
                refused += 1;
            }
        }
    }
    assert!(refused >= 3, "only {refused} allocations refused");
}

/// An MMU that runs a hook once, the next time it is asked to invalidate.
struct HookedMmu {
    inner: Arc<Mmu>,
    hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl AddressSpace for HookedMmu {
    fn id(&self) -> u64 {
        self.inner.id
    }
    fn map(&self, addr: u64, frame: Frame, writable: bool) {
        self.inner.map(addr, frame, writable);
    }
    fn invalidate(&self, addr: u64, len: u64) {
        self.inner.invalidate(addr, len);
        let hook = self.hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
    }
}

#[test]
fn a_truncate_that_collected_the_mapping_before_its_carve_leaves_nothing_past_the_end() {
    let world = world();
    let file = ServerFile::stamped(5, 4 * PAGE_SIZE);
    let (first_space, space) = (
        Arc::new(HookedMmu {
            inner: mmu(1),
            hook: Mutex::new(None),
        }),
        mmu(2),
    );
    let object = world.vm.file_object(file.open()).unwrap();
    // Recorded first, so truncate cleans it first: its invalidation carves the other.
    let first = object
        .map(first_space.clone() as SpaceRef, spec(0x10000, 4, 0, true))
        .unwrap();
    let map = object
        .map(space.clone() as SpaceRef, spec(0x10000, 4, 0, true))
        .unwrap();
    for page in 0..4 {
        load(&world, &first, 0x10000 + page * PAGE).unwrap();
        load(&world, &map, 0x10000 + page * PAGE).unwrap();
    }
    let slot = Arc::new(Mutex::new(Some(map)));
    let carved = Arc::new(Mutex::new(None));
    let ran = Arc::new(Mutex::new(0));
    {
        let (slot, carved, ran) = (slot.clone(), carved.clone(), ran.clone());
        *first_space.hook.lock().unwrap() = Some(Box::new(move || {
            let map = slot.lock().unwrap().take().unwrap();
            *carved.lock().unwrap() = Some(map.carve(0x10000, 0x10000 + PAGE, true).unwrap());
            *ran.lock().unwrap() += 1;
        }));
    }
    world.vm.truncate_mapped(&file.identity, PAGE).unwrap();
    assert_eq!(*ran.lock().unwrap(), 1, "the carve ran inside the truncate");
    let carved = carved.lock().unwrap().take().unwrap();
    let tail = carved.tail.unwrap();
    // The tail (pages 1..4) is wholly past the end: no translation, and a bus error.
    assert!(space
        .entries
        .lock()
        .unwrap()
        .keys()
        .all(|&addr| addr < 0x10000 + PAGE));
    assert_eq!(
        load(&world, &tail, 0x10000 + 2 * PAGE),
        Err(FaultError::PastEnd)
    );
    assert_eq!(load(&world, &carved.middle, 0x10000).unwrap(), stamp(0, 0));
    check(&world, &[&first_space.inner, &space]);
    drop((first, carved.middle, tail, object));
    check(&world, &[&first_space.inner, &space]);
}
