//! loom models of page loans (`mapping/loan.rs`), models 20 to 25 of `loom.rs`.

use loom::thread;
use vm::check::check_invariants;
use vm::testkit::HeapFrames;
use vm::{Access, MapSpec, MappingRef, Vm, PAGE_SIZE};

use super::{cpu_store, map_common, model, small_vm, OnePageMmu};

const BASE: u64 = 0x10000;
const PAGE: u64 = PAGE_SIZE as u64;

fn spec(base: u64, shared: bool) -> MapSpec {
    MapSpec {
        base,
        len: PAGE,
        offset: 0,
        shared,
        writable: true,
    }
}

fn invariants(vm: &Vm) {
    if let Err(violation) = check_invariants(vm, Some(&[])) {
        panic!("{violation}");
    }
}

/// Everything is let go of: no loan, no orphan, every frame back.
fn finish(vm: Vm, frames: HeapFrames) {
    invariants(&vm);
    let stats = vm.statistics();
    assert_eq!((stats.pages_lent, stats.orphan_pages), (0, 0));
    vm.run_parked_closes();
    drop(vm);
    assert_eq!(frames.stats().outstanding(), 0, "a frame leaked");
}

/// Model 20: a lend of a page mapped writable (dirty and shared, or private) vs a CPU
/// storing to it, reading it (a fault that maps it again) and storing again. The loan is a
/// snapshot: its bytes never change after the lend. The first loan must remove the
/// writable translation (else the first store lands in the lent frame), and a fault must
/// map a lent page read only (else the second store does), so every store after the lend
/// breaks the loan by copying.
fn a_lend_vs_stores(shared: bool) {
    let (vm, frames) = small_vm();
    let space = std::sync::Arc::new(OnePageMmu::default());
    let file = map_common::ServerFile::stamped(9, PAGE_SIZE);
    let object = vm.file_object(file.open()).unwrap();
    let map = if shared {
        object.map(space.clone(), spec(BASE, true)).unwrap()
    } else {
        vm.map_private_anon(space.clone(), spec(BASE, false))
            .unwrap()
    };
    // Written: dirty (or private at ref 1), with a writable translation.
    cpu_store(&space, &map, &frames, 0x11);
    let map = loom::sync::Arc::new(map);
    let lender = {
        let (map, frames) = (map.clone(), frames.clone());
        thread::spawn(move || {
            let loan = map.lend(BASE, PAGE).unwrap();
            let first = frames.read(loan.frame(0).unwrap())[0];
            (loan, first)
        })
    };
    cpu_store(&space, &map, &frames, 0x22);
    map.fault(BASE, Access::Read).unwrap();
    cpu_store(&space, &map, &frames, 0x33);
    let (loan, first) = lender.join().unwrap();
    assert!([0x11, 0x22, 0x33].contains(&first), "{first:#x}");
    assert_eq!(
        frames.read(loan.frame(0).unwrap())[0],
        first,
        "a store reached the lent frame after the lend"
    );
    let now = map.fault(BASE, Access::Read).unwrap().frame;
    assert_eq!(frames.read(now)[0], 0x33, "the mapping lost a store");
    invariants(&vm);
    drop(loan);
    drop(map);
    drop(object);
    finish(vm, frames);
}

#[test]
fn a_lend_vs_stores_through_a_shared_mapping() {
    model("a_lend_vs_stores_through_a_shared_mapping", || {
        a_lend_vs_stores(true)
    });
}

#[test]
fn a_lend_vs_stores_to_a_private_page() {
    model("a_lend_vs_stores_to_a_private_page", || {
        a_lend_vs_stores(false)
    });
}

fn written_anon(vm: &Vm, frames: &HeapFrames) -> (std::sync::Arc<OnePageMmu>, MappingRef) {
    let space = std::sync::Arc::new(OnePageMmu::default());
    let map = vm
        .map_private_anon(space.clone(), spec(BASE, false))
        .unwrap();
    cpu_store(&space, &map, frames, 0x11);
    (space, map)
}

/// Model 21: a lend vs the owner letting go of the page (MADV_DONTNEED). The loan gets the
/// page (then an orphan, kept until the loan returns, never on the free list) or, after
/// the discard, the zero page.
#[test]
fn a_lend_vs_the_owner_letting_go_of_the_page() {
    model("a_lend_vs_the_owner_letting_go_of_the_page", || {
        let (vm, frames) = small_vm();
        let (_space, map) = written_anon(&vm, &frames);
        let map = loom::sync::Arc::new(map);
        let discarder = {
            let map = map.clone();
            thread::spawn(move || map.discard(BASE, PAGE))
        };
        let loan = map.lend(BASE, PAGE).unwrap();
        let byte = frames.read(loan.frame(0).unwrap())[0];
        assert_eq!(discarder.join().unwrap(), 1);
        match loan.zero_pages() {
            0 => assert_eq!(byte, 0x11),
            _ => assert_eq!(loan.frame(0), Some(vm.zero_frame())),
        }
        invariants(&vm);
        assert_eq!(frames.read(loan.frame(0).unwrap())[0], byte);
        drop(loan);
        drop(map);
        finish(vm, frames);
    });
}

