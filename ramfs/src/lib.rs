//! ramfs: an in-memory file server speaking 9P2000 and 9P2000.L.
//!
//! - [`fs`]: the file tree, shared by every connection and every front end.
//! - [`error`]: every error with its 9P2000 string and Linux errno.
//! - [`ninep_server`]: the 9P front end: sessions, fids, both dialects, the connection loop.
//! - [`transport`]: unix sockets, TCP and stdio as connections.
//! - [`signals`]: SIGINT/SIGTERM handling, the only OS-specific code.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
pub mod ninep_server;
pub mod signals;
pub mod transport;
