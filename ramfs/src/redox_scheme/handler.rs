//! The scheme handler: `redox-scheme`'s `SchemeSync` over the shared file tree.
//!
//! Each request locks the tree once (the tree's own lock is the only lock; the handler's
//! tables belong to the one thread that runs the scheme loop). Requests that arrive
//! without the caller's credentials are judged as the user who opened the handle
//! ([`Handle::cred`]); `openat` and `unlinkat` are judged as their caller.

use std::sync::Arc;

use ::redox_scheme::scheme::SchemeSync;
use ::redox_scheme::{CallerCtx, OpenResult};
use syscall::dirent::{DirEntry, DirentBuf, DirentKind};
use syscall::error::{
    Error as SysError, Result as SysResult, EACCES, EBADF, EEXIST, EINVAL, EISDIR, ELOOP, ENFILE,
    ENOENT, ENOTDIR,
};
use syscall::flag::{
    EventFlags, MapFlags, MunmapFlags, AT_REMOVEDIR, F_GETFL, F_SETFL, MODE_CHR, MODE_DIR,
    MODE_FIFO, MODE_FILE, MODE_SOCK, MODE_SYMLINK, O_APPEND,
};
use syscall::schemev2::NewFdFlags;
use syscall::{Stat, StatVfs, TimeSpec};
use tracing::{debug, warn};

use super::handles::{Handle, HandleKind, Handles};
use super::lifetime::{Closed, Lifetime};
use super::mapping::pages_of;
use super::open_flags::OpenFlags;
use super::walk::{self, WalkError};
use crate::error::Error;
use crate::fs::{
    Attr, Cred, FileType, Fs, NewKind, NewNode, NodeId, OpenMode, SetAttrs, TimeSet, Timespec,
    Tree, UnlinkKind, PAGE_SIZE,
};

/// `futimens`: leave this time alone (relibc `sys_stat`, `tv_nsec` of a `TimeSpec`).
pub const UTIME_OMIT: i32 = (1 << 30) - 2;
/// `futimens`: set this time to now.
pub const UTIME_NOW: i32 = (1 << 30) - 1;

/// Largest write taken in one request; a longer one is answered short, as POSIX allows,
/// and the caller writes the rest.
const MAX_WRITE: usize = 1 << 30;

/// Block device type bits (Linux `S_IFBLK`; redox_syscall has no name for it).
const MODE_BLK: u16 = 0x6000;

/// The tree served as one Redox scheme.
pub struct SchemeHandler {
    fs: Arc<Fs>,
    /// `/scheme/NAME`, the prefix of every `fpath`.
    mount_path: String,
    handles: Handles,
    lifetime: Lifetime,
}

/// A tree error as the errno Redox programs expect. Redox numbers its errors as Linux
/// does (redox_syscall `error.rs`), so the tree's Linux errno is the Redox errno.
fn sys(e: Error) -> SysError {
    SysError::new(e.errno() as i32)
}

fn walk_error(e: WalkError) -> SysError {
    match e {
        WalkError::Tree(e) => sys(e),
        WalkError::Loop => SysError::new(ELOOP),
        WalkError::NoName => SysError::new(EINVAL),
    }
}

fn mode_type(file_type: FileType) -> u16 {
    match file_type {
        FileType::Regular => MODE_FILE,
        FileType::Directory => MODE_DIR,
        FileType::Symlink => MODE_SYMLINK,
        FileType::Fifo => MODE_FIFO,
        FileType::Socket => MODE_SOCK,
        FileType::CharDevice => MODE_CHR,
        FileType::BlockDevice => MODE_BLK,
    }
}

fn dirent_kind(file_type: FileType) -> DirentKind {
    match file_type {
        FileType::Regular => DirentKind::Regular,
        FileType::Directory => DirentKind::Directory,
        FileType::Symlink => DirentKind::Symlink,
        FileType::Socket => DirentKind::Socket,
        FileType::CharDevice => DirentKind::CharDev,
        FileType::BlockDevice => DirentKind::BlockDev,
        // Redox's dirent kinds have no FIFO.
        FileType::Fifo => DirentKind::Unspecified,
    }
}

