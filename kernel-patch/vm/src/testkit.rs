//! Fakes of the embedding kernel for tests, benchmarks and the hosted kernel: frames on the
//! heap with an allocation-failure knob, and an in-memory file that records its reads and
//! closes.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::file::{FileError, FileIdentity, ImageFile};
use crate::frame::{AllocError, AllocSite, Frame, FrameAllocator, PAGE_SIZE};
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering};
// Test fakes, not vm: the heap's own `Arc`, which may abort on exhaustion.
use alloc::sync::Arc;

/// How [`HeapFrames`] zeroes and copies, for other allocators that reach their frames only
/// through [`FrameAllocator::with_frame`] and [`FrameAllocator::with_frame_mut`] (the hosted
/// kernel's frames) and override `zero` and `copy` just to count.
pub use crate::frame::{copy_via_buffer, zero_via_with_frame};
pub use crate::mapping::preset_loans;

/// Bytes written over a frame when it is freed, so a page used without being filled shows.
pub const POISON: u8 = 0xdb;

type FrameBytes = Box<[u8; PAGE_SIZE]>;

struct HeapInner {
    slots: Box<[Mutex<Option<FrameBytes>>]>,
    free: Mutex<Vec<u32>>,
    allocated: AtomicU64,
    freed: AtomicU64,
    copies: AtomicU64,
    zeroes: AtomicU64,
    admitted: AtomicU64,
    fail_at: AtomicU64,
    /// A site whose next allocation is refused ([`HeapFrames::fail_site`]).
    fail_site: Mutex<Option<AllocSite>>,
    /// The frame of zeros kept for vm's zero page ([`HeapFrames::with_zero_frame`]): the
    /// slot past the capacity, never handed out.
    zero_frame: Option<Frame>,
    /// Frees of that frame (a vm bug: it is never vm's to free).
    zero_frame_frees: AtomicU64,
    /// Frames kept out of allocation for a caller ([`HeapFrames::reserve`]): a free of one
    /// keeps it aside instead of on the free list.
    reserved: Mutex<(core::ops::Range<u64>, Vec<u32>)>,
}

/// Counters of a [`HeapFrames`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Frames handed out.
    pub allocated: u64,
    /// Frames given back.
    pub freed: u64,
    /// Frame copies (each [`PAGE_SIZE`] bytes).
    pub copies: u64,
    /// Frames zeroed.
    pub zeroes: u64,
    /// Allocations vm asked to make ([`FrameAllocator::admit_allocation`] calls).
    pub admitted: u64,
    /// Frees of the zero frame of [`HeapFrames::with_zero_frame`], which were refused
    /// (it is the kernel's, never vm's to free).
    pub zero_frame_frees: u64,
}

impl FrameStats {
    /// Frames handed out and not yet given back.
    pub fn outstanding(&self) -> u64 {
        self.allocated - self.freed
    }
}

/// Frames on the heap, at most `capacity` at once. Clones share the same frames, so a test
/// keeps one to read counters and turn the failure knob while vm owns another.
#[derive(Clone)]
pub struct HeapFrames {
    inner: Arc<HeapInner>,
}

impl HeapFrames {
    /// At most `capacity` frames; their memory is allocated on first use. vm allocates
    /// its zero page from them ([`FrameAllocator::zero_frame`] is `None`).
    pub fn new(capacity: u32) -> Self {
        Self::build(capacity, false)
    }

    /// At most `capacity` frames, and besides them a frame of zeros that the allocator
    /// keeps for vm's zero page, as Redox keeps `THE_ZEROED_FRAME`: vm allocates none.
    pub fn with_zero_frame(capacity: u32) -> Self {
        Self::build(capacity, true)
    }

