//! The tree's file data: reads and writes (which need only the shared tree lock, see
//! the lock order in `fs/mod.rs`), sizes, and pages lent for mappings.

use super::*;

/// A write's data, size, times and version, with the file's data lock held alone
/// (`f`): the bytes of `data` at `offset`, the pages reserved from `memory` before
/// anything changes. Shared by the tree's writes and those through a [`FileHandle`].
pub(super) fn write_file(
    f: &mut FileData,
    stamps: &StampCell,
    memory: &Memory,
    now: Timespec,
    cred: &Cred,
    offset: u64,
    data: &[u8],
) -> Result<u32> {
    let apply = |f: &mut FileData| f.write(offset, data);
    write_with(f, stamps, memory, now, cred, offset, data.len(), apply)
}

/// [`write_file`] of data received in pieces, whose pages become the file's
/// ([`FileData::write_gathered`]); buffers left over go to `spare`. On error nothing
/// changes and `data`'s pages are dropped.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_file_gathered(
    f: &mut FileData,
    stamps: &StampCell,
    memory: &Memory,
    now: Timespec,
    cred: &Cred,
    offset: u64,
    data: Gathered<'_>,
    spare: &mut Vec<PageBuf>,
) -> Result<u32> {
    let len = data.len();
    let apply = |f: &mut FileData| f.write_gathered(offset, data, spare);
    write_with(f, stamps, memory, now, cred, offset, len, apply)
}

/// The checks, the reservation and the stamps of a write of `len` bytes at `offset`,
/// around `apply`, which changes the data.
#[allow(clippy::too_many_arguments)]
fn write_with(
    f: &mut FileData,
    stamps: &StampCell,
    memory: &Memory,
    now: Timespec,
    cred: &Cred,
    offset: u64,
    len: usize,
    apply: impl FnOnce(&mut FileData),
) -> Result<u32> {
    let end = offset.checked_add(len as u64).ok_or(Error::FileTooBig)?;
    if end > MAX_FILE_SIZE {
        return Err(Error::FileTooBig);
    }
    let count = u32::try_from(len).map_err(|_| Error::CountTooLarge)?;
    if len == 0 {
        return Ok(0);
    }
    let bytes = f.pages_needed(offset, len) * PAGE_SIZE as u64;
    memory.reserve(bytes)?;
    apply(f);
    stamps.update(|s| {
        s.touch_modify(now);
        s.muid = cred.uid;
    });
    Ok(count)
}

impl Tree {
    /// Reads up to `count` bytes of a file (or a symlink's target) from `offset`: hands
    /// them to `put` in order, straight from where the tree keeps them (a front end
    /// copies them once, into its reply), and returns how many it handed. Nothing is
    /// handed on error.
    ///
    /// Needs only the tree's shared lock: the file's data lock is shared with other
    /// readers, and the access time is stored through the stamp lock.
    pub fn read_with(
        &self,
        id: NodeId,
        offset: u64,
        count: usize,
        mut put: impl FnMut(&[u8]),
    ) -> Result<usize> {
        let now = self.now();
        let n = self.node(id)?;
        let len = match &n.content {
            Content::File(f) => f.read().read_with(offset, count, put),
            Content::Symlink(t) => {
                let bytes = t.as_bytes();
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = start.saturating_add(count).min(bytes.len());
                put(&bytes[start..end]);
                end - start
            }
            Content::Dir(_) => return Err(Error::IsDir),
            Content::Special { .. } => return Err(Error::Invalid),
        };
        n.stamps.update(|s| s.atime = now);
        Ok(len)
    }

    /// A handle of a regular file's data for an open fid, through which it reads with no
    /// tree lock ([`FileHandle`]); `None` for anything else.
    pub fn file_handle(&self, id: NodeId) -> Option<FileHandle> {
        let n = self.node(id).ok()?;
        match &n.content {
            Content::File(f) => Some(FileHandle {
                data: Arc::clone(f),
                stamps: Arc::clone(&n.stamps),
                memory: Arc::clone(&self.memory),
                clock: self.clock,
            }),
            _ => None,
        }
    }

    /// Writes `data` at `offset` (at the end if `append` or the file is `DMAPPEND`),
    /// returning the bytes written. Past the memory limit it fails and changes nothing.
    pub fn write(
        &mut self,
        cred: &Cred,
        id: NodeId,
        offset: u64,
        data: &[u8],
        append: bool,
    ) -> Result<u32> {
        let count = self.write_data(cred, id, offset, data, append)?;
        if count > 0 {
            let n = self.node_mut(id)?;
            n.perm = setid::after_write(n.perm, cred);
            self.sync_file_mode(id);
        }
        Ok(count)
    }

    /// True if a write by `cred` would take set-id bits off the file, which only the
    /// exclusive lock may do ([`Fs::write`] asks before writing under the shared one).
    pub(super) fn write_changes_perm(&self, cred: &Cred, id: NodeId) -> bool {
        self.node(id)
            .is_ok_and(|n| setid::after_write(n.perm, cred) != n.perm)
    }

