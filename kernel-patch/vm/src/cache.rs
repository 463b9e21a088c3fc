//! The image cache: attach, put, the idle lists and reclaim, over the sharded table of
//! images by identity (`table.rs`).
//!
//! Lock order (outermost first): reclaim lock → image lock → table lock, where "the table
//! lock" is the lock of the shard of the image at hand; no path holds two shards' locks.
//! The free-list lock is a leaf under any of them. The table also holds the mount cache's
//! map (`mcache/`). Attach never holds the table lock and an image lock at once.
//! No lock is held while a frame is allocated. Files are never closed here at all: a
//! channel a put lets go of parks its file (`channel.rs`; the park lock is a leaf), and the
//! kernel closes it later where it holds no lock of its own. That includes a channel
//! reclaim's put lets go of, on whatever thread reclaims (a fault's, under the kernel's
//! process segment lock).
//!
//! The protocol follows 9front's 2025 image locking:
//! - attach takes its reference under the table lock (so a concurrent put sees it when it
//!   re-checks), releases the table lock, then locks the image to re-attach a channel;
//!   or, for the image its CPU attached last (`hot.rs`), under the image lock alone while
//!   the image has its channel (then every put that could make it idle or free it decides
//!   under that lock);
//! - put, under the image lock, drops the channel when `refs` falls to `pgref` and puts the
//!   image on the idle list; when `refs` falls to 0 it releases the image lock, takes the
//!   table lock and unlinks the image only if `refs` is still 0;
//! - reclaim takes a reference the way attach does, so an image never goes away under it.

use alloc::boxed::Box;

use crate::channel::{PendingFile, QueueId};
use crate::file::PathKey;
use crate::file::{FileIdentity, ImageFile};
use crate::frame::AllocSite;
use crate::image::{ExecChannel, ExecImage, ExecState, ImageState};
use crate::page::NO_PAGE;
use crate::sync::{Arc, MutexGuard, Ordering};
use crate::table::{LinkError, SHARDS};
use crate::vm::{ImageStatus, Vm, VmError, VmState};

/// What a put leaves for its caller to do once every lock is released.
#[must_use]
#[derive(Default)]
pub(crate) struct PutOutcome {
    /// The dropped channel; dropping it closes the file.
    chan: Option<Arc<ExecChannel>>,
    /// The idle list grew past its limit.
    trim: bool,
    /// The image was unlinked from the table.
    freed: bool,
}

/// What reclaiming one image did.
#[must_use]
pub(crate) struct ImageReclaim {
    /// Pages taken from its chains and freed.
    pub(crate) taken: usize,
    /// The image was unlinked from the table.
    pub(crate) freed: bool,
}

