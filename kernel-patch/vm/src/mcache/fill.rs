//! Reads from the cache and fills from the server: the cached prefix of a range, and the
//! server's bytes stored while the file's generation is still the one the miss saw (see
//! "Staleness" in the module docs of `mcache`).
//!
//! Locks: each page is read or stored under its entry's image lock alone; a new page is
//! allocated and written with no lock held, then inserted if the file is still storable.

use super::handle::{CachedRead, FillTicket};
use super::{McacheImage, McacheState};
use crate::frame::{PAGE_BYTES, PAGE_SIZE};
use crate::image::ImageState;
use crate::page::PageIndex;
use crate::sync::{Arc, Ordering};
use crate::vm::VmState;

/// One page's part of a byte range: the page's file offset, where the part starts in the
/// page, and where it lies in the range.
pub(super) struct Piece {
    pub(super) page_offset: u64,
    pub(super) start: usize,
    pub(super) range: core::ops::Range<usize>,
}

/// The pieces of `offset..offset + len`, page by page.
pub(super) fn pieces(offset: u64, len: usize) -> impl Iterator<Item = Piece> {
    let len = clip(offset, len);
    let mut done = 0;
    core::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let at = offset + done as u64;
        let start = (at % PAGE_BYTES) as usize;
        let n = (PAGE_SIZE - start).min(len - done);
        let piece = Piece {
            page_offset: at - start as u64,
            start,
            range: done..done + n,
        };
        done += n;
        Some(piece)
    })
}

/// `len`, shortened so that `offset + len` does not overflow.
pub(super) fn clip(offset: u64, len: usize) -> usize {
    usize::try_from(u64::MAX - offset).map_or(len, |room| len.min(room))
}

impl VmState {
    /// See [`CachedFile::read`].
    pub(super) fn mcache_read(
        &self,
        image: &Arc<McacheImage>,
        offset: u64,
        buf: &mut [u8],
    ) -> CachedRead {
        let mut ticket = FillTicket {
            serial: image.serial,
            generation: 0,
        };
        let mut copied = 0;
        let mut first = true;
        for piece in pieces(offset, buf.len()) {
            let mut state = image.state.lock();
            if first {
                ticket.generation = state.kind.generation;
                first = false;
            }
            if !state.kind.linked {
                break;
            }
            let Some(page) = image.find(&mut state, &self.pool, piece.page_offset) else {
                break;
            };
            let (start, end) = self.pool.valid(page);
            if piece.start < start || piece.start >= end {
                break;
            }
            let n = (end - piece.start).min(piece.range.len());
            let into = &mut buf[piece.range.start..piece.range.start + n];
            self.frames.with_frame(self.pool.frame(page), &mut |bytes| {
                into.copy_from_slice(&bytes[piece.start..piece.start + n]);
            });
            drop(state);
            copied += n;
            if n < piece.range.len() {
                // The valid bytes end inside this page.
                break;
            }
        }
        if first {
            ticket.generation = image.state.lock().kind.generation;
        }
        if !buf.is_empty() {
            let counter = if copied == buf.len() {
                &self.counters.mcache_hits
            } else {
                &self.counters.mcache_misses
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if copied > 0 {
            self.touch(image);
        }
        CachedRead {
            len: copied,
            ticket,
        }
    }

    /// Writes `bytes` at `start` of a cached page and widens its valid range, if the result
    /// is one range. Returns whether the bytes were taken. Called under the image lock.
    pub(super) fn merge(&self, page: PageIndex, start: usize, bytes: &[u8]) -> bool {
        let (valid_start, valid_end) = self.pool.valid(page);
        let end = start + bytes.len();
        let range = if start <= valid_end && valid_start <= end {
            (valid_start.min(start), valid_end.max(end))
        } else if end - start > valid_end - valid_start {
            // Disjoint: one range is all a page records, so keep the larger.
            (start, end)
        } else {
            return false;
        };
        self.frames
            .with_frame_mut(self.pool.frame(page), &mut |frame| {
                frame[start..end].copy_from_slice(bytes);
            });
        self.pool.set_valid(page, range.0, range.1);
        true
    }

    /// Whether bytes read at `generation` may be stored now. Under the image lock.
    fn storable(state: &ImageState<McacheState>, generation: u64) -> bool {
        state.kind.linked && state.kind.generation == generation && state.kind.writers == 0
    }

    /// Caches `data` at `offset` while the file stays at `generation` (a fill, or the
    /// missing pages of our own write). Returns the bytes cached.
    pub(super) fn mcache_store(
        &self,
        image: &Arc<McacheImage>,
        generation: u64,
        offset: u64,
        data: &[u8],
    ) -> usize {
        let limit = self.file_page_limit();
        let mut cached = 0;
        let total = pieces(offset, data.len()).count();
        for (index, piece) in pieces(offset, data.len()).enumerate() {
            let bytes = &data[piece.range.clone()];
            {
                let mut state = image.state.lock();
                if !Self::storable(&state, generation) {
                    break;
                }
                if let Some(page) = image.find(&mut state, &self.pool, piece.page_offset) {
                    if self.merge(page, piece.start, bytes) {
                        cached += bytes.len();
                    }
                    continue;
                }
                if image.pgref.load(Ordering::Relaxed) >= limit {
                    break;
                }
            }
            // A new page, allocated and written with no lock held: nobody else sees it yet.
            let Some(fresh) = self.mcache_new_page(total - index) else {
                break;
            };
            self.frames
                .with_frame_mut(self.pool.frame(fresh), &mut |frame| {
                    frame[piece.start..piece.start + bytes.len()].copy_from_slice(bytes);
                });
            let mut state = image.state.lock();
            let mut kept = false;
            if Self::storable(&state, generation) {
                if let Some(page) = image.find(&mut state, &self.pool, piece.page_offset) {
                    // Another fill cached the page meanwhile.
                    if self.merge(page, piece.start, bytes) {
                        cached += bytes.len();
                    }
                } else if image.pgref.load(Ordering::Relaxed) < limit {
                    image.insert(&mut state, &self.pool, piece.page_offset, fresh);
                    self.pool
                        .set_valid(fresh, piece.start, piece.start + bytes.len());
                    // Chains hold no reference: the page waits at ref 0, like an idle
                    // image's. (Owned now, so this only drops the count.)
                    self.pool.put(fresh);
                    kept = true;
                    cached += bytes.len();
                }
            }
            let go_on = Self::storable(&state, generation);
            drop(state);
            if !kept {
                self.pool.put(fresh);
                self.mcache_pages.fetch_sub(1, Ordering::AcqRel);
            }
            if !go_on {
                break;
            }
        }
        if cached > 0 {
            self.touch(image);
        }
        cached
    }
}