    fn build(capacity: u32, zero_frame: bool) -> Self {
        let slots: Vec<Mutex<Option<FrameBytes>>> = (0..capacity + u32::from(zero_frame))
            .map(|_| Mutex::new(None))
            .collect();
        Self {
            inner: Arc::new(HeapInner {
                slots: slots.into_boxed_slice(),
                free: Mutex::new((0..capacity).rev().collect()),
                allocated: AtomicU64::new(0),
                freed: AtomicU64::new(0),
                copies: AtomicU64::new(0),
                zeroes: AtomicU64::new(0),
                admitted: AtomicU64::new(0),
                fail_at: AtomicU64::new(u64::MAX),
                fail_site: Mutex::new(None),
                zero_frame: zero_frame.then_some(Frame(u64::from(capacity))),
                zero_frame_frees: AtomicU64::new(0),
                reserved: Mutex::new((0..0, Vec::new())),
            }),
        }
    }

    /// A boxed clone, to hand to [`Vm::new`](crate::Vm::new).
    pub fn allocator(&self) -> Box<dyn FrameAllocator> {
        Box::new(self.clone())
    }

    /// Refuses the `nth` allocation vm asks for from now on (0: the very next one), once.
    pub fn fail_allocation(&self, nth: u64) {
        let now = self.inner.admitted.load(Ordering::SeqCst);
        self.inner.fail_at.store(now + nth, Ordering::SeqCst);
    }

    /// Refuses the next allocation vm asks for at `site`, once.
    pub fn fail_site(&self, site: AllocSite) {
        *self.inner.fail_site.lock() = Some(site);
    }

    /// Clears [`fail_allocation`](Self::fail_allocation) and [`fail_site`](Self::fail_site).
    pub fn never_fail(&self) {
        self.inner.fail_at.store(u64::MAX, Ordering::SeqCst);
        *self.inner.fail_site.lock() = None;
    }

    /// Keeps the frames of `range` from being handed out (as a kernel does before
    /// [`Vm::vacate`](crate::Vm::vacate)): the free ones leave the free list, and a later
    /// free of one is kept aside. Returns how many of the range are free (kept aside) now.
    pub fn reserve(&self, range: core::ops::Range<u64>) -> usize {
        let mut free = self.inner.free.lock();
        let mut reserved = self.inner.reserved.lock();
        reserved.0 = range.clone();
        let (kept, rest): (Vec<u32>, Vec<u32>) = free
            .iter()
            .partition(|frame| range.contains(&u64::from(**frame)));
        *free = rest;
        reserved.1.extend(kept);
        reserved.1.len()
    }

    /// How many frames of the reserved range are free (kept aside) now.
    pub fn reserved_free(&self) -> usize {
        self.inner.reserved.lock().1.len()
    }

    /// The counters so far.
    pub fn stats(&self) -> FrameStats {
        let inner = &*self.inner;
        FrameStats {
            allocated: inner.allocated.load(Ordering::SeqCst),
            freed: inner.freed.load(Ordering::SeqCst),
            copies: inner.copies.load(Ordering::SeqCst),
            zeroes: inner.zeroes.load(Ordering::SeqCst),
            admitted: inner.admitted.load(Ordering::SeqCst),
            zero_frame_frees: inner.zero_frame_frees.load(Ordering::SeqCst),
        }
    }

    /// A copy of a frame's bytes (zeros for a frame never written).
    pub fn read(&self, frame: Frame) -> Vec<u8> {
        let mut out = alloc::vec![0u8; PAGE_SIZE];
        self.with_frame(frame, &mut |bytes| out.copy_from_slice(bytes));
        out
    }

    /// Writes `bytes` into a frame at `offset`, as a user store through a mapping would.
    /// Bytes past the frame's end are ignored.
    pub fn write(&self, frame: Frame, offset: usize, bytes: &[u8]) {
        self.with_frame_mut(frame, &mut |page| {
            let start = offset.min(PAGE_SIZE);
            let end = offset.saturating_add(bytes.len()).min(PAGE_SIZE);
            page[start..end].copy_from_slice(&bytes[..end - start]);
        });
    }

