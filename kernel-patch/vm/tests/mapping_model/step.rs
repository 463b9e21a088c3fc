//! One operation applied to the vm and to the model alike.

use super::*;

impl Harness {
    pub(crate) fn new() -> Self {
        let frames = HeapFrames::new(512);
        let vm = Vm::new(
            frames.allocator(),
            Config {
                max_pages: 400,
                ..Config::default()
            },
        )
        .unwrap();
        let file = ServerFile::stamped(1, (FILE_PAGES * PAGE) as usize);
        let object = vm.file_object(file.open()).unwrap();
        let server = file.bytes(0, (FILE_PAGES * PAGE) as usize);
        let mut harness = Self {
            vm,
            frames,
            _object: Some(object.share()),
            object: Some(object),
            refusing: false,
            procs: Vec::new(),
            next_space: 1,
            kernel: server.clone(),
            server,
            file,
            dirty: BTreeSet::new(),
            loans: Vec::new(),
        };
        let first = harness.process();
        harness.procs.push(Some(first));
        harness
    }

    fn process(&mut self) -> Process {
        let space = self.next_space;
        self.next_space += 1;
        Process {
            mmu: mmu(space),
            maps: (0..SLOTS).map(|_| Vec::new()).collect(),
        }
    }

    /// The byte object page `number` shows at `at` through `map`; `None` past the end of
    /// the file (a bus error).
    fn view(&self, map: &ModelMap, number: u64, at: usize) -> Option<u8> {
        match map.copies.get(&number) {
            Some(copy) => Some(copy[at]),
            None => self.kernel.get((number * PAGE) as usize + at).copied(),
        }
    }

    /// Whether object page `number` is wholly past the end of the file.
    pub(crate) fn past_end(&self, number: u64) -> bool {
        number * PAGE >= self.kernel.len() as u64
    }

    /// A shared mapping's range goes back to the server (msync, unmap, exit).
    fn write_back(&mut self, map: &ModelMap) {
        if !map.shared {
            return;
        }
        for number in map.first..map.first + map.pages {
            if self.dirty.remove(&number) {
                let range = (number * PAGE) as usize..((number + 1) * PAGE) as usize;
                self.server[range.clone()].copy_from_slice(&self.kernel[range]);
            }
        }
    }

