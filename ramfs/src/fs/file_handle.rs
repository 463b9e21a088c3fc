//! A regular file's data and stamps as an open fid holds them, so that its reads take
//! no tree lock: a metadata change (which holds the tree's exclusive lock) neither waits
//! for them nor makes them wait, whatever directory it is in.
//!
//! Why this is safe without the tree lock: a handle holds the file's data cell and stamp
//! cell themselves (`Arc`s shared with the node), never the node or the tree, and each
//! is behind its own lock, which every path that changes them takes, the exclusive tree
//! lock's too (the order stays tree → data → stamps: a handle's read takes the last two
//! in that order). A node's content never changes kind, so a handle made of a regular
//! file stays one. When the node goes (its last reference and name gone), the tree empties
//! the data under the data lock and releases its memory at once; a handle still held
//! then reads an empty file.

use std::fmt;
use std::sync::Arc;

use super::clock::Clock;
use super::node::{FileCell, StampCell};

/// What a read of a regular file needs: its data, its stamps (for the access time) and
/// the tree's clock. Made by [`Tree::file_handle`](super::Tree::file_handle); cheap to
/// clone.
#[derive(Clone)]
pub struct FileHandle {
    pub(super) data: Arc<FileCell>,
    pub(super) stamps: Arc<StampCell>,
    pub(super) clock: Clock,
}

impl FileHandle {
    /// Reads up to `count` bytes from `offset`, handing them to `put` in order straight
    /// from the file's pages (holes as zeros), as [`Tree::read_with`] does, and returns
    /// how many it handed. Takes the file's data lock shared, then its stamp lock for the
    /// access time; no tree lock.
    ///
    /// [`Tree::read_with`]: super::Tree::read_with
    pub fn read_with(&self, offset: u64, count: usize, put: impl FnMut(&[u8])) -> usize {
        let now = self.clock.now();
        let len = self.data.read().read_with(offset, count, put);
        self.stamps.update(|s| s.atime = now);
        len
    }

    /// True if both handles are of one file.
    pub fn same_file(&self, other: &FileHandle) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
    }
}

impl fmt::Debug for FileHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileHandle")
            .field("size", &self.data.read().size())
            .finish()
    }
}
