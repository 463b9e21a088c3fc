//! The image cache: the table of images by identity, attach, put, the idle list and
//! reclaim.
//!
//! Lock order (outermost first): reclaim lock → image lock → table lock. The free-list lock
//! is a leaf under any of them. The table also holds the mount cache's map (`mcache/`).
//! Attach never holds the table lock and an image lock at once.
//! No lock is held while a frame is allocated. Files are never closed here at all: a
//! channel a put lets go of parks its file (`channel.rs`; the park lock is a leaf), and the
//! kernel closes it later where it holds no lock of its own. That includes a channel
//! reclaim's put lets go of, on whatever thread reclaims (a fault's, under the kernel's
//! process segment lock).
//!
//! The protocol follows 9front's 2025 image locking:
//! - attach takes its reference under the table lock (so a concurrent put sees it when it
//!   re-checks), releases the table lock, then locks the image to re-attach a channel;
//! - put, under the image lock, drops the channel when `refs` falls to `pgref` and puts the
//!   image on the idle list; when `refs` falls to 0 it releases the image lock, takes the
//!   table lock and unlinks the image only if `refs` is still 0;
//! - reclaim takes a reference the way attach does, so an image never goes away under it.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use core::hash::{BuildHasherDefault, Hasher};

use hashbrown::HashMap;

use crate::channel::ImageChannel;
use crate::file::{FileIdentity, ImageFile};
use crate::frame::AllocSite;
use crate::image::{ExecImage, ExecState, ImageState};
use crate::mcache::{CacheKey, McacheImage};
use crate::page::NO_PAGE;
use crate::sync::{Arc, MutexGuard, Ordering};
use crate::vm::{ImageStatus, VmError, VmState};

