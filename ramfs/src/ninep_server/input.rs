//! A connection's input buffer: bytes stay where the transport put them until they
//! are answered, so a Twrite's data is applied to the tree from there, never moved
//! first (the data path's one copy is the one into the file's pages).
//!
//! Nothing is moved because a read never runs past the end of a message whose size is
//! known: once the size field of the message at the front is in, the next read asks for
//! exactly the rest of it. So when it has been answered the buffer holds nothing more
//! and the next read starts at the front again. Only the bytes of a size field cut by a
//! read (at most 3, no data) are ever moved to the front.
//!
//! The buffer is therefore at most [`READ_CHUNK`] + 3 + msize bytes, and is reused, not
//! zeroed, from one read to the next. It grows as a `Vec` does (doubling), so the few
//! times a connection's messages first need more room are the only times its bytes move.

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

    /// Reads once from `reader`: the rest of the message at the front if its size is
    /// in (the caller has checked that size against msize), else up to [`READ_CHUNK`]
    /// bytes. Returns the bytes read (0 at end of file).
    pub fn read_from(&mut self, reader: &mut impl Read) -> io::Result<usize> {
        let have = self.end - self.start;
        let room = match peek_size(self.pending()) {
            Some(size) => (size as usize).saturating_sub(have).max(1),
            None => {
                // A cut size field: move its few bytes to the front.
                self.buf.copy_within(self.start..self.end, 0);
                self.start = 0;
                self.end = have;
                READ_CHUNK
            }
        };
        let want = self.end + room;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let n = reader.read(&mut self.buf[self.end..want])?;
        self.end += n.min(room);
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
    fn a_read_stops_at_the_end_of_a_message_whose_size_is_known() {
        let a = message(5000, 1);
        let b = message(50, 2);
        let mut t = Pieces(vec![a[..10].to_vec(), [&a[10..], &b[..]].concat()]);
        let mut input = Input::default();
        input.read_from(&mut t).unwrap();
        assert_eq!(input.read_from(&mut t).unwrap(), 4990, "the rest of a only");
        assert_eq!(input.pending(), &a[..]);
        input.consume(a.len());
        // b starts at the front.
        input.read_from(&mut t).unwrap();
        assert_eq!(input.pending(), &b[..]);
        assert_eq!(input.pending().as_ptr(), input.buf.as_ptr());
    }

    #[test]
    fn a_cut_size_field_moves_to_the_front() {
        let a = message(30, 1);
        let b = message(20, 2);
        let mut t = Pieces(vec![[&a[..], &b[..2]].concat(), b[2..].to_vec()]);
        let mut input = Input::default();
        input.read_from(&mut t).unwrap();
        input.consume(30);
        assert_eq!(input.pending(), &b[..2]);
        input.read_from(&mut t).unwrap();
        assert_eq!(input.pending(), &b[..]);
        assert_eq!(input.pending().as_ptr(), input.buf.as_ptr());
    }
}
