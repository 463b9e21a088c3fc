//! Memory for the bytes of replies sent by reference (their headers, and what was
//! copied into them) that is never written again while the kernel may refer to it.
//!
//! `vmsplice` gives the kernel references to the physical pages under the bytes, and it
//! may keep them for as long as the client likes (a client can splice them on from its
//! socket into a pipe of its own; `fs::pages`'s notes on exported runs). Heap memory is
//! reused for anything once freed, so the bytes are copied (they are few: an Rread's
//! header is 11 bytes) into a mapping of this arena's own, filled from the front. When
//! it is full its pages are dropped from our mapping (`MADV_DONTNEED`) and it is filled
//! again: the kernel keeps the old physical pages for whoever refers to them, and our
//! writes get fresh zeroed ones. That is one `madvise` an [`ARENA_SIZE`] of bytes sent.

use std::io;
use std::ptr::NonNull;

/// Bytes an arena maps (more if one output's bytes need more).
const ARENA_SIZE: usize = 256 * 1024;

const PAGE: usize = 4096;

/// An anonymous mapping bytes are copied into, never written twice between drops of
/// its pages from our mapping.
#[derive(Default)]
pub(super) struct ExportArena {
    /// The mapping and its length (`None` before the first copy, or after a failure).
    map: Option<(NonNull<u8>, usize)>,
    /// Bytes of it written since its pages were last dropped.
    used: usize,
}

// SAFETY: the mapping is owned by this value alone (no other pointer to it is kept);
// moving it to another thread moves that ownership.
unsafe impl Send for ExportArena {}

impl ExportArena {
    /// A copy of `bytes` in memory nothing writes again until the kernel has been given
    /// what it needs of it (see the module's notes).
    pub fn copy_in(&mut self, bytes: &[u8]) -> io::Result<&[u8]> {
        if bytes.is_empty() {
            return Ok(&[]);
        }
        let (base, size) = self.room_for(bytes.len())?;
        // SAFETY: `room_for` left at least `bytes.len()` bytes of the mapping, which is
        // readable and writable, from `used` on; `bytes` is not in it (nothing hands
        // out a mutable view of the mapping), and the slice returned borrows `self`, so
        // nothing writes there while it lives.
        let copy = unsafe {
            let at = base.as_ptr().add(self.used);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), at, bytes.len());
            std::slice::from_raw_parts(at, bytes.len())
        };
        debug_assert!(self.used + bytes.len() <= size);
        self.used += bytes.len();
        Ok(copy)
    }

    /// The mapping, with `len` bytes free after `used`: its pages dropped and `used`
    /// back to 0 if it is full, a larger one mapped if it is too small.
    fn room_for(&mut self, len: usize) -> io::Result<(NonNull<u8>, usize)> {
        if let Some((base, size)) = self.map {
            if size - self.used >= len {
                return Ok((base, size));
            }
            if size >= len && drop_pages(base, self.used.next_multiple_of(PAGE)) {
                self.used = 0;
                return Ok((base, size));
            }
            self.unmap();
        }
        let size = len.next_multiple_of(PAGE).max(ARENA_SIZE);
        // SAFETY: a new private anonymous mapping at an address the kernel picks: it
        // touches no memory of ours.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(base.cast()).ok_or_else(|| io::Error::other("mmap gave 0"))?;
        self.map = Some((base, size));
        self.used = 0;
        Ok((base, size))
    }

    /// Gives the mapping back: the kernel keeps the pages it refers to.
    fn unmap(&mut self) {
        if let Some((base, size)) = self.map.take() {
            // SAFETY: the mapping is ours alone and no slice of it outlives `&mut self`.
            if unsafe { libc::munmap(base.as_ptr().cast(), size) } != 0 {
                tracing::warn!(
                    "an export arena of {size} bytes is kept: munmap: {}",
                    io::Error::last_os_error()
                );
            }
        }
        self.used = 0;
    }
}

/// `madvise(MADV_DONTNEED)` on the first `len` bytes at `base`, a page-aligned part of
/// an arena's mapping; true if it worked.
fn drop_pages(base: NonNull<u8>, len: usize) -> bool {
    if len == 0 {
        return true;
    }
    // SAFETY: `base..base + len` lies in the arena's mapping, which is ours alone and
    // page-aligned; afterwards it reads as zeros, and nothing refers to it as anything
    // but bytes.
    unsafe { libc::madvise(base.as_ptr().cast(), len, libc::MADV_DONTNEED) == 0 }
}

impl Drop for ExportArena {
    fn drop(&mut self) {
        self.unmap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_stay_until_the_arena_is_full_then_its_pages_are_fresh() {
        let mut arena = ExportArena::default();
        let first = arena.copy_in(b"header").expect("mapped").as_ptr();
        let second = arena.copy_in(&[7; 100]).expect("room").as_ptr();
        assert_eq!(second as usize, first as usize + 6, "filled from the front");
        // Fill it: the next copy starts again at the front, on dropped pages.
        let rest = ARENA_SIZE - arena.used;
        arena.copy_in(&vec![1; rest]).expect("the rest");
        let again = arena.copy_in(b"x").expect("wrapped");
        assert_eq!(again.as_ptr(), first, "the same mapping, from the front");
        assert_eq!(again, b"x");
        // SAFETY: reads bytes 1..6 of the mapping, in bounds, that nothing writes now.
        let after = unsafe { std::slice::from_raw_parts(first.add(1), 5) };
        assert_eq!(after, [0; 5], "the dropped pages read as zeros");
    }

    #[test]
    fn bytes_larger_than_the_arena_get_a_mapping_that_fits() {
        let mut arena = ExportArena::default();
        let big: Vec<u8> = (0..ARENA_SIZE + 5000).map(|i| i as u8).collect();
        assert!(arena.copy_in(&big).expect("mapped") == big);
        assert!(arena.copy_in(b"more").expect("room") == b"more");
    }
}