fn handle_kind(file_type: FileType) -> HandleKind {
    match file_type {
        FileType::Regular => HandleKind::File,
        FileType::Directory => HandleKind::Directory,
        _ => HandleKind::Other,
    }
}

/// A `futimens` time as a tree time change: `None` leaves it alone.
fn time_set(t: &TimeSpec) -> SysResult<Option<TimeSet>> {
    match t.tv_nsec {
        UTIME_OMIT => Ok(None),
        UTIME_NOW => Ok(Some(TimeSet::Now)),
        nsec => {
            let sec = u64::try_from(t.tv_sec).map_err(|_| SysError::new(EINVAL))?;
            let nsec = u32::try_from(nsec)
                .ok()
                .filter(|n| *n < 1_000_000_000)
                .ok_or(SysError::new(EINVAL))?;
            Ok(Some(TimeSet::At(Timespec { sec, nsec })))
        }
    }
}

fn fill_stat(stat: &mut Stat, a: &Attr) {
    *stat = Stat {
        st_dev: 0,
        st_ino: a.id,
        st_mode: mode_type(a.file_type) | (a.perm & 0o7777) as u16,
        st_nlink: u32::try_from(a.nlink).unwrap_or(u32::MAX),
        st_uid: a.uid,
        st_gid: a.gid,
        st_size: a.size,
        st_blksize: PAGE_SIZE as u32,
        st_blocks: a.blocks,
        st_mtime: a.mtime.sec,
        st_mtime_nsec: a.mtime.nsec,
        st_atime: a.atime.sec,
        st_atime_nsec: a.atime.nsec,
        st_ctime: a.ctime.sec,
        st_ctime_nsec: a.ctime.nsec,
    };
}

impl SchemeHandler {
    /// A handler serving `fs` as the scheme `name`.
    pub fn new(fs: Arc<Fs>, name: &str) -> SchemeHandler {
        SchemeHandler {
            fs,
            mount_path: format!("/scheme/{name}"),
            handles: Handles::new(),
            lifetime: Lifetime::new(),
        }
    }

    /// The exit rule (see [`super::lifetime`]): the root is closed and no handle or
    /// lent page is left.
    pub fn may_exit(&self) -> bool {
        self.lifetime.may_exit(self.lent_pages())
    }

    /// Handles open now, the root not included.
    pub fn open_handles(&self) -> usize {
        self.lifetime.open_handles()
    }

    /// Pages lent to the kernel for mappings now. Only this front end lends, so the
    /// tree's count is ours.
    pub fn lent_pages(&self) -> u64 {
        self.fs.lock().lent_pages()
    }

    fn handle(&self, id: usize) -> SysResult<&Handle> {
        self.handles.get(id).ok_or(SysError::new(EBADF))
    }

    /// The directory node an `openat`/`unlinkat` starts from.
    fn start_dir(&self, tree: &Tree, dirfd: usize) -> SysResult<NodeId> {
        let h = self.handle(dirfd)?;
        match h.kind {
            HandleKind::Root => Ok(tree.root()),
            HandleKind::Directory => Ok(h.node),
            _ => Err(SysError::new(ENOTDIR)),
        }
    }

    /// Finds or creates the node an `openat` names. Returns it and whether it is new.
    fn open_node(
        tree: &mut Tree,
        cred: &Cred,
        start: NodeId,
        path: &str,
        f: &OpenFlags,
    ) -> SysResult<(NodeId, bool)> {
        let follow_last = !f.symlink && !f.no_follow;
        if !f.create {
            let node = walk::resolve(tree, cred, start, path, follow_last).map_err(walk_error)?;
            return Ok((node, false));
        }
        let (dir, name) = match walk::resolve_parent(tree, cred, start, path) {
            Ok(found) => found,
            // No last name ("", ".", ".."): that directory itself, which exists.
            Err(WalkError::NoName) => {
                if f.exclusive {
                    return Err(SysError::new(EEXIST));
                }
                let node = walk::resolve(tree, cred, start, path, true).map_err(walk_error)?;
                return Ok((node, false));
            }
            Err(e) => return Err(walk_error(e)),
        };
        match tree.lookup(cred, dir, &name) {
            Ok(_) if f.exclusive => Err(SysError::new(EEXIST)),
            Ok(_) => {
                let node =
                    walk::resolve(tree, cred, dir, &name, follow_last).map_err(walk_error)?;
                Ok((node, false))
            }
            Err(Error::NotFound) => {
                let kind = if f.directory {
                    NewKind::Dir
                } else {
                    NewKind::File
                };
                let mut new = NewNode::new(kind, f.perm);
                // POSIX: the creator's group, unless the directory is set-group-ID.
                let setgid_dir = tree.attr(dir).map_err(sys)?.perm & 0o2000 != 0;
                new.gid = (!setgid_dir).then_some(cred.gid);
                let node = tree.create(cred, dir, &name, new).map_err(sys)?;
                Ok((node, true))
            }
            Err(e) => Err(sys(e)),
        }
    }

