//! The file tree: nodes, directory entries, file data, permissions, memory accounting,
//! record locks and extended attributes, independent of any protocol.
//!
//! A front end (the 9P server, the Redox scheme) holds an [`Fs`], locks it for each
//! operation, and calls [`Tree`] methods with the caller's [`Cred`]. Nodes are named by
//! [`NodeId`]; a front end that keeps a node (a 9P fid, a scheme handle) takes a
//! reference with [`Tree::incref`] and drops it with [`Tree::decref`], so a removed file
//! lives on until its last reference goes, as in Unix and Plan 9.
//!
//! **Lent pages.** A mapping front end (Redox's `mmap_prep`) borrows file pages with
//! [`Tree::lend_pages`]: one address at which the pages lie side by side, valid until
//! each page comes back through [`Tree::return_pages`] (`fs/data.rs` says how). The
//! loans live here, in the tree, so that every front end respects them: a truncation
//! that would drop a lent page fails with [`Error::TextBusy`] (a 9P client sees "file in
//! use" / `ETXTBSY`, a Redox caller `ETXTBSY`) and changes nothing, and a removed file
//! whose pages are lent lives on, memory and all, until the last one comes back.
//!
//! **Locks**, in the order they are taken (never the other way round):
//!
//! 1. the tree lock, a reader–writer lock in [`Fs`]: [`Fs::lock`] takes it alone for
//!    anything that changes names, attributes, record locks, users, or drops a
//!    reference (which may destroy a node); [`Fs::lock_shared`] shares it for what only
//!    looks (walks, stat, readdir) or changes no more than a file's data and stamps
//!    ([`Tree::read_with`], [`Fs::write`]) or takes a reference ([`Tree::incref`],
//!    atomic). A node exists, and its content keeps its kind, for as long as a shared
//!    guard is held: only the exclusive lock creates or destroys nodes.
//! 2. a regular file's data lock ([`node::FileCell`], a reader–writer lock): shared by
//!    the reads of that file, held alone by one write; `attr` shares it for the size.
//! 3. a node's stamp lock ([`node::StampCell`], a mutex held to copy a few words):
//!    `qid.vers`, muid and times, which reads (atime) and writes change under the
//!    shared tree lock.
//!
//! Memory accounting is an atomic counter ([`memory`](self)) that any of these may
//! update. Under the exclusive tree lock nobody holds a data or stamp lock, so the tree
//! reaches them with `get_mut`, without locking. Front ends keep their own
//! per-connection state unlocked (it belongs to one thread) and take the tree lock for
//! one operation at a time, never while blocking on I/O, and never twice.

mod clock;
mod data;
mod loans;
mod locks;
mod memory;
mod node;
mod perm;
mod setid;
mod users;
mod users_file;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use clock::{Clock, Timespec};
use data::LendError;
pub use data::{FileData, Page, PAGE_SIZE};
pub use locks::{
    range_end, LockKind, LockOwner, LockRefusal, RecordLock, CLIENT_ID_MAX, MAX_LOCKS_PER_FILE,
};
pub use memory::NODE_COST;
pub use node::{FileType, NodeId, SpecialKind, FIRST_SEQ};
pub use perm::{access, plan9_create_perm, Cred, PermStyle};

use crate::error::{Error, Result};
use memory::Memory;
use node::{Content, Directory, FileCell, Node, StampCell, Stamps};
use users::Users;
pub use users::USER_NAME_MAX;
pub use users_file::{UserEntry, UsersFile, UsersFileError};

/// Longest name of a directory entry, in bytes (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Longest symbolic link target, in bytes (Linux's `PATH_MAX` less its NUL).
pub const SYMLINK_MAX: usize = 4095;
/// Longest extended attribute value (Linux's `XATTR_SIZE_MAX`).
pub const XATTR_SIZE_MAX: usize = 65536;
/// Largest file length (a signed 64-bit offset, as Linux allows).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;
/// Most hard links to one file.
pub const LINK_MAX: usize = 65000;

/// How a tree starts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bytes the tree may use (see [`memory`](self) for what counts).
    pub memory_limit: u64,
    /// Owner and group name of the root directory.
    pub owner: String,
    /// Where file times come from.
    pub clock: Clock,
}

/// A shared tree behind its lock.
pub struct Fs {
    tree: RwLock<Tree>,
}

impl Fs {
    /// A tree with an empty root directory, mode 0777, owned by `config.owner`.
    pub fn new(config: Config) -> Fs {
        Fs::with_users(config, &UsersFile::default())
    }

    /// A tree whose users and groups start as a users file says.
    pub fn with_users(config: Config, users: &UsersFile) -> Fs {
        Fs {
            tree: RwLock::new(Tree::with_users(config, users)),
        }
    }

    /// Locks the tree alone for one operation (anything that changes names,
    /// attributes, references' end, locks or users).
    pub fn lock(&self) -> RwLockWriteGuard<'_, Tree> {
        // A panic while holding the lock is a bug, but the tree's invariants are kept
        // by each method before it can panic, so the other connections go on.
        self.tree.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Shares the tree for one operation that only looks, or that changes no more
    /// than file data, times and references taken ([`Tree::read_with`],
    /// [`Tree::incref`], [`Tree::attr`], lookups, directory listings). Never take it
    /// while holding either guard of this tree: a waiting writer would make the second
    /// acquisition wait forever.
    pub fn lock_shared(&self) -> RwLockReadGuard<'_, Tree> {
        self.tree.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `data` to a file as [`Tree::write`] does, under the shared lock when the
    /// write leaves the permission bits alone (the usual case: no set-id bit to take
    /// away), so writes to different files, and reads, go on meanwhile.
    pub fn write(
        &self,
        cred: &Cred,
        id: NodeId,
        offset: u64,
        data: &[u8],
        append: bool,
    ) -> Result<u32> {
        {
            let tree = self.lock_shared();
            // Only the exclusive lock changes permission bits, so the answer holds
            // while this guard is held.
            if !tree.write_changes_perm(cred, id) {
                return tree.write_data(cred, id, offset, data, append);
            }
        }
        self.lock().write(cred, id, offset, data, append)
    }
}

