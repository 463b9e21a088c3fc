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

mod common;

use std::collections::{BTreeSet, HashMap};

use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
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

#[derive(Clone, Debug)]
enum Op {
    Exec(Index),
    Fault {
        process: Index,
        segment: Index,
        page: Index,
        write: bool,
    },
    Fork(Index),
    Exit(Index),
    Reclaim(u8),
    FileChange(Index),
    Remount,
    McOpen {
        file: Index,
        kind: Index,
        append_only: bool,
    },
    McRead {
        handle: Index,
        /// From a page boundary (so reads overlap earlier fills often), or anywhere.
        aligned: bool,
        offset: Index,
        len: Index,
    },
    McWrite {
        handle: Index,
        offset: Index,
        len: Index,
        seed: u8,
    },
    McSetLength {
        handle: Index,
        len: Index,
    },
    McClose(Index),
    McServerChange {
        file: Index,
        /// The new length; `None` keeps the old one (then only `qid.vers` tells).
        len: Option<Index>,
        seed: u8,
    },
    McForget(Index),
    McProgramRead {
        path: Index,
        offset: Index,
        len: Index,
    },
}

/// The operations of [`the_caches_match_the_model`]. Its weights stay as they are: the
/// seeds in `model.proptest-regressions` replay cases drawn with them.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<Index>().prop_map(Op::Exec),
        8 => (any::<Index>(), any::<Index>(), any::<Index>(), any::<bool>())
            .prop_map(|(process, segment, page, write)| Op::Fault { process, segment, page, write }),
        1 => any::<Index>().prop_map(Op::Fork),
        2 => any::<Index>().prop_map(Op::Exit),
        1 => (1u8..20).prop_map(Op::Reclaim),
        1 => any::<Index>().prop_map(Op::FileChange),
        1 => Just(Op::Remount),
        3 => (any::<Index>(), any::<Index>(), proptest::bool::weighted(0.1))
            .prop_map(|(file, kind, append_only)| Op::McOpen { file, kind, append_only }),
        6 => (any::<Index>(), any::<bool>(), any::<Index>(), any::<Index>())
            .prop_map(|(handle, aligned, offset, len)| Op::McRead { handle, aligned, offset, len }),
        3 => (any::<Index>(), any::<Index>(), any::<Index>(), any::<u8>())
            .prop_map(|(handle, offset, len, seed)| Op::McWrite { handle, offset, len, seed }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(handle, len)| Op::McSetLength { handle, len }),
        2 => any::<Index>().prop_map(Op::McClose),
        2 => (any::<Index>(), proptest::option::of(any::<Index>()), any::<u8>())
            .prop_map(|(file, len, seed)| Op::McServerChange { file, len, seed }),
        1 => any::<Index>().prop_map(Op::McForget),
        2 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(path, offset, len)| Op::McProgramRead { path, offset, len }),
    ]
}

/// Operations biased towards handles whose entry went: entries evicted (a small
/// `max_files`, remounts and program reads making more files), forgotten, and written,
/// truncated and read through the handles opened before. The stale reads after our own
/// writes of the hardening issue hide in such sequences.
fn stale_handle_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => any::<Index>().prop_map(Op::Exec),
        1 => any::<Index>().prop_map(Op::Exit),
        1 => (1u8..20).prop_map(Op::Reclaim),
        2 => Just(Op::Remount),
        6 => (any::<Index>(), any::<Index>(), proptest::bool::weighted(0.15))
            .prop_map(|(file, kind, append_only)| Op::McOpen { file, kind, append_only }),
        6 => (any::<Index>(), any::<bool>(), any::<Index>(), any::<Index>())
            .prop_map(|(handle, aligned, offset, len)| Op::McRead { handle, aligned, offset, len }),
        6 => (any::<Index>(), any::<Index>(), any::<Index>(), any::<u8>())
            .prop_map(|(handle, offset, len, seed)| Op::McWrite { handle, offset, len, seed }),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(handle, len)| Op::McSetLength { handle, len }),
        1 => any::<Index>().prop_map(Op::McClose),
        1 => (any::<Index>(), proptest::option::of(any::<Index>()), any::<u8>())
            .prop_map(|(file, len, seed)| Op::McServerChange { file, len, seed }),
        4 => any::<Index>().prop_map(Op::McForget),
        3 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(path, offset, len)| Op::McProgramRead { path, offset, len }),
    ]
}

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

impl Harness {
    fn new() -> Self {
        Self::with_mount_cache(MountCacheConfig {
            max_file_bytes: 3 * PAGE,
            max_bytes: 6 * PAGE,
            max_files: 3,
        })
    }

