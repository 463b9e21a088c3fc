//! The program the tools execute: a static ELF64 binary (built with `gcc -static`, or
//! `/bin/busybox` when it is static, or one given on the command line), and what each of
//! its pages must hold once exec has mapped it.

use std::path::{Path, PathBuf};

use hosted::vm::elf::load_segments;
use hosted::vm::{LoadSegment, PAGE_SIZE};

const PAGE: u64 = PAGE_SIZE as u64;
const PT_INTERP: u32 = 3;

pub use hosted_testing::ProgramPage;

/// A static executable and where it came from.
pub struct Program {
    /// What it is, for messages.
    pub origin: String,
    /// The file.
    pub bytes: Vec<u8>,
    loads: Vec<LoadSegment>,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u16::from_le_bytes(
        bytes.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// `(phoff, phentsize, phnum)` of an ELF64 file.
fn program_headers(bytes: &[u8]) -> Option<(u64, u64, u64)> {
    Some((
        u64_at(bytes, 0x20)?,
        u16_at(bytes, 0x36)?,
        u16_at(bytes, 0x38)?,
    ))
}

fn is_dynamic(bytes: &[u8]) -> bool {
    let Some((phoff, size, count)) = program_headers(bytes) else {
        return false;
    };
    (0..count).any(|i| {
        usize::try_from(phoff + i * size)
            .ok()
            .and_then(|at| u32_at(bytes, at))
            == Some(PT_INTERP)
    })
}

impl Program {
    /// The program at `path`, or (with none) one built with `gcc -static`, or a static
    /// `/bin/busybox`.
    pub fn choose(path: Option<&Path>) -> Result<Program, String> {
        if let Some(path) = path {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            return Program::new(path.display().to_string(), bytes);
        }
        match Self::build() {
            Ok(program) => Ok(program),
            Err(why) => {
                log::warn!("cannot build the test program ({why}); trying /bin/busybox");
                let busybox = PathBuf::from("/bin/busybox");
                let bytes = std::fs::read(&busybox).map_err(|e| {
                    format!("no test program: {why}; and /bin/busybox: {e}; give --binary PATH")
                })?;
                Program::new("/bin/busybox".to_string(), bytes)
            }
        }
    }

    /// Compiles the test program ([`hosted_testing::TEST_PROGRAM_SOURCE`]) with
    /// `gcc -static -O2` in a temporary directory.
    pub fn build() -> Result<Program, String> {
        let bytes = hosted_testing::build_test_program().map_err(|e| e.to_string())?;
        Program::new(
            "a static C program built with gcc -static -O2".to_string(),
            bytes,
        )
    }

    /// Checks that `bytes` is a static ELF64 executable with text and data.
    pub fn new(origin: String, bytes: Vec<u8>) -> Result<Program, String> {
        let loads = load_segments(&bytes).map_err(|e| format!("{origin}: {e}"))?;
        if is_dynamic(&bytes) {
            return Err(format!(
                "{origin} is dynamically linked; give a static binary"
            ));
        }
        if !loads.iter().any(|l| !l.writable) || !loads.iter().any(|l| l.writable && l.file_len > 0)
        {
            return Err(format!("{origin} has no text or no initialised data"));
        }
        Ok(Program {
            origin,
            bytes,
            loads,
        })
    }

    /// The loadable ranges.
    pub fn loads(&self) -> &[LoadSegment] {
        &self.loads
    }

    /// Every page of every loadable range that holds file bytes, with its expected
    /// contents for these file bytes: text pages are whole file pages; data pages hold the
    /// file's bytes up to the end of the range's file part, zeros after.
    pub fn pages_of(&self, file: &[u8]) -> Vec<ProgramPage> {
        hosted_testing::expected_pages(file, &self.loads)
    }

    /// [`pages_of`](Self::pages_of) this program's own bytes.
    pub fn pages(&self) -> Vec<ProgramPage> {
        self.pages_of(&self.bytes)
    }

    /// The text pages.
    pub fn text_pages(&self) -> Vec<ProgramPage> {
        self.pages().into_iter().filter(|p| !p.writable).collect()
    }

    /// The two reads of exec's header: `(offset, count)` of the ELF header and of the
    /// program headers.
    pub fn header_reads(&self) -> [(u64, u32); 2] {
        let (phoff, size, count) = program_headers(&self.bytes).unwrap_or((0, 0, 0));
        [(0, 64), (phoff, (size * count) as u32)]
    }

    /// A file of the same length, with the same headers, whose every page (past the
    /// headers) differs from this one's in one byte.
    pub fn variant(&self) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        let (phoff, size, count) = program_headers(&bytes).unwrap_or((0, 0, 0));
        let headers = |at: u64| at < 64 || (at >= phoff && at < phoff + size * count);
        let mut page = 0u64;
        while page < bytes.len() as u64 {
            let chosen = [2048u64, 4000, 1000]
                .into_iter()
                .map(|within| page + within)
                .find(|at| *at < bytes.len() as u64 && !headers(*at));
            if let Some(at) = chosen {
                bytes[at as usize] ^= 0x5a;
            }
            page += PAGE;
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_program_is_static_with_text_data_and_bss() {
        let program = Program::build().expect("gcc -static");
        assert!(program
            .loads()
            .iter()
            .any(|l| l.writable && l.mem_len > l.file_len));
        let pages = program.pages();
        assert!(pages.iter().filter(|p| p.writable).count() >= 4);
        assert!(pages.iter().filter(|p| !p.writable).count() >= 16);
        // The variant keeps the headers and changes every page the program maps.
        let variant = program.variant();
        assert_eq!(variant.len(), program.bytes.len());
        let other = Program::new("variant".into(), variant.clone()).unwrap();
        assert_eq!(other.loads(), program.loads());
        let changed = program
            .pages_of(&variant)
            .iter()
            .zip(&pages)
            .filter(|(a, b)| a.bytes != b.bytes)
            .count();
        assert!(
            changed * 10 >= pages.len() * 9,
            "{changed} of {} pages differ",
            pages.len()
        );
    }

    #[test]
    fn dynamic_and_non_elf_files_are_refused() {
        assert!(Program::new("junk".into(), b"not an elf".to_vec()).is_err());
        if let Ok(bytes) = std::fs::read("/bin/sh") {
            if is_dynamic(&bytes) {
                assert!(Program::new("/bin/sh".into(), bytes).is_err());
            }
        }
    }
}
