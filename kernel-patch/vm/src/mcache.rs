//! The mount cache (Plan 9's `cache.c`): the data of files on mounts made with the cache
//! flag, kept in mount-cache images of the image cache.
//!
//! vm knows no 9P here either: a file is a [`FileIdentity`] and byte ranges. The kernel asks
//! the cache first and the server for the rest, and tells the cache what the server said.
//!
//! Rules (DESIGN §4):
//! - one **mount-cache image** a file, found by `(type, dev, qid.path)`; it caches the
//!   contents of one `qid.vers`, and [`MountCache::open`] validates it: a different version
//!   or length, a create or a truncating open wipes it. Append-only files are never cached.
//! - a mount-cache image **never holds a channel**; its pages sit at ref 0 in its hash
//!   chains, like an idle image's, and reclaim takes them the same way.
//! - **our own writes keep it valid**: the written bytes go into the cache, and the version
//!   is bumped by one on both sides (the cache and the caller's channel) per write message,
//!   as Plan 9's `cwrite` does; a change by another client meanwhile leaves the server's
//!   version ahead, so the next open wipes.
//! - at most [`MountCacheConfig::max_file_bytes`] a file and
//!   [`MountCacheConfig::max_bytes`] in all; [`MountCacheConfig::max_files`] files, the least
//!   recently used going first.
//! - **no double caching**: when a file's channel becomes an image's channel
//!   ([`Vm::attach`], [`Vm::exec`]) the file leaves the mount cache, and while an image of
//!   the very same contents (identity with `qid.vers`) is in the image table, opens of that
//!   version are not cached.
//!
//! # Staleness
//!
//! A read that misses goes to the server, and its reply is stored by [`CachedFile::fill`]
//! with the [`FillTicket`] the miss returned. Every change of the contents other than a fill
//! bumps the file's *generation*: a wipe, and the start and the end of each of our writes.
//! A fill whose ticket is of an older generation, or that arrives while one of our writes is
//! in flight, may carry bytes from before that change and is dropped. Two of our writes to
//! one file in flight at once may be applied by the server in either order, so the cache
//! does not guess: when they overlap, or when the file is wiped while a write is in flight,
//! the writes' bytes are not cached and the file is wiped as each of them ends.
//!
//! Lock order: image lock → table lock, as everywhere; the free-list lock is a leaf. The
//! table lock protects the map of files and each file's `mcache_vers` (also written under
//! its image lock), so "an executable image and a mount-cache file of the same identity"
//! never exists at an instant the checker can see. Frames are allocated, and pages freed to
//! the free list, with no image or table lock held.

use core::fmt;

use crate::cache::ImageTable;
use crate::file::FileIdentity;
use crate::frame::{AllocSite, PAGE_BYTES, PAGE_SIZE};
use crate::image::{Image, ImageKind, ImageState};
use crate::page::{PageIndex, NO_PAGE};
use crate::sync::{Arc, AtomicU32, Ordering};
use crate::vm::{Vm, VmState};

/// Limits of the mount cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MountCacheConfig {
    /// Most bytes of one file the cache holds (whole pages, rounded down). Past it, more of
    /// the file is not cached. Default 8 MiB.
    pub max_file_bytes: u64,
    /// Most bytes the mount cache holds in all (whole pages, rounded down). Past it, the
    /// least recently used file's pages make room. Default 256 MiB.
    pub max_bytes: u64,
    /// Most files with a cache entry. Past it, the least recently used entry goes.
    /// Default 1024.
    pub max_files: u32,
}

impl Default for MountCacheConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 8 << 20,
            max_bytes: 256 << 20,
            max_files: 1024,
        }
    }
}

/// How the file was opened, as far as its cached contents are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpenKind {
    /// An open of an existing file without truncation: the cache is kept if the version and
    /// the length still match.
    Existing,
    /// An open with truncation (`OTRUNC`): whatever was cached is gone.
    Truncated,
    /// A create (of a new file, or one that replaced an old one): whatever was cached is
    /// gone.
    Created,
}

/// A mount-cache file's key: its identity without the version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    dev_type: u32,
    dev: u64,
    qid_path: u64,
}

