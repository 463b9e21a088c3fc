//! A model test of mappings: random sequences of map (shared or private, any page range of
//! the file), unmap, unmap of part of a mapping, mprotect of part of one (a carve: a slot
//! then holds several mappings), store, load, fork, exit, msync, the kernel's own `write`
//! and truncate (shrinking or growing, to whole pages), a server refusing writes for a
//! while (refused pages stay dirty; at the end `write_back_dirty` sends what no mapping
//! covered), and page loans (lend a range of a mapping, release a loan; a few live at once)
//! run
//! against the real vm and a plain reference model: the kernel's view of the file (what
//! `read` returns), the server's bytes, the pages dirtied and not written back, and each
//! private mapping's own copies. After every step the checker runs (every MMU entry
//! listed by the reverse map, page counts, records); every load returns the model's byte;
//! at the end, with everything unmapped, the server holds exactly the model's bytes.
//!
//! A loan's rule in the model: its pages hold the bytes the range showed at the lend,
//! forever (checked at its release and at the end, after everything else went), no MMU
//! entry maps one of its frames writable while it lives, and once every loan is released
//! and everything dropped every frame is back with the allocator.

mod map_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use map_common::{mmu, Mmu, ServerFile, PAGE};
use proptest::prelude::*;
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

#[derive(Clone, Debug)]
enum Op {
    Map {
        proc: usize,
        slot: usize,
        shared: bool,
        first: u64,
        pages: u64,
    },
    Unmap {
        proc: usize,
        slot: usize,
    },
    /// Unmaps pages `from..from + pages` of the slot (whatever maps them).
    UnmapPart {
        proc: usize,
        slot: usize,
        from: u64,
        pages: u64,
    },
    /// Makes pages `from..from + pages` of the slot writable or read only.
    Protect {
        proc: usize,
        slot: usize,
        from: u64,
        pages: u64,
        writable: bool,
    },
    Store {
        proc: usize,
        slot: usize,
        page: u64,
        at: usize,
        byte: u8,
    },
    Load {
        proc: usize,
        slot: usize,
        page: u64,
        at: usize,
    },
    Fork {
        proc: usize,
    },
    Exit {
        proc: usize,
    },
    Sync {
        proc: usize,
        slot: usize,
    },
    Write {
        page: u64,
        at: usize,
        byte: u8,
    },
    Truncate {
        pages: u64,
    },
    /// The server starts or stops refusing writes: a refused write-back leaves its pages
    /// dirty for a later one (or, once nobody holds the file, for `write_back_dirty`).
    Refuse {
        on: bool,
    },
    /// Lends slot pages `from..from + pages` of the mapping that maps slot page `from`
    /// (clamped to that mapping; with none there, of the slot's first mapping from its
    /// start).
    Lend {
        proc: usize,
        slot: usize,
        from: u64,
        pages: u64,
    },
    /// Releases live loan `loan` (modulo the loans live), after checking its bytes.
    Release {
        loan: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let proc = 0..MAX_PROCESSES;
    let slot = 0..SLOTS;
    prop_oneof![
        2 => (
            proc.clone(),
            slot.clone(),
            any::<bool>(),
            0..FILE_PAGES,
            1..=FILE_PAGES
        )
            .prop_map(|(proc, slot, shared, first, pages)| Op::Map {
                proc,
                slot,
                shared,
                first,
                pages: pages.min(FILE_PAGES - first),
            }),
        1 => (proc.clone(), slot.clone()).prop_map(|(proc, slot)| Op::Unmap { proc, slot }),
        1 => (proc.clone(), slot.clone(), 0..FILE_PAGES, 1..FILE_PAGES).prop_map(
            |(proc, slot, from, pages)| Op::UnmapPart {
                proc,
                slot,
                from,
                pages
            }
        ),
        1 => (
            proc.clone(),
            slot.clone(),
            0..FILE_PAGES,
            1..FILE_PAGES,
            any::<bool>()
        )
            .prop_map(|(proc, slot, from, pages, writable)| Op::Protect {
                proc,
                slot,
                from,
                pages,
                writable
            }),
        4 => (
            proc.clone(),
            slot.clone(),
            0..FILE_PAGES,
            0..OFFSETS.len(),
            any::<u8>()
        )
            .prop_map(|(proc, slot, page, at, byte)| Op::Store {
                proc,
                slot,
                page,
                at: OFFSETS[at],
                byte,
            }),
        4 => (proc.clone(), slot.clone(), 0..FILE_PAGES, 0..OFFSETS.len()).prop_map(
            |(proc, slot, page, at)| Op::Load {
                proc,
                slot,
                page,
                at: OFFSETS[at],
            }
        ),
        2 => proc.clone().prop_map(|proc| Op::Fork { proc }),
        1 => proc.clone().prop_map(|proc| Op::Exit { proc }),
        1 => (proc.clone(), slot.clone()).prop_map(|(proc, slot)| Op::Sync { proc, slot }),
        1 => (0..=FILE_PAGES).prop_map(|pages| Op::Truncate { pages }),
        1 => any::<bool>().prop_map(|on| Op::Refuse { on }),
        4 => (proc, slot, 0..FILE_PAGES, 1..=FILE_PAGES).prop_map(
            |(proc, slot, from, pages)| Op::Lend {
                proc,
                slot,
                from,
                pages
            }
        ),
        1 => (0..MAX_LOANS).prop_map(|loan| Op::Release { loan }),
        1 => (0..FILE_PAGES, 0..OFFSETS.len(), any::<u8>()).prop_map(|(page, at, byte)| Op::Write {
            page,
            at: OFFSETS[at],
            byte,
        }),
    ]
}

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

impl Harness {
    fn new() -> Self {
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
    fn past_end(&self, number: u64) -> bool {
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

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
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

    /// Lends slot pages `from..from + pages` of the mapping of slot page `from`, clamped
    /// to it; the model takes the bytes each page shows now as the loan's, forever.
    fn lend(
        &mut self,
        proc: usize,
        slot: usize,
        from: u64,
        pages: u64,
    ) -> Result<(), TestCaseError> {
        if self.loans.len() >= MAX_LOANS {
            return Ok(());
        }
        // Where no mapping maps `from`, the slot's first piece from its start: most lends
        // lend something.
        let Some((map, model, from)) = self
            .mapping(proc, slot, from)
            .map(|(map, model)| (map, model, from))
            .or_else(|| {
                let (map, model) = self.procs.get(proc)?.as_ref()?.maps[slot].first()?;
                Some((map, model, model.start))
            })
        else {
            return Ok(());
        };
        let to = (from + pages).min(model.start + model.pages);
        let first = model.first + (from - model.start);
        let numbers = first..first + (to - from);
        let expected: Option<Vec<Vec<u8>>> = numbers
            .clone()
            .map(|number| match model.copies.get(&number) {
                Some(copy) => Some(copy.clone()),
                None if self.past_end(number) => None,
                None => {
                    let offset = (number * PAGE) as usize;
                    Some(self.kernel[offset..offset + PAGE as usize].to_vec())
                }
            })
            .collect();
        let result = map.lend(base(slot) + from * PAGE, (to - from) * PAGE);
        let Some(expected) = expected else {
            prop_assert_eq!(result.err(), Some(LendError::PastEnd), "{:?}", numbers);
            return Ok(());
        };
        let loan = match result {
            Ok(loan) => loan,
            Err(err) => return Err(TestCaseError::fail(format!("lend {numbers:?}: {err:?}"))),
        };
        prop_assert_eq!(loan.pages(), expected.len());
        self.check_loan(&loan, &expected)?;
        self.loans.push((loan, expected));
        Ok(())
    }

    /// A loan's pages hold the bytes they had at the lend.
    fn check_loan(&self, loan: &Loan, expected: &[Vec<u8>]) -> Result<(), TestCaseError> {
        for (index, (frame, bytes)) in loan.frames().zip(expected).enumerate() {
            prop_assert!(
                self.frames.read(frame) == *bytes,
                "page {} of a loan of {} changed",
                index,
                expected.len()
            );
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

    /// The mapping of slot page `page`, if one maps it.
    fn mapping(&self, proc: usize, slot: usize, page: u64) -> Option<(&MappingRef, &ModelMap)> {
        let pieces = &self.procs.get(proc)?.as_ref()?.maps[slot];
        let (map, model) = pieces
            .iter()
            .find(|(_, model)| (model.start..model.start + model.pages).contains(&page))?;
        Some((map, model))
    }

    fn mapping_mut(&mut self, proc: usize, slot: usize, page: u64) -> &mut ModelMap {
        let pieces = &mut self.procs[proc].as_mut().unwrap().maps[slot];
        let (_, model) = pieces
            .iter_mut()
            .find(|(_, model)| (model.start..model.start + model.pages).contains(&page))
            .unwrap();
        model
    }

    /// Carves slot pages `from..to` out of the slot's mappings, as a partial munmap or
    /// mprotect does: the parts outside stay in the slot, the parts inside are returned,
    /// writable as `writable` says (`None`: as they were).
    fn carve(
        &mut self,
        proc: usize,
        slot: usize,
        from: u64,
        to: u64,
        writable: Option<bool>,
    ) -> Vec<(MappingRef, ModelMap)> {
        let Some(process) = self.procs.get_mut(proc).and_then(Option::as_mut) else {
            return Vec::new();
        };
        let mut kept = Vec::new();
        let mut inside = Vec::new();
        for (map, model) in std::mem::take(&mut process.maps[slot]) {
            let (start, end) = (model.start, model.start + model.pages);
            let (lo, hi) = (from.max(start), to.min(end));
            if lo >= hi {
                kept.push((map, model));
                continue;
            }
            let writable = writable.unwrap_or(model.writable);
            let carved = map
                .carve(base(slot) + lo * PAGE, base(slot) + hi * PAGE, writable)
                .unwrap();
            if let Some(head) = carved.head {
                kept.push((head, model.part(start, lo)));
            }
            if let Some(tail) = carved.tail {
                kept.push((tail, model.part(hi, end)));
            }
            let mut middle = model.part(lo, hi);
            middle.writable = writable;
            inside.push((carved.middle, middle));
        }
        process.maps[slot] = kept;
        inside
    }

    fn check(&self) -> Result<(), TestCaseError> {
        if let Err(violation) = check_invariants(&self.vm, Some(&[])) {
            return Err(TestCaseError::fail(format!("{violation:?}")));
        }
        let mut translations = Vec::new();
        for process in self.procs.iter().flatten() {
            for (&addr, &(frame, writable)) in process.mmu.entries.lock().unwrap().iter() {
                translations.push(Translation {
                    space: process.mmu.id,
                    addr,
                    frame,
                    writable,
                });
            }
        }
        if let Err(violation) = check_translations(&self.vm, &translations) {
            return Err(TestCaseError::fail(format!("{violation:?}")));
        }
        if let Some(object) = &self.object {
            prop_assert_eq!(object.dirty_pages() as usize >= self.dirty.len(), true);
        }
        // Lent frames are mapped read only everywhere, and counted once a loan.
        let zero = self.vm.zero_frame();
        let mut lent = 0;
        for (loan, _) in &self.loans {
            lent += loan.frames().filter(|frame| *frame != zero).count() as u64;
            for frame in loan.frames() {
                if let Some(entry) = translations.iter().find(|t| t.frame == frame && t.writable) {
                    return Err(TestCaseError::fail(format!(
                        "lent {frame:?} writable at {entry:?}"
                    )));
                }
            }
        }
        prop_assert_eq!(self.vm.statistics().pages_lent, lent);
        Ok(())
    }
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
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

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
