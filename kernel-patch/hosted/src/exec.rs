//! Loading an ELF64 executable: its headers through the channel, the segment plan, and
//! the arguments on the new stack.
//!
//! The headers are read with two small reads (the ELF header, then the program headers),
//! never a page: page reads are vm's, through the image, and a test that counts page reads
//! on the wire can tell them apart.
//!
//! Each `PT_LOAD` becomes one vm segment over the image: text for a read-only range, data
//! (private, copy-on-write) for a writable one or for a read-only range with zero-filled
//! memory. The memory of a range past the page that holds its last file byte becomes a
//! separate bss segment, as in Plan 9's a.out layout, writable only when the range is
//! (`PF_W`): zero fill of a read-only range stays read-only. The stack is a zero-fill
//! segment under [`USER_STACK_TOP`].

use mnt::{Chan, Interrupt};
use vm::{LoadSegment, PAGE_SIZE};

use crate::counters::Counters;
use crate::error::{ExecError, KernelError};

const PAGE: u64 = PAGE_SIZE as u64;

/// The address just above every process's stack.
pub const USER_STACK_TOP: u64 = 0x7fff_ffff_f000;

/// The most bytes of program headers the kernel reads.
const MAX_PROGRAM_HEADERS: u64 = 64 * 1024;
/// The furthest offset in the file where program headers may start.
const MAX_HEADER_OFFSET: u64 = 1 << 20;
/// The most bytes of arguments (strings and pointers) on the new stack.
pub(crate) const MAX_ARGUMENT_BYTES: usize = 128 * 1024;

const EHDR_SIZE: usize = 64;

/// The headers of an executable: what the kernel needs to build its segments.
pub(crate) struct Headers {
    pub(crate) entry: u64,
    pub(crate) loads: Vec<LoadSegment>,
}

