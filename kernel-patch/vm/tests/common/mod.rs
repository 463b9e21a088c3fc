//! Helpers shared by the integration tests: a world (vm + heap frames), programs made of
//! patterned fake files, and the expected contents of their pages.
#![allow(dead_code)] // each test file uses its own subset

use vm::check::{check_invariants, CheckReport};
use vm::testkit::{FakeFile, HeapFrames};
use vm::{
    Access, CachedFile, Config, FileIdentity, LoadSegment, MountCacheConfig, SegmentKind,
    SegmentRef, Vm, PAGE_SIZE,
};

pub const PAGE: u64 = PAGE_SIZE as u64;
pub const TEXT_VA: u64 = 0x40_0000;
pub const DATA_VA: u64 = 0x80_0000;
pub const STACK_VA: u64 = 0x7000_0000;

pub struct World {
    pub vm: Vm,
    pub frames: HeapFrames,
}

pub fn world(config: Config) -> World {
    let frames = HeapFrames::new(config.max_pages + 8);
    let vm = Vm::new(frames.allocator(), config).expect("vm");
    World { vm, frames }
}

/// A world whose mount cache has the given limits.
pub fn mc_world(config: Config, mount_cache: MountCacheConfig) -> World {
    let frames = HeapFrames::new(config.max_pages + 8);
    let vm = Vm::with_mount_cache(frames.allocator(), config, mount_cache).expect("vm");
    World { vm, frames }
}

/// Reads `len` bytes at `offset` of a file whose server holds `server`, as the kernel
/// does: the cache first, the server for the rest, which then fills the cache. Returns the
/// bytes (short at end of file) and how many came from the cache.
pub fn read_through(file: &CachedFile, server: &[u8], offset: u64, len: usize) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; len];
    let hit = file.read(offset, &mut buf);
    let rest_at = offset + hit.len as u64;
    let from_server = server_read(server, rest_at, len - hit.len);
    buf.truncate(hit.len + from_server.len());
    buf[hit.len..].copy_from_slice(&from_server);
    file.fill(hit.ticket, rest_at, &from_server);
    (buf, hit.len)
}

/// What a server holding `data` answers to a read.
pub fn server_read(data: &[u8], offset: u64, len: usize) -> Vec<u8> {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let end = start.saturating_add(len).min(data.len());
    data[start..end].to_vec()
}

/// Writes `bytes` at `offset` as the kernel does: marks the write in flight, applies it to
/// the server's `data` (one write message), and tells the cache. Returns the channel's new
/// version.
pub fn write_through(file: &CachedFile, data: &mut Vec<u8>, offset: u64, bytes: &[u8]) -> u64 {
    let pending = file.begin_write();
    server_write(data, offset, bytes);
    pending.done(offset, bytes)
}

/// A server's write: extends the file with zeros if needed (a write of nothing changes
/// nothing).
pub fn server_write(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let start = offset as usize;
    if data.len() < start + bytes.len() {
        data.resize(start + bytes.len(), 0);
    }
    data[start..start + bytes.len()].copy_from_slice(bytes);
}

/// `len` bytes that differ for every `seed` and offset.
pub fn patterned_bytes(seed: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|at| {
            (at.wrapping_mul(31)
                .wrapping_add(seed.wrapping_mul(0x9e37_79b9))
                >> 3) as u8
                ^ (at as u8)
        })
        .collect()
}

pub fn small_config() -> Config {
    Config {
        max_pages: 256,
        max_images: 16,
        max_idle_images: 8,
        reclaim_batch: 16,
        max_free_pages: 2,
    }
}

pub fn ident(dev: u64, path: u64, vers: u64) -> FileIdentity {
    FileIdentity {
        dev_type: u32::from(b'M'),
        dev,
        qid_path: path,
        version: vers,
    }
}

/// A program file: text then data, as a linker lays them out.
#[derive(Clone)]
pub struct Program {
    pub file: FakeFile,
    pub loads: Vec<LoadSegment>,
}

/// A patterned file of `text_len + data_len` bytes; text at `TEXT_VA`, data (with `bss_len`
/// zero bytes after it) at `DATA_VA` plus the page offset of its file offset.
pub fn program(identity: FileIdentity, text_len: u64, data_len: u64, bss_len: u64) -> Program {
    let file = FakeFile::patterned(identity, (text_len + data_len) as usize);
    Program {
        file,
        loads: layout(text_len, data_len, bss_len),
    }
}

