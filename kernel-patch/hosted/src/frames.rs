//! Host frames: vm's physical memory, taken from the host heap, with a memory limit and a
//! failure knob.
//!
//! The limit is what makes reclaim real: when every frame is in use, `allocate` fails, vm
//! reclaims cached pages at ref 0 and tries again. The knob refuses one chosen allocation
//! (of any [`AllocSite`], counted from the moment it is armed), or every frame allocation,
//! so tests can prove that each operation fails cleanly.
//!
//! Besides the limit's frames there is one frame of zeros the kernel keeps for vm's zero
//! page ([`FrameAllocator::zero_frame`], as Redox keeps `THE_ZEROED_FRAME`): never handed
//! out, never freed, outside the limit and the counters, so that `frames_in_use` is what
//! vm's pool holds.
//!
//! A frame's bytes are reference counted, so the kernel can hold a frame lent to it
//! ([`HostFrames::share`]) across a server call with no lock held: the mount driver sends
//! the bytes themselves. vm never writes a lent frame (it is read only everywhere while
//! lent), so a write to a frame someone shares would be a broken loan rule: the writer
//! gets a copy (the holder keeps its bytes) and `FrameStats::shared_writes` counts it.
//!
//! Locks: each frame slot has its own mutex (a leaf), the free-slot list another (a leaf);
//! no method holds two at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use vm::{copy_via_buffer, zero_via_with_frame};
use vm::{AllocError, AllocSite, Frame, FrameAllocator, PAGE_SIZE};

/// Bytes written over a frame when it is freed, so a page used without being filled shows.
pub const POISON: u8 = 0xa5;

type FrameBytes = Arc<[u8; PAGE_SIZE]>;

/// A frame's bytes held by the kernel (see [`HostFrames::share`]).
pub(crate) type SharedFrame = Arc<[u8; PAGE_SIZE]>;

/// Counters of a [`HostFrames`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// The memory limit, in frames.
    pub limit: u32,
    /// Frames handed out since the start.
    pub allocated: u64,
    /// Frames given back since the start.
    pub freed: u64,
    /// The most frames in use at once.
    pub peak: u64,
    /// Allocations refused: the limit was reached or the knob said no.
    pub refused: u64,
    /// Allocations vm announced ([`FrameAllocator::admit_allocation`] calls).
    pub admitted: u64,
    /// Frame copies.
    pub copies: u64,
    /// Frames zeroed.
    pub zeroes: u64,
    /// Writes (and frees) of a frame while the kernel shared its bytes: a lent frame
    /// written, which the loan rules forbid (0 in a correct kernel).
    pub shared_writes: u64,
}

impl FrameStats {
    /// Frames in use now (0 for a made-up value with more freed than allocated).
    pub fn in_use(&self) -> u64 {
        self.allocated.saturating_sub(self.freed)
    }
}

struct Inner {
    /// The limit's frames, then the zero frame.
    slots: Box<[Mutex<Option<FrameBytes>>]>,
    free: Mutex<Vec<u32>>,
    allocated: AtomicU64,
    freed: AtomicU64,
    peak: AtomicU64,
    refused: AtomicU64,
    admitted: AtomicU64,
    copies: AtomicU64,
    zeroes: AtomicU64,
    shared_writes: AtomicU64,
    /// The admission number to refuse (`u64::MAX`: none).
    fail_at: AtomicU64,
    /// Refuse every frame allocation (host memory exhausted).
    refuse_frames: AtomicBool,
    /// Frames kept from allocation for a contiguous range (`Kernel::vacate`), and the
    /// ones of them free now (a free of one is kept here, not on the free list).
    reserved: Mutex<(std::ops::Range<u64>, Vec<u32>)>,
}

/// Frames from the host heap, at most `limit` at once. Clones share the same frames, so a
/// kernel keeps one to read counters and turn the knob while vm owns another.
#[derive(Clone)]
pub struct HostFrames {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere leaves the bytes or the list as they were: still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl HostFrames {
    /// At most `limit` frames; their memory is taken from the heap on first use. The zero
    /// frame is the one numbered `limit`.
    pub fn new(limit: u32) -> Self {
        let slots: Vec<Mutex<Option<FrameBytes>>> = (0..limit)
            .map(|_| Mutex::new(None))
            .chain([Mutex::new(Some(Arc::new([0; PAGE_SIZE])))])
            .collect();
        Self {
            inner: Arc::new(Inner {
                slots: slots.into_boxed_slice(),
                free: Mutex::new((0..limit).rev().collect()),
                allocated: AtomicU64::new(0),
                freed: AtomicU64::new(0),
                peak: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                admitted: AtomicU64::new(0),
                copies: AtomicU64::new(0),
                zeroes: AtomicU64::new(0),
                shared_writes: AtomicU64::new(0),
                fail_at: AtomicU64::new(u64::MAX),
                refuse_frames: AtomicBool::new(false),
                reserved: Mutex::new((0..0, Vec::new())),
            }),
        }
    }

