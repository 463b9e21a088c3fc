//! Our own writes, length changes and wipes of a cached file: a write in flight bumps the
//! generation at its start and end, and when the server wrote, its bytes update the cache
//! and the version is bumped by one (Plan 9's `cwrite`); overlapping writes and unknown
//! outcomes wipe.
//!
//! Locks: the entry's image lock, then the table lock for a relabel; the write's missing
//! pages are stored after the image lock is released.

use super::fill::{clip, pieces};
use super::McacheImage;
use crate::page::NO_PAGE;
use crate::sync::{Arc, Ordering};
use crate::vm::VmState;

impl VmState {
    /// See [`CachedFile::begin_write`]. Returns whether the write counts as in flight.
    pub(super) fn mcache_begin_write(&self, image: &McacheImage) -> bool {
        let mut state = image.state.lock();
        if !state.kind.linked {
            return false;
        }
        state.kind.writers += 1;
        if state.kind.writers > 1 {
            state.kind.conflict = true;
        }
        state.kind.generation += 1;
        true
    }

    /// Ends a write in flight: with `(offset, written)` when the server wrote, `None` when
    /// the outcome is unknown. A write that happened bumps the cached version by one.
    pub(super) fn mcache_end_write(&self, image: &Arc<McacheImage>, outcome: Option<(u64, &[u8])>) {
        let mut list = NO_PAGE;
        let mut taken = 0;
        let mut state = image.state.lock();
        state.kind.writers = state.kind.writers.saturating_sub(1);
        state.kind.generation += 1;
        let mut write_through = None;
        if state.kind.linked {
            match outcome {
                Some((offset, written)) if !state.kind.conflict => {
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
                        state.kind.length = state.kind.length.max(end);
                    }
                    let vers = image.kind.vers.load(Ordering::Relaxed).wrapping_add(1);
                    let kept = self.relabel_locked(image, &mut state, vers, &mut list, &mut taken);
                    if kept && missing {
                        write_through = Some((offset, written));
                    }
                }
                Some(_) => {
                    taken = self.wipe_locked(image, &mut state, &mut list);
                    let vers = image.kind.vers.load(Ordering::Relaxed).wrapping_add(1);
                    self.relabel_locked(image, &mut state, vers, &mut list, &mut taken);
                }
                None => taken = self.wipe_locked(image, &mut state, &mut list),
            }
        }
        if state.kind.writers == 0 {
            state.kind.conflict = false;
        }
        let generation = state.kind.generation;
        drop(state);
        self.release(list, taken);
        if let Some((offset, written)) = write_through {
            self.mcache_store(image, generation, offset, written);
        }
    }

    /// See [`CachedFile::set_length`].
    pub(super) fn mcache_set_length(&self, image: &Arc<McacheImage>, length: u64, new_vers: u64) {
        let mut list = NO_PAGE;
        let mut state = image.state.lock();
        let mut taken = 0;
        if state.kind.linked {
            taken = self.wipe_locked(image, &mut state, &mut list);
            state.kind.length = length;
            self.relabel_locked(image, &mut state, new_vers, &mut list, &mut taken);
        }
        drop(state);
        self.release(list, taken);
    }

    /// See [`CachedFile::wipe`].
    pub(super) fn mcache_wipe(&self, image: &McacheImage) {
        let mut list = NO_PAGE;
        let mut state = image.state.lock();
        let taken = if state.kind.linked {
            self.wipe_locked(image, &mut state, &mut list)
        } else {
            0
        };
        drop(state);
        self.release(list, taken);
    }
}
