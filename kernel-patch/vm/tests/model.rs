//! A model test: random sequences of exec, fault, fork, exit, reclaim, file change and
//! remount run against the real caches and a plain reference model of what each process
//! must see. After every step the invariant checker runs over every live segment, the
//! channels open match the active images, and every faulted page holds exactly the bytes
//! of the file version its process executed (or the process's own writes): never a stale
//! page.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use vm::check::check_invariants;
use vm::testkit::FakeFile;
use vm::{Access, Config, FaultError, FileIdentity, SegmentKind, VmError};

const PATHS: usize = 3;
const MAX_PROCESSES: usize = 6;

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
}

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
    ]
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
    versions: [u32; PATHS],
    files: HashMap<FileIdentity, Program>,
    processes: Vec<ModelProcess>,
    writes: u64,
}

impl Harness {
    fn new() -> Self {
        let config = Config {
            max_pages: 48,
            max_images: 4,
            max_idle_images: 2,
            reclaim_batch: 4,
        };
        Self {
            world: world(config),
            config,
            dev: 1,
            versions: [0; PATHS],
            files: HashMap::new(),
            processes: Vec::new(),
            writes: 0,
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
        }
        self.check()
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
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_caches_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.step(op)?;
        }
        harness.processes.clear();
        harness.check()?;
        prop_assert!(file_handles_closed(&harness.files));
        let frames = harness.world.frames.clone();
        drop(harness.world);
        prop_assert_eq!(frames.stats().outstanding(), 0);
    }
}
