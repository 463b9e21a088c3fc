//! Page loans (NetBSD UVM's `uvm_loan`, our own code): the kernel borrows the pages of a
//! range of a mapping to read them (a pipe or a transport writing them out) without
//! copying them, and gets a snapshot: what the pages held when they were lent.
//!
//! - **What is lent.** [`MappingRef::lend`] lends, page by page: a private page of the
//!   mapping (a copy, or anonymous memory written before); else the object's page (shared
//!   mappings, and private file mappings where they have not copied); and for memory
//!   nobody wrote (private or shared anonymous) the one **zero page**, which allocates
//!   nothing and counts nothing (its loans cannot overflow). A file page that is not
//!   resident is faulted in first: the lender drops every vm lock, runs the mapping's read
//!   fault (which reads the file with no lock held) and looks again, since the page may
//!   have gone meanwhile (UVM's "re-check after sleeping").
//! - **Read-only while lent.** A page's loans are counted in its `loans` field. While
//!   there are any, no mapping maps it writable: the first loan removes the writable
//!   translations it may have (an object page's in the writable shared mappings its
//!   object's interval set lists, a private page's in its own mapping: nowhere else can one
//!   be writable), and a fault installs a lent page read only (loom model 20). A page
//!   carries a mark from the moment a fault installs a writable translation of it until a
//!   loan removes them, so a loan of a page nobody made writable since the last one asks
//!   the MMU for nothing (a buffer lent again and again costs one shootdown a page, not
//!   one a loan).
//! - **A store breaks the loan by copying** ([`break_object_loan`]): a store to a lent
//!   object page through a shared mapping puts a copy in the object at the same page
//!   number (UVM's `uvm_pagereplace`), with the dirty mark; every mapping's translation of
//!   the old page goes, and their entries of it go stale (owner 0, lineage 0), each
//!   dropped at its mapping's next fault, which finds the copy. The old page keeps the old
//!   bytes for the loan. A store to a lent private page copies it as copy on write does.
//! - **Orphans.** An owner may let go of a lent page (unmap, exit, truncate, the object's
//!   end, a break): at its last reference the page is not freed but becomes an *orphan*,
//!   kept by its loans alone; the last loan returned frees it. Never while lent, never
//!   twice: both the owner's last put and the unloan decide under the free-list lock
//!   (`page.rs`).
//! - **Frames stay.** Reclaim skips lent pages (it would free nothing), and migration
//!   refuses them (`Unmovable::Lent`): the loan's frames are what the kernel reads.
//! - **No pins in mappings.** Mapping pages have no wiring (there is no `mlock`), so no
//!   lent page is wired; a page a kernel holds through a segment's held fault is not a
//!   mapping's and cannot be lent.
//!
//! # Locks
//!
//! Lending takes the mapping lock, then the object lock (the usual order) for object
//! pages, and counts each loan while the page is held: by the mapping's entry, or in its
//! object under the object lock, so its owner cannot let go of it meanwhile. Returning a
//! loan ([`Loan::release`], or its drop) runs against the usual order (page before
//! owner): it never needs the owner. It takes only the free-list lock, a leaf, and
//! decrements each page's loans there; a page whose last loan it was and whose owner let
//! go of it (an orphan) goes to the free list in the same hold. The owner's last put also
//! decides under that lock (orphan if lent, else free), so the two can neither both free
//! the page nor both keep it (loom models 21 and 22).

use alloc::vec::Vec;

use crate::fault::{Access, FaultError};
use crate::frame::{AllocSite, Frame, PAGE_BYTES};
use crate::page::{PageIndex, PagePool, NO_PAGE, ZERO_ENTRY};
use crate::segment::{Entry, PageTable};
use crate::sync::{AtomicU64, MutexGuard, Ordering};
use crate::vm::{Vm, VmState};

use super::object::{MemObject, ObjectState};
use super::segment::{MapSegment, MappingRef};

