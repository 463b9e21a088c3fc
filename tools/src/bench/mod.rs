//! `ninep-bench`: a 9P client load generator that measures servers side by side.
//!
//! It drives a server over a unix socket or TCP with its own pipelined client (the
//! `ninep` crate's messages, `depth` requests in flight, replies matched by tag) and
//! measures:
//!
//! - walk+open+clunk, stat, and create+write+remove operations per second;
//! - sequential read and write MB/s at msize 8 KiB, 64 KiB and 1 MiB;
//!
//! each with 1 and 16 requests in flight. The first server of a run is the baseline;
//! the table gives every figure on every server and the ratio baseline/peer. See
//! `tools/README-bench.md` for the command line.
//!
//! Modules, in the order data flows: [`addr`] (where a server is), [`client`] (one
//! pipelined connection), [`fsops`] (file operations in either dialect), [`workload`]
//! (the measured operations), [`pipeline`] (the load loop), [`matrix`] (the cells),
//! [`session`] (one cell on one server), [`runner`] (every cell on every server),
//! [`report`] and [`chart`] (the results), [`servers`] (starting the servers that
//! `compare` measures) and [`signals`] (stopping them when the bench is told to stop).

// One exception, on Linux: `servers` asks the kernel to end each server with the bench.
#![deny(unsafe_code)]

pub mod addr;
pub mod chart;
pub mod client;
pub mod fsops;
pub mod matrix;
pub mod pipeline;
pub mod raw;
pub mod report;
pub mod runner;
pub mod servers;
pub mod session;
pub mod signals;
pub mod workload;