impl VmState {
    /// See [`Vm::attach_on`](crate::Vm::attach_on).
    /// `vm` is a handle of this instance: the image's channel keeps a clone of it when this
    /// attach makes the channel. `queue` is where the file parks if the image has a channel
    /// already (the caller's CPU's queue, or the shared one). Returns the image (with the
    /// reference taken), which has its channel when this returns.
    pub(crate) fn attach(
        &self,
        vm: &Vm,
        file: Box<dyn ImageFile>,
        queue: QueueId,
    ) -> Result<Arc<ExecImage>, VmError> {
        let identity = file.identity();
        let key = PathKey::of(&identity);
        // Reserve the file's parking slot before any lock (in the caller's CPU's queue, so
        // attaches on different CPUs share no park lock, and the CPU that parks the file
        // closes it). Dropping the pending file (on an error, or when the image has a
        // channel already) parks it for the kernel to close. Failing here, the file is not
        // handed over yet: close it on the caller's thread (`ImageFile`'s contract).
        if let Err(err) = self.admit(AllocSite::Channel) {
            file.close();
            return Err(err.into());
        }
        let pending = match PendingFile::in_queue(file, &self.parked, queue) {
            Ok(pending) => pending,
            Err((err, file)) => {
                file.close();
                return Err(err.into());
            }
        };

        // The image this CPU attached last, if it is this file's and active: its reference
        // taken under the image lock alone (`hot.rs`). No mount-cache entry of these
        // contents can exist while the image is linked (an open finds the image and stays
        // uncached; a relabel to its version drops the entry), so there is none to take; an
        // entry of another version of the file stays (the table's path retires it).
        if let Some(image) = self.hot.get(queue, &identity) {
            let state = image.state.lock();
            // vm-rule(hot-attach-needs-channel): only while the image has its channel
            // (`refs > pgref`, decided under this lock) may a reference be taken outside the
            // table lock; without it the image may be idle or unlinked.
            if state.kind.chan.is_some() {
                image.refs.fetch_add(1, Ordering::AcqRel);
                drop(state);
                self.attach_counts[queue.index()]
                    .hits
                    .fetch_add(1, Ordering::Relaxed);
                drop(pending);
                return Ok(image);
            }
            drop(state);
        }

        // The image and, taken from the mount cache in the same critical section, the file's
        // mount-cache entry: from now on the image caches the file (no double caching).
        // A new image, allocated with no lock held on an earlier pass.
        let mut fresh: Option<Arc<ExecImage>> = None;
        // The last pass found the table full and its reclaim freed nothing.
        let mut reclaimed_nothing = false;
        let max_images = self.config.max_images;
        let (image, forgotten) = loop {
            let mut table = self.table.lock(&identity);
            // Every pass searches first: after a reclaim, or while this attach allocated,
            // another attach may have inserted the identity (no duplicates, and no
            // "table full" while the file's image is in it).
            if let Some(image) = table.find_and_ref(&identity) {
                let forgotten = table.remove_file(&key);
                drop(table);
                self.attach_counts[queue.index()]
                    .hits
                    .fetch_add(1, Ordering::Relaxed);
                break (image, forgotten);
            }
            // A new image takes one of the table's `max_images` as it is linked, under the
            // shard's lock: that is where "full" is decided once an image is ready.
            let linked = match fresh.take() {
                None if table.images_full(max_images) => Err(LinkError::Full),
                None => {
                    drop(table);
                    reclaimed_nothing = false;
                    self.admit(AllocSite::Image)?;
                    let image = ExecImage::new(identity, self.serial()).ok_or(VmError::NoMemory)?;
                    fresh = Some(Arc::try_new(image).map_err(|_| VmError::NoMemory)?);
                    continue;
                }
                Some(new) => {
                    new.refs.store(1, Ordering::Release);
                    match table.insert_image(new.clone(), max_images) {
                        Ok(()) => Ok(new),
                        Err(err) => {
                            new.refs.store(0, Ordering::Release);
                            fresh = Some(new);
                            Err(err)
                        }
                    }
                }
            };
            match linked {
                Ok(new) => {
                    let forgotten = table.remove_file(&key);
                    drop(table);
                    self.attach_counts[queue.index()]
                        .misses
                        .fetch_add(1, Ordering::Relaxed);
                    break (new, forgotten);
                }
                Err(LinkError::NoMemory) => {
                    // Unlock before `chan` is dropped (and its file parked) on the way out.
                    drop(table);
                    return Err(VmError::NoMemory);
                }
                Err(LinkError::Full) => {
                    drop(table);
                    if reclaimed_nothing {
                        return Err(VmError::ImageTableFull);
                    }
                    // vm-rule(attach-search-after-reclaim): search again after reclaiming, even
                    // when it freed nothing; another attach may have inserted the identity.
                    reclaimed_nothing = !self.free_one_idle_image();
                    continue;
                }
            }
        };
        if let Some(forgotten) = forgotten {
            self.mcache_retire(&forgotten);
        }

        // Re-attach the channel under the image lock alone. An image that has one already
        // (the hit path of a running program) needs no new channel: the file is parked.
        // Only looked at: the reference taken keeps the channel (`refs > pgref`).
        let held = image.state.lock().kind.chan.is_some();
        if held {
            drop(pending);
            drop(self.hot.remember(queue, &image));
            return Ok(image);
        }
        // The channel's box, allocated with no lock held.
        let made = ExecChannel {
            file: pending.into_channel(&self.parked),
            vm: vm.clone(),
        };
        let chan = match Arc::try_new(made) {
            Ok(chan) => chan,
            Err(chan) => {
                // Parks its file. Our reference goes as any other (unlinking a new image).
                drop(chan);
                self.put(&image);
                return Err(VmError::NoMemory);
            }
        };
        let mut state = image.state.lock();
        // Another attach may have made the image's channel meanwhile: ours is then unused.
        let unused = match &state.kind.chan {
            Some(_) => Some(chan),
            None => {
                state.kind.chan = Some(chan);
                None
            }
        };
        drop(state);
        drop(unused);
        drop(self.hot.remember(queue, &image));
        Ok(image)
    }

