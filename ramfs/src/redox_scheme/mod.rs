//! The Redox scheme front end: the file tree served as a Redox scheme.
//!
//! `ramfs --scheme NAME` on Redox serves the same [`crate::fs`] tree the 9P front end
//! serves, through `redox-scheme`'s `SchemeSync`. The parts that are pure bookkeeping
//! build and test on every platform:
//!
//! - [`mapping`]: the file pages a mapping request covers (the loans themselves are
//!   kept by the tree, [`crate::fs::Tree::lend_pages`], so the 9P front end respects
//!   them too);
//! - [`lifetime`]: open handles, the root handle, and the exit rule built on them;
//! - [`handles`]: what each handle number stands for;
//! - [`walk`]: path names to nodes and back.
//!
//! The parts that speak Redox need `redox-scheme`: on Redox always, elsewhere with the
//! `redox-scheme-tests` feature (which needs `RUSTC_BOOTSTRAP=1`), so that the handler
//! is unit-tested on the host through redox-scheme's own request decoding:
//!
//! - `open_flags`: Redox `openat` flags;
//! - `handler`: the `SchemeSync` implementation;
//! - `daemon`: registration, the request loop, and the exit.
//!
//! Background, with sources: `kernel-patch/redox/NOTES-redox-scheme.md`.

pub mod handles;
pub mod lifetime;
pub mod mapping;
pub mod walk;

#[cfg(any(target_os = "redox", feature = "redox-scheme-tests"))]
pub mod daemon;
#[cfg(any(target_os = "redox", feature = "redox-scheme-tests"))]
pub mod handler;
#[cfg(any(target_os = "redox", feature = "redox-scheme-tests"))]
pub mod open_flags;

#[cfg(any(target_os = "redox", feature = "redox-scheme-tests"))]
pub use daemon::{serve, DaemonError, DaemonOptions, Ended};
#[cfg(any(target_os = "redox", feature = "redox-scheme-tests"))]
pub use handler::SchemeHandler;

// Requests built as the kernel builds them, for the handler's tests.
#[cfg(all(test, feature = "redox-scheme-tests"))]
pub mod test_requests;
#[cfg(all(test, feature = "redox-scheme-tests"))]
mod tests;
