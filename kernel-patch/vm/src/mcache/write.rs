//! Our own writes, length changes and wipes of a cached file: a write in flight bumps the
//! generation at its start and end, and when the server wrote, its bytes update the cache
//! and the version is bumped by one (Plan 9's `cwrite`); overlapping writes and unknown
//! outcomes wipe.
//!
//! Locks: the entry's image lock, then the table lock for a relabel; the write's missing
//! pages are stored after the image lock is released.

use super::fill::{clip, pieces};
use crate::image::Image;
use crate::page::NO_PAGE;
use crate::sync::{Arc, Ordering};
use crate::vm::VmState;

impl VmState {
    /// See [`CachedFile::begin_write`]. Returns whether the write counts as in flight.
    pub(super) fn mcache_begin_write(&self, image: &Image) -> bool {
        let mut state = image.state.lock();
        if !state.mcache.linked {
            return false;
        }
        state.mcache.writers += 1;
        if state.mcache.writers > 1 {
            state.mcache.conflict = true;
        }
        state.mcache.generation += 1;
        true
    }

    /// Ends a write in flight: with `(offset, written)` when the server wrote, `None` when
    /// the outcome is unknown. A write that happened bumps the cached version by one.
    pub(super) fn mcache_end_write(&self, image: &Arc<Image>, outcome: Option<(u64, &[u8])>) {
        let mut list = NO_PAGE;
        let mut taken = 0;
        let mut state = image.state.lock();
        state.mcache.writers = state.mcache.writers.saturating_sub(1);
        state.mcache.generation += 1;
        let mut write_through = None;
        if state.mcache.linked {
            match outcome {
                Some((offset, written)) if !state.mcache.conflict => {
                    let mut missing = false;
                    for piece in pieces(offset, written.len()) {
                        match image.find(&mut state, &self.pool, piece.page_offset) {
                            Some(page) => {
                                self.merge(page, piece.start, &written[piece.range]);
                            }
                            None => missing = true,
                        }
                    }
                    if !written.is_empty() {
                        // Past the end the server grew the file (a hole reads as zeros).
                        let end = offset.saturating_add(clip(offset, written.len()) as u64);
                        state.mcache.length = state.mcache.length.max(end);
                    }
                    let vers = image.mcache_vers.load(Ordering::Relaxed).wrapping_add(1);
                    let kept = self.relabel_locked(image, &mut state, vers, &mut list, &mut taken);
                    if kept && missing {
                        write_through = Some((offset, written));
                    }
                }
                Some(_) => {
                    taken = self.wipe_locked(image, &mut state, &mut list);
                    let vers = image.mcache_vers.load(Ordering::Relaxed).wrapping_add(1);
                    self.relabel_locked(image, &mut state, vers, &mut list, &mut taken);
                }
                None => taken = self.wipe_locked(image, &mut state, &mut list),
            }
        }
        if state.mcache.writers == 0 {
            state.mcache.conflict = false;
        }
        let generation = state.mcache.generation;
        drop(state);
        self.release(list, taken);
        if let Some((offset, written)) = write_through {
            self.mcache_store(image, generation, offset, written);
        }
    }

    /// See [`CachedFile::set_length`].
    pub(super) fn mcache_set_length(&self, image: &Arc<Image>, length: u64, new_vers: u64) {
        let mut list = NO_PAGE;
        let mut state = image.state.lock();
        let mut taken = 0;
        if state.mcache.linked {
            taken = self.wipe_locked(image, &mut state, &mut list);
            state.mcache.length = length;
            self.relabel_locked(image, &mut state, new_vers, &mut list, &mut taken);
        }
        drop(state);
        self.release(list, taken);
    }

    /// See [`CachedFile::wipe`].
    pub(super) fn mcache_wipe(&self, image: &Image) {
        let mut list = NO_PAGE;
        let mut state = image.state.lock();
        let taken = if state.mcache.linked {
            self.wipe_locked(image, &mut state, &mut list)
        } else {
            0
        };
        drop(state);
        self.release(list, taken);
    }
}