/// A small multiplicative hasher (hashbrown without default features has none). Identities
/// come from the kernel's own channels, so hash flooding is not a concern here.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl IdentityHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for IdentityHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.mix(u64::from(*byte));
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.mix(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// An image on the idle list, stamped with when it became idle.
pub(crate) struct IdleEntry {
    pub(crate) seq: u64,
    pub(crate) image: Arc<ExecImage>,
}

/// What the table lock protects.
pub(crate) struct ImageTable {
    /// Every image, by identity: at most one per identity.
    pub(crate) map: HashMap<FileIdentity, Arc<ExecImage>, BuildHasherDefault<IdentityHasher>>,
    /// Images with `refs == pgref > 0`, least recently used first (sorted by `seq`). Its
    /// capacity is kept at least `map.len()`, so making an image idle never allocates.
    pub(crate) idle: VecDeque<IdleEntry>,
    next_idle_seq: u64,
    /// The mount cache's files, by identity without the version (`mcache/`). Never an
    /// image of `map`'s.
    pub(crate) mcache: HashMap<CacheKey, Arc<McacheImage>, BuildHasherDefault<IdentityHasher>>,
}

impl ImageTable {
    pub(crate) fn new() -> Self {
        Self {
            map: HashMap::default(),
            idle: VecDeque::new(),
            next_idle_seq: 0,
            mcache: HashMap::default(),
        }
    }

    fn idle_position(&self, serial: u64) -> Option<usize> {
        self.idle
            .iter()
            .position(|entry| entry.image.serial == serial)
    }

    /// Finds the image of `identity` and takes a reference to it; it is no longer idle.
    fn find_and_ref(&mut self, identity: &FileIdentity) -> Option<Arc<ExecImage>> {
        let image = self.map.get(identity)?.clone();
        image.refs.fetch_add(1, Ordering::AcqRel);
        if let Some(position) = self.idle_position(image.serial) {
            self.idle.remove(position);
        }
        Some(image)
    }

    /// Puts an image at the back of the idle list unless it is already on it (a reclaim's
    /// short reference does not make an image more recently used).
    fn make_idle(&mut self, image: &Arc<ExecImage>) {
        if self.idle_position(image.serial).is_some() {
            return;
        }
        let seq = self.next_idle_seq;
        self.next_idle_seq += 1;
        self.idle.push_back(IdleEntry {
            seq,
            image: image.clone(),
        });
    }

    /// Removes `image` (this very one, by serial) from the table and the idle list. The
    /// removed references are returned so the caller drops them after the lock.
    fn unlink(&mut self, image: &ExecImage) -> Option<(Arc<ExecImage>, Option<IdleEntry>)> {
        let linked = self.map.get(&image.identity)?;
        if linked.serial != image.serial {
            return None;
        }
        let removed = self.map.remove(&image.identity)?;
        let idle = self
            .idle_position(image.serial)
            .and_then(|position| self.idle.remove(position));
        Some((removed, idle))
    }

    /// The first idle image stamped at or after `seq`, with a new reference.
    fn next_idle_from(&self, seq: u64) -> Option<(Arc<ExecImage>, u64)> {
        let entry = self.idle.iter().find(|entry| entry.seq >= seq)?;
        entry.image.refs.fetch_add(1, Ordering::AcqRel);
        Some((entry.image.clone(), entry.seq))
    }

    /// The image with the smallest serial at or after `serial`, with a new reference.
    fn next_by_serial_from(&self, serial: u64) -> Option<Arc<ExecImage>> {
        let image = self
            .map
            .values()
            .filter(|image| image.serial >= serial)
            .min_by_key(|image| image.serial)?;
        image.refs.fetch_add(1, Ordering::AcqRel);
        Some(image.clone())
    }
}

/// What a put leaves for its caller to do once every lock is released.
#[must_use]
#[derive(Default)]
pub(crate) struct PutOutcome {
    /// The dropped channel; dropping it closes the file.
    chan: Option<Arc<ImageChannel>>,
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
    /// See [`Vm::attach`](crate::Vm::attach).
    pub(crate) fn attach(&self, file: Box<dyn ImageFile>) -> Result<Arc<ExecImage>, VmError> {
        let identity = file.identity();
        // Make the channel, with its parking slot, before any lock. Dropping it (on an
        // error, or when the image has a channel already) parks the file for the kernel to
        // close. Failing here, the file is not handed over yet: close it on the caller's
        // thread (`ImageFile`'s contract).
        if let Err(err) = self.admit(AllocSite::Channel) {
            file.close();
            return Err(err.into());
        }
        let chan = match ImageChannel::new(file, &self.parked) {
            // No memory for the box: dropping the channel parks its file in its slot.
            Ok(chan) => Arc::try_new(chan).map_err(|_| VmError::NoMemory)?,
            Err((err, file)) => {
                file.close();
                return Err(err.into());
            }
        };
        let key = CacheKey::of(&identity);

        // The image and, taken from the mount cache in the same critical section, the file's
        // mount-cache entry: from now on the image caches the file (no double caching).
        // A new image, allocated with no lock held on an earlier pass.
        let mut fresh: Option<Arc<ExecImage>> = None;
        // The last pass found the table full and its reclaim freed nothing.
        let mut reclaimed_nothing = false;
        let (image, forgotten) = loop {
            let mut table = self.table.lock();
            // Every pass searches first: after a reclaim, or while this attach allocated,
            // another attach may have inserted the identity (no duplicates, and no
            // "table full" while the file's image is in it).
            if let Some(image) = table.find_and_ref(&identity) {
                let forgotten = table.mcache.remove(&key);
                drop(table);
                self.counters.attach_hits.fetch_add(1, Ordering::Relaxed);
                break (image, forgotten);
            }
            if table.map.len() >= self.config.max_images as usize {
                drop(table);
                if reclaimed_nothing {
                    return Err(VmError::ImageTableFull);
                }
                // vm-rule(attach-search-after-reclaim): search again after reclaiming, even
                // when it freed nothing; another attach may have inserted the identity.
                reclaimed_nothing = !self.free_one_idle_image();
                continue;
            }
            reclaimed_nothing = false;
            let Some(new) = fresh.take() else {
                drop(table);
                self.admit(AllocSite::Image)?;
                let image = ExecImage::new(identity, self.serial()).ok_or(VmError::NoMemory)?;
                fresh = Some(Arc::try_new(image).map_err(|_| VmError::NoMemory)?);
                continue;
            };
            // Keep room for every image on the idle list, so put never allocates.
            let idle_room = (table.map.len() + 1).saturating_sub(table.idle.len());
            if table.map.try_reserve(1).is_err() || table.idle.try_reserve(idle_room).is_err() {
                // Unlock before `chan` is dropped (and its file parked) on the way out.
                drop(table);
                return Err(VmError::NoMemory);
            }
            new.refs.store(1, Ordering::Release);
            table.map.insert(identity, new.clone());
            let forgotten = table.mcache.remove(&key);
            drop(table);
            self.counters.attach_misses.fetch_add(1, Ordering::Relaxed);
            break (new, forgotten);
        };
        if let Some(forgotten) = forgotten {
            self.mcache_retire(&forgotten);
        }

        // Re-attach the channel under the image lock alone.
        let mut state = image.state.lock();
        let unused = if state.kind.chan.is_none() {
            state.kind.chan = Some(chan);
            None
        } else {
            Some(chan)
        };
        drop(state);
        drop(unused);
        Ok(image)
    }

    /// See [`Vm::image_status`](crate::Vm::image_status). The image is looked up and its
    /// idleness read under the table lock; its counts and channel under its own lock,
    /// taken after the table lock is released (never both: attach's rule). The clone of
    /// the `Arc` only keeps the memory; it is no reference in `refs`' sense.
    pub(crate) fn image_status(&self, identity: &FileIdentity) -> Option<ImageStatus> {
        let (image, idle) = {
            let table = self.table.lock();
            let image = table.map.get(identity)?.clone();
            let idle = table.idle_position(image.serial).is_some();
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
            let mut table = self.table.lock();
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
            let mut table = self.table.lock();
            // Re-check under the table lock, where attach takes its references.
            if image.refs.load(Ordering::Acquire) == pgref {
                table.make_idle(image);
                outcome.trim = table.idle.len() > self.config.max_idle_images as usize;
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

    /// See [`Vm::reclaim`](crate::Vm::reclaim).
    pub(crate) fn reclaim(&self, target: usize) -> usize {
        if target == 0 {
            return 0;
        }
        let reclaiming = self.reclaim_lock.lock();
        self.counters.reclaim_runs.fetch_add(1, Ordering::Relaxed);
        let mut freed = 0;
        let mut seq = 0;
        while freed < target {
            let Some((image, at)) = self.table.lock().next_idle_from(seq) else {
                break;
            };
            seq = at + 1;
            let done = self.reclaim_image(image, target - freed);
            freed += done.taken;
        }
        if freed < target {
            freed += self.reclaim_mount_cache(target - freed);
        }
        let mut serial = 0;
        while freed < target {
            let Some(image) = self.table.lock().next_by_serial_from(serial) else {
                break;
            };
            serial = image.serial + 1;
            let done = self.reclaim_image(image, target - freed);
            freed += done.taken;
        }
        drop(reclaiming);
        freed
    }

    /// Frees the pages (and so the images) of the least recently used idle images until the
    /// idle list is within its limit.
    fn trim_idle(&self) {
        let reclaiming = self.reclaim_lock.lock();
        let mut seq = 0;
        loop {
            let next = {
                let table = self.table.lock();
                if table.idle.len() <= self.config.max_idle_images as usize {
                    None
                } else {
                    table.next_idle_from(seq)
                }
            };
            let Some((image, at)) = next else {
                break;
            };
            seq = at + 1;
            let _ = self.reclaim_image(image, usize::MAX);
        }
        drop(reclaiming);
    }

    /// Frees the least recently used idle image that can be freed, for an attach that found
    /// the table full. Returns whether one went away.
    fn free_one_idle_image(&self) -> bool {
        let _reclaiming = self.reclaim_lock.lock();
        self.counters.reclaim_runs.fetch_add(1, Ordering::Relaxed);
        let mut seq = 0;
        loop {
            let Some((image, at)) = self.table.lock().next_idle_from(seq) else {
                return false;
            };
            seq = at + 1;
            let done = self.reclaim_image(image, usize::MAX);
            if done.freed {
                return true;
            }
        }
    }
}