fn u16_at(bytes: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Reads exactly `buf.len()` bytes at `offset` (fewer only at end of file).
fn read_full(
    chan: &Chan,
    offset: u64,
    buf: &mut [u8],
    intr: &Interrupt,
    counters: &Counters,
) -> Result<usize, KernelError> {
    let mut done = 0;
    while done < buf.len() {
        Counters::bump(&counters.header_reads);
        let n = chan.read(offset + done as u64, &mut buf[done..], intr)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// Reads and checks the ELF and program headers of the open file `chan`.
pub(crate) fn read_headers(
    chan: &Chan,
    intr: &Interrupt,
    counters: &Counters,
) -> Result<Headers, KernelError> {
    let mut ehdr = [0u8; EHDR_SIZE];
    let got = read_full(chan, 0, &mut ehdr, intr, counters)?;
    if got < EHDR_SIZE {
        // Let the ELF reader say what is wrong with a short file (not ELF, or truncated).
        return Err(match vm::elf::load_segments(&ehdr[..got]) {
            Err(err) => ExecError::Elf(err),
            Ok(_) => ExecError::Truncated,
        }
        .into());
    }
    let phoff = u64_at(&ehdr, 0x20);
    let phsize = u16_at(&ehdr, 0x36) * u16_at(&ehdr, 0x38);
    if phsize > MAX_PROGRAM_HEADERS {
        return Err(ExecError::HeadersTooLarge(phsize).into());
    }
    if phoff > MAX_HEADER_OFFSET {
        return Err(ExecError::HeadersTooLarge(phoff).into());
    }
    // The ELF reader wants the headers where the file has them: lay them out so.
    let end = (phoff + phsize).max(EHDR_SIZE as u64) as usize;
    let mut image = vec![0u8; end];
    image[..EHDR_SIZE].copy_from_slice(&ehdr);
    let phdrs = &mut image[phoff as usize..(phoff + phsize) as usize];
    if read_full(chan, phoff, phdrs, intr, counters)? < phdrs.len() {
        return Err(ExecError::Truncated.into());
    }
    let loads = vm::elf::load_segments(&image).map_err(ExecError::Elf)?;
    if loads.is_empty() {
        return Err(ExecError::NothingToLoad.into());
    }
    Ok(Headers {
        entry: u64_at(&ehdr, 0x18),
        loads,
    })
}

/// A zero-fill range of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ZeroRange {
    pub(crate) base: u64,
    pub(crate) len: u64,
    /// Whether the program may write it: its `PT_LOAD`'s `PF_W` (the stack's is always).
    pub(crate) writable: bool,
}

/// The segments exec builds.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// For vm: text and data over the image.
    pub(crate) loads: Vec<LoadSegment>,
    /// Whether the program may write each of `loads`.
    pub(crate) writable: Vec<bool>,
    /// Bss ranges.
    pub(crate) bss: Vec<ZeroRange>,
}

fn page_up(addr: u64) -> Result<u64, ExecError> {
    addr.checked_next_multiple_of(PAGE)
        .ok_or(ExecError::Overlap(addr))
}

/// Splits each `PT_LOAD` into a vm segment and maybe a bss range; checks that nothing
/// overlaps the stack of `stack_size` bytes.
pub(crate) fn plan(loads: &[LoadSegment], stack_size: u64) -> Result<Plan, ExecError> {
    let mut plan = Plan::default();
    for load in loads {
        let zero_filled = load.mem_len > load.file_len;
        if load.file_len == 0 {
            // All zero fill.
            let base = load.vaddr - load.vaddr % PAGE;
            let end = page_up(
                load.vaddr
                    .checked_add(load.mem_len)
                    .ok_or(ExecError::Overlap(load.vaddr))?,
            )?;
            plan.bss.push(ZeroRange {
                base,
                len: end - base,
                writable: load.writable,
            });
            continue;
        }
        let file_end = load
            .vaddr
            .checked_add(load.file_len)
            .ok_or(ExecError::Overlap(load.vaddr))?;
        let mem_end = load
            .vaddr
            .checked_add(load.mem_len)
            .ok_or(ExecError::Overlap(load.vaddr))?;
        let file_page_end = page_up(file_end)?;
        let mem_page_end = page_up(mem_end)?;
        plan.loads.push(LoadSegment {
            // The segment ends with the page of the last file byte; vm zeroes the rest of
            // that page.
            mem_len: mem_end.min(file_page_end) - load.vaddr,
            // A read-only range with zero-filled memory needs vm's zeroing of a data
            // segment; the kernel still refuses writes to it.
            writable: load.writable || zero_filled,
            ..*load
        });
        plan.writable.push(load.writable);
        if mem_page_end > file_page_end {
            plan.bss.push(ZeroRange {
                base: file_page_end,
                len: mem_page_end - file_page_end,
                writable: load.writable,
            });
        }
    }
    let stack = ZeroRange {
        base: USER_STACK_TOP.saturating_sub(stack_size),
        len: stack_size,
        writable: true,
    };
    let mut ranges: Vec<(u64, u64)> = plan
        .loads
        .iter()
        .map(|load| {
            let base = load.vaddr - load.vaddr % PAGE;
            (base, page_up(load.vaddr + load.mem_len).unwrap_or(u64::MAX))
        })
        .chain(
            plan.bss
                .iter()
                .chain([&stack])
                .map(|range| (range.base, range.base + range.len)),
        )
        .collect();
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(ExecError::Overlap(pair[1].0));
        }
    }
    Ok(plan)
}

