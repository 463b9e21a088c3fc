//! An image: the page cache of one executable file, and the rules of its two counts.
//!
//! `refs` counts everything that keeps the image: segments that use it, its cached pages
//! (`pgref` of them) and short holders (an attach in progress, reclaim). `pgref` counts the
//! pages in its hash chains. `0 <= pgref <= refs`; the channel is present exactly while
//! `refs > pgref`. The table side of these rules (attach, put, the idle list) is in
//! `cache.rs`.
//!
//! `refs` is atomic because attach takes its reference under the table lock, without the
//! image lock; every other change of `refs` and every change of `pgref`, the chains and the
//! channel happens under the image lock.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::file::{FileIdentity, OpenFile};
use crate::frame::PAGE_BYTES;
use crate::page::{PageIndex, PagePool, NO_PAGE};
use crate::segment::Segment;
use crate::sync::{Arc, AtomicU32, Mutex, Ordering};

/// Hash chains of an image. A power of two.
pub(crate) const CHAINS: usize = 256;

/// One image.
pub(crate) struct Image {
    /// Never reused; pages name their image by it.
    pub(crate) serial: u64,
    pub(crate) identity: FileIdentity,
    pub(crate) refs: AtomicU32,
    /// Written only under `state`'s lock; read without it by the statistics.
    pub(crate) pgref: AtomicU32,
    pub(crate) state: Mutex<ImageState>,
}

/// What the image lock protects.
pub(crate) struct ImageState {
    /// The channel (`c`): present exactly while `refs > pgref`.
    pub(crate) chan: Option<Arc<OpenFile>>,
    /// Heads of the hash chains; most recently used page first in each.
    chains: Box<[u32]>,
    /// Shared text segments of this image (Plan 9's `Image.s`), each at count > 0: a
    /// segment's count is decremented under this lock and the segment is removed here in
    /// the same critical section when it reaches 0.
    pub(crate) texts: Vec<Arc<Segment>>,
}

#[cfg(test)]
impl ImageState {
    /// The chain heads, for tests that corrupt them on purpose.
    pub(crate) fn chains_mut(&mut self) -> &mut [u32] {
        &mut self.chains
    }
}

fn chain_of(offset: u64) -> usize {
    ((offset / PAGE_BYTES) as usize) & (CHAINS - 1)
}

impl Image {
    /// A new image at refs 0 with empty chains. Allocates; called with no lock held.
    pub(crate) fn new(identity: FileIdentity, serial: u64) -> Option<Self> {
        let mut chains = Vec::new();
        chains.try_reserve_exact(CHAINS).ok()?;
        chains.resize(CHAINS, NO_PAGE);
        Some(Self {
            serial,
            identity,
            refs: AtomicU32::new(0),
            pgref: AtomicU32::new(0),
            state: Mutex::new(ImageState {
                chan: None,
                chains: chains.into_boxed_slice(),
                texts: Vec::new(),
            }),
        })
    }

    /// Finds the cached page at `offset` and takes a reference to it (Plan 9's `lookpage`):
    /// the only way a cached page at ref 0 comes back. The page moves to the front of its
    /// chain, so the back of a chain is its least recently used page.
    pub(crate) fn lookpage(
        &self,
        state: &mut ImageState,
        pool: &PagePool,
        offset: u64,
    ) -> Option<PageIndex> {
        let chain = chain_of(offset);
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
                pool.incref(page);
                return Some(page);
            }
            prev = cursor;
            cursor = next;
        }
        None
    }

    /// Caches `fresh` (held at ref 1 by the caller, uncached) at `offset`, unless a page is
    /// cached there already: then that page is returned with a new reference and `fresh`
    /// is handed back unused. No two pages of an image ever share an offset.
    pub(crate) fn cache_or_get(
        &self,
        state: &mut ImageState,
        pool: &PagePool,
        offset: u64,
        fresh: PageIndex,
    ) -> (PageIndex, Option<PageIndex>) {
        if let Some(existing) = self.lookpage(state, pool, offset) {
            return (existing, Some(fresh));
        }
        let chain = chain_of(offset);
        pool.set_cached(fresh, self.serial, offset);
        pool.set_link(fresh, state.chains[chain]);
        state.chains[chain] = fresh.0;
        self.pgref.fetch_add(1, Ordering::Relaxed);
        self.refs.fetch_add(1, Ordering::AcqRel);
        (fresh, None)
    }

    /// Unlinks up to `want` pages at ref 0, the least recently used of each chain first,
    /// and pushes them on the private list at `out` (through their links) for the caller to
    /// free after it drops the image lock. Each page taken drops `pgref` and `refs` by one.
    /// The caller must hold a reference of its own, so `refs` stays above 0.
    pub(crate) fn reclaim_pages(
        &self,
        state: &mut ImageState,
        pool: &PagePool,
        want: usize,
        out: &mut u32,
    ) -> usize {
        let mut taken = 0;
        while taken < want {
            let mut progress = false;
            for chain in 0..CHAINS {
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
        if taken > 0 {
            let taken32 = taken as u32;
            self.pgref.fetch_sub(taken32, Ordering::Relaxed);
            self.refs.fetch_sub(taken32, Ordering::AcqRel);
        }
        taken
    }

    /// Calls `visit(chain, page)` for every page in the chains, at most `limit` pages in all
    /// (a corrupted, cyclic chain would otherwise never end). For the checker.
    pub(crate) fn walk_chains(
        &self,
        state: &ImageState,
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

/// The chain a page at `offset` belongs in (for the checker).
pub(crate) fn expected_chain(offset: u64) -> usize {
    chain_of(offset)
}