    /// Ends a handle: the tree's open and the reference it held.
    fn release(&mut self, handle: Handle) {
        let mut tree = self.fs.lock();
        if handle.tree_open {
            tree.close(handle.node);
        }
        if handle.kind != HandleKind::Root {
            tree.decref(handle.node);
        }
    }
}

impl SchemeSync for SchemeHandler {
    fn scheme_root(&mut self) -> SysResult<usize> {
        if let Some(root) = self.lifetime.root() {
            return Ok(root);
        }
        let (node, cred) = {
            let mut tree = self.fs.lock();
            (tree.root(), tree.cred_for_uid(0, Some(0)))
        };
        let handle = Handle {
            node,
            kind: HandleKind::Root,
            read: false,
            write: false,
            append: false,
            tree_open: false,
            cred,
            path: String::new(),
        };
        let id = self
            .handles
            .insert(handle)
            .map_err(|_| SysError::new(ENFILE))?;
        self.lifetime.root_issued(id);
        Ok(id)
    }

    fn openat(
        &mut self,
        dirfd: usize,
        path: &str,
        flags: usize,
        fcntl_flags: u32,
        ctx: &CallerCtx,
    ) -> SysResult<OpenResult> {
        let f = OpenFlags::decode(flags, fcntl_flags).map_err(|_| SysError::new(EINVAL))?;
        let fs = Arc::clone(&self.fs);
        let mut tree = fs.lock();
        let start = self.start_dir(&tree, dirfd)?;
        let cred = tree.cred_for_uid(ctx.uid, Some(ctx.gid));
        let (node, created) = Self::open_node(&mut tree, &cred, start, path, &f)?;
        let attr = tree.attr(node).map_err(sys)?;
        let is_dir = attr.file_type == FileType::Directory;
        if attr.file_type == FileType::Symlink && !f.symlink && !f.stat {
            // Reached only with O_NOFOLLOW: the last name is a link.
            return Err(SysError::new(ELOOP));
        }
        if !f.stat {
            // Redox lists a directory only through a handle opened with O_DIRECTORY.
            if is_dir && !f.directory {
                return Err(SysError::new(EISDIR));
            }
            if !is_dir && f.directory {
                return Err(SysError::new(ENOTDIR));
            }
        }
        let data = f.data_access();
        // The tree refuses (ETXTBSY) to truncate pages a running program has mapped.
        let truncate = data && f.write && f.truncate && attr.file_type == FileType::Regular;
        if data {
            let mode = OpenMode {
                read: f.read,
                write: f.write,
                exec: false,
                truncate,
            };
            // The creator of a file may open it whatever mode it gave it (POSIX).
            tree.open(&cred, node, mode, !created).map_err(sys)?;
        }
        if let Err(e) = tree.incref(node) {
            if data {
                tree.close(node);
            }
            return Err(sys(e));
        }
        let handle = Handle {
            node,
            kind: handle_kind(attr.file_type),
            read: data && f.read,
            write: data && f.write,
            append: f.append,
            tree_open: data,
            cred,
            path: walk::path_of(&tree, node).unwrap_or_else(|| path.to_owned()),
        };
        let id = match self.handles.insert(handle) {
            Ok(id) => id,
            Err(_) => {
                if data {
                    tree.close(node);
                }
                tree.decref(node);
                return Err(SysError::new(ENFILE));
            }
        };
        self.lifetime.opened(id);
        Ok(OpenResult::ThisScheme {
            number: id,
            flags: NewFdFlags::POSITIONED,
        })
    }

