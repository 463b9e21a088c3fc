//! A client's byte stream for tests of the connection's input, cut into reads as a test
//! chooses: each read hands out at most the next of a cycle of sizes, and a vectored
//! read fills its buffers in order, as a socket's does (or only the first non-empty one
//! when not `vectored`, as `Read`'s default does).

use std::io::{self, IoSliceMut, Read};

pub(super) struct Cuts {
    stream: Vec<u8>,
    at: usize,
    reads: usize,
    /// The most each read hands out, in turn, cycled.
    sizes: Vec<usize>,
    vectored: bool,
}

impl Cuts {
    /// `stream` cut into reads of `sizes` bytes in turn (an empty list: all at once).
    pub fn new(stream: Vec<u8>, sizes: Vec<usize>, vectored: bool) -> Cuts {
        Cuts {
            stream,
            at: 0,
            reads: 0,
            sizes,
            vectored,
        }
    }

    /// Reads of 1 to 6,000 bytes, varied deterministically.
    pub fn varied(stream: Vec<u8>, vectored: bool) -> Cuts {
        let sizes = (1..=6000).map(|r| 1 + (r * 7919) % 6000).collect();
        Cuts::new(stream, sizes, vectored)
    }

    /// Reads of `size` bytes, vectored.
    pub fn fixed(stream: Vec<u8>, size: usize) -> Cuts {
        Cuts::new(stream, vec![size], true)
    }

    /// Everything there at once: each read takes all the room it is given, vectored.
    pub fn whole(stream: Vec<u8>) -> Cuts {
        Cuts::new(stream, Vec::new(), true)
    }

    /// The most the next read hands out.
    fn next_size(&mut self) -> usize {
        let size = match self.sizes.len() {
            0 => usize::MAX,
            n => self.sizes[self.reads % n],
        };
        self.reads += 1;
        size.min(self.stream.len() - self.at)
    }
}

impl Read for Cuts {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_vectored(&mut [IoSliceMut::new(buf)])
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let mut left = self.next_size();
        let mut done = 0;
        for buf in bufs.iter_mut().filter(|b| !b.is_empty()) {
            let n = left.min(buf.len());
            buf[..n].copy_from_slice(&self.stream[self.at..self.at + n]);
            self.at += n;
            left -= n;
            done += n;
            if !self.vectored {
                break;
            }
        }
        Ok(done)
    }
}
