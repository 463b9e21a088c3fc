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
//! - **a handle follows its file, not an entry**: a [`CachedFile`] looks the file's current
//!   entry up by key on every call (as Plan 9's `cache.c` finds its `Mntcache` by qid), so
//!   our write through a handle whose entry was evicted or forgotten reaches the entry a
//!   later open made. A handle opened uncached forgets the file's entry with each of its
//!   changes, and a change that ends on another entry than it began on wipes that entry.
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
//! # Modules
//!
//! - this file: the limits, the keys, the per-file state and [`MountCache`], the kernel's
//!   entry point;
//! - `handle`: [`CachedFile`] and [`PendingWrite`], the kernel's handles, which find the
//!   file's current entry on every call;
//! - `entry`: the map of cached files: open and validation, forget, retire, relabel;
//! - `fill`: reads from the cache and fills from the server's replies;
//! - `write`: our own writes, length changes and wipes;
//! - `limits`: pages within the limits, least-recently-used eviction and reclaim.
//!
//! # Locks
//!
//! Lock order: image lock → table lock, as everywhere; the free-list lock is a leaf. The
//! table lock protects the map of files and each file's `McacheFile::vers` (also written under
//! its image lock), so "an executable image and a mount-cache file of the same identity"
//! never exists at an instant the checker can see. A handle looks its entry up under the
//! table lock alone and locks the entry's image after releasing it. Frames are allocated,
//! and pages freed to the free list, with no image or table lock held.

mod entry;
mod fill;
mod handle;
mod limits;
mod write;

use crate::file::{FileIdentity, PathKey};
use crate::image::{Image, ImageKind};
use crate::sync::AtomicU64;
use crate::vm::Vm;

pub use handle::{CachedFile, CachedRead, FillTicket, PendingWrite};

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

/// The kind of a mount-cache image: one cached file's data, in the mount cache's map.
/// It has no channel (the kind has no field for one): its pages come from fills and our
/// own writes, never from reading a file of its own.
pub(crate) struct McacheFile {
    /// The `qid.vers` whose contents the pages hold. Written with both the image lock and
    /// the table lock held, so either lock is enough to read it.
    pub(crate) vers: AtomicU64,
}

impl ImageKind for McacheFile {
    /// A file holds at most a few thousand pages, and there are many files, so fewer
    /// chains than an executable's image.
    const CHAINS: usize = 64;
    type Locked = McacheState;
}

/// A mount-cache image.
pub(crate) type McacheImage = Image<McacheFile>;

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
/// | open of a file that must not be cached (to be removed at close) | [`uncached`](Self::uncached); keep the [`CachedFile`] with the channel and use it as any other | no |
/// | read `n` bytes at `off` | clip the range to [`CachedFile::length`] (at or past it: end of file, no message; no length: not cached, ask the server); [`CachedFile::read`]; if it answered fewer bytes, read the rest from the server and hand the bytes to [`CachedFile::fill`] with the ticket | `length`, `read` no; `fill` yes (frames) |
/// | write, for each `Twrite` | [`CachedFile::begin_write`] before sending; after `Rwrite`, [`PendingWrite::done`] with the bytes written, and set the channel's `qid.vers` to what it returns; on an error or a flush, drop the pending write (the cache is wiped) | `done` yes (frames); the rest no |
/// | `wstat` of the length | after it succeeded, [`CachedFile::set_length`] with the new length and version (by path, with no open handle: [`set_length`](Self::set_length), which makes no entry); if it failed or was flushed, [`CachedFile::wipe`] (by path: [`forget`](Self::forget)) | no |
/// | exec of the file | nothing: [`Vm::attach`] (and so [`Vm::exec`]) takes the file out of the mount cache, and its `CachedFile`s find no entry | — |
/// | remove | [`forget`](Self::forget) | no |
/// | close (clunk) | drop the [`CachedFile`] | no |
///
/// Every call takes vm's spin locks only briefly and never holds one while it allocates a
/// frame; none of them fails: when memory, a limit or a race stands in the way, less is
/// cached. The rules (validation, staleness, limits, no double caching) are described on
/// the calls and in the module docs of `src/mcache/`.
#[derive(Clone)]
pub struct MountCache {
    vm: Vm,
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
            key: PathKey::of(&identity),
            cacheable: image.is_some(),
            vers: AtomicU64::new(identity.version),
            vm: self.vm.clone(),
        }
    }

    /// An uncached handle for `identity`'s file, for a channel whose file must not be cached
    /// (one opened to be removed at close, say, or whose stat could not be trusted): the
    /// file's entry, if any, goes now, the handle never reads from the cache, and each of
    /// its writes and length changes forgets an entry another open made meanwhile, which
    /// would not hear of them. Never blocks.
    pub fn uncached(&self, identity: FileIdentity) -> CachedFile {
        let key = PathKey::of(&identity);
        self.vm.shared.mcache_forget(key);
        CachedFile {
            key,
            cacheable: false,
            vers: AtomicU64::new(identity.version),
            vm: self.vm.clone(),
        }
    }

    /// Drops the file's entry and its pages, whatever version it caches. Returns whether
    /// there was one. [`Vm::attach`] does this itself when a file's channel becomes an
    /// image's channel; the kernel calls it for other reasons to stop caching a file (a
    /// remove, say). Handles still open on the file find no entry until another open makes
    /// one.
    pub fn forget(&self, identity: FileIdentity) -> bool {
        self.vm.shared.mcache_forget(PathKey::of(&identity))
    }

    /// The length of `identity`'s file was changed not through an open handle (a `wstat` by
    /// path, after it succeeded; `identity.version` is the server's new version): if the
    /// file has an entry, it is wiped and relabelled with `length` and that version, as by
    /// a truncating open, so open handles see the new length. A file with no entry gets
    /// none: it was not opened cached. Never blocks.
    pub fn set_length(&self, identity: FileIdentity, length: u64) {
        let shared = &*self.vm.shared;
        let key = PathKey::of(&identity);
        let entry = shared.table.lock_key(&key).file(&key).cloned();
        if let Some(image) = entry {
            shared.mcache_set_length(&image, length, identity.version);
        }
    }

    /// Frees up to `pages` mount-cache pages, least recently used file first; returns how
    /// many. ([`Vm::reclaim`] takes them too, after idle images' pages.)
    pub fn reclaim(&self, pages: usize) -> usize {
        let shared = &*self.vm.shared;
        let freed = shared.reclaim_mount_cache(pages);
        // As `Vm::reclaim` does: frames past `Config::max_free_pages` go back now.
        shared.trim_free_pool();
        freed
    }

    /// The limits the cache was built with.
    pub fn config(&self) -> MountCacheConfig {
        self.vm.shared.mcache_config
    }
}
