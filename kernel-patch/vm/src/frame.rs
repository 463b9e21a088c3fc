//! Frames: the physical memory the embedding kernel lends to vm.

use core::fmt;

/// Bytes in a page (and in a frame).
pub const PAGE_SIZE: usize = 4096;

/// [`PAGE_SIZE`] as a file offset or address quantity.
pub(crate) const PAGE_BYTES: u64 = PAGE_SIZE as u64;

/// A physical frame, numbered as the embedding kernel numbers them (for example the
/// physical address divided by [`PAGE_SIZE`]). vm only passes it back to the
/// [`FrameAllocator`] and to the caller of a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frame(pub u64);

/// An allocation was refused: no memory, or a test injected the failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocError;

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("out of memory")
    }
}

impl core::error::Error for AllocError {}

/// The places where vm allocates memory. Every one of them asks
/// [`FrameAllocator::admit_allocation`] first, so a test can make any single one fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AllocSite {
    /// A page (a frame with metadata) for a fault or a load.
    Page,
    /// An image: its structure, its hash chains and its slot in the image table.
    Image,
    /// The wrapper that lets an image hold a file handle as its channel.
    Channel,
    /// A segment and its page directory.
    Segment,
    /// A leaf of a segment's page table.
    PageTable,
    /// Growth of an image's list of shared text segments.
    TextList,
    /// A mount-cache file: its image, hash chains and slot in the mount cache's map.
    MountCacheFile,
    /// A page for the mount cache (a fill, or the missing pages of a write).
    MountCachePage,
    /// The bounce buffer a page load reads the file into, before it is copied into the
    /// frame (so the read, which may block, never runs inside a frame borrow).
    LoadBuffer,
    /// A mapped object (a file's or shared anonymous memory's), its slot in the object
    /// table, or a private mapping's lineage (`mapping/`).
    MemObject,
    /// A mapping: its segment, page directory and reverse-map record.
    Mapping,
    /// The bounce buffer a write-back copies a dirty page into before it writes it.
    WriteBackBuffer,
    /// The zero page's frame, when the kernel keeps none ([`FrameAllocator::zero_frame`]):
    /// once, as the vm is created.
    ZeroPage,
    /// A loan's list of its pages ([`MappingRef::lend`](crate::MappingRef::lend)).
    Loan,
}

/// Physical memory, as the embedding kernel provides it.
///
/// Which methods may block, and so which vm calls with no vm lock held:
///
/// | method | may block | called with vm locks held |
/// |---|---|---|
/// | [`allocate`](Self::allocate) | yes (it may wait for memory) | never |
/// | [`free`](Self::free) | no | never; but on a fault's path or a segment's release, so the kernel's own locks may be held |
/// | [`zero`](Self::zero), [`copy`](Self::copy) | no | yes (a segment lock) |
/// | [`with_frame`](Self::with_frame), [`with_frame_mut`](Self::with_frame_mut) | no, but the closure may | only with closures that do not block |
/// | [`admit_allocation`](Self::admit_allocation) | no | yes |
/// | [`in_use_elsewhere`](Self::in_use_elsewhere) | no | never; but on a fault's path, so the kernel's own locks may be held |
/// | [`zero_frame`](Self::zero_frame) | no | never (once, as the vm is created) |
pub trait FrameAllocator: Send + Sync {
    /// Allocates a frame. May block; vm never holds one of its locks across this call.
    fn allocate(&self) -> Result<Frame, AllocError>;

    /// Returns a frame allocated by [`allocate`](Self::allocate): vm lets go of it. Must
    /// not block. A kernel that counts references to frames (page table entries, borrows,
    /// frees deferred to after a TLB shootdown) drops vm's reference here and frees the
    /// frame only when it was the last.
    fn free(&self, frame: Frame);

    /// Whether something other than vm still holds `frame` (a page table entry whose
    /// shootdown is still queued, a borrow): asked before vm reuses a frame from its free
    /// list for other contents. When it says yes, vm does not reuse the frame: it lets go
    /// of it with [`free`](Self::free) (so the kernel frees it when its other holders let
    /// go) and binds a fresh one from [`allocate`](Self::allocate) instead.
    ///
    /// Must not block and must not call into vm. vm calls it with none of its locks held,
    /// on a page it has just taken off its free list (nobody else can reach it), on a
    /// fault's path and the mount cache's, so the kernel's own locks may be held. The
    /// default, `false`, is for kernels that keep no such count (the frame is vm's alone
    /// once vm's mappings are gone).
    fn in_use_elsewhere(&self, frame: Frame) -> bool {
        let _ = frame;
        false
    }

    /// Fills a frame with zeros. Must not block. The default is
    /// [`zero_via_with_frame`].
    fn zero(&self, frame: Frame) {
        zero_via_with_frame(self, frame);
    }

    /// Copies the contents of `from` into `to` (different frames). Must not block; vm calls
    /// it under a segment lock. The default is [`copy_via_buffer`], a chunk at a time
    /// through a small buffer on the stack (it allocates nothing, so it cannot fail); a
    /// kernel that reaches both frames at once (a direct map of physical memory) copies
    /// without one.
    fn copy(&self, from: Frame, to: Frame) {
        copy_via_buffer(self, from, to);
    }