/// Model 22: the last loan returned vs the owner's last reference going (an exit): the
/// page is freed once, by whichever is last, and never left an orphan with no loan.
#[test]
fn the_last_unloan_vs_the_owner_going() {
    model("the_last_unloan_vs_the_owner_going", || {
        let (vm, frames) = small_vm();
        let (_space, map) = written_anon(&vm, &frames);
        let loan = map.lend(BASE, PAGE).unwrap();
        let returner = thread::spawn(move || loan.release());
        drop(map);
        returner.join().unwrap();
        finish(vm, frames);
    });
}

/// Model 23: a store breaking the loan of a shared page vs the other mapping of it going.
/// The break takes the old page from its object and drops its entry's reference; the
/// other mapping's drop puts its own. Whoever puts last must see the page unowned and
/// hand it to the free list (an orphan, being lent), or it is lost.
#[test]
fn a_break_vs_the_other_mapping_going() {
    model("a_break_vs_the_other_mapping_going", || {
        let (vm, frames) = small_vm();
        let file = map_common::ServerFile::stamped(10, PAGE_SIZE);
        let object = vm.file_object(file.open()).unwrap();
        let (one, two) = (
            std::sync::Arc::new(OnePageMmu::default()),
            std::sync::Arc::new(OnePageMmu::default()),
        );
        let map = object.map(one.clone(), spec(BASE, true)).unwrap();
        let other = object.map(two.clone(), spec(2 * BASE, true)).unwrap();
        other.fault(2 * BASE, Access::Read).unwrap();
        let loan = map.lend(BASE, PAGE).unwrap();
        let dropper = thread::spawn(move || drop(other));
        cpu_store(&one, &map, &frames, 0x44);
        dropper.join().unwrap();
        invariants(&vm);
        assert_eq!(
            frames.read(loan.frame(0).unwrap())[0],
            map_common::stamp(0, 0)
        );
        drop(loan);
        drop(map);
        drop(object);
        finish(vm, frames);
    });
}

/// Model 24: a lend vs a migration of the page: the migration happens before (the loan
/// gets the new frame) or fails (`Unmovable::Lent`); never after the lend, which would
/// leave the loan a frame given back to the kernel.
#[test]
fn a_lend_vs_a_migration_of_the_page() {
    model("a_lend_vs_a_migration_of_the_page", || {
        let (vm, frames) = small_vm();
        let (space, map) = written_anon(&vm, &frames);
        let old = space.entry.lock().unwrap().expect("mapped").0;
        let migrator = {
            let vm = vm.clone();
            thread::spawn(move || vm.migrate(old))
        };
        let loan = map.lend(BASE, PAGE).unwrap();
        let moved = migrator.join().unwrap();
        let now = map.fault(BASE, Access::Read).unwrap().frame;
        match moved {
            Ok(new) => assert_eq!(new, now),
            Err(err) => assert_eq!(err.reason, vm::Unmovable::Lent),
        }
        assert_eq!(loan.frame(0), Some(now), "the lent frame moved");
        assert_eq!(frames.read(now)[0], 0x11);
        invariants(&vm);
        drop(loan);
        drop(map);
        finish(vm, frames);
    });
}

/// Model 25: two stores to a lent shared page, through the two mappings that map it, at
/// once: the first breaks the loan; the second's fault, which found the old page in its
/// entry before the break, must see under the object lock that the page is no longer the
/// object's and take the copy (a second break of the old page would put another copy in
/// the object and leave the first store's copy, still owned, out of it).
#[test]
fn a_break_vs_a_store_through_the_other_mapping() {
    model("a_break_vs_a_store_through_the_other_mapping", || {
        let (vm, frames) = small_vm();
        let file = map_common::ServerFile::stamped(11, PAGE_SIZE);
        let object = vm.file_object(file.open()).unwrap();
        let (one, two) = (
            std::sync::Arc::new(OnePageMmu::default()),
            std::sync::Arc::new(OnePageMmu::default()),
        );
        let map = object.map(one.clone(), spec(BASE, true)).unwrap();
        let other = loom::sync::Arc::new(object.map(two.clone(), spec(2 * BASE, true)).unwrap());
        other.fault(2 * BASE, Access::Read).unwrap();
        map.fault(BASE, Access::Read).unwrap();
        let loan = map.lend(BASE, PAGE).unwrap();
        let storer = {
            let (other, two, frames) = (other.clone(), two.clone(), frames.clone());
            thread::spawn(move || cpu_store(&two, &other, &frames, 0x55))
        };
        cpu_store(&one, &map, &frames, 0x44);
        storer.join().unwrap();
        invariants(&vm);
        // Both mappings map the object's one page, which holds the last store.
        let mine = map.fault(BASE, Access::Read).unwrap().frame;
        let theirs = other.fault(2 * BASE, Access::Read).unwrap().frame;
        assert_eq!(mine, theirs, "the mappings map different pages");
        assert!([0x44, 0x55].contains(&frames.read(mine)[0]));
        assert_eq!(
            vm.statistics().loan_breaks,
            1,
            "the old page was broken twice"
        );
        assert_eq!(
            frames.read(loan.frame(0).unwrap())[0],
            map_common::stamp(0, 0)
        );
        drop(loan);
        drop(map);
        drop(other);
        drop(object);
        finish(vm, frames);
    });
}