impl CacheKey {
    pub(crate) fn of(identity: &FileIdentity) -> Self {
        Self {
            dev_type: identity.dev_type,
            dev: identity.dev,
            qid_path: identity.qid_path,
        }
    }

    fn identity(self, qid_vers: u32) -> FileIdentity {
        FileIdentity {
            dev_type: self.dev_type,
            dev: self.dev,
            qid_path: self.qid_path,
            qid_vers,
        }
    }
}

/// What a mount-cache image's lock protects besides its chains.
#[derive(Debug, Default)]
pub(crate) struct McacheState {
    /// In the mount cache's map. Cleared (and every page dropped) by whoever unlinks the
    /// file; no page is added after.
    pub(crate) linked: bool,
    /// The file's length at the last open, grown by our own writes.
    pub(crate) length: u64,
    /// Bumped by every change of contents that is not a fill (see the module docs).
    pub(crate) generation: u64,
    /// Our writes in flight (between [`CachedFile::begin_write`] and their end).
    pub(crate) writers: u32,
    /// Writes in flight overlapped, or the file was wiped under one: no write in flight
    /// may update the cache. Cleared when `writers` falls to 0.
    pub(crate) conflict: bool,
}

/// The mount cache of a [`Vm`] (Plan 9's `cache.c`); from [`Vm::mount_cache`]. Cheap to
/// clone.
///
/// It caches the data of files on mounts made with the cache flag, one mount-cache image a
/// file that never holds a channel. vm speaks identities and byte ranges; the kernel does
/// the 9P. How the kernel uses it, for a regular file (never a directory) of a cached
/// mount:
///
/// | kernel operation | mount cache calls | may block |
/// |---|---|---|
/// | open, create (after `Ropen`/`Rcreate`, with the file's length) | [`open`](Self::open) with the channel's `(type, dev, qid)`, the length, [`OpenKind`] (`Truncated` for `OTRUNC`, `Created` for a create) and whether the file is append-only; keep the [`CachedFile`] with the channel | no (heap only) |
/// | read `n` bytes at `off` | clip the range to [`CachedFile::length`] (at or past it: end of file, no message; no length: not cached, ask the server); [`CachedFile::read`]; if it answered fewer bytes, read the rest from the server and hand the bytes to [`CachedFile::fill`] with the ticket | `length`, `read` no; `fill` yes (frames) |
/// | write, for each `Twrite` | [`CachedFile::begin_write`] before sending; after `Rwrite`, [`PendingWrite::done`] with the bytes written, and set the channel's `qid.vers` to what it returns; on an error or a flush, drop the pending write (the cache is wiped) | `done` yes (frames); the rest no |
/// | `wstat` of the length | after it succeeded, [`CachedFile::set_length`] with the new length and version; if it failed or was flushed, [`CachedFile::wipe`] | no |
/// | exec of the file | nothing: [`Vm::attach`] (and so [`Vm::exec`]) takes the file out of the mount cache, and its `CachedFile`s become uncached | — |
/// | remove | [`forget`](Self::forget) | no |
/// | close (clunk) | drop the [`CachedFile`] | no |
///
/// Every call takes vm's spin locks only briefly and never holds one while it allocates a
/// frame; none of them fails: when memory, a limit or a race stands in the way, less is
/// cached. The rules (validation, staleness, limits, no double caching) are described on
/// the calls and in `src/mcache.rs`.
#[derive(Clone)]
pub struct MountCache {
    vm: Vm,
}

/// The kernel's handle on one open, cached file (Plan 9's `Chan.mcp`), from
/// [`MountCache::open`]. Keep one per open channel and drop it when the channel is closed.
///
/// A handle that is not cached ([`is_cached`](Self::is_cached) false) answers every read
/// with nothing and ignores fills and writes, so the kernel's read and write paths need not
/// tell the two apart.
pub struct CachedFile {
    image: Option<Arc<Image>>,
    key: CacheKey,
    /// The version the channel believes the file has (its `qid.vers`).
    vers: AtomicU32,
    vm: Vm,
}

/// Proof of when a read missed, for [`CachedFile::fill`]: bytes the server sent for a
/// miss are cached only if nothing changed the file since the miss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillTicket {
    serial: u64,
    generation: u64,
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
    /// The write was counted in flight (the file was cached at its start).
    active: bool,
    finished: bool,
}