/// Why [`MappingRef::lend`] lent nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LendError {
    /// The range is empty, not page aligned, or not wholly inside the mapping.
    BadRange,
    /// A page of the range is wholly past the end of the mapped file.
    PastEnd,
    /// A page of the range has `u32::MAX` loans already.
    TooManyLoans,
    /// No memory: for the loan's page list, or for a page the range needed faulted in.
    NoMemory,
    /// Faulting a page of the range in failed.
    Fault(FaultError),
    /// A page of the range went away after each of several faults brought it in.
    Busy,
}

impl core::fmt::Display for LendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadRange => f.write_str("range not page aligned or not in the mapping"),
            Self::PastEnd => f.write_str("range past the end of the mapped file"),
            Self::TooManyLoans => f.write_str("a page has too many loans"),
            Self::NoMemory => f.write_str("out of memory"),
            Self::Fault(err) => write!(f, "fault-in failed: {err:?}"),
            Self::Busy => f.write_str("pages kept going away while being lent"),
        }
    }
}

/// Counters of loans, for [`Statistics`](crate::Statistics).
#[derive(Default)]
pub(crate) struct LoanCounters {
    /// Loans of pool pages outstanding (one a page a loan).
    pub(crate) pages_lent: AtomicU64,
    /// Pages lent as the zero page (since the start).
    pub(crate) zero_loans: AtomicU64,
    /// Loans broken by a store (a copy made).
    pub(crate) breaks: AtomicU64,
    /// Translations removed by first loans (write-protecting).
    pub(crate) invalidations: AtomicU64,
    /// [`Loan`]s made.
    pub(crate) loans: AtomicU64,
    /// Lent dirty pages the kernel's own write changed in place, for want of memory for a
    /// copy (`VmState::lock_unlent`).
    pub(crate) snapshots_lost: AtomicU64,
}

/// One page of a loan: a pool page (its loan taken) or the zero page.
#[derive(Clone, Copy)]
struct LentPage {
    /// The page's index, or `ZERO_ENTRY` for the zero page.
    page: u32,
    frame: Frame,
}

/// Pages lent by [`MappingRef::lend`]: the bytes the range held at the lend, in frames the
/// kernel reads through its own frame access. While it lives no mapping writes them (a
/// store copies), nothing frees or moves them. Dropping it, or [`release`](Self::release),
/// returns the loans; call that with no vm lock held (it takes the free-list lock).
pub struct Loan {
    vm: Vm,
    pages: Vec<LentPage>,
}

impl Loan {
    /// Pages lent.
    pub fn pages(&self) -> usize {
        self.pages.len()
    }

    /// Bytes lent (pages × page size).
    pub fn len(&self) -> u64 {
        self.pages.len() as u64 * PAGE_BYTES
    }

    /// Whether nothing is lent (never, for a loan [`MappingRef::lend`] returned).
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The frame holding page `index` of the range (`None` past the end). The page at byte
    /// `offset` of the range is `frame(offset / PAGE_SIZE)`.
    pub fn frame(&self, index: usize) -> Option<Frame> {
        self.pages.get(index).map(|lent| lent.frame)
    }

    /// The frames of the range's pages, in order.
    pub fn frames(&self) -> impl ExactSizeIterator<Item = Frame> + '_ {
        self.pages.iter().map(|lent| lent.frame)
    }

    /// How many of the pages are the zero page (nothing was allocated for them).
    pub fn zero_pages(&self) -> usize {
        self.pages
            .iter()
            .filter(|lent| lent.page == ZERO_ENTRY)
            .count()
    }

    /// Returns the loans (as dropping it does): an orphan whose last loan this was is
    /// freed. Call with no vm lock held.
    pub fn release(self) {
        drop(self);
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        let shared = &*self.vm.shared;
        let mut lent = 0u64;
        let pages = self
            .pages
            .iter()
            .filter(|entry| entry.page != ZERO_ENTRY)
            .map(|entry| PageIndex(entry.page))
            .inspect(|_| lent += 1);
        shared.pool.unlend(pages);
        shared
            .maps
            .loans
            .pages_lent
            .fetch_sub(lent, Ordering::Relaxed);
        self.pages.clear();
        shared.trim_free_pool();
    }
}

impl core::fmt::Debug for Loan {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Loan")
            .field("pages", &self.pages.len())
            .field("zero_pages", &self.zero_pages())
            .finish()
    }
}

