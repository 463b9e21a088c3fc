//! An image's channel, and the closes vm parks for the kernel to run.
//!
//! vm lets go of a channel on paths where the kernel may hold locks of its own: a put from
//! a fault's reclaim runs under the kernel's process segment lock, and so may a put from
//! an exit or an exec. [`ImageFile::close`] may block (a clunk is an RPC), so vm never calls
//! it there. The last reference to an [`ImageChannel`] parks its file instead, and the
//! kernel runs the parked closes where it knows it holds no lock
//! ([`Vm::run_parked_closes`](crate::Vm::run_parked_closes)).
//!
//! Parking never allocates: a slot is reserved in a queue when attach (which may fail) takes
//! the file, before it is a channel, so a put, which may not fail, only fills it. There is
//! a queue a shard of the image table, so attaches of files in different shards share no
//! park lock.
//!
//! Lock order: the park lock is a leaf; nothing is called under it.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::file::{FileError, ImageFile};
use crate::frame::AllocError;
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering};

/// Queues of parked files: one a shard of the image table, so attaches of files in
/// different shards, which reserve a slot and may park a file each time, share no lock.
pub(crate) const PARK_QUEUES: usize = crate::table::SHARDS;

/// The files whose last channel reference went, waiting for the kernel to close them.
pub(crate) struct ParkedCloses {
    queues: [ParkQueue; PARK_QUEUES],
}

/// One queue, alone on its cache lines.
#[repr(align(128))]
struct ParkQueue {
    state: Mutex<ParkState>,
    /// `state.files.len()`, changed under the lock, read without it: a kernel asks on every
    /// way out of a fault whether anything is parked, and must not take a shared lock to
    /// find out there is nothing.
    count: AtomicUsize,
}

struct ParkState {
    files: Vec<Box<dyn ImageFile>>,
    /// Channels alive plus files parked: `files.capacity()` is kept at least this, so a
    /// park never allocates.
    reserved: usize,
}

impl ParkedCloses {
    pub(crate) fn new() -> Self {
        Self {
            queues: core::array::from_fn(|_| ParkQueue {
                state: Mutex::new(ParkState {
                    files: Vec::new(),
                    reserved: 0,
                }),
                count: AtomicUsize::new(0),
            }),
        }
    }

    /// Reserves, in queue `queue`, the slot a file about to be handed over parks in.
    fn reserve(&self, queue: usize) -> Result<(), AllocError> {
        let mut state = self.queues[queue].state.lock();
        let wanted = state.reserved + 1;
        let additional = wanted - state.files.len();
        state
            .files
            .try_reserve(additional)
            .map_err(|_| AllocError)?;
        state.reserved = wanted;
        Ok(())
    }

    /// Parks `file` in the slot reserved for it in queue `queue`.
    fn park(&self, queue: usize, file: Box<dyn ImageFile>) {
        let queue = &self.queues[queue];
        let mut state = queue.state.lock();
        debug_assert!(state.files.len() < state.files.capacity());
        // Within the reserved capacity: no allocation.
        state.files.push(file);
        queue.count.fetch_add(1, Ordering::Release);
    }

    /// Closes every parked file, one at a time with no lock held. Returns how many.
    pub(crate) fn run(&self) -> usize {
        // The kernel calls this on every way out of a fault or system call: with nothing
        // parked, one atomic read a queue and no lock. A file this thread parked is counted
        // before the read (program order); one parked on another thread is that thread's
        // to close at its own safe point.
        let mut closed = 0;
        for queue in &self.queues {
            if queue.count.load(Ordering::Acquire) == 0 {
                continue;
            }
            loop {
                let file = {
                    let mut state = queue.state.lock();
                    let file = state.files.pop();
                    if file.is_some() {
                        state.reserved -= 1;
                        queue.count.fetch_sub(1, Ordering::Release);
                    }
                    file
                };
                let Some(file) = file else {
                    break;
                };
                file.close();
                closed += 1;
            }
        }
        closed
    }

    /// Files parked now. Takes no lock; a park or close on another CPU may be a moment
    /// away from showing.
    pub(crate) fn len(&self) -> usize {
        self.queues
            .iter()
            .map(|queue| queue.count.load(Ordering::Acquire))
            .sum()
    }
}

