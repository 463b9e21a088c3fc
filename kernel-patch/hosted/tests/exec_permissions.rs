//! A program may write exactly the memory of its writable `PT_LOAD`s (and its stack):
//! zero fill past a read-only load's file bytes, and a read-only load with no file bytes
//! at all, read as zeros and refuse writes, also after a read mapped the page and after
//! fork. The ELF is built here, so each case is a known layout.

mod common;

use common::*;
use hosted::vm::{SegmentKind, PAGE_SIZE};
use hosted::{ForkFlags, Kernel, KernelError, Pid};

const PROGRAM: &str = "/n/ram/layout";
const PAGE: u64 = PAGE_SIZE as u64;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// One `PT_LOAD`: where, its flags, and how many file bytes (from offset 0) and memory
/// bytes it has.
struct Load {
    vaddr: u64,
    flags: u32,
    file_len: u64,
    mem_len: u64,
}

/// Read-only text whose memory runs two pages past its last file byte: a data segment up
/// to the page of that byte (the file page it ends in is copied and zeroed), then bss.
const TEXT_WITH_TAIL: Load = Load {
    vaddr: 0x40_0000,
    flags: PF_R | PF_X,
    file_len: 0x1200,
    mem_len: 0x4000,
};
/// A read-only load with no file bytes: all bss.
const READ_ONLY_ZEROS: Load = Load {
    vaddr: 0x50_0000,
    flags: PF_R,
    file_len: 0,
    mem_len: PAGE,
};
/// A writable load with no file bytes: all bss, writable.
const WRITABLE_ZEROS: Load = Load {
    vaddr: 0x60_0000,
    flags: PF_R | PF_W,
    file_len: 0,
    mem_len: PAGE,
};
/// Writable data and its bss.
const DATA_WITH_BSS: Load = Load {
    vaddr: 0x70_0000,
    flags: PF_R | PF_W,
    file_len: 0x100,
    mem_len: 0x3000,
};
const LOADS: [Load; 4] = [
    TEXT_WITH_TAIL,
    READ_ONLY_ZEROS,
    WRITABLE_ZEROS,
    DATA_WITH_BSS,
];
const FILE_LEN: usize = 0x2000;