impl Vm {
    /// The mount cache (see [`MountCache`]).
    pub fn mount_cache(&self) -> MountCache {
        MountCache { vm: self.clone() }
    }
}

impl MountCache {
    /// Opens `identity` (the channel's `(type, dev, qid)` just after its open or create) for
    /// cached I/O: finds the file's entry and validates it, or makes one.
    ///
    /// The cached contents are kept only for [`OpenKind::Existing`] with the same
    /// `qid.vers` and `length` as cached; otherwise they are wiped and relabelled with this
    /// version and length. An `append_only` file is never cached (and an entry it had goes),
    /// nor is a version an executable image holds, nor a file when memory for its entry
    /// cannot be had: the handle is then uncached. Never fails.
    ///
    /// Allocates on the heap for a new entry; never calls the frame allocator, so it does
    /// not block on memory.
    pub fn open(
        &self,
        identity: FileIdentity,
        length: u64,
        kind: OpenKind,
        append_only: bool,
    ) -> CachedFile {
        let image = self
            .vm
            .shared
            .mcache_open(identity, length, kind, append_only);
        CachedFile {
            image,
            key: CacheKey::of(&identity),
            vers: AtomicU32::new(identity.qid_vers),
            vm: self.vm.clone(),
        }
    }

    /// Drops the file's entry and its pages, whatever version it caches. Returns whether
    /// there was one. [`Vm::attach`] does this itself when a file's channel becomes an
    /// image's channel; the kernel calls it for other reasons to stop caching a file (a
    /// remove, say). Handles still open on the file become uncached.
    pub fn forget(&self, identity: FileIdentity) -> bool {
        let shared = &*self.vm.shared;
        let removed = shared.table.lock().mcache.remove(&CacheKey::of(&identity));
        let found = removed.is_some();
        if let Some(image) = removed {
            shared.mcache_retire(&image);
        }
        found
    }

    /// Frees up to `pages` mount-cache pages, least recently used file first; returns how
    /// many. ([`Vm::reclaim`] takes them too, after idle images' pages.)
    pub fn reclaim(&self, pages: usize) -> usize {
        self.vm.shared.reclaim_mount_cache(pages)
    }

    /// The limits the cache was built with.
    pub fn config(&self) -> MountCacheConfig {
        self.vm.shared.mcache_config
    }
}

impl CachedFile {
    /// Whether the file has a live cache entry: false for an uncached open and after the
    /// entry went (forgotten, evicted, or the file became an image's channel).
    pub fn is_cached(&self) -> bool {
        self.image
            .as_ref()
            .is_some_and(|image| image.state.lock().mcache.linked)
    }

    /// The version the channel believes the file has: the open's `qid.vers`, bumped by
    /// each [`PendingWrite::done`], or the `new_vers` of [`set_length`](Self::set_length).
    pub fn vers(&self) -> u32 {
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
        let image = self.image.as_ref()?;
        let state = image.state.lock();
        state.mcache.linked.then_some(state.mcache.length)
    }

    /// Copies the cached prefix of `offset..offset + buf.len()` into `buf`. Never blocks
    /// (it takes spin locks and copies frames). A short answer means the rest must be read
    /// from the server and handed to [`fill`](Self::fill) with the returned ticket; it does
    /// not mean end of file.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> CachedRead {
        let Some(image) = &self.image else {
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
        match &self.image {
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
        let active = self
            .image
            .as_ref()
            .is_some_and(|image| self.vm.shared.mcache_begin_write(image));
        PendingWrite {
            file: self,
            active,
            finished: false,
        }
    }

    /// The file's length was changed (a `wstat` of the length, after it succeeded): the
    /// cache is wiped and relabelled with `length` and `new_vers` (the server's new
    /// `qid.vers`, which also becomes [`vers`](Self::vers)). After a failed or interrupted
    /// `wstat`, call [`wipe`](Self::wipe). Never blocks.
    pub fn set_length(&self, length: u64, new_vers: u32) {
        self.vers.store(new_vers, Ordering::Release);
        if let Some(image) = &self.image {
            self.vm.shared.mcache_set_length(image, length, new_vers);
        }
    }

    /// Throws the file's cached data away (its contents are in doubt). Never blocks.
    pub fn wipe(&self) {
        if let Some(image) = &self.image {
            self.vm.shared.mcache_wipe(image);
        }
    }
}

impl fmt::Debug for CachedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedFile")
            .field("identity", &self.identity())
            .field("cached", &self.image.is_some())
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
    pub fn done(mut self, offset: u64, written: &[u8]) -> u32 {
        self.finished = true;
        let vers = self
            .file
            .vers
            .fetch_add(1, Ordering::AcqRel)
            .wrapping_add(1);
        if let (true, Some(image)) = (self.active, &self.file.image) {
            self.file
                .vm
                .shared
                .mcache_end_write(image, Some((offset, written)));
        }
        vers
    }
}

