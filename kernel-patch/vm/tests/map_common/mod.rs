//! Fakes for the mapping tests: a software MMU (vm's `AddressSpace`) and a file on a
//! fake server that takes writes, whose pages are stamped with their index.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use vm::check::{check_invariants, check_translations, Translation};
use vm::testkit::HeapFrames;
use vm::{
    Access, AddressSpace, Config, FaultError, FileError, FileIdentity, Frame, ImageFile, Loan,
    MapSpec, MappingRef, Vm, PAGE_SIZE,
};

pub const PAGE: u64 = PAGE_SIZE as u64;

/// A software MMU: the translations vm installed and has not invalidated.
pub struct Mmu {
    pub id: u64,
    pub entries: Mutex<BTreeMap<u64, (Frame, bool)>>,
}

impl AddressSpace for Mmu {
    fn id(&self) -> u64 {
        self.id
    }
    fn map(&self, addr: u64, frame: Frame, writable: bool) {
        self.entries.lock().unwrap().insert(addr, (frame, writable));
    }
    fn invalidate(&self, addr: u64, len: u64) {
        let mut entries = self.entries.lock().unwrap();
        let gone: Vec<u64> = entries.range(addr..addr + len).map(|(a, _)| *a).collect();
        for addr in gone {
            entries.remove(&addr);
        }
    }
}

pub fn mmu(id: u64) -> Arc<Mmu> {
    Arc::new(Mmu {
        id,
        entries: Mutex::new(BTreeMap::new()),
    })
}

/// A file on a fake server that takes writes.
#[derive(Clone)]
pub struct ServerFile {
    pub identity: FileIdentity,
    pub data: Arc<Mutex<Vec<u8>>>,
    pub fail_writes: Arc<Mutex<bool>>,
    /// Writes fail as a dead mount's do ([`FileError::Gone`]).
    pub writes_gone: Arc<Mutex<bool>>,
    /// Run once, after a read took its bytes (to stage a write racing with a load).
    pub after_read: Arc<Mutex<Option<Hook>>>,
    /// Run once, as a write starts (to stage a move of a page mid write-back).
    pub before_write: Arc<Mutex<Option<Hook>>>,
}

pub type Hook = Box<dyn FnOnce() + Send>;

impl ServerFile {
    /// `pages` pages, each stamped with its index in every 8-byte word.
    pub fn stamped(qid_path: u64, len: usize) -> Self {
        let data = (0..len).map(|at| stamp(at as u64 / PAGE, 0)).collect();
        Self {
            identity: FileIdentity {
                dev_type: 7,
                dev: 1,
                qid_path,
                version: 1,
            },
            data: Arc::new(Mutex::new(data)),
            fail_writes: Arc::new(Mutex::new(false)),
            writes_gone: Arc::new(Mutex::new(false)),
            after_read: Arc::new(Mutex::new(None)),
            before_write: Arc::new(Mutex::new(None)),
        }
    }
    pub fn open(&self) -> Box<dyn ImageFile> {
        Box::new(self.clone())
    }
    pub fn bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        self.data.lock().unwrap()[offset as usize..offset as usize + len].to_vec()
    }
}

/// The byte of page `index` as written by generation `generation`.
pub fn stamp(index: u64, generation: u8) -> u8 {
    (index as u8)
        .wrapping_mul(31)
        .wrapping_add(generation.wrapping_mul(101))
        | 1
}

impl ImageFile for ServerFile {
    fn identity(&self) -> FileIdentity {
        self.identity
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        let n = {
            let data = self.data.lock().unwrap();
            let start = (offset as usize).min(data.len());
            let n = buf.len().min(data.len() - start);
            buf[..n].copy_from_slice(&data[start..start + n]);
            n
        };
        let hook = self.after_read.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        Ok(n)
    }
    fn length(&self) -> Result<u64, FileError> {
        Ok(self.data.lock().unwrap().len() as u64)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, FileError> {
        let hook = self.before_write.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        if *self.writes_gone.lock().unwrap() {
            return Err(FileError::Gone);
        }
        if *self.fail_writes.lock().unwrap() {
            return Err(FileError::Io);
        }
        let mut data = self.data.lock().unwrap();
        let end = offset as usize + buf.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(buf);
        Ok(buf.len())
    }
    fn writable(&self) -> bool {
        true
    }
    fn close(self: Box<Self>) {}
}

/// A vm and the fake frames behind it.
pub struct World {
    pub vm: Vm,
    pub frames: HeapFrames,
}

/// A vm of at most `max_pages` pages over `frames`.
pub fn world_of(frames: HeapFrames, max_pages: u32) -> World {
    let vm = Vm::new(
        frames.allocator(),
        Config {
            max_pages,
            ..Config::default()
        },
    )
    .expect("vm");
    World { vm, frames }
}

/// A vm of 200 pages over 256 frames.
pub fn world() -> World {
    world_of(HeapFrames::new(256), 200)
}

/// A writable mapping of `pages` pages at `base`, from file page `first`.
pub fn spec(base: u64, pages: u64, first: u64, shared: bool) -> MapSpec {
    MapSpec {
        base,
        len: pages * PAGE,
        offset: first * PAGE,
        shared,
        writable: true,
    }
}

/// Every translation of `mmus`, as the checker takes them.
pub fn translations(mmus: &[&Arc<Mmu>]) -> Vec<Translation> {
    let mut out = Vec::new();
    for mmu in mmus {
        for (&addr, &(frame, writable)) in mmu.entries.lock().unwrap().iter() {
            out.push(Translation {
                space: mmu.id,
                addr,
                frame,
                writable,
            });
        }
    }
    out
}

/// vm's invariants, and every translation of `mmus` against the reverse map.
pub fn check(world: &World, mmus: &[&Arc<Mmu>]) {
    check_invariants(&world.vm, Some(&[])).expect("invariants");
    check_translations(&world.vm, &translations(mmus)).expect("translations");
}

/// A store through a mapping, as the program does it: fault, then write the frame.
pub fn store(world: &World, map: &MappingRef, addr: u64, byte: u8) -> Result<(), FaultError> {
    let mapping = map.fault(addr, Access::Write)?;
    assert!(mapping.writable);
    world
        .frames
        .write(mapping.frame, (addr % PAGE) as usize, &[byte; 8]);
    Ok(())
}

/// A load through a mapping: fault, then read the frame.
pub fn load(world: &World, map: &MappingRef, addr: u64) -> Result<u8, FaultError> {
    let mapping = map.fault(addr, Access::Read)?;
    Ok(world.frames.read(mapping.frame)[(addr % PAGE) as usize])
}

/// The first byte of each page of the loan (stores write 8 bytes at a page's start).
pub fn loan_bytes(world: &World, loan: &Loan) -> Vec<u8> {
    loan.frames()
        .map(|frame| world.frames.read(frame)[0])
        .collect()
}
