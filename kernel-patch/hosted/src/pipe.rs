//! Pipes: a bounded buffer between a read end and a write end, each an open file that
//! fork shares, with blocking reads and writes a note interrupts.
//!
//! - The buffer holds at most [`PIPE_CAPACITY`] bytes (64 KiB, Linux's 16 pages) as a
//!   queue of *chunks*: bytes copied in, or pages lent to the pipe (a write from process
//!   memory of whole pages, see `sysuser`), which the pipe holds until a reader has
//!   copied them out and then drops, returning the loan.
//! - A read returns what the buffer holds, up to the length asked for, and blocks while
//!   it is empty and a write end is open; with every write end closed it returns 0 (end
//!   of file). A write blocks for room; writes of at most [`PIPE_ATOMIC`] bytes go in
//!   whole (never interleaved with another writer's), longer ones in pieces as room
//!   appears. With every read end closed a write fails with
//!   [`PipeError::Broken`] (EPIPE), or returns what it wrote before.
//! - A note interrupts a blocked read or write: it fails with
//!   [`PipeError::Interrupted`] (the note consumed), or, if it had written some bytes,
//!   returns their count and leaves the note posted for the next call (as the mount
//!   driver does for a transfer cut short). A note does not interrupt a call that need
//!   not block.
//! - An end is closed when its last holder lets it go (close, or exit of every process
//!   fork shared it with): a descriptor names a [`PipeEnd`], shared as a file
//!   description is.
//!
//! Lock order: a pipe's state lock is a leaf. A reader takes pieces of chunks out under
//! it and copies them with no lock held (a lent chunk's frames through their slot locks,
//! leaves, or their shared bytes); chunks that leave the pipe (loans returned to vm) are
//! dropped after the state lock is released.
//! A blocked end sleeps on the pipe's rendezvous with no lock held; every change it may
//! wait for moves `changes` under the state lock, then wakes the rendezvous with the
//! state lock released, so a sleeper that saw the old count is always woken.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use mnt::{Interrupt, Rendez};

use crate::counters::Counters;
use crate::frames::SharedFrame;
use crate::process::lock;

/// The most bytes a pipe holds (Linux's 16 pages).
pub const PIPE_CAPACITY: usize = 64 * 1024;

/// Writes of at most this many bytes go into a pipe whole (POSIX's `PIPE_BUF`).
pub(crate) const PIPE_ATOMIC: usize = 4096;

/// Why a pipe read or write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PipeError {
    /// Every read end is closed (EPIPE).
    Broken,
    /// A note interrupted the call before it transferred anything.
    Interrupted,
}

/// Bytes a pipe holds without having copied them: pages lent to it. Dropping it returns
/// the loan.
pub(crate) trait LentBytes: Send + Sync {
    /// How many bytes.
    fn len(&self) -> usize;
    /// Copies `out.len()` bytes from byte `at` into `out` (takes only leaf locks).
    fn copy_out(&self, at: usize, out: &mut [u8]);
    /// Bytes `at..at + len` as the lent frames' bytes, held with no lock, and the part of
    /// each that is wanted.
    fn shared(&self, at: usize, len: usize) -> Vec<(SharedFrame, std::ops::Range<usize>)>;
}

/// What a writer puts into a pipe.
pub(crate) enum Chunk {
    /// Bytes copied into the kernel.
    Copied(Vec<u8>),
    /// Pages lent to the pipe.
    Lent(Box<dyn LentBytes>),
}

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Copied(bytes) => bytes.len(),
            Chunk::Lent(lent) => lent.len(),
        }
    }

    fn copy_out(&self, at: usize, out: &mut [u8]) {
        match self {
            Chunk::Copied(bytes) => out.copy_from_slice(&bytes[at..at + out.len()]),
            Chunk::Lent(lent) => lent.copy_out(at, out),
        }
    }
}

/// A chunk in the buffer and how much of it readers have taken.
struct Queued {
    chunk: Arc<Chunk>,
    read: usize,
}

/// Bytes `range` of a chunk, taken out of a pipe by a reader.
pub(crate) struct Piece {
    chunk: Arc<Chunk>,
    range: std::ops::Range<usize>,
}

impl Piece {
    pub(crate) fn len(&self) -> usize {
        self.range.len()
    }

