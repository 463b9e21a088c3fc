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

use std::io::{self, Read};

use ninep::peek_size;

/// Bytes asked of the transport in one read when no message is waiting for its rest.
pub(super) const READ_CHUNK: usize = 64 * 1024;

/// Bytes read and not yet answered: `buf[start..end]`.
#[derive(Default)]
pub(super) struct Input {
    /// Its length is the most ever needed; only `..end` holds bytes read.
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Input {
    /// The bytes read and not yet consumed.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks the first `n` pending bytes answered.
    pub fn consume(&mut self, n: usize) {
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
    pub fn read_from(&mut self, reader: &mut impl Read) -> io::Result<usize> {
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
        let n = reader.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport that hands out the given pieces, one a read (cut to the room given).
    struct Pieces(Vec<Vec<u8>>);

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some(piece) = self.0.first_mut() else {
                return Ok(0);
            };
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            piece.drain(..n);
            if piece.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    /// A message of `len` bytes (size field included), its body filled with `byte`.
    fn message(len: usize, byte: u8) -> Vec<u8> {
        let mut m = vec![byte; len];
        m[..4].copy_from_slice(&(len as u32).to_le_bytes());
        m
    }

    #[test]
    fn a_message_cut_by_reads_is_completed_where_it_was_read() {
        let a = message(100, 1);
        let b = message(3 * READ_CHUNK, 2);
        // One read brings all of a and the start of b, the next ones the rest of b;
        // twice, since the first time the buffer grows (and moves, as a Vec does).
        let mut first = a.clone();
        first.extend_from_slice(&b[..1000]);
        let round = [first, b[1000..].to_vec()];
        let mut t = Pieces([round.clone(), round].concat());
        let mut input = Input::default();
        for round in 0..2 {
            assert_eq!(input.read_from(&mut t).unwrap(), 1100);
            assert_eq!(input.pending()[..100], a[..]);
            input.consume(100);
            let b_at = input.pending().as_ptr();
            // The rest of b is asked for, and no more.
            while input.pending().len() < b.len() {
                assert!(input.read_from(&mut t).unwrap() > 0);
            }
            assert_eq!(input.pending(), &b[..]);
            if round == 1 {
                assert_eq!(input.pending().as_ptr(), b_at, "b was not moved");
            }
            input.consume(b.len());
            assert!(input.pending().is_empty());
        }
        assert_eq!(input.read_from(&mut t).unwrap(), 0, "end of file");
    }

    #[test]
    fn a_read_takes_what_the_transport_has_past_the_end_of_a_message() {
        let a = message(5000, 1);
        let b = message(50, 2);
        let mut t = Pieces(vec![a[..10].to_vec(), [&a[10..], &b[..]].concat()]);
        let mut input = Input::default();
        input.read_from(&mut t).unwrap();
        assert_eq!(
            input.read_from(&mut t).unwrap(),
            4990 + 50,
            "a's rest and b"
        );
        assert_eq!(input.pending(), &[&a[..], &b[..]].concat()[..]);
        input.consume(a.len());
        // b was read where it lies, after a: not moved.
        assert_eq!(input.pending(), &b[..]);
        assert_eq!(input.pending().as_ptr(), input.buf[a.len()..].as_ptr());
    }

    #[test]
    fn an_unanswered_tail_moves_to_the_front_only_when_its_rest_has_no_room() {
        let a = message(30, 1);
        let cut = message(20, 2);
        let big = message(3 * READ_CHUNK, 3);
        let mut t = Pieces(vec![
            [&a[..], &cut[..2]].concat(),
            [&cut[2..], &big[..1000]].concat(),
            big[1000..].to_vec(),
        ]);
        let mut input = Input::default();
        input.read_from(&mut t).unwrap();
        input.consume(a.len());
        // A cut size field with room after it: read in place.
        input.read_from(&mut t).unwrap();
        assert_eq!(input.pending()[..cut.len()], cut[..]);
        assert_eq!(input.pending().as_ptr(), input.buf[a.len()..].as_ptr());
        input.consume(cut.len());
        // The big message's rest does not fit after it: its first 1000 bytes move to the
        // front, the rest is read after them.
        while input.pending().len() < big.len() {
            assert!(input.read_from(&mut t).unwrap() > 0);
        }
        assert_eq!(input.pending(), &big[..]);
        assert_eq!(input.pending().as_ptr(), input.buf.as_ptr());
    }
}
