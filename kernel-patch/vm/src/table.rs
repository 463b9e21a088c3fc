//! The image table, in shards: each shard a spin lock over its executable images (by
//! identity), its idle list, and its mount-cache files (by key) in least-recently-used
//! order. The protocol (`cache.rs`) is the one of a single table, applied to the shard of
//! the identity at hand: "the table lock" is that shard's lock, and no thread ever holds two
//! shards' locks at once (the checker, which takes them all in order, excepted).
//!
//! A file's shard is chosen by its identity *without* the version (its mount-cache key), so
//! an executable image and the mount-cache file of the same file are always in one shard:
//! "an identity is never cached by both" is still decided under one lock.
//!
//! What spans shards is kept in relaxed atomics beside them ([`TableCounts`]): the number of
//! images (for `max_images`), of idle images (for `max_idle_images`), of mount-cache files
//! (for `max_files`), and the clock that stamps the idle list. A slot under a limit is
//! taken under the shard's lock with one `fetch_update`, so a limit is never exceeded; only
//! a miss, a put that makes an image idle and an open that makes a file touch them, never
//! an attach that finds its image active. Reclaim, which wants the least recently used idle
//! image or file of all, compares the fronts of the shards' lists, which each shard
//! publishes in an atomic as its lock is released when a front changed, and locks the one
//! shard it chose: a constant number of steps a choice.

use core::hash::{BuildHasherDefault, Hash, Hasher};
use core::ops::{Deref, DerefMut};

use hashbrown::HashMap;

use crate::file::FileIdentity;
use crate::file::PathKey;
use crate::image::ExecImage;
use crate::mcache::McacheImage;
use crate::slab_list::SlabList;
use crate::sync::{Arc, AtomicU32, AtomicU64, Mutex, MutexGuard, Ordering};

/// Shards of the table: a power of two. Loom's models run with two, so that two identities
/// can be in different shards and every interleaving of their locks is still explored.
pub(crate) const SHARDS: usize = if cfg!(loom) { 2 } else { 16 };

/// The images' one list: the idle list.
const IDLE: usize = 0;
/// The mount-cache files' lists: every file, and those that may have pages (a file joins it
/// when a touch finds it with pages, and leaves it when reclaim finds it without).
const BY_USE: usize = 0;
const WITH_PAGES: usize = 1;

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

type Hashed = BuildHasherDefault<IdentityHasher>;

/// The shard of a file, by its identity without the version.
pub(crate) fn shard_of(key: &PathKey) -> usize {
    let mut hasher = IdentityHasher::default();
    key.hash(&mut hasher);
    // The high bits: every word of the key has been multiplied into them.
    (hasher.finish() >> 48) as usize & (SHARDS - 1)
}

/// What one shard's lock protects.
pub(crate) struct ImageTable {
    /// Each image's slot in `images`, by identity: at most one image per identity.
    map: HashMap<FileIdentity, u32, Hashed>,
    /// The images; the list is the idle list (`refs == pgref > 0`), least recently used
    /// first, stamped from [`TableCounts::idle_clock`]. An image's slot is reserved when
    /// it is inserted, so making it idle never allocates.
    images: SlabList<Arc<ExecImage>>,
    /// Each mount-cache file's slot in `files`, by key. Never an image of `map`'s.
    file_slots: HashMap<PathKey, u32, Hashed>,
    /// The mount-cache files, on two lists, least recently used first, stamped with their
    /// last use (`VmState::use_clock`): every file ([`BY_USE`], eviction's order), and the
    /// files that may have pages ([`WITH_PAGES`], reclaim's order, so that reclaim never
    /// walks past files it emptied).
    files: SlabList<Arc<McacheImage>, 2>,
}

/// What spans the shards (see the module docs).
#[derive(Default)]
pub(crate) struct TableCounts {
    pub(crate) images: AtomicU32,
    pub(crate) idle: AtomicU32,
    pub(crate) files: AtomicU32,
    /// Stamps of the idle lists: an image made idle later has a larger stamp.
    pub(crate) idle_clock: AtomicU64,
}

/// One shard, alone on its cache lines so that two CPUs locking different shards do not
/// share one.
#[repr(align(128))]
struct Shard {
    lock: Mutex<ImageTable>,
    /// The stamps at the fronts of the shard's lists ([`NO_FRONT`] for an empty one):
    /// written under the lock when a front changes, read without it to choose the shard
    /// whose front is oldest, so a choice locks one shard, not all of them.
    fronts: [AtomicU64; LISTS],
}