/// The initial stack of a program: argument strings at the top, then (16-byte aligned)
/// `argc`, the `argv` pointers and a null, an empty environment, an empty auxiliary
/// vector. Returns the bytes to write at the returned address, which is the new stack
/// pointer (it points at `argc`).
pub(crate) fn initial_stack(argv: &[&str], top: u64) -> Result<(u64, Vec<u8>), ExecError> {
    let strings: usize = argv.iter().map(|arg| arg.len() + 1).sum();
    // argc, argv[], NULL, envp NULL, AT_NULL pair.
    let words = 1 + argv.len() + 1 + 1 + 2;
    let total = strings + 16 + words * 8;
    if total > MAX_ARGUMENT_BYTES {
        return Err(ExecError::ArgumentsTooLong);
    }
    let strings_at = top - strings as u64;
    let sp = (strings_at - (words * 8) as u64) & !15;
    let mut bytes = vec![0u8; (top - sp) as usize];
    let mut put = |at: u64, data: &[u8]| {
        let start = (at - sp) as usize;
        bytes[start..start + data.len()].copy_from_slice(data);
    };
    put(sp, &(argv.len() as u64).to_le_bytes());
    let mut string = strings_at;
    for (index, arg) in argv.iter().enumerate() {
        put(sp + 8 + 8 * index as u64, &string.to_le_bytes());
        put(string, arg.as_bytes());
        string += arg.len() as u64 + 1;
    }
    // The null after argv, envp's null and the auxiliary vector's AT_NULL are already 0.
    Ok((sp, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        vaddr: u64,
        file_offset: u64,
        file_len: u64,
        mem_len: u64,
        writable: bool,
    ) -> LoadSegment {
        LoadSegment {
            vaddr,
            mem_len,
            file_offset,
            file_len,
            writable,
        }
    }

    #[test]
    fn data_and_bss_split_at_the_page_of_the_last_file_byte() {
        let loads = [
            load(0x40_0000, 0, 0x1234, 0x1234, false),
            load(0x40_26d8, 0x26d8, 0x1000, 0x8000, true),
        ];
        let plan = plan(&loads, 0x10_0000).unwrap();
        assert_eq!(plan.loads.len(), 2);
        assert_eq!(plan.loads[0].mem_len, 0x1234);
        assert!(!plan.loads[0].writable);
        // file bytes end at 0x4036d8: the data segment ends with that page.
        assert_eq!(plan.loads[1].vaddr + plan.loads[1].mem_len, 0x40_4000);
        assert_eq!(plan.writable, [false, true]);
        assert_eq!(
            plan.bss,
            [ZeroRange {
                base: 0x40_4000,
                len: 0x40_b000 - 0x40_4000,
                writable: true,
            }]
        );
    }

    #[test]
    fn data_ending_inside_its_last_page_has_no_bss() {
        let loads = [load(0x60_0100, 0x100, 0x100, 0x200, true)];
        let plan = plan(&loads, 0x1000).unwrap();
        assert_eq!(plan.loads[0].mem_len, 0x200);
        assert!(plan.bss.is_empty());
    }

    #[test]
    fn read_only_zero_fill_is_a_data_segment_the_program_cannot_write() {
        let loads = [load(0x40_0000, 0, 0x100, 0x200, false)];
        let plan = plan(&loads, 0x1000).unwrap();
        assert!(plan.loads[0].writable);
        assert_eq!(plan.writable, [false]);
    }

    #[test]
    fn zero_fill_past_a_read_only_range_is_read_only_bss() {
        let loads = [
            // Text whose memory runs two pages past its last file byte.
            load(0x40_0000, 0, 0x200, 0x3000, false),
            // A read-only range with no file bytes at all.
            load(0x50_0000, 0, 0, 0x1000, false),
            // A writable one, for contrast.
            load(0x60_0000, 0, 0, 0x1000, true),
        ];
        let plan = plan(&loads, 0x1000).unwrap();
        assert_eq!(
            plan.bss,
            [
                ZeroRange {
                    base: 0x40_1000,
                    len: 0x2000,
                    writable: false,
                },
                ZeroRange {
                    base: 0x50_0000,
                    len: 0x1000,
                    writable: false,
                },
                ZeroRange {
                    base: 0x60_0000,
                    len: 0x1000,
                    writable: true,
                },
            ]
        );
    }

    #[test]
    fn overlaps_are_refused() {
        let loads = [
            load(0x40_0000, 0, 0x2000, 0x2000, false),
            load(0x40_1000, 0x1000, 0x100, 0x100, true),
        ];
        assert!(matches!(plan(&loads, 0x1000), Err(ExecError::Overlap(_))));
        let stack_clash = [load(USER_STACK_TOP - 0x1000, 0, 0x100, 0x100, false)];
        assert!(matches!(
            plan(&stack_clash, 0x2000),
            Err(ExecError::Overlap(_))
        ));
    }

    #[test]
    fn initial_stack_layout() {
        let top = 0x1_0000;
        let (sp, bytes) = initial_stack(&["prog", "-x"], top).unwrap();
        assert_eq!(sp % 16, 0);
        assert_eq!(sp + bytes.len() as u64, top);
        let word = |at: u64| u64_at(&bytes, (at - sp) as usize);
        assert_eq!(word(sp), 2);
        let arg0 = word(sp + 8);
        let arg1 = word(sp + 16);
        assert_eq!(word(sp + 24), 0);
        assert_eq!(&bytes[(arg0 - sp) as usize..][..5], b"prog\0");
        assert_eq!(&bytes[(arg1 - sp) as usize..][..3], b"-x\0");
        let huge = "x".repeat(MAX_ARGUMENT_BYTES);
        assert_eq!(
            initial_stack(&[&huge], top).unwrap_err(),
            ExecError::ArgumentsTooLong
        );
    }
}
