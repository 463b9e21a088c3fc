//! A mapping's fault: find or make the page, and install its translation.
//!
//! Lock order: mapping lock → object lock. Pages are allocated and file pages read with no
//! lock held: the fault asks for what it needs, drops its locks and starts over with it in
//! hand (a page read meanwhile by another fault wins; ours is freed). The object's size is
//! checked, and the page looked up, under the object lock, so a later truncate that
//! publishes the size under that lock is never overtaken by a fault of a page past it.
//! The translation is installed ([`AddressSpace::map`](super::AddressSpace::map)) before
//! the locks go: under the object lock for an object's page, so a write-back's
//! write-protection under that lock is never undone by an older fault.
//!
//! Private anonymous memory nobody wrote reads as the zero page (`zero.rs`): a read maps
//! it read only and allocates nothing, the entry recording it (`Entry::Zero`, which fork
//! copies as it is); a write allocates a zeroed page of the mapping's own in its place.

use crate::fault::{Access, FaultError, Mapping};
use crate::file::FileError;
use crate::frame::PAGE_BYTES;
use crate::page::{PageIndex, PagePool};
use crate::segment::{Entry, PageTable};
use crate::sync::{Arc, Ordering};

use super::object::ObjectState;
use super::segment::{MapSegment, MappingRef};
use crate::channel::ImageChannel;

/// A page the fault holds at ref 1 and has not used yet; freed if it stays unused.
struct Held<'a> {
    pool: &'a PagePool,
    page: Option<PageIndex>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(page) = self.page.take() {
            self.pool.put(page);
        }
    }
}

enum Step {
    Done(Mapping),
    Fail(FaultError),
    /// Allocate a page for a copy or zero fill with no lock held, and try again.
    NeedPage,
    /// Read the object's page `number` through `chan` into a fresh page with no lock
    /// held, and try again; `writes` is the object's write count as the read starts.
    NeedLoad {
        number: u64,
        chan: Arc<ImageChannel>,
        writes: u64,
    },
}

impl MappingRef {
    /// Resolves a fault at `addr` and installs the translation in the mapping's address
    /// space; returns what it installed. Must be called with no vm lock held (a lock of the
    /// kernel's own is fine). A store to a read-only mapping is
    /// [`FaultError::ReadOnly`]; a page wholly past the end of a mapped file
    /// [`FaultError::PastEnd`].
    pub fn fault(&self, addr: u64, access: Access) -> Result<Mapping, FaultError> {
        let result = self.fault_unlocked(addr, access);
        if result == Err(FaultError::PastEnd) {
            self.vm
                .shared
                .maps
                .counters
                .bus_errors
                .fetch_add(1, Ordering::Relaxed);
        }
        self.vm.shared.trim_free_pool();
        result
    }

    fn fault_unlocked(&self, addr: u64, access: Access) -> Result<Mapping, FaultError> {
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        let page = seg.page_number(addr).ok_or(FaultError::BadAddress)?;
        if access == Access::Write && !seg.writable {
            return Err(FaultError::ReadOnly);
        }
        let mut spare = Held {
            pool: &shared.pool,
            page: None,
        };
        let mut loaded = Held {
            pool: &shared.pool,
            page: None,
        };
        // The object's write count when `loaded` was read.
        let mut loaded_writes = 0;
        loop {
            let step = {
                let mut table = seg.table.lock();
                self.fault_locked(
                    &mut table,
                    page,
                    access,
                    &mut spare,
                    (&mut loaded, loaded_writes),
                )
            };
            match step {
                Step::Done(mapping) => return Ok(mapping),
                Step::Fail(err) => return Err(err),
                Step::NeedPage => {
                    spare.page = Some(shared.new_page().map_err(|_| FaultError::NoMemory)?);
                }
                Step::NeedLoad {
                    number,
                    chan,
                    writes,
                } => {
                    let fresh = Held {
                        pool: &shared.pool,
                        page: Some(shared.new_page().map_err(|_| FaultError::NoMemory)?),
                    };
                    let into = fresh.page.unwrap_or(PageIndex(0));
                    let result = shared.read_page_into(&chan, number * PAGE_BYTES, into);
                    drop(chan);
                    result?;
                    drop(loaded);
                    loaded = fresh;
                    loaded_writes = writes;
                }
            }
        }
    }

