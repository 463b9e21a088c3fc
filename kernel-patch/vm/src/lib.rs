//! The page cache and executable image cache of a Plan 9-style kernel, `no_std`.
//!
//! - **Pages** ([`FrameAllocator`]): frames the embedding kernel lends, with at most 64 bytes
//!   of metadata each; a free list of uncached pages.
//! - **Images** ([`Vm::attach`], [`ImageRef`], [`Vm::image_status`]): one per executable file, keyed by
//!   [`FileIdentity`] by value. An image counts its references (`ref`) and its cached pages
//!   (`pgref`) apart and holds its file's channel exactly while `ref > pgref`: an exited
//!   program's cached text does not keep its file server busy. Idle images (`ref == pgref`)
//!   keep their pages for the next exec until reclaim or the idle limit frees them.
//! - **Segments** ([`SegmentRef`]): shared read-only text, private copy-on-write data, zero
//!   filled bss and stack (a read of untouched zero fill maps the one read-only zero page,
//!   [`Vm::zero_frame`]; the first write allocates); [`SegmentRef::fault`] loads pages
//!   from the file with every lock dropped, one fault a page ([`SegmentRef::fault_held`]
//!   keeps the page held until the kernel has taken its own reference): others faulting on a page
//!   being loaded wait for it with the kernel's sleep ([`PageWait`],
//!   [`Vm::with_page_wait`]).
//! - [`Vm::exec`] attaches and builds a program's segments before exec's point of no return.
//! - **The mount cache** ([`Vm::mount_cache`], [`MountCache`], [`CachedFile`]): data of files
//!   on cached mounts (Plan 9's `cache.c`), one mount-cache image a file that never holds a
//!   channel. Validated at open by identity with `qid.vers` and length; our own writes keep
//!   it valid; create, truncating open and a length change wipe it; append-only files are
//!   never cached; at most 8 MiB a file and 256 MiB in all by default
//!   ([`MountCacheConfig`]); reclaimed under memory pressure; a file whose channel becomes
//!   an image's channel leaves it. The kernel asks the cache first and the server for the
//!   rest; [`MountCache`] has the kernel's side, call by call.
//! - **Mappings** ([`Vm::file_object`], [`Vm::anon_object`], [`ObjectRef::map`],
//!   [`Vm::map_private_anon`], [`MappingRef`]): file mappings, shared or private, and
//!   anonymous ones; shared stores write the object's page in place and keep it dirty until
//!   [`MappingRef::sync`] or the unmap writes it back; private stores copy. Each object and
//!   each lineage of private mappings keeps its mappings by page range (the reverse map,
//!   [`MappingRef::mappers_at`]), and vm reaches the kernel's page tables only through
//!   [`AddressSpace`].
//! - [`Statistics`] for users; behind cargo features, so a kernel links neither unless it
//!   asks: `check` (`check::check_invariants`, for tests and the hosted kernel) and
//!   `testkit` (fakes of the kernel's frames and files).
//!
//! # Locks
//!
//! Order, outermost first: process segment lock (the kernel's) → segment lock → image lock
//! → table lock. The free-list lock is a leaf. The reclaim lock sits outside image and table
//! locks; the park lock (closes waiting for the kernel) and a CPU's last-image slot lock
//! (`hot.rs`) are leaves. vm never holds one of its
//! locks while it calls something of the kernel's that may block: [`FrameAllocator::allocate`],
//! [`ImageFile::read_at`], [`ImageFile::length`], [`PageWait::sleep`] (and
//! [`PageWait::wakeup`]). It never calls [`ImageFile::close`] on its own paths at all, where
//! the kernel may hold locks (a fault's reclaim, an exit): it parks the file, and the kernel
//! closes parked files where it holds none, with [`Vm::run_parked_closes_on`] (a CPU's
//! own queue and the shared one; attaches say their CPU with [`Vm::attach_on`]) or
//! [`Vm::run_parked_closes`] (every queue). The table is in shards by file
//! (`table.rs`), each shard's lock "the table lock" of its files; no path holds two. The
//! mount cache's map lives under the table lock, and a mount-cache image's lock is an
//! image lock.
//!
//! - **Loans** ([`MappingRef::lend`], [`Loan`]): the kernel borrows a mapping's pages to
//!   read them without a copy (a pipe, a transport's write) and gets a snapshot. A lent
//!   page is read only in every mapping; a store copies it (the loan keeps the old bytes);
//!   an owner that lets go of a lent page leaves an orphan the last loan frees; untouched
//!   anonymous memory lends the zero page and allocates nothing (`mapping/loan.rs`).
//!
//! The mappings' locks are in `mapping/mod.rs`: mapping lock → object lock → lineage lock
//! → object-table lock, none of them taken with an image or table lock. Returning a loan
//! takes only the free-list lock (a leaf), never an owner's: see `mapping/loan.rs`.

#![cfg_attr(not(test), no_std)]
// Unsafe code only in `arc.rs` (a fallible `Arc`), each block with its `SAFETY:` argument.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate alloc;

// `--cfg loom` swaps the locks for loom's (`sync.rs`), which is an optional dependency.
#[cfg(all(loom, not(feature = "loom")))]
compile_error!(
    "--cfg loom needs vm's `loom` feature: `cargo test -p vm --features loom` (.ci/loom)"
);

mod arc;
mod cache;
mod channel;
mod exec;
mod fault;
mod file;
mod forget;
mod frame;
mod hold;
mod hot;
mod image;
mod mapping;
mod mcache;
mod page;
mod resident;
mod segment;
mod slab_list;
mod stats;
mod sync;
mod table;
mod vm;
mod wait;
mod zero;

#[cfg(any(test, feature = "check"))]
pub mod check;
pub mod elf;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use exec::LoadSegment;
pub use fault::{Access, FaultError, Mapping};
pub use file::{FileError, FileIdentity, ImageFile};
pub use frame::{
    copy_via_buffer, zero_via_with_frame, AllocError, AllocSite, Frame, FrameAllocator, PAGE_SIZE,
};
pub use hold::HeldMapping;
pub use mapping::{
    AddressSpace, CarveError, Carved, LendError, Loan, MapSpec, Mapper, MappingRef, MappingSync,
    MigrateError, ObjectRef, PendingTruncate, SpaceRef, Unmovable, Vacated,
};
pub use mcache::{
    CachedFile, CachedRead, FillTicket, MountCache, MountCacheConfig, OpenKind, PendingWrite,
};
pub use segment::{SegmentKind, SegmentRef};
pub use stats::Statistics;
pub use vm::{Config, ImageRef, ImageStatus, LayoutError, Vm, VmError};
pub use wait::{PageWait, SpinWait};

// The kernel shares these between CPUs.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Vm>();
    shareable::<ImageRef>();
    shareable::<SegmentRef>();
    shareable::<MountCache>();
    shareable::<CachedFile>();
    shareable::<ObjectRef>();
    shareable::<MappingRef>();
    shareable::<Loan>();
};
