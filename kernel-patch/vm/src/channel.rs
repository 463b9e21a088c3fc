//! An image's channel, and the closes vm parks for the kernel to run.
//!
//! vm lets go of a channel on paths where the kernel may hold locks of its own: a put from
//! a fault's reclaim runs under the kernel's process segment lock, and so may a put from
//! an exit or an exec. [`ImageFile::close`] may block (a clunk is an RPC), so vm never calls
//! it there. The last reference to an [`ImageChannel`] parks its file instead, and the
//! kernel runs the parked closes where it knows it holds no lock
//! ([`Vm::run_parked_closes`](crate::Vm::run_parked_closes)).
//!
//! Parking never allocates: a slot is reserved in the queue when the channel is made (in
//! attach, which may fail), so a put, which may not fail, only fills it.
//!
//! Lock order: the park lock is a leaf; nothing is called under it.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::file::{FileError, ImageFile};
use crate::frame::AllocError;
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering};

/// The files whose last channel reference went, waiting for the kernel to close them.
pub(crate) struct ParkedCloses {
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
            state: Mutex::new(ParkState {
                files: Vec::new(),
                reserved: 0,
            }),
            count: AtomicUsize::new(0),
        }
    }

    /// Reserves the slot a channel about to be made parks its file in.
    fn reserve(&self) -> Result<(), AllocError> {
        let mut state = self.state.lock();
        let wanted = state.reserved + 1;
        let additional = wanted - state.files.len();
        state
            .files
            .try_reserve(additional)
            .map_err(|_| AllocError)?;
        state.reserved = wanted;
        Ok(())
    }

    /// Parks `file` in the slot its channel reserved.
    fn park(&self, file: Box<dyn ImageFile>) {
        let mut state = self.state.lock();
        debug_assert!(state.files.len() < state.files.capacity());
        // Within the reserved capacity: no allocation.
        state.files.push(file);
        self.count.fetch_add(1, Ordering::Release);
    }

    /// Closes every parked file, one at a time with no lock held. Returns how many.
    pub(crate) fn run(&self) -> usize {
        // The kernel calls this on every way out of a fault or system call: with nothing
        // parked, one atomic read and no lock. A file this thread parked is counted
        // before the read (program order); one parked on another thread is that thread's
        // to close at its own safe point.
        if self.len() == 0 {
            return 0;
        }
        let mut closed = 0;
        loop {
            let file = {
                let mut state = self.state.lock();
                let file = state.files.pop();
                if file.is_some() {
                    state.reserved -= 1;
                    self.count.fetch_sub(1, Ordering::Release);
                }
                file
            };
            let Some(file) = file else {
                return closed;
            };
            file.close();
            closed += 1;
        }
    }

    /// Files parked now. Takes no lock; a park or close on another CPU may be a moment
    /// away from showing.
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

impl Drop for ParkedCloses {
    fn drop(&mut self) {
        // The vm and every channel are gone: nothing can park any more, and no vm lock is
        // held by anyone. Close what is left.
        self.run();
    }
}

/// An image's channel (Plan 9's `Image.c`): the file handle an image reads its pages
/// through, shared by the faults reading with it. When the last clone is dropped its file
/// is parked for the kernel to close ([`ParkedCloses`]), never closed on the spot.
pub(crate) struct ImageChannel {
    file: Option<Box<dyn ImageFile>>,
    parked: Arc<ParkedCloses>,
}

impl ImageChannel {
    /// A channel for `file`, with its slot in `parked` reserved. On an error `file` is given
    /// back, unclosed.
    pub(crate) fn new(
        file: Box<dyn ImageFile>,
        parked: &Arc<ParkedCloses>,
    ) -> Result<Self, (AllocError, Box<dyn ImageFile>)> {
        match parked.reserve() {
            Ok(()) => Ok(Self {
                file: Some(file),
                parked: parked.clone(),
            }),
            Err(err) => Err((err, file)),
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
            self.parked.park(file);
        }
    }
}