impl Loan {
    fn push_zero(&mut self, shared: &VmState) {
        self.pages.push(LentPage {
            page: ZERO_ENTRY,
            frame: shared.zero.frame(),
        });
        shared.maps.loans.zero_loans.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes a loan of `page` (held by the caller: see [`PagePool::lend`]) into this loan.
    /// Returns the loans the page had before.
    ///
    /// [`PagePool::lend`]: crate::page::PagePool::lend
    fn push_page(&mut self, shared: &VmState, page: PageIndex) -> Result<u32, LendError> {
        let before = shared
            .pool
            .lend(page)
            .map_err(|()| LendError::TooManyLoans)?;
        // The room was reserved for every page of the range.
        self.pages.push(LentPage {
            page: page.0,
            frame: shared.pool.frame(page),
        });
        shared.maps.loans.pages_lent.fetch_add(1, Ordering::Relaxed);
        Ok(before)
    }
}

/// What a pass over the range under the locks found.
enum Pass {
    /// Every page is lent.
    Done,
    /// Page `page` of the mapping (a file page) is not resident: fault it in, and go on.
    Missing(u64),
}

/// How many faults in a row may bring a page in that is gone again before the lender
/// gives up ([`LendError::Busy`]).
const FAULT_RETRIES: u32 = 8;

impl MappingRef {
    /// Lends the pages of `[addr, addr + len)` (page aligned, inside the mapping) to the
    /// kernel: a [`Loan`] of the bytes they hold now. Untouched anonymous memory lends the
    /// zero page and allocates nothing; a file page not resident is faulted in first (a
    /// read fault, with every vm lock dropped: it may block on the file). On an error
    /// nothing stays lent (every loan taken is given back). Call with no vm lock held.
    pub fn lend(&self, addr: u64, len: u64) -> Result<Loan, LendError> {
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        if len == 0 || !addr.is_multiple_of(PAGE_BYTES) || !len.is_multiple_of(PAGE_BYTES) {
            return Err(LendError::BadRange);
        }
        let first = seg.page_number(addr).ok_or(LendError::BadRange)?;
        let last = addr
            .checked_add(len - PAGE_BYTES)
            .and_then(|last| seg.page_number(last))
            .ok_or(LendError::BadRange)?;
        shared
            .admit(AllocSite::Loan)
            .map_err(|_| LendError::NoMemory)?;
        let mut pages = Vec::new();
        pages
            .try_reserve_exact((last - first + 1) as usize)
            .map_err(|_| LendError::NoMemory)?;
        // From here dropping `loan` (an error) gives back what it took.
        let mut loan = Loan {
            vm: self.vm.clone(),
            pages,
        };
        let mut retries = 0;
        let mut stuck_at = None;
        loop {
            let from = first + loan.pages.len() as u64;
            match self.lend_pass(&mut loan, from, last + 1)? {
                Pass::Done => break,
                Pass::Missing(page) => {
                    retries = if stuck_at == Some(page) {
                        retries + 1
                    } else {
                        0
                    };
                    if retries >= FAULT_RETRIES {
                        return Err(LendError::Busy);
                    }
                    stuck_at = Some(page);
                    // Every vm lock is dropped here: the fault may read the file.
                    self.fault(seg.base + page * PAGE_BYTES, Access::Read)
                        .map_err(|err| match err {
                            FaultError::NoMemory => LendError::NoMemory,
                            FaultError::PastEnd => LendError::PastEnd,
                            other => LendError::Fault(other),
                        })?;
                }
            }
        }
        shared.maps.loans.loans.fetch_add(1, Ordering::Relaxed);
        Ok(loan)
    }