    /// Copies the piece's bytes into `out` (`len()` bytes).
    pub(crate) fn copy_to(&self, out: &mut [u8]) {
        self.chunk.copy_out(self.range.start, out);
    }

    /// The piece's bytes as slices, in order, each given to `f` (the copied bytes
    /// themselves, or lent frames' bytes held with no lock), until `f` fails.
    pub(crate) fn for_each_slice<E>(
        &self,
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        match &*self.chunk {
            Chunk::Copied(bytes) => f(&bytes[self.range.clone()]),
            Chunk::Lent(lent) => {
                for (bytes, range) in lent.shared(self.range.start, self.range.len()) {
                    f(&bytes[range])?;
                }
                Ok(())
            }
        }
    }
}

/// Takes at most `len` bytes (and at least one) from the front of the buffer.
fn take_locked(state: &mut PipeState, len: usize) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut n = 0;
    while n < len {
        let Some(front) = state.chunks.front_mut() else {
            break;
        };
        let k = (front.chunk.len() - front.read).min(len - n);
        pieces.push(Piece {
            chunk: front.chunk.clone(),
            range: front.read..front.read + k,
        });
        front.read += k;
        n += k;
        if front.read == front.chunk.len() {
            state.chunks.pop_front();
        }
    }
    state.bytes -= n;
    pieces
}

#[derive(Default)]
struct PipeState {
    chunks: VecDeque<Queued>,
    /// Bytes in `chunks` not yet read.
    bytes: usize,
    /// Room writers have claimed and are filling (copying or lending) with no lock held.
    reserved: usize,
    readers: usize,
    writers: usize,
}

impl PipeState {
    fn room(&self) -> usize {
        PIPE_CAPACITY - self.bytes - self.reserved
    }
}

/// A pipe's rendezvous: every blocked end of the pipe sleeps here, and every change
/// wakes them all, each checking the change count it saw.
#[derive(Default)]
struct PipeRendez {
    lock: Mutex<()>,
    cv: Condvar,
}

impl Rendez for PipeRendez {
    fn sleep(&self, ready: &dyn Fn() -> bool) {
        let mut guard = lock(&self.lock);
        while !ready() {
            guard = self
                .cv
                .wait(guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Wakes every end asleep here. The answer ("someone may have been asleep") is only
    /// a hint in `Rendez`'s contract; nothing here hands a role on by it.
    fn wakeup(&self) -> bool {
        let _guard = lock(&self.lock);
        self.cv.notify_all();
        true
    }
}

/// One pipe: the buffer both ends share.
pub(crate) struct Pipe {
    state: Mutex<PipeState>,
    /// Moves (under the state lock) on every change a blocked end may wait for.
    changes: AtomicU64,
    rendez: Arc<PipeRendez>,
}

/// Which end of a pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Read,
    Write,
}

/// One end of a pipe, as a descriptor names it (shared by the descriptors fork copied);
/// dropping the last holder closes the end.
pub(crate) struct PipeEnd {
    pub(crate) pipe: Arc<Pipe>,
    pub(crate) end: End,
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let dropped = self.pipe.change(|state| {
            match self.end {
                End::Read => state.readers -= 1,
                End::Write => state.writers -= 1,
            }
            // With no reader left nobody will read what is buffered: the loans go back.
            if state.readers == 0 {
                state.bytes = 0;
                std::mem::take(&mut state.chunks)
            } else {
                VecDeque::new()
            }
        });
        drop(dropped);
    }
}

/// A pipe's two ends, made together.
pub(crate) fn pipe() -> (PipeEnd, PipeEnd) {
    let pipe = Arc::new(Pipe {
        state: Mutex::new(PipeState {
            readers: 1,
            writers: 1,
            ..PipeState::default()
        }),
        changes: AtomicU64::new(0),
        rendez: Arc::new(PipeRendez::default()),
    });
    (
        PipeEnd {
            pipe: pipe.clone(),
            end: End::Read,
        },
        PipeEnd {
            pipe,
            end: End::Write,
        },
    )
}

impl Pipe {
    /// Changes the state with `f` and wakes every blocked end (after the lock is
    /// released); returns what `f` returned, dropped by the caller with no lock held.
    fn change<T>(&self, f: impl FnOnce(&mut PipeState) -> T) -> T {
        let out = {
            let mut state = lock(&self.state);
            let out = f(&mut state);
            self.changes.fetch_add(1, Ordering::AcqRel);
            out
        };
        self.rendez.wakeup();
        out
    }

