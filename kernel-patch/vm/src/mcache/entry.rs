//! The map of cached files (under the table lock): finding or making a file's entry at
//! open and validating it, forgetting and retiring entries, and relabelling an entry with
//! a new version (which makes it leave when an executable image holds that version).
//!
//! Locks: the table lock is taken alone to find or insert an entry; an entry's image lock
//! before the table lock when both are needed (relabel). Entries are allocated with no lock
//! held, and pages freed after every lock is released.

use super::{McacheFile, McacheImage, McacheState, OpenKind};
use crate::file::FileIdentity;
use crate::file::PathKey;
use crate::frame::AllocSite;
use crate::image::{Image, ImageState};
use crate::page::NO_PAGE;
use crate::sync::{Arc, AtomicU64, Ordering};
use crate::table::{LinkError, SHARDS};
use crate::vm::VmState;

/// How many times an open tries again when its entry went away under it.
const OPEN_ATTEMPTS: usize = 3;

/// What the table said about a file being opened.
enum Entry {
    /// An entry was there; validate it.
    Found(Arc<McacheImage>),
    /// A new entry, already valid.
    Made(Arc<McacheImage>),
}

impl VmState {
    /// Marks `image` as just used: it moves to the back of its shard's least-recently-used
    /// list (O(1)). The tick is taken under the shard's lock, so each shard's list is in
    /// tick order.
    pub(super) fn touch(&self, image: &McacheImage) {
        let mut table = self.table.lock(&image.identity);
        let tick = self.use_tick();
        table.touch_file(image, tick);
    }