impl Drop for ParkedCloses {
    fn drop(&mut self) {
        // The vm and every channel are gone: nothing can park any more, and no vm lock is
        // held by anyone. Close what is left.
        self.run();
    }
}

/// A file handed to vm with its parking slot reserved, not yet an image's channel:
/// dropped, it parks the file. Attach holds one while it finds the image, so that an
/// attach whose image has a channel already lets the file go without making a channel.
pub(crate) struct PendingFile<'a> {
    file: Option<Box<dyn ImageFile>>,
    parked: &'a ParkedCloses,
    queue: usize,
}

impl<'a> PendingFile<'a> {
    /// Reserves `file`'s slot in queue `queue` of `parked`. On an error `file` is given
    /// back, unclosed.
    pub(crate) fn new(
        file: Box<dyn ImageFile>,
        parked: &'a ParkedCloses,
        queue: usize,
    ) -> Result<Self, (AllocError, Box<dyn ImageFile>)> {
        let queue = queue % PARK_QUEUES;
        match parked.reserve(queue) {
            Ok(()) => Ok(Self {
                file: Some(file),
                parked,
                queue,
            }),
            Err(err) => Err((err, file)),
        }
    }

    /// The channel of the file (`parked` is the queues this file's slot is in), which takes
    /// the slot over.
    pub(crate) fn into_channel(mut self, parked: &Arc<ParkedCloses>) -> ImageChannel {
        debug_assert!(core::ptr::eq(self.parked, &**parked));
        ImageChannel {
            file: self.file.take(),
            parked: parked.clone(),
            queue: self.queue,
        }
    }
}

impl Drop for PendingFile<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            self.parked.park(self.queue, file);
        }
    }
}

/// An image's channel (Plan 9's `Image.c`): the file handle an image reads its pages
/// through, shared by the faults reading with it. When the last clone is dropped its file
/// is parked for the kernel to close ([`ParkedCloses`]), never closed on the spot.
pub(crate) struct ImageChannel {
    file: Option<Box<dyn ImageFile>>,
    parked: Arc<ParkedCloses>,
    /// The queue its slot is reserved in.
    queue: usize,
}

impl ImageChannel {
    /// A channel for `file`, with its slot in `parked` reserved. On an error `file` is given
    /// back, unclosed. (Attach makes its channels from a [`PendingFile`].)
    #[cfg(test)]
    pub(crate) fn new(
        file: Box<dyn ImageFile>,
        parked: &Arc<ParkedCloses>,
    ) -> Result<Self, (AllocError, Box<dyn ImageFile>)> {
        match PendingFile::new(file, parked, 0) {
            Ok(pending) => Ok(pending.into_channel(parked)),
            Err(failed) => Err(failed),
        }
    }

    /// Reads a whole page at `offset` into `buf`, zero-filling past the end of file.
    pub(crate) fn read_page(&self, offset: u64, buf: &mut [u8]) -> Result<(), FileError> {
        let file = self.file.as_ref().ok_or(FileError::Gone)?;
        let mut filled = 0;
        while filled < buf.len() {
            let n = file.read_at(offset + filled as u64, &mut buf[filled..])?;
            if n == 0 {
                break;
            }
            if n > buf.len() - filled {
                // A file claiming more bytes than asked for is broken; do not trust it.
                return Err(FileError::Io);
            }
            filled += n;
        }
        buf[filled..].fill(0);
        Ok(())
    }
}

impl ImageChannel {
    /// Whether its file was opened for writing ([`ImageFile::writable`]).
    pub(crate) fn writable(&self) -> bool {
        self.file.as_ref().is_some_and(|file| file.writable())
    }

    /// Writes all of `buf` at `offset` (several writes if the file takes less at once).
    /// May block: called with no vm lock held.
    pub(crate) fn write_all(&self, offset: u64, buf: &[u8]) -> Result<(), FileError> {
        let file = self.file.as_ref().ok_or(FileError::Gone)?;
        let mut done = 0;
        while done < buf.len() {
            let n = file.write_at(offset + done as u64, &buf[done..])?;
            if n == 0 || n > buf.len() - done {
                // A file that takes nothing, or claims more than it was given, is broken.
                return Err(FileError::Io);
            }
            done += n;
        }
        Ok(())
    }
}

impl Drop for ImageChannel {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            self.parked.park(self.queue, file);
        }
    }
}