    fn fault_locked(
        &self,
        table: &mut PageTable,
        page: u64,
        access: Access,
        spare: &mut Held<'_>,
        (loaded, loaded_writes): (&mut Held<'_>, u64),
    ) -> Step {
        let seg = &*self.seg;
        let pool = &self.vm.shared.pool;
        if table.ensure(page, &self.vm.shared).is_err() {
            return Step::Fail(FaultError::NoMemory);
        }
        let number = seg.first + page;
        if let Some(Entry::Page(resident)) = table.get(page) {
            if pool.owner(resident) == 0 && !super::loan::is_stale(&self.vm.shared, seg, resident) {
                return self.fault_private(table, page, resident, access, spare);
            }
        }
        let Some(object) = seg.object.as_ref() else {
            let mapped = table.get(page) == Some(Entry::Zero);
            return self.fault_anon(table, page, mapped, access, spare);
        };
        let mut state = object.state.lock();
        if let Some(Entry::Page(resident)) = table.get(page) {
            // vm-rule(fault-rechecks-entry-under-object-lock): a loan break (under this
            // lock, not ours) may have taken the entry's page out of the object since we
            // looked (loom model 25).
            if state.pages.get(&number) == Some(&resident) {
                return self.object_page(table, page, resident, &mut state, access, spare, false);
            }
            // Stale: the object has a copy in its place (or, past a truncate, nothing).
            super::loan::drop_stale(&self.vm.shared, table, page, resident);
        }
        // vm-rule(fault-checks-size-under-object-lock): truncate publishes the size under
        // this lock and then cleans the mappings (loom model 15).
        if number * PAGE_BYTES >= state.size {
            return Step::Fail(FaultError::PastEnd);
        }
        let found = match state.pages.get(&number) {
            Some(&found) => {
                // The object's lock is held: the only 0→1 of an object's page.
                pool.incref(found);
                found
            }
            None => {
                let fresh = if object.key.is_some() {
                    // A page read before a write of the kernel's was told may miss it.
                    let current = loaded.page.filter(|_| loaded_writes == state.writes);
                    match current {
                        Some(ours) => {
                            loaded.page = None;
                            ours
                        }
                        None => {
                            let Some(chan) = state.chan.clone() else {
                                return Step::Fail(FaultError::Io(FileError::Gone));
                            };
                            return Step::NeedLoad {
                                number,
                                chan,
                                writes: state.writes,
                            };
                        }
                    }
                } else {
                    let Some(fresh) = spare.page.take() else {
                        return Step::NeedPage;
                    };
                    self.vm.shared.frames.zero(pool.frame(fresh));
                    fresh
                };
                if state.pages.try_reserve(1).is_err() {
                    pool.put(fresh);
                    return Step::Fail(FaultError::NoMemory);
                }
                pool.set_cached(fresh, object.serial, number * PAGE_BYTES);
                state.pages.insert(number, fresh);
                // A page read from the server before the kernel truncated it there (vm
                // is told first) holds the old bytes past the new size: zeros, as the
                // server will have them.
                super::truncate::zero_between(
                    &self.vm.shared,
                    &state,
                    state.size,
                    (number + 1) * PAGE_BYTES,
                );
                fresh
            }
        };
        // We hold a reference of `found`; the entry takes it (or a copy does).
        self.object_page(table, page, found, &mut state, access, spare, true)
    }

    /// A fault on object page `found` (held by the caller: by the entry when `fresh` is
    /// false, by the fault when true), under the object lock.
    #[allow(clippy::too_many_arguments)]
    fn object_page(
        &self,
        table: &mut PageTable,
        page: u64,
        found: PageIndex,
        state: &mut ObjectState,
        access: Access,
        spare: &mut Held<'_>,
        fresh: bool,
    ) -> Step {
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        let pool = &shared.pool;
        let lent = super::loan::is_lent(shared, found);
        if seg.shared && access == Access::Write && lent {
            // A store to a lent page breaks the loan: the object gets a copy in its place.
            let Some(copy) = spare.page.take() else {
                if fresh {
                    pool.put(found);
                }
                return Step::NeedPage;
            };
            let Some(object) = seg.object.as_deref() else {
                return Step::Fail(FaultError::Io(FileError::Gone));
            };
            super::loan::break_object_loan(shared, object, state, seg.first + page, found, copy);
            // Our entry (or fault) held the old page; the copy's reference is the entry's.
            table.set(page, Entry::Page(copy));
            pool.put(found);
            return self.object_page(table, page, copy, state, access, spare, false);
        }
        if seg.shared || access == Access::Read {
            let writable = if seg.shared && access == Access::Write {
                if !pool.set_dirty(found, true) {
                    state.dirty += 1;
                    shared
                        .maps
                        .counters
                        .dirty_pages
                        .fetch_add(1, Ordering::Relaxed);
                }
                true
            } else {
                // vm-rule(lent-page-mapped-read-only): a fault maps a lent page read only
                // (loom model 20).
                seg.shared && seg.writable && pool.is_dirty(found) && !lent
            };
            if fresh {
                table.set(page, Entry::Page(found));
            }
            return install(seg, page, pool, found, writable);
        }
        // A store to a private mapping of the object's page: copy it.
        let Some(copy) = spare.page.take() else {
            if fresh {
                pool.put(found);
            }
            return Step::NeedPage;
        };
        shared.frames.copy(pool.frame(found), pool.frame(copy));
        // The object's page keeps its other holders; this entry (or fault) lets it go.
        pool.put(found);
        self.install_private(table, page, copy, true)
    }

    /// A fault on a private page of this mapping: a refault, or a store to a page shared
    /// with a mapping of the same lineage (after fork), which copies it.
    fn fault_private(
        &self,
        table: &mut PageTable,
        page: u64,
        resident: PageIndex,
        access: Access,
        spare: &mut Held<'_>,
    ) -> Step {
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        let pool = &shared.pool;
        // Under the mapping lock nobody else takes a reference to our private page. A lent
        // page is not ours alone either: a store copies it (the loan keeps the old bytes).
        let lent = super::loan::is_lent(shared, resident);
        // vm-rule(lent-private-page-copied): a lent private page is never written in place
        // (loom model 20).
        let exclusive = pool.refs(resident) == 1 && !lent;
        if access == Access::Read || exclusive {
            return install(seg, page, pool, resident, seg.writable && exclusive);
        }
        let Some(copy) = spare.page.take() else {
            return Step::NeedPage;
        };
        if lent {
            super::loan::count_break(shared);
        }
        shared.frames.copy(pool.frame(resident), pool.frame(copy));
        pool.put(resident);
        self.install_private(table, page, copy, true)
    }

    /// A fault on private anonymous memory nobody wrote: at an empty entry, or at one that
    /// maps the zero page (`mapped`: a read before, here or in the mapping fork copied
    /// this one from). A read maps the zero page read only and allocates nothing; a write
    /// allocates a zeroed page of the mapping's own, replacing the zero page's entry.
    fn fault_anon(
        &self,
        table: &mut PageTable,
        page: u64,
        mapped: bool,
        access: Access,
        spare: &mut Held<'_>,
    ) -> Step {
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        let zero = &shared.zero;
        if access == Access::Read {
            if !mapped {
                table.set(page, Entry::Zero);
                zero.mapped_on_read();
            }
            let frame = zero.frame();
            seg.space.map(seg.base + page * PAGE_BYTES, frame, false);
            return Step::Done(Mapping {
                frame,
                writable: false,
            });
        }
        let Some(fresh) = spare.page.take() else {
            return Step::NeedPage;
        };
        shared.frames.zero(shared.pool.frame(fresh));
        if mapped {
            zero.replaced_on_write();
        }
        self.install_private(table, page, fresh, seg.writable)
    }

    /// Maps `fresh`, a private page the fault holds, at `page` as the mapping's own.
    fn install_private(
        &self,
        table: &mut PageTable,
        page: u64,
        fresh: PageIndex,
        writable: bool,
    ) -> Step {
        let seg = &*self.seg;
        let pool = &self.vm.shared.pool;
        let lineage = seg.lineage.as_ref().map_or(0, |lineage| lineage.serial);
        pool.set_private_origin(fresh, lineage, seg.first + page);
        table.set(page, Entry::Page(fresh));
        install(seg, page, pool, fresh, writable)
    }
}

fn install(seg: &MapSegment, page: u64, pool: &PagePool, held: PageIndex, writable: bool) -> Step {
    let frame = pool.frame(held);
    if writable {
        // The next loan of the page must remove this translation.
        pool.set_mapped_writable(held);
    }
    seg.space.map(seg.base + page * PAGE_BYTES, frame, writable);
    Step::Done(Mapping { frame, writable })
}
