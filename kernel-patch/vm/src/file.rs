//! The file an image reads its pages from: the only thing vm knows of channels and 9P.

use alloc::boxed::Box;
use core::fmt;

/// The identity of a file's contents: `(device type, dev, qid.path, version)`.
///
/// `version` is 64 bits wide so that what a kernel knows of a file's contents fits: a 9P2000
/// `qid.vers`, or for 9P2000.L a fold of `qid.version` with the mtime's seconds and
/// nanoseconds, the size and `data_version` (servers such as crosvm's p9 set `qid.version`
/// to the whole-second mtime alone). `dev` must never be reused (for a mount, a counter that only grows), so no stale page
/// survives a remount of a server whose qid paths restart; a new `version` means new
/// contents. vm compares identities by value, never by the address of a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileIdentity {
    /// The device type (Plan 9's `Chan.type`, the driver).
    pub dev_type: u32,
    /// The device instance; for mounted files the mount's never-reused id.
    pub dev: u64,
    /// `qid.path`: the file on that device.
    pub qid_path: u64,
    /// The version of the contents (see above).
    pub version: u64,
}

/// A failure reported by an [`ImageFile`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileError {
    /// The read or stat failed (an Rerror, a broken transport, ...).
    Io,
    /// The operation was interrupted (a note, a flush).
    Interrupted,
    /// The file is not reachable any more (its image holds no channel).
    Gone,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Io => "i/o error",
            Self::Interrupted => "interrupted",
            Self::Gone => "file gone",
        })
    }
}

impl core::error::Error for FileError {}

/// An open file an image can read pages from (a channel, in Plan 9 terms).
///
/// A `Box<dyn ImageFile>` is one reference to an open file. Giving it to
/// [`Vm::attach`](crate::Vm::attach) hands that reference to the image cache, which either
/// keeps it as the image's channel or closes it at once (after releasing its locks) when the
/// image already has one. The cache closes its channel when only cached pages still refer
/// to the image (`ref == pgref`), so an exited program never keeps its file server busy.
///
/// Blocking: [`identity`](Self::identity) must not block; [`read_at`](Self::read_at),
/// [`length`](Self::length) and [`close`](Self::close) may, and vm calls them with no lock
/// held.
pub trait ImageFile: Send + Sync {
    /// The identity of the file's contents. Must not block (a channel knows its qid).
    fn identity(&self) -> FileIdentity;

    /// Reads up to `buf.len()` bytes at `offset`; `Ok(0)` means end of file. May block.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError>;

    /// The file's length in bytes. May block.
    fn length(&self) -> Result<u64, FileError>;

    /// Releases this reference to the file. May block.
    fn close(self: Box<Self>);
}

/// A file handle held by an image as its channel. It closes the handle when the last
/// clone is dropped; vm arranges that this happens with no vm lock held.
pub(crate) struct OpenFile {
    file: Option<Box<dyn ImageFile>>,
}

impl OpenFile {
    pub(crate) fn new(file: Box<dyn ImageFile>) -> Self {
        Self { file: Some(file) }
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

impl Drop for OpenFile {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            file.close();
        }
    }
}
