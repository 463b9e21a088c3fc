//! File descriptors (Plan 9's `Fgrp`): each an open channel and its offset, or an end of
//! a pipe.
//!
//! A descriptor is shared by the processes a fork made (as Plan 9's `dupfgrp` increments
//! channel references). `close` by the last holder clunks and waits for the server; any
//! other last drop (a process exits) queues the clunk. A pipe's end closes when its last
//! holder lets it go.

use std::sync::{Arc, Mutex, MutexGuard};

use mnt::{Interrupt, MntError};
use vm::CachedFile;

use crate::cached;
use crate::kchan::KChan;
use crate::pipe::PipeEnd;

/// What a descriptor names: a file of a mount, or an end of a pipe; either shared by the
/// descriptors fork copied.
#[derive(Clone)]
pub(crate) enum OpenFile {
    /// A file of a mount.
    File(Arc<FileDescription>),
    /// One end of a pipe.
    Pipe(Arc<PipeEnd>),
}

/// One open file description (POSIX's term; Plan 9's `Chan` with its offset): what a
/// descriptor names, shared by the descriptors a fork copied.
pub(crate) struct FileDescription {
    pub(crate) chan: KChan,
    /// The file's handle in the mount cache, for a regular file of a cached mount (Plan 9's
    /// `Chan.mcp`); dropped with the open file.
    pub(crate) cache: Option<CachedFile>,
    /// The offset of the next `read` or `write`. A leaf lock, held only to read, set or
    /// advance it, never across a server call: I/O reads it when it starts and adds what
    /// it transferred when it ends (Plan 9's `sysread`), so a stuck read stalls no other
    /// holder's `seek` or I/O. I/O through one description at once is therefore not
    /// serialised: two concurrent reads may read the same bytes, and a seek made while a
    /// read is in flight is advanced by what that read then transfers.
    offset: Mutex<u64>,
}

impl FileDescription {
    pub(crate) fn new(chan: KChan, cache: Option<CachedFile>) -> Self {
        Self {
            chan,
            cache,
            offset: Mutex::new(0),
        }
    }

    /// Reads at `offset`, through the mount cache if the file has a handle in it.
    pub(crate) fn read(
        &self,
        offset: u64,
        buf: &mut [u8],
        intr: &Interrupt,
    ) -> Result<usize, MntError> {
        match &self.cache {
            Some(file) => cached::read(self.chan.get(), file, offset, buf, intr),
            None => self.chan.get().read(offset, buf, intr),
        }
    }

    /// Writes at `offset`, telling the mount cache if the file has a handle in it.
    pub(crate) fn write(
        &self,
        offset: u64,
        data: &[u8],
        intr: &Interrupt,
    ) -> Result<usize, MntError> {
        match &self.cache {
            Some(file) => cached::write(self.chan.get(), file, offset, data, intr),
            None => self.chan.get().write(offset, data, intr),
        }
    }

    /// Where the next `read` or `write` starts.
    pub(crate) fn offset(&self) -> u64 {
        *self.offset_lock()
    }

    /// Moves the offset to `offset` (`seek`).
    pub(crate) fn set_offset(&self, offset: u64) {
        *self.offset_lock() = offset;
    }

    /// Advances the offset by `n` bytes an I/O transferred, from wherever it is now (a seek
    /// may have moved it meanwhile). At the largest offset it stays there: the next I/O of
    /// any length is refused before the server is asked.
    pub(crate) fn advance(&self, n: usize) {
        let mut offset = self.offset_lock();
        *offset = offset.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }

    fn offset_lock(&self) -> MutexGuard<'_, u64> {
        self.offset
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A process's descriptors; the lowest free number is used first.
#[derive(Default, Clone)]
pub(crate) struct FdTable {
    slots: Vec<Option<OpenFile>>,
}

impl FdTable {
    pub(crate) fn insert(&mut self, file: OpenFile) -> usize {
        match self.slots.iter().position(Option::is_none) {
            Some(fd) => {
                self.slots[fd] = Some(file);
                fd
            }
            None => {
                self.slots.push(Some(file));
                self.slots.len() - 1
            }
        }
    }

    pub(crate) fn get(&self, fd: usize) -> Option<OpenFile> {
        self.slots.get(fd)?.clone()
    }

    pub(crate) fn remove(&mut self, fd: usize) -> Option<OpenFile> {
        self.slots.get_mut(fd)?.take()
    }

    /// Every descriptor, taken out (at exit).
    pub(crate) fn take_all(&mut self) -> Vec<OpenFile> {
        self.slots.drain(..).flatten().collect()
    }

    /// Every open file of a mount (for the checker).
    pub(crate) fn all(&self) -> Vec<Arc<FileDescription>> {
        self.slots
            .iter()
            .flatten()
            .filter_map(|open| match open {
                OpenFile::File(file) => Some(file.clone()),
                OpenFile::Pipe(_) => None,
            })
            .collect()
    }

    /// Open descriptors.
    pub(crate) fn count(&self) -> usize {
        self.slots.iter().flatten().count()
    }
}