impl Drop for PendingWrite<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let (true, Some(image)) = (self.active, &self.file.image) {
            self.file.vm.shared.mcache_end_write(image, None);
        }
    }
}

/// One page's part of a byte range: the page's file offset, where the part starts in the
/// page, and where it lies in the range.
struct Piece {
    page_offset: u64,
    start: usize,
    range: core::ops::Range<usize>,
}

/// The pieces of `offset..offset + len`, page by page.
fn pieces(offset: u64, len: usize) -> impl Iterator<Item = Piece> {
    let len = clip(offset, len);
    let mut done = 0;
    core::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let at = offset + done as u64;
        let start = (at % PAGE_BYTES) as usize;
        let n = (PAGE_SIZE - start).min(len - done);
        let piece = Piece {
            page_offset: at - start as u64,
            start,
            range: done..done + n,
        };
        done += n;
        Some(piece)
    })
}

/// `len`, shortened so that `offset + len` does not overflow.
fn clip(offset: u64, len: usize) -> usize {
    usize::try_from(u64::MAX - offset).map_or(len, |room| len.min(room))
}

/// How many times an open tries again when its entry went away under it.
const OPEN_ATTEMPTS: usize = 3;

/// What the table said about a file being opened.
enum Entry {
    /// An entry was there; validate it.
    Found(Arc<Image>),
    /// A new entry, already valid.
    Made(Arc<Image>),
}

impl ImageTable {
    /// Removes the least recently used mount-cache file, for a new one.
    fn evict_lru_file(&mut self) -> Option<Arc<Image>> {
        let key = self
            .mcache
            .iter()
            .min_by_key(|(_, image)| (image.last_use.load(Ordering::Relaxed), image.serial))
            .map(|(key, _)| *key)?;
        self.mcache.remove(&key)
    }

    /// The mount-cache file next in least-recently-used order after `after`, by
    /// `(last use, serial)`, with that order key.
    fn next_lru_file(&self, after: Option<(u64, u64)>) -> Option<(Arc<Image>, (u64, u64))> {
        let mut best: Option<(&Arc<Image>, (u64, u64))> = None;
        for image in self.mcache.values() {
            let order = (image.last_use.load(Ordering::Relaxed), image.serial);
            if after.is_some_and(|after| order <= after) {
                continue;
            }
            if best.is_none_or(|(_, best)| order < best) {
                best = Some((image, order));
            }
        }
        best.map(|(image, order)| (image.clone(), order))
    }
}

impl VmState {
    fn file_page_limit(&self) -> u32 {
        u32::try_from(self.mcache_config.max_file_bytes / PAGE_BYTES).unwrap_or(u32::MAX)
    }

    pub(crate) fn mcache_page_limit(&self) -> u32 {
        u32::try_from(self.mcache_config.max_bytes / PAGE_BYTES).unwrap_or(u32::MAX)
    }

    /// Marks `image` as just used.
    fn touch(&self, image: &Image) {
        let tick = self.use_clock.fetch_add(1, Ordering::Relaxed) + 1;
        image.last_use.store(tick, Ordering::Relaxed);
    }