/// An ELF64 executable of `loads`, every load's file bytes at offset 0; the bytes after
/// the headers are a pattern.
fn elf(loads: &[Load]) -> Vec<u8> {
    const EHDR: usize = 64;
    const PHDR: usize = 56;
    let mut bytes: Vec<u8> = (0..FILE_LEN).map(|at| (at % 251) as u8 | 1).collect();
    bytes[..EHDR + loads.len() * PHDR].fill(0);
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 2; // ELF64
    bytes[5] = 1; // little endian
    bytes[6] = 1; // version
    bytes[0x10..0x12].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    bytes[0x12..0x14].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    bytes[0x18..0x20].copy_from_slice(&TEXT_WITH_TAIL.vaddr.to_le_bytes());
    bytes[0x20..0x28].copy_from_slice(&(EHDR as u64).to_le_bytes());
    bytes[0x34..0x36].copy_from_slice(&(EHDR as u16).to_le_bytes());
    bytes[0x36..0x38].copy_from_slice(&(PHDR as u16).to_le_bytes());
    bytes[0x38..0x3a].copy_from_slice(&(loads.len() as u16).to_le_bytes());
    for (index, load) in loads.iter().enumerate() {
        let at = EHDR + index * PHDR;
        bytes[at..at + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        bytes[at + 4..at + 8].copy_from_slice(&load.flags.to_le_bytes());
        // p_offset 0, then p_vaddr, p_paddr, p_filesz, p_memsz, p_align.
        bytes[at + 16..at + 24].copy_from_slice(&load.vaddr.to_le_bytes());
        bytes[at + 24..at + 32].copy_from_slice(&load.vaddr.to_le_bytes());
        bytes[at + 32..at + 40].copy_from_slice(&load.file_len.to_le_bytes());
        bytes[at + 40..at + 48].copy_from_slice(&load.mem_len.to_le_bytes());
        bytes[at + 48..at + 56].copy_from_slice(&PAGE.to_le_bytes());
    }
    bytes
}

fn assert_read_only(kernel: &Kernel, pid: Pid, addr: u64, what: &str) {
    match kernel.write_memory(pid, addr, b"x") {
        Err(KernelError::ReadOnly(at)) => assert_eq!(at, addr),
        other => panic!("write to {what} at {addr:#x}: {other:?}, not ReadOnly"),
    }
}

/// What `addr` reads as, one page from it.
fn page_at(kernel: &Kernel, pid: Pid, addr: u64) -> Vec<u8> {
    let mut page = vec![0xeeu8; PAGE_SIZE];
    kernel.read_memory(pid, addr, &mut page).unwrap();
    page
}

/// Every address of the program that must refuse writes, with what it should read as.
fn read_only_pages(file: &[u8]) -> Vec<(u64, Vec<u8>, &'static str)> {
    let tail_start = (TEXT_WITH_TAIL.file_len % PAGE) as usize;
    let mut last_file_page = file[PAGE as usize..][..PAGE_SIZE].to_vec();
    last_file_page[tail_start..].fill(0);
    vec![
        (
            TEXT_WITH_TAIL.vaddr,
            file[..PAGE_SIZE].to_vec(),
            "a read-only load's first page",
        ),
        (
            TEXT_WITH_TAIL.vaddr + PAGE,
            last_file_page,
            "the page of a read-only load's last file byte",
        ),
        (
            TEXT_WITH_TAIL.vaddr + 2 * PAGE,
            vec![0; PAGE_SIZE],
            "zero fill past a read-only load's file bytes",
        ),
        (
            TEXT_WITH_TAIL.vaddr + 3 * PAGE,
            vec![0; PAGE_SIZE],
            "the last page of a read-only load's zero fill",
        ),
        (
            READ_ONLY_ZEROS.vaddr,
            vec![0; PAGE_SIZE],
            "a read-only load with no file bytes",
        ),
    ]
}

#[test]
fn only_writable_loads_take_writes() {
    let file = elf(&LOADS);
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, PROGRAM, &file);
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    let info = kernel.exec(pid, PROGRAM, &["layout"]).unwrap();

    // The bss segments carry their load's protection.
    let bss: Vec<(u64, u64, bool)> = info
        .segments
        .iter()
        .filter(|seg| seg.kind == SegmentKind::Bss)
        .map(|seg| (seg.base, seg.end, seg.writable))
        .collect();
    assert_eq!(
        bss,
        [
            (0x40_2000, 0x40_4000, false),
            (0x50_0000, 0x50_1000, false),
            (0x60_0000, 0x60_1000, true),
            (0x70_1000, 0x70_3000, true),
        ]
    );

    let read_only = read_only_pages(&file);
    // A write first, before anything is mapped.
    for (addr, _, what) in &read_only {
        assert_read_only(&kernel, pid, *addr, what);
    }
    // Then a read maps each page (zero fill and the copied last file page come from vm
    // writable), and a write must still be refused.
    for (addr, expected, what) in &read_only {
        assert!(
            page_at(&kernel, pid, *addr) == *expected,
            "{what} reads wrong"
        );
        assert_read_only(&kernel, pid, *addr, what);
    }

    // The writable loads take writes, in their file pages and their zero fill.
    for addr in [
        WRITABLE_ZEROS.vaddr,
        DATA_WITH_BSS.vaddr,
        DATA_WITH_BSS.vaddr + PAGE,
        DATA_WITH_BSS.vaddr + 2 * PAGE,
    ] {
        kernel.write_memory(pid, addr + 8, b"written").unwrap();
        let mut back = [0u8; 7];
        kernel.read_memory(pid, addr + 8, &mut back).unwrap();
        assert_eq!(&back, b"written", "at {addr:#x}");
    }

    // A forked child keeps the protections, mapped pages included.
    let child = kernel.fork(pid, ForkFlags::default()).unwrap();
    for (addr, expected, what) in &read_only {
        assert_read_only(&kernel, child, *addr, what);
        assert!(
            page_at(&kernel, child, *addr) == *expected,
            "{what} reads wrong"
        );
        assert_read_only(&kernel, child, *addr, what);
    }
    kernel
        .write_memory(child, WRITABLE_ZEROS.vaddr, b"c")
        .unwrap();

    check(&kernel);
    for process in [child, pid, init] {
        kernel.exit(process, "").unwrap();
    }
    check(&kernel);
    drop(kernel);
    assert!(server.exits_cleanly(DEADLINE), "ramfs did not exit");
}