/// The lists whose fronts a shard publishes: its idle list, and its mount-cache files'
/// two.
const LISTS: usize = 3;
const IDLE_FRONT: usize = 0;
const BY_USE_FRONT: usize = 1;
const WITH_PAGES_FRONT: usize = 2;
/// The front of an empty list.
const NO_FRONT: u64 = u64::MAX;

/// The sharded image table.
pub(crate) struct Table {
    shards: [Shard; SHARDS],
    pub(crate) counts: TableCounts,
}

/// A locked shard, with the counts its changes keep up to date.
pub(crate) struct ShardGuard<'a> {
    shard: MutexGuard<'a, ImageTable>,
    fronts: &'a [AtomicU64; LISTS],
    counts: &'a TableCounts,
}

impl Drop for ShardGuard<'_> {
    /// Publishes the fronts that changed, still under the lock (the guard's fields drop
    /// after this). A front that did not change is only read: an attach that finds its
    /// image active writes no shared line here.
    fn drop(&mut self) {
        let stamp = |front: Option<u64>| front.unwrap_or(NO_FRONT);
        let now = [
            stamp(self.shard.images.front(IDLE).map(|(_, _, at)| at)),
            stamp(self.shard.files.front(BY_USE).map(|(_, _, at)| at)),
            stamp(self.shard.files.front(WITH_PAGES).map(|(_, _, at)| at)),
        ];
        for (published, now) in self.fronts.iter().zip(now) {
            if published.load(Ordering::Relaxed) != now {
                published.store(now, Ordering::Relaxed);
            }
        }
    }
}

impl Deref for ShardGuard<'_> {
    type Target = ImageTable;

    fn deref(&self) -> &ImageTable {
        &self.shard
    }
}

impl DerefMut for ShardGuard<'_> {
    fn deref_mut(&mut self) -> &mut ImageTable {
        &mut self.shard
    }
}

impl Table {
    pub(crate) fn new() -> Self {
        Self {
            shards: core::array::from_fn(|_| Shard {
                lock: Mutex::new(ImageTable::new()),
                fronts: core::array::from_fn(|_| AtomicU64::new(NO_FRONT)),
            }),
            counts: TableCounts::default(),
        }
    }

    /// Locks shard `index`.
    pub(crate) fn lock_shard(&self, index: usize) -> ShardGuard<'_> {
        let shard = &self.shards[index];
        ShardGuard {
            shard: shard.lock.lock(),
            fronts: &shard.fronts,
            counts: &self.counts,
        }
    }

    /// Locks the shard of the file of `key`.
    pub(crate) fn lock_key(&self, key: &PathKey) -> ShardGuard<'_> {
        self.lock_shard(shard_of(key))
    }

    /// Locks the shard of `identity`'s file.
    pub(crate) fn lock(&self, identity: &FileIdentity) -> ShardGuard<'_> {
        self.lock_key(&PathKey::of(identity))
    }

    /// The shard whose list `list` (one of the `*_FRONT`s) has the oldest front, by the
    /// fronts the shards published, without a lock; `None` when every list is empty. The
    /// caller locks that shard and takes its front as it is then (another CPU may have
    /// changed it meanwhile: the choice is exact only when nothing runs concurrently).
    fn oldest_front(&self, list: usize) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for (index, shard) in self.shards.iter().enumerate() {
            let stamp = shard.fronts[list].load(Ordering::Relaxed);
            if stamp != NO_FRONT && best.is_none_or(|(oldest, _)| stamp < oldest) {
                best = Some((stamp, index));
            }
        }
        best.map(|(_, index)| index)
    }

    /// The least recently used idle image made idle before `bound`, with a new reference
    /// (taken under its shard's lock, as attach takes its own), and its stamp.
    pub(crate) fn oldest_idle(&self, bound: u64) -> Option<(Arc<ExecImage>, u64)> {
        if self.counts.idle.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let index = self.oldest_front(IDLE_FRONT)?;
        let shard = self.lock_shard(index);
        // The front may have changed since it was looked at; take the front as it is now.
        let (_, image, stamp) = shard.images.front(IDLE)?;
        if stamp >= bound {
            return None;
        }
        image.refs.fetch_add(1, Ordering::AcqRel);
        Some((image.clone(), stamp))
    }

    /// Every shard locked, in index order: a snapshot of the whole table for the checker.
    /// The only place two shard locks are held at once; no other thread ever holds two, so
    /// taking them in one order cannot deadlock.
    #[cfg(any(test, feature = "check"))]
    pub(crate) fn lock_all(&self) -> alloc::vec::Vec<ShardGuard<'_>> {
        (0..SHARDS).map(|index| self.lock_shard(index)).collect()
    }

    /// Some image of the table, for tests that break it on purpose.
    #[cfg(test)]
    pub(crate) fn any_image(&self) -> Option<Arc<ExecImage>> {
        (0..SHARDS).find_map(|index| self.lock_shard(index).images().next().cloned())
    }

    /// Some mount-cache file, for tests that break it on purpose.
    #[cfg(test)]
    pub(crate) fn any_file(&self) -> Option<Arc<McacheImage>> {
        (0..SHARDS).find_map(|index| self.lock_shard(index).files().next().cloned())
    }

    /// Removes the least recently used mount-cache file of all from its shard's map.
    pub(crate) fn evict_oldest_file(&self) -> Option<Arc<McacheImage>> {
        let index = self.oldest_front(BY_USE_FRONT)?;
        let mut shard = self.lock_shard(index);
        let key = PathKey::of(&shard.files.front(BY_USE)?.1.identity);
        shard.remove_file(&key)
    }

    /// The least recently used mount-cache file with pages, last used before `bound` (a
    /// memory-only clone: a file in the map keeps its map reference until it is retired).
    pub(crate) fn oldest_file_with_pages(&self, bound: u64) -> Option<Arc<McacheImage>> {
        let index = self.oldest_front(WITH_PAGES_FRONT)?;
        let shard = self.lock_shard(index);
        let (_, image, stamp) = shard.files.front(WITH_PAGES)?;
        (stamp < bound).then(|| image.clone())
    }
}

