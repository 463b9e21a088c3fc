//! The kernel's handles on cached files: [`CachedFile`] (one an open channel) and
//! [`PendingWrite`] (one a write in flight). A handle names its file by key and finds the
//! file's current entry on every call, under the table lock alone (see the module docs of
//! `mcache`); the work on the entry is done by the `entry`, `fill` and `write` modules.

use core::fmt;

use super::McacheImage;
use crate::file::FileIdentity;
use crate::file::PathKey;
use crate::sync::{Arc, AtomicU64, Ordering};
use crate::vm::Vm;

/// The kernel's handle on one open, cached file (Plan 9's `Chan.mcp`), from
/// [`MountCache::open`](super::MountCache::open). Keep one per open channel and drop it when the channel is closed.
///
/// A handle is bound to its file, not to one entry: every call looks the file's current
/// entry up by `(type, dev, qid.path)`, so a write through a handle whose entry went
/// (evicted, forgotten) and came back with a later open updates the entry the other
/// handles read. A handle opened uncached (append-only, an executable image's version, no
/// memory) never reads from the cache, and each of its writes and length changes forgets
/// the file's entry, if another open made one: that entry would not hear of the change.
/// A handle with no entry ([`is_cached`](Self::is_cached) false) answers every read with
/// nothing and ignores fills, so the kernel's read and write paths need not tell the cases
/// apart.
pub struct CachedFile {
    pub(super) key: PathKey,
    /// Opened with an entry: reads, fills and writes use the file's current entry.
    pub(super) cacheable: bool,
    /// The version the channel believes the file has (its `qid.vers`).
    pub(super) vers: AtomicU64,
    pub(super) vm: Vm,
}

/// Proof of when a read missed, for [`CachedFile::fill`]: bytes the server sent for a
/// miss are cached only if nothing changed the file since the miss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillTicket {
    pub(super) serial: u64,
    pub(super) generation: u64,
}

/// The answer of [`CachedFile::read`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedRead {
    /// Bytes copied from the cache to the start of the buffer: the cached prefix of the
    /// range. The rest of the range, if any, must come from the server.
    pub len: usize,
    /// Give this to [`CachedFile::fill`] with the server's bytes for the rest.
    pub ticket: FillTicket,
}

/// One of our writes in flight, from [`CachedFile::begin_write`]. Call
/// [`done`](Self::done) with what the server wrote; dropping it instead says the outcome is
/// unknown (an error, a flush), and the file's cache is wiped.
#[must_use = "dropping a pending write wipes the file's cache"]
pub struct PendingWrite<'a> {
    file: &'a CachedFile,
    /// The entry the write was counted in flight on (the file's entry at its start).
    entry: Option<Arc<McacheImage>>,
    finished: bool,
}

impl CachedFile {
    /// Whether the file has a live cache entry this handle uses: false for an uncached
    /// open, and while the file has no entry (forgotten, evicted, or the file became an
    /// image's channel, until another open makes a new one).
    pub fn is_cached(&self) -> bool {
        self.entry().is_some()
    }

    /// The file's current entry, for a handle opened cached (see the type's docs).
    fn entry(&self) -> Option<Arc<McacheImage>> {
        if !self.cacheable {
            return None;
        }
        self.vm
            .shared
            .table
            .lock_key(&self.key)
            .file(&self.key)
            .cloned()
    }

    /// After one of our changes (a write, a length change) of the file, made on `entry`
    /// (`None`: on no entry): an entry that took the file's place meanwhile, made by an open
    /// while the change was in flight, may hold bytes from before it and is wiped; a handle
    /// opened uncached changed the file behind the cache, so the file's entry goes.
    fn settle(&self, entry: Option<&Arc<McacheImage>>) {
        let shared = &*self.vm.shared;
        if !self.cacheable {
            shared.mcache_forget(self.key);
            return;
        }
        let Some(current) = self.entry() else {
            return;
        };
        if entry.is_none_or(|entry| entry.serial != current.serial) {
            shared.mcache_wipe(&current);
        }
    }

    /// The version the channel believes the file has: the open's `qid.vers`, bumped by
    /// each [`PendingWrite::done`], or the `new_vers` of [`set_length`](Self::set_length).
    pub fn vers(&self) -> u64 {
        self.vers.load(Ordering::Acquire)
    }

    /// The file's identity with [`vers`](Self::vers).
    pub fn identity(&self) -> FileIdentity {
        self.key.identity(self.vers())
    }

