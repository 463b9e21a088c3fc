//! An image's channel, and the closes vm parks for the kernel to run.
//!
//! vm lets go of a channel on paths where the kernel may hold locks of its own: a put from
//! a fault's reclaim runs under the kernel's process segment lock, and so may a put from
//! an exit or an exec. [`ImageFile::close`] may block (a clunk is an RPC), so vm never calls
//! it there. The last reference to an [`ImageChannel`] parks its file instead, and the
//! kernel runs the parked closes where it knows it holds no lock
//! ([`Vm::run_parked_closes_on`](crate::Vm::run_parked_closes_on) on each CPU,
//! [`Vm::run_parked_closes`](crate::Vm::run_parked_closes) for all of them).
//!
//! Parking never allocates: a slot is reserved in a queue when attach (which may fail) takes
//! the file, before it is a channel, so a put, which may not fail, only fills it.
//!
//! There is a queue a CPU and one shared queue. An attach told its CPU
//! ([`Vm::attach_on`](crate::Vm::attach_on)) reserves the file's slot in that CPU's queue,
//! so the hit path of a running program (the image has a channel; the file handed over
//! is parked at once) parks on the attaching CPU and is closed by that CPU's next drain:
//! two CPUs attaching share no park queue, and neither closes (frees) the other's files.
//! A file that becomes a channel moves its slot to the shared queue, because its last
//! reference may go on any CPU (an exit, a reclaim), and every CPU's drain runs the
//! shared queue too: whoever parks a file closes it at its own next safe point, and no
//! CPU's file waits for another CPU to pass one (an idle CPU may never). Files handed
//! over with no CPU said ([`Vm::attach`](crate::Vm::attach)) park in the shared queue.
//!
//! Lock order: the park lock is a leaf; nothing is called under it.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::file::{FileError, ImageFile};
use crate::frame::AllocError;
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering};

/// CPU queues: CPU `n` parks in queue `n % CPU_QUEUES` (CPUs past it share). Under loom
/// two, so a model's two threads each have one.
pub(crate) const CPU_QUEUES: usize = if cfg!(loom) { 2 } else { 16 };

/// Where a file's slot is: a CPU's queue, or the shared one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueueId(usize);

impl QueueId {
    /// The queue every drain runs: channels' files, and files handed over with no CPU.
    pub(crate) const SHARED: Self = Self(CPU_QUEUES);

    /// The queue of CPU `cpu`.
    pub(crate) fn of_cpu(cpu: usize) -> Self {
        Self(cpu % CPU_QUEUES)
    }

    /// Its number, below [`PARK_QUEUES`]: what else is kept a CPU (attach's counters) is
    /// indexed by it too.
    pub(crate) fn index(self) -> usize {
        self.0
    }
}

/// Queues in all: the CPUs' and the shared one.
pub(crate) const PARK_QUEUES: usize = CPU_QUEUES + 1;

/// The files whose last channel reference went, waiting for the kernel to close them.
pub(crate) struct ParkedCloses {
    /// The CPUs' queues, then the shared one ([`QueueId::SHARED`]).
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
    /// Channels alive plus files pending or parked whose slot is here: `files.capacity()`
    /// is kept at least this, so a park never allocates.
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

    fn queue(&self, id: QueueId) -> &ParkQueue {
        &self.queues[id.0]
    }

    /// Reserves, in queue `id`, the slot a file about to be handed over parks in.
    fn reserve(&self, id: QueueId) -> Result<(), AllocError> {
        let mut state = self.queue(id).state.lock();
        let wanted = state.reserved + 1;
        let additional = wanted - state.files.len();
        state
            .files
            .try_reserve(additional)
            .map_err(|_| AllocError)?;
        state.reserved = wanted;
        Ok(())
    }

    /// Gives back a slot of queue `id` that no file will park in (it moved to another
    /// queue). The capacity stays, for the next reservation.
    fn unreserve(&self, id: QueueId) {
        let mut state = self.queue(id).state.lock();
        debug_assert!(state.reserved > state.files.len());
        state.reserved -= 1;
    }

