//! ramfs: an in-memory file server speaking 9P2000 and 9P2000.L.
//!
//! - [`fs`]: the file tree, shared by every connection and every front end.
//! - [`error`]: every error with its 9P2000 string and Linux errno.
//! - [`ninep_server`]: the 9P front end: sessions, fids, both dialects, the connection loop.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod fs;
pub mod ninep_server;
