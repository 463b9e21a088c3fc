//! Bytes of process memory lent to the kernel: a vm [`Loan`] of whole pages and the part of
//! them a write wants (it may start and end inside a page), read without a copy into the
//! kernel. A pipe holds them until a reader has copied them out; a 9P write hands the
//! frames' bytes to the mount driver, which sends them as they are.
//!
//! Dropping one returns the loan to vm (an orphan whose last loan it was is freed): do so
//! with no lock of the kernel's held but leaves.

use std::ops::Range;
use std::sync::Arc;

use vm::{Loan, MappingRef, PAGE_SIZE};

use crate::frames::{HostFrames, SharedFrame};
use crate::pipe::LentBytes;

/// `len` bytes lent, starting `skip` bytes into the first page of `loan`.
pub(crate) struct LentPages {
    loan: Loan,
    frames: HostFrames,
    skip: usize,
    len: usize,
}

impl LentPages {
    /// Lends `len` bytes of `map` at `addr` (any alignment, inside the mapping): the whole
    /// pages they touch. `None` if vm would not lend them (a page past the end of the
    /// file, too many loans, no memory): the caller copies instead, and the copy meets
    /// the same page as a load would (a bus error, say).
    pub(crate) fn lend(
        map: &MappingRef,
        frames: &HostFrames,
        addr: u64,
        len: usize,
    ) -> Option<LentPages> {
        let page = PAGE_SIZE as u64;
        let first = addr & !(page - 1);
        let end = addr
            .checked_add(len as u64)?
            .checked_next_multiple_of(page)?;
        let loan = match map.lend(first, end - first) {
            Ok(loan) => loan,
            Err(err) => {
                log::debug!("hosted: lending {len} bytes at {addr:#x} refused: {err}; copying");
                return None;
            }
        };
        Some(LentPages {
            loan,
            frames: frames.clone(),
            skip: (addr - first) as usize,
            len,
        })
    }

    /// Bytes lent.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The lent bytes, a page's worth (or less, at either end) each, held with no lock
    /// (the frames are lent: nothing writes them while the loan lives).
    pub(crate) fn shared_pages(&self) -> Vec<(SharedFrame, Range<usize>)> {
        self.shared_range(0, self.len)
    }

    /// Bytes `at..at + len` of the lent ones, as [`shared_pages`](Self::shared_pages).
    fn shared_range(&self, at: usize, len: usize) -> Vec<(SharedFrame, Range<usize>)> {
        let (start, end) = (self.skip + at, self.skip + at + len);
        let mut out = Vec::new();
        let mut pos = start;
        while pos < end {
            let (index, within) = (pos / PAGE_SIZE, pos % PAGE_SIZE);
            let n = (PAGE_SIZE - within).min(end - pos);
            let bytes = self
                .loan
                .frame(index)
                .and_then(|frame| self.frames.share(frame))
                // vm lent no such frame: nothing to give but poison.
                .unwrap_or_else(|| Arc::new([crate::POISON; PAGE_SIZE]));
            out.push((bytes, within..within + n));
            pos += n;
        }
        out
    }
}

impl LentBytes for LentPages {
    fn len(&self) -> usize {
        self.len
    }

    fn shared(&self, at: usize, len: usize) -> Vec<(SharedFrame, Range<usize>)> {
        self.shared_range(at, len)
    }

    fn copy_out(&self, at: usize, out: &mut [u8]) {
        use vm::FrameAllocator;
        let mut done = 0;
        while done < out.len() {
            let pos = self.skip + at + done;
            let (index, within) = (pos / PAGE_SIZE, pos % PAGE_SIZE);
            let n = (PAGE_SIZE - within).min(out.len() - done);
            match self.loan.frame(index) {
                Some(frame) => self.frames.with_frame(frame, &mut |bytes| {
                    out[done..done + n].copy_from_slice(&bytes[within..within + n]);
                }),
                None => out[done..done + n].fill(crate::POISON),
            }
            done += n;
        }
    }
}
