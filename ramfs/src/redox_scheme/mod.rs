//! The Redox scheme front end: the file tree served as a Redox scheme.
//!
//! `ramfs --scheme NAME` on Redox serves the same [`crate::fs`] tree the 9P front end
//! serves, through `redox-scheme`'s `SchemeSync`. This module is split so that the
//! parts that are pure bookkeeping build and test on every platform:
//!
//! - [`lent_pages`]: which file pages the kernel has borrowed through `mmap_prep`;
//! - [`lifetime`]: open handles, the root handle, and the exit rule built on them.
//!
//! Background, with sources: `kernel-patch/redox/NOTES-redox-scheme.md`.

pub mod lent_pages;
pub mod lifetime;

// Requests built as the kernel builds them, for the handler's tests; they need
// redox-scheme, which needs RUSTC_BOOTSTRAP=1 (see `.ci/redox-check scheme-tests`).
#[cfg(all(test, feature = "redox-scheme-tests"))]
pub mod test_requests;
