//! An image: the page cache of one file, and the rules of its two counts.
//!
//! `refs` counts everything that keeps the image: segments that use it, its cached pages
//! (`pgref` of them) and short holders (an attach in progress, reclaim). `pgref` counts the
//! pages in its hash chains. `0 <= pgref <= refs`; an executable image's channel is present
//! exactly while `refs > pgref`. The table side of these rules (attach, put, the idle list)
//! is in `cache.rs`.
//!
//! A mount-cache image (`mcache/`) is the same structure put to another use: one cached
//! file's data, `refs == pgref + 1` (the mount cache's own reference) while it is linked,
//! and every page at ref 0 (reads copy under the image lock). The two uses are the two
//! kinds of [`Image<K>`](Image): [`ExecImage`] and `McacheImage` share the chains, the
//! counts, lookup and reclaim, and only an executable image's locked state
//! ([`ExecState`]) has a channel and text segments, only a mount-cache image's its
//! version, last use and `McacheState`. "A mount-cache image never holds a channel" is a
//! type fact, not a rule to check.
//!
//! `refs` is atomic because attach takes its reference under the table lock, without the
//! image lock; every other change of `refs` and every change of `pgref`, the chains and the
//! channel happens under the image lock.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::channel::ImageChannel;
use crate::file::FileIdentity;
use crate::frame::PAGE_BYTES;
use crate::page::{PageIndex, PagePool, NO_PAGE};
use crate::segment::Segment;
use crate::sync::{Arc, AtomicU32, Mutex, Ordering};

/// What one kind of image keeps besides what every image has (the identity, the counts
/// and the chains). The two kinds are types, not a tag: an image's kind-specific fields
/// exist only in the kind that has them, so a mount-cache image has no channel to hold
/// and an executable image no mount-cache bookkeeping, and the table's map and the mount
/// cache's map each hold images of their own kind only.
pub(crate) trait ImageKind {
    /// Hash chains of an image of this kind (a power of two).
    const CHAINS: usize;
    /// What this kind keeps under the image lock, with the chains.
    type Locked;
}

/// The kind of an executable's image: its pages are mapped by segments, it is in the image
/// table, and it holds its file's channel while `refs > pgref`. Nothing outside the lock.
pub(crate) struct Exec;

impl ImageKind for Exec {
    const CHAINS: usize = 256;
    type Locked = ExecState;
}

/// An executable's image.
pub(crate) type ExecImage = Image<Exec>;

/// What an executable image's lock protects besides its chains.
#[derive(Default)]
pub(crate) struct ExecState {
    /// The channel (`c`): present exactly while `refs > pgref`.
    pub(crate) chan: Option<Arc<ImageChannel>>,
    /// Shared text segments of this image (Plan 9's `Image.s`), each at count > 0: a
    /// segment's count is decremented under this lock and the segment is removed here in
    /// the same critical section when it reaches 0.
    pub(crate) texts: Vec<Arc<Segment>>,
}

/// What [`Image::lookpage`] found at an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// A cached page, now with a reference for the caller.
    Cached(PageIndex),
    /// A page another fault is reading from the file.
    Loading,
    /// No page.
    Missing,
}

/// One image of kind `K`.
pub(crate) struct Image<K: ImageKind> {
    /// Never reused; pages name their image by it.
    pub(crate) serial: u64,
    /// The file. For a mount-cache image `version` is meaningless (0): the cached version
    /// is its kind's `vers`.
    pub(crate) identity: FileIdentity,
    pub(crate) refs: AtomicU32,
    /// Written only under `state`'s lock; read without it by the statistics.
    pub(crate) pgref: AtomicU32,
    /// What this kind keeps outside the lock.
    pub(crate) kind: K,
    pub(crate) state: Mutex<ImageState<K::Locked>>,
}

/// What the image lock protects: the chains, shared by both kinds, and what the image's
/// kind keeps under the lock (`L`, its [`ImageKind::Locked`]).
pub(crate) struct ImageState<L> {
    /// Heads of the hash chains; most recently used page first in each.
    chains: Box<[u32]>,
    /// The kind's own state.
    pub(crate) kind: L,
}

impl<L> ImageState<L> {
    /// The chain a page at `offset` belongs in.
    pub(crate) fn chain_of(&self, offset: u64) -> usize {
        ((offset / PAGE_BYTES) as usize) & (self.chains.len() - 1)
    }
}

