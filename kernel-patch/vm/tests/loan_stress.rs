//! Stress of loans with real threads: lenders lend ranges of one shared file mapping and
//! of a private anonymous one and check that their bytes never change while lent, while
//! other threads store through the mappings (a CPU's stores, through the MMU under its
//! lock, as a shootdown waits for a store in flight), read the file, discard private
//! pages and let the pool be reclaimed. Lenders go on past their rounds until a store has
//! broken a loan (the race happened, counted), at most `MAX_ROUNDS`; the others until the
//! lenders are done, at most `MAX_ROUNDS` too, so nothing can hang. At the end the
//! invariant checker walks everything, no loan or orphan is left and every frame is back.

mod map_common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use map_common::{world_of, ServerFile, PAGE};
use vm::check::check_invariants;
use vm::testkit::HeapFrames;
use vm::{Access, AddressSpace, Frame, MapSpec, MappingRef, SpaceRef};

const PAGES: u64 = 8;
const ROUNDS: u64 = 2_000;
/// The most rounds a thread runs, whatever the others do.
const MAX_ROUNDS: u64 = 1_000_000;
const FILE_BASE: u64 = 0x4000_0000;
const ANON_BASE: u64 = 0x8000_0000;

/// A software MMU whose stores run under its lock: `invalidate` waits for a store in
/// flight, as a TLB shootdown does.
#[derive(Default)]
struct LockedMmu {
    entries: Mutex<BTreeMap<u64, (Frame, bool)>>,
}

impl AddressSpace for LockedMmu {
    fn id(&self) -> u64 {
        1
    }
    fn map(&self, addr: u64, frame: Frame, writable: bool) {
        self.entries.lock().unwrap().insert(addr, (frame, writable));
    }
    fn invalidate(&self, addr: u64, len: u64) {
        self.entries
            .lock()
            .unwrap()
            .retain(|at, _| *at < addr || *at >= addr + len);
    }
}

/// A CPU's store of `byte` at `addr`: through a writable translation under the MMU's lock,
/// else a write fault and again.
fn cpu_store(mmu: &LockedMmu, map: &MappingRef, frames: &HeapFrames, addr: u64, byte: u8) {
    for _ in 0..64 {
        {
            let entries = mmu.entries.lock().unwrap();
            if let Some(&(frame, true)) = entries.get(&addr) {
                frames.write(frame, 0, &[byte; 8]);
                return;
            }
        }
        map.fault(addr, Access::Write).expect("write fault");
    }
    panic!("a store at {addr:#x} never found a writable translation");
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Lends random ranges of `map` and checks each loan's bytes are the same at its return
/// as at its lend. Returns the loans made.
fn lender(vm: &vm::Vm, map: &MappingRef, frames: &HeapFrames, seed: u64) -> u64 {
    let mut rng = Rng(seed);
    let mut made = 0;
    for round in 0..MAX_ROUNDS {
        if round >= ROUNDS && round % 64 == 0 && vm.statistics().loan_breaks > 0 {
            break;
        }
        let first = rng.below(PAGES);
        let pages = 1 + rng.below(PAGES - first);
        let loan = match map.lend(map.base() + first * PAGE, pages * PAGE) {
            Ok(loan) => loan,
            Err(vm::LendError::NoMemory) => continue,
            Err(err) => panic!("lend: {err:?}"),
        };
        let at_lend: Vec<Vec<u8>> = loan.frames().map(|frame| frames.read(frame)).collect();
        thread::yield_now();
        let at_return: Vec<Vec<u8>> = loan.frames().map(|frame| frames.read(frame)).collect();
        assert!(at_lend == at_return, "a lent page changed while lent");
        made += 1;
    }
    made
}

fn storer(mmu: &LockedMmu, map: &MappingRef, frames: &HeapFrames, seed: u64, done: &AtomicBool) {
    let mut rng = Rng(seed);
    for round in 0..MAX_ROUNDS {
        if done.load(Ordering::Acquire) {
            break;
        }
        let page = rng.below(PAGES);
        cpu_store(mmu, map, frames, map.base() + page * PAGE, round as u8 | 1);
    }
}

#[test]
fn lenders_storers_discards_and_reclaim_at_once() {
    let world = world_of(HeapFrames::new(256), 96);
    let file = ServerFile::stamped(1, (PAGES * PAGE) as usize);
    let object = world.vm.file_object(file.open()).expect("object");
    let (file_mmu, anon_mmu) = (
        Arc::new(LockedMmu::default()),
        Arc::new(LockedMmu::default()),
    );
    let spec = |base, shared| MapSpec {
        base,
        len: PAGES * PAGE,
        offset: 0,
        shared,
        writable: true,
    };
    let shared = object
        .map(file_mmu.clone() as SpaceRef, spec(FILE_BASE, true))
        .expect("map");
    let anon = world
        .vm
        .map_private_anon(anon_mmu.clone() as SpaceRef, spec(ANON_BASE, false))
        .expect("map");
    let done = AtomicBool::new(false);
    let loans = thread::scope(|scope| {
        let lenders = [
            scope.spawn(|| lender(&world.vm, &shared, &world.frames, 0x1234_5678)),
            scope.spawn(|| lender(&world.vm, &anon, &world.frames, 0x8765_4321)),
        ];
        scope.spawn(|| storer(&file_mmu, &shared, &world.frames, 0x5555, &done));
        scope.spawn(|| storer(&anon_mmu, &anon, &world.frames, 0x7777, &done));
        scope.spawn(|| {
            let mut rng = Rng(0x9999);
            for _ in 0..MAX_ROUNDS {
                if done.load(Ordering::Acquire) {
                    break;
                }
                let page = rng.below(PAGES);
                anon.discard(ANON_BASE + page * PAGE, PAGE);
                if rng.below(4) == 0 {
                    world.vm.shrink(4);
                }
                let mut buf = vec![0; PAGE as usize];
                world.vm.read_mapped(&file.identity, page * PAGE, &mut buf);
            }
        });
        // A lender that panicked still lets the others stop.
        let made = lenders.map(|lender| lender.join());
        done.store(true, Ordering::Release);
        made.map(|made| made.expect("lender"))
    });
    assert!(loans.iter().all(|&made| made > 0), "{loans:?}");
    check_invariants(&world.vm, Some(&[])).expect("invariants");
    let stats = world.vm.statistics();
    assert_eq!((stats.pages_lent, stats.orphan_pages), (0, 0));
    assert!(stats.loan_breaks > 0, "no store ever broke a loan");
    eprintln!(
        "loans {:?}, breaks {}, invalidations {}, zero-page loans {}",
        loans, stats.loan_breaks, stats.loan_invalidations, stats.zero_page_loans
    );
    drop((shared, anon, object));
    world.vm.run_parked_closes();
    let frames = world.frames.clone();
    drop(world);
    assert_eq!(frames.stats().outstanding(), 0, "a frame leaked");
}
