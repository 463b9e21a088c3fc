//! `ninep-bench`: a 9P client load generator that measures servers side by side.
//!
//! It drives a server over a unix socket or TCP with its own pipelined client (the
//! `ninep` crate's messages, `depth` requests in flight, replies matched by tag) and
//! measures:
//!
//! - walk+open+clunk, stat, and create+write+remove operations per second;
//! - sequential read and write MB/s at msize 8 KiB, 64 KiB and 1 MiB;
//!
//! each with 1 and 16 requests in flight on one connection, and 16 on each of 8
//! connections at once (their aggregate). The first server of a run is the reference;
//! the table gives every figure on every server and the ratio reference/peer. Among the
//! peers of `compare` is the raw baseline ([`raw`], `ninep-bench raw-server`): a server
//! that answers every request with a reply of the right size and does no file system
//! work, the limit of the transport and client, so `ramfs/raw` is ramfs as a fraction
//! of it. See `tools/README-bench.md` for the command line.
//!
//! Modules, in the order data flows: [`addr`] (where a server is), [`client`] (one
//! pipelined connection), [`fsops`] (file operations in either dialect), [`workload`]
//! (the measured operations), [`pipeline`] (the load loop), [`matrix`] (the cells),
//! [`session`] (one cell on one server, on one connection or several), [`runner`]
//! (every cell on every server), [`report`] and [`chart`] (the results), [`servers`]
//! (starting the servers that `compare` measures), [`signals`] (stopping them when the
//! bench is told to stop), [`raw`] (the raw baseline server) and [`linux_guest`] (Linux's
//! v9fs in a QEMU guest, to rank mount options).

// One exception, on Linux: `servers` asks the kernel to end each server with the bench.
#![deny(unsafe_code)]

pub mod addr;
pub mod chart;
pub mod client;
pub mod fsops;
pub mod linux_guest;
pub mod matrix;
pub mod pipeline;
pub mod raw;
pub mod report;
pub mod runner;
pub mod servers;
pub mod session;
pub mod signals;
#[cfg(test)]
mod test_io;
pub mod workload;
