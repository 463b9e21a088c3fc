//! Page loans (`mapping/loan.rs`) against the mapping operations written apart from them:
//! carving (`mapping/split.rs`: partial munmap, mprotect), the channel rule for dirty
//! objects nobody holds (`mapping/unheld.rs`: a refused write-back, then
//! `Vm::write_back_dirty`) and truncate's gate (`mapping/truncate.rs`). In each, the loan
//! keeps the bytes of the lend, its pages are never mapped writable while it lives, the
//! checker passes after every step, and every frame is back once the loans are released
//! and everything dropped.

mod map_common;

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use map_common::{
    check, load, loan_bytes, mmu, spec, stamp, store, world, Mmu, ServerFile, World, PAGE,
};
use vm::{Access, FileError, Loan, MapSpec, MappingRef, ObjectRef, SpaceRef, VmError};

const BASE: u64 = 0x4000_0000;
const DEADLINE: Duration = Duration::from_secs(20);

/// No MMU entry of `space` maps a frame of `loan` writable.
fn lent_read_only(space: &Mmu, loan: &Loan) -> bool {
    let entries = space.entries.lock().unwrap();
    loan.frames().all(|lent| {
        !entries
            .values()
            .any(|&(frame, writable)| frame == lent && writable)
    })
}

/// Drops the world and asserts every frame went back to the allocator.
fn all_frames_back(world: World) {
    let frames = world.frames.clone();
    drop(world);
    assert_eq!(frames.stats().outstanding(), 0, "frames leaked");
}

