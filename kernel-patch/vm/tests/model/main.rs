//! A model test: random sequences of exec, fault, fork, exit, reclaim, file change and
//! remount run against the real caches and a plain reference model of what each process
//! must see. After every step the invariant checker runs over every live segment, the
//! channels open match the active images, and every faulted page holds exactly the bytes
//! of the file version its process executed (or the process's own writes): never a stale
//! page.
//!
//! The mount cache runs in the same sequences: opens (plain, truncating, create,
//! append-only), reads and writes the kernel's way (cache first, server for the rest),
//! length changes, closes, forgets, changes by another client, and reads of program files
//! before they are executed. Its reference model is the server (each file's contents and
//! `qid.vers`), the version and length each file's cache entry must be labelled with, and
//! for each entry the bytes it may hold (those read or written since the last wipe the
//! model knows of). Every read returns exactly the server's bytes, and the cache never
//! answers a byte outside that bound.
//!
//! Here: the model's state and the runs; `ops` the random operations, `step` applies one
//! to the vm and the model, `mc_step` the mount-cache ones, `check` compares the vm with
//! the model.

#[path = "../common/mod.rs"]
mod common;

mod check;
mod mc_step;
mod ops;
mod step;

use std::collections::{BTreeSet, HashMap};

use common::*;
use ops::{op, stale_handle_op, Op};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use vm::check::check_invariants;
use vm::testkit::FakeFile;
use vm::{
    Access, CachedFile, Config, FaultError, FileIdentity, MountCacheConfig, OpenKind, SegmentKind,
    VmError,
};

const PATHS: usize = 3;
const MAX_PROCESSES: usize = 6;
/// Data files reached through the mount cache (paths `MC_PATH..`).
const MC_FILES: usize = 2;
const MC_PATH: u64 = 100;
const MAX_HANDLES: usize = 5;
/// Largest data file, and the end of every offset the model uses.
const MC_MAX_LEN: usize = 4 * PAGE as usize;

/// A data file on the server.
struct McServerFile {
    vers: u64,
    data: Vec<u8>,
}

/// An open, cached channel of a data file.
struct McHandle {
    file: usize,
    dev: u64,
    handle: CachedFile,
    /// Opened with an entry. Such a handle uses the file's current entry; one opened
    /// without (append-only, say) never does, and its changes forget the file's entry.
    cacheable: bool,
    /// Reads must return the server's bytes exactly. False once the file was changed
    /// through another mount (another `dev`, so another cache entry) while this channel
    /// was open: to it that is another client's change, seen only after a new open.
    exact: bool,
}

/// The file was changed through mount `dev`: open channels of other mounts may now read
/// old bytes from their own entries until they reopen.
fn changed_through(handles: &mut [McHandle], file: usize, dev: u64) {
    for open in handles
        .iter_mut()
        .filter(|open| open.file == file && open.dev != dev)
    {
        open.exact = false;
    }
}

/// A mount-cache entry's key in the model: `(dev, qid.path)`.
type McKey = (u64, u64);

/// What the model knows of one entry: the label it must carry and the bytes it may hold.
#[derive(Default)]
struct McEntry {
    /// `(qid.vers, length)` the entry was last validated or relabelled with, if known.
    label: Option<(u64, u64)>,
    /// Bytes read or written since the last wipe the model knows of.
    may_hold: Vec<bool>,
}

impl McEntry {
    fn wiped(&mut self, label: Option<(u64, u64)>) {
        self.label = label;
        self.may_hold.clear();
    }

    fn add(&mut self, offset: u64, len: usize) {
        let end = offset as usize + len;
        if self.may_hold.len() < end {
            self.may_hold.resize(end, false);
        }
        self.may_hold[offset as usize..end].fill(true);
    }

    fn holds(&self, offset: u64, len: usize) -> bool {
        (offset as usize..offset as usize + len).all(|at| self.may_hold.get(at) == Some(&true))
    }
}

fn open_kind(kind: Index) -> OpenKind {
    [
        OpenKind::Existing,
        OpenKind::Existing,
        OpenKind::Existing,
        OpenKind::Existing,
        OpenKind::Truncated,
        OpenKind::Created,
    ][kind.index(6)]
}

/// The reference model of one process: what it executed and what it wrote.
struct ModelProcess {
    identity: FileIdentity,
    process: Process,
    /// Page contents the process wrote, by address.
    written: HashMap<u64, Vec<u8>>,
}

struct Harness {
    world: World,
    config: Config,
    dev: u64,
    versions: [u64; PATHS],
    files: HashMap<FileIdentity, Program>,
    processes: Vec<ModelProcess>,
    writes: u64,
    mc_files: Vec<McServerFile>,
    mc_handles: Vec<McHandle>,
    mc_entries: HashMap<McKey, McEntry>,
}

fn pool_exhausted(world: &World) -> bool {
    let stats = world.vm.statistics();
    stats.pool_pages >= stats.max_pages && stats.free_pages == 0
}

fn file_handles_closed(files: &HashMap<FileIdentity, Program>) -> bool {
    files.values().all(|p: &Program| {
        let file: &FakeFile = &p.file;
        file.counts().open_handles() == 0
    })
}

proptest! {
    // Failures are kept beside this file (`main.proptest-regressions`): by default proptest
    // would put those of every `tests/*/main.rs` crate into one
    // `tests/proptest-regressions/main.txt`.
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_caches_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(Harness::new(), &ops)?;
    }

    /// The same model, with room for one or two files in the mount cache and operations
    /// biased towards entries that go while handles stay open (see [`stale_handle_op`]).
    #[test]
    fn handles_whose_entry_went_match_the_model(
        max_files in 1u32..3,
        ops in proptest::collection::vec(stale_handle_op(), 1..60),
    ) {
        let mount_cache = MountCacheConfig {
            max_file_bytes: 3 * PAGE,
            max_bytes: 6 * PAGE,
            max_files,
        };
        run(Harness::with_mount_cache(mount_cache), &ops)?;
    }
}

/// Runs `ops`, then closes everything and checks that every frame came back.
fn run(mut harness: Harness, ops: &[Op]) -> Result<(), TestCaseError> {
    for op in ops {
        harness.step(op)?;
    }
    harness.processes.clear();
    harness.mc_handles.clear();
    harness.check()?;
    prop_assert!(file_handles_closed(&harness.files));
    let frames = harness.world.frames.clone();
    drop(harness.world);
    prop_assert_eq!(frames.stats().outstanding(), 0);
    Ok(())
}