    /// Lends pages `from..to` of the mapping under its lock (and its object's), until one
    /// needs a fault.
    fn lend_pass(&self, loan: &mut Loan, from: u64, to: u64) -> Result<Pass, LendError> {
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        let pool = &shared.pool;
        let table = seg.table.lock();
        let mut state = None;
        for page in from..to {
            if let Some(Entry::Page(held)) = table.get(page) {
                if is_private(shared, held) {
                    let before = loan.push_page(shared, held)?;
                    // vm-rule(first-loan-write-protects-private): a private page is mapped
                    // writable only here, by this mapping alone (loom model 20).
                    if before == 0 && pool.take_mapped_writable(held) {
                        seg.space
                            .invalidate(seg.base + page * PAGE_BYTES, PAGE_BYTES);
                        count_invalidation(shared);
                    }
                    continue;
                }
            }
            let Some(object) = seg.object.as_deref() else {
                // Private anonymous memory nobody wrote.
                loan.push_zero(shared);
                continue;
            };
            let state = state.get_or_insert_with(|| object.state.lock());
            let number = seg.first + page;
            if number * PAGE_BYTES >= state.size {
                return Err(LendError::PastEnd);
            }
            match state.pages.get(&number) {
                Some(&resident) => {
                    let before = loan.push_page(shared, resident)?;
                    // vm-rule(first-loan-write-protects): an object page is mapped writable
                    // only in writable shared mappings (loom model 20).
                    if before == 0 && pool.take_mapped_writable(resident) {
                        write_protect(shared, state, number);
                    }
                }
                None if object.key.is_none() => loan.push_zero(shared),
                None => return Ok(Pass::Missing(page)),
            }
        }
        Ok(Pass::Done)
    }
}

/// Whether `page`, found in a mapping's entry, is a private page of the mapping's lineage
/// (a copy, or anonymous memory written), rather than its object's page or a stale entry
/// of one a loan break replaced.
fn is_private(shared: &VmState, page: PageIndex) -> bool {
    shared.pool.owner(page) == 0 && shared.pool.private_origin(page).0 != 0
}

/// Whether `page`, found in a mapping's entry, is a stale entry: an object's page a loan
/// break took out of the object (no owner, no lineage). The entry is to be dropped and the
/// object looked up again.
pub(super) fn is_stale(shared: &VmState, seg: &MapSegment, page: PageIndex) -> bool {
    seg.object.is_some() && shared.pool.owner(page) == 0 && shared.pool.private_origin(page).0 == 0
}

/// Drops a stale entry at `page` of `table` (see [`is_stale`]) and its reference.
pub(super) fn drop_stale(shared: &VmState, table: &mut PageTable, page: u64, held: PageIndex) {
    table.clear(page);
    shared.pool.put(held);
}

fn count_invalidation(shared: &VmState) {
    shared
        .maps
        .loans
        .invalidations
        .fetch_add(1, Ordering::Relaxed);
}

/// Removes every writable translation of object page `number`: those of the writable
/// shared mappings its interval set lists (a private mapping maps an object's page read
/// only). Under the object lock, where a fault installs an object page's translation.
fn write_protect(shared: &VmState, state: &ObjectState, number: u64) {
    state.rmap.overlapping(number, number + 1, |entry| {
        let seg = &entry.seg;
        if seg.shared && seg.writable {
            if let Some(addr) = seg.address_of(number) {
                seg.space.invalidate(addr, PAGE_BYTES);
                count_invalidation(shared);
            }
        }
    });
}

/// Whether `page` is lent now; a lent page is mapped read only everywhere.
pub(super) fn is_lent(shared: &VmState, page: PageIndex) -> bool {
    shared.pool.loans(page) != 0
}

/// Breaks the loans of object page `number` (`old`, lent) by copying: `copy` (a fresh page
/// the caller holds at ref 1, its reference to be handed to whoever maps it) takes the
/// old page's bytes, its dirty mark and its place in the object; every mapping's
/// translation of the old page goes, so each mapping's next access faults and finds the
/// copy (their entries of the old page are stale and are dropped then). The old page is
/// no longer the object's: it stays with its references and loans, an orphan once the
/// last reference goes. Under the object lock. The caller still holds its reference of
/// `old` and drops it after.
pub(super) fn break_object_loan(
    shared: &VmState,
    object: &MemObject,
    state: &mut ObjectState,
    number: u64,
    old: PageIndex,
    copy: PageIndex,
) {
    let pool = &shared.pool;
    shared.frames.copy(pool.frame(old), pool.frame(copy));
    pool.set_cached(copy, object.serial, number * PAGE_BYTES);
    if pool.set_dirty(old, false) {
        // The mark moves with the bytes: the object's dirty count stays.
        pool.set_dirty(copy, true);
    }
    // The key is there: replacing its value allocates nothing.
    state.pages.insert(number, copy);
    invalidate_all(state, number);
    // Before the caller's put: whoever drops the last reference frees it.
    pool.detach(old);
    count_break(shared);
}

/// A store copied a lent page.
pub(super) fn count_break(shared: &VmState) {
    shared.maps.loans.breaks.fetch_add(1, Ordering::Relaxed);
}

impl VmState {
    /// `(pages lent now, zero-page loans, breaks, invalidations, loans made, snapshots
    /// lost)`.
    pub(crate) fn loan_counts(&self) -> (u64, u64, u64, u64, u64, u64) {
        let loans = &self.maps.loans;
        (
            loans.pages_lent.load(Ordering::Relaxed),
            loans.zero_loans.load(Ordering::Relaxed),
            loans.breaks.load(Ordering::Relaxed),
            loans.invalidations.load(Ordering::Relaxed),
            loans.loans.load(Ordering::Relaxed),
            loans.snapshots_lost.load(Ordering::Relaxed),
        )
    }
}

/// Fresh pages held at ref 1 for [`VmState::lock_unlent`]'s copies, linked through their
/// `link` (nothing allocated for the list); those left over are freed as it drops.
struct Spares<'a> {
    shared: &'a VmState,
    head: u32,
    count: usize,
}