    fn unlinkat(
        &mut self,
        dirfd: usize,
        path: &str,
        flags: usize,
        ctx: &CallerCtx,
    ) -> SysResult<()> {
        let fs = Arc::clone(&self.fs);
        let mut tree = fs.lock();
        let start = self.start_dir(&tree, dirfd)?;
        let cred = tree.cred_for_uid(ctx.uid, Some(ctx.gid));
        let (dir, name) = walk::resolve_parent(&tree, &cred, start, path).map_err(walk_error)?;
        let kind = if flags & AT_REMOVEDIR != 0 {
            UnlinkKind::Dir
        } else {
            UnlinkKind::NonDir
        };
        tree.unlink(&cred, dir, &name, kind).map_err(sys)
    }

    fn inode(&self, id: usize) -> SysResult<usize> {
        Ok(self.handle(id)?.node as usize)
    }

    fn read(
        &mut self,
        id: usize,
        buf: &mut [u8],
        offset: u64,
        _fcntl_flags: u32,
        _ctx: &CallerCtx,
    ) -> SysResult<usize> {
        let h = self.handle(id)?;
        if !h.read {
            return Err(SysError::new(EBADF));
        }
        let node = h.node;
        // Straight from the pages into the caller's buffer: one copy.
        let mut filled = 0;
        let max = buf.len();
        self.fs
            .lock()
            .read_with(node, offset, max, |bytes| {
                // The tree hands at most `max` bytes; `get_mut` keeps that a fact
                // checked here, not a panic.
                if let Some(dst) = buf.get_mut(filled..filled + bytes.len()) {
                    dst.copy_from_slice(bytes);
                    filled += bytes.len();
                }
            })
            .map_err(sys)?;
        Ok(filled)
    }

    fn write(
        &mut self,
        id: usize,
        buf: &[u8],
        offset: u64,
        fcntl_flags: u32,
        _ctx: &CallerCtx,
    ) -> SysResult<usize> {
        let h = self.handle(id)?;
        if !h.write {
            return Err(SysError::new(EBADF));
        }
        // The description's flags come with every call; F_SETFL may have changed them.
        let append = h.append || fcntl_flags as usize & O_APPEND != 0;
        let chunk = &buf[..buf.len().min(MAX_WRITE)];
        let n = self
            .fs
            .lock()
            .write(&h.cred, h.node, offset, chunk, append)
            .map_err(sys)?;
        Ok(n as usize)
    }

    fn fsize(&mut self, id: usize, _ctx: &CallerCtx) -> SysResult<u64> {
        let node = self.handle(id)?.node;
        Ok(self.fs.lock().attr(node).map_err(sys)?.size)
    }

    fn fchmod(&mut self, id: usize, new_mode: u16, _ctx: &CallerCtx) -> SysResult<()> {
        let h = self.handle(id)?;
        let set = SetAttrs {
            perm: Some(u32::from(new_mode) & 0o7777),
            ..SetAttrs::default()
        };
        self.fs.lock().setattr(&h.cred, h.node, set).map_err(sys)
    }

    fn fchown(&mut self, id: usize, new_uid: u32, new_gid: u32, _ctx: &CallerCtx) -> SysResult<()> {
        let h = self.handle(id)?;
        // -1 leaves the id as it is (POSIX chown).
        let set = SetAttrs {
            uid: (new_uid != u32::MAX).then_some(new_uid),
            gid: (new_gid != u32::MAX).then_some(new_gid),
            ..SetAttrs::default()
        };
        self.fs.lock().setattr(&h.cred, h.node, set).map_err(sys)
    }

    fn fcntl(&mut self, id: usize, cmd: usize, _arg: usize, _ctx: &CallerCtx) -> SysResult<usize> {
        self.handle(id)?;
        // The kernel keeps the flags; it asks us first only to let a scheme refuse.
        match cmd {
            F_GETFL | F_SETFL => Ok(0),
            _ => Err(SysError::new(EINVAL)),
        }
    }

