//! A model test of mappings: random sequences of map (shared or private, any page range of
//! the file), unmap, unmap of part of a mapping, mprotect of part of one (a carve: a slot
//! then holds several mappings), store, load, fork, exit, msync, the kernel's own `write`
//! and truncate (shrinking or growing, to whole pages), a server refusing writes for a
//! while (refused pages stay dirty; at the end `write_back_dirty` sends what no mapping
//! covered), and page loans (lend a range of a mapping, release a loan; a few live at once)
//! run against the real vm and a plain reference model: the kernel's view of the file (what
//! `read` returns), the server's bytes, the pages dirtied and not written back, and each
//! private mapping's own copies. After every step the checker runs (every MMU entry
//! listed by the reverse map, page counts, records); every load returns the model's byte;
//! at the end, with everything unmapped, the server holds exactly the model's bytes.
//!
//! A loan's rule in the model: its pages hold the bytes the range showed at the lend,
//! forever (checked at its release and at the end, after everything else went), no MMU
//! entry maps one of its frames writable while it lives, and once every loan is released
//! and everything dropped every frame is back with the allocator.
//!
//! Here: the model's state and the run; `ops` the random operations, `step` applies one to
//! the vm and the model, `slots` finds and carves a slot's mappings, `loans` lends and
//! checks a loan's bytes, `check` compares the vm with the model after every step.

#[path = "../map_common/mod.rs"]
mod map_common;

mod check;
mod loans;
mod ops;
mod slots;
mod step;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use map_common::{mmu, Mmu, ServerFile, PAGE};
use ops::{op, Op};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use vm::check::{check_invariants, check_translations, Translation};
use vm::testkit::HeapFrames;
use vm::{
    Access, Config, FaultError, ImageFile, LendError, Loan, MapSpec, MappingRef, ObjectRef,
    SpaceRef, Vm,
};

const FILE_PAGES: u64 = 4;
const SLOTS: usize = 2;
const MAX_PROCESSES: usize = 3;
/// Offsets within a page the model stores at and loads from.
const OFFSETS: [usize; 3] = [0, 1000, 4095];
/// Loans live at once, at most (a lend with this many live releases none; it lends nothing).
const MAX_LOANS: usize = 3;

/// What the model knows of one mapping.
#[derive(Clone)]
struct ModelMap {
    shared: bool,
    /// Its first page, counted from its slot's base.
    start: u64,
    /// The object page mapped at its first page.
    first: u64,
    pages: u64,
    writable: bool,
    /// A private mapping's own copies, by object page number.
    copies: BTreeMap<u64, Vec<u8>>,
}

impl ModelMap {
    /// The part of it from slot page `from` to `to` (inside it), with its copies.
    fn part(&self, from: u64, to: u64) -> ModelMap {
        let first = self.first + (from - self.start);
        let end = first + (to - from);
        ModelMap {
            start: from,
            first,
            pages: to - from,
            copies: self
                .copies
                .range(first..end)
                .map(|(number, copy)| (*number, copy.clone()))
                .collect(),
            ..self.clone()
        }
    }
}

/// The mappings of one slot: one, or the pieces carves left of it.
type Slot = Vec<(MappingRef, ModelMap)>;

struct Process {
    mmu: Arc<Mmu>,
    maps: Vec<Slot>,
}

struct Harness {
    vm: Vm,
    frames: HeapFrames,
    file: ServerFile,
    /// Held all along, as an open file would: the object outlives its mappings.
    _object: Option<ObjectRef>,
    object: Option<ObjectRef>,
    /// Whether the server refuses writes now.
    refusing: bool,
    procs: Vec<Option<Process>>,
    next_space: u64,
    /// What `read` returns: the server's bytes with every store through a shared mapping.
    kernel: Vec<u8>,
    /// The server's bytes.
    server: Vec<u8>,
    dirty: BTreeSet<u64>,
    /// The live loans, each with the bytes of its pages at the lend.
    loans: Vec<(Loan, Vec<Vec<u8>>)>,
}

