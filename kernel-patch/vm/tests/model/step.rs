//! The harness made, and one operation applied to the vm and the model: exec, fault,
//! fork, exit, reclaim, file changes and remounts (the mount cache's in `mc_step`).

use super::*;

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with_mount_cache(MountCacheConfig {
            max_file_bytes: 3 * PAGE,
            max_bytes: 6 * PAGE,
            max_files: 3,
        })
    }

    pub(crate) fn with_mount_cache(mount_cache: MountCacheConfig) -> Self {
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

    pub(crate) fn program(&mut self, path: usize) -> Program {
        let identity = ident(self.dev, path as u64, self.versions[path]);
        self.files
            .entry(identity)
            .or_insert_with(|| {
                let text = (path as u64 + 1) * PAGE - 7 * path as u64;
                program(identity, text, PAGE + 300 * path as u64, PAGE / 2)
            })
            .clone()
    }

    pub(crate) fn active_identities(&self) -> BTreeSet<FileIdentity> {
        self.processes.iter().map(|p| p.identity).collect()
    }

    pub(crate) fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
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
}
