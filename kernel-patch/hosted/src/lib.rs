//! The kernel in a library: vm (pages, images, segments) and mnt (the 9P mount driver)
//! bound to the host, so that exec, fault, fork, exit, mount and unmount run in tests and
//! tools against a real 9P server (the model: NetBSD's rump kernels).
//!
//! - [`Kernel`]: processes and the system calls as methods, each naming its process:
//!   [`spawn`](Kernel::spawn), [`fork`](Kernel::fork), [`exit`](Kernel::exit),
//!   [`wait`](Kernel::wait); [`mount`](Kernel::mount) a [`Transport`](mnt::Transport) on a
//!   path and [`unmount`](Kernel::unmount) it; [`open`](Kernel::open),
//!   [`create`](Kernel::create), [`read`](Kernel::read), [`write`](Kernel::write),
//!   [`close`](Kernel::close), [`stat`](Kernel::stat), [`remove`](Kernel::remove),
//!   [`truncate`](Kernel::truncate); [`exec`](Kernel::exec) of an ELF64
//!   file through its mount; [`touch`](Kernel::touch),
//!   [`read_memory`](Kernel::read_memory) and [`write_memory`](Kernel::write_memory) to
//!   fault pages in as a running program would; [`interrupt`](Kernel::interrupt) (a note:
//!   the server request waited for is flushed).
//! - Pipes ([`Kernel::pipe`]): a 64 KiB buffer, blocking ends a note interrupts, shared
//!   by fork; [`read_user`](Kernel::read_user) and [`write_user`](Kernel::write_user),
//!   the system calls with a buffer in process memory, for pipes and files alike. A
//!   `write_user` of at least [`LEND_THRESHOLD`] bytes from a mapping lends the pages
//!   (vm's loans: a snapshot) into the pipe, or to the mount driver, which sends them
//!   with a vectored write and no copy.
//! - The mount cache (Plan 9's `cache.c`): regular files of mounts made with
//!   [`MountFlags::CACHE`] are read and written through vm's
//!   [`MountCache`](vm::MountCache), validated at open by identity with `qid.vers` and
//!   length (a stat at open), kept valid by our own writes, wiped by create, truncating
//!   open and truncate; append-only files never. A file exec'd leaves the mount cache for
//!   its image.
//! - Host frames ([`HostFrames`]) with a memory limit, so reclaim really runs, and a
//!   failure knob.
//! - Closes as in Plan 9: `close` clunks and waits; every other last release of a channel
//!   (exit, an image letting go of its file, an unmounted mount point) is queued to close
//!   workers, and [`Kernel::wait_closes`] waits for them with a deadline.
//! - [`Kernel::check_invariants`]: vm's checker over every process's segments, plus the
//!   kernel's own rules (MMU entries, every live channel accounted for).
//! - [`inject`]: a transport that records the wire and holds requests back (a server that
//!   never answers, flushes answered or not, a connection cut mid-request).
//!
//! An image's channel is the exec's channel; vm closes it when only cached pages refer to
//! the image, so a program that exited never keeps its file server connected.
//! [`KernelConfig::legacy_image_channel`] brings back the old behaviour, for proving that
//! the regression tools notice.
//!
//! # Locks
//!
//! Outermost first: the process table → a process's family lock. A
//! process's memory lock (Plan 9's segment lock) → vm's locks. A process's file table,
//! namespace and notes locks, a descriptor's offset, a namespace's mount table, the close
//! queue, the legacy pins and frame slots are leaves; so is a pipe's state lock, but for
//! frame slots. Only a fault holds a lock (the memory lock) while a server is called.

#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cached;
mod chan_services;
mod check;
mod closeq;
mod counters;
mod current;
mod error;
mod exec;
mod fd;
mod frames;
mod image_file;
mod kchan;
mod kernel;
mod lent;
mod memory;
mod migrate;
mod mmu;
mod mount_gone;
mod namespace;
mod notes;
mod page_wait;
mod pipe;
mod process;
mod sysfile;
mod sysmap;
mod sysmem;
mod sysmount;
mod sysproc;
mod sysuser;

pub mod inject;

pub use check::{KernelCheck, KernelViolation};
pub use error::{ExecError, KernelError};
pub use exec::USER_STACK_TOP;
pub use frames::{FrameStats, HostFrames, POISON};
pub use kernel::{Kernel, KernelConfig, KernelStats};
pub use memory::SegmentInfo;
pub use namespace::{MountFlags, MountInfo};
pub use pipe::PIPE_CAPACITY;
pub use process::{ForkFlags, NamespaceShare, Pid, WaitMsg};
pub use sysmap::{MapRequest, Prot, MAP_FLOOR};
pub use sysmount::MountSpec;
pub use sysproc::ExecInfo;
pub use sysuser::LEND_THRESHOLD;

/// The crates the kernel is made of, for their types.
pub use mnt;
pub use vm;
