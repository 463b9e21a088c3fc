//! The regression tools' common parts: a runner of named cases with the tools' output
//! contract, a real `ramfs --stdio` behind a recording interposer, the static test program
//! and what its pages must hold, the command-line options every tool takes, and what every
//! tool's `main` does around its own part.
//!
//! Output contract: one line per case on standard output (`ok   NAME` or
//! `FAIL NAME: why`), then `N passed, M failed`; progress on standard error; exit status 0
//! only when every case passed.

pub mod binary;
pub mod cases;
pub mod failure;
pub mod files;
pub mod options;
pub mod server;
pub mod tool;

pub use binary::Program;
pub use cases::{Case, Runner};
pub use failure::{settle_and_check, Failure};
pub use files::write_new_file;
pub use options::CommonArgs;
pub use server::Ramfs;
pub use tool::{init_logging, Inputs};