    fn with_mount_cache(mount_cache: MountCacheConfig) -> Self {
        let config = Config {
            max_pages: 48,
            max_images: 4,
            max_idle_images: 2,
            reclaim_batch: 4,
            max_free_pages: u32::MAX,
        };
        Self {
            world: mc_world(config, mount_cache),
            config,
            dev: 1,
            versions: [0; PATHS],
            files: HashMap::new(),
            processes: Vec::new(),
            writes: 0,
            mc_files: (0..MC_FILES as u64)
                .map(|n| McServerFile {
                    vers: 0,
                    data: patterned_bytes(n, PAGE as usize + 700 * n as usize),
                })
                .collect(),
            mc_handles: Vec::new(),
            mc_entries: HashMap::new(),
        }
    }

    fn program(&mut self, path: usize) -> Program {
        let identity = ident(self.dev, path as u64, self.versions[path]);
        self.files
            .entry(identity)
            .or_insert_with(|| {
                let text = (path as u64 + 1) * PAGE - 7 * path as u64;
                program(identity, text, PAGE + 300 * path as u64, PAGE / 2)
            })
            .clone()
    }

    fn active_identities(&self) -> BTreeSet<FileIdentity> {
        self.processes.iter().map(|p| p.identity).collect()
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Exec(path) => {
                if self.processes.len() >= MAX_PROCESSES {
                    return Ok(());
                }
                let program = self.program(path.index(PATHS));
                let identity = program.file.identity();
                match self.world.vm.exec(program.file.open(), &program.loads) {
                    Ok(mut segments) => {
                        // The file's channel became an image's: it left the mount cache.
                        self.mc_entries.remove(&(identity.dev, identity.qid_path));
                        let stack = self
                            .world
                            .vm
                            .zero_segment(SegmentKind::Stack, STACK_VA, 2 * PAGE)
                            .map_err(|e| TestCaseError::fail(format!("stack: {e}")))?;
                        segments.push(stack);
                        self.processes.push(ModelProcess {
                            identity,
                            process: Process { segments, program },
                            written: HashMap::new(),
                        });
                    }
                    Err(VmError::ImageTableFull) => {
                        let active = self.active_identities();
                        prop_assert!(
                            active.len() >= self.config.max_images as usize
                                && !active.contains(&identity),
                            "table full with {} active images",
                            active.len()
                        );
                    }
                    Err(err) => return Err(TestCaseError::fail(format!("exec: {err}"))),
                }
            }
            Op::Fault {
                process,
                segment,
                page,
                write,
            } => {
                if self.processes.is_empty() {
                    return Ok(());
                }
                let exhausted = pool_exhausted(&self.world);
                let chosen = process.index(self.processes.len());
                let model = &mut self.processes[chosen];
                let segments = &model.process.segments;
                let index = segment.index(segments.len());
                let seg = &segments[index];
                let pages = (seg.end() - seg.base()) / PAGE;
                let addr = seg.base() + page.index(pages as usize) as u64 * PAGE;
                let access = if *write && seg.kind() != SegmentKind::Text {
                    Access::Write
                } else {
                    Access::Read
                };
                let mapping = match seg.fault(addr, access) {
                    Ok(mapping) => mapping,
                    Err(FaultError::NoMemory) => {
                        // Legitimate only when every frame is taken.
                        prop_assert!(
                            exhausted || pool_exhausted(&self.world),
                            "NoMemory with free frames"
                        );
                        return Ok(());
                    }
                    Err(err) => return Err(TestCaseError::fail(format!("fault: {err}"))),
                };
                let key = addr;
                let expected = match model.written.get(&key) {
                    Some(bytes) => bytes.clone(),
                    None => match model.process.program.loads.get(index) {
                        Some(load) => expected_page(&model.process.program.file, load, addr),
                        None => vec![0; PAGE as usize],
                    },
                };
                let actual = self.world.frames.read(mapping.frame);
                prop_assert!(
                    actual == expected,
                    "stale or wrong page at {addr:#x} of {:?}",
                    seg.kind()
                );
                if access == Access::Write {
                    prop_assert!(mapping.writable);
                    self.writes += 1;
                    let stamp = self.writes.to_le_bytes();
                    self.world
                        .frames
                        .write(mapping.frame, (self.writes % 64) as usize * 8, &stamp);
                    model
                        .written
                        .insert(key, self.world.frames.read(mapping.frame));
                }
            }
            Op::Fork(process) => {
                if self.processes.is_empty() || self.processes.len() >= MAX_PROCESSES {
                    return Ok(());
                }
                let parent = &self.processes[process.index(self.processes.len())];
                let mut segments = Vec::new();
                for segment in &parent.process.segments {
                    segments.push(
                        segment
                            .fork()
                            .map_err(|e| TestCaseError::fail(format!("fork: {e}")))?,
                    );
                }
                let child = ModelProcess {
                    identity: parent.identity,
                    process: Process {
                        segments,
                        program: parent.process.program.clone(),
                    },
                    written: parent.written.clone(),
                };
                self.processes.push(child);
            }
            Op::Exit(process) => {
                if !self.processes.is_empty() {
                    let index = process.index(self.processes.len());
                    drop(self.processes.swap_remove(index));
                }
            }
            Op::Reclaim(pages) => {
                self.world.vm.reclaim(usize::from(*pages));
            }
            Op::FileChange(path) => {
                self.versions[path.index(PATHS)] += 1;
            }
            Op::Remount => {
                self.dev += 1;
            }
            op => self.mc_step(op)?,
        }
        self.check()
    }

    /// The mount-cache operations.
    fn mc_step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let cache = self.world.vm.mount_cache();
        match op {
            Op::McOpen {
                file,
                kind,
                append_only,
            } => {
                if self.mc_handles.len() >= MAX_HANDLES {
                    // The oldest channel is closed, so opens keep coming.
                    drop(self.mc_handles.remove(0));
                }
                let index = file.index(MC_FILES);
                let kind = open_kind(*kind);
                let server = &mut self.mc_files[index];
                if kind != OpenKind::Existing {
                    // A create or truncating open empties the file: a new version.
                    server.data.clear();
                    server.vers += 1;
                    changed_through(&mut self.mc_handles, index, self.dev);
                }
                let identity = ident(self.dev, MC_PATH + index as u64, server.vers);
                let length = server.data.len() as u64;
                let handle = cache.open(identity, length, kind, *append_only);
                let cacheable = handle.is_cached();
                prop_assert_eq!(cacheable, !append_only, "{:?}", identity);
                let entry = self
                    .mc_entries
                    .entry((self.dev, MC_PATH + index as u64))
                    .or_default();
                let label = Some((server.vers, length));
                if *append_only {
                    entry.wiped(None);
                } else if kind != OpenKind::Existing || entry.label != label {
                    entry.wiped(label);
                }
                self.mc_handles.push(McHandle {
                    file: index,
                    dev: self.dev,
                    handle,
                    cacheable,
                    exact: true,
                });
            }
            Op::McRead {
                handle,
                aligned,
                offset,
                len,
            } => {
                if self.mc_handles.is_empty() {
                    return Ok(());
                }
                let open = &self.mc_handles[handle.index(self.mc_handles.len())];
                let server = &self.mc_files[open.file].data;
                // Within the file (and just past its end), where the cached bytes are.
                let offset = if *aligned {
                    offset.index(server.len() / PAGE as usize + 1) as u64 * PAGE
                } else {
                    offset.index(server.len() + 1) as u64
                };
                let len = 1 + len.index(2 * PAGE as usize);
                let (bytes, hit) = read_through(&open.handle, server, offset, len);
                prop_assert!(
                    !open.exact || bytes == server_read(server, offset, len),
                    "read {len} at {offset} of file {}",
                    open.file
                );
                let entry = self
                    .mc_entries
                    .entry((open.dev, MC_PATH + open.file as u64))
                    .or_default();
                prop_assert!(
                    entry.holds(offset, hit),
                    "the cache answered {hit} bytes at {offset} it was never given"
                );
                entry.add(offset, bytes.len());
            }
            Op::McWrite {
                handle,
                offset,
                len,
                seed,
            } => {
                if self.mc_handles.is_empty() {
                    return Ok(());
                }
                let chosen = handle.index(self.mc_handles.len());
                let (file, dev) = (self.mc_handles[chosen].file, self.mc_handles[chosen].dev);
                changed_through(&mut self.mc_handles, file, dev);
                let open = &self.mc_handles[chosen];
                let offset = offset.index(MC_MAX_LEN) as u64;
                let len = (1 + len.index(2 * PAGE as usize)).min(MC_MAX_LEN - offset as usize);
                let bytes = patterned_bytes(u64::from(*seed) + 1000, len);
                let cached = open.handle.is_cached();
                let before = open.handle.vers();
                let server = &mut self.mc_files[open.file];
                let pending = open.handle.begin_write();
                server_write(&mut server.data, offset, &bytes);
                server.vers += 1;
                prop_assert_eq!(pending.done(offset, &bytes), before + 1);
                prop_assert_eq!(open.handle.vers(), before + 1);
                let key = (open.dev, MC_PATH + open.file as u64);
                if !open.cacheable {
                    // Written behind the cache: the file's entry, if any, goes.
                    prop_assert!(!open.handle.is_cached());
                    self.mc_entries.remove(&key);
                    return Ok(());
                }
                let entry = self.mc_entries.entry(key).or_default();
                if cached {
                    // The cache bumps its own version, not to the server's.
                    entry.label = entry
                        .label
                        .map(|(vers, length)| (vers + 1, length.max(offset + len as u64)));
                }
                entry.add(offset, len);
            }
            Op::McSetLength { handle, len } => {
                if self.mc_handles.is_empty() {
                    return Ok(());
                }
                let chosen = handle.index(self.mc_handles.len());
                let (file, dev) = (self.mc_handles[chosen].file, self.mc_handles[chosen].dev);
                changed_through(&mut self.mc_handles, file, dev);
                let open = &self.mc_handles[chosen];
                let len = len.index(MC_MAX_LEN + 1);
                let cached = open.handle.is_cached();
                let server = &mut self.mc_files[open.file];
                server.data.resize(len, 0);
                server.vers += 1;
                open.handle.set_length(len as u64, server.vers);
                if !open.cacheable {
                    self.mc_entries
                        .remove(&(open.dev, MC_PATH + open.file as u64));
                } else if cached {
                    self.mc_entries
                        .entry((open.dev, MC_PATH + open.file as u64))
                        .or_default()
                        .wiped(Some((server.vers, len as u64)));
                }
            }
            Op::McClose(handle) => {
                if !self.mc_handles.is_empty() {
                    let index = handle.index(self.mc_handles.len());
                    drop(self.mc_handles.swap_remove(index));
                }
            }
            Op::McServerChange { file, len, seed } => {
                // Another client writes the file. Our channels open on it may read old
                // bytes until they reopen (the cache is validated at open, as in Plan 9);
                // a new open must see the new contents.
                let index = file.index(MC_FILES);
                changed_through(&mut self.mc_handles, index, u64::MAX);
                let server = &mut self.mc_files[index];
                let len = len.map_or(server.data.len(), |len| len.index(MC_MAX_LEN + 1));
                server.data = patterned_bytes(u64::from(*seed) + 2000, len);
                server.vers += 1;
            }
            Op::McForget(file) => {
                let index = file.index(MC_FILES);
                let identity = ident(self.dev, MC_PATH + index as u64, 0);
                cache.forget(identity);
                self.mc_entries.remove(&(self.dev, MC_PATH + index as u64));
            }
            Op::McProgramRead { path, offset, len } => {
                // The kernel reads a program file (its header, say) through the cache.
                let program = self.program(path.index(PATHS));
                let identity = program.file.identity();
                let data = program.file.data();
                let handle = cache.open(identity, data.len() as u64, OpenKind::Existing, false);
                let key = (identity.dev, identity.qid_path);
                let entry = self.mc_entries.entry(key).or_default();
                let label = Some((identity.version, data.len() as u64));
                if handle.is_cached() && entry.label != label {
                    entry.wiped(label);
                }
                let offset = offset.index(data.len() + 1) as u64;
                let len = 1 + len.index(PAGE as usize);
                let (bytes, hit) = read_through(&handle, data, offset, len);
                prop_assert!(bytes == server_read(data, offset, len));
                prop_assert!(entry.holds(offset, hit), "program bytes never given");
                entry.add(offset, bytes.len());
            }
            _ => unreachable!("not a mount-cache operation"),
        }
        Ok(())
    }

    /// Every page any process has resident holds what the model says.
    fn check_resident(&self) -> Result<(), TestCaseError> {
        for model in &self.processes {
            for (index, seg) in model.process.segments.iter().enumerate() {
                for addr in (seg.base()..seg.end()).step_by(PAGE as usize) {
                    let Some(frame) = seg.resident(addr) else {
                        continue;
                    };
                    let expected = match model.written.get(&addr) {
                        Some(bytes) => bytes.clone(),
                        None => match model.process.program.loads.get(index) {
                            Some(load) => expected_page(&model.process.program.file, load, addr),
                            None => vec![0; PAGE as usize],
                        },
                    };
                    prop_assert!(
                        self.world.frames.read(frame) == expected,
                        "resident page at {:#x} of {:?} changed under the process",
                        addr,
                        seg.kind()
                    );
                }
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        self.check_resident()?;
        let live: Vec<_> = self
            .processes
            .iter()
            .flat_map(|p| p.process.segments.iter())
            .collect();
        let report = check_invariants(&self.world.vm, Some(&live))
            .map_err(|v| TestCaseError::fail(v.to_string()))?;
        let active = self.active_identities();
        prop_assert_eq!(report.open_channels as usize, active.len());
        let stats = self.world.vm.statistics();
        prop_assert_eq!(stats.images_active as usize, active.len());
        prop_assert!(stats.images_idle <= self.config.max_idle_images);
        // The kernel's safe point: files vm let go of are closed here.
        self.world.vm.run_parked_closes();
        for (identity, program) in &self.files {
            let counts = program.file.counts();
            let expected = u64::from(active.contains(identity));
            prop_assert_eq!(
                counts.open_handles(),
                expected,
                "channels of {:?}",
                identity
            );
            prop_assert_eq!(counts.unclosed_drops, 0);
        }
        Ok(())
    }
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
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

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