    /// See [`Vm::image_status`](crate::Vm::image_status). The image is looked up and its
    /// idleness read under the table lock; its counts and channel under its own lock,
    /// taken after the table lock is released (never both: attach's rule). The clone of
    /// the `Arc` only keeps the memory; it is no reference in `refs`' sense.
    pub(crate) fn image_status(&self, identity: &FileIdentity) -> Option<ImageStatus> {
        let (image, idle) = {
            let table = self.table.lock(identity);
            let image = table.image(identity)?.clone();
            let idle = table.is_idle(&image);
            (image, idle)
        };
        let state = image.state.lock();
        let status = ImageStatus {
            refs: image.refs.load(Ordering::Acquire),
            pgref: image.pgref.load(Ordering::Relaxed),
            has_channel: state.kind.chan.is_some(),
            idle,
        };
        drop(state);
        Some(status)
    }

    /// Drops one reference to `image` (Plan 9's `putimage`), then parks a dropped channel's
    /// file for the kernel to close and trims the idle list, with no image or table lock
    /// held. Never closes a file: the caller may hold the kernel's locks.
    pub(crate) fn put(&self, image: &Arc<ExecImage>) {
        let state = image.state.lock();
        let outcome = self.put_locked(image, state);
        self.finish_put(outcome);
    }