    /// Refuses the `nth` allocation vm announces from now on (0: the very next one), once.
    pub fn fail_nth_allocation(&self, nth: u64) {
        let now = self.inner.admitted.load(Ordering::SeqCst);
        self.inner
            .fail_at
            .store(now.saturating_add(nth), Ordering::SeqCst);
    }

    /// Whether an armed [`fail_nth_allocation`](Self::fail_nth_allocation) has not fired yet.
    pub fn failure_pending(&self) -> bool {
        let fail_at = self.inner.fail_at.load(Ordering::SeqCst);
        fail_at != u64::MAX && fail_at >= self.inner.admitted.load(Ordering::SeqCst)
    }

    /// Refuses every frame allocation (or stops refusing): host memory is exhausted.
    pub fn refuse_frames(&self, refuse: bool) {
        self.inner.refuse_frames.store(refuse, Ordering::SeqCst);
    }

    /// Disarms the knob.
    pub fn never_fail(&self) {
        self.inner.fail_at.store(u64::MAX, Ordering::SeqCst);
        self.inner.refuse_frames.store(false, Ordering::SeqCst);
    }

    /// Keeps the frames of `range` from being handed out, as a kernel does before it
    /// vacates them for a contiguous allocation: the free ones leave the free list, and a
    /// later free of one is kept aside. Replaces any earlier reservation (whose kept
    /// frames go back to the free list).
    pub fn reserve(&self, range: std::ops::Range<u64>) {
        self.release_reserved();
        let mut free = lock(&self.inner.free);
        let mut reserved = lock(&self.inner.reserved);
        let (kept, rest): (Vec<u32>, Vec<u32>) = free
            .iter()
            .partition(|frame| range.contains(&u64::from(**frame)));
        *free = rest;
        *reserved = (range, kept);
    }

    /// Frames of the reserved range that are free (kept aside) now.
    pub fn reserved_free(&self) -> usize {
        lock(&self.inner.reserved).1.len()
    }

    /// Ends the reservation: its free frames go back to the free list.
    pub fn release_reserved(&self) {
        let kept = std::mem::take(&mut *lock(&self.inner.reserved)).1;
        lock(&self.inner.free).extend(kept);
    }

    /// The counters so far.
    pub fn stats(&self) -> FrameStats {
        let inner = &*self.inner;
        FrameStats {
            limit: self.limit(),
            allocated: inner.allocated.load(Ordering::SeqCst),
            freed: inner.freed.load(Ordering::SeqCst),
            peak: inner.peak.load(Ordering::SeqCst),
            refused: inner.refused.load(Ordering::SeqCst),
            admitted: inner.admitted.load(Ordering::SeqCst),
            copies: inner.copies.load(Ordering::SeqCst),
            zeroes: inner.zeroes.load(Ordering::SeqCst),
            shared_writes: inner.shared_writes.load(Ordering::SeqCst),
        }
    }

    fn limit(&self) -> u32 {
        (self.inner.slots.len() - 1) as u32
    }

    fn zero_frame_number(&self) -> Frame {
        Frame(u64::from(self.limit()))
    }

    fn slot(&self, frame: Frame) -> Option<&Mutex<Option<FrameBytes>>> {
        self.inner.slots.get(usize::try_from(frame.0).ok()?)
    }

    /// The bytes of `frame`, to write: a copy of their own if the kernel shares them
    /// (counted: see the module's comment).
    fn writable<'a>(&self, bytes: &'a mut FrameBytes) -> &'a mut [u8; PAGE_SIZE] {
        if Arc::strong_count(bytes) > 1 {
            self.inner.shared_writes.fetch_add(1, Ordering::SeqCst);
        }
        Arc::make_mut(bytes)
    }

    /// The bytes of `frame` as they are now, held with no lock: for a frame lent to the
    /// kernel, which nothing writes while lent. `None` for a frame that is not one of
    /// ours.
    pub(crate) fn share(&self, frame: Frame) -> Option<SharedFrame> {
        let mut bytes = lock(self.slot(frame)?);
        Some(
            bytes
                .get_or_insert_with(|| Arc::new([POISON; PAGE_SIZE]))
                .clone(),
        )
    }

    fn refuse(&self) -> AllocError {
        self.inner.refused.fetch_add(1, Ordering::SeqCst);
        AllocError
    }
}

impl FrameAllocator for HostFrames {
    fn allocate(&self) -> Result<Frame, AllocError> {
        if self.inner.refuse_frames.load(Ordering::SeqCst) {
            return Err(self.refuse());
        }
        let Some(index) = lock(&self.inner.free).pop() else {
            return Err(self.refuse());
        };
        {
            let mut bytes = lock(&self.inner.slots[index as usize]);
            if bytes.is_none() {
                *bytes = Some(Arc::new([POISON; PAGE_SIZE]));
            }
        }
        let allocated = self.inner.allocated.fetch_add(1, Ordering::SeqCst) + 1;
        let in_use = allocated - self.inner.freed.load(Ordering::SeqCst);
        self.inner.peak.fetch_max(in_use, Ordering::SeqCst);
        Ok(Frame(u64::from(index)))
    }