impl ImageTable {
    fn new() -> Self {
        Self {
            map: HashMap::default(),
            images: SlabList::new(),
            file_slots: HashMap::default(),
            files: SlabList::new(),
        }
    }

    /// The slot of `image`, this very one (by serial), if it is linked.
    fn slot_of(&self, image: &ExecImage) -> Option<u32> {
        let slot = *self.map.get(&image.identity)?;
        let linked = self.images.get(slot)?;
        (linked.serial == image.serial).then_some(slot)
    }

    /// The image of `identity`, without taking a reference.
    pub(crate) fn image(&self, identity: &FileIdentity) -> Option<&Arc<ExecImage>> {
        self.images.get(*self.map.get(identity)?)
    }

    pub(crate) fn contains_image(&self, identity: &FileIdentity) -> bool {
        self.map.contains_key(identity)
    }

    /// Every image of the shard.
    pub(crate) fn images(&self) -> impl Iterator<Item = &Arc<ExecImage>> {
        self.images.iter()
    }

    /// The images on the idle list, least recently used first, with their stamps.
    #[cfg(any(test, feature = "check"))]
    pub(crate) fn idle_list(&self) -> impl Iterator<Item = (&Arc<ExecImage>, u64)> {
        self.images.listed(IDLE)
    }

    /// Images in the shard, and those of them on its idle list.
    pub(crate) fn image_count(&self) -> u32 {
        self.images.len()
    }

    pub(crate) fn idle_count(&self) -> u32 {
        self.images.listed_len(IDLE)
    }

    /// Whether `image` is on the idle list.
    pub(crate) fn is_idle(&self, image: &ExecImage) -> bool {
        self.slot_of(image)
            .is_some_and(|slot| self.images.is_listed(IDLE, slot))
    }

    /// The first image at slot `from` or after, with a new reference, and its slot: a pass
    /// over every image of the shard, the lock released between steps.
    pub(crate) fn next_image_from(
        &self,
        from: u32,
        wanted: impl Fn(&ExecImage) -> bool,
    ) -> Option<(Arc<ExecImage>, u32)> {
        let mut at = from;
        loop {
            let (slot, image) = self.images.next_from(at)?;
            if wanted(image) {
                image.refs.fetch_add(1, Ordering::AcqRel);
                return Some((image.clone(), slot));
            }
            at = slot + 1;
        }
    }

    /// The map's entries, each with the image its slot holds (`None`: a dangling slot).
    #[cfg(any(test, feature = "check"))]
    pub(crate) fn keyed_images(
        &self,
    ) -> impl Iterator<Item = (&FileIdentity, Option<&Arc<ExecImage>>)> {
        self.map
            .iter()
            .map(|(identity, slot)| (identity, self.images.get(*slot)))
    }

    /// The mount-cache map's entries, each with the file its slot holds.
    #[cfg(any(test, feature = "check"))]
    pub(crate) fn keyed_files(
        &self,
    ) -> impl Iterator<Item = (&PathKey, Option<&Arc<McacheImage>>)> {
        self.file_slots
            .iter()
            .map(|(key, slot)| (key, self.files.get(*slot)))
    }

