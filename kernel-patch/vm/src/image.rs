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
use core::ops::Deref;

use crate::channel::ImageChannel;
use crate::file::FileIdentity;
use crate::frame::PAGE_BYTES;
use crate::page::{PageIndex, PagePool, NO_PAGE};
use crate::segment::Segment;
use crate::sync::{Arc, AtomicU32, Mutex, Ordering};
use crate::vm::Vm;

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
    pub(crate) chan: Option<Arc<ExecChannel>>,
    /// Shared text segments of this image (Plan 9's `Image.s`), each at count > 0: a
    /// segment's count is decremented under this lock and the segment is removed here in
    /// the same critical section when it reaches 0.
    pub(crate) texts: Vec<Arc<Segment>>,
}

/// An executable image's channel, and the vm instance it keeps alive.
///
/// An [`ImageRef`](crate::ImageRef) holds neither a handle of its own to the instance nor
/// a clone of this channel: an attach then counts only what is its image's (its `refs`),
/// and attaches of one executable or of different ones share no other counter (before,
/// each cloned the one `Vm` handle, and later the channel). The instance stays alive while
/// an image is active because its channel holds this handle; the channel exists exactly
/// while `refs > pgref`, so from the attach that makes an image active to the put that
/// makes it idle, and an `ImageRef`'s put that may be that one clones the channel first
/// (`vm.rs`). The cycle that makes (the instance's table holds the image, whose channel
/// holds the instance) is broken by that put, and while it lasts something outside holds
/// the image anyway (a segment or an `ImageRef`).
pub(crate) struct ExecChannel {
    pub(crate) file: ImageChannel,
    pub(crate) vm: Vm,
}

impl Deref for ExecChannel {
    type Target = ImageChannel;

    fn deref(&self) -> &ImageChannel {
        &self.file
    }
}

/// The most hash chains of any kind (the chains reclaim counts on the stack).
const MAX_CHAINS: usize = 256;
const _: () =
    assert!(Exec::CHAINS <= MAX_CHAINS && crate::mcache::McacheFile::CHAINS <= MAX_CHAINS);

/// How many pages [`Image::reclaim_pages`] takes from each chain to take `want` in rounds:
/// `rounds` whole rounds, then one more page from each of the first `extra` chains that
/// still have one.
struct Takes {
    rounds: u32,
    extra: usize,
}