impl Spares<'_> {
    fn take(&mut self) -> Option<PageIndex> {
        if self.head == NO_PAGE {
            return None;
        }
        let page = PageIndex(self.head);
        self.head = self.shared.pool.link(page);
        self.shared.pool.set_link(page, NO_PAGE);
        self.count -= 1;
        Some(page)
    }
}

impl Drop for Spares<'_> {
    fn drop(&mut self) {
        while let Some(page) = self.take() {
            self.shared.pool.put(page);
        }
    }
}

/// Calls `visit(number, page)` for the resident pages of `first..past` (walking whichever
/// is shorter: the range or the object's pages).
fn resident_in(
    state: &ObjectState,
    (first, past): (u64, u64),
    mut visit: impl FnMut(u64, PageIndex),
) {
    if first >= past {
        return;
    }
    if past - first <= state.pages.len() as u64 {
        for number in first..past {
            if let Some(&page) = state.pages.get(&number) {
                visit(number, page);
            }
        }
    } else {
        for (&number, &page) in &state.pages {
            if (first..past).contains(&number) {
                visit(number, page);
            }
        }
    }
}

impl VmState {
    /// The object lock of `object`, with no resident page of the page numbers `range`
    /// (computed under the lock) lent: for the kernel's own changes of the object's pages
    /// in place (`Vm::wrote_mapped`, a truncate's zeroing), which must not reach a loan's
    /// snapshot. Each lent page there is replaced by a copy as a store's break does
    /// ([`break_object_loan`]); the copies are allocated with the lock dropped, and the
    /// lock is taken again and the pages counted again (a loan may come meanwhile). Without
    /// memory for a copy a clean lent page leaves the object (its next fault reads the
    /// file again, which has the kernel's change) and a dirty one, or any while a
    /// write-back of the object is out, is changed in place (its loan then sees the
    /// change: counted in `Statistics::loan_snapshots_lost`).
    /// Call with no vm lock held.
    pub(crate) fn lock_unlent<'a>(
        &'a self,
        object: &'a MemObject,
        range: impl Fn(&ObjectState) -> (u64, u64),
    ) -> MutexGuard<'a, ObjectState> {
        let pool = &self.pool;
        let mut spares = Spares {
            shared: self,
            head: NO_PAGE,
            count: 0,
        };
        let mut no_memory = false;
        loop {
            let mut state = object.state.lock();
            let pages = range(&state);
            // Out of copies, a lent page that must stay is changed in place; nothing to do
            // for it.
            let out_of_copies = no_memory && spares.count == 0;
            let needs =
                |page| is_lent(self, page) && !(out_of_copies && must_stay(pool, object, page));
            let mut lent = 0;
            resident_in(&state, pages, |_, page| lent += usize::from(needs(page)));
            if lent == 0 {
                if out_of_copies {
                    let mut lost = 0;
                    resident_in(&state, pages, |_, page| {
                        lost += u64::from(is_lent(self, page))
                    });
                    self.maps
                        .loans
                        .snapshots_lost
                        .fetch_add(lost, Ordering::Relaxed);
                }
                return state;
            }
            if lent > spares.count && !no_memory {
                drop(state);
                for _ in spares.count..lent {
                    match self.new_page() {
                        Ok(page) => {
                            pool.set_link(page, spares.head);
                            spares.head = page.0;
                            spares.count += 1;
                        }
                        Err(_) => {
                            no_memory = true;
                            break;
                        }
                    }
                }
                continue;
            }
            // A batch at a time (the map cannot change while it is walked, and nothing is
            // allocated under the lock); then count again.
            let mut batch: [(u64, PageIndex); 16] = [(0, PageIndex(0)); 16];
            let mut taken = 0;
            resident_in(&state, pages, |number, page| {
                if taken < batch.len() && needs(page) {
                    batch[taken] = (number, page);
                    taken += 1;
                }
            });
            for &(number, old) in &batch[..taken] {
                // Ours while we take it out (an object page's 0→1 is under this lock):
                // whoever drops the last reference, we or a stale entry, frees it.
                pool.incref(old);
                match spares.take() {
                    Some(copy) => {
                        break_object_loan(self, object, &mut state, number, old, copy);
                        // An object's page holds no reference of its own.
                        pool.put(copy);
                    }
                    None if !must_stay(pool, object, old) => {
                        state.pages.remove(&number);
                        invalidate_all(&state, number);
                        pool.detach(old);
                    }
                    // Left for the count above, now out of copies.
                    None => {}
                }
                // Unowned now (but in the last arm): an orphan at its last put, being lent.
                pool.put(old);
            }
        }
    }
}

