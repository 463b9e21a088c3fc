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
}

/// Physical memory, as the embedding kernel provides it.
///
/// Which methods may block, and so which vm calls with no vm lock held:
///
/// | method | may block | called with vm locks held |
/// |---|---|---|
/// | [`allocate`](Self::allocate) | yes (it may wait for memory) | never |
/// | [`free`](Self::free) | no | never (but it must not block anyway) |
/// | [`zero`](Self::zero), [`copy`](Self::copy) | no | yes (a segment lock) |
/// | [`with_frame`](Self::with_frame), [`with_frame_mut`](Self::with_frame_mut) | no, but the closure may | only with closures that do not block |
/// | [`admit_allocation`](Self::admit_allocation) | no | yes |
pub trait FrameAllocator: Send + Sync {
    /// Allocates a frame. May block; vm never holds one of its locks across this call.
    fn allocate(&self) -> Result<Frame, AllocError>;

    /// Returns a frame allocated by [`allocate`](Self::allocate). Must not block.
    fn free(&self, frame: Frame);

    /// Fills a frame with zeros. Must not block.
    fn zero(&self, frame: Frame);

    /// Copies the contents of `from` into `to` (different frames). Must not block.
    fn copy(&self, from: Frame, to: Frame);

    /// Runs `f` on the bytes of `frame`. Must not block itself. vm passes a closure that
    /// reads a file (and so may block) only when it holds no lock.
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
}