    /// Sleeps until the state changes after `seen` or a note comes; consumes the note.
    fn wait(&self, seen: u64, intr: &Interrupt, counters: &Counters) -> Result<(), PipeError> {
        Counters::bump(&counters.pipe_waits);
        let rendez: Arc<dyn Rendez> = self.rendez.clone();
        intr.sleep_on(&rendez, &|| self.changes.load(Ordering::Acquire) != seen);
        if intr.take() {
            return Err(PipeError::Interrupted);
        }
        Ok(())
    }

    /// Takes at most `len` bytes out of the buffer: what it holds, waiting while it is
    /// empty and a writer remains; nothing at end of file (or for `len` 0). The check and
    /// the taking are one hold of the lock, so a concurrent reader never leaves this one
    /// an empty take that looks like end of file. The bytes are copied from the pieces
    /// with no pipe lock held; dropping the last piece of a lent chunk returns its loan
    /// (do so with no lock held).
    pub(crate) fn take(
        &self,
        len: usize,
        intr: &Interrupt,
        counters: &Counters,
    ) -> Result<Vec<Piece>, PipeError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        loop {
            let seen = {
                let mut state = lock(&self.state);
                if state.bytes > 0 {
                    let pieces = take_locked(&mut state, len);
                    self.changes.fetch_add(1, Ordering::AcqRel);
                    drop(state);
                    self.rendez.wakeup();
                    return Ok(pieces);
                }
                if state.writers == 0 {
                    return Ok(Vec::new());
                }
                self.changes.load(Ordering::Acquire)
            };
            self.wait(seen, intr, counters)?;
        }
    }

    /// Reads at most `buf.len()` bytes into a kernel buffer (see [`take`](Self::take)); 0
    /// at end of file.
    pub(crate) fn read(
        &self,
        buf: &mut [u8],
        intr: &Interrupt,
        counters: &Counters,
    ) -> Result<usize, PipeError> {
        let pieces = self.take(buf.len(), intr, counters)?;
        let mut n = 0;
        for piece in &pieces {
            piece.copy_to(&mut buf[n..n + piece.len()]);
            n += piece.len();
        }
        // The chunks read to their end leave with no lock held: their loans go back.
        drop(pieces);
        Ok(n)
    }

    /// Writes `len` bytes, `fill(done, n)` making the chunks of the next `n` of them
    /// (bytes `done..done + n` of the write) with no pipe lock held, into room claimed
    /// for them. Waits for room: all of a write of at most [`PIPE_ATOMIC`] bytes at once,
    /// at least that much (or the rest) of a longer one. Returns `len`, or the bytes
    /// written before an interrupt, a broken pipe or a failed `fill`; with none written
    /// the error (a failed `fill`'s own through `E`).
    pub(crate) fn write_with<E: From<PipeError>>(
        &self,
        len: usize,
        intr: &Interrupt,
        counters: &Counters,
        mut fill: impl FnMut(usize, usize) -> Result<Vec<Chunk>, E>,
    ) -> Result<usize, E> {
        let mut done = 0;
        while done < len {
            let want = (len - done).min(PIPE_ATOMIC);
            let claimed = loop {
                let seen = {
                    let mut state = lock(&self.state);
                    if state.readers == 0 {
                        break Err(PipeError::Broken);
                    }
                    if state.room() >= want {
                        let n = state.room().min(len - done);
                        state.reserved += n;
                        break Ok(n);
                    }
                    self.changes.load(Ordering::Acquire)
                };
                if let Err(err) = self.wait(seen, intr, counters) {
                    break Err(err);
                }
            };
            let n = match claimed {
                Ok(n) => n,
                Err(err) if done == 0 => return Err(err.into()),
                Err(err) => {
                    if err == PipeError::Interrupted {
                        // Cut short with a count: the note stays for the next call.
                        intr.post();
                    }
                    return Ok(done);
                }
            };
            let chunks = fill(done, n);
            let refused = self.change(|state| {
                state.reserved -= n;
                match chunks {
                    Ok(chunks) if state.readers > 0 => {
                        debug_assert_eq!(chunks.iter().map(Chunk::len).sum::<usize>(), n);
                        state.bytes += n;
                        state.chunks.extend(
                            chunks
                                .into_iter()
                                .filter(|chunk| chunk.len() > 0)
                                .map(|chunk| Queued {
                                    chunk: Arc::new(chunk),
                                    read: 0,
                                }),
                        );
                        Ok(None)
                    }
                    // The last reader left while the chunks were made.
                    Ok(chunks) => Ok(Some(chunks)),
                    Err(err) => Err(err),
                }
            });
            match refused {
                Ok(None) => done += n,
                Ok(Some(chunks)) => {
                    drop(chunks);
                    return if done == 0 {
                        Err(PipeError::Broken.into())
                    } else {
                        Ok(done)
                    };
                }
                Err(err) if done == 0 => return Err(err),
                Err(_) => return Ok(done),
            }
        }
        Ok(done)
    }