    /// Entries of the two maps (each should equal its slab's count).
    #[cfg(any(test, feature = "check"))]
    pub(crate) fn map_lens(&self) -> (usize, usize) {
        (self.map.len(), self.file_slots.len())
    }

    /// The mount-cache file of `key`.
    pub(crate) fn file(&self, key: &PathKey) -> Option<&Arc<McacheImage>> {
        self.files.get(*self.file_slots.get(key)?)
    }

    /// Every mount-cache file of the shard.
    pub(crate) fn files(&self) -> impl Iterator<Item = &Arc<McacheImage>> {
        self.files.iter()
    }

    /// The mount-cache files in least-recently-used order, with their stamps: on
    /// eviction's list (all of them) and on reclaim's.
    #[cfg(any(test, feature = "check"))]
    pub(crate) fn file_orders(&self) -> [impl Iterator<Item = (&Arc<McacheImage>, u64)>; 2] {
        [self.files.listed(BY_USE), self.files.listed(WITH_PAGES)]
    }

    pub(crate) fn file_count(&self) -> u32 {
        self.files.len()
    }

    /// The first mount-cache file at slot `from` or after that `wanted` picks, with its key
    /// and slot.
    pub(crate) fn next_file_from(
        &self,
        from: u32,
        wanted: impl Fn(&PathKey) -> bool,
    ) -> Option<(PathKey, u32)> {
        let mut at = from;
        loop {
            let (slot, image) = self.files.next_from(at)?;
            let key = PathKey::of(&image.identity);
            if wanted(&key) {
                return Some((key, slot));
            }
            at = slot + 1;
        }
    }
}

/// Why an image or a file could not be linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkError {
    /// No memory for its slot.
    NoMemory,
    /// The table (or the mount cache) is at its limit.
    Full,
}

/// Takes one unit of `count` if it is below `limit`.
fn take_slot(count: &AtomicU32, limit: u32) -> bool {
    count
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
            (now < limit).then_some(now + 1)
        })
        .is_ok()
}