pub fn layout(text_len: u64, data_len: u64, bss_len: u64) -> Vec<LoadSegment> {
    vec![
        LoadSegment {
            vaddr: TEXT_VA,
            mem_len: text_len,
            file_offset: 0,
            file_len: text_len,
            writable: false,
        },
        LoadSegment {
            vaddr: DATA_VA + text_len % PAGE,
            mem_len: data_len + bss_len,
            file_offset: text_len,
            file_len: data_len,
            writable: true,
        },
    ]
}

/// A program's segments, as a process holds them.
pub struct Process {
    pub segments: Vec<SegmentRef>,
    pub program: Program,
}

impl Process {
    pub fn segment(&self, kind: SegmentKind) -> &SegmentRef {
        self.segments
            .iter()
            .find(|segment| segment.kind() == kind)
            .expect("segment of kind")
    }

    pub fn text(&self) -> &SegmentRef {
        self.segment(SegmentKind::Text)
    }

    pub fn data(&self) -> &SegmentRef {
        self.segment(SegmentKind::Data)
    }

    pub fn refs(&self) -> Vec<&SegmentRef> {
        self.segments.iter().collect()
    }
}

pub fn exec(world: &World, program: &Program) -> Process {
    let mut segments = world
        .vm
        .exec(program.file.open(), &program.loads)
        .expect("exec");
    segments.push(
        world
            .vm
            .zero_segment(SegmentKind::Stack, STACK_VA, 4 * PAGE)
            .expect("stack"),
    );
    Process {
        segments,
        program: program.clone(),
    }
}

/// The bytes a page of `load` must hold, as the program sees them.
pub fn expected_page(file: &FakeFile, load: &LoadSegment, addr: u64) -> Vec<u8> {
    let data = file.data();
    let lead = load.vaddr % PAGE;
    let base = load.vaddr - lead;
    let (file_start, file_len) = if load.file_len == 0 {
        (0, 0)
    } else {
        (load.file_offset - lead, load.file_len + lead)
    };
    let page_base = (addr - base) / PAGE * PAGE;
    (page_base..page_base + PAGE)
        .map(|offset| {
            let from_file = offset < file_len
                || (!load.writable && file_len > 0 && offset < file_len.div_ceil(PAGE) * PAGE);
            if from_file {
                data.get((file_start + offset) as usize)
                    .copied()
                    .unwrap_or(0)
            } else {
                0
            }
        })
        .collect()
}

/// Faults every page of `segment` with `access` and returns the frames.
pub fn fault_all(segment: &SegmentRef, access: Access) -> Vec<vm::Frame> {
    (segment.base()..segment.end())
        .step_by(PAGE_SIZE)
        .map(|addr| segment.fault(addr, access).expect("fault").frame)
        .collect()
}

/// Faults in and compares every page of a program's loads.
pub fn verify_process(world: &World, process: &Process) {
    for (load, segment) in process.program.loads.iter().zip(&process.segments) {
        for addr in (segment.base()..segment.end()).step_by(PAGE_SIZE) {
            let mapping = segment.fault(addr, Access::Read).expect("fault");
            assert_page_eq(
                &world.frames.read(mapping.frame),
                &expected_page(&process.program.file, load, addr),
                &format!("page at {addr:#x} of {:?}", segment.kind()),
            );
        }
    }
}

pub fn check(world: &World, segments: &[&SegmentRef]) -> CheckReport {
    match check_invariants(&world.vm, Some(segments)) {
        Ok(report) => report,
        Err(violation) => panic!("{violation}"),
    }
}

/// Compares two pages and names the first differing byte (not 4096 numbers).
pub fn assert_page_eq(actual: &[u8], expected: &[u8], what: &str) {
    if let Some(at) = actual.iter().zip(expected).position(|(a, e)| a != e) {
        panic!(
            "{what}: byte {at} is {:#04x}, expected {:#04x}",
            actual[at], expected[at]
        );
    }
    assert_eq!(actual.len(), expected.len(), "{what}: length");
}
