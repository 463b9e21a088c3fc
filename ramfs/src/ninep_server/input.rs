//! A connection's input buffer: bytes stay where the transport put them until they
//! are answered, so a Twrite's data is applied to the tree from there, never moved
//! first (the data path's one copy is the one into the file's pages).
//!
//! A read takes whatever the transport has, past the end of the message at the front
//! too, so a client that pipelines large Twrites has several answered a read (and their
//! replies sent together) instead of one: half the reads and sends of reading each
//! message's rest alone (strace of 4,000 64 KiB Twrites at q16: 2,382 reads and 2,098
//! sends, against 4,431 and 4,095). The price is that the unanswered tail (less than one
//! message) moves to the front when the room after it is less than the next read needs;
//! the room left is at least the rest of the message at the front and a [`READ_CHUNK`]
//! more, so this is rare and each move is less than a message.
//!
//! The buffer is therefore at most msize + 2 × [`READ_CHUNK`] bytes, and is reused, not
//! zeroed, from one read to the next.
//!
//! **A large Twrite's data goes straight into pages.** When the message at the front is a
//! Twrite whose data still to come covers at least [`GATHER_MIN`] bytes of whole file
//! pages, the next reads are vectored: the bytes up to the first page boundary of the
//! file into the buffer, the whole pages into page buffers ([`PageBuf`]), and the bytes
//! after them into the buffer again, followed by at most [`LOOKAHEAD`] bytes of what comes
//! next (the header of the next Twrite, so that its data too can go into pages). Once the
//! message is in, [`Input::gathered`] hands it out in those pieces, and the pages become
//! the file's ([`crate::fs::FileData::write_gathered`]): the data is copied only by the
//! kernel, into the pages it stays in. A read that would bring most of a large Twrite's
//! data into the buffer (the rest of one whose header is in, or the first read after a
//! gathered one) stops at the next message's header instead, so that a stream of large
//! Twrites goes into pages from its second message on. The price is a read a message,
//! where a read of whatever the transport has may bring several; for messages of
//! 32 KiB and more the copy saved is worth more (the connection loop sends their
//! Rwrites a few at a time). The page buffers a connection gets back (pages a write
//! replaced, pages copied instead of taken) are kept for the next message, up to the
//! pages of one message of msize, outside the tree's memory account, as the input buffer is.

use std::io::{self, IoSliceMut, Read};

use ninep::{peek_size, peek_twrite, TwriteHeader, TWRITE_HEADER_LEN};

use crate::fs::{Gathered, PageBuf, PAGE_SIZE};

/// The least data of whole pages, still to be read, for which a Twrite's data is read
/// into page buffers.
pub(super) const GATHER_MIN: usize = 32 * 1024;

/// Bytes read past the end of a Twrite whose data goes into pages: the fixed part of a
/// Twrite (or a Tread) that may follow.
pub(super) const LOOKAHEAD: usize = TWRITE_HEADER_LEN;

/// Bytes asked of the transport in one read when no message is waiting for its rest.
pub(super) const READ_CHUNK: usize = 64 * 1024;

/// Bytes read and not yet answered: `buf[start..end]`.
#[derive(Default)]
pub(super) struct Input {
    /// Its length is the most ever needed; only `..end` holds bytes read.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The message at the front, a Twrite whose data is being read into pages.
    gather: Option<Gather>,
    /// Page buffers for the next Twrite's data.
    spare: Vec<PageBuf>,
    /// Most buffers kept in `spare`: the pages of one message of msize.
    spare_max: usize,
    /// The last message consumed was read into pages: while nothing is pending, a read
    /// takes only [`LOOKAHEAD`] bytes, so that if the next message is a large Twrite too
    /// its data also goes into pages (a read of whatever is there would bring most of
    /// it into the buffer).
    after_gathered: bool,
}

/// A Twrite at the front of the input whose whole pages of data are read into `pages`:
/// `buf[start..start + before]` holds its header and the data before them, and the data
/// after them follows at `start + before`, `after` bytes.
struct Gather {
    header: TwriteHeader,
    before: usize,
    pages: Vec<PageBuf>,
    /// Bytes read into `pages` so far.
    filled: usize,
    after: usize,
}