/// Waits until `done`, at most [`DEADLINE`]; returns whether it happened.
fn wait_until(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

fn shared_map(
    world: &World,
    file: &ServerFile,
    space: &Arc<Mmu>,
    pages: u64,
) -> (ObjectRef, MappingRef) {
    let object = world.vm.file_object(file.open()).expect("object");
    let map = object
        .map(space.clone() as SpaceRef, spec(BASE, pages, 0, true))
        .expect("map");
    (object, map)
}

#[test]
fn a_partial_munmap_of_lent_shared_pages_leaves_the_loan_its_bytes() {
    let world = world();
    let file = ServerFile::stamped(1, 4 * PAGE as usize);
    let space = mmu(1);
    let (object, map) = shared_map(&world, &file, &space, 4);
    for page in 0..4 {
        store(&world, &map, BASE + page * PAGE, stamp(page, 1)).expect("store");
    }
    let loan = map.lend(BASE + PAGE, 2 * PAGE).expect("lend");
    check(&world, &[&space]);
    // munmap of pages 2 and 3: page 2 is lent, and dirty; the unmap writes it back.
    let carved = map
        .carve(BASE + 2 * PAGE, BASE + 4 * PAGE, true)
        .expect("carve");
    assert!(carved.tail.is_none());
    let head = carved.head.expect("head");
    assert_eq!(carved.middle.unmap(), Ok(2));
    assert_eq!(file.bytes(2 * PAGE, 8), vec![stamp(2, 1); 8]);
    check(&world, &[&space]);
    assert_eq!(loan_bytes(&world, &loan), vec![stamp(1, 1), stamp(2, 1)]);
    // The head still maps the other lent page read only: a load maps it so, a store
    // breaks the loan.
    assert_eq!(load(&world, &head, BASE + PAGE), Ok(stamp(1, 1)));
    assert!(lent_read_only(&space, &loan));
    let breaks = world.vm.statistics().loan_breaks;
    store(&world, &head, BASE + PAGE, 0x5c).expect("store");
    assert_eq!(world.vm.statistics().loan_breaks, breaks + 1);
    assert_eq!(loan_bytes(&world, &loan), vec![stamp(1, 1), stamp(2, 1)]);
    check(&world, &[&space]);
    drop(head);
    drop(object);
    // Both lent pages left their object (one broken, one with the object gone): orphans.
    assert_eq!(world.vm.statistics().orphan_pages, 2);
    assert_eq!(loan_bytes(&world, &loan), vec![stamp(1, 1), stamp(2, 1)]);
    check(&world, &[&space]);
    loan.release();
    let stats = world.vm.statistics();
    assert_eq!((stats.orphan_pages, stats.pages_lent), (0, 0));
    assert_eq!(file.bytes(PAGE, 8), vec![0x5c; 8]);
    check(&world, &[&space]);
    all_frames_back(world);
}

#[test]
fn a_partial_munmap_of_a_lent_private_page_leaves_an_orphan_the_release_frees() {
    let world = world();
    let space = mmu(1);
    let map = world
        .vm
        .map_private_anon(
            space.clone() as SpaceRef,
            MapSpec {
                base: BASE,
                len: 3 * PAGE,
                offset: 0,
                shared: false,
                writable: true,
            },
        )
        .expect("map");
    for page in 0..3 {
        store(&world, &map, BASE + page * PAGE, 0x10 + page as u8).expect("store");
    }
    let loan = map.lend(BASE, 3 * PAGE).expect("lend");
    let carved = map
        .carve(BASE + PAGE, BASE + 2 * PAGE, true)
        .expect("carve");
    assert_eq!(carved.middle.unmap(), Ok(0));
    assert_eq!(world.vm.statistics().orphan_pages, 1);
    assert_eq!(loan_bytes(&world, &loan), vec![0x10, 0x11, 0x12]);
    check(&world, &[&space]);
    // The head and tail still hold their lent pages: a store copies.
    let (head, tail) = (carved.head.expect("head"), carved.tail.expect("tail"));
    store(&world, &tail, BASE + 2 * PAGE, 0x77).expect("store");
    assert_eq!(loan_bytes(&world, &loan), vec![0x10, 0x11, 0x12]);
    assert_eq!(world.vm.statistics().orphan_pages, 2);
    assert!(lent_read_only(&space, &loan));
    check(&world, &[&space]);
    drop((head, tail));
    assert_eq!(world.vm.statistics().orphan_pages, 3);
    check(&world, &[&space]);
    drop(loan);
    assert_eq!(world.vm.statistics().orphan_pages, 0);
    check(&world, &[&space]);
    all_frames_back(world);
}

#[test]
fn an_mprotect_to_writable_of_lent_pages_keeps_them_read_only_and_a_store_still_breaks() {
    let world = world();
    let file = ServerFile::stamped(2, 3 * PAGE as usize);
    let object = world.vm.file_object(file.open()).expect("object");
    let space = mmu(1);
    // A read-only shared mapping, lent, then made writable in its middle page.
    let mut read_only = spec(BASE, 3, 0, true);
    read_only.writable = false;
    let map = object
        .map(space.clone() as SpaceRef, read_only)
        .expect("map");
    let loan = map.lend(BASE, 3 * PAGE).expect("lend");
    assert_eq!(
        map.fault(BASE + PAGE, Access::Write).unwrap_err(),
        vm::FaultError::ReadOnly
    );
    let carved = map
        .carve(BASE + PAGE, BASE + 2 * PAGE, true)
        .expect("carve");
    let middle = carved.middle;
    check(&world, &[&space]);
    // A load through the now writable mapping maps the lent page read only.
    let read = middle.fault(BASE + PAGE, Access::Read).expect("load");
    assert!(!read.writable, "a lent page mapped writable");
    assert_eq!(Some(read.frame), loan.frame(1));
    assert!(lent_read_only(&space, &loan));
    check(&world, &[&space]);
    // A store breaks the loan: a copy in the object, the loan keeps the old bytes.
    store(&world, &middle, BASE + PAGE, 0x3d).expect("store");
    let stats = world.vm.statistics();
    assert_eq!((stats.loan_breaks, stats.orphan_pages), (1, 1));
    assert_ne!(
        middle.fault(BASE + PAGE, Access::Read).unwrap().frame,
        loan.frame(1).unwrap()
    );
    assert_eq!(
        loan_bytes(&world, &loan),
        vec![stamp(0, 0), stamp(1, 0), stamp(2, 0)]
    );
    // The read-only parts still refuse a store.
    let (head, tail) = (carved.head.expect("head"), carved.tail.expect("tail"));
    assert_eq!(
        tail.fault(BASE + 2 * PAGE, Access::Write).unwrap_err(),
        vm::FaultError::ReadOnly
    );
    assert!(lent_read_only(&space, &loan));
    check(&world, &[&space]);
    assert_eq!(middle.unmap(), Ok(1));
    assert_eq!(file.bytes(PAGE, 8), vec![0x3d; 8]);
    drop((head, tail, object));
    check(&world, &[&space]);
    assert_eq!(
        loan_bytes(&world, &loan),
        vec![stamp(0, 0), stamp(1, 0), stamp(2, 0)]
    );
    loan.release();
    let stats = world.vm.statistics();
    assert_eq!((stats.orphan_pages, stats.pages_lent), (0, 0));
    check(&world, &[&space]);
    all_frames_back(world);
}

#[test]
fn a_lent_page_whose_write_back_failed_goes_to_the_server_with_the_stores_bytes() {
    let world = world();
    let file = ServerFile::stamped(3, 2 * PAGE as usize);
    let space = mmu(1);
    let (object, map) = shared_map(&world, &file, &space, 2);
    store(&world, &map, BASE, 0x11).expect("store");
    store(&world, &map, BASE + PAGE, 0x21).expect("store");
    let loan = map.lend(BASE, 2 * PAGE).expect("lend");
    // A store after the lend breaks it: page 0's dirty copy is what the server must get.
    store(&world, &map, BASE, 0x12).expect("store");
    assert_eq!(world.vm.statistics().loan_breaks, 1);
    drop(object);
    *file.fail_writes.lock().unwrap() = true;
    assert_eq!(map.unmap(), Err(VmError::Io(FileError::Io)));
    // Nobody holds the object; it keeps its two dirty pages (one of them lent) and the
    // loan its snapshot.
    let stats = world.vm.statistics();
    assert_eq!((stats.mappings, stats.dirty_pages), (0, 2));
    assert_eq!(loan_bytes(&world, &loan), vec![0x11, 0x21]);
    check(&world, &[&space]);
    // The kernel's own write into the lent dirty page 1 of the unheld object copies it.
    // (The server's copy changes too: only the vm's writes to it fail.)
    file.data.lock().unwrap()[(PAGE + 8) as usize..(PAGE + 16) as usize]
        .copy_from_slice(&[0x22; 8]);
    assert_eq!(
        world.vm.wrote_mapped(&file.identity, PAGE + 8, &[0x22; 8]),
        1
    );
    assert_eq!(world.vm.statistics().loan_snapshots_lost, 0);
    assert_eq!(world.frames.read(loan.frame(1).unwrap())[8], stamp(1, 0));
    check(&world, &[&space]);
    assert_eq!(world.vm.write_back_dirty(), Err(VmError::Io(FileError::Io)));
    assert_eq!(loan_bytes(&world, &loan), vec![0x11, 0x21]);
    *file.fail_writes.lock().unwrap() = false;
    assert_eq!(world.vm.write_back_dirty(), Ok(2));
    assert_eq!(file.bytes(0, 8), vec![0x12; 8]);
    assert_eq!(file.bytes(PAGE, 8), vec![0x21; 8]);
    assert_eq!(file.bytes(PAGE + 8, 8), vec![0x22; 8]);
    let stats = world.vm.statistics();
    assert_eq!((stats.dirty_pages, stats.dirty_pages_dropped), (0, 0));
    // The loan kept its snapshot; the clean object went, its lent pages are orphans.
    let lent = world.frames.read(loan.frame(1).unwrap());
    assert_eq!((lent[0], lent[8]), (0x21, stamp(1, 0)));
    assert_eq!(loan_bytes(&world, &loan), vec![0x11, 0x21]);
    assert_eq!(world.vm.statistics().orphan_pages, 2);
    check(&world, &[&space]);
    loan.release();
    let stats = world.vm.statistics();
    assert_eq!((stats.orphan_pages, stats.pages_lent), (0, 0));
    check(&world, &[&space]);
    all_frames_back(world);
}

#[test]
fn a_truncate_waiting_at_its_gate_for_the_write_back_of_a_lent_page_orphans_it() {
    let world = world();
    let file = ServerFile::stamped(4, 4 * PAGE as usize);
    let space = mmu(1);
    let (object, map) = shared_map(&world, &file, &space, 4);
    for page in 0..4 {
        store(&world, &map, BASE + page * PAGE, stamp(page, 1)).expect("store");
    }
    // Pages 2 and 3, about to be truncated away, are lent and dirty.
    let loan = map.lend(BASE + 2 * PAGE, 2 * PAGE).expect("lend");
    let (started, started_seen) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    // Write-back A (of lent page 2) waits in its write for the test (never past the
    // deadline).
    *file.before_write.lock().unwrap() = Some(Box::new(move || {
        let _ = started.send(());
        let _ = released.recv_timeout(DEADLINE);
    }));
    std::thread::scope(|scope| {
        let a = scope.spawn(|| map.sync(BASE + 2 * PAGE, PAGE));
        let a_started = started_seen.recv_timeout(DEADLINE).is_ok();
        let truncate = scope.spawn(|| world.vm.truncate_mapped(&file.identity, 2 * PAGE));
        let shrunk = wait_until(|| object.size() == 2 * PAGE);
        // Write-back B (of page 0) waits at the gate.
        let b = scope.spawn(|| map.sync(BASE, PAGE));
        let gated = wait_until(|| world.vm.statistics().truncate_gate_waits == 1);
        let b_wrote_early = file.bytes(0, 1)[0] == stamp(0, 1);
        let truncate_waiting = !truncate.is_finished();
        let loan_during = loan_bytes(&world, &loan);
        let _ = release.send(());
        assert!(a_started, "write-back A never wrote");
        assert!(shrunk, "no truncate");
        assert_eq!(a.join().unwrap(), Ok(1));
        assert!(truncate.join().unwrap().is_ok());
        assert_eq!(b.join().unwrap(), Ok(1));
        assert!(gated, "write-back B never waited at the gate");
        assert!(
            !b_wrote_early,
            "write-back B wrote while the truncate waited"
        );
        assert!(
            truncate_waiting,
            "the truncate did not wait for write-back A"
        );
        assert_eq!(loan_during, vec![stamp(2, 1), stamp(3, 1)]);
    });
    file.data.lock().unwrap().truncate(2 * PAGE as usize);
    assert_eq!(file.bytes(0, 8), vec![stamp(0, 1); 8]);
    // The truncated lent pages are orphans with the loan's bytes; page 3's were never
    // written (truncated away dirty).
    let stats = world.vm.statistics();
    assert_eq!((stats.orphan_pages, stats.pages_lent), (2, 2));
    assert_eq!(object.resident_pages(), 2);
    assert_eq!(loan_bytes(&world, &loan), vec![stamp(2, 1), stamp(3, 1)]);
    assert!(lent_read_only(&space, &loan));
    check(&world, &[&space]);
    assert_eq!(
        map.fault(BASE + 2 * PAGE, Access::Read).unwrap_err(),
        vm::FaultError::PastEnd
    );
    loan.release();
    let stats = world.vm.statistics();
    assert_eq!((stats.orphan_pages, stats.pages_lent), (0, 0));
    check(&world, &[&space]);
    drop((map, object));
    check(&world, &[&space]);
    all_frames_back(world);
}

/// Two shared mappings of one file: `b` lends page 0 (dirty through `a`), then `a`'s store
/// breaks the loan, leaving `b` a stale entry of the lent page. Returns the loan.
fn broken_loan_with_a_stale_entry(world: &World, a: &MappingRef, b: &MappingRef) -> Loan {
    store(world, a, BASE, 0x11).expect("store");
    assert_eq!(load(world, b, OTHER), Ok(0x11));
    let loan = b.lend(OTHER, PAGE).expect("lend");
    store(world, a, BASE, 0x22).expect("store");
    assert_eq!(world.vm.statistics().loan_breaks, 1);
    assert_eq!(loan_bytes(world, &loan), vec![0x11]);
    loan
}

const OTHER: u64 = 0x8000_0000;

#[test]
fn an_mprotect_of_a_mapping_with_a_stale_entry_of_a_broken_loan_finds_the_copy() {
    let world = world();
    let file = ServerFile::stamped(5, 2 * PAGE as usize);
    let (sa, sb) = (mmu(1), mmu(2));
    let (object, a) = shared_map(&world, &file, &sa, 2);
    let b = object
        .map(sb.clone() as SpaceRef, spec(OTHER, 2, 0, true))
        .expect("map");
    let loan = broken_loan_with_a_stale_entry(&world, &a, &b);
    check(&world, &[&sa, &sb]);
    // mprotect of b's page 0 read only: the piece carries the stale entry.
    let carved = b.carve(OTHER, OTHER + PAGE, false).expect("carve");
    check(&world, &[&sa, &sb]);
    assert_eq!(load(&world, &carved.middle, OTHER), Ok(0x22));
    assert_ne!(
        carved.middle.fault(OTHER, Access::Read).unwrap().frame,
        loan.frame(0).unwrap()
    );
    // And back to writable: a store writes the object's copy, the loan is untouched.
    let again = carved
        .middle
        .carve(OTHER, OTHER + PAGE, true)
        .expect("carve");
    store(&world, &again.middle, OTHER, 0x33).expect("store");
    assert_eq!(load(&world, &a, BASE), Ok(0x33));
    assert_eq!(loan_bytes(&world, &loan), vec![0x11]);
    check(&world, &[&sa, &sb]);
    drop((again, carved.tail, a, object));
    assert_eq!(file.bytes(0, 8), vec![0x33; 8]);
    check(&world, &[&sa, &sb]);
    loan.release();
    check(&world, &[&sa, &sb]);
    all_frames_back(world);
}

#[test]
fn a_partial_munmap_of_a_stale_entry_of_a_broken_loan_writes_the_copy_back() {
    let world = world();
    let file = ServerFile::stamped(6, 2 * PAGE as usize);
    let (sa, sb) = (mmu(1), mmu(2));
    let (object, a) = shared_map(&world, &file, &sa, 2);
    let b = object
        .map(sb.clone() as SpaceRef, spec(OTHER, 2, 0, true))
        .expect("map");
    let loan = broken_loan_with_a_stale_entry(&world, &a, &b);
    let carved = b.carve(OTHER, OTHER + PAGE, true).expect("carve");
    // The unmap writes back the object's dirty copy of page 0, not the lent old page.
    assert_eq!(carved.middle.unmap(), Ok(1));
    assert_eq!(file.bytes(0, 8), vec![0x22; 8]);
    assert_eq!(object.dirty_pages(), 0);
    assert_eq!(loan_bytes(&world, &loan), vec![0x11]);
    check(&world, &[&sa, &sb]);
    drop((carved.tail, a, object));
    assert_eq!(world.vm.statistics().orphan_pages, 1);
    loan.release();
    assert_eq!(world.vm.statistics().orphan_pages, 0);
    check(&world, &[&sa, &sb]);
    all_frames_back(world);
}

#[test]
fn a_lend_through_a_carved_piece_with_a_stale_entry_lends_the_copy() {
    let world = world();
    let file = ServerFile::stamped(7, 2 * PAGE as usize);
    let (sa, sb) = (mmu(1), mmu(2));
    let (object, a) = shared_map(&world, &file, &sa, 2);
    let b = object
        .map(sb.clone() as SpaceRef, spec(OTHER, 2, 0, true))
        .expect("map");
    let first = broken_loan_with_a_stale_entry(&world, &a, &b);
    let carved = b
        .carve(OTHER + PAGE, OTHER + 2 * PAGE, false)
        .expect("carve");
    let head = carved.head.expect("head");
    let second = head.lend(OTHER, PAGE).expect("lend");
    assert_eq!(loan_bytes(&world, &second), vec![0x22]);
    assert_ne!(second.frame(0), first.frame(0));
    assert_eq!(loan_bytes(&world, &first), vec![0x11]);
    assert!(lent_read_only(&sa, &second) && lent_read_only(&sb, &second));
    check(&world, &[&sa, &sb]);
    store(&world, &a, BASE, 0x44).expect("store");
    assert_eq!(world.vm.statistics().loan_breaks, 2);
    assert_eq!(load(&world, &head, OTHER), Ok(0x44));
    assert_eq!(
        (loan_bytes(&world, &first), loan_bytes(&world, &second)),
        (vec![0x11], vec![0x22])
    );
    check(&world, &[&sa, &sb]);
    drop((head, carved.middle, a, object));
    assert_eq!(file.bytes(0, 8), vec![0x44; 8]);
    assert_eq!(world.vm.statistics().orphan_pages, 2);
    drop((first, second));
    assert_eq!(world.vm.statistics().orphan_pages, 0);
    check(&world, &[&sa, &sb]);
    all_frames_back(world);
}

#[test]
fn a_carve_of_lent_private_copies_that_cannot_allocate_leaves_the_loan_whole() {
    // Each allocation of a three-way mprotect of a private mapping whose copies are lent,
    // refused in turn: the loan keeps its bytes and its pages stay read only either way,
    // and a store after still breaks it.
    let mut refused = 0;
    for nth in 0.. {
        assert!(nth < 1000, "the carve never stops allocating");
        let world = world();
        let file = ServerFile::stamped(8, 6 * PAGE as usize);
        let space = mmu(1);
        let object = world.vm.file_object(file.open()).expect("object");
        let map = object
            .map(space.clone() as SpaceRef, spec(BASE, 6, 0, false))
            .expect("map");
        for page in 0..6 {
            store(&world, &map, BASE + page * PAGE, stamp(page, 1)).expect("store");
        }
        let loan = map.lend(BASE + PAGE, 4 * PAGE).expect("lend");
        let lent: Vec<u8> = (1..5).map(|page| stamp(page, 1)).collect();
        world.frames.fail_allocation(nth);
        let carved = map.carve(BASE + PAGE, BASE + 5 * PAGE, true);
        world.frames.never_fail();
        assert_eq!(loan_bytes(&world, &loan), lent, "allocation {nth}");
        assert!(lent_read_only(&space, &loan));
        check(&world, &[&space]);
        let (pieces, done) = match carved {
            Ok(carved) => {
                let pieces = vec![
                    carved.head.expect("head"),
                    carved.middle,
                    carved.tail.expect("tail"),
                ];
                (pieces, true)
            }
            Err(failed) => {
                assert_eq!(failed.error, VmError::NoMemory);
                refused += 1;
                (vec![failed.mapping], false)
            }
        };
        // A load maps a lent page read only, a store breaks the loan, in whichever
        // mapping now maps page 2.
        let at = BASE + 2 * PAGE;
        let holder = pieces
            .iter()
            .find(|piece| (piece.base()..piece.end()).contains(&at))
            .expect("a mapping of page 2");
        assert!(!holder.fault(at, Access::Read).expect("load").writable);
        store(&world, holder, at, 0x6e).expect("store");
        assert_eq!(world.vm.statistics().loan_breaks, 1);
        assert_eq!(loan_bytes(&world, &loan), lent);
        check(&world, &[&space]);
        drop((pieces, object));
        assert_eq!(world.vm.statistics().orphan_pages, 4);
        loan.release();
        let stats = world.vm.statistics();
        assert_eq!((stats.orphan_pages, stats.pages_lent), (0, 0));
        check(&world, &[&space]);
        all_frames_back(world);
        if done {
            break;
        }
    }
    assert!(refused >= 3, "only {refused} allocations refused");
}

#[test]
fn a_store_breaking_a_loan_during_a_refused_write_back_leaves_the_copy_dirty_alone() {
    let world = world();
    let file = ServerFile::stamped(9, PAGE as usize);
    let space = mmu(1);
    let (object, map) = shared_map(&world, &file, &space, 1);
    store(&world, &map, BASE, 0x11).expect("store");
    let loan = map.lend(BASE, PAGE).expect("lend");
    let (started, started_seen) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    // The write-back's write waits for the test, then is refused.
    *file.fail_writes.lock().unwrap() = true;
    *file.before_write.lock().unwrap() = Some(Box::new(move || {
        let _ = started.send(());
        let _ = released.recv_timeout(DEADLINE);
    }));
    std::thread::scope(|scope| {
        let sync = scope.spawn(|| map.sync(BASE, PAGE));
        let writing = started_seen.recv_timeout(DEADLINE).is_ok();
        // While it writes the lent page, a store breaks the loan: the object's page is a
        // copy now, dirty by the store.
        let stored = store(&world, &map, BASE, 0x22);
        let _ = release.send(());
        assert!(writing, "the write-back never wrote");
        stored.expect("store");
        assert_eq!(sync.join().unwrap(), Err(VmError::Io(FileError::Io)));
    });
    assert_eq!(world.vm.statistics().loan_breaks, 1);
    // The refused write marks dirty the page it wrote only if that is still the object's:
    // the old page left the object at the break (the loan holds it).
    assert_eq!(object.dirty_pages(), 1);
    assert_eq!(world.vm.statistics().dirty_pages, 1);
    check(&world, &[&space]);
    *file.fail_writes.lock().unwrap() = false;
    assert_eq!(map.sync(BASE, PAGE), Ok(1));
    assert_eq!(file.bytes(0, 8), vec![0x22; 8]);
    assert_eq!(world.vm.statistics().dirty_pages, 0);
    assert_eq!(loan_bytes(&world, &loan), vec![0x11]);
    check(&world, &[&space]);
    drop((map, object));
    loan.release();
    let stats = world.vm.statistics();
    assert_eq!(
        (stats.orphan_pages, stats.pages_lent, stats.dirty_pages),
        (0, 0, 0)
    );
    check(&world, &[&space]);
    all_frames_back(world);
}

/// A lent page dirtied through a shared mapping, whose write-back is refused while the
/// kernel writes bytes 8..16 of the file (`Vm::wrote_mapped`), the copy a loan break would
/// need refused too if `copy_refused`. Nobody holds the object once its unmap's write-back
/// is refused, so no mapping marks the kernel's write dirty: only the refused write-back's
/// mark keeps the store. Then the write-back is let through, and the loan released.
/// Returns the vm's statistics after the refused write-back.
fn kernels_write_during_a_refused_write_back(copy_refused: bool) -> vm::Statistics {
    let world = world();
    let file = ServerFile::stamped(10, PAGE as usize);
    let space = mmu(1);
    let (object, map) = shared_map(&world, &file, &space, 1);
    store(&world, &map, BASE, 0x11).expect("store");
    let loan = map.lend(BASE, PAGE).expect("lend");
    drop(object);
    *file.fail_writes.lock().unwrap() = true;
    assert_eq!(map.unmap(), Err(VmError::Io(FileError::Io)));
    let (started, started_seen) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    *file.before_write.lock().unwrap() = Some(Box::new(move || {
        let _ = started.send(());
        let _ = released.recv_timeout(DEADLINE);
    }));
    std::thread::scope(|scope| {
        let sync = scope.spawn(|| world.vm.write_back_dirty());
        let writing = started_seen.recv_timeout(DEADLINE).is_ok();
        // While the write-back writes the lent page (its mark cleared), the kernel writes
        // bytes 8..16 of the file.
        file.data.lock().unwrap()[8..16].copy_from_slice(&[0x33; 8]);
        if copy_refused {
            world.frames.fail_allocation(0);
        }
        let wrote = world.vm.wrote_mapped(&file.identity, 8, &[0x33; 8]);
        world.frames.never_fail();
        let _ = release.send(());
        assert!(writing, "the write-back never wrote");
        assert_eq!(
            wrote, 1,
            "the kernel's write did not reach the resident page"
        );
        assert_eq!(sync.join().unwrap(), Err(VmError::Io(FileError::Io)));
    });
    let stats = world.vm.statistics();
    // The refused write marked the page the object holds now, which has the store's bytes.
    assert_eq!(
        stats.dirty_pages, 1,
        "the refused write-back's mark was lost"
    );
    check(&world, &[&space]);
    *file.fail_writes.lock().unwrap() = false;
    assert_eq!(world.vm.write_back_dirty(), Ok(1));
    assert_eq!(file.bytes(0, 16), [[0x11; 8], [0x33; 8]].concat());
    let lent = world.frames.read(loan.frame(0).unwrap());
    // The loan keeps its snapshot if the page was copied, and sees the change if not.
    let kernels_byte = if copy_refused { 0x33 } else { stamp(0, 0) };
    assert_eq!((lent[0], lent[8]), (0x11, kernels_byte));
    check(&world, &[&space]);
    loan.release();
    let after = world.vm.statistics();
    assert_eq!(
        (after.orphan_pages, after.pages_lent, after.dirty_pages),
        (0, 0, 0)
    );
    check(&world, &[&space]);
    all_frames_back(world);
    stats
}

#[test]
fn the_kernels_write_breaking_a_loan_during_a_refused_write_back_keeps_the_store_dirty() {
    // The lent page is copied first, the copy clean, with the store's bytes the refused
    // write does not deliver: the refused write marks the copy.
    let stats = kernels_write_during_a_refused_write_back(false);
    assert_eq!((stats.loan_breaks, stats.loan_snapshots_lost), (1, 0));
}

#[test]
fn the_kernels_write_with_no_memory_for_a_copy_keeps_a_lent_page_in_write_back() {
    // No copy: the lent page, clean-looking while its write-back is out, must stay in the
    // object and take the kernel's change in place (its loan sees it), so that the refused
    // write marks it dirty again and the store reaches the server later.
    let stats = kernels_write_during_a_refused_write_back(true);
    assert_eq!((stats.loan_breaks, stats.loan_snapshots_lost), (0, 1));
}
