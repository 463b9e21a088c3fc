//! Moving a page of an image's hash chains to another frame: a page of an executable
//! image that no segment maps (an idle image's, or an active image's page nobody has
//! faulted since its segments let it go), and a mount-cache page.
//!
//! Such a page has no reverse map, and needs none: nobody maps it. Its references are
//! the only sign of a user, and every one of them is taken under its image's lock (a
//! fault's [`lookpage`](crate::image::Image::lookpage), a loader's page, which is
//! cached at ref 1 and loading); a mount-cache page is used only under its image's lock
//! (reads and writes copy under it) and sits at ref 0 otherwise. So the move is:
//!
//! 1. the image is found by the page's owner serial, one table shard's lock at a time
//!    and with no image lock held (the table/image protocol of `cache.rs`: never a table
//!    lock and an image lock at once here);
//! 2. a fresh page is allocated with no lock held (`migrate.rs`);
//! 3. under the image lock alone, the page must still be the image's with the same frame,
//!    not lent, not loading and at ref 0 (else [`Unmovable::Held`], or
//!    [`Unmovable::SegmentMapped`] for an executable image's page at ref > 0: an attached
//!    segment maps it, and segments keep no list of their mappers); the bytes are copied
//!    and the two pages exchange frames, as an object page's move does. No translation
//!    exists to invalidate.
//!
//! The page keeps its index, so the chains, the counts (`refs`, `pgref`) and a
//! mount-cache page's valid range are untouched.

use crate::frame::Frame;
use crate::image::{ExecImage, Image, ImageKind};
use crate::mcache::McacheImage;
use crate::page::PageIndex;
use crate::sync::Arc;
use crate::table::SHARDS;
use crate::vm::VmState;

use super::migrate::Unmovable;

/// The image a cached page belongs to, as its owner serial says (re-checked under the
/// image lock).
#[derive(Clone)]
pub(super) enum CachedOwner {
    Exec(Arc<ExecImage>),
    Mount(Arc<McacheImage>),
}

impl CachedOwner {
    /// The image's serial (its pages' owner).
    pub(super) fn serial(&self) -> u64 {
        match self {
            Self::Exec(image) => image.serial,
            Self::Mount(image) => image.serial,
        }
    }
}

impl VmState {
    /// The image (executable or mount-cache) whose serial is `serial`, if the table holds
    /// it. Each shard is searched under its own lock alone, and no image lock is taken.
    pub(super) fn cached_owner(&self, serial: u64) -> Option<CachedOwner> {
        for shard in 0..SHARDS {
            let table = self.table.lock_shard(shard);
            let exec = table.images().find(|image| image.serial == serial).cloned();
            let found = exec.map(CachedOwner::Exec).or_else(|| {
                let file = table.files().find(|image| image.serial == serial).cloned();
                file.map(CachedOwner::Mount)
            });
            drop(table);
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// `vacate`'s check of a cached page: whether it could move now (under its image's
    /// lock, changing nothing). A page that left the image since its owner was read is
    /// fine: the move phase finds it again (free, or owned by someone else).
    pub(super) fn cached_movable(
        &self,
        frame: Frame,
        page: PageIndex,
        owner: &CachedOwner,
    ) -> Result<(), Unmovable> {
        match owner {
            CachedOwner::Exec(image) => {
                let _state = image.state.lock();
                self.cached_state(image, frame, page, Unmovable::SegmentMapped)
                    .or_else(not_ours)
            }
            CachedOwner::Mount(image) => {
                let _state = image.state.lock();
                self.cached_state(image, frame, page, Unmovable::Held)
                    .or_else(not_ours)
            }
        }
    }

    /// Step 3 of the module's move: moves `page` (at `frame`) of `owner`'s chains into
    /// `fresh`'s frame, and gives `fresh` the old one.
    pub(super) fn move_cached_locked(
        &self,
        frame: Frame,
        page: PageIndex,
        fresh: PageIndex,
        owner: &CachedOwner,
    ) -> Result<(), Unmovable> {
        match owner {
            CachedOwner::Exec(image) => {
                let state = image.state.lock();
                self.cached_state(image, frame, page, Unmovable::SegmentMapped)?;
                // vm-rule(migrate-cached-under-image-lock): a fault takes its reference to
                // a cached page under the image lock (`lookpage`) and reads its frame after:
                // held from the check at ref 0 to the exchange, a fault's reference comes
                // before the check (which refuses) or after the exchange (the fault reads
                // the new frame), so no fault maps the old frame (loom model 26).
                self.exchange_cached(frame, page, fresh);
                drop(state);
            }
            CachedOwner::Mount(image) => {
                let _state = image.state.lock();
                self.cached_state(image, frame, page, Unmovable::Held)?;
                self.exchange_cached(frame, page, fresh);
            }
        }
        Ok(())
    }

    /// Whether `page` is still `image`'s at `frame` and nobody uses it. `Busy`: it is no
    /// longer the image's page there; `referenced` is the reason for a page someone holds.
    /// Called under the image lock, which every reference of a cached page is taken under.
    fn cached_state<K: ImageKind>(
        &self,
        image: &Image<K>,
        frame: Frame,
        page: PageIndex,
        referenced: Unmovable,
    ) -> Result<(), Unmovable> {
        let pool = &self.pool;
        if pool.owner(page) != image.serial || pool.frame(page) != frame {
            return Err(Unmovable::Busy);
        }
        if pool.loans(page) != 0 {
            return Err(Unmovable::Lent);
        }
        if pool.is_loading(page) {
            // Its loader holds it and is writing its frame.
            return Err(Unmovable::Held);
        }
        if pool.refs(page) != 0 {
            return Err(referenced);
        }
        Ok(())
    }

    /// Copies the bytes of `page` (at `frame`) into `fresh`'s frame and exchanges the two
    /// pages' frames. Under the image lock, after [`cached_state`](Self::cached_state).
    fn exchange_cached(&self, frame: Frame, page: PageIndex, fresh: PageIndex) {
        self.frames.copy(frame, self.pool.frame(fresh));
        self.pool.exchange_frames(page, fresh);
    }
}

/// The check's view of a page that changed owner since it was read: not a failure.
fn not_ours(reason: Unmovable) -> Result<(), Unmovable> {
    match reason {
        Unmovable::Busy => Ok(()),
        reason => Err(reason),
    }
}