impl ShardGuard<'_> {
    /// Finds the image of `identity` and takes a reference to it; it is no longer idle.
    pub(crate) fn find_and_ref(&mut self, identity: &FileIdentity) -> Option<Arc<ExecImage>> {
        let slot = *self.shard.map.get(identity)?;
        let image = self.shard.images.get(slot)?.clone();
        image.refs.fetch_add(1, Ordering::AcqRel);
        if self.shard.images.unlist(IDLE, slot) {
            self.counts.idle.fetch_sub(1, Ordering::Relaxed);
        }
        Some(image)
    }

    /// Whether the table is at `max_images` images (all shards).
    pub(crate) fn images_full(&self, max_images: u32) -> bool {
        self.counts.images.load(Ordering::Acquire) >= max_images
    }

    /// Links `image` (refs already 1) under its identity, where no image is: its slot is
    /// allocated here, and one of the `max_images` taken.
    pub(crate) fn insert_image(
        &mut self,
        image: Arc<ExecImage>,
        max_images: u32,
    ) -> Result<(), LinkError> {
        let shard = &mut *self.shard;
        if shard.map.try_reserve(1).is_err() || shard.images.try_reserve().is_err() {
            return Err(LinkError::NoMemory);
        }
        if !take_slot(&self.counts.images, max_images) {
            return Err(LinkError::Full);
        }
        let identity = image.identity;
        let Ok(slot) = shard.images.insert(image) else {
            // Reserved just above; never here.
            self.counts.images.fetch_sub(1, Ordering::AcqRel);
            return Err(LinkError::NoMemory);
        };
        shard.map.insert(identity, slot);
        Ok(())
    }

    /// Puts an image at the back of the idle list unless it is already on it (a reclaim's
    /// short reference does not make an image more recently used). O(1), no allocation.
    pub(crate) fn make_idle(&mut self, image: &ExecImage) {
        let Some(slot) = self.shard.slot_of(image) else {
            return;
        };
        if self.shard.images.is_listed(IDLE, slot) {
            return;
        }
        // Stamped under the shard lock, so each shard's list is in stamp order.
        let stamp = self.counts.idle_clock.fetch_add(1, Ordering::Relaxed);
        self.shard.images.push_back(IDLE, slot, stamp);
        self.counts.idle.fetch_add(1, Ordering::Relaxed);
    }

    /// Moves an idle image a reclaim pass could not free behind the pass's `bound`, so the
    /// pass goes on to the next one instead of finding it again: its remaining pages are
    /// mapped, so for reclaim it is as good as used.
    pub(crate) fn pass_over(&mut self, image: &ExecImage) {
        let Some(slot) = self.shard.slot_of(image) else {
            return;
        };
        if self.shard.images.is_listed(IDLE, slot) {
            let stamp = self.counts.idle_clock.fetch_add(1, Ordering::Relaxed);
            self.shard.images.push_back(IDLE, slot, stamp);
        }
    }

    /// Takes every image off the idle list behind the protocol's back, for the checker's
    /// tests.
    #[cfg(test)]
    pub(crate) fn clear_idle_list(&mut self) {
        while let Some((slot, _, _)) = self.shard.images.front(IDLE) {
            self.shard.images.unlist(IDLE, slot);
            self.counts.idle.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Removes `image` (this very one, by serial) from the table and the idle list. The
    /// removed reference is returned so the caller drops it after the lock.
    pub(crate) fn unlink(&mut self, image: &ExecImage) -> Option<Arc<ExecImage>> {
        let slot = self.shard.slot_of(image)?;
        if self.shard.images.is_listed(IDLE, slot) {
            self.counts.idle.fetch_sub(1, Ordering::Relaxed);
        }
        self.shard.map.remove(&image.identity);
        let removed = self.shard.images.remove(slot)?;
        self.counts.images.fetch_sub(1, Ordering::AcqRel);
        Some(removed)
    }

    /// Links the mount-cache file `image` under `key` (where no file is) as the most
    /// recently used, stamped `tick`: its slot is allocated here, and one of the
    /// `max_files` taken.
    pub(crate) fn insert_file(
        &mut self,
        key: PathKey,
        image: Arc<McacheImage>,
        max_files: u32,
        tick: u64,
    ) -> Result<(), LinkError> {
        let shard = &mut *self.shard;
        if shard.file_slots.try_reserve(1).is_err() || shard.files.try_reserve().is_err() {
            return Err(LinkError::NoMemory);
        }
        if !take_slot(&self.counts.files, max_files) {
            return Err(LinkError::Full);
        }
        let Ok(slot) = shard.files.insert(image) else {
            self.counts.files.fetch_sub(1, Ordering::AcqRel);
            return Err(LinkError::NoMemory);
        };
        // No pages yet: on eviction's list only.
        shard.files.push_back(BY_USE, slot, tick);
        shard.file_slots.insert(key, slot);
        Ok(())
    }

    /// Removes the mount-cache file of `key` from the map.
    pub(crate) fn remove_file(&mut self, key: &PathKey) -> Option<Arc<McacheImage>> {
        let slot = self.shard.file_slots.remove(key)?;
        let removed = self.shard.files.remove(slot)?;
        self.counts.files.fetch_sub(1, Ordering::AcqRel);
        Some(removed)
    }

    /// The slot of the mount-cache file `image`, this very one (by serial), if linked.
    fn file_slot_of(&self, image: &McacheImage) -> Option<u32> {
        let slot = *self.shard.file_slots.get(&PathKey::of(&image.identity))?;
        let linked = self.shard.files.get(slot)?;
        (linked.serial == image.serial).then_some(slot)
    }

    /// Makes the mount-cache file `image` the most recently used, stamped `tick`, on both
    /// lists if it has pages (a fill or write that added some touches it after). O(1).
    pub(crate) fn touch_file(&mut self, image: &McacheImage, tick: u64) {
        let Some(slot) = self.file_slot_of(image) else {
            return;
        };
        self.shard.files.push_back(BY_USE, slot, tick);
        if image.pgref.load(Ordering::Relaxed) > 0 {
            self.shard.files.push_back(WITH_PAGES, slot, tick);
        }
    }

    /// Takes the mount-cache file `image` off reclaim's list behind the protocol's back,
    /// for the checker's tests.
    #[cfg(test)]
    pub(crate) fn hide_from_reclaim(&mut self, image: &McacheImage) {
        if let Some(slot) = self.file_slot_of(image) {
            self.shard.files.unlist(WITH_PAGES, slot);
        }
    }

    /// A reclaim pass is done with the mount-cache file `image`: it leaves reclaim's list
    /// if it has no pages (read here, under the shard lock where a fill's touch puts it
    /// back), and otherwise moves behind the pass's bound, stamped `tick`. Its place in
    /// eviction's order stays.
    pub(crate) fn pass_over_file(&mut self, image: &McacheImage, tick: u64) {
        let Some(slot) = self.file_slot_of(image) else {
            return;
        };
        if image.pgref.load(Ordering::Relaxed) == 0 {
            self.shard.files.unlist(WITH_PAGES, slot);
        } else {
            self.shard.files.push_back(WITH_PAGES, slot, tick);
        }
    }
}