fn base(slot: usize) -> u64 {
    0x100_0000 * (slot as u64 + 1)
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut harness = Harness::new();
    let frames = harness.frames.clone();
    for op in ops {
        harness.step(op)?;
        harness.check()?;
    }
    // The server takes writes again and everyone exits; the pages no mapping covered go
    // back once nobody holds the file (`write_back_dirty`); the server has the model's
    // bytes.
    harness.step(&Op::Refuse { on: false })?;
    for proc in 0..harness.procs.len() {
        harness.step(&Op::Exit { proc })?;
    }
    harness.check()?;
    harness.object = None;
    harness._object = None;
    harness.check()?;
    harness.vm.write_back_dirty().unwrap();
    let left: Vec<u64> = harness.dirty.iter().copied().collect();
    for number in left {
        let range = (number * PAGE) as usize..((number + 1) * PAGE) as usize;
        let bytes = harness.kernel[range.clone()].to_vec();
        harness.server[range].copy_from_slice(&bytes);
    }
    harness.dirty.clear();
    harness.check()?;
    prop_assert_eq!(harness.vm.statistics().dirty_pages, 0);
    let len = harness.file.data.lock().unwrap().len();
    prop_assert_eq!(len, harness.server.len());
    let server = harness.file.bytes(0, len);
    for page in 0..len as u64 / PAGE {
        let range = (page * PAGE) as usize..((page + 1) * PAGE) as usize;
        prop_assert!(
            server[range.clone()] == harness.server[range.clone()],
            "page {} differs at the server",
            page
        );
        prop_assert!(
            server[range.clone()] == harness.kernel[range],
            "page {}",
            page
        );
    }
    let stats = harness.vm.statistics();
    prop_assert_eq!((stats.mappings, stats.rmap_records), (0, 0));
    // The loans outlived everything with their bytes; released, they free the last pages:
    // every frame goes back once the vm goes.
    while let Some((loan, bytes)) = harness.loans.pop() {
        harness.check_loan(&loan, &bytes)?;
        loan.release();
        harness.check()?;
    }
    let stats = harness.vm.statistics();
    prop_assert_eq!((stats.pages_lent, stats.orphan_pages), (0, 0));
    drop(harness);
    prop_assert_eq!(frames.stats().outstanding(), 0, "frames leaked");
    Ok(())
}

proptest! {
    // Failures are kept beside this file (`main.proptest-regressions`): by default proptest
    // would put those of every `tests/*/main.rs` crate into one
    // `tests/proptest-regressions/main.txt`.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mappings_match_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(&ops)?;
    }
}

/// The sequence the model exists for, spelled out: a private copy shared by fork, then a
/// store in the child, must leave the parent's copy alone.
#[test]
fn a_store_after_fork_copies_in_the_model_run() {
    let ops = [
        Op::Map {
            proc: 0,
            slot: 0,
            shared: false,
            first: 1,
            pages: 2,
        },
        Op::Store {
            proc: 0,
            slot: 0,
            page: 1,
            at: 1000,
            byte: 5,
        },
        Op::Fork { proc: 0 },
        Op::Store {
            proc: 1,
            slot: 0,
            page: 1,
            at: 1000,
            byte: 7,
        },
        Op::Load {
            proc: 0,
            slot: 0,
            page: 1,
            at: 1000,
        },
    ];
    run(&ops).unwrap();
}

/// A loan in the model run, spelled out: a private copy lent, then stored to again, must
/// leave the loan its bytes (the store copies); a shared page stored to, lent, loaded
/// (mapped read only) and stored to again breaks the loan.
#[test]
fn a_store_after_a_lend_copies_in_the_model_run() {
    let store = |proc, slot, byte| Op::Store {
        proc,
        slot,
        page: 0,
        at: 1000,
        byte,
    };
    let lend = |proc, slot| Op::Lend {
        proc,
        slot,
        from: 0,
        pages: 1,
    };
    let ops = [
        Op::Map {
            proc: 0,
            slot: 0,
            shared: false,
            first: 0,
            pages: 1,
        },
        Op::Map {
            proc: 0,
            slot: 1,
            shared: true,
            first: 0,
            pages: 1,
        },
        store(0, 0, 5),
        store(0, 1, 6),
        lend(0, 0),
        lend(0, 1),
        Op::Load {
            proc: 0,
            slot: 1,
            page: 0,
            at: 0,
        },
        store(0, 0, 7),
        store(0, 1, 8),
        Op::Release { loan: 0 },
    ];
    run(&ops).unwrap();
}