    /// See [`MountCache::open`].
    fn mcache_open(
        &self,
        identity: FileIdentity,
        length: u64,
        kind: OpenKind,
        append_only: bool,
    ) -> Option<Arc<Image>> {
        let key = CacheKey::of(&identity);
        if append_only {
            let removed = self.table.lock().mcache.remove(&key);
            if let Some(image) = removed {
                self.mcache_retire(&image);
            }
            return None;
        }
        if self.file_page_limit() == 0
            || self.mcache_page_limit() == 0
            || self.mcache_config.max_files == 0
        {
            return None;
        }
        for _ in 0..OPEN_ATTEMPTS {
            let (entry, evicted) = self.mcache_entry(identity, length)?;
            if let Some(victim) = evicted {
                self.mcache_retire(&victim);
            }
            let image = match entry {
                Entry::Made(image) => {
                    self.touch(&image);
                    return Some(image);
                }
                Entry::Found(image) => image,
            };
            let mut list = NO_PAGE;
            let mut state = image.state.lock();
            if !state.mcache.linked {
                // Forgotten or evicted between the table and here: look again.
                continue;
            }
            let unchanged = kind == OpenKind::Existing
                && image.mcache_vers.load(Ordering::Relaxed) == identity.qid_vers
                && state.mcache.length == length;
            if unchanged {
                drop(state);
                self.touch(&image);
                return Some(image);
            }
            let mut taken = self.wipe_locked(&image, &mut state, &mut list);
            state.mcache.length = length;
            let kept =
                self.relabel_locked(&image, &mut state, identity.qid_vers, &mut list, &mut taken);
            drop(state);
            self.release(list, taken);
            if kept {
                self.touch(&image);
                return Some(image);
            }
            return None;
        }
        None
    }

    /// Finds the entry of `identity`'s file or makes one (evicting the least recently used
    /// file when the map is full; the victim is returned to be retired). `None` when an
    /// executable image holds these contents or memory is short.
    fn mcache_entry(
        &self,
        identity: FileIdentity,
        length: u64,
    ) -> Option<(Entry, Option<Arc<Image>>)> {
        let key = CacheKey::of(&identity);
        let mut fresh: Option<Arc<Image>> = None;
        loop {
            let mut table = self.table.lock();
            if table.map.contains_key(&identity) {
                // An executable image caches these very contents: no double caching.
                return None;
            }
            if let Some(image) = table.mcache.get(&key) {
                return Some((Entry::Found(image.clone()), None));
            }
            let Some(image) = fresh.take() else {
                // Allocate with no lock held, then look again.
                drop(table);
                self.admit(AllocSite::MountCacheFile).ok()?;
                let image =
                    Image::with_kind(key.identity(0), self.serial(), ImageKind::MountCache)?;
                {
                    let mut state = image.state.lock();
                    state.mcache.linked = true;
                    state.mcache.length = length;
                }
                image
                    .mcache_vers
                    .store(identity.qid_vers, Ordering::Relaxed);
                // The map's own reference.
                image.refs.store(1, Ordering::Release);
                // No memory for the box: the file goes uncached.
                fresh = Some(Arc::try_new(image).ok()?);
                continue;
            };
            if table.mcache.try_reserve(1).is_err() {
                return None;
            }
            let victim = if table.mcache.len() >= self.mcache_config.max_files as usize {
                table.evict_lru_file()
            } else {
                None
            };
            table.mcache.insert(key, image.clone());
            drop(table);
            return Some((Entry::Made(image), victim));
        }
    }

    /// Gives the map's reference to `image` back, after the caller removed it from the map:
    /// the file is unlinked and its pages freed.
    pub(crate) fn mcache_retire(&self, image: &Arc<Image>) {
        let mut list = NO_PAGE;
        let mut state = image.state.lock();
        let mut taken = 0;
        if state.mcache.linked {
            state.mcache.linked = false;
            state.mcache.generation += 1;
            taken = image.take_all_pages(&mut state, &self.pool, &mut list);
            image.refs.fetch_sub(1, Ordering::AcqRel);
        }
        drop(state);
        self.release(list, taken);
    }

    /// Wipes a linked file's pages onto `list`. Called under its image lock.
    fn wipe_locked(&self, image: &Image, state: &mut ImageState, list: &mut u32) -> usize {
        state.mcache.generation += 1;
        if state.mcache.writers > 0 {
            state.mcache.conflict = true;
        }
        self.counters.mcache_wipes.fetch_add(1, Ordering::Relaxed);
        image.take_all_pages(state, &self.pool, list)
    }

