//! What every tool's `main` does around its own part: the logger, then the ramfs binary and
//! the test program it runs, a usage error (exit status 2) when either is missing.

#[cfg(not(target_os = "redox"))]
use std::path::{Path, PathBuf};
#[cfg(not(target_os = "redox"))]
use std::process::ExitCode;

#[cfg(not(target_os = "redox"))]
use crate::binary::Program;
#[cfg(not(target_os = "redox"))]
use crate::options::CommonArgs;

/// Exit status of a tool that could not start: no ramfs, no test program.
pub const USAGE_ERROR: u8 = 2;

/// Sends log records to standard error, at `default_level` (`warn`, `error`, ...) unless
/// `RUST_LOG` says otherwise. Call once, first thing in `main`.
pub fn init_logging(default_level: &str) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .target(env_logger::Target::Stderr)
        .init();
}

/// What a tool runs against: the ramfs binary and the static program.
#[cfg(not(target_os = "redox"))]
pub struct Inputs {
    /// The ramfs binary ([`CommonArgs::ramfs_path`]).
    pub ramfs: PathBuf,
    /// The program ([`Program::choose`]).
    pub program: Program,
}

#[cfg(not(target_os = "redox"))]
impl Inputs {
    /// The ramfs binary `common` names and the program at `binary` (or the default one).
    /// When either cannot be had, prints `TOOL: why` on standard error and gives the exit
    /// status to end with ([`USAGE_ERROR`]).
    pub fn choose(
        tool: &str,
        common: &CommonArgs,
        binary: Option<&Path>,
    ) -> Result<Inputs, ExitCode> {
        let chosen = common
            .ramfs_path()
            .and_then(|ramfs| Ok((ramfs, Program::choose(binary)?)));
        match chosen {
            Ok((ramfs, program)) => Ok(Inputs { ramfs, program }),
            Err(why) => {
                eprintln!("{tool}: {why}");
                Err(ExitCode::from(USAGE_ERROR))
            }
        }
    }
}
