//! A 9P client mount driver, after Plan 9's `devmnt`.
//!
//! A [`Mount`] is one 9P session over one [`Transport`]: [`Mount::version`]
//! negotiates the msize (256 ..= 1 MiB) and the dialect (9P2000 or 9P2000.L),
//! [`Mount::attach`] gives a root [`Chan`]. Channels walk, open, create, read, write,
//! stat, wstat, clunk and remove, in the same dialect-neutral terms for both
//! dialects. Every mount and every attach has an id from a counter that is never reused
//! ([`MountId`], [`AttachId`]), and a file's cache identity is its [`FileKey`] `(device
//! type, attach id, qid.path, qid.vers)`: two anames of one session whose qid paths
//! overlap never share a key.
//!
//! The core is `no_std` with `alloc`. It never spawns a thread and never blocks by
//! itself: it sleeps on a [`Rendez`] made by the embedding kernel's [`Platform`], and
//! moves bytes through a [`Transport`]. With the `std` feature (on by default),
//! [`host`] provides a `Mutex`+`Condvar` platform and transports over unix sockets,
//! TCP, a child process's stdin/stdout and an in-memory pipe.
//!
//! Rules the driver keeps (see `mux` for how):
//! - one tag per request in flight; many threads may have requests in flight on one
//!   mount, and one of them at a time reads for all (no reader thread);
//! - a tag the server may still answer is never given to another request; a request
//!   that finds no tag free waits for one (reading replies meanwhile), and some tags
//!   are kept for `Tflush`es; at most a bounded number of queued clunks are on the
//!   wire, the rest wait unsent for a later caller;
//! - an interrupted request is flushed; repeated flushes carry the original tag; a
//!   reply that arrives before the `Rflush` wins; a caller that finds no tag even for
//!   its `Tflush` returns without it, its tags kept until the server answers;
//! - after a botched or flushed clunk (or remove) the fid number is abandoned;
//! - a reply shorter than 7 bytes, longer than msize, of the wrong type or with an
//!   unknown tag fails its request and marks the mount broken, without a panic;
//! - the last channel of a mount closes the transport, and the server sees end of
//!   file; dropping a channel queues its clunk;
//! - no lock of the driver is held across transport I/O.
//!
//! Which trait calls may block: [`Rendez::sleep`] (that is its job),
//! [`Transport::send`] and [`Transport::recv`]. [`Rendez::wakeup`] and
//! [`Transport::close`] must not block for long: `wakeup` may be called with the
//! mount's state spin lock held.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

extern crate alloc;

mod chan;
mod error;
mod fids;
mod fileinfo;
mod id;
mod mount;
mod mux;
mod rendez;
mod stats;
mod sync;
mod tags;
mod transport;

#[cfg(feature = "std")]
pub mod host;

pub use chan::{Chan, DirEntry};
pub use error::{BadReply, BrokenReason, MntError, TransportError};
pub use fileinfo::{dm_from_linux_mode, fold_version, Access, Changes, FileInfo, OpenMode};
pub use id::{AttachId, FileKey, MountId, DEV_TYPE_MNT};
pub use mount::{clip_msize, AttachArgs, Mount, MountOptions};
pub use rendez::{Interrupt, Platform, Rendez};
pub use stats::MountStats;
pub use transport::Transport;

/// The 9P crate this driver speaks through, re-exported for its types
/// ([`ninep::Qid`], [`ninep::Dialect`], …).
pub use ninep;