    /// Parks `file` in the slot reserved for it in queue `id`.
    fn park(&self, id: QueueId, file: Box<dyn ImageFile>) {
        let queue = self.queue(id);
        let mut state = queue.state.lock();
        debug_assert!(state.files.len() < state.files.capacity());
        // Within the reserved capacity: no allocation.
        state.files.push(file);
        queue.count.fetch_add(1, Ordering::Release);
    }

    /// Closes every file parked in queue `id`, one at a time with no lock held. Returns how
    /// many.
    fn run_queue(&self, id: QueueId) -> usize {
        let queue = self.queue(id);
        // With nothing parked: one atomic read and no lock. A file this thread parked is
        // counted before the read (program order).
        if queue.count.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let mut closed = 0;
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
                return closed;
            };
            file.close();
            closed += 1;
        }
    }

    /// Closes the files of CPU `cpu`'s queue and of the shared queue: what `cpu` parked
    /// (and what CPUs sharing its queue parked), and every channel's file. Two atomic reads
    /// when nothing is parked; another CPU's queue is never read.
    pub(crate) fn run_on(&self, cpu: usize) -> usize {
        let own = self.run_queue(QueueId::of_cpu(cpu));
        // vm-rule(cpu-drain-runs-shared): a channel's file parks in the shared queue on
        // whatever CPU let it go; each CPU's drain runs it, so the parker's next safe point
        // closes it, with no drain-everything call.
        own + self.run_queue(QueueId::SHARED)
    }

    /// Closes every parked file of every queue (an unmount, a shutdown, a kernel that does
    /// not say its CPU). Returns how many.
    pub(crate) fn run(&self) -> usize {
        (0..PARK_QUEUES)
            .map(|index| self.run_queue(QueueId(index)))
            .sum()
    }

    /// Files parked now in every queue. Takes no lock; a park or close on another CPU may
    /// be a moment away from showing.
    pub(crate) fn len(&self) -> usize {
        self.queues
            .iter()
            .map(|queue| queue.count.load(Ordering::Acquire))
            .sum()
    }

    /// Files parked now that [`run_on`](Self::run_on)`(cpu)` would close: two atomic reads.
    pub(crate) fn len_on(&self, cpu: usize) -> usize {
        let count = |id| self.queue(id).count.load(Ordering::Acquire);
        count(QueueId::of_cpu(cpu)) + count(QueueId::SHARED)
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
    queue: QueueId,
}

impl<'a> PendingFile<'a> {
    /// Reserves `file`'s slot in queue `queue` of `parked`. On an error `file` is given
    /// back, unclosed.
    pub(crate) fn in_queue(
        file: Box<dyn ImageFile>,
        parked: &'a ParkedCloses,
        queue: QueueId,
    ) -> Result<Self, (AllocError, Box<dyn ImageFile>)> {
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
    /// the slot over, moved to the shared queue: a channel's last reference may go on any
    /// CPU. Without memory for the move the slot stays where it is (the file is then
    /// closed by that queue's CPU, or by a drain of all).
    pub(crate) fn into_channel(mut self, parked: &Arc<ParkedCloses>) -> ImageChannel {
        debug_assert!(core::ptr::eq(self.parked, &**parked));
        let mut queue = self.queue;
        // vm-rule(channel-parks-shared): the channel's file parks where every CPU's drain
        // looks, not in the queue of the CPU that happened to attach.
        if queue != QueueId::SHARED && parked.reserve(QueueId::SHARED).is_ok() {
            parked.unreserve(queue);
            queue = QueueId::SHARED;
        }
        ImageChannel {
            file: self.file.take(),
            parked: parked.clone(),
            queue,
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
    queue: QueueId,
}

impl ImageChannel {
    /// A channel for `file`, with its slot in `parked` reserved. On an error `file` is given
    /// back, unclosed. (Attach makes its channels from a [`PendingFile`].)
    #[cfg(test)]
    pub(crate) fn new(
        file: Box<dyn ImageFile>,
        parked: &Arc<ParkedCloses>,
    ) -> Result<Self, (AllocError, Box<dyn ImageFile>)> {
        match PendingFile::in_queue(file, parked, QueueId::SHARED) {
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