/// A node's attributes, as every front end reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub id: NodeId,
    pub version: u32,
    pub file_type: FileType,
    /// Permission bits, `0o7777`.
    pub perm: u32,
    pub append: bool,
    pub excl: bool,
    pub tmp: bool,
    pub uid: u32,
    pub gid: u32,
    pub muid: u32,
    /// Names that refer to it (for a directory: 2 plus its subdirectories).
    pub nlink: u64,
    /// Length in bytes: the data of a file, the target of a link, 0 otherwise.
    pub size: u64,
    /// Allocated 512-byte blocks.
    pub blocks: u64,
    pub rdev: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    pub btime: Timespec,
    /// The last name it was given ("/" for the root).
    pub name: String,
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewKind {
    File,
    Dir,
    Symlink(String),
    Special { kind: SpecialKind, rdev: u64 },
}

/// The attributes of a new node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNode {
    pub kind: NewKind,
    /// Permission bits requested.
    pub perm: u32,
    /// Apply Plan 9's create mask rule (open(5)) against the directory's permissions.
    pub plan9_mask: bool,
    /// The group; `None` takes the directory's group, as Plan 9 does.
    pub gid: Option<u32>,
    pub append: bool,
    pub excl: bool,
    pub tmp: bool,
}

impl NewNode {
    /// A node of `kind` with permission bits `perm` and nothing else special.
    pub fn new(kind: NewKind, perm: u32) -> NewNode {
        NewNode {
            kind,
            perm,
            plan9_mask: false,
            gid: None,
            append: false,
            excl: false,
            tmp: false,
        }
    }
}

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenMode {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub truncate: bool,
}

/// A time to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSet {
    /// The clock's current time.
    Now,
    /// This time.
    At(Timespec),
}

/// A POSIX attribute change (9P2000.L Tsetattr); `None` leaves a field alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetAttrs {
    pub perm: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeSet>,
    pub mtime: Option<TimeSet>,
    /// The request came through a descriptor opened for writing (`ftruncate(2)`): a
    /// size change needs no write permission now, the open was granted it. (A file
    /// created with mode 0 and opened read-write can be truncated.)
    pub opened_for_write: bool,
}

/// The mode part of a Plan 9 wstat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WstatMode {
    /// `DMDIR` as given: it must match the file.
    pub is_dir: bool,
    /// The `0o777` bits.
    pub perm: u32,
    pub append: bool,
    pub excl: bool,
    pub tmp: bool,
}

/// A Plan 9 attribute change (9P2000 Twstat); `None` is the don't-touch value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wstat {
    pub mode: Option<WstatMode>,
    pub atime: Option<u32>,
    pub mtime: Option<u32>,
    pub length: Option<u64>,
    pub name: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
}

/// Which kind of entry an unlink expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkKind {
    /// `unlink(2)`: anything but a directory.
    NonDir,
    /// `rmdir(2)`: an empty directory.
    Dir,
}

/// How an extended attribute is set (Linux `XATTR_CREATE`/`XATTR_REPLACE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XattrSetMode {
    /// Create or replace.
    Any,
    /// Fail with [`Error::Exists`] if it exists.
    Create,
    /// Fail with [`Error::NoData`] if it does not.
    Replace,
}

/// File system figures for statfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    pub bsize: u32,
    pub blocks: u64,
    pub bfree: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: u32,
    /// Bytes in use and the limit.
    pub used: u64,
    pub limit: u64,
}

/// One directory entry as [`Tree::dir_entries`] yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Its sequence number in the directory (a readdir cookie).
    pub seq: u64,
    pub name: &'a str,
    pub id: NodeId,
}

/// The tree itself; reach it through [`Fs::lock`].
pub struct Tree {
    nodes: HashMap<NodeId, Node>,
    next_id: NodeId,
    root: NodeId,
    memory: Memory,
    users: Users,
    clock: Clock,
    /// Nodes with record locks, so a session's locks are found without a full scan.
    locked: BTreeSet<NodeId>,
    /// Page loans outstanding over all files (see [`Tree::lend_pages`]).
    lent: u64,
}

/// Checks a name for a new directory entry.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(Error::BadName);
    }
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong);
    }
    Ok(())
}

/// Checks a lock owner a client gave.
fn check_lock_owner(owner: &LockOwner) -> Result<()> {
    if owner.client_id.len() > CLIENT_ID_MAX {
        return Err(Error::Invalid);
    }
    Ok(())
}

/// The bytes a node costs besides its entries' names and its pages.
fn content_cost(content: &Content) -> u64 {
    match content {
        Content::Symlink(t) => t.len() as u64,
        _ => 0,
    }
}

impl Tree {
    #[cfg(test)]
    fn new(config: Config) -> Tree {
        Tree::with_users(config, &UsersFile::default())
    }

    fn with_users(config: Config, file: &UsersFile) -> Tree {
        let mut users = Users::default();
        users.load(file);
        let owner = users.id_of(&config.owner);
        let now = config.clock.now();
        let root = 1;
        let root_node = Node {
            content: Content::Dir(Directory::new(root)),
            stamps: StampCell::new(Stamps::new(owner, now)),
            perm: 0o777,
            append: false,
            excl: false,
            tmp: false,
            uid: owner,
            gid: owner,
            btime: now,
            name: "/".to_owned(),
            links: Vec::new(),
            refs: AtomicU32::new(0),
            opens: 0,
            xattrs: Default::default(),
            locks: Default::default(),
        };
        let mut nodes = HashMap::new();
        nodes.insert(root, root_node);
        Tree {
            nodes,
            next_id: root + 1,
            root,
            memory: Memory::new(config.memory_limit),
            users,
            clock: config.clock,
            locked: BTreeSet::new(),
            lent: 0,
        }
    }

    // ---- identities -------------------------------------------------------------

    /// The root directory.
    pub fn root(&self) -> NodeId {
        self.root
    }