    fn fevent(&mut self, id: usize, flags: EventFlags, _ctx: &CallerCtx) -> SysResult<EventFlags> {
        self.handle(id)?;
        // Memory never blocks: whatever is asked for is ready now, and stays ready.
        Ok(flags & (EventFlags::EVENT_READ | EventFlags::EVENT_WRITE))
    }

    fn fpath(&mut self, id: usize, buf: &mut [u8], _ctx: &CallerCtx) -> SysResult<usize> {
        let h = self.handle(id)?;
        let rel = walk::path_of(&self.fs.lock(), h.node).unwrap_or_else(|| h.path.clone());
        let mut path = self.mount_path.clone();
        if !rel.is_empty() {
            path.push('/');
            path.push_str(&rel);
        }
        let n = path.len().min(buf.len());
        buf[..n].copy_from_slice(&path.as_bytes()[..n]);
        Ok(n)
    }

    fn frename(&mut self, id: usize, path: &str, _ctx: &CallerCtx) -> SysResult<usize> {
        let h = self.handle(id)?;
        let (node, cred) = (h.node, h.cred.clone());
        let fs = Arc::clone(&self.fs);
        let mut tree = fs.lock();
        let (olddir, oldname) = tree.primary_link(node).map_err(|_| SysError::new(ENOENT))?;
        let root = tree.root();
        let (newdir, newname) =
            walk::resolve_parent(&tree, &cred, root, path).map_err(walk_error)?;
        tree.rename(&cred, olddir, &oldname, newdir, &newname)
            .map_err(sys)?;
        if let (Some(h), Some(p)) = (self.handles.get_mut(id), walk::path_of(&tree, node)) {
            h.path = p;
        }
        Ok(0)
    }

    fn frenameat(
        &mut self,
        old_dir: usize,
        old_path: &str,
        new_dir: usize,
        new_path: &str,
        flags: u32,
        _ctx: &CallerCtx,
    ) -> SysResult<usize> {
        if flags != 0 {
            return Err(SysError::new(EINVAL));
        }
        let fs = Arc::clone(&self.fs);
        let mut tree = fs.lock();
        let cred = self.handle(old_dir)?.cred.clone();
        let old_start = self.start_dir(&tree, old_dir)?;
        let new_start = self.start_dir(&tree, new_dir)?;
        let (od, on) =
            walk::resolve_parent(&tree, &cred, old_start, old_path).map_err(walk_error)?;
        let (nd, nn) =
            walk::resolve_parent(&tree, &cred, new_start, new_path).map_err(walk_error)?;
        tree.rename(&cred, od, &on, nd, &nn).map_err(sys)?;
        Ok(0)
    }

    fn fstat(&mut self, id: usize, stat: &mut Stat, _ctx: &CallerCtx) -> SysResult<()> {
        let node = self.handle(id)?.node;
        let attr = self.fs.lock().attr(node).map_err(sys)?;
        fill_stat(stat, &attr);
        Ok(())
    }

    fn fstatvfs(&mut self, id: usize, stat: &mut StatVfs, _ctx: &CallerCtx) -> SysResult<()> {
        self.handle(id)?;
        let s = self.fs.lock().statfs();
        *stat = StatVfs {
            f_bsize: s.bsize,
            f_blocks: s.blocks,
            f_bfree: s.bfree,
            f_bavail: s.bfree,
        };
        Ok(())
    }

    fn fsync(&mut self, id: usize, _ctx: &CallerCtx) -> SysResult<()> {
        // Nothing is ever anywhere but in memory.
        self.handle(id).map(|_| ())
    }

    fn ftruncate(&mut self, id: usize, len: u64, _ctx: &CallerCtx) -> SysResult<()> {
        let h = self.handle(id)?;
        if h.kind == HandleKind::Directory {
            return Err(SysError::new(EISDIR));
        }
        if !h.write {
            // Linux's answer for a descriptor not open for writing.
            return Err(SysError::new(EINVAL));
        }
        // The tree refuses (ETXTBSY) to drop pages a running program has mapped. The
        // open granted writing, so the mode does not decide again.
        let set = SetAttrs {
            size: Some(len),
            opened_for_write: true,
            ..SetAttrs::default()
        };
        self.fs.lock().setattr(&h.cred, h.node, set).map_err(sys)
    }