    /// The file's length as the cache knows it, `None` when the file is not cached: the
    /// length at the last open (or length change) of the file, grown by our own writes.
    /// Like the cached data it is what the file was at open: a kernel may answer reads at
    /// or past it with end of file, as it answers reads below it from the cache. Never
    /// blocks.
    pub fn length(&self) -> Option<u64> {
        let image = self.entry()?;
        let state = image.state.lock();
        state.kind.linked.then_some(state.kind.length)
    }

    /// Copies the cached prefix of `offset..offset + buf.len()` into `buf`. Never blocks
    /// (it takes spin locks and copies frames). A short answer means the rest must be read
    /// from the server and handed to [`fill`](Self::fill) with the returned ticket; it does
    /// not mean end of file.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> CachedRead {
        let Some(image) = &self.entry() else {
            return CachedRead {
                len: 0,
                ticket: FillTicket {
                    serial: 0,
                    generation: 0,
                },
            };
        };
        self.vm.shared.mcache_read(image, offset, buf)
    }

    /// Caches `data`, the server's bytes at `offset`, read after the miss that gave
    /// `ticket`; dropped if the file changed since (see the module docs). Returns how many
    /// bytes were cached: fewer when the file or the whole cache is at its limit, or memory
    /// is short (best effort, never an error).
    ///
    /// May block: it allocates frames ([`FrameAllocator::allocate`]) with no vm lock held.
    ///
    /// [`FrameAllocator::allocate`]: crate::FrameAllocator::allocate
    pub fn fill(&self, ticket: FillTicket, offset: u64, data: &[u8]) -> usize {
        match &self.entry() {
            Some(image) if image.serial == ticket.serial => {
                self.vm
                    .shared
                    .mcache_store(image, ticket.generation, offset, data)
            }
            _ => 0,
        }
    }

    /// Marks one of our writes as in flight; call it before sending the write to the server
    /// and end it with [`PendingWrite::done`]. Never blocks.
    pub fn begin_write(&self) -> PendingWrite<'_> {
        let entry = self
            .entry()
            .filter(|image| self.vm.shared.mcache_begin_write(image));
        PendingWrite {
            file: self,
            entry,
            finished: false,
        }
    }

    /// The file's length was changed (a `wstat` of the length, after it succeeded): the
    /// cache is wiped and relabelled with `length` and `new_vers` (the server's new
    /// `qid.vers`, which also becomes [`vers`](Self::vers)). After a failed or interrupted
    /// `wstat`, call [`wipe`](Self::wipe). Never blocks.
    pub fn set_length(&self, length: u64, new_vers: u64) {
        self.vers.store(new_vers, Ordering::Release);
        let entry = self.entry();
        if let Some(image) = &entry {
            self.vm.shared.mcache_set_length(image, length, new_vers);
        }
        self.settle(entry.as_ref());
    }

    /// Throws the file's cached data away (its contents are in doubt). Never blocks.
    pub fn wipe(&self) {
        match self.entry() {
            Some(image) => self.vm.shared.mcache_wipe(&image),
            None => self.settle(None),
        }
    }
}

impl fmt::Debug for CachedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedFile")
            .field("identity", &self.identity())
            .field("cacheable", &self.cacheable)
            .finish()
    }
}

impl PendingWrite<'_> {
    /// The server acknowledged one write message: it wrote `written` at `offset`. Call it
    /// once per `Twrite` (begin a new pending write for the next message).
    ///
    /// The written bytes update the cached pages and are cached where pages were missing,
    /// and the version is bumped by one on both sides, as Plan 9's `cwrite` does: the
    /// cache's own version (so the next open validates if the server bumped `qid.vers` once
    /// for this write and nobody else changed the file) and the channel's
    /// [`vers`](CachedFile::vers), which is returned. The cache never takes the server's
    /// version instead: had another client changed the file since our open, that version
    /// would vouch for bytes the cache does not hold; with our own count the server is
    /// ahead and the next open wipes. A server that counts versions otherwise only costs
    /// that wipe.
    ///
    /// May block: it allocates frames for the missing pages with no vm lock held.
    pub fn done(mut self, offset: u64, written: &[u8]) -> u64 {
        self.finished = true;
        let vers = self
            .file
            .vers
            .fetch_add(1, Ordering::AcqRel)
            .wrapping_add(1);
        if let Some(image) = &self.entry {
            self.file
                .vm
                .shared
                .mcache_end_write(image, Some((offset, written)));
        }
        self.file.settle(self.entry.as_ref());
        vers
    }
}

impl Drop for PendingWrite<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some(image) = &self.entry {
            self.file.vm.shared.mcache_end_write(image, None);
        }
        self.file.settle(self.entry.as_ref());
    }
}