    fn free(&self, frame: Frame) {
        if frame == self.zero_frame_number() {
            log::error!("hosted: free of the zero frame");
            return;
        }
        let Some(slot) = self.slot(frame) else {
            log::error!("hosted: free of unknown frame {}", frame.0);
            return;
        };
        if let Some(bytes) = lock(slot).as_mut() {
            self.writable(bytes).fill(POISON);
        }
        self.inner.freed.fetch_add(1, Ordering::SeqCst);
        {
            let mut reserved = lock(&self.inner.reserved);
            if reserved.0.contains(&frame.0) {
                reserved.1.push(frame.0 as u32);
                return;
            }
        }
        lock(&self.inner.free).push(frame.0 as u32);
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
            let mut bytes = lock(slot);
            let bytes = bytes.get_or_insert_with(|| Arc::new([POISON; PAGE_SIZE]));
            f(self.writable(bytes));
        }
    }

    fn with_frame(&self, frame: Frame, f: &mut dyn FnMut(&[u8; PAGE_SIZE])) {
        if let Some(slot) = self.slot(frame) {
            match lock(slot).as_ref() {
                Some(bytes) => f(bytes),
                None => f(&[POISON; PAGE_SIZE]),
            }
        }
    }

    fn zero_frame(&self) -> Option<Frame> {
        Some(self.zero_frame_number())
    }

    fn admit_allocation(&self, _site: AllocSite) -> Result<(), AllocError> {
        let n = self.inner.admitted.fetch_add(1, Ordering::SeqCst);
        if n == self.inner.fail_at.load(Ordering::SeqCst) {
            return Err(self.refuse());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_refuses_and_freeing_makes_room() {
        let frames = HostFrames::new(2);
        let a = frames.allocate().unwrap();
        let b = frames.allocate().unwrap();
        assert_ne!(a, b);
        assert_eq!(frames.allocate(), Err(AllocError));
        frames.free(a);
        assert!(frames.allocate().is_ok());
        let stats = frames.stats();
        assert_eq!(
            (stats.allocated, stats.freed, stats.peak, stats.refused),
            (3, 1, 2, 1)
        );
    }

    #[test]
    fn the_knob_refuses_exactly_the_chosen_admission() {
        let frames = HostFrames::new(4);
        frames.fail_nth_allocation(2);
        assert!(frames.failure_pending());
        assert!(frames.admit_allocation(AllocSite::Page).is_ok());
        assert!(frames.admit_allocation(AllocSite::Image).is_ok());
        assert!(frames.admit_allocation(AllocSite::Segment).is_err());
        assert!(!frames.failure_pending());
        assert!(frames.admit_allocation(AllocSite::Segment).is_ok());
        frames.refuse_frames(true);
        assert!(frames.allocate().is_err());
        frames.never_fail();
        assert!(frames.allocate().is_ok());
    }

    #[test]
    fn the_zero_frame_is_outside_the_limit_and_never_freed() {
        let frames = HostFrames::new(1);
        let zero = frames.zero_frame().unwrap();
        assert_eq!(zero, Frame(1));
        let only = frames.allocate().unwrap();
        assert_ne!(only, zero);
        assert_eq!(frames.allocate(), Err(AllocError), "the limit");
        frames.free(zero);
        assert_eq!(
            frames.allocate(),
            Err(AllocError),
            "not freed, so not handed out"
        );
        frames.with_frame(zero, &mut |bytes| assert!(bytes.iter().all(|&x| x == 0)));
        assert_eq!((frames.stats().limit, frames.stats().freed), (1, 0));
    }

    #[test]
    fn copy_zero_and_poison() {
        let frames = HostFrames::new(2);
        let a = frames.allocate().unwrap();
        let b = frames.allocate().unwrap();
        frames.with_frame(a, &mut |bytes| assert!(bytes.iter().all(|&x| x == POISON)));
        frames.with_frame_mut(a, &mut |bytes| bytes[7] = 42);
        frames.copy(a, b);
        frames.with_frame(b, &mut |bytes| assert_eq!(bytes[7], 42));
        frames.zero(b);
        frames.with_frame(b, &mut |bytes| assert!(bytes.iter().all(|&x| x == 0)));
    }

    #[test]
    fn shared_bytes_are_the_frame_and_a_write_meanwhile_is_counted() {
        let frames = HostFrames::new(1);
        let a = frames.allocate().unwrap();
        frames.with_frame_mut(a, &mut |bytes| bytes[0] = 1);
        let held = frames.share(a).unwrap();
        assert_eq!(held[0], 1);
        // Reads and the holder agree; nothing was copied to share.
        frames.with_frame(a, &mut |bytes| assert!(std::ptr::eq(bytes, &*held)));
        assert_eq!(frames.stats().shared_writes, 0);
        // A write while shared (a broken loan rule) leaves the holder its bytes.
        frames.with_frame_mut(a, &mut |bytes| bytes[0] = 2);
        assert_eq!((held[0], frames.stats().shared_writes), (1, 1));
        drop(held);
        frames.with_frame_mut(a, &mut |bytes| bytes[0] = 3);
        assert_eq!(
            frames.stats().shared_writes,
            1,
            "unshared writes are not counted"
        );
        assert!(frames.share(Frame(99)).is_none());
    }
}