#[cfg(test)]
impl<L> ImageState<L> {
    /// The chain heads, for tests that corrupt them on purpose.
    pub(crate) fn chains_mut(&mut self) -> &mut [u32] {
        &mut self.chains
    }
}

impl ExecImage {
    /// A new executable image at refs 0 with empty chains and no channel. Allocates; called
    /// with no lock held.
    pub(crate) fn new(identity: FileIdentity, serial: u64) -> Option<Self> {
        Self::with_kind(identity, serial, Exec, ExecState::default())
    }
}

impl<K: ImageKind> Image<K> {
    /// A new image of kind `kind` at refs 0 with empty chains, its locked state `locked`.
    /// Allocates; called with no lock held.
    pub(crate) fn with_kind(
        identity: FileIdentity,
        serial: u64,
        kind: K,
        locked: K::Locked,
    ) -> Option<Self> {
        let mut chains = Vec::new();
        chains.try_reserve_exact(K::CHAINS).ok()?;
        chains.resize(K::CHAINS, NO_PAGE);
        Some(Self {
            serial,
            identity,
            refs: AtomicU32::new(0),
            pgref: AtomicU32::new(0),
            kind,
            state: Mutex::new(ImageState {
                chains: chains.into_boxed_slice(),
                kind: locked,
            }),
        })
    }

    /// Finds the cached page at `offset` and takes a reference to it (Plan 9's `lookpage`):
    /// the only way a cached page at ref 0 comes back. A page still being loaded is not
    /// taken: the fault that loads it has it, the others wait (`wait.rs`).
    pub(crate) fn lookpage(
        &self,
        state: &mut ImageState<K::Locked>,
        pool: &PagePool,
        offset: u64,
    ) -> Lookup {
        match self.find(state, pool, offset) {
            None => Lookup::Missing,
            Some(page) if pool.is_loading(page) => Lookup::Loading,
            Some(page) => {
                pool.incref(page);
                Lookup::Cached(page)
            }
        }
    }

    /// Takes `page` (a loading page its loader holds at ref 1) out of the chains after its
    /// read failed: `pgref` and `refs` drop by one and the page is uncached, still held by
    /// the caller, who frees it with no lock held.
    pub(crate) fn unlink_loading(
        &self,
        state: &mut ImageState<K::Locked>,
        pool: &PagePool,
        page: PageIndex,
    ) {
        let chain = state.chain_of(pool.offset(page));
        let mut prev = NO_PAGE;
        let mut cursor = state.chains[chain];
        while cursor != NO_PAGE {
            let next = pool.link(PageIndex(cursor));
            if cursor == page.0 {
                if prev == NO_PAGE {
                    state.chains[chain] = next;
                } else {
                    pool.set_link(PageIndex(prev), next);
                }
                pool.clear_loading(page);
                pool.set_uncached(page);
                pool.set_link(page, NO_PAGE);
                self.uncount(1);
                return;
            }
            prev = cursor;
            cursor = next;
        }
        debug_assert!(false, "a loading page left its chain");
    }

    /// Finds the cached page at `offset` without taking a reference (the mount cache uses
    /// its pages only under the image lock). The page moves to the front of its chain, so
    /// the back of a chain is its least recently used page.
    pub(crate) fn find(
        &self,
        state: &mut ImageState<K::Locked>,
        pool: &PagePool,
        offset: u64,
    ) -> Option<PageIndex> {
        let chain = state.chain_of(offset);
        let mut prev = NO_PAGE;
        let mut cursor = state.chains[chain];
        while cursor != NO_PAGE {
            let page = PageIndex(cursor);
            let next = pool.link(page);
            if pool.offset(page) == offset {
                if prev != NO_PAGE {
                    pool.set_link(PageIndex(prev), next);
                    pool.set_link(page, state.chains[chain]);
                    state.chains[chain] = cursor;
                }
                return Some(page);
            }
            prev = cursor;
            cursor = next;
        }
        None
    }