    /// The next tick of the mount cache's least-recently-used order.
    pub(super) fn use_tick(&self) -> u64 {
        self.use_clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// See [`MountCache::open`].
    pub(super) fn mcache_open(
        &self,
        identity: FileIdentity,
        length: u64,
        kind: OpenKind,
        append_only: bool,
    ) -> Option<Arc<McacheImage>> {
        let key = PathKey::of(&identity);
        if append_only {
            let removed = self.table.lock_key(&key).remove_file(&key);
            if let Some(image) = removed {
                self.mcache_retire(&image);
            }
            return None;
        }
        if self.file_page_limit() == 0
            || self.mcache_page_limit() == 0
            || self.mcache_config.max_files == 0
        {
            return None;
        }
        for _ in 0..OPEN_ATTEMPTS {
            let entry = self.mcache_entry(identity, length)?;
            let image = match entry {
                Entry::Made(image) => {
                    self.touch(&image);
                    return Some(image);
                }
                Entry::Found(image) => image,
            };
            let mut list = NO_PAGE;
            let mut state = image.state.lock();
            if !state.kind.linked {
                // Forgotten or evicted between the table and here: look again.
                continue;
            }
            let unchanged = kind == OpenKind::Existing
                && image.kind.vers.load(Ordering::Relaxed) == identity.version
                && state.kind.length == length;
            if unchanged {
                drop(state);
                self.touch(&image);
                return Some(image);
            }
            let mut taken = self.wipe_locked(&image, &mut state, &mut list);
            state.kind.length = length;
            let kept =
                self.relabel_locked(&image, &mut state, identity.version, &mut list, &mut taken);
            drop(state);
            self.release(list, taken);
            if kept {
                self.touch(&image);
                return Some(image);
            }
            return None;
        }
        None
    }

    /// Finds the entry of `identity`'s file or makes one (evicting and retiring the least
    /// recently used file of all when the map is full, with no lock held). `None` when an
    /// executable image holds these contents or memory is short.
    fn mcache_entry(&self, identity: FileIdentity, length: u64) -> Option<Entry> {
        let key = PathKey::of(&identity);
        let mut fresh: Option<Arc<McacheImage>> = None;
        // A full map that evicting did not make room in (other opens took the room first,
        // each time) leaves this file uncached rather than waiting.
        let mut evictions = 0;
        loop {
            let mut table = self.table.lock_key(&key);
            if table.contains_image(&identity) {
                // An executable image caches these very contents: no double caching.
                return None;
            }
            if let Some(image) = table.file(&key) {
                return Some(Entry::Found(image.clone()));
            }
            let Some(image) = fresh.take() else {
                // Allocate with no lock held, then look again.
                drop(table);
                self.admit(AllocSite::MountCacheFile).ok()?;
                let image = Image::with_kind(
                    key.identity(0),
                    self.serial(),
                    McacheFile {
                        vers: AtomicU64::new(identity.version),
                    },
                    McacheState {
                        linked: true,
                        length,
                        ..McacheState::default()
                    },
                )?;
                // The map's own reference.
                image.refs.store(1, Ordering::Release);
                // No memory for the box: the file goes uncached.
                fresh = Some(Arc::try_new(image).ok()?);
                continue;
            };
            let tick = self.use_tick();
            match table.insert_file(key, image.clone(), self.mcache_config.max_files, tick) {
                Ok(()) => return Some(Entry::Made(image)),
                Err(LinkError::NoMemory) => return None,
                Err(LinkError::Full) => {
                    drop(table);
                    fresh = Some(image);
                    if evictions == OPEN_ATTEMPTS {
                        return None;
                    }
                    evictions += 1;
                    if let Some(victim) = self.table.evict_oldest_file() {
                        self.mcache_retire(&victim);
                    }
                }
            }
        }
    }

    /// Removes the file of `key` from the map and retires its entry; whether it had one.
    pub(crate) fn mcache_forget(&self, key: PathKey) -> bool {
        let removed = self.table.lock_key(&key).remove_file(&key);
        let found = removed.is_some();
        if let Some(image) = removed {
            self.mcache_retire(&image);
        }
        found
    }

    /// Forgets every mount-cache file of device `(dev_type, dev)` (see
    /// [`Vm::forget_device`]); returns the pages freed. One file a table-lock hold.
    pub(crate) fn mcache_forget_device(&self, dev_type: u32, dev: u64) -> usize {
        let mut freed = 0;
        for shard in 0..SHARDS {
            let mut slot = 0;
            loop {
                let removed = {
                    let mut table = self.table.lock_shard(shard);
                    let next = table
                        .next_file_from(slot, |key| key.dev_type == dev_type && key.dev == dev);
                    next.and_then(|(key, at)| {
                        slot = at + 1;
                        table.remove_file(&key)
                    })
                };
                let Some(image) = removed else {
                    break;
                };
                freed += self.mcache_retire(&image);
            }
        }
        freed
    }

    /// Gives the map's reference to `image` back, after the caller removed it from the map:
    /// the file is unlinked and its pages freed (their number is returned).
    pub(crate) fn mcache_retire(&self, image: &Arc<McacheImage>) -> usize {
        let mut list = NO_PAGE;
        let mut state = image.state.lock();
        let mut taken = 0;
        if state.kind.linked {
            state.kind.linked = false;
            state.kind.generation += 1;
            taken = image.take_all_pages(&mut state, &self.pool, &mut list);
            image.refs.fetch_sub(1, Ordering::AcqRel);
        }
        drop(state);
        self.release(list, taken);
        taken
    }

    /// Wipes a linked file's pages onto `list`. Called under its image lock.
    pub(super) fn wipe_locked(
        &self,
        image: &McacheImage,
        state: &mut ImageState<McacheState>,
        list: &mut u32,
    ) -> usize {
        state.kind.generation += 1;
        if state.kind.writers > 0 {
            state.kind.conflict = true;
        }
        self.counters.mcache_wipes.fetch_add(1, Ordering::Relaxed);
        image.take_all_pages(state, &self.pool, list)
    }

    /// Sets the version a linked file caches to `vers`, under the table lock too. If an
    /// executable image of that very identity is in the table, the file leaves the mount
    /// cache instead (its pages onto `list`, counted in `taken`) and `false` is returned.
    /// Called under the image lock.
    pub(super) fn relabel_locked(
        &self,
        image: &Arc<McacheImage>,
        state: &mut ImageState<McacheState>,
        vers: u64,
        list: &mut u32,
        taken: &mut usize,
    ) -> bool {
        let key = PathKey::of(&image.identity);
        let mut table = self.table.lock_key(&key);
        if !table.contains_image(&key.identity(vers)) {
            image.kind.vers.store(vers, Ordering::Relaxed);
            return true;
        }
        let linked_here = table
            .file(&key)
            .is_some_and(|linked| linked.serial == image.serial);
        let removed = if linked_here {
            table.remove_file(&key)
        } else {
            None
        };
        drop(table);
        if removed.is_some() {
            state.kind.linked = false;
            state.kind.generation += 1;
            *taken += image.take_all_pages(state, &self.pool, list);
            image.refs.fetch_sub(1, Ordering::AcqRel);
        }
        // Not the last reference (the caller holds one): nothing is freed under the lock.
        drop(removed);
        false
    }
}