    /// A write's data, size, times and version (everything but the set-id bits), under
    /// the tree's shared lock: the file's data lock is held alone for the whole write,
    /// so an append finds the end no other write is moving, and the pages are reserved
    /// from the atomic memory account before anything changes.
    pub(super) fn write_data(
        &self,
        cred: &Cred,
        id: NodeId,
        offset: u64,
        data: &[u8],
        append: bool,
    ) -> Result<u32> {
        let now = self.now();
        let n = self.node(id)?;
        let to_end = append || n.append;
        let mut f = match &n.content {
            Content::File(f) => f.write(),
            Content::Dir(_) => return Err(Error::IsDir),
            _ => return Err(Error::Invalid),
        };
        let offset = if to_end { f.size() } else { offset };
        write_file(&mut f, &n.stamps, &self.memory, now, cred, offset, data)
    }

    /// Sets a file's length (no permission check: the caller decided). Refused with
    /// [`Error::TextBusy`], changing nothing, if it would drop a lent page.
    pub(super) fn set_size(&mut self, id: NodeId, size: u64) -> Result<()> {
        if size > MAX_FILE_SIZE {
            return Err(Error::FileTooBig);
        }
        let n = self.node_mut(id)?;
        let freed = match &mut n.content {
            Content::File(f) => f.write().truncate(size).map_err(|_| Error::TextBusy)?,
            Content::Dir(_) => return Err(Error::IsDir),
            _ => return Err(Error::Invalid),
        };
        self.memory.release(freed * PAGE_SIZE as u64);
        Ok(())
    }

    /// Calls `look` with the page of a regular file at `index`, if it holds data (where
    /// it lies now; a mapping borrows pages with [`Tree::lend_pages`], which keeps them
    /// there), under the file's data lock.
    pub fn with_page<R>(
        &self,
        id: NodeId,
        index: u64,
        look: impl FnOnce(Option<&Page>) -> R,
    ) -> Result<R> {
        match &self.node(id)?.content {
            Content::File(f) => Ok(look(f.read().page(index))),
            Content::Dir(_) => Err(Error::IsDir),
            _ => Err(Error::Invalid),
        }
    }

    /// Lends the pages `first..first + count` of a regular file for a memory mapping
    /// and returns the address of the first. The pages lie side by side from there,
    /// page-aligned, and stay there holding their memory until each is given back with
    /// [`Tree::return_pages`], whatever any front end does to the file meanwhile:
    /// writes land in them, truncation past them is refused, and removal keeps the
    /// file until they are back. Each call is one loan of each page.
    ///
    /// Every page must hold some of the file ([`Error::PastEnd`]). A hole in the window
    /// gets a zero page, counted against the memory limit ([`Error::NoSpace`]); the
    /// file's length, data, times and version do not change. [`Error::Busy`] if the
    /// pages cannot be put side by side without moving a page that is already lent
    /// (a window reaching past a run an earlier mapping pinned).
    ///
    /// The caller reads or writes through the address only while the tree's exclusive
    /// lock is held or while no other thread uses the tree (a write under the shared
    /// lock changes the pages meanwhile); the intended user is the kernel,
    /// which maps the pages into another address space.
    pub fn lend_pages(&mut self, id: NodeId, first: u64, count: u64) -> Result<NonNull<Page>> {
        let n = self.nodes.get(&id).ok_or(Error::NotFound)?;
        let mut f = match &n.content {
            Content::File(f) => f.write(),
            Content::Dir(_) => return Err(Error::IsDir),
            _ => return Err(Error::Invalid),
        };
        let end = first.checked_add(count).ok_or(Error::PastEnd)?;
        let memory = &self.memory;
        let page = f
            .lend(first, end, |pages| memory.reserve(pages * PAGE_SIZE as u64))
            .map_err(|e| match e {
                LendError::OutOfRange => Error::PastEnd,
                LendError::Pinned => Error::Busy,
                LendError::Reserve(e) => e,
            })?;
        self.lent += count;
        Ok(page)
    }

    /// Ends one loan of each page in `first..first + count` of a file, lent by
    /// [`Tree::lend_pages`]. Returns how many of those pages had no loan (given back
    /// twice, or never lent): not an error, the caller decides whether to log it.
    pub fn return_pages(&mut self, id: NodeId, first: u64, count: u64) -> Result<u64> {
        let n = self.nodes.get(&id).ok_or(Error::NotFound)?;
        let mut f = match &n.content {
            Content::File(f) => f.write(),
            Content::Dir(_) => return Err(Error::IsDir),
            _ => return Err(Error::Invalid),
        };
        let end = first.saturating_add(count);
        let back = f.give_back(first, end);
        drop(f);
        self.lent -= (end - first) - back.unmatched;
        self.memory.release(back.freed * PAGE_SIZE as u64);
        // A removed file whose last loan this was goes now.
        self.destroy_if_unused(id);
        Ok(back.unmatched)
    }

    /// Page loans outstanding over all files (a page lent twice counts twice).
    pub fn lent_pages(&self) -> u64 {
        self.lent
    }

    /// Loans outstanding of one page of a file.
    pub fn page_loans(&self, id: NodeId, index: u64) -> Result<u32> {
        match &self.node(id)?.content {
            Content::File(f) => Ok(f.read().loans_of(index)),
            Content::Dir(_) => Err(Error::IsDir),
            _ => Err(Error::Invalid),
        }
    }

    /// A symbolic link's target.
    pub fn readlink(&self, id: NodeId) -> Result<String> {
        match &self.node(id)?.content {
            Content::Symlink(t) => Ok(t.clone()),
            _ => Err(Error::Invalid),
        }
    }
}