    /// Links `fresh` (held by the caller, uncached) into the chains at `offset`, where no
    /// page is cached yet. `pgref` and `refs` grow by one.
    pub(crate) fn insert(
        &self,
        state: &mut ImageState<K::Locked>,
        pool: &PagePool,
        offset: u64,
        fresh: PageIndex,
    ) {
        let chain = state.chain_of(offset);
        pool.set_cached(fresh, self.serial, offset);
        pool.set_link(fresh, state.chains[chain]);
        state.chains[chain] = fresh.0;
        self.pgref.fetch_add(1, Ordering::Relaxed);
        self.refs.fetch_add(1, Ordering::AcqRel);
    }

    /// Unlinks up to `want` pages at ref 0, the least recently used of each chain first,
    /// and pushes them on the private list at `out` (through their links) for the caller to
    /// free after it drops the image lock. Each page taken drops `pgref` and `refs` by one.
    /// The caller must hold a reference of its own, so `refs` stays above 0.
    pub(crate) fn reclaim_pages(
        &self,
        state: &mut ImageState<K::Locked>,
        pool: &PagePool,
        want: usize,
        out: &mut u32,
    ) -> usize {
        let mut taken = 0;
        while taken < want {
            let mut progress = false;
            for chain in 0..state.chains.len() {
                if taken >= want {
                    break;
                }
                // The last page at ref 0 in the chain is its least recently used one.
                let mut prev = NO_PAGE;
                let mut cursor = state.chains[chain];
                let mut victim = NO_PAGE;
                let mut victim_prev = NO_PAGE;
                while cursor != NO_PAGE {
                    if pool.refs(PageIndex(cursor)) == 0 {
                        victim = cursor;
                        victim_prev = prev;
                    }
                    prev = cursor;
                    cursor = pool.link(PageIndex(cursor));
                }
                if victim == NO_PAGE {
                    continue;
                }
                let page = PageIndex(victim);
                let next = pool.link(page);
                if victim_prev == NO_PAGE {
                    state.chains[chain] = next;
                } else {
                    pool.set_link(PageIndex(victim_prev), next);
                }
                pool.set_uncached(page);
                pool.set_link(page, *out);
                *out = victim;
                taken += 1;
                progress = true;
            }
            if !progress {
                break;
            }
        }
        self.uncount(taken);
        taken
    }

    /// Unlinks every page at ref 0 (a mount-cache wipe: all of its pages are), in one pass
    /// over each chain, onto the private list at `out`. Same contract as
    /// [`reclaim_pages`](Self::reclaim_pages).
    pub(crate) fn take_all_pages(
        &self,
        state: &mut ImageState<K::Locked>,
        pool: &PagePool,
        out: &mut u32,
    ) -> usize {
        let mut taken = 0;
        for chain in 0..state.chains.len() {
            let mut prev = NO_PAGE;
            let mut cursor = state.chains[chain];
            while cursor != NO_PAGE {
                let page = PageIndex(cursor);
                let next = pool.link(page);
                if pool.refs(page) == 0 {
                    if prev == NO_PAGE {
                        state.chains[chain] = next;
                    } else {
                        pool.set_link(PageIndex(prev), next);
                    }
                    pool.set_uncached(page);
                    pool.set_link(page, *out);
                    *out = cursor;
                    taken += 1;
                } else {
                    prev = cursor;
                }
                cursor = next;
            }
        }
        self.uncount(taken);
        taken
    }

    /// `taken` pages left the chains: `pgref` and `refs` drop by as many.
    fn uncount(&self, taken: usize) {
        if taken > 0 {
            let taken32 = taken as u32;
            self.pgref.fetch_sub(taken32, Ordering::Relaxed);
            self.refs.fetch_sub(taken32, Ordering::AcqRel);
        }
    }

    /// Calls `visit(chain, page)` for every page in the chains, at most `limit` pages in all
    /// (a corrupted, cyclic chain would otherwise never end). For the checker.
    #[cfg(any(test, feature = "check"))]
    pub(crate) fn walk_chains(
        &self,
        state: &ImageState<K::Locked>,
        pool: &PagePool,
        limit: u32,
        mut visit: impl FnMut(usize, PageIndex),
    ) {
        let mut steps = 0;
        for (chain, head) in state.chains.iter().enumerate() {
            let mut cursor = *head;
            while cursor != NO_PAGE && steps <= limit {
                visit(chain, PageIndex(cursor));
                cursor = pool.link(PageIndex(cursor));
                steps += 1;
            }
        }
    }
}