    /// A Plan 9 caller known by name (empty names are "none"). A new name is
    /// registered: [`Error::NameTooLong`] past [`USER_NAME_MAX`] bytes,
    /// [`Error::NoSpace`] if its registration does not fit the memory limit.
    pub fn cred_for_name(&mut self, name: &str) -> Result<Cred> {
        let name = if name.is_empty() { "none" } else { name };
        let uid = self.user_id(name)?;
        Ok(Cred {
            name: name.to_owned(),
            uid,
            gid: uid,
            style: PermStyle::Plan9,
        })
    }

    /// A POSIX caller known by number; the group defaults to the user's number.
    pub fn cred_for_uid(&mut self, uid: u32, gid: Option<u32>) -> Cred {
        Cred {
            name: self.users.name_of(uid),
            uid,
            gid: gid.unwrap_or(uid),
            style: PermStyle::Posix,
        }
    }

    /// The name of a user or group number.
    pub fn user_name(&self, id: u32) -> String {
        self.users.name_of(id)
    }

    /// The number of a registered user or group name (registering nothing).
    pub fn lookup_user(&self, name: &str) -> Option<u32> {
        self.users.lookup(name)
    }

    /// The number of a user or group name, registering a new name as
    /// [`Tree::cred_for_name`] does (and failing as it does).
    pub fn user_id(&mut self, name: &str) -> Result<u32> {
        if let Some(id) = self.users.lookup(name) {
            return Ok(id);
        }
        let cost = Self::check_new_user_name(name)?;
        self.memory.reserve(cost)?;
        Ok(self.users.register(name))
    }

    /// Checks a name that a client would register; returns what registering it costs.
    fn check_new_user_name(name: &str) -> Result<u64> {
        if name.len() > USER_NAME_MAX {
            return Err(Error::NameTooLong);
        }
        Ok(Users::registration_cost(name))
    }

    /// The clock's current time.
    pub fn now(&self) -> Timespec {
        self.clock.now()
    }

    // ---- lookups ----------------------------------------------------------------

    fn node(&self, id: NodeId) -> Result<&Node> {
        self.nodes.get(&id).ok_or(Error::NotFound)
    }

    fn node_mut(&mut self, id: NodeId) -> Result<&mut Node> {
        self.nodes.get_mut(&id).ok_or(Error::NotFound)
    }

    fn dir(&self, id: NodeId) -> Result<&Directory> {
        self.node(id)?.dir().ok_or(Error::NotDir)
    }

    /// True if the node exists.
    pub fn exists(&self, id: NodeId) -> bool {
        self.nodes.contains_key(&id)
    }

    /// True if the node exists and is a regular file.
    pub fn is_regular_file(&self, id: NodeId) -> bool {
        self.nodes
            .get(&id)
            .is_some_and(|n| matches!(n.content, Content::File(_)))
    }

    /// True if the node is still named somewhere (or is the root).
    pub fn is_linked(&self, id: NodeId) -> bool {
        id == self.root || self.nodes.get(&id).is_some_and(|n| !n.links.is_empty())
    }

    fn may(&self, cred: &Cred, n: &Node, want: u32) -> bool {
        cred.may_as(n.uid, self.in_group(cred, n.gid), n.perm, want, n.is_dir())
    }

    /// True if the caller is in group `gid`: its own, or one the users file lists it in.
    fn in_group(&self, cred: &Cred, gid: u32) -> bool {
        cred.gid == gid || self.users.is_member(cred.uid, gid)
    }

    /// The access a caller needs in a directory to change its entries: Plan 9 asks for
    /// write, POSIX for write and search.
    fn dir_write_access(cred: &Cred) -> u32 {
        match cred.style {
            PermStyle::Plan9 => access::WRITE,
            PermStyle::Posix | PermStyle::ClientChecked => access::WRITE | access::EXEC,
        }
    }

    fn check_dir_writable(&self, cred: &Cred, dir: NodeId) -> Result<()> {
        let d = self.node(dir)?;
        if !d.is_dir() {
            return Err(Error::NotDir);
        }
        if !self.is_linked(dir) {
            return Err(Error::NotFound);
        }
        if !self.may(cred, d, Self::dir_write_access(cred)) {
            return Err(Error::PermissionDenied);
        }
        Ok(())
    }

    /// True if the caller may use `want` (`access::*`) on the node.
    pub fn check_access(&self, cred: &Cred, id: NodeId, want: u32) -> Result<bool> {
        let n = self.node(id)?;
        Ok(self.may(cred, n, want))
    }

    /// The node's attributes.
    pub fn attr(&self, id: NodeId) -> Result<Attr> {
        let n = self.node(id)?;
        let (size, pages, rdev) = match &n.content {
            Content::File(f) => {
                let f = f.read();
                (f.size(), f.allocated_pages(), 0)
            }
            Content::Dir(_) => (0, 0, 0),
            Content::Symlink(t) => (t.len() as u64, 0, 0),
            Content::Special { rdev, .. } => (0, 0, *rdev),
        };
        let nlink = match &n.content {
            Content::Dir(d) if self.is_linked(id) => 2 + d.subdirs(),
            _ => n.links.len() as u64,
        };
        let stamps = n.stamps.get();
        Ok(Attr {
            id,
            version: stamps.version,
            file_type: n.file_type(),
            perm: n.perm,
            append: n.append,
            excl: n.excl,
            tmp: n.tmp,
            uid: n.uid,
            gid: n.gid,
            muid: stamps.muid,
            nlink,
            size,
            blocks: pages * (PAGE_SIZE as u64 / 512),
            rdev,
            atime: stamps.atime,
            mtime: stamps.mtime,
            ctime: stamps.ctime,
            btime: n.btime,
            name: n.name.clone(),
        })
    }

    /// Looks `name` up in directory `dir` ("..") is its parent; the root is its own),
    /// checking search permission.
    pub fn lookup(&self, cred: &Cred, dir: NodeId, name: &str) -> Result<NodeId> {
        let n = self.node(dir)?;
        let d = n.dir().ok_or(Error::NotDir)?;
        if !self.may(cred, n, access::EXEC) {
            return Err(Error::PermissionDenied);
        }
        if name == ".." {
            return Ok(d.parent);
        }
        d.get(name).ok_or(Error::NotFound)
    }