    fn futimens(&mut self, id: usize, times: &[TimeSpec], _ctx: &CallerCtx) -> SysResult<()> {
        let h = self.handle(id)?;
        let [atime, mtime] = times else {
            return Err(SysError::new(EINVAL));
        };
        let set = SetAttrs {
            atime: time_set(atime)?,
            mtime: time_set(mtime)?,
            ..SetAttrs::default()
        };
        if set.atime.is_none() && set.mtime.is_none() {
            return Ok(());
        }
        self.fs.lock().setattr(&h.cred, h.node, set).map_err(sys)
    }

    fn getdents<'buf>(
        &mut self,
        id: usize,
        mut buf: DirentBuf<&'buf mut [u8]>,
        opaque_offset: u64,
    ) -> SysResult<DirentBuf<&'buf mut [u8]>> {
        let h = self.handle(id)?;
        if h.kind != HandleKind::Directory {
            return Err(SysError::new(ENOTDIR));
        }
        if !h.read {
            return Err(SysError::new(EBADF));
        }
        let tree = self.fs.lock();
        let mut written = 0usize;
        // The opaque offset is the sequence number of the last entry returned: entries
        // added or removed meanwhile do not make a reader skip or repeat one.
        for entry in tree.dir_entries(h.node, opaque_offset).map_err(sys)? {
            let kind = tree
                .attr(entry.id)
                .map(|a| dirent_kind(a.file_type))
                .unwrap_or(DirentKind::Unspecified);
            let result = buf.entry(DirEntry {
                inode: entry.id,
                next_opaque_id: entry.seq,
                name: entry.name,
                kind,
            });
            match result {
                Ok(()) => written += 1,
                // Full: a partial answer, the reader comes back for the rest.
                Err(e) if e.errno == EINVAL && written > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(buf)
    }

    fn mmap_prep(
        &mut self,
        id: usize,
        offset: u64,
        size: usize,
        flags: MapFlags,
        _ctx: &CallerCtx,
    ) -> SysResult<usize> {
        let h = self.handle(id)?;
        if h.kind != HandleKind::File {
            return Err(SysError::new(EACCES));
        }
        let reads = flags.intersects(MapFlags::PROT_READ | MapFlags::PROT_EXEC);
        let writes_back = flags.contains(MapFlags::MAP_SHARED | MapFlags::PROT_WRITE);
        // A private writable mapping is copy-on-write in the kernel: reading suffices.
        if (reads || flags.contains(MapFlags::PROT_WRITE)) && !h.read && !writes_back {
            return Err(SysError::new(EACCES));
        }
        if writes_back && !h.write {
            return Err(SysError::new(EACCES));
        }
        let (first, count) =
            pages_of(offset, size, PAGE_SIZE as u64).ok_or(SysError::new(EINVAL))?;
        // One address for all the pages, side by side, staying put until munmap; a
        // hole gets a zero page without changing the file (ENXIO past the end, EBUSY
        // if an earlier mapping pins pages the window would have to move).
        let page = self
            .fs
            .lock()
            .lend_pages(h.node, first, count)
            .map_err(sys)?;
        Ok(page.as_ptr() as usize)
    }

    fn munmap(
        &mut self,
        id: usize,
        offset: u64,
        size: usize,
        _flags: MunmapFlags,
        _ctx: &CallerCtx,
    ) -> SysResult<()> {
        let node = self.handle(id)?.node;
        let (first, count) =
            pages_of(offset, size, PAGE_SIZE as u64).ok_or(SysError::new(EINVAL))?;
        let unmatched = self
            .fs
            .lock()
            .return_pages(node, first, count)
            .map_err(sys)?;
        if unmatched > 0 {
            warn!(
                node,
                first,
                count,
                pages = unmatched,
                "munmap of pages never lent"
            );
        }
        Ok(())
    }

    fn on_close(&mut self, id: usize) {
        match self.lifetime.closed(id) {
            Closed::Root => debug!(id, "root handle closed: the scheme is unreachable"),
            Closed::Handle => {}
            Closed::Unknown => {
                warn!(id, "close of a handle that is not open");
                return;
            }
        }
        if let Some(handle) = self.handles.remove(id) {
            self.release(handle);
        }
    }
}
