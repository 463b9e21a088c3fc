//! A regular file's data and stamps as an open fid holds them, so that its reads and
//! writes take no tree lock: a metadata change (which holds the tree's exclusive lock)
//! neither waits for them nor makes them wait, whatever directory it is in.
//!
//! Why this is safe without the tree lock: a handle holds the file's data cell and stamp
//! cell themselves (`Arc`s shared with the node), never the node or the tree, and each
//! is behind its own lock, which every path that changes them takes, the exclusive tree
//! lock's too (the order stays tree → data → stamps: a handle's read takes the last two
//! in that order). A node's content never changes kind, so a handle made of a regular
//! file stays one. A write needs two things of the node besides its data: its permission
//! bits (a write by anyone but root takes the set-id bits away, which changes the node
//! and so goes through the exclusive lock) and its `DMAPPEND` flag; the data cell keeps
//! a copy of both, which the tree stores under the data lock after every change, and a
//! write reads under the same lock. The memory account is the tree's, shared. When the
//! node goes (its last reference and name gone), the tree empties the data under the
//! data lock, marks it gone and releases its memory at once; a handle still held then
//! reads an empty file and fails to write, so nothing is charged to a node that is no
//! more.

use std::fmt;
use std::sync::{Arc, RwLockWriteGuard};

use super::clock::Clock;
use super::data::{FileData, Gathered};
use super::memory::Memory;
use super::node::{FileCell, StampCell};
use super::pages::{PageBuf, Piece};
use super::perm::Cred;
use super::setid;
use super::tree_data::{write_file, write_file_gathered};
use crate::error::{Error, Result};

/// What a read of a regular file needs: its data, its stamps (for the access time) and
/// the tree's clock. Made by [`Tree::file_handle`](super::Tree::file_handle); cheap to
/// clone.
#[derive(Clone)]
pub struct FileHandle {
    pub(super) data: Arc<FileCell>,
    pub(super) stamps: Arc<StampCell>,
    /// The tree's memory account, which a write's new pages are reserved from.
    pub(super) memory: Arc<Memory>,
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

    /// [`FileHandle::read_with`], handing whole runs of pages as [`Piece::Pages`] for a
    /// reply to hold and send uncopied ([`FileData::read_pieces`]); the rest is handed
    /// as bytes to copy.
    ///
    /// [`FileData::read_pieces`]: super::FileData::read_pieces
    pub fn read_pieces(
        &self,
        offset: u64,
        count: usize,
        piece_min: usize,
        put: impl FnMut(Piece<'_>),
    ) -> usize {
        let now = self.clock.now();
        let len = self.data.read().read_pieces(offset, count, piece_min, put);
        self.stamps.update(|s| s.atime = now);
        len
    }

    /// Runs of the file replaced because a reply still held their pages (copy on
    /// write), since the file was made.
    pub fn replaced_while_held(&self) -> u64 {
        self.data.read().replaced_while_held()
    }

    /// Received page buffers that became the file's pages, uncopied, since the file was
    /// made ([`FileData::pages_taken`](super::FileData::pages_taken)).
    pub fn pages_taken(&self) -> u64 {
        self.data.read().pages_taken()
    }

    /// Writes `data` at `offset` (at the end if `append` or the file is `DMAPPEND`) as
    /// [`Fs::write`](super::Fs::write) does, holding the file's data lock alone and no
    /// tree lock, and returns the bytes written; past the memory limit it fails and
    /// changes nothing. `Ok(None)`, having done nothing, when the write would take a
    /// set-id bit away (by the permission bits the data cell has while it is held):
    /// that changes the node, so it goes through the tree's exclusive lock
    /// (`Fs::write`). [`Error::NotFound`] if the node is gone.
    pub fn write(
        &self,
        cred: &Cred,
        offset: u64,
        data: &[u8],
        append: bool,
    ) -> Result<Option<u32>> {
        let now = self.clock.now();
        let Some((mut f, offset)) = self.lock_for_write(cred, offset, append)? else {
            return Ok(None);
        };
        write_file(&mut f, &self.stamps, &self.memory, now, cred, offset, data).map(Some)
    }

    /// [`FileHandle::write`] of data received in pieces: `data`'s pages become the
    /// file's where they can ([`FileData::write_gathered`](super::FileData::write_gathered)),
    /// and the buffers left over go to `spare`. `Ok(None)` as for `write`, with `data`
    /// left as it was (for the caller to write it through the tree); otherwise `data`
    /// is used up, and on error its pages are dropped.
    pub fn write_gathered(
        &self,
        cred: &Cred,
        offset: u64,
        data: &mut Gathered<'_>,
        append: bool,
        spare: &mut Vec<PageBuf>,
    ) -> Result<Option<u32>> {
        let now = self.clock.now();
        let Some((mut f, offset)) = self.lock_for_write(cred, offset, append)? else {
            return Ok(None);
        };
        let data = std::mem::take(data);
        write_file_gathered(
            &mut f,
            &self.stamps,
            &self.memory,
            now,
            cred,
            offset,
            data,
            spare,
        )
        .map(Some)
    }

    /// The file's data locked alone for a write by `cred` at `offset` (at the end if
    /// `append` or the file is `DMAPPEND`), with the offset the write goes to; `None`
    /// when it would take a set-id bit away, [`Error::NotFound`] if the node is gone.
    fn lock_for_write(
        &self,
        cred: &Cred,
        offset: u64,
        append: bool,
    ) -> Result<Option<(RwLockWriteGuard<'_, FileData>, u64)>> {
        let (f, perm, dm_append, gone) = self.data.write_with_mode();
        if gone {
            return Err(Error::NotFound);
        }
        if setid::after_write(perm, cred) != perm {
            return Ok(None);
        }
        let offset = if append || dm_append {
            f.size()
        } else {
            offset
        };
        Ok(Some((f, offset)))
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