impl Gather {
    fn page_bytes(&self) -> usize {
        self.pages.len() * PAGE_SIZE
    }
}

/// A Twrite read in pieces, from [`Input::gathered`].
pub(super) struct GatheredWrite<'a> {
    pub header: TwriteHeader,
    pub data: Gathered<'a>,
    /// Where the buffers left over after the write go.
    pub spare: &'a mut Vec<PageBuf>,
}

impl GatheredWrite<'_> {
    /// The whole message in one buffer, for the paths that decode bytes.
    pub fn message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(TWRITE_HEADER_LEN + self.data.len());
        let size = TWRITE_HEADER_LEN as u32 + self.header.count;
        m.extend_from_slice(&size.to_le_bytes());
        m.push(ninep::mtype::TWRITE);
        m.extend_from_slice(&self.header.tag.to_le_bytes());
        m.extend_from_slice(&self.header.fid.to_le_bytes());
        m.extend_from_slice(&self.header.offset.to_le_bytes());
        m.extend_from_slice(&self.header.count.to_le_bytes());
        m.extend_from_slice(&self.data.to_vec());
        m
    }
}

impl Input {
    /// The bytes read and not yet consumed (none while a Twrite's data is read into
    /// pages: that message is [`Input::gathered`]'s).
    pub fn pending(&self) -> &[u8] {
        if self.gather.is_some() {
            return &[];
        }
        &self.buf[self.start..self.end]
    }

