//! The nodes of the tree: files, directories, symbolic links and special files, and the
//! entries of a directory.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::clock::Timespec;
use super::data::FileData;
use super::locks::LockTable;

/// A node's number: its 9P `qid.path`, unique and never reused while the server runs.
pub type NodeId = u64;

/// What kind of file a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// A node with no content of its own, which clients handle themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialKind {
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// A directory's entries, each with a per-directory sequence number.
///
/// Sequence numbers only grow, so a reader that remembers the last number it saw
/// continues correctly while entries are added and removed: this is the 9P2000.L readdir
/// offset cookie and the 9P2000 directory-read cursor. Numbers below [`FIRST_SEQ`] are
/// left for "." (1) and ".." (2).
pub struct Directory {
    by_seq: BTreeMap<u64, (String, NodeId)>,
    by_name: HashMap<String, u64>,
    next_seq: u64,
    subdirs: u64,
    /// The directory this one is an entry of (itself for the root).
    pub parent: NodeId,
}

/// The sequence number of a directory's first entry.
pub const FIRST_SEQ: u64 = 3;

impl Directory {
    /// An empty directory inside `parent`.
    pub fn new(parent: NodeId) -> Directory {
        Directory {
            by_seq: BTreeMap::new(),
            by_name: HashMap::new(),
            next_seq: FIRST_SEQ,
            subdirs: 0,
            parent,
        }
    }

    /// The node named `name`.
    pub fn get(&self, name: &str) -> Option<NodeId> {
        let seq = self.by_name.get(name)?;
        self.by_seq.get(seq).map(|(_, id)| *id)
    }

    /// Adds an entry (the name must be free) and returns its sequence number.
    pub fn insert(&mut self, name: &str, id: NodeId, is_dir: bool) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_seq.insert(seq, (name.to_owned(), id));
        self.by_name.insert(name.to_owned(), seq);
        if is_dir {
            self.subdirs += 1;
        }
        seq
    }

    /// Removes an entry, returning the node it named.
    pub fn remove(&mut self, name: &str, is_dir: bool) -> Option<NodeId> {
        let seq = self.by_name.remove(name)?;
        let (_, id) = self.by_seq.remove(&seq)?;
        if is_dir {
            self.subdirs = self.subdirs.saturating_sub(1);
        }
        Some(id)
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// Number of entries that are directories (for the link count).
    pub fn subdirs(&self) -> u64 {
        self.subdirs
    }

    /// The entries with sequence numbers above `after`, in order.
    pub fn after(&self, after: u64) -> impl Iterator<Item = (u64, &str, NodeId)> + '_ {
        let from = after.saturating_add(1);
        self.by_seq
            .range(from..)
            .map(|(&seq, (name, id))| (seq, name.as_str(), *id))
    }
}

/// A regular file's data behind its own lock: the data lock of the lock order in
/// `fs/mod.rs`. Readers of one file share it; a writer holds it alone. It is shared
/// (an `Arc`) between the node and the [`FileHandle`](super::FileHandle)s of open fids,
/// which read through it without the tree lock, so even the tree's exclusive lock
/// takes it to change the data.
///
/// It also keeps a copy of the node's permission bits and `DMAPPEND` flag, stored and
/// read only while the data lock is held alone, so a write through a handle decides
/// whether it may leave the set-id bits alone, and where an append goes, against the
/// same bits a permission change stores: the change waits for the write or the write
/// sees it (a `chmod u+s` cannot slip between a write's check and its data).
pub struct FileCell {
    data: RwLock<FileData>,
    /// Permission bits (`0o7777`), and [`MODE_APPEND`] for `DMAPPEND`.
    mode: AtomicU32,
    /// The node is gone: a write through a handle still held fails.
    gone: AtomicBool,
}

/// [`FileCell`]'s mode bit for `DMAPPEND` (above every permission bit).
const MODE_APPEND: u32 = 1 << 31;

impl FileCell {
    /// The data of a new, empty file whose node has `perm` and `append`.
    pub fn new(perm: u32, append: bool) -> FileCell {
        FileCell {
            data: RwLock::default(),
            mode: AtomicU32::new(mode_bits(perm, append)),
            gone: AtomicBool::new(false),
        }
    }

    /// Shares the data (reads, and the sizes `attr` reports).
    pub fn read(&self) -> RwLockReadGuard<'_, FileData> {
        // A panic in a data method leaves the pages consistent (each method changes
        // them only after its last fallible step), so a poisoned lock is still good.
        self.data.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the data alone (a write, a truncation, a loan).
    pub fn write(&self) -> RwLockWriteGuard<'_, FileData> {
        self.data.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the data alone, with the node's permission bits and `DMAPPEND` flag as they
    /// are while it is held, and whether the node is gone.
    pub fn write_with_mode(&self) -> (RwLockWriteGuard<'_, FileData>, u32, bool, bool) {
        let data = self.write();
        let mode = self.mode.load(Ordering::Relaxed);
        let gone = self.gone.load(Ordering::Relaxed);
        (data, mode & 0o7777, mode & MODE_APPEND != 0, gone)
    }

    /// Stores the node's permission bits and `DMAPPEND` flag (after a change of them),
    /// under the data lock.
    pub fn set_mode(&self, perm: u32, append: bool) {
        let _data = self.write();
        self.mode.store(mode_bits(perm, append), Ordering::Relaxed);
    }