    /// Runs `f` on the bytes of `frame`. Must not block itself, and `f` never blocks
    /// either: vm reads files into a buffer of its own and copies it in, so a kernel may
    /// map the frame only for the length of the call.
    fn with_frame_mut(&self, frame: Frame, f: &mut dyn FnMut(&mut [u8; PAGE_SIZE]));

    /// Runs `f` on the bytes of `frame`, read only. Must not block itself.
    fn with_frame(&self, frame: Frame, f: &mut dyn FnMut(&[u8; PAGE_SIZE]));

    /// Asked before every allocation vm makes, frames and heap objects alike (see
    /// [`AllocSite`]). A kernel normally admits everything; tests refuse one at a time to
    /// prove that each operation fails cleanly. Must not block.
    fn admit_allocation(&self, site: AllocSite) -> Result<(), AllocError> {
        let _ = site;
        Ok(())
    }

    /// A frame of zeros the kernel keeps for itself (Redox's `THE_ZEROED_FRAME`), for vm's
    /// zero page: vm maps it read only wherever untouched zero-fill memory is read, and
    /// never writes it, frees it nor hands it to [`free`](Self::free). `None`, the default,
    /// makes vm allocate one (at [`AllocSite::ZeroPage`]) and zero it as it is created, and
    /// free it when the vm goes away. Must not block.
    fn zero_frame(&self) -> Option<Frame> {
        None
    }
}

/// Fills `frame` with zeros through [`FrameAllocator::with_frame_mut`]: the default
/// [`FrameAllocator::zero`], and the part of an override that only adds to it (a count).
pub fn zero_via_with_frame<A: FrameAllocator + ?Sized>(frames: &A, frame: Frame) {
    frames.with_frame_mut(frame, &mut |bytes| bytes.fill(0));
}

/// Bytes [`copy_via_buffer`] moves a round: small enough for a kernel stack.
const COPY_CHUNK: usize = 256;

/// Copies `from` into `to` a chunk at a time through a buffer on the stack, borrowing one
/// frame at a time (with [`FrameAllocator::with_frame`], then
/// [`FrameAllocator::with_frame_mut`]), so that an allocator that locks each frame never
/// holds two locks at once, and nothing is allocated (vm copies under a segment lock): the
/// default [`FrameAllocator::copy`], and the part of an override that only adds to it (a
/// count).
pub fn copy_via_buffer<A: FrameAllocator + ?Sized>(frames: &A, from: Frame, to: Frame) {
    let mut buffer = [0u8; COPY_CHUNK];
    for start in (0..PAGE_SIZE).step_by(COPY_CHUNK) {
        let range = start..start + COPY_CHUNK;
        frames.with_frame(from, &mut |bytes| {
            buffer.copy_from_slice(&bytes[range.clone()])
        });
        frames.with_frame_mut(to, &mut |bytes| {
            bytes[range.clone()].copy_from_slice(&buffer)
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::Mutex;
    use alloc::vec::Vec;

    /// Frames reached only through the borrowing calls, one lock each; `zero` and `copy`
    /// are the trait's defaults.
    struct LockedFrames(Vec<Mutex<[u8; PAGE_SIZE]>>);

    impl FrameAllocator for LockedFrames {
        fn allocate(&self) -> Result<Frame, AllocError> {
            Err(AllocError)
        }

        fn free(&self, _frame: Frame) {}

        fn with_frame_mut(&self, frame: Frame, f: &mut dyn FnMut(&mut [u8; PAGE_SIZE])) {
            f(&mut self.0[frame.0 as usize].lock());
        }

        fn with_frame(&self, frame: Frame, f: &mut dyn FnMut(&[u8; PAGE_SIZE])) {
            f(&self.0[frame.0 as usize].lock());
        }
    }

    fn bytes_of(frames: &LockedFrames, frame: Frame) -> Vec<u8> {
        let mut out = Vec::new();
        frames.with_frame(frame, &mut |bytes| out.extend_from_slice(bytes));
        out
    }

    #[test]
    fn the_defaults_zero_and_copy_through_the_borrowing_calls() {
        let frames = LockedFrames((0..2).map(|_| Mutex::new([0x11; PAGE_SIZE])).collect());
        frames.with_frame_mut(Frame(0), &mut |bytes| {
            bytes[0] = 1;
            bytes[PAGE_SIZE - 1] = 2;
        });
        frames.copy(Frame(0), Frame(1));
        let copied = bytes_of(&frames, Frame(1));
        assert_eq!(copied, bytes_of(&frames, Frame(0)));
        assert_eq!((copied[0], copied[1], copied[PAGE_SIZE - 1]), (1, 0x11, 2));
        frames.zero(Frame(0));
        assert!(bytes_of(&frames, Frame(0)).iter().all(|&b| b == 0));
        assert_eq!(bytes_of(&frames, Frame(1)), copied);
    }
}