    pub(crate) fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Map {
                proc,
                slot,
                shared,
                first,
                pages,
            } => {
                // A map in a process that is not there starts one (a spawn), so a run
                // whose processes all exited goes on.
                while self.procs.len() <= proc {
                    self.procs.push(None);
                }
                if self.procs[proc].is_none() {
                    let fresh = self.process();
                    self.procs[proc] = Some(fresh);
                }
                let Some(object) = &self.object else {
                    return Ok(());
                };
                let Some(process) = self.procs.get_mut(proc).and_then(Option::as_mut) else {
                    return Ok(());
                };
                if !process.maps[slot].is_empty() || pages == 0 {
                    return Ok(());
                }
                let space: SpaceRef = process.mmu.clone();
                let spec = MapSpec {
                    base: base(slot),
                    len: pages * PAGE,
                    offset: first * PAGE,
                    shared,
                    writable: true,
                };
                let map = object.map(space, spec).unwrap();
                let model = ModelMap {
                    shared,
                    start: 0,
                    first,
                    pages,
                    writable: true,
                    copies: BTreeMap::new(),
                };
                process.maps[slot].push((map, model));
            }
            Op::Unmap { proc, slot } => {
                let taken = self
                    .procs
                    .get_mut(proc)
                    .and_then(Option::as_mut)
                    .map(|process| std::mem::take(&mut process.maps[slot]))
                    .unwrap_or_default();
                for (map, model) in taken {
                    self.unmapped(map.unmap(), &model)?;
                }
            }
            Op::UnmapPart {
                proc,
                slot,
                from,
                pages,
            } => {
                for (map, model) in self.carve(proc, slot, from, from + pages, None) {
                    self.unmapped(map.unmap(), &model)?;
                }
            }
            Op::Protect {
                proc,
                slot,
                from,
                pages,
                writable,
            } => {
                let carved = self.carve(proc, slot, from, from + pages, Some(writable));
                if let Some(process) = self.procs.get_mut(proc).and_then(Option::as_mut) {
                    process.maps[slot].extend(carved);
                }
            }
            Op::Store {
                proc,
                slot,
                page,
                at,
                byte,
            } => {
                let Some((map, model)) = self.mapping(proc, slot, page) else {
                    return Ok(());
                };
                let number = model.first + (page - model.start);
                let fault = map.fault(base(slot) + page * PAGE, Access::Write);
                if !model.writable {
                    prop_assert_eq!(fault, Err(FaultError::ReadOnly), "{:?}", op);
                    return Ok(());
                }
                if self.past_end(number) {
                    prop_assert_eq!(fault, Err(FaultError::PastEnd), "{:?}", op);
                    return Ok(());
                }
                let mapping = fault.unwrap();
                prop_assert!(mapping.writable);
                self.frames.write(mapping.frame, at, &[byte]);
                let offset = (number * PAGE) as usize;
                if model.shared {
                    self.kernel[offset + at] = byte;
                    self.dirty.insert(number);
                } else {
                    let page_now = self.kernel[offset..offset + PAGE as usize].to_vec();
                    let model = self.mapping_mut(proc, slot, page);
                    model.copies.entry(number).or_insert(page_now)[at] = byte;
                }
            }
            Op::Load {
                proc,
                slot,
                page,
                at,
            } => {
                let Some((map, model)) = self.mapping(proc, slot, page) else {
                    return Ok(());
                };
                let number = model.first + (page - model.start);
                let fault = map.fault(base(slot) + page * PAGE, Access::Read);
                if self.past_end(number) && !model.copies.contains_key(&number) {
                    prop_assert_eq!(fault, Err(FaultError::PastEnd), "{:?}", op);
                    return Ok(());
                }
                let got = self.frames.read(fault.unwrap().frame)[at];
                prop_assert_eq!(Some(got), self.view(model, number, at), "{:?}", op);
            }
            Op::Fork { proc } => {
                if self.procs.get(proc).and_then(Option::as_ref).is_none() {
                    return Ok(());
                }
                let Some(free) = self
                    .procs
                    .iter()
                    .position(Option::is_none)
                    .or_else(|| (self.procs.len() < MAX_PROCESSES).then_some(self.procs.len()))
                else {
                    return Ok(());
                };
                let mut child = self.process();
                let parent = self.procs[proc].as_ref().unwrap();
                for (slot, pieces) in parent.maps.iter().enumerate() {
                    for (map, model) in pieces {
                        let space: SpaceRef = child.mmu.clone();
                        child.maps[slot].push((map.fork(space).unwrap(), model.clone()));
                    }
                }
                if free == self.procs.len() {
                    self.procs.push(Some(child));
                } else {
                    self.procs[free] = Some(child);
                }
            }
            Op::Exit { proc } => {
                let Some(process) = self.procs.get_mut(proc).and_then(Option::take) else {
                    return Ok(());
                };
                for (map, model) in process.maps.into_iter().flatten() {
                    // The drop writes back, as an exit does (a refused page stays dirty).
                    drop(map);
                    if !self.refusing {
                        self.write_back(&model);
                    }
                }
            }
            Op::Sync { proc, slot } => {
                let Some(process) = self.procs.get(proc).and_then(Option::as_ref) else {
                    return Ok(());
                };
                let mut synced = Vec::new();
                for (map, model) in &process.maps[slot] {
                    let result = map.sync(base(slot), FILE_PAGES * PAGE);
                    prop_assert!(self.refusing || result.is_ok(), "{:?}", result);
                    if result.is_ok() {
                        synced.push(model.clone());
                    }
                }
                for model in &synced {
                    self.write_back(model);
                }
            }
            Op::Truncate { pages } => {
                let size = pages * PAGE;
                self.file.data.lock().unwrap().resize(size as usize, 0);
                self.vm.truncate_mapped(&self.file.identity, size).unwrap();
                self.server.resize(size as usize, 0);
                self.kernel.resize(size as usize, 0);
                self.dirty.retain(|number| *number < pages);
                for process in self.procs.iter_mut().flatten() {
                    for (_, model) in process.maps.iter_mut().flatten() {
                        model.copies.retain(|number, _| *number < pages);
                    }
                }
            }
            Op::Refuse { on } => {
                self.refusing = on;
                *self.file.fail_writes.lock().unwrap() = on;
            }
            Op::Lend {
                proc,
                slot,
                from,
                pages,
            } => return self.lend(proc, slot, from, pages),
            Op::Release { loan } => {
                if self.loans.is_empty() {
                    return Ok(());
                }
                let (loan, bytes) = self.loans.remove(loan % self.loans.len());
                self.check_loan(&loan, &bytes)?;
                loan.release();
            }
            Op::Write { page, at, byte } => {
                let offset = page * PAGE + at as u64;
                if offset >= self.kernel.len() as u64 || self.refusing {
                    // Within the file only: sizes change by truncate, to whole pages.
                    return Ok(());
                }
                self.file.write_at(offset, &[byte]).unwrap();
                self.vm.wrote_mapped(&self.file.identity, offset, &[byte]);
                self.server[offset as usize] = byte;
                self.kernel[offset as usize] = byte;
            }
        }
        Ok(())
    }

    /// An unmap returned `result`: its range went back to the server, or (refused) its
    /// pages stay dirty.
    fn unmapped(
        &mut self,
        result: Result<u64, vm::VmError>,
        model: &ModelMap,
    ) -> Result<(), TestCaseError> {
        prop_assert!(self.refusing || result.is_ok(), "{:?}", result);
        if result.is_ok() {
            self.write_back(model);
        }
        Ok(())
    }
}