    /// Sets the version a linked file caches to `vers`, under the table lock too. If an
    /// executable image of that very identity is in the table, the file leaves the mount
    /// cache instead (its pages onto `list`, counted in `taken`) and `false` is returned.
    /// Called under the image lock.
    fn relabel_locked(
        &self,
        image: &Arc<Image>,
        state: &mut ImageState,
        vers: u32,
        list: &mut u32,
        taken: &mut usize,
    ) -> bool {
        let key = CacheKey::of(&image.identity);
        let mut table = self.table.lock();
        if !table.map.contains_key(&key.identity(vers)) {
            image.mcache_vers.store(vers, Ordering::Relaxed);
            return true;
        }
        let linked_here = table
            .mcache
            .get(&key)
            .is_some_and(|linked| linked.serial == image.serial);
        let removed = if linked_here {
            table.mcache.remove(&key)
        } else {
            None
        };
        drop(table);
        if removed.is_some() {
            state.mcache.linked = false;
            state.mcache.generation += 1;
            *taken += image.take_all_pages(state, &self.pool, list);
            image.refs.fetch_sub(1, Ordering::AcqRel);
        }
        // Not the last reference (the caller holds one): nothing is freed under the lock.
        drop(removed);
        false
    }

    /// Frees pages taken from mount-cache chains (a private list) and uncounts them.
    fn release(&self, list: u32, taken: usize) {
        self.pool.free_list_of(list);
        if taken > 0 {
            self.mcache_pages.fetch_sub(taken as u32, Ordering::AcqRel);
        }
    }