    fn slot(&self, frame: Frame) -> Option<&Mutex<Option<FrameBytes>>> {
        self.inner.slots.get(usize::try_from(frame.0).ok()?)
    }
}

impl FrameAllocator for HeapFrames {
    fn allocate(&self) -> Result<Frame, AllocError> {
        let index = self.inner.free.lock().pop().ok_or(AllocError)?;
        let slot = &self.inner.slots[index as usize];
        let mut bytes = slot.lock();
        if bytes.is_none() {
            *bytes = Some(Box::new([POISON; PAGE_SIZE]));
        }
        drop(bytes);
        self.inner.allocated.fetch_add(1, Ordering::SeqCst);
        Ok(Frame(u64::from(index)))
    }

    fn free(&self, frame: Frame) {
        if Some(frame) == self.inner.zero_frame {
            self.inner.zero_frame_frees.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let Some(slot) = self.slot(frame) else {
            return;
        };
        if let Some(bytes) = slot.lock().as_mut() {
            bytes.fill(POISON);
        }
        self.inner.freed.fetch_add(1, Ordering::SeqCst);
        let mut reserved = self.inner.reserved.lock();
        if reserved.0.contains(&frame.0) {
            reserved.1.push(frame.0 as u32);
            return;
        }
        drop(reserved);
        self.inner.free.lock().push(frame.0 as u32);
    }

    fn zero(&self, frame: Frame) {
        self.inner.zeroes.fetch_add(1, Ordering::SeqCst);
        zero_via_with_frame(self, frame);
    }

    fn copy(&self, from: Frame, to: Frame) {
        self.inner.copies.fetch_add(1, Ordering::SeqCst);
        copy_via_buffer(self, from, to);
    }

    fn with_frame_mut(&self, frame: Frame, f: &mut dyn FnMut(&mut [u8; PAGE_SIZE])) {
        if let Some(slot) = self.slot(frame) {
            let mut bytes = slot.lock();
            let bytes = bytes.get_or_insert_with(|| Box::new([0; PAGE_SIZE]));
            f(bytes);
        }
    }

    fn with_frame(&self, frame: Frame, f: &mut dyn FnMut(&[u8; PAGE_SIZE])) {
        if let Some(slot) = self.slot(frame) {
            match slot.lock().as_ref() {
                Some(bytes) => f(bytes),
                None => f(&[0; PAGE_SIZE]),
            }
        }
    }

    fn zero_frame(&self) -> Option<Frame> {
        // Never written, so it reads as zeros (`with_frame` of an untouched slot).
        self.inner.zero_frame
    }

    fn admit_allocation(&self, site: AllocSite) -> Result<(), AllocError> {
        let n = self.inner.admitted.fetch_add(1, Ordering::SeqCst);
        let mut fail_site = self.inner.fail_site.lock();
        if *fail_site == Some(site) {
            *fail_site = None;
            return Err(AllocError);
        }
        drop(fail_site);
        if n == self.inner.fail_at.load(Ordering::SeqCst) {
            Err(AllocError)
        } else {
            Ok(())
        }
    }
}

/// What was done to a [`FakeFile`] through all its handles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileCounts {
    /// Handles opened.
    pub opens: u64,
    /// Handles closed with [`ImageFile::close`].
    pub closes: u64,
    /// Handles dropped without being closed (a leak of the real thing).
    pub unclosed_drops: u64,
    /// `read_at` calls.
    pub reads: u64,
    /// Bytes returned by `read_at`.
    pub bytes_read: u64,
}

impl FileCounts {
    /// Handles open now.
    pub fn open_handles(&self) -> u64 {
        self.opens - self.closes - self.unclosed_drops
    }
}

#[derive(Default)]
struct FileRecord {
    opens: AtomicU64,
    closes: AtomicU64,
    unclosed_drops: AtomicU64,
    reads: AtomicU64,
    bytes_read: AtomicU64,
    fail_reads: AtomicBool,
    /// Largest read served at once, to exercise short reads.
    read_chunk: AtomicU64,
}