    /// The entries of directory `dir` after sequence number `after` (0 for all), in
    /// order. Names "." and ".." are not entries.
    pub fn dir_entries(
        &self,
        dir: NodeId,
        after: u64,
    ) -> Result<impl Iterator<Item = DirEntry<'_>> + '_> {
        Ok(self
            .dir(dir)?
            .after(after)
            .map(|(seq, name, id)| DirEntry { seq, name, id }))
    }

    /// The parent of a directory (the root's is the root).
    pub fn parent(&self, dir: NodeId) -> Result<NodeId> {
        Ok(self.dir(dir)?.parent)
    }

    // ---- references and opens --------------------------------------------------

    /// Takes a reference that keeps the node alive after it is removed.
    /// Needs only the tree's shared lock: a node cannot go while it is held (only the
    /// exclusive lock destroys nodes).
    pub fn incref(&self, id: NodeId) -> Result<()> {
        let n = self.node(id)?;
        // Saturating: a count stuck at the top keeps the node forever, never frees it
        // early.
        let _ = n
            .refs
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_add(1));
        Ok(())
    }

    /// Drops a reference; a removed node goes with its last one.
    pub fn decref(&mut self, id: NodeId) {
        if let Some(n) = self.nodes.get_mut(&id) {
            let refs = n.refs.get_mut();
            *refs = refs.saturating_sub(1);
            self.destroy_if_unused(id);
        }
    }

    fn destroy_if_unused(&mut self, id: NodeId) {
        if id == self.root {
            return;
        }
        // Lent pages are mapped somewhere: the file, and its memory, stay until they
        // come back.
        let unused = self
            .nodes
            .get(&id)
            .is_some_and(|n| n.refs() == 0 && n.links.is_empty() && n.lent_pages() == 0);
        if !unused {
            return;
        }
        if let Some(mut n) = self.nodes.remove(&id) {
            let mut bytes = NODE_COST + content_cost(&n.content);
            if let Content::File(f) = &mut n.content {
                bytes += f.get_mut().held_pages() * PAGE_SIZE as u64;
            }
            bytes += n
                .xattrs
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum::<u64>();
            // Locks a session left on a file nobody names or holds any more.
            bytes += n.locks.memory_cost();
            self.memory.release(bytes);
            self.locked.remove(&id);
        }
    }

    /// Opens a node, checking permissions (`check`), `DMEXCL`, and truncating if asked
    /// ([`Error::TextBusy`] if a page of the file is lent). Every successful open is
    /// paired with a [`Tree::close`].
    pub fn open(&mut self, cred: &Cred, id: NodeId, mode: OpenMode, check: bool) -> Result<()> {
        let now = self.now();
        let n = self.node(id)?;
        let writes = mode.write || mode.truncate;
        if n.is_dir() && writes {
            return Err(Error::IsDir);
        }
        if check {
            let mut want = 0;
            if mode.read {
                want |= access::READ;
            }
            if writes {
                want |= access::WRITE;
            }
            if mode.exec {
                want |= access::EXEC;
            }
            if !self.may(cred, n, want) {
                return Err(Error::PermissionDenied);
            }
        }
        if n.excl && n.opens > 0 {
            return Err(Error::ExclusiveInUse);
        }
        let freed = {
            let n = self.node_mut(id)?;
            let mut freed = 0;
            if mode.truncate {
                if let Content::File(f) = &mut n.content {
                    freed = f.get_mut().truncate(0).map_err(|_| Error::TextBusy)?;
                    n.touch_modify(now);
                    n.stamps.get_mut().muid = cred.uid;
                }
            }
            n.opens += 1;
            freed
        };
        self.memory.release(freed * PAGE_SIZE as u64);
        Ok(())
    }

    /// Ends an open made by [`Tree::open`].
    pub fn close(&mut self, id: NodeId) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.opens = n.opens.saturating_sub(1);
        }
    }

    // ---- data -------------------------------------------------------------------

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
        }
        Ok(count)
    }

    /// True if a write by `cred` would take set-id bits off the file, which only the
    /// exclusive lock may do ([`Fs::write`] asks before writing under the shared one).
    fn write_changes_perm(&self, cred: &Cred, id: NodeId) -> bool {
        self.node(id)
            .is_ok_and(|n| setid::after_write(n.perm, cred) != n.perm)
    }

    /// A write's data, size, times and version (everything but the set-id bits), under
    /// the tree's shared lock: the file's data lock is held alone for the whole write,
    /// so an append finds the end no other write is moving, and the pages are reserved
    /// from the atomic memory account before anything changes.
    fn write_data(
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
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(Error::FileTooBig)?;
        if end > MAX_FILE_SIZE {
            return Err(Error::FileTooBig);
        }
        let count = u32::try_from(data.len()).map_err(|_| Error::CountTooLarge)?;
        if data.is_empty() {
            return Ok(0);
        }
        let bytes = f.pages_needed(offset, data.len()) * PAGE_SIZE as u64;
        self.memory.reserve(bytes)?;
        f.write(offset, data);
        n.stamps.update(|s| {
            s.touch_modify(now);
            s.muid = cred.uid;
        });
        Ok(count)
    }

    /// Sets a file's length (no permission check: the caller decided). Refused with
    /// [`Error::TextBusy`], changing nothing, if it would drop a lent page.
    fn set_size(&mut self, id: NodeId, size: u64) -> Result<()> {
        if size > MAX_FILE_SIZE {
            return Err(Error::FileTooBig);
        }
        let n = self.node_mut(id)?;
        let freed = match &mut n.content {
            Content::File(f) => f.get_mut().truncate(size).map_err(|_| Error::TextBusy)?,
            Content::Dir(_) => return Err(Error::IsDir),
            _ => return Err(Error::Invalid),
        };
        self.memory.release(freed * PAGE_SIZE as u64);
        Ok(())
    }

    /// The page of a regular file at `index`, if it holds data (where it lies now; a
    /// mapping borrows pages with [`Tree::lend_pages`], which keeps them there).
    pub fn page(&mut self, id: NodeId, index: u64) -> Result<Option<&Page>> {
        match &mut self.node_mut(id)?.content {
            Content::File(f) => Ok(f.get_mut().page(index)),
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
    /// The caller reads or writes through the address only while the tree lock is
    /// held or while no other thread uses the tree; the intended user is the kernel,
    /// which maps the pages into another address space.
    pub fn lend_pages(&mut self, id: NodeId, first: u64, count: u64) -> Result<NonNull<Page>> {
        let n = self.nodes.get_mut(&id).ok_or(Error::NotFound)?;
        let f = match &mut n.content {
            Content::File(f) => f.get_mut(),
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
        let n = self.nodes.get_mut(&id).ok_or(Error::NotFound)?;
        let f = match &mut n.content {
            Content::File(f) => f.get_mut(),
            Content::Dir(_) => return Err(Error::IsDir),
            _ => return Err(Error::Invalid),
        };
        let end = first.saturating_add(count);
        let back = f.give_back(first, end);
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

    // ---- names ------------------------------------------------------------------

    /// Creates `name` in `dir`, owned by the caller.
    pub fn create(&mut self, cred: &Cred, dir: NodeId, name: &str, new: NewNode) -> Result<NodeId> {
        check_name(name)?;
        self.check_dir_writable(cred, dir)?;
        let d = self.node(dir)?;
        let dd = d.dir().ok_or(Error::NotDir)?;
        if dd.get(name).is_some() {
            return Err(Error::Exists);
        }
        let is_dir = new.kind == NewKind::Dir;
        let perm = if new.plan9_mask {
            plan9_create_perm(new.perm, d.perm, is_dir) & 0o777
        } else {
            new.perm & 0o7777
        };
        let gid = new.gid.unwrap_or(d.gid);
        let id = self.next_id;
        let content = match new.kind {
            NewKind::File => Content::File(FileCell::default()),
            NewKind::Dir => Content::Dir(Directory::new(dir)),
            NewKind::Symlink(target) => {
                if target.len() > SYMLINK_MAX {
                    return Err(Error::NameTooLong);
                }
                Content::Symlink(target)
            }
            NewKind::Special { kind, rdev } => Content::Special { kind, rdev },
        };
        self.memory
            .reserve(NODE_COST + content_cost(&content) + name.len() as u64)?;
        self.next_id += 1;
        let now = self.now();
        let node = Node {
            content,
            stamps: StampCell::new(Stamps::new(cred.uid, now)),
            perm,
            append: new.append && !is_dir,
            excl: new.excl,
            tmp: new.tmp,
            uid: cred.uid,
            gid,
            btime: now,
            name: name.to_owned(),
            links: vec![(dir, name.to_owned())],
            refs: AtomicU32::new(0),
            opens: 0,
            xattrs: Default::default(),
            locks: Default::default(),
        };
        self.nodes.insert(id, node);
        let d = self.node_mut(dir)?;
        if let Some(dd) = d.dir_mut() {
            dd.insert(name, id, is_dir);
        }
        d.touch_modify(now);
        Ok(id)
    }

    /// Removes the entry `name` of `dir` without permission checks; releases the name's
    /// memory and destroys the node if nothing else holds it.
    fn unlink_entry(&mut self, dir: NodeId, name: &str) -> Result<NodeId> {
        let now = self.now();
        let id = self.dir(dir)?.get(name).ok_or(Error::NotFound)?;
        let is_dir = self.node(id)?.is_dir();
        if let Some(dd) = self.node_mut(dir)?.dir_mut() {
            dd.remove(name, is_dir);
        }
        self.node_mut(dir)?.touch_modify(now);
        self.memory.release(name.len() as u64);
        let n = self.node_mut(id)?;
        if let Some(pos) = n.links.iter().position(|(d, nm)| *d == dir && nm == name) {
            n.links.remove(pos);
        }
        n.touch_change(now);
        self.destroy_if_unused(id);
        Ok(id)
    }

    /// Checks that a node may go from the tree: not the root, and an empty directory.
    fn check_removable(&self, id: NodeId) -> Result<()> {
        if id == self.root {
            return Err(Error::NotPermitted);
        }
        if let Some(d) = self.node(id)?.dir() {
            if !d.is_empty() {
                return Err(Error::NotEmpty);
            }
        }
        Ok(())
    }

    /// Removes a node by itself (9P Tremove, ORCLOSE): the entry it was last linked
    /// under. With a caller, checks write permission in the directory; without one
    /// (ORCLOSE, checked at open) it does not.
    pub fn remove(&mut self, cred: Option<&Cred>, id: NodeId) -> Result<()> {
        self.check_removable(id)?;
        let (dir, name) = self
            .node(id)?
            .links
            .first()
            .cloned()
            .ok_or(Error::NotFound)?;
        if let Some(cred) = cred {
            self.check_dir_writable(cred, dir)?;
        }
        self.unlink_entry(dir, &name)?;
        Ok(())
    }

    /// The directory entry a node was last linked under: what [`Tree::remove`] and a
    /// by-node rename act on.
    pub fn primary_link(&self, id: NodeId) -> Result<(NodeId, String)> {
        self.node(id)?.links.first().cloned().ok_or(Error::NotFound)
    }

    /// Checks, without removing, that the caller could [`Tree::remove`] the node (for
    /// an open with ORCLOSE).
    pub fn check_remove(&self, cred: &Cred, id: NodeId) -> Result<()> {
        if id == self.root {
            return Err(Error::NotPermitted);
        }
        let (dir, _) = self.primary_link(id)?;
        self.check_dir_writable(cred, dir)
    }

    /// Removes the entry `name` of `dir` (`unlink(2)`, `rmdir(2)`).
    pub fn unlink(&mut self, cred: &Cred, dir: NodeId, name: &str, kind: UnlinkKind) -> Result<()> {
        if name == "." || name == ".." {
            return Err(Error::Invalid);
        }
        self.check_dir_writable(cred, dir)?;
        let id = self.dir(dir)?.get(name).ok_or(Error::NotFound)?;
        let is_dir = self.node(id)?.is_dir();
        match (kind, is_dir) {
            (UnlinkKind::NonDir, true) => return Err(Error::IsDir),
            (UnlinkKind::Dir, false) => return Err(Error::NotDir),
            _ => {}
        }
        self.check_removable(id)?;
        self.unlink_entry(dir, name)?;
        Ok(())
    }

    /// True if `id` is `ancestor` or lies below it.
    fn is_within(&self, mut id: NodeId, ancestor: NodeId) -> bool {
        loop {
            if id == ancestor {
                return true;
            }
            match self.nodes.get(&id).and_then(|n| n.dir()) {
                Some(d) if d.parent != id => id = d.parent,
                _ => return false,
            }
        }
    }

    /// Renames `olddir/oldname` to `newdir/newname` (`rename(2)`): replaces a target of
    /// the same kind (an empty directory for a directory).
    pub fn rename(
        &mut self,
        cred: &Cred,
        olddir: NodeId,
        oldname: &str,
        newdir: NodeId,
        newname: &str,
    ) -> Result<()> {
        if oldname == "." || oldname == ".." {
            return Err(Error::Invalid);
        }
        check_name(newname)?;
        self.check_dir_writable(cred, olddir)?;
        self.check_dir_writable(cred, newdir)?;
        let id = self.dir(olddir)?.get(oldname).ok_or(Error::NotFound)?;
        let is_dir = self.node(id)?.is_dir();
        if let Some(target) = self.dir(newdir)?.get(newname) {
            if target == id {
                return Ok(());
            }
            match (is_dir, self.node(target)?.dir()) {
                (true, None) => return Err(Error::NotDir),
                (false, Some(_)) => return Err(Error::IsDir),
                (true, Some(td)) if !td.is_empty() => return Err(Error::NotEmpty),
                _ => {}
            }
        }
        if is_dir && self.is_within(newdir, id) {
            return Err(Error::Invalid);
        }
        if !self.memory.fits(newname.len() as u64) {
            return Err(Error::NoSpace);
        }
        // Nothing can fail from here on.
        if self.dir(newdir)?.get(newname).is_some() {
            self.unlink_entry(newdir, newname)?;
        }
        self.move_entry(id, olddir, oldname, newdir, newname)
    }

    /// Moves an entry whose target name is free. Memory for the new name must fit.
    fn move_entry(
        &mut self,
        id: NodeId,
        olddir: NodeId,
        oldname: &str,
        newdir: NodeId,
        newname: &str,
    ) -> Result<()> {
        let now = self.now();
        let is_dir = self.node(id)?.is_dir();
        self.memory.reserve(newname.len() as u64)?;
        if let Some(d) = self.node_mut(olddir)?.dir_mut() {
            d.remove(oldname, is_dir);
        }
        self.memory.release(oldname.len() as u64);
        self.node_mut(olddir)?.touch_modify(now);
        let nd = self.node_mut(newdir)?;
        if let Some(d) = nd.dir_mut() {
            d.insert(newname, id, is_dir);
        }
        nd.touch_modify(now);
        let n = self.node_mut(id)?;
        for link in n.links.iter_mut() {
            if link.0 == olddir && link.1 == oldname {
                *link = (newdir, newname.to_owned());
                break;
            }
        }
        n.name = newname.to_owned();
        if let Some(d) = n.dir_mut() {
            d.parent = newdir;
        }
        n.touch_change(now);
        Ok(())
    }

    /// Adds the name `dir/name` for the existing non-directory `target` (`link(2)`).
    pub fn link(&mut self, cred: &Cred, dir: NodeId, name: &str, target: NodeId) -> Result<()> {
        check_name(name)?;
        self.check_dir_writable(cred, dir)?;
        let t = self.node(target)?;
        if t.is_dir() {
            return Err(Error::NotPermitted);
        }
        if t.links.is_empty() {
            return Err(Error::NotFound);
        }
        if t.links.len() >= LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        if self.dir(dir)?.get(name).is_some() {
            return Err(Error::Exists);
        }
        self.memory.reserve(name.len() as u64)?;
        let now = self.now();
        let d = self.node_mut(dir)?;
        if let Some(dd) = d.dir_mut() {
            dd.insert(name, target, false);
        }
        d.touch_modify(now);
        let t = self.node_mut(target)?;
        t.links.push((dir, name.to_owned()));
        t.touch_change(now);
        Ok(())
    }

    // ---- attributes -------------------------------------------------------------

    /// Changes attributes by POSIX rules (9P2000.L Tsetattr): all or nothing.
    pub fn setattr(&mut self, cred: &Cred, id: NodeId, set: SetAttrs) -> Result<()> {
        let n = self.node(id)?;
        if let Some(p) = set.perm {
            // Clearing set-id bits is what Linux's client asks itself before someone
            // else's write: a writer may do that much.
            let clears = setid::only_clears_setid(n.perm, p & 0o7777)
                && (set.opened_for_write || self.may(cred, n, access::WRITE));
            if !cred.owns(n.uid) && !clears {
                return Err(Error::NotPermitted);
            }
        }
        if let Some(uid) = set.uid {
            if uid != n.uid && !cred.skips_checks() {
                return Err(Error::NotPermitted);
            }
        }
        if let Some(gid) = set.gid {
            let allowed = cred.skips_checks() || (cred.uid == n.uid && self.in_group(cred, gid));
            if gid != n.gid && !allowed {
                return Err(Error::NotPermitted);
            }
        }
        if let Some(size) = set.size {
            match n.content {
                Content::File(_) => {}
                Content::Dir(_) => return Err(Error::IsDir),
                _ => return Err(Error::Invalid),
            }
            if size > MAX_FILE_SIZE {
                return Err(Error::FileTooBig);
            }
            if !set.opened_for_write && !self.may(cred, n, access::WRITE) {
                return Err(Error::PermissionDenied);
            }
        }
        for t in [set.atime, set.mtime].into_iter().flatten() {
            let ok = match t {
                TimeSet::At(_) => cred.owns(n.uid),
                TimeSet::Now => cred.owns(n.uid) || self.may(cred, n, access::WRITE),
            };
            if !ok {
                return Err(if cred.owns(n.uid) {
                    Error::PermissionDenied
                } else {
                    Error::NotPermitted
                });
            }
        }
        // Validated: apply.
        let now = self.now();
        if let Some(size) = set.size {
            self.set_size(id, size)?;
        }
        let n = self.node_mut(id)?;
        if let Some(p) = set.perm {
            n.perm = p & 0o7777;
        }
        if let Some(uid) = set.uid {
            n.uid = uid;
        }
        if let Some(gid) = set.gid {
            n.gid = gid;
        }
        if set.uid.is_some() || set.gid.is_some() {
            n.perm = setid::after_chown(n.perm, n.is_dir(), cred);
        }
        if set.size.is_some() {
            n.perm = setid::after_write(n.perm, cred);
        }
        let at = |t: TimeSet| match t {
            TimeSet::Now => now,
            TimeSet::At(ts) => ts,
        };
        if let Some(t) = set.atime {
            n.stamps.get_mut().atime = at(t);
        }
        if let Some(t) = set.mtime {
            n.stamps.get_mut().mtime = at(t);
        } else if set.size.is_some() {
            n.stamps.get_mut().mtime = now;
        }
        n.touch_change(now);
        Ok(())
    }

    /// Changes attributes by Plan 9 rules (9P2000 Twstat): all or nothing; a new name
    /// renames the file within its directory.
    pub fn wstat(&mut self, cred: &Cred, id: NodeId, w: Wstat) -> Result<()> {
        let n = self.node(id)?;
        let mut rename: Option<(NodeId, String, String)> = None;
        if let Some(name) = w.name.as_ref().filter(|nm| **nm != n.name) {
            if id == self.root {
                return Err(Error::WstatProhibited);
            }
            check_name(name)?;
            let (dir, old) = n.links.first().cloned().ok_or(Error::NotFound)?;
            self.check_dir_writable(cred, dir)?;
            if self.dir(dir)?.get(name).is_some() {
                return Err(Error::Exists);
            }
            rename = Some((dir, old, name.clone()));
        }
        if let Some(m) = &w.mode {
            if m.is_dir != n.is_dir() {
                return Err(Error::WstatFileDir);
            }
            if !cred.owns(n.uid) {
                return Err(Error::NotOwner);
            }
        }
        if (w.atime.is_some() || w.mtime.is_some()) && !cred.owns(n.uid) {
            return Err(Error::NotOwner);
        }
        if let Some(len) = w.length {
            match n.content {
                Content::File(_) => {}
                Content::Dir(_) => {
                    if len != 0 {
                        return Err(Error::WstatProhibited);
                    }
                }
                _ => return Err(Error::WstatProhibited),
            }
            if len > MAX_FILE_SIZE {
                return Err(Error::FileTooBig);
            }
            if !self.may(cred, n, access::WRITE) {
                return Err(Error::PermissionDenied);
            }
        }
        if let Some(uid) = &w.uid {
            if *uid != self.users.name_of(n.uid) {
                return Err(Error::WstatProhibited);
            }
        }
        // The new group, and whether its name must be registered first. Nothing is
        // registered before every check has passed: a refused wstat changes nothing.
        let mut new_group: Option<(u32, Option<&str>)> = None;
        let mut group_cost = 0;
        if let Some(gname) = &w.gid {
            if *gname != self.users.name_of(n.gid) {
                if !cred.owns(n.uid) {
                    return Err(Error::NotOwner);
                }
                let (gid, register) = match self.users.lookup(gname) {
                    Some(gid) => (gid, None),
                    None => (self.users.number_for_new(gname), Some(gname.as_str())),
                };
                if !self.in_group(cred, gid) && !cred.is_privileged() {
                    return Err(Error::NotInGroup);
                }
                if register.is_some() {
                    group_cost = Self::check_new_user_name(gname)?;
                }
                new_group = Some((gid, register));
            }
        }
        let rename_cost = rename.as_ref().map_or(0, |(_, _, new)| new.len() as u64);
        if !self.memory.fits(rename_cost + group_cost) {
            return Err(Error::NoSpace);
        }
        // Validated: apply.
        let changed = rename.is_some()
            || new_group.is_some()
            || w.mode.is_some()
            || w.atime.is_some()
            || w.mtime.is_some()
            || w.length.is_some();
        if !changed {
            // All don't-touch: Plan 9's request to make the file stable. Nothing to do.
            return Ok(());
        }
        let now = self.now();
        if let Some(len) = w.length {
            if self.node(id)?.is_dir() {
                // A directory's length is always 0: nothing to do.
            } else {
                self.set_size(id, len)?;
                self.node_mut(id)?.touch_modify(now);
            }
        }
        // Memory for the group and the new name fits (checked above; a length change
        // only frees), so neither step below fails.
        let new_gid = match new_group {
            Some((_, Some(gname))) => Some(self.user_id(gname)?),
            Some((gid, None)) => Some(gid),
            None => None,
        };
        if let Some((dir, old, new)) = rename {
            self.move_entry(id, dir, &old, dir, &new)?;
        }
        let n = self.node_mut(id)?;
        if let Some(m) = w.mode {
            n.perm = (n.perm & !0o777) | (m.perm & 0o777);
            n.append = m.append && !m.is_dir;
            n.excl = m.excl;
            n.tmp = m.tmp;
        }
        if let Some(t) = w.atime {
            n.stamps.get_mut().atime = Timespec {
                sec: t.into(),
                nsec: 0,
            };
        }
        if let Some(t) = w.mtime {
            n.stamps.get_mut().mtime = Timespec {
                sec: t.into(),
                nsec: 0,
            };
        }
        if let Some(g) = new_gid {
            n.gid = g;
        }
        n.touch_change(now);
        Ok(())
    }

    /// Figures for statfs: 4 KiB blocks of the memory limit, and files at
    /// [`NODE_COST`] each.
    pub fn statfs(&self) -> FsStats {
        let bsize = PAGE_SIZE as u64;
        FsStats {
            bsize: PAGE_SIZE as u32,
            blocks: self.memory.limit() / bsize,
            bfree: self.memory.free() / bsize,
            files: self.memory.limit() / NODE_COST,
            ffree: self.memory.free() / NODE_COST,
            namelen: NAME_MAX as u32,
            used: self.memory.used(),
            limit: self.memory.limit(),
        }
    }

    /// Number of nodes, the root included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Reserves memory for data a front end holds on behalf of a client (an extended
    /// attribute value being written through a fid before it becomes part of the tree,
    /// or a copy of one being read through a fid), so that such buffers count against
    /// the limit too.
    pub fn reserve_pending(&mut self, bytes: u64) -> Result<()> {
        self.memory.reserve(bytes)
    }

    /// Gives back what [`Tree::reserve_pending`] took.
    pub fn release_pending(&mut self, bytes: u64) {
        self.memory.release(bytes);
    }

    // ---- extended attributes ----------------------------------------------------

    /// An extended attribute's value.
    pub fn xattr_get(&self, id: NodeId, name: &str) -> Result<Vec<u8>> {
        self.node(id)?
            .xattrs
            .get(name)
            .cloned()
            .ok_or(Error::NoData)
    }

    /// The names of a node's extended attributes, each followed by a NUL byte
    /// (`listxattr(2)`).
    pub fn xattr_list(&self, id: NodeId) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for k in self.node(id)?.xattrs.keys() {
            out.extend_from_slice(k.as_bytes());
            out.push(0);
        }
        Ok(out)
    }

    fn check_xattr_change(&self, cred: &Cred, n: &Node, name: &str) -> Result<()> {
        if name.is_empty() || name.len() > NAME_MAX {
            return Err(Error::Range);
        }
        if !cred.owns(n.uid) && !self.may(cred, n, access::WRITE) {
            return Err(Error::PermissionDenied);
        }
        Ok(())
    }

    /// Sets an extended attribute; its name and value count against the memory limit.
    pub fn xattr_set(
        &mut self,
        cred: &Cred,
        id: NodeId,
        name: &str,
        value: Vec<u8>,
        mode: XattrSetMode,
    ) -> Result<()> {
        let n = self.node(id)?;
        self.check_xattr_change(cred, n, name)?;
        if value.len() > XATTR_SIZE_MAX {
            return Err(Error::Range);
        }
        let old = n.xattrs.get(name).map(|v| (name.len() + v.len()) as u64);
        match (mode, old) {
            (XattrSetMode::Create, Some(_)) => return Err(Error::Exists),
            (XattrSetMode::Replace, None) => return Err(Error::NoData),
            _ => {}
        }
        let new = (name.len() + value.len()) as u64;
        let old = old.unwrap_or(0);
        if new > old {
            self.memory.reserve(new - old)?;
        } else {
            self.memory.release(old - new);
        }
        let now = self.now();
        let n = self.node_mut(id)?;
        n.xattrs.insert(name.to_owned(), value);
        n.touch_change(now);
        Ok(())
    }

    /// Removes an extended attribute.
    pub fn xattr_remove(&mut self, cred: &Cred, id: NodeId, name: &str) -> Result<()> {
        let n = self.node(id)?;
        self.check_xattr_change(cred, n, name)?;
        let now = self.now();
        let n = self.node_mut(id)?;
        let v = n.xattrs.remove(name).ok_or(Error::NoData)?;
        n.touch_change(now);
        self.memory.release((name.len() + v.len()) as u64);
        Ok(())
    }

    // ---- record locks -----------------------------------------------------------

    /// Sets (`Some`) or clears (`None`) a record lock over `start..=end`. Never blocks:
    /// a conflict is refused. Each lock record counts against the memory limit
    /// ([`Error::NoSpace`], changing nothing, if the change does not fit; even an
    /// unlock may need a record more, to split a range). A `client_id` longer than
    /// [`CLIENT_ID_MAX`] is [`Error::Invalid`].
    pub fn lock(
        &mut self,
        id: NodeId,
        owner: &LockOwner,
        kind: Option<LockKind>,
        start: u64,
        end: u64,
    ) -> Result<core::result::Result<(), LockRefusal>> {
        check_lock_owner(owner)?;
        let n = self.nodes.get_mut(&id).ok_or(Error::NotFound)?;
        let plan = match n.locks.plan(owner, kind, start, end) {
            Ok(plan) => plan,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let (held, planned) = (n.locks.memory_cost(), plan.memory_cost());
        if planned > held {
            self.memory.reserve(planned - held)?;
        } else {
            self.memory.release(held - planned);
        }
        n.locks.apply(plan);
        if n.locks.is_empty() {
            self.locked.remove(&id);
        } else {
            self.locked.insert(id);
        }
        Ok(Ok(()))
    }

    /// The first lock of another owner that a `kind` lock over `start..=end` would
    /// conflict with (`F_GETLK`).
    pub fn conflicting_lock(
        &self,
        id: NodeId,
        owner: &LockOwner,
        kind: LockKind,
        start: u64,
        end: u64,
    ) -> Result<Option<RecordLock>> {
        check_lock_owner(owner)?;
        Ok(self
            .node(id)?
            .locks
            .conflict(owner, kind, start, end)
            .cloned())
    }

    /// The record locks held on a node.
    pub fn locks_of(&self, id: NodeId) -> Result<&[RecordLock]> {
        Ok(self.node(id)?.locks.locks())
    }

    /// Drops every record lock taken on `session`.
    pub fn release_session_locks(&mut self, session: u64) {
        let ids: Vec<NodeId> = self.locked.iter().copied().collect();
        for id in ids {
            if let Some(n) = self.nodes.get_mut(&id) {
                let freed = n.locks.release_session(session);
                self.memory.release(freed);
                if n.locks.is_empty() {
                    self.locked.remove(&id);
                }
            }
        }
    }
}