    /// See [`CachedFile::read`].
    fn mcache_read(&self, image: &Arc<Image>, offset: u64, buf: &mut [u8]) -> CachedRead {
        let mut ticket = FillTicket {
            serial: image.serial,
            generation: 0,
        };
        let mut copied = 0;
        let mut first = true;
        for piece in pieces(offset, buf.len()) {
            let mut state = image.state.lock();
            if first {
                ticket.generation = state.mcache.generation;
                first = false;
            }
            if !state.mcache.linked {
                break;
            }
            let Some(page) = image.find(&mut state, &self.pool, piece.page_offset) else {
                break;
            };
            let (start, end) = self.pool.valid(page);
            if piece.start < start || piece.start >= end {
                break;
            }
            let n = (end - piece.start).min(piece.range.len());
            let into = &mut buf[piece.range.start..piece.range.start + n];
            self.frames.with_frame(self.pool.frame(page), &mut |bytes| {
                into.copy_from_slice(&bytes[piece.start..piece.start + n]);
            });
            drop(state);
            copied += n;
            if n < piece.range.len() {
                // The valid bytes end inside this page.
                break;
            }
        }
        if first {
            ticket.generation = image.state.lock().mcache.generation;
        }
        if !buf.is_empty() {
            let counter = if copied == buf.len() {
                &self.counters.mcache_hits
            } else {
                &self.counters.mcache_misses
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if copied > 0 {
            self.touch(image);
        }
        CachedRead {
            len: copied,
            ticket,
        }
    }

    /// Writes `bytes` at `start` of a cached page and widens its valid range, if the result
    /// is one range. Returns whether the bytes were taken. Called under the image lock.
    fn merge(&self, page: PageIndex, start: usize, bytes: &[u8]) -> bool {
        let (valid_start, valid_end) = self.pool.valid(page);
        let end = start + bytes.len();
        let range = if start <= valid_end && valid_start <= end {
            (valid_start.min(start), valid_end.max(end))
        } else if end - start > valid_end - valid_start {
            // Disjoint: one range is all a page records, so keep the larger.
            (start, end)
        } else {
            return false;
        };
        self.frames
            .with_frame_mut(self.pool.frame(page), &mut |frame| {
                frame[start..end].copy_from_slice(bytes);
            });
        self.pool.set_valid(page, range.0, range.1);
        true
    }

    /// Whether bytes read at `generation` may be stored now. Under the image lock.
    fn storable(state: &ImageState, generation: u64) -> bool {
        state.mcache.linked && state.mcache.generation == generation && state.mcache.writers == 0
    }

    /// Caches `data` at `offset` while the file stays at `generation` (a fill, or the
    /// missing pages of our own write). Returns the bytes cached.
    fn mcache_store(&self, image: &Arc<Image>, generation: u64, offset: u64, data: &[u8]) -> usize {
        let limit = self.file_page_limit();
        let mut cached = 0;
        let total = pieces(offset, data.len()).count();
        for (index, piece) in pieces(offset, data.len()).enumerate() {
            let bytes = &data[piece.range.clone()];
            {
                let mut state = image.state.lock();
                if !Self::storable(&state, generation) {
                    break;
                }
                if let Some(page) = image.find(&mut state, &self.pool, piece.page_offset) {
                    if self.merge(page, piece.start, bytes) {
                        cached += bytes.len();
                    }
                    continue;
                }
                if image.pgref.load(Ordering::Relaxed) >= limit {
                    break;
                }
            }
            // A new page, allocated and written with no lock held: nobody else sees it yet.
            let Some(fresh) = self.mcache_new_page(total - index) else {
                break;
            };
            self.frames
                .with_frame_mut(self.pool.frame(fresh), &mut |frame| {
                    frame[piece.start..piece.start + bytes.len()].copy_from_slice(bytes);
                });
            let mut state = image.state.lock();
            let mut kept = false;
            if Self::storable(&state, generation) {
                if let Some(page) = image.find(&mut state, &self.pool, piece.page_offset) {
                    // Another fill cached the page meanwhile.
                    if self.merge(page, piece.start, bytes) {
                        cached += bytes.len();
                    }
                } else if image.pgref.load(Ordering::Relaxed) < limit {
                    image.insert(&mut state, &self.pool, piece.page_offset, fresh);
                    self.pool
                        .set_valid(fresh, piece.start, piece.start + bytes.len());
                    // Chains hold no reference: the page waits at ref 0, like an idle
                    // image's. (Owned now, so this only drops the count.)
                    self.pool.put(fresh);
                    kept = true;
                    cached += bytes.len();
                }
            }
            let go_on = Self::storable(&state, generation);
            drop(state);
            if !kept {
                self.pool.put(fresh);
                self.mcache_pages.fetch_sub(1, Ordering::AcqRel);
            }
            if !go_on {
                break;
            }
        }
        if cached > 0 {
            self.touch(image);
        }
        cached
    }

    /// A page for the mount cache at ref 1, counted in `mcache_pages`; `None` when the cache
    /// or memory is full even after the mount cache gave up its least recently used pages,
    /// at most `needed` (the pages the caller still wants) and `reclaim_batch` of them: no
    /// more, or a fill would evict the pages it just cached. Never reclaims executable
    /// images' pages: the mount cache makes room in itself only. Called with no lock held
    /// (it may block in the frame allocator).
    fn mcache_new_page(&self, needed: usize) -> Option<PageIndex> {
        self.admit(AllocSite::MountCachePage).ok()?;
        let limit = self.mcache_page_limit();
        let batch = needed.clamp(1, self.config.reclaim_batch.max(1) as usize);
        let mut reserved = false;
        for attempt in 0..2 {
            reserved = self
                .mcache_pages
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |pages| {
                    (pages < limit).then_some(pages + 1)
                })
                .is_ok();
            if reserved || attempt == 1 {
                break;
            }
            self.reclaim_mount_cache(batch);
        }
        if !reserved {
            return None;
        }
        let page = match self.pool.try_alloc(&*self.frames) {
            Some(page) => Some(page),
            None => {
                self.reclaim_mount_cache(batch);
                self.pool.try_alloc(&*self.frames)
            }
        };
        match page {
            Some(page) => {
                self.counters
                    .pages_allocated
                    .fetch_add(1, Ordering::Relaxed);
                Some(page)
            }
            None => {
                self.mcache_pages.fetch_sub(1, Ordering::AcqRel);
                None
            }
        }
    }

    /// See [`CachedFile::begin_write`]. Returns whether the write counts as in flight.
    fn mcache_begin_write(&self, image: &Image) -> bool {
        let mut state = image.state.lock();
        if !state.mcache.linked {
            return false;
        }
        state.mcache.writers += 1;
        if state.mcache.writers > 1 {
            state.mcache.conflict = true;
        }
        state.mcache.generation += 1;
        true
    }

    /// Ends a write in flight: with `(offset, written)` when the server wrote, `None` when
    /// the outcome is unknown. A write that happened bumps the cached version by one.
    fn mcache_end_write(&self, image: &Arc<Image>, outcome: Option<(u64, &[u8])>) {
        let mut list = NO_PAGE;
        let mut taken = 0;
        let mut state = image.state.lock();
        state.mcache.writers = state.mcache.writers.saturating_sub(1);
        state.mcache.generation += 1;
        let mut write_through = None;
        if state.mcache.linked {
            match outcome {
                Some((offset, written)) if !state.mcache.conflict => {
                    let mut missing = false;
                    for piece in pieces(offset, written.len()) {
                        match image.find(&mut state, &self.pool, piece.page_offset) {
                            Some(page) => {
                                self.merge(page, piece.start, &written[piece.range]);
                            }
                            None => missing = true,
                        }
                    }
                    if !written.is_empty() {
                        // Past the end the server grew the file (a hole reads as zeros).
                        let end = offset.saturating_add(clip(offset, written.len()) as u64);
                        state.mcache.length = state.mcache.length.max(end);
                    }
                    let vers = image.mcache_vers.load(Ordering::Relaxed).wrapping_add(1);
                    let kept = self.relabel_locked(image, &mut state, vers, &mut list, &mut taken);
                    if kept && missing {
                        write_through = Some((offset, written));
                    }
                }
                Some(_) => {
                    taken = self.wipe_locked(image, &mut state, &mut list);
                    let vers = image.mcache_vers.load(Ordering::Relaxed).wrapping_add(1);
                    self.relabel_locked(image, &mut state, vers, &mut list, &mut taken);
                }
                None => taken = self.wipe_locked(image, &mut state, &mut list),
            }
        }
        if state.mcache.writers == 0 {
            state.mcache.conflict = false;
        }
        let generation = state.mcache.generation;
        drop(state);
        self.release(list, taken);
        if let Some((offset, written)) = write_through {
            self.mcache_store(image, generation, offset, written);
        }
    }

    /// See [`CachedFile::set_length`].
    fn mcache_set_length(&self, image: &Arc<Image>, length: u64, new_vers: u32) {
        let mut list = NO_PAGE;
        let mut state = image.state.lock();
        let mut taken = 0;
        if state.mcache.linked {
            taken = self.wipe_locked(image, &mut state, &mut list);
            state.mcache.length = length;
            self.relabel_locked(image, &mut state, new_vers, &mut list, &mut taken);
        }
        drop(state);
        self.release(list, taken);
    }

    /// See [`CachedFile::wipe`].
    fn mcache_wipe(&self, image: &Image) {
        let mut list = NO_PAGE;
        let mut state = image.state.lock();
        let taken = if state.mcache.linked {
            self.wipe_locked(image, &mut state, &mut list)
        } else {
            0
        };
        drop(state);
        self.release(list, taken);
    }

    /// Frees up to `want` mount-cache pages, the least recently used file's first. Takes
    /// each image lock alone, and no lock while freeing.
    pub(crate) fn reclaim_mount_cache(&self, want: usize) -> usize {
        let mut freed = 0;
        let mut after = None;
        while freed < want {
            let Some((image, order)) = self.table.lock().next_lru_file(after) else {
                break;
            };
            after = Some(order);
            let mut list = NO_PAGE;
            let mut state = image.state.lock();
            // A file being unlinked keeps the map's reference until it is retired, so its
            // `refs` stays above `pgref` here as `reclaim_pages` needs.
            let taken = image.reclaim_pages(&mut state, &self.pool, want - freed, &mut list);
            drop(state);
            self.release(list, taken);
            freed += taken;
        }
        self.counters
            .reclaimed_pages
            .fetch_add(freed as u64, Ordering::Relaxed);
        freed
    }
}
