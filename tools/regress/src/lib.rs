//! The regression tools' common parts: a runner of named cases with the tools' output
//! contract, a real `ramfs --stdio` behind a recording interposer, the static test program
//! and what its pages must hold, the command-line options every tool takes, and what every
//! tool's `main` does around its own part.
//!
//! The hosted-kernel parts (`binary`, `files`, `server`, the `Inputs` of `tool`) build
//! everywhere but on Redox; on Redox `redox` holds what the cases need there instead (a
//! real `ramfs-9p --scheme NAME` whose root the tool holds, a program run from it).
//!
//! Output contract: one line per case on standard output (`ok   NAME` or
//! `FAIL NAME: why`), then `N passed, M failed`; progress on standard error; exit status 0
//! only when every case passed.

#[cfg(not(target_os = "redox"))]
pub mod binary;
pub mod cases;
pub mod catalogue;
pub mod failure;
#[cfg(not(target_os = "redox"))]
pub mod files;
pub mod options;
#[cfg(target_os = "redox")]
pub mod redox;
#[cfg(not(target_os = "redox"))]
pub mod server;
pub mod tool;

#[cfg(not(target_os = "redox"))]
pub use binary::Program;
pub use cases::{Absent, Case, Runner};
#[cfg(not(target_os = "redox"))]
pub use failure::settle_and_check;
pub use failure::Failure;
#[cfg(not(target_os = "redox"))]
pub use files::write_new_file;
pub use options::CommonArgs;
#[cfg(not(target_os = "redox"))]
pub use server::Ramfs;
pub use tool::init_logging;
#[cfg(not(target_os = "redox"))]
pub use tool::Inputs;