    /// The Twrite at the front whose data was read into pages, once all of it is in.
    /// [`Input::finish_gathered`] consumes it.
    pub fn gathered(&mut self) -> Option<GatheredWrite<'_>> {
        let g = self.gather.as_mut()?;
        let in_buf = g.before + g.after;
        if g.filled < g.page_bytes() || self.end - self.start < in_buf {
            return None;
        }
        let message = &self.buf[self.start..self.start + in_buf];
        Some(GatheredWrite {
            header: g.header,
            data: Gathered {
                head: &message[TWRITE_HEADER_LEN..g.before],
                pages: std::mem::take(&mut g.pages),
                tail: &message[g.before..],
            },
            spare: &mut self.spare,
        })
    }

    /// Consumes the message [`Input::gathered`] handed out.
    pub fn finish_gathered(&mut self) {
        if let Some(g) = self.gather.take() {
            self.spare.extend(g.pages);
            self.spare.truncate(self.spare_max);
            self.consume(g.before + g.after);
            self.after_gathered = true;
        }
    }

    /// True if the last message answered was read into pages and none has been
    /// answered since.
    pub fn after_gathered(&self) -> bool {
        self.after_gathered
    }

    /// True if the message at the front is a Twrite not yet all read (its header is in).
    pub fn twrite_begun(&self) -> bool {
        self.gather.is_some()
            || peek_twrite(self.pending())
                .is_some_and(|h| self.pending().len() < TWRITE_HEADER_LEN + h.count as usize)
    }

    /// Marks the first `n` pending bytes answered.
    pub fn consume(&mut self, n: usize) {
        if n > 0 {
            self.after_gathered = false;
        }
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            // Everything answered: the next read starts at the front.
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads once from `reader`, whatever it has, into the room after the pending bytes:
    /// at least the rest of the message at the front when its size is in (the caller has
    /// checked that size against msize), and at least [`READ_CHUNK`]. Returns the bytes
    /// read (0 at end of file).
    ///
    /// `msize`, once a Tversion has set it, lets a Twrite at the front have its data
    /// read into pages (see the module's notes); the caller has checked its size
    /// against it.
    pub fn read_from(&mut self, reader: &mut impl Read, msize: Option<u32>) -> io::Result<usize> {
        if let Some(msize) = msize {
            if self.gather.is_none() {
                self.spare_max = msize as usize / PAGE_SIZE;
                self.gather = self.start_gather();
            }
        }
        if self.gather.is_some() {
            return self.read_gathering(reader);
        }
        let have = self.end - self.start;
        let wanted = peek_size(self.pending()).map_or(0, |size| size as usize);
        let room = READ_CHUNK.max(wanted.saturating_sub(have));
        if self.buf.len() - self.end < room {
            // Only the unanswered tail moves: less than one message.
            self.buf.copy_within(self.start..self.end, 0);
            self.start = 0;
            self.end = have;
            if self.buf.len() - self.end < room {
                // A chunk to spare, so that the next message's rest, read from a little
                // further in, finds its room without a move.
                self.buf.resize(self.end + room + READ_CHUNK, 0);
            }
        }
        let limit = match peek_twrite(self.pending()) {
            // The rest of a large Twrite too little of which is left for pages: read no
            // further than the next message's header, whose data may go into pages.
            Some(h) if h.count as usize >= GATHER_MIN => {
                self.start + TWRITE_HEADER_LEN + h.count as usize + LOOKAHEAD
            }
            _ if self.after_gathered && have < LOOKAHEAD => self.start + LOOKAHEAD,
            _ => self.buf.len(),
        }
        .min(self.buf.len());
        let n = reader.read(&mut self.buf[self.end..limit])?;
        self.end += n;
        Ok(n)
    }

    /// The gather of the Twrite at the front, if its data still to come has
    /// [`GATHER_MIN`] bytes of whole file pages.
    fn start_gather(&mut self) -> Option<Gather> {
        let pending = &self.buf[self.start..self.end];
        let header = peek_twrite(pending)?;
        let size = TWRITE_HEADER_LEN + header.count as usize;
        if pending.len() >= size {
            return None;
        }
        let data_in = (pending.len() - TWRITE_HEADER_LEN) as u64;
        let page = PAGE_SIZE as u64;
        let next = header.offset.checked_add(data_in)?;
        let first = next.checked_next_multiple_of(page)?;
        let data_end = header.offset.checked_add(u64::from(header.count))?;
        let pages = data_end.saturating_sub(first) / page;
        if (pages * page) < GATHER_MIN as u64 {
            return None;
        }
        let before = TWRITE_HEADER_LEN + (first - header.offset) as usize;
        let after = (data_end - first - pages * page) as usize;
        let mut buffers = Vec::with_capacity(pages as usize);
        for _ in 0..pages {
            buffers.push(self.spare.pop().unwrap_or_default());
        }
        Some(Gather {
            header,
            before,
            pages: buffers,
            filled: 0,
            after,
        })
    }

    /// One vectored read of the gathered Twrite's rest: the buffer up to its pages, the
    /// pages, the buffer after them and [`LOOKAHEAD`] bytes more.
    fn read_gathering(&mut self, reader: &mut impl Read) -> io::Result<usize> {
        let Some(g) = self.gather.as_mut() else {
            return Ok(0);
        };
        let need = g.before + g.after + LOOKAHEAD;
        if self.buf.len() - self.start < need {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < need {
                self.buf.resize(need, 0);
            }
        }
        let split = self.start + g.before;
        let (front, back) = self.buf.split_at_mut(split);
        let back = &mut back[..need - g.before];
        let mut slices = Vec::with_capacity(g.pages.len() + 2);
        if self.end < split {
            slices.push(IoSliceMut::new(&mut front[self.end..]));
        }
        let page_bytes = g.page_bytes();
        if g.filled < page_bytes {
            let (at, within) = (g.filled / PAGE_SIZE, g.filled % PAGE_SIZE);
            for (i, page) in g.pages.iter_mut().enumerate().skip(at) {
                let from = if i == at { within } else { 0 };
                slices.push(IoSliceMut::new(&mut page.bytes_mut()[from..]));
            }
        }
        let after_from = self.end.saturating_sub(split);
        slices.push(IoSliceMut::new(&mut back[after_from..]));
        let n = reader.read_vectored(&mut slices)?;
        // The kernel filled the slices in order: share `n` out the same way.
        let mut left = n;
        if self.end < split {
            let k = left.min(split - self.end);
            self.end += k;
            left -= k;
        }
        let k = left.min(page_bytes - g.filled);
        g.filled += k;
        left -= k;
        self.end += left;
        Ok(n)
    }
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