    /// Empties the data of a node that goes, and marks it gone, under the data lock.
    /// Returns the pages it held.
    pub fn retire(&self) -> u64 {
        let mut data = self.write();
        let held = data.held_pages();
        *data = FileData::default();
        self.gone.store(true, Ordering::Relaxed);
        held
    }
}

fn mode_bits(perm: u32, append: bool) -> u32 {
    (perm & 0o7777) | if append { MODE_APPEND } else { 0 }
}

/// What a node's data reads and writes change besides the data: its `qid.vers`, who
/// changed it last and its times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamps {
    /// `qid.vers`: bumped on every change.
    pub version: u32,
    /// Who changed the file last.
    pub muid: u32,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

impl Stamps {
    /// Stamps of a node made at `now` by `uid`.
    pub fn new(uid: u32, now: Timespec) -> Stamps {
        Stamps {
            version: 0,
            muid: uid,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }

    /// Records a change: a new `qid.vers` and ctime.
    pub fn touch_change(&mut self, now: Timespec) {
        self.version = self.version.wrapping_add(1);
        self.ctime = now;
    }

    /// Records a change of contents: a new `qid.vers`, mtime and ctime.
    pub fn touch_modify(&mut self, now: Timespec) {
        self.touch_change(now);
        self.mtime = now;
    }
}

/// A node's [`Stamps`] behind the stamp lock, the innermost of the lock order: data
/// reads and writes store their times through it, held only to copy a few words. Shared
/// with the [`FileHandle`](super::FileHandle)s of a file's open fids, like its data.
pub struct StampCell(Mutex<Stamps>);

impl StampCell {
    /// A cell holding `stamps`.
    pub fn new(stamps: Stamps) -> StampCell {
        StampCell(Mutex::new(stamps))
    }

    /// A copy of the stamps.
    pub fn get(&self) -> Stamps {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the stamps through a shared borrow of the tree.
    pub fn update(&self, change: impl FnOnce(&mut Stamps)) {
        change(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The stamps, locked (to change several fields, or under the exclusive tree lock).
    pub fn lock(&self) -> MutexGuard<'_, Stamps> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a node holds.
pub enum Content {
    File(Arc<FileCell>),
    Dir(Directory),
    Symlink(String),
    Special { kind: SpecialKind, rdev: u64 },
}

/// One file, directory, link or special file.
pub struct Node {
    pub content: Content,
    /// `qid.vers`, muid and times.
    pub stamps: Arc<StampCell>,
    /// Permission bits, `0o7777` (set-id and sticky bits are kept for POSIX clients).
    pub perm: u32,
    /// Plan 9 `DMAPPEND`: writes go to the end.
    pub append: bool,
    /// Plan 9 `DMEXCL`: one open at a time.
    pub excl: bool,
    /// Plan 9 `DMTMP`: kept and reported, no other effect.
    pub tmp: bool,
    pub uid: u32,
    pub gid: u32,
    pub btime: Timespec,
    /// The name it was last given (what 9P2000 stat reports, also after removal).
    pub name: String,
    /// Every directory entry that names this node: (directory, name).
    pub links: Vec<(NodeId, String)>,
    /// Fids (of any front end) that refer to the node; it lives while this is nonzero.
    /// Atomic so that a walk under the tree's shared lock can take a reference; only
    /// the exclusive lock drops one (a node may go with its last).
    pub refs: AtomicU32,
    /// Opens in progress, for `DMEXCL`.
    pub opens: u32,
    /// Extended attributes.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// POSIX record locks.
    pub locks: LockTable,
}

impl Node {
    /// The node's file type.
    pub fn file_type(&self) -> FileType {
        match &self.content {
            Content::File(_) => FileType::Regular,
            Content::Dir(_) => FileType::Directory,
            Content::Symlink(_) => FileType::Symlink,
            Content::Special { kind, .. } => match kind {
                SpecialKind::Fifo => FileType::Fifo,
                SpecialKind::Socket => FileType::Socket,
                SpecialKind::CharDevice => FileType::CharDevice,
                SpecialKind::BlockDevice => FileType::BlockDevice,
            },
        }
    }

    /// Pages of this file lent for mappings (0 for anything but a regular file).
    pub fn lent_pages(&self) -> u64 {
        match &self.content {
            Content::File(f) => f.read().lent_pages(),
            _ => 0,
        }
    }

    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.content, Content::Dir(_))
    }

    /// The directory contents, if this is a directory.
    pub fn dir(&self) -> Option<&Directory> {
        match &self.content {
            Content::Dir(d) => Some(d),
            _ => None,
        }
    }

    /// The directory contents, if this is a directory.
    pub fn dir_mut(&mut self) -> Option<&mut Directory> {
        match &mut self.content {
            Content::Dir(d) => Some(d),
            _ => None,
        }
    }

    /// Records a change: a new `qid.vers` and ctime.
    pub fn touch_change(&mut self, now: Timespec) {
        self.stamps.lock().touch_change(now);
    }

    /// Records a change of contents: a new `qid.vers`, mtime and ctime.
    pub fn touch_modify(&mut self, now: Timespec) {
        self.stamps.lock().touch_modify(now);
    }

    /// The references held.
    pub fn refs(&self) -> u32 {
        self.refs.load(Ordering::Acquire)
    }
}
