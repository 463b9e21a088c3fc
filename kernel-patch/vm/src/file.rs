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

/// A file within the kernel whatever its version: its identity without `version`
/// (`(type, dev, qid.path)`). The mount cache's map, the mapped objects' map and the
/// table's shards are keyed by it, so all of one file's caches meet under one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PathKey {
    pub(crate) dev_type: u32,
    pub(crate) dev: u64,
    pub(crate) qid_path: u64,
}

impl PathKey {
    pub(crate) fn of(identity: &FileIdentity) -> Self {
        Self {
            dev_type: identity.dev_type,
            dev: identity.dev,
            qid_path: identity.qid_path,
        }
    }

    /// The identity of this file at `version`.
    pub(crate) fn identity(self, version: u64) -> FileIdentity {
        FileIdentity {
            dev_type: self.dev_type,
            dev: self.dev,
            qid_path: self.qid_path,
            version,
        }
    }
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
    /// The file cannot be written through this handle ([`ImageFile::write_at`]'s default).
    NotWritable,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Io => "i/o error",
            Self::Interrupted => "interrupted",
            Self::Gone => "file gone",
            Self::NotWritable => "file not writable",
        })
    }
}

impl core::error::Error for FileError {}

/// An open file an image can read pages from (a channel, in Plan 9 terms).
///
/// A `Box<dyn ImageFile>` is one reference to an open file. Giving it to
/// [`Vm::attach`](crate::Vm::attach) hands that reference to the image cache, which either
/// keeps it as the image's channel or lets it go at once when the image already has one.
/// The cache lets its channel go when only cached pages still refer to the image
/// (`ref == pgref`), so an exited program never keeps its file server busy.
///
/// # Where `close` runs
///
/// vm lets go of channels on paths where the kernel may hold locks of its own: a fault that
/// reclaims (under the kernel's process segment lock), an exit, an exec. It never calls
/// [`close`](Self::close) there. A file vm lets go of is *parked*, and its `close` runs
/// only
/// - in [`Vm::run_parked_closes`](crate::Vm::run_parked_closes), on the thread and at the
///   point the kernel chooses (one where it holds no lock);
/// - in [`Vm::attach`](crate::Vm::attach) and [`Vm::exec`](crate::Vm::exec), on the
///   caller's thread, when they fail before the image took the file (they could not
///   reserve its parking slot, or the file's length or layout was refused): the caller
///   calls them where a close of the file it hands over may run;
/// - when the last handle of the [`Vm`](crate::Vm) goes, for files still parked.
///
/// So `close` may block. [`identity`](Self::identity) must not block;
/// [`read_at`](Self::read_at) and [`length`](Self::length) may, and vm calls them with no
/// lock of its own held (a fault's read runs under the kernel's process segment lock, as
/// in Plan 9).
pub trait ImageFile: Send + Sync {
    /// The identity of the file's contents. Must not block (a channel knows its qid).
    fn identity(&self) -> FileIdentity;

    /// Reads up to `buf.len()` bytes at `offset`; `Ok(0)` means end of file. May block.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError>;

    /// The file's length in bytes. May block.
    fn length(&self) -> Result<u64, FileError>;

    /// Writes `buf` at `offset` and returns how many bytes the server took: the write-back
    /// of a shared mapping's dirty pages (`mapping/writeback.rs`). May block; vm calls it
    /// with no lock of its own held. The default refuses ([`FileError::NotWritable`]), for
    /// files that are only read (executables, a file opened read only).
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, FileError> {
        let _ = (offset, buf);
        Err(FileError::NotWritable)
    }

    /// Whether [`write_at`](Self::write_at) may succeed: the file was opened for writing.
    /// A mapped object whose channel cannot write takes the channel of a later open that
    /// can ([`Vm::file_object`](crate::Vm::file_object)), so a shared writable mapping
    /// made through that open writes back through it. The default, as `write_at`'s: no.
    fn writable(&self) -> bool {
        false
    }

    /// Releases this reference to the file. May block: vm calls it only where the kernel
    /// said it may ([`Vm::run_parked_closes`](crate::Vm::run_parked_closes)), or on an
    /// error of the call the kernel handed the file to (see above).
    fn close(self: Box<Self>);
}