impl Takes {
    /// For chains with `idle[i]` pages at ref 0 each and `want` at most their sum.
    fn of(idle: &[u32], want: usize) -> Self {
        let after =
            |rounds: u32| -> usize { idle.iter().map(|&count| count.min(rounds) as usize).sum() };
        // The most whole rounds that take no more than `want`: a binary search, as the
        // pages taken grow with the rounds.
        let (mut low, mut high) = (0u32, idle.iter().copied().max().unwrap_or(0));
        while low < high {
            let mid = low + (high - low).div_ceil(2);
            if after(mid) <= want {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        Self {
            rounds: low,
            extra: want - after(low),
        }
    }

    /// Pages to take from the next chain (called for every chain in order), which has
    /// `count` at ref 0.
    fn next_chain(&mut self, count: u32) -> u32 {
        if count > self.rounds && self.extra > 0 {
            // A page of the partial round, which reaches this chain.
            self.extra -= 1;
            return self.rounds + 1;
        }
        count.min(self.rounds)
    }
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
///
/// `repr(C)`, the fields every attach and put of an active image writes first: `refs`, and
/// the image lock (its flag leads the `Mutex`), right after the box's own count (`arc.rs`
/// lays the count first): 17 bytes from the start of the box, so two CPUs attaching one
/// executable move one cache line between them, not the two or three the compiler's
/// order spread these over (count at 0, lock at 48, `refs` at 104).
#[repr(C)]
pub(crate) struct Image<K: ImageKind> {
    pub(crate) refs: AtomicU32,
    /// Written only under `state`'s lock; read without it by the statistics.
    pub(crate) pgref: AtomicU32,
    pub(crate) state: Mutex<ImageState<K::Locked>>,
    /// Never reused; pages name their image by it.
    pub(crate) serial: u64,
    /// The file. For a mount-cache image `version` is meaningless (0): the cached version
    /// is its kind's `vers`.
    pub(crate) identity: FileIdentity,
    /// What this kind keeps outside the lock.
    pub(crate) kind: K,
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
    ///
    /// The pages taken are those of rounds over the chains that take each chain's least
    /// recently used page at ref 0 in turn, chain 0 first. Only the first round is walked
    /// (and it counts each chain's pages at ref 0 as it goes); the later ones are counted,
    /// and a second pass takes the last pages of each chain, so the cost is at most twice
    /// the chains' length, whatever `want` is.
    pub(crate) fn reclaim_pages(
        &self,
        state: &mut ImageState<K::Locked>,
        pool: &PagePool,
        want: usize,
        out: &mut u32,
    ) -> usize {
        debug_assert!(state.chains.len() <= MAX_CHAINS);
        let chains = state.chains.len().min(MAX_CHAINS);
        // The first round, walked: each chain's least recently used page at ref 0, chain 0
        // first, until `want` are taken (a small reclaim walks only the chains it takes
        // from). Each walk counts the chain's other pages at ref 0 for the later rounds.
        let mut idle = [0u32; MAX_CHAINS];
        let mut total = 0usize;
        let mut taken = 0;
        for (chain, left) in idle[..chains].iter_mut().enumerate() {
            if taken >= want {
                return self.reclaimed(taken);
            }
            let mut count = 0;
            let (mut prev, mut victim, mut victim_prev) = (NO_PAGE, NO_PAGE, NO_PAGE);
            let mut cursor = state.chains[chain];
            while cursor != NO_PAGE {
                if pool.refs(PageIndex(cursor)) == 0 {
                    count += 1;
                    victim = cursor;
                    victim_prev = prev;
                }
                prev = cursor;
                cursor = pool.link(PageIndex(cursor));
            }
            if victim != NO_PAGE {
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
                *left = count - 1;
                total += *left as usize;
            }
        }
        // The later rounds, counted.
        let mut takes = Takes::of(&idle[..chains], (want - taken).min(total));
        for (chain, &count) in idle[..chains].iter().enumerate() {
            let take = takes.next_chain(count);
            if take == 0 {
                continue;
            }
            // Keep the first `count - take` pages at ref 0 (the most recently used), take
            // the rest.
            let mut keep = count - take;
            taken += unlink_idle_pages(&mut state.chains[chain], pool, out, || {
                if keep == 0 {
                    return true;
                }
                keep -= 1;
                false
            });
        }
        self.reclaimed(taken)
    }

    /// `taken` pages were unlinked by a reclaim: uncounts them and returns how many.
    fn reclaimed(&self, taken: usize) -> usize {
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
        for head in state.chains.iter_mut() {
            taken += unlink_idle_pages(head, pool, out, || true);
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

/// Walks the hash chain that starts at `head`, in order, and unlinks onto the private list
/// at `out` each page at ref 0 for which `take()` says yes (asked once for each such page,
/// in chain order; pages others hold are passed over). Returns how many it unlinked. Called
/// under the image lock.
fn unlink_idle_pages(
    head: &mut u32,
    pool: &PagePool,
    out: &mut u32,
    mut take: impl FnMut() -> bool,
) -> usize {
    let mut taken = 0;
    let mut prev = NO_PAGE;
    let mut cursor = *head;
    while cursor != NO_PAGE {
        let page = PageIndex(cursor);
        let next = pool.link(page);
        if pool.refs(page) == 0 && take() {
            if prev == NO_PAGE {
                *head = next;
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
    taken
}

#[cfg(test)]
mod tests {
    use super::Takes;

    /// Pages a chain gives when rounds over the chains take one page of each in turn, as
    /// `reclaim_pages` did before it counted the rounds instead of walking them.
    fn walked_rounds(idle: &[u32], want: usize) -> Vec<u32> {
        let mut taken = vec![0; idle.len()];
        let mut total = 0;
        loop {
            let mut progress = false;
            for (chain, count) in idle.iter().enumerate() {
                if total < want && taken[chain] < *count {
                    taken[chain] += 1;
                    total += 1;
                    progress = true;
                }
            }
            if !progress || total >= want {
                return taken;
            }
        }
    }

    #[test]
    fn counted_rounds_take_what_walked_rounds_take() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for _ in 0..2_000 {
            let chains = 1 + next(12) as usize;
            let idle: Vec<u32> = (0..chains).map(|_| next(6) as u32).collect();
            let total: usize = idle.iter().map(|&count| count as usize).sum();
            let want = next(total as u64 + 2) as usize;
            let mut takes = Takes::of(&idle, want.min(total));
            let counted: Vec<u32> = idle.iter().map(|&count| takes.next_chain(count)).collect();
            assert_eq!(
                counted,
                walked_rounds(&idle, want),
                "chains {idle:?}, want {want}"
            );
            // As `reclaim_pages` does it: the first round walked (until `want`), the rest
            // counted over what the chains have left.
            let mut first = vec![0; chains];
            let mut taken = 0;
            for (chain, count) in idle.iter().enumerate() {
                if taken < want && *count > 0 {
                    first[chain] = 1;
                    taken += 1;
                }
            }
            let left: Vec<u32> = idle.iter().zip(&first).map(|(c, f)| c - f).collect();
            let rest_total: usize = left.iter().map(|&count| count as usize).sum();
            let mut rest = Takes::of(&left, want.saturating_sub(taken).min(rest_total));
            let composed: Vec<u32> = left
                .iter()
                .zip(&first)
                .map(|(&count, f)| {
                    f + if taken < want {
                        rest.next_chain(count)
                    } else {
                        0
                    }
                })
                .collect();
            assert_eq!(
                composed,
                walked_rounds(&idle, want),
                "chains {idle:?}, want {want}"
            );
        }
    }
}
