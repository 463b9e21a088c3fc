//! What tests and tools run the kernel with from outside it: the workspace's `ramfs`
//! binary, built when missing, and a static test program built with `gcc -static`.

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
        command: &'static str,
        /// How it ended.
        status: ExitStatus,
    },
    /// The profile directory given is not inside a target directory.
    #[error("{} is not a profile directory of a target directory", .0.display())]
    NoTargetDir(PathBuf),
    /// The build succeeded but left no binary where one was expected.
    #[error("no ramfs at {}", .0.display())]
    Missing(PathBuf),
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> FixtureError {
    let what = what.into();
    move |error| FixtureError::Io { what, error }
}

/// `Ok` when `command` ended with status 0.
fn succeeded(command: &'static str, status: ExitStatus) -> Result<(), FixtureError> {
    if status.success() {
        Ok(())
    } else {
        Err(FixtureError::Failed { command, status })
    }
}

/// The `ramfs` binary in `profile` (a target directory's profile directory,
/// `<target>/<profile>`), built there first with `cargo build -p ramfs` when it is
/// missing: in release mode when `profile` is `release`. Cargo is `$CARGO` (set when
/// cargo runs a test) or `cargo` on the path.
pub fn ramfs_in(profile: &Path) -> Result<PathBuf, FixtureError> {
    let binary = profile.join("ramfs");
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
        .args(["build", "--quiet", "-p", "ramfs", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target);
    if profile.file_name().is_some_and(|name| name == "release") {
        build.arg("--release");
    }
    let status = build
        .status()
        .map_err(io_error("run cargo to build ramfs"))?;
    succeeded("cargo build -p ramfs", status)?;
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
