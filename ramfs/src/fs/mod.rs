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
//! 2. a regular file's data lock (`node::FileCell`, a reader–writer lock): shared by
//!    the reads of that file, held alone by one write, a truncation or a loan; `attr`
//!    shares it for the size.
//! 3. a node's stamp lock (`node::StampCell`, a mutex held to copy a few words):
//!    `qid.vers`, muid and times.
//!
//! A regular file's data and stamp cells are shared (`Arc`) with the [`FileHandle`]s
//! that open fids keep, and a read or write through a handle takes 2 and 3 without 1:
//! so it neither waits for a metadata change anywhere in the tree nor holds one up
//! (`file_handle.rs` says why that is safe; a write that must take set-id bits away is
//! handed back to [`Fs::write`], which takes 1 alone). Hence even the exclusive tree lock
//! takes the data and stamp locks to change them: it no longer means nobody holds them.
//!
//! Memory accounting is an atomic counter ([`memory`](self)) that any of these may
//! update. Front ends keep their own per-connection state unlocked (it belongs to one
//! thread) and take the tree lock for one operation at a time, never while blocking on
//! I/O, and never twice.

mod attrs;
mod clock;
mod data;
mod file_handle;
mod loans;
mod locks;
mod memory;
mod names;
mod node;
mod pages;
mod perm;
mod record_locks;
mod setid;
mod tree_data;
mod users;
mod users_file;
mod values;
mod xattrs;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use clock::{Clock, Timespec};
use data::LendError;
pub use data::{FileData, Gathered, Page, PageBuf, Piece, SharedPages, PAGE_SIZE, PIECE_SHARE_MIN};
pub use file_handle::FileHandle;
pub use locks::{
    range_end, LockKind, LockOwner, LockRefusal, RecordLock, CLIENT_ID_MAX, MAX_LOCKS_PER_FILE,
};
pub use memory::NODE_COST;
pub use node::{FileType, NodeId, SpecialKind, FIRST_SEQ};
pub use perm::{access, plan9_create_perm, Cred, PermStyle};

use crate::error::{Error, Result};
use crate::id_hash::IdMap;
use memory::Memory;
use node::{Content, Directory, FileCell, Node, StampCell, Stamps};
use users::Users;
pub use users::USER_NAME_MAX;
pub use users_file::{UserEntry, UsersFile, UsersFileError};
pub use values::{
    Attr, DirEntry, FsStats, NewKind, NewNode, OpenMode, SetAttrs, TimeSet, UnlinkKind, Wstat,
    WstatMode, XattrSetMode,
};

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

/// The tree itself; reach it through [`Fs::lock`].
pub struct Tree {
    nodes: IdMap<NodeId, Node>,
    next_id: NodeId,
    root: NodeId,
    /// Shared with the handles of open files, whose writes reserve their pages.
    memory: Arc<Memory>,
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
            stamps: Arc::new(StampCell::new(Stamps::new(owner, now))),
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
        let mut nodes = IdMap::default();
        nodes.insert(root, root_node);
        Tree {
            nodes,
            next_id: root + 1,
            root,
            memory: Arc::new(Memory::new(config.memory_limit)),
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
        if let Some(n) = self.nodes.remove(&id) {
            let mut bytes = NODE_COST + content_cost(&n.content);
            if let Content::File(f) = &n.content {
                // Freed now, not when the last handle of an open fid lets the cell go,
                // so the pages leave the account and memory together.
                bytes += f.retire() * PAGE_SIZE as u64;
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
                if let Content::File(f) = &n.content {
                    freed = f.write().truncate(0).map_err(|_| Error::TextBusy)?;
                    n.touch_modify(now);
                    n.stamps.lock().muid = cred.uid;
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
}
