//! What the cases need on Redox, against the real kernel: a `ramfs-9p --scheme NAME` whose
//! root capability this tool holds (`scheme`), a program run from a file of it (`program`),
//! and whether the kernel maps executables through its image cache (`image_probe`).
//!
//! Nothing here has run: this host cannot build relibc, so `cargo check` for
//! `x86_64-unknown-redox` is the bar (`.ci/redox-check redox`).

pub mod image_probe;
pub mod program;
pub mod scheme;

pub use image_probe::ImageCache;
pub use program::{run_as_program_if_asked, Mode, Running};
pub use scheme::SchemeRamfs;
