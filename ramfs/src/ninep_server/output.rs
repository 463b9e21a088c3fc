//! A connection's replies waiting to be written: encoded bytes, with the file pages
//! that large Rreads send uncopied placed between them, written with vectored writes.
//!
//! An Rread of at least [`SHARE_MIN`] bytes puts its header (and any small piece of a
//! page it does not cover whole) in the bytes and holds the file's whole runs of pages
//! it covers and the large pieces of one-page runs at its ends ([`SharedPages`]), which
//! go out from the pages themselves: the file data is copied
//! once, by the kernel into the socket, instead of twice. The pages are held, not
//! borrowed, so no file lock is held across the write; a write to the file meanwhile
//! replaces the pages in the file (copy on write) and the reply sends what the read saw.
//!
//! **Memory.** Held pages are pages of the reply's data: a read hands out runs it covers
//! whole and pieces of runs of one page, so the bytes held are the bytes the reply sends
//! and at most a page more at each end. The connection's loop flushes before
//! [`Output::len`] (held pages included) passes its bound (`OUTPUT_FLUSH_AT`), so the
//! pages a connection keeps alive after the file let go of them are bounded as its
//! reply buffer is.

use std::io::{self, IoSlice, Write};

use crate::fs::SharedPages;

/// Reads below this many bytes are copied into the reply: holding pages costs a
/// reference count and an iovec a page, and the kernel's copy from pages not in the
/// cache is slower than ours. Measured with `cargo bench -p ramfs --bench
/// share_threshold` (the writer's CPU time, 16 replies a write; two runs on a shared
/// 2-CPU machine), held/copied: at 8 KiB 0.95-0.99 for a file in the cache but
/// 1.12-1.16 for one that is not; at 16 KiB 0.96 and 0.91-0.98.
pub(super) const SHARE_MIN: usize = 16 * 1024;

/// When an Rread holds the file's pages instead of copying them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Sharing {
    /// Rreads of at least this many bytes hold pages.
    pub read_min: usize,
    /// Of such an Rread, a piece of a run of one page (an end not aligned to pages) of
    /// at least this many bytes is held too; a smaller one is copied.
    pub piece_min: usize,
}

/// [`Sharing`] for a reply written with `writev`.
pub(super) const WRITEV_SHARING: Sharing = Sharing {
    read_min: SHARE_MIN,
    piece_min: crate::fs::PIECE_SHARE_MIN,
};

/// Most iovecs handed to one `writev` (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Replies in order: `bytes`, with each of `held` placed before `bytes[at..]`.
#[derive(Default)]
pub(super) struct Output {
    /// Encoded replies (and the parts of Rreads that were copied).
    pub bytes: Vec<u8>,
    held: Vec<Held>,
    held_bytes: usize,
    /// Pages held (a slice each in a write).
    held_pages: usize,
}

/// Pages that go out after `bytes[..at]` (and after the held pages before them).
pub(super) struct Held {
    at: usize,
    pages: SharedPages,
}

impl Output {
    /// Bytes waiting, the held pages' included.
    pub fn len(&self) -> usize {
        self.bytes.len() + self.held_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `pages` after the bytes so far.
    pub fn push_pages(&mut self, pages: SharedPages) {
        self.held_bytes += pages.len();
        self.held_pages += pages.page_count();
        self.held.push(Held {
            at: self.bytes.len(),
            pages,
        });
    }

    /// Takes back everything from byte `len` and the pages placed after it: an Rread
    /// that failed half built. Pages placed exactly at `len` stay: they end the reply
    /// before (a half-built Rread's own pages come after its header).
    pub fn truncate(&mut self, len: usize) {
        while self.held.last().is_some_and(|h| h.at > len) {
            if let Some(h) = self.held.pop() {
                self.held_bytes -= h.pages.len();
                self.held_pages -= h.pages.page_count();
            }
        }
        self.bytes.truncate(len);
    }

    /// Drops everything (the pages held go back to whoever else holds them).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.held.clear();
        self.held_bytes = 0;
        self.held_pages = 0;
    }

    /// True if pages are held (an Rread of at least [`SHARE_MIN`] bytes is waiting).
    pub fn holds_pages(&self) -> bool {
        !self.held.is_empty()
    }