/// Whether `page` of `object` must stay in the object when there is no memory to copy it:
/// a dirty page holds the only copy of its stores, and so may a clean-looking one while a
/// write-back is out, since its mark is cleared for the write and goes back only if the
/// write is refused, to the page the object holds then (`writeback.rs`). Which page a
/// write-back writes is not recorded, so any write-back of the object keeps every page.
/// Call with the object lock held: a write-back is counted under it, so the answer holds
/// until the lock is dropped.
fn must_stay(pool: &PagePool, object: &MemObject, page: PageIndex) -> bool {
    // Dropping a clean-looking page whose write is then refused would lose the store
    // (loan_cross.rs stages it).
    pool.is_dirty(page) || object.writing.load(Ordering::Acquire) != 0
}

/// Removes every translation of object page `number` (each mapping's next access faults).
fn invalidate_all(state: &ObjectState, number: u64) {
    state.rmap.overlapping(number, number + 1, |entry| {
        if let Some(addr) = entry.seg.address_of(number) {
            entry.seg.space.invalidate(addr, PAGE_BYTES);
        }
    });
}

/// Test kit: sets the loans of the pool page `map` maps at `addr` to `loans`, with the
/// count of loans outstanding moved by the same step, so a test reaches the count's
/// overflow without four billion lends. Give the count back (`preset_loans(map, addr,
/// old)`) before the loans are checked or returned. `false` when `addr` maps no pool page.
#[cfg(any(test, feature = "testkit"))]
pub fn preset_loans(map: &MappingRef, addr: u64, loans: u32) -> bool {
    let shared = &*map.vm.shared;
    let Some(number) = map.seg.page_number(addr) else {
        return false;
    };
    let table = map.seg.table.lock();
    let Some(Entry::Page(page)) = table.get(number) else {
        return false;
    };
    let old = shared.pool.set_loans(page, loans);
    let counter = &shared.maps.loans.pages_lent;
    counter.fetch_add(u64::from(loans), Ordering::Relaxed);
    counter.fetch_sub(u64::from(old), Ordering::Relaxed);
    true
}