/// An in-memory file on a fake server, and a record of what its handles did.
#[derive(Clone)]
pub struct FakeFile {
    identity: FileIdentity,
    data: Arc<Vec<u8>>,
    record: Arc<FileRecord>,
}

/// The byte a [`FakeFile::patterned`] file holds at `offset`: different for (almost) every
/// identity and offset, so a page from the wrong file or version shows.
pub fn pattern_byte(identity: &FileIdentity, offset: u64) -> u8 {
    let mut word = u64::from(identity.dev_type);
    for part in [
        identity.dev,
        identity.qid_path,
        identity.version,
        offset / 8,
    ] {
        word = (word.rotate_left(17) ^ part).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    (word >> ((offset % 8) * 8)) as u8
}

impl FakeFile {
    /// A file with the given contents.
    pub fn new(identity: FileIdentity, data: Vec<u8>) -> Self {
        Self {
            identity,
            data: Arc::new(data),
            record: Arc::new(FileRecord {
                read_chunk: AtomicU64::new(u64::MAX),
                ..FileRecord::default()
            }),
        }
    }

    /// A file of `len` bytes of [`pattern_byte`].
    pub fn patterned(identity: FileIdentity, len: usize) -> Self {
        let data = (0..len as u64)
            .map(|offset| pattern_byte(&identity, offset))
            .collect();
        Self::new(identity, data)
    }

    /// The file's identity.
    pub fn identity(&self) -> FileIdentity {
        self.identity
    }

    /// The file's contents.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Opens a new handle (one reference to the open file).
    pub fn open(&self) -> Box<dyn ImageFile> {
        self.record.opens.fetch_add(1, Ordering::SeqCst);
        Box::new(FakeHandle {
            file: self.clone(),
            closed: false,
        })
    }

    /// Makes every read fail (or succeed again).
    pub fn fail_reads(&self, fail: bool) {
        self.record.fail_reads.store(fail, Ordering::SeqCst);
    }

    /// Serves at most `chunk` bytes a read, like a server with a small msize.
    pub fn limit_reads(&self, chunk: u64) {
        self.record.read_chunk.store(chunk.max(1), Ordering::SeqCst);
    }

    /// The counts so far, over every handle.
    pub fn counts(&self) -> FileCounts {
        let record = &*self.record;
        FileCounts {
            opens: record.opens.load(Ordering::SeqCst),
            closes: record.closes.load(Ordering::SeqCst),
            unclosed_drops: record.unclosed_drops.load(Ordering::SeqCst),
            reads: record.reads.load(Ordering::SeqCst),
            bytes_read: record.bytes_read.load(Ordering::SeqCst),
        }
    }
}

struct FakeHandle {
    file: FakeFile,
    closed: bool,
}

impl ImageFile for FakeHandle {
    fn identity(&self) -> FileIdentity {
        self.file.identity
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        let record = &*self.file.record;
        record.reads.fetch_add(1, Ordering::SeqCst);
        if record.fail_reads.load(Ordering::SeqCst) {
            return Err(FileError::Io);
        }
        let data = &self.file.data;
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        if start >= data.len() {
            return Ok(0);
        }
        let chunk = usize::try_from(record.read_chunk.load(Ordering::SeqCst)).unwrap_or(usize::MAX);
        let n = buf.len().min(data.len() - start).min(chunk);
        buf[..n].copy_from_slice(&data[start..start + n]);
        record.bytes_read.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }

    fn length(&self) -> Result<u64, FileError> {
        Ok(self.file.data.len() as u64)
    }

    fn close(mut self: Box<Self>) {
        self.closed = true;
        self.file.record.closes.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for FakeHandle {
    fn drop(&mut self) {
        if !self.closed {
            self.file
                .record
                .unclosed_drops
                .fetch_add(1, Ordering::SeqCst);
        }
    }
}
