//! Test doubles for the bench's own unit tests: a writer that takes a few bytes a call, so
//! partial writes happen.

use std::io::{self, IoSlice, Write};

/// A writer that takes at most `step` bytes a call, plain or vectored, and keeps them.
pub(crate) struct NarrowWriter {
    pub(crate) got: Vec<u8>,
    step: usize,
}

impl NarrowWriter {
    pub(crate) fn new(step: usize) -> NarrowWriter {
        NarrowWriter {
            got: Vec::new(),
            step,
        }
    }
}

impl Write for NarrowWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step);
        self.got.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut left = self.step;
        for b in bufs {
            let n = b.len().min(left);
            self.got.extend_from_slice(&b[..n]);
            left -= n;
        }
        Ok(self.step - left)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