    /// Writes `data`, copied into the pipe (the kernel's own buffers).
    pub(crate) fn write(
        &self,
        data: &[u8],
        intr: &Interrupt,
        counters: &Counters,
    ) -> Result<usize, PipeError> {
        self.write_with(data.len(), intr, counters, |done, n| {
            Ok(vec![Chunk::Copied(data[done..done + n].to_vec())])
        })
    }

    /// Bytes buffered and chunks holding lent pages now (for tests and the checker).
    pub(crate) fn contents(&self) -> (usize, usize) {
        let state = lock(&self.state);
        let lent = state
            .chunks
            .iter()
            .filter(|queued| matches!(*queued.chunk, Chunk::Lent(_)))
            .count();
        (state.bytes, lent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_out_in_order_across_chunks_and_room_comes_back() {
        let counters = Counters::default();
        let intr = Interrupt::new();
        let (reader, writer) = pipe();
        assert_eq!(writer.pipe.write(b"hello ", &intr, &counters), Ok(6));
        assert_eq!(writer.pipe.write(b"world", &intr, &counters), Ok(5));
        let mut buf = [0u8; 8];
        assert_eq!(reader.pipe.read(&mut buf, &intr, &counters), Ok(8));
        assert_eq!(&buf, b"hello wo");
        assert_eq!(reader.pipe.read(&mut buf, &intr, &counters), Ok(3));
        assert_eq!(&buf[..3], b"rld");
        let full = vec![1u8; PIPE_CAPACITY];
        assert_eq!(
            writer.pipe.write(&full, &intr, &counters),
            Ok(PIPE_CAPACITY)
        );
        assert_eq!(reader.pipe.contents().0, PIPE_CAPACITY);
        drop(writer);
        let mut big = vec![0u8; PIPE_CAPACITY + 1];
        assert_eq!(
            reader.pipe.read(&mut big, &intr, &counters),
            Ok(PIPE_CAPACITY)
        );
        assert_eq!(reader.pipe.read(&mut big, &intr, &counters), Ok(0), "EOF");
        assert_eq!(Counters::get(&counters.pipe_waits), 0, "nothing blocked");
    }

    #[test]
    fn a_write_with_no_reader_is_broken_and_a_full_pipe_blocks_a_noted_write() {
        let counters = Counters::default();
        let intr = Interrupt::new();
        let (reader, writer) = pipe();
        let full = vec![1u8; PIPE_CAPACITY];
        assert_eq!(
            writer.pipe.write(&full, &intr, &counters),
            Ok(PIPE_CAPACITY)
        );
        // Full: a note already posted interrupts the write that must block.
        intr.post();
        assert_eq!(
            writer.pipe.write(b"x", &intr, &counters),
            Err(PipeError::Interrupted)
        );
        assert!(!intr.is_pending(), "the failed write consumed the note");
        assert_eq!(Counters::get(&counters.pipe_waits), 1);
        drop(reader);
        assert_eq!(
            writer.pipe.write(b"x", &intr, &counters),
            Err(PipeError::Broken)
        );
        assert_eq!(
            writer.pipe.contents(),
            (0, 0),
            "the buffer went with the reader"
        );
    }
}
