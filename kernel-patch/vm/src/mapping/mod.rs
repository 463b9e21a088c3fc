//! Mappings of files and of anonymous memory, and their object-based reverse map.
//!
//! A **mapped object** ([`ObjectRef`]) holds the pages of one file within the kernel, keyed
//! without the version (`(type, dev, qid.path)`, as the mount cache keys files), or of one
//! piece of shared anonymous memory. A **mapping** ([`MappingRef`]) maps a page range of an
//! object (or, private and anonymous, of nothing) into one address space at one address:
//! a mapping is one address space's view, so fork makes a new one for the child.
//!
//! - Shared mappings map the object's pages; a store writes the page in place and marks it
//!   dirty (a read maps it writable only once it is dirty, so the first store faults and
//!   marks it). Dirty pages are written back through the object's channel by
//!   [`MappingRef::sync`] and when a mapping goes ([`MappingRef::unmap`], or its drop at
//!   exit), with no vm lock held.
//! - Private mappings map the object's pages read only until a store copies the page; the
//!   copy is the mapping's own and is never written back. A read of untouched private
//!   anonymous memory maps the zero page read only (`zero.rs`) and allocates nothing;
//!   the first store allocates a zeroed page. Private pages (copies, and the
//!   zero-filled pages of private anonymous memory) belong to the mapping's **lineage**
//!   (`lineage.rs`): the mappings a fork made from one another, which may share them copy
//!   on write.
//! - The **reverse map** is by range, never by page: each object keeps an interval set of
//!   the mappings of it (`rmap.rs`), each lineage the set of its mappings, so its memory
//!   grows with the number of mappings and not with the pages mapped.
//!   [`MappingRef::mappers_at`] lists every (address space, address) that maps a page.
//! - **Loans** (`loan.rs`, [`MappingRef::lend`]): the kernel borrows a range's pages as a
//!   snapshot, read only in every mapping while lent; a store copies; an owner letting go
//!   of a lent page leaves an orphan its last loan frees.
//! - vm reaches the kernel's page tables only through [`AddressSpace`]: it installs a
//!   fault's translation with [`AddressSpace::map`] and removes translations with
//!   [`AddressSpace::invalidate`] (a write-back write-protecting a page, a fork
//!   write-protecting the parent, an unmap).
//!
//! # Locks
//!
//! Order, outermost first: mapping lock (its page table) → object lock → lineage lock →
//! object-table lock; only a migration (`migrate.rs`) holds several mapping locks at once,
//! taken in order of serial. The object lock guards the object's pages, size, dirty count, channel
//! and reverse map; a fault looks a page up, and re-checks the size, under it. vm calls
//! [`AddressSpace::map`] and [`AddressSpace::invalidate`] with a mapping lock and perhaps
//! an object lock held: the kernel's side must take only a leaf lock of its own, must not
//! call back into vm and must not block. A fault installs its translation under the
//! object lock, so a write-back that write-protects a page under that lock cannot be
//! overtaken by a writable translation installed after it. A lend takes the mapping lock
//! and then the object lock; returning a loan takes only the free-list lock (a leaf), so
//! it needs no lock order against the owner at all (`loan.rs`). Reads and writes of the file
//! ([`ImageFile::read_at`], [`ImageFile::write_at`]) run with no vm lock held.
//!
//! [`ImageFile::read_at`]: crate::ImageFile::read_at
//! [`ImageFile::write_at`]: crate::ImageFile::write_at

mod coherence;
mod fault;
mod lineage;
mod loan;
mod migrate;
mod migrate_cached;
mod object;
mod reclaim;
mod rmap;
mod segment;
mod split;
mod truncate;
mod unheld;
mod writeback;

#[cfg(any(test, feature = "check"))]
pub(crate) mod check;

#[cfg(any(test, feature = "testkit"))]
pub use loan::preset_loans;
pub use loan::{LendError, Loan};
pub use migrate::{MigrateError, Unmovable, Vacated};
pub use object::ObjectRef;
pub use segment::{MapSpec, MappingRef};
pub use split::{CarveError, Carved};
pub use truncate::PendingTruncate;
pub use writeback::MappingSync;

pub(crate) use object::Mappings;

/// Bytes of one reverse-map record (a slot of an interval set's vector).
pub(crate) const RMAP_RECORD_BYTES: u64 = core::mem::size_of::<rmap::RmapEntry>() as u64;

use crate::frame::Frame;

/// The kernel's handle of an address space. A standard `Arc` (the kernel makes it; vm only
/// clones it, which never allocates), since vm's own counted box holds sized values only.
pub type SpaceRef = alloc::sync::Arc<dyn AddressSpace>;

/// An address space of the kernel's (a process's page tables), as vm sees it.
///
/// vm calls these with a mapping lock and perhaps an object lock held (see the module's
/// lock order): an implementation takes only a leaf lock of its own, never calls into vm
/// and never blocks.
pub trait AddressSpace: Send + Sync {
    /// A number naming this address space in [`Mapper`]s (a process id, say).
    fn id(&self) -> u64;

    /// Installs the translation of the page at `addr` to `frame`, writable or not,
    /// replacing any translation of that page.
    fn map(&self, addr: u64, frame: Frame, writable: bool);

    /// Removes every translation of `[addr, addr + len)` (page aligned), so the next
    /// access faults (gVisor's `MappingSpace.Invalidate`). When it returns, no store
    /// through a removed writable translation may still land (a TLB shootdown waits for
    /// stores in flight; a software MMU stores under the lock this takes): a write-back
    /// copies the page after write-protecting it, and counts on that.
    fn invalidate(&self, addr: u64, len: u64);
}

/// One place a page is mapped: the address space ([`AddressSpace::id`]) and the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mapper {
    /// The address space's id.
    pub space: u64,
    /// The page's address there.
    pub addr: u64,
}
