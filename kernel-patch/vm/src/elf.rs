//! A minimal ELF64 (little endian) reader: just enough to list `PT_LOAD` ranges.
//!
//! Nothing here panics on bad input; every offset is bounds-checked.

use alloc::vec::Vec;
use core::fmt;

use crate::exec::LoadSegment;

const PT_LOAD: u32 = 1;
const PF_W: u32 = 2;
const PHDR_SIZE: usize = 56;

/// Why a buffer is not a usable ELF64 program header set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ElfError {
    /// Not an ELF file.
    NotElf,
    /// Not ELF64 little endian.
    Unsupported,
    /// The buffer ends before the headers it names.
    Truncated,
    /// A header field is inconsistent.
    BadHeader,
    /// The list of ranges could not be allocated.
    NoMemory,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotElf => "not an ELF file",
            Self::Unsupported => "not ELF64 little endian",
            Self::Truncated => "truncated ELF headers",
            Self::BadHeader => "bad ELF header",
            Self::NoMemory => "out of memory",
        })
    }
}

impl core::error::Error for ElfError {}

fn field<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], ElfError> {
    let end = at.checked_add(N).ok_or(ElfError::Truncated)?;
    let slice = bytes.get(at..end).ok_or(ElfError::Truncated)?;
    let mut out = [0; N];
    out.copy_from_slice(slice);
    Ok(out)
}

fn u16_at(bytes: &[u8], at: usize) -> Result<u16, ElfError> {
    Ok(u16::from_le_bytes(field(bytes, at)?))
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, ElfError> {
    Ok(u32::from_le_bytes(field(bytes, at)?))
}

fn u64_at(bytes: &[u8], at: usize) -> Result<u64, ElfError> {
    Ok(u64::from_le_bytes(field(bytes, at)?))
}

/// The `PT_LOAD` ranges of an ELF64 file whose first bytes (at least through the program
/// headers) are `bytes`. Ranges with no memory are left out.
pub fn load_segments(bytes: &[u8]) -> Result<Vec<LoadSegment>, ElfError> {
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(if bytes.len() < 4 {
            ElfError::Truncated
        } else {
            ElfError::NotElf
        });
    }
    let class = *bytes.get(4).ok_or(ElfError::Truncated)?;
    let data = *bytes.get(5).ok_or(ElfError::Truncated)?;
    if class != 2 || data != 1 {
        return Err(ElfError::Unsupported);
    }
    let phoff = usize::try_from(u64_at(bytes, 0x20)?).map_err(|_| ElfError::BadHeader)?;
    let phentsize = usize::from(u16_at(bytes, 0x36)?);
    let phnum = usize::from(u16_at(bytes, 0x38)?);
    if phnum > 0 && phentsize < PHDR_SIZE {
        return Err(ElfError::BadHeader);
    }
    let mut loads = Vec::new();
    for index in 0..phnum {
        let at = index
            .checked_mul(phentsize)
            .and_then(|offset| offset.checked_add(phoff))
            .ok_or(ElfError::BadHeader)?;
        if u32_at(bytes, at)? != PT_LOAD {
            continue;
        }
        let flags = u32_at(bytes, at + 4)?;
        let load = LoadSegment {
            file_offset: u64_at(bytes, at + 8)?,
            vaddr: u64_at(bytes, at + 16)?,
            file_len: u64_at(bytes, at + 32)?,
            mem_len: u64_at(bytes, at + 40)?,
            writable: flags & PF_W != 0,
        };
        if load.mem_len == 0 {
            continue;
        }
        loads.try_reserve(1).map_err(|_| ElfError::NoMemory)?;
        loads.push(load);
    }
    Ok(loads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(phnum: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; 64 + usize::from(phnum) * PHDR_SIZE];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        bytes[0x36..0x38].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        bytes[0x38..0x3a].copy_from_slice(&phnum.to_le_bytes());
        bytes
    }

    fn set_phdr(bytes: &mut [u8], index: usize, kind: u32, flags: u32, values: [u64; 4]) {
        let at = 64 + index * PHDR_SIZE;
        bytes[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        bytes[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
        bytes[at + 8..at + 16].copy_from_slice(&values[0].to_le_bytes());
        bytes[at + 16..at + 24].copy_from_slice(&values[1].to_le_bytes());
        bytes[at + 32..at + 40].copy_from_slice(&values[2].to_le_bytes());
        bytes[at + 40..at + 48].copy_from_slice(&values[3].to_le_bytes());
    }

    #[test]
    fn lists_load_ranges_and_skips_others() {
        let mut bytes = header(3);
        set_phdr(&mut bytes, 0, PT_LOAD, 5, [0, 0x400000, 0x1234, 0x1234]);
        set_phdr(&mut bytes, 1, 6, 4, [64, 0x400040, 56, 56]);
        set_phdr(&mut bytes, 2, PT_LOAD, 6, [0x2000, 0x402000, 0x100, 0x900]);
        let loads = load_segments(&bytes).unwrap();
        assert_eq!(loads.len(), 2);
        assert!(!loads[0].writable);
        assert_eq!(loads[0].file_len, 0x1234);
        assert!(loads[1].writable);
        assert_eq!(loads[1].mem_len, 0x900);
        assert_eq!(loads[1].vaddr, 0x402000);
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert_eq!(load_segments(b"").unwrap_err(), ElfError::Truncated);
        assert_eq!(load_segments(b"MZ\0\0\0").unwrap_err(), ElfError::NotElf);
        let mut bytes = header(2);
        bytes[4] = 1;
        assert_eq!(load_segments(&bytes).unwrap_err(), ElfError::Unsupported);
        let mut bytes = header(4);
        bytes.truncate(64 + PHDR_SIZE + 10);
        set_phdr(&mut bytes[..], 0, PT_LOAD, 5, [0, 0, 1, 1]);
        assert_eq!(load_segments(&bytes).unwrap_err(), ElfError::Truncated);
        let mut bytes = header(1);
        bytes[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(load_segments(&bytes).is_err());
        let mut bytes = header(1);
        bytes[0x36..0x38].copy_from_slice(&8u16.to_le_bytes());
        assert_eq!(load_segments(&bytes).unwrap_err(), ElfError::BadHeader);
    }
}