    /// Marks every run whose pages are held exported, for good: they are about to be
    /// sent by reference (`fs::pages`'s notes).
    #[cfg(target_os = "linux")]
    pub(super) fn export_pages(&self) {
        self.held.iter().for_each(|h| h.pages.export());
    }

    /// The waiting bytes as slices in order, skipping the first `skip` bytes, into
    /// `slices`; returns how many were filled.
    pub(super) fn fill<'a>(&'a self, skip: usize, slices: &mut [IoSlice<'a>]) -> usize {
        self.fill_with(&self.bytes, skip, slices)
    }

    /// [`Output::fill`] with `bytes` (a copy of the output's bytes) in their place.
    pub(super) fn fill_with<'a>(
        &'a self,
        bytes: &'a [u8],
        skip: usize,
        slices: &mut [IoSlice<'a>],
    ) -> usize {
        let pages = self
            .held
            .iter()
            .flat_map(|h| h.pages.pages().map(move |page| (h.at, page)));
        fill_interleaved(bytes, pages, skip, slices)
    }

    /// Writes everything to `writer`, in order, with vectored writes of at most
    /// [`IOV_MAX`] slices, going on after partial writes until every byte is written;
    /// then empties the output (also on error: the connection is ending).
    pub fn write_to<W: Write>(&mut self, writer: &mut W) -> io::Result<()> {
        let result = self.write_all(writer);
        self.clear();
        result
    }

    fn write_all<W: Write>(&self, writer: &mut W) -> io::Result<()> {
        if self.held.is_empty() {
            // Nothing held: one slice, the plain path.
            return writer.write_all(&self.bytes);
        }
        // The slices live on the stack and are cleared before each use: an array no
        // larger than the output needs (a page or a stretch of bytes each) costs less to
        // clear than 1,024 of them (16 KiB) every time.
        let slices = self.held_pages + self.held.len() + 1;
        if slices <= 32 {
            self.write_all_in::<32, W>(writer)
        } else if slices <= 256 {
            self.write_all_in::<256, W>(writer)
        } else {
            self.write_all_in::<IOV_MAX, W>(writer)
        }
    }

    /// [`Output::write_all`] with at most `N` slices a `writev`.
    fn write_all_in<const N: usize, W: Write>(&self, writer: &mut W) -> io::Result<()> {
        let total = self.len();
        let mut written = 0;
        let mut slices = [IoSlice::new(&[]); N];
        while written < total {
            let n = self.fill(written, &mut slices);
            match writer.write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => written += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// `bytes` with each of `inserts` (in order of their positions) placed before
/// `bytes[at..]`, as slices in order, skipping the first `skip` bytes, into `slices`;
/// returns how many were filled. Empty pieces take no slice.
pub(super) fn fill_interleaved<'a>(
    bytes: &'a [u8],
    inserts: impl Iterator<Item = (usize, &'a [u8])>,
    mut skip: usize,
    slices: &mut [IoSlice<'a>],
) -> usize {
    let mut filled = 0;
    let mut put = |part: &'a [u8]| -> bool {
        if part.is_empty() {
            return true;
        }
        if skip >= part.len() {
            skip -= part.len();
            return true;
        }
        let Some(slot) = slices.get_mut(filled) else {
            return false;
        };
        *slot = IoSlice::new(&part[skip..]);
        skip = 0;
        filled += 1;
        true
    };
    let mut from = 0;
    for (at, insert) in inserts {
        if !put(&bytes[from..at]) || !put(insert) {
            return filled;
        }
        from = at;
    }
    put(&bytes[from..]);
    filled
}

/// A connection's writer as the connection loop uses it: each [`Output`] goes out
/// through [`ReplyWrite::write_output`], which a writer that sends held pages by
/// reference (`splice`) does its own way.
pub(super) trait ReplyWrite: Write + Sized {
    /// Writes `out` whole and empties it (also on error: the connection is ending).
    fn write_output(&mut self, out: &mut Output) -> io::Result<()> {
        out.write_to(self)
    }

    /// When Rreads hold the file's pages (see [`SHARE_MIN`]).
    fn sharing(&mut self) -> Sharing {
        WRITEV_SHARING
    }
}

/// A writer that only copies: [`ReplyWrite`] as [`Output::write_to`] does it.
pub(super) struct Plain<W>(pub W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> ReplyWrite for Plain<W> {}

#[cfg(test)]
#[path = "output_tests.rs"]
pub(super) mod tests;
