//! `p9-peer`: a 9P2000.L file server made of crosvm's `p9` crate and a socket loop.
//!
//! The `p9` crate is a library: it answers one message at a time from a reader to a
//! writer and leaves listening to its embedder. This binary is that embedder, so that
//! `ninep-bench` can measure the crate side by side with ramfs, diod and unpfs.
//!
//! ```text
//! p9-peer --listen unix:/tmp/p9.sock --root /dev/shm/export
//! p9-peer --listen tcp:127.0.0.1:5640 --root /dev/shm/export --max-msize 65560
//! ```
//!
//! Each connection gets its own thread and its own `p9::Server` (fids are per session,
//! as in any 9P server). The crate handles requests of one connection in order, one at a
//! time; the benchmark measures exactly that.
//!
//! The crate is Linux only; elsewhere the binary builds as an empty `main`.
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

#[cfg(target_os = "linux")]
mod linux;

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    linux::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {}