    /// The locked part of put: called with the image locked; unlocks it.
    pub(crate) fn put_locked(
        &self,
        image: &Arc<ExecImage>,
        mut state: MutexGuard<'_, ImageState<ExecState>>,
    ) -> PutOutcome {
        let pgref = image.pgref.load(Ordering::Relaxed);
        let before = image.refs.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "image reference count underflow");
        let refs = before.wrapping_sub(1);
        let mut outcome = PutOutcome::default();
        if refs == pgref {
            // vm-rule(pgref-drops-channel): only cached pages refer to the image now, so the
            // file is not needed: the channel goes (`ref > pgref` exactly while it is held).
            outcome.chan = state.kind.chan.take();
        }
        if refs == 0 {
            drop(state);
            let mut table = self.table.lock(&image.identity);
            // vm-rule(put-rechecks-ref): an attach may have found the image and taken a
            // reference after we released the image lock; unlink only if `ref` is still 0.
            let removed = if image.refs.load(Ordering::Acquire) == 0 {
                table.unlink(image)
            } else {
                None
            };
            drop(table);
            outcome.freed = removed.is_some();
            drop(removed);
        } else if refs == pgref {
            let mut table = self.table.lock(&image.identity);
            // Re-check under the table lock, where attach takes its references.
            if image.refs.load(Ordering::Acquire) == pgref {
                table.make_idle(image);
                outcome.trim = self.idle_over_limit();
            }
            drop(table);
            drop(state);
        }
        outcome
    }

    pub(crate) fn finish_put(&self, outcome: PutOutcome) {
        // Parks the file if this was the channel's last reference.
        drop(outcome.chan);
        if outcome.trim {
            self.trim_idle();
        }
    }

    /// Takes up to `want` ref-0 pages from `image` (whose reference the caller took and
    /// hands over), puts that reference, and frees the pages after the image lock is
    /// released. A channel the put dropped (the image's last segment went away while reclaim
    /// held its short reference) is counted and its file parked: reclaim runs on a fault's
    /// thread too, under the kernel's process segment lock, where no close may run.
    pub(crate) fn reclaim_image(&self, image: Arc<ExecImage>, want: usize) -> ImageReclaim {
        let mut list = NO_PAGE;
        let mut state = image.state.lock();
        let taken = image.reclaim_pages(&mut state, &self.pool, want, &mut list);
        let outcome = self.put_locked(&image, state);
        drop(image);
        if outcome.chan.is_some() {
            self.counters
                .reclaim_channel_drops
                .fetch_add(1, Ordering::Relaxed);
        }
        // Parks the file if this was the channel's last reference.
        drop(outcome.chan);
        self.pool.free_list_of(list);
        self.counters
            .reclaimed_pages
            .fetch_add(taken as u64, Ordering::Relaxed);
        // Never trim from inside reclaim: the caller holds the reclaim lock.
        ImageReclaim {
            taken,
            freed: outcome.freed,
        }
    }

    /// Whether more images are idle than `max_idle_images` (all shards).
    fn idle_over_limit(&self) -> bool {
        self.table.counts.idle.load(Ordering::Relaxed) > self.config.max_idle_images
    }

    /// Where a pass over the idle lists ends: images made idle from now on (and those the
    /// pass moves behind it, [`pass_over`](crate::table::ShardGuard::pass_over)) are not
    /// its business.
    fn idle_pass_bound(&self) -> u64 {
        self.table.counts.idle_clock.load(Ordering::Relaxed)
    }

    /// Reclaims the least recently used idle image made idle before `bound` (up to `want`
    /// of its pages); `None` when there is none. An image that gave fewer pages than
    /// wanted and was not freed has only mapped pages left: it is moved behind `bound`, so
    /// each step of a pass is a constant number of shard locks, not a walk past the images
    /// it could not free. (One that gave all that was wanted keeps its place.)
    fn reclaim_oldest_idle(&self, bound: u64, want: usize) -> Option<ImageReclaim> {
        let (image, _) = self.table.oldest_idle(bound)?;
        // Only the memory, to find the image again; no reference in `refs`' sense.
        let kept = image.clone();
        let done = self.reclaim_image(image, want);
        if !done.freed && done.taken < want {
            self.table.lock(&kept.identity).pass_over(&kept);
        }
        Some(done)
    }

    /// See [`Vm::reclaim`](crate::Vm::reclaim).
    pub(crate) fn reclaim(&self, target: usize) -> usize {
        if target == 0 {
            return 0;
        }
        let reclaiming = self.reclaim_lock.lock();
        self.counters.reclaim_runs.fetch_add(1, Ordering::Relaxed);
        let mut freed = 0;
        let bound = self.idle_pass_bound();
        while freed < target {
            let Some(done) = self.reclaim_oldest_idle(bound, target - freed) else {
                break;
            };
            freed += done.taken;
        }
        if freed < target {
            freed += self.reclaim_mount_cache(target - freed);
        }
        // Then every image, active ones included, shard by shard and slot by slot.
        for shard in 0..SHARDS {
            let mut slot = 0;
            while freed < target {
                let next = self.table.lock_shard(shard).next_image_from(slot, |_| true);
                let Some((image, at)) = next else {
                    break;
                };
                slot = at + 1;
                let done = self.reclaim_image(image, target - freed);
                freed += done.taken;
            }
        }
        drop(reclaiming);
        freed
    }

    /// Frees the pages (and so the images) of the least recently used idle images until the
    /// idle list is within its limit.
    fn trim_idle(&self) {
        let reclaiming = self.reclaim_lock.lock();
        let bound = self.idle_pass_bound();
        while self.idle_over_limit() {
            if self.reclaim_oldest_idle(bound, usize::MAX).is_none() {
                break;
            }
        }
        drop(reclaiming);
    }

    /// Frees the least recently used idle image that can be freed, for an attach that found
    /// the table full. Returns whether one went away.
    fn free_one_idle_image(&self) -> bool {
        let _reclaiming = self.reclaim_lock.lock();
        self.counters.reclaim_runs.fetch_add(1, Ordering::Relaxed);
        let bound = self.idle_pass_bound();
        loop {
            match self.reclaim_oldest_idle(bound, usize::MAX) {
                None => return false,
                Some(done) if done.freed => return true,
                Some(_) => {}
            }
        }
    }
}
