//! What the hosted kernel's tests and tools run it with, kept out of the kernel library:
//! the workspace's `ramfs` and `p9-peer` binaries, built with cargo when missing, a static
//! test program
//! built with `gcc -static`, and the pages exec must map of a program (the oracle).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// Why a fixture could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// Reading, writing or running something failed.
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        error: io::Error,
    },
    /// A build command ran and failed.
    #[error("{command} failed ({status})")]
    Failed {
        /// The command, for the message.
        command: String,
        /// How it ended.
        status: ExitStatus,
    },
    /// The profile directory given is not inside a target directory.
    #[error("{} is not a profile directory of a target directory", .0.display())]
    NoTargetDir(PathBuf),
    /// The build succeeded but left no binary where one was expected.
    #[error("no binary at {}", .0.display())]
    Missing(PathBuf),
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> FixtureError {
    let what = what.into();
    move |error| FixtureError::Io { what, error }
}

/// `Ok` when `command` ended with status 0.
fn succeeded(command: &str, status: ExitStatus) -> Result<(), FixtureError> {
    if status.success() {
        Ok(())
    } else {
        Err(FixtureError::Failed {
            command: command.to_string(),
            status,
        })
    }
}

/// The `ramfs` binary in `profile` (a target directory's profile directory,
/// `<target>/<profile>`), built there first with `cargo build -p ramfs` when it is
/// missing: in release mode when `profile` is `release`. Cargo is `$CARGO` (set when
/// cargo runs a test) or `cargo` on the path.
pub fn ramfs_in(profile: &Path) -> Result<PathBuf, FixtureError> {
    workspace_binary_in(profile, "ramfs")
}

/// The `p9-peer` binary (a 9P2000.L server around crosvm's `p9` crate) in `profile`, built
/// as [`ramfs_in`] builds ramfs.
pub fn p9_peer_in(profile: &Path) -> Result<PathBuf, FixtureError> {
    workspace_binary_in(profile, "p9-peer")
}

/// The binary of the workspace package `package` (named as the package) in `profile`,
/// built there with `cargo build -p <package>` when it is missing.
fn workspace_binary_in(profile: &Path, package: &'static str) -> Result<PathBuf, FixtureError> {
    let binary = profile.join(package);
    if binary.exists() {
        return Ok(binary);
    }
    let target = profile
        .parent()
        .ok_or_else(|| FixtureError::NoTargetDir(profile.to_path_buf()))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "-p", package, "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target);
    if profile.file_name().is_some_and(|name| name == "release") {
        build.arg("--release");
    }
    let status = build
        .status()
        .map_err(io_error(format!("run cargo to build {package}")))?;
    succeeded(&format!("cargo build -p {package}"), status)?;
    if binary.exists() {
        Ok(binary)
    } else {
        Err(FixtureError::Missing(binary))
    }
}

/// The test program's source: an initialised table of four pages (data), a zeroed one of
/// sixteen (bss), and libc's text.
pub const TEST_PROGRAM_SOURCE: &str = "#include <stdio.h>\n\
int table[4096] = {1, 2, 3, 4, 5};\n\
char zeroes[65536];\n\
int main(int argc, char **argv) {\n\
    zeroes[argc] = 1;\n\
    printf(\"%d %s\\n\", table[argc], argv[0]);\n\
    return zeroes[3];\n\
}\n";

/// The test program ([`TEST_PROGRAM_SOURCE`]) compiled with `gcc -static -O2` in a
/// temporary directory: the executable's bytes.
pub fn build_test_program() -> Result<Vec<u8>, FixtureError> {
    let dir = tempfile::tempdir().map_err(io_error("temporary directory"))?;
    let source = dir.path().join("prog.c");
    let output = dir.path().join("prog");
    std::fs::write(&source, TEST_PROGRAM_SOURCE)
        .map_err(io_error(format!("write {}", source.display())))?;
    let status = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&output)
        .arg(&source)
        .status()
        .map_err(io_error("run gcc"))?;
    succeeded("gcc -static", status)?;
    std::fs::read(&output).map_err(io_error(format!("read {}", output.display())))
}

/// One page of a program as exec should map it: the oracle that tests and tools compare
/// the kernel's pages with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramPage {
    /// Its address.
    pub addr: u64,
    /// What it must hold.
    pub bytes: Vec<u8>,
    /// From a writable (data) range; else text.
    pub writable: bool,
    /// The file offset of its first byte.
    pub file_offset: u64,
}

/// Every page of every loadable range of `file` (its `loads`) that holds file bytes, with
/// its expected contents. Text pages are whole file pages (what the image caches); a page
/// of a writable range, or of a range with zero fill after its file part, holds the file's
/// bytes only up to the end of that part and zeros after (vm copies it privately).
pub fn expected_pages(file: &[u8], loads: &[vm::LoadSegment]) -> Vec<ProgramPage> {
    let page = vm::PAGE_SIZE as u64;
    let mut pages = Vec::new();
    for load in loads.iter().filter(|load| load.file_len > 0) {
        let lead = load.vaddr % page;
        let base = load.vaddr - lead;
        let file_start = load.file_offset - lead;
        let file_end = load.vaddr + load.file_len;
        let zeroed_tail = load.writable || load.mem_len > load.file_len;
        let mut addr = base;
        while addr < file_end {
            let keep = if zeroed_tail {
                (file_end - addr).min(page)
            } else {
                page
            };
            let file_offset = file_start + (addr - base);
            pages.push(ProgramPage {
                addr,
                bytes: file_bytes_of_page(file, file_offset, keep),
                writable: load.writable,
                file_offset,
            });
            addr += page;
        }
    }
    pages
}

/// A page holding `keep` bytes of `file` from `offset` (fewer where the file ends), zeros
/// after.
fn file_bytes_of_page(file: &[u8], offset: u64, keep: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; vm::PAGE_SIZE];
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(file.len());
    let end = usize::try_from(offset.saturating_add(keep))
        .unwrap_or(usize::MAX)
        .min(file.len());
    bytes[..end - start].copy_from_slice(&file[start..end]);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_pages_are_whole_and_data_pages_end_with_the_file_part() {
        let file: Vec<u8> = (0..3 * vm::PAGE_SIZE)
            .map(|i| (i % 251) as u8 + 1)
            .collect();
        let page = vm::PAGE_SIZE as u64;
        let loads = [
            vm::LoadSegment {
                vaddr: 0x40_0000,
                mem_len: 100,
                file_offset: 0,
                file_len: 100,
                writable: false,
            },
            vm::LoadSegment {
                vaddr: 0x60_0000 + 16,
                mem_len: page + 4000,
                file_offset: page + 16,
                file_len: page,
                writable: true,
            },
        ];
        let pages = expected_pages(&file, &loads);
        assert_eq!(pages.len(), 3);
        // Text: the whole file page, not just the 100 bytes of the range.
        assert_eq!(pages[0].bytes, file[..vm::PAGE_SIZE]);
        assert!(!pages[0].writable);
        // Data: starts at the page holding the range's first byte (its lead included)...
        assert_eq!((pages[1].addr, pages[1].file_offset), (0x60_0000, page));
        assert_eq!(pages[1].bytes, file[vm::PAGE_SIZE..2 * vm::PAGE_SIZE]);
        // ...and its last page ends with the range's file part, zeros after.
        let tail = &pages[2].bytes;
        assert_eq!(tail[..16], file[2 * vm::PAGE_SIZE..2 * vm::PAGE_SIZE + 16]);
        assert!(tail[16..].iter().all(|&b| b == 0));
    }
}
