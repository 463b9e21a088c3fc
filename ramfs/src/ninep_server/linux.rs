//! 9P2000.L requests, with POSIX rules: what the Linux v9fs client (and diod's and
//! QEMU's clients) send.

use std::sync::Arc;

use ninep::{
    dt, getattr, lflags, lock, setattr, smode, Attr as LAttr, Dirent, GetLock, LockReq, Msg,
    StatFs, AT_REMOVEDIR,
};

use super::session::{qid_of, Session, XattrFid};
use crate::error::{Error, Result};
use crate::fs::{
    range_end, Attr, FileType, LockKind, LockOwner, LockRefusal, NewKind, NewNode, OpenMode,
    SetAttrs, SpecialKind, TimeSet, Timespec, UnlinkKind, XattrSetMode, FIRST_SEQ, XATTR_SIZE_MAX,
};

/// `f_type` of statfs for a 9P mount (Linux's `V9FS_MAGIC`).
const V9FS_MAGIC: u32 = 0x0102_1997;
/// Linux `XATTR_CREATE` and `XATTR_REPLACE`.
const XATTR_CREATE: u32 = 1;
const XATTR_REPLACE: u32 = 2;
/// Readdir cookies of "." and "..": entries start at [`FIRST_SEQ`].
const DOT_COOKIE: u64 = 1;
const DOTDOT_COOKIE: u64 = 2;

fn type_bits(t: FileType) -> u32 {
    match t {
        FileType::Regular => smode::IFREG,
        FileType::Directory => smode::IFDIR,
        FileType::Symlink => smode::IFLNK,
        FileType::Fifo => smode::IFIFO,
        FileType::Socket => smode::IFSOCK,
        FileType::CharDevice => smode::IFCHR,
        FileType::BlockDevice => smode::IFBLK,
    }
}

fn dirent_type(t: FileType) -> u8 {
    match t {
        FileType::Regular => dt::REG,
        FileType::Directory => dt::DIR,
        FileType::Symlink => dt::LNK,
        FileType::Fifo => dt::FIFO,
        FileType::Socket => dt::SOCK,
        FileType::CharDevice => dt::CHR,
        FileType::BlockDevice => dt::BLK,
    }
}

/// Linux's `new_encode_dev` of a major and minor number.
fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    ((ma & 0xfff) << 8) | ((ma & !0xfff) << 32) | (mi & 0xff) | ((mi & !0xff) << 12)
}

/// The Rgetattr of a node: everything is always valid.
fn lattr_of(a: &Attr) -> LAttr {
    LAttr {
        valid: getattr::ALL,
        qid: qid_of(a),
        mode: type_bits(a.file_type) | a.perm,
        uid: a.uid,
        gid: a.gid,
        nlink: a.nlink,
        rdev: a.rdev,
        size: a.size,
        blksize: crate::fs::PAGE_SIZE as u64,
        blocks: a.blocks,
        atime_sec: a.atime.sec,
        atime_nsec: a.atime.nsec.into(),
        mtime_sec: a.mtime.sec,
        mtime_nsec: a.mtime.nsec.into(),
        ctime_sec: a.ctime.sec,
        ctime_nsec: a.ctime.nsec.into(),
        btime_sec: a.btime.sec,
        btime_nsec: a.btime.nsec.into(),
        gen: 0,
        data_version: a.version.into(),
    }
}

/// The access of Linux open flags.
fn open_mode_of(flags: u32) -> OpenMode {
    let (read, write) = match flags & lflags::ACCMODE {
        lflags::RDONLY => (true, false),
        lflags::WRONLY => (false, true),
        _ => (true, true),
    };
    OpenMode {
        read,
        write,
        exec: false,
        truncate: flags & lflags::TRUNC != 0,
    }
}

fn time_of(valid: u32, changed: u32, given: u32, sec: u64, nsec: u64) -> Option<TimeSet> {
    if valid & changed == 0 {
        return None;
    }
    if valid & given == 0 {
        return Some(TimeSet::Now);
    }
    Some(TimeSet::At(Timespec {
        sec,
        nsec: u32::try_from(nsec.min(999_999_999)).unwrap_or(0),
    }))
}

impl Session<'_> {
    pub(super) fn dispatch_linux(&mut self, msg: Msg) -> Result<Msg> {
        match msg {
            Msg::Tstatfs { fid } => {
                self.fid(fid)?;
                let s = self.fs.lock_shared().statfs();
                Ok(Msg::Rstatfs {
                    statfs: StatFs {
                        ty: V9FS_MAGIC,
                        bsize: s.bsize,
                        blocks: s.blocks,
                        bfree: s.bfree,
                        bavail: s.bfree,
                        files: s.files,
                        ffree: s.ffree,
                        fsid: 0,
                        namelen: s.namelen,
                    },
                })
            }
            Msg::Tlopen { fid, flags } => self.lopen(fid, flags),
            Msg::Tlcreate {
                fid,
                name,
                flags,
                mode,
                gid,
            } => self.lcreate(fid, &name, flags, mode, gid),
            Msg::Tsymlink {
                fid,
                name,
                symtgt,
                gid,
            } => {
                let mut new = NewNode::new(NewKind::Symlink(symtgt), 0o777);
                new.gid = Some(gid);
                let qid = self.make(fid, &name, new)?;
                Ok(Msg::Rsymlink { qid })
            }
            Msg::Tmknod {
                dfid,
                name,
                mode,
                major,
                minor,
                gid,
            } => {
                let rdev = makedev(major, minor);
                let kind = match mode & smode::IFMT {
                    smode::IFIFO => NewKind::Special {
                        kind: SpecialKind::Fifo,
                        rdev: 0,
                    },
                    smode::IFSOCK => NewKind::Special {
                        kind: SpecialKind::Socket,
                        rdev: 0,
                    },
                    smode::IFCHR => NewKind::Special {
                        kind: SpecialKind::CharDevice,
                        rdev,
                    },
                    smode::IFBLK => NewKind::Special {
                        kind: SpecialKind::BlockDevice,
                        rdev,
                    },
                    0 | smode::IFREG => NewKind::File,
                    _ => return Err(Error::Invalid),
                };
                let mut new = NewNode::new(kind, mode & 0o7777);
                new.gid = Some(gid);
                let qid = self.make(dfid, &name, new)?;
                Ok(Msg::Rmknod { qid })
            }
            Msg::Tmkdir {
                dfid,
                name,
                mode,
                gid,
            } => {
                let mut new = NewNode::new(NewKind::Dir, mode & 0o7777);
                new.gid = Some(gid);
                let qid = self.make(dfid, &name, new)?;
                Ok(Msg::Rmkdir { qid })
            }
            Msg::Trename { fid, dfid, name } => {
                let f = self.fid(fid)?;
                let (node, cred) = (f.node, f.cred.clone());
                let newdir = self.fid(dfid)?.node;
                let mut tree = self.fs.lock();
                let (olddir, oldname) = tree.primary_link(node)?;
                tree.rename(&cred, olddir, &oldname, newdir, &name)?;
                Ok(Msg::Rrename)
            }
            Msg::Trenameat {
                olddirfid,
                oldname,
                newdirfid,
                newname,
            } => {
                let f = self.fid(olddirfid)?;
                let (olddir, cred) = (f.node, f.cred.clone());
                let newdir = self.fid(newdirfid)?.node;
                self.fs
                    .lock()
                    .rename(&cred, olddir, &oldname, newdir, &newname)?;
                Ok(Msg::Rrenameat)
            }
            Msg::Tunlinkat { dirfd, name, flags } => {
                let f = self.fid(dirfd)?;
                let (dir, cred) = (f.node, f.cred.clone());
                let kind = if flags & AT_REMOVEDIR != 0 {
                    UnlinkKind::Dir
                } else {
                    UnlinkKind::NonDir
                };
                self.fs.lock().unlink(&cred, dir, &name, kind)?;
                Ok(Msg::Runlinkat)
            }
            Msg::Tlink { dfid, fid, name } => {
                let d = self.fid(dfid)?;
                let (dir, cred) = (d.node, d.cred.clone());
                let target = self.fid(fid)?.node;
                self.fs.lock().link(&cred, dir, &name, target)?;
                Ok(Msg::Rlink)
            }
            Msg::Treadlink { fid } => {
                let node = self.fid(fid)?.node;
                let target = self.fs.lock_shared().readlink(node)?;
                Ok(Msg::Rreadlink { target })
            }
            Msg::Tgetattr { fid, .. } => {
                let node = self.fid(fid)?.node;
                let a = self.fs.lock_shared().attr(node)?;
                Ok(Msg::Rgetattr { attr: lattr_of(&a) })
            }
            Msg::Tsetattr { fid, attr } => {
                let f = self.fid(fid)?;
                let (node, cred) = (f.node, f.cred.clone());
                // Linux's ftruncate sends Tsetattr on the open fid.
                let opened_for_write = f.open.as_ref().is_some_and(|o| o.mode.write);
                let v = attr.valid;
                let set = SetAttrs {
                    perm: (v & setattr::MODE != 0).then_some(attr.mode & 0o7777),
                    uid: (v & setattr::UID != 0).then_some(attr.uid),
                    gid: (v & setattr::GID != 0).then_some(attr.gid),
                    size: (v & setattr::SIZE != 0).then_some(attr.size),
                    atime: time_of(
                        v,
                        setattr::ATIME,
                        setattr::ATIME_SET,
                        attr.atime_sec,
                        attr.atime_nsec,
                    ),
                    mtime: time_of(
                        v,
                        setattr::MTIME,
                        setattr::MTIME_SET,
                        attr.mtime_sec,
                        attr.mtime_nsec,
                    ),
                    opened_for_write,
                };
                self.fs.lock().setattr(&cred, node, set)?;
                Ok(Msg::Rsetattr)
            }
            Msg::Treaddir { fid, offset, count } => self.readdir(fid, offset, count),
            Msg::Tfsync { fid, .. } => {
                // Everything is in memory: there is nothing to make stable.
                self.fid(fid)?;
                Ok(Msg::Rfsync)
            }
            Msg::Txattrwalk { fid, newfid, name } => self.xattrwalk(fid, newfid, &name),
            Msg::Txattrcreate {
                fid,
                name,
                attr_size,
                flags,
            } => self.xattrcreate(fid, name, attr_size, flags),
            Msg::Tlock { fid, lock } => self.lock(fid, lock),
            Msg::Tgetlock { fid, lock } => self.getlock(fid, lock),
            _ => Err(Error::NotImplemented),
        }
    }

    fn lopen(&mut self, fid: u32, flags: u32) -> Result<Msg> {
        let fs = self.fs;
        let mut tree = fs.lock();
        let mode = open_mode_of(flags);
        let append = flags & lflags::APPEND != 0;
        let node = self.unopened_fid(fid)?.node;
        if flags & lflags::DIRECTORY != 0 && tree.attr(node)?.file_type != FileType::Directory {
            return Err(Error::NotDir);
        }
        let qid = self.open_fid(&mut tree, fid, mode, false, append, true)?;
        Ok(Msg::Rlopen {
            qid,
            iounit: self.iounit(),
        })
    }

    fn lcreate(&mut self, fid: u32, name: &str, flags: u32, mode: u32, gid: u32) -> Result<Msg> {
        let f = self.unopened_fid(fid)?;
        let (dir, cred) = (f.node, f.cred.clone());
        let mut new = NewNode::new(NewKind::File, mode & 0o7777);
        new.gid = Some(gid);
        let fs = self.fs;
        let mut tree = fs.lock();
        let node = tree.create(&cred, dir, name, new)?;
        let open = open_mode_of(flags);
        let append = flags & lflags::APPEND != 0;
        let qid = self.become_created(&mut tree, fid, node, open, false, append)?;
        Ok(Msg::Rlcreate {
            qid,
            iounit: self.iounit(),
        })
    }

    /// Creates a node in the directory of `dfid`, which stays where it is.
    fn make(&mut self, dfid: u32, name: &str, new: NewNode) -> Result<ninep::Qid> {
        let f = self.fid(dfid)?;
        let (dir, cred) = (f.node, f.cred.clone());
        let mut tree = self.fs.lock();
        let node = tree.create(&cred, dir, name, new)?;
        Ok(qid_of(&tree.attr(node)?))
    }

    /// Directory entries from the cookie `offset`: "." and ".." first, then the
    /// entries by sequence number, so the cookies stay valid while the directory
    /// changes. A non-zero `count` too small for the next entry is
    /// [`Error::CountTooSmall`] (`EINVAL`, as getdents(2) says), not an empty reply,
    /// which would mean the end of the directory.
    fn readdir(&mut self, fid: u32, offset: u64, count: u32) -> Result<Msg> {
        let count = count.min(self.iounit()) as usize;
        let f = self.fid(fid)?;
        if f.open.is_none() {
            return Err(Error::BadFidUse);
        }
        let dir = f.node;
        let tree = self.fs.lock_shared();
        let me = tree.attr(dir)?;
        if me.file_type != FileType::Directory {
            return Err(Error::NotDir);
        }
        let parent = tree.attr(tree.parent(dir)?)?;
        let mut data = Vec::new();
        let push = |data: &mut Vec<u8>, d: Dirent| -> Result<bool> {
            if data.len() + d.encoded_len() > count {
                if data.is_empty() && count > 0 {
                    return Err(Error::CountTooSmall);
                }
                return Ok(false);
            }
            d.encode(data).map_err(|_| Error::Invalid)?;
            Ok(true)
        };
        let dots = [(DOT_COOKIE, ".", &me), (DOTDOT_COOKIE, "..", &parent)];
        for (cookie, name, a) in dots {
            if offset < cookie {
                let d = Dirent {
                    qid: qid_of(a),
                    offset: cookie,
                    ty: dt::DIR,
                    name: name.to_owned(),
                };
                if !push(&mut data, d)? {
                    return Ok(Msg::Rreaddir { data });
                }
            }
        }
        for e in tree.dir_entries(dir, offset.max(FIRST_SEQ - 1))? {
            let a = tree.attr(e.id)?;
            let d = Dirent {
                qid: qid_of(&a),
                offset: e.seq,
                ty: dirent_type(a.file_type),
                name: e.name.to_owned(),
            };
            if !push(&mut data, d)? {
                break;
            }
        }
        Ok(Msg::Rreaddir { data })
    }

    fn xattrwalk(&mut self, fid: u32, newfid: u32, name: &str) -> Result<Msg> {
        let f = self.fid(fid)?;
        let (node, cred) = (f.node, Arc::clone(&f.cred));
        self.check_new_fid(newfid)?;
        let fs = self.fs;
        let mut tree = fs.lock();
        let value = if name.is_empty() {
            tree.xattr_list(node)?
        } else {
            tree.xattr_get(node, name)?
        };
        // The fid keeps its own copy until it is clunked: charged like any other
        // memory, so a client cannot hold copies past the limit (one a fid).
        let size = value.len() as u64;
        tree.reserve_pending(size)?;
        if let Err(e) = self.bind(&mut tree, newfid, node, cred) {
            tree.release_pending(size);
            return Err(e);
        }
        self.fid_mut(newfid)?.xattr = Some(XattrFid::Read(value));
        Ok(Msg::Rxattrwalk { size })
    }

    fn xattrcreate(&mut self, fid: u32, name: String, size: u64, flags: u32) -> Result<Msg> {
        self.unopened_fid(fid)?;
        if size > XATTR_SIZE_MAX as u64 {
            return Err(Error::Range);
        }
        let mode = match flags & (XATTR_CREATE | XATTR_REPLACE) {
            0 => XattrSetMode::Any,
            XATTR_CREATE => XattrSetMode::Create,
            XATTR_REPLACE => XattrSetMode::Replace,
            _ => return Err(Error::Invalid),
        };
        self.fs.lock().reserve_pending(size)?;
        self.fid_mut(fid)?.xattr = Some(XattrFid::Write {
            name,
            size,
            mode,
            data: Vec::with_capacity(size as usize),
        });
        Ok(Msg::Rxattrcreate)
    }

    fn lock_owner(&self, client_id: String, proc_id: u32) -> LockOwner {
        LockOwner {
            session: self.id,
            client_id,
            proc_id,
        }
    }

    fn lock(&mut self, fid: u32, req: LockReq) -> Result<Msg> {
        let node = self.fid(fid)?.node;
        let kind = match req.ty {
            lock::TYPE_RDLCK => Some(LockKind::Read),
            lock::TYPE_WRLCK => Some(LockKind::Write),
            lock::TYPE_UNLCK => None,
            _ => return Err(Error::Invalid),
        };
        let owner = self.lock_owner(req.client_id, req.proc_id);
        let end = range_end(req.start, req.length);
        let r = self.fs.lock().lock(node, &owner, kind, req.start, end)?;
        let status = match r {
            Ok(()) => lock::STATUS_SUCCESS,
            // Never block: the Linux client retries a blocking request itself.
            Err(LockRefusal::Conflict) => lock::STATUS_BLOCKED,
            Err(LockRefusal::TableFull) => lock::STATUS_ERROR,
        };
        Ok(Msg::Rlock { status })
    }

    fn getlock(&mut self, fid: u32, req: GetLock) -> Result<Msg> {
        let node = self.fid(fid)?.node;
        let kind = match req.ty {
            lock::TYPE_RDLCK => LockKind::Read,
            // Linux asks with UNLCK (it has tested its own locks first and sends what
            // posix_test_lock left): any overlapping lock of another owner is the answer,
            // which is what a write lock conflicts with.
            lock::TYPE_WRLCK | lock::TYPE_UNLCK => LockKind::Write,
            _ => return Err(Error::Invalid),
        };
        let owner = self.lock_owner(req.client_id.clone(), req.proc_id);
        let end = range_end(req.start, req.length);
        let found = self
            .fs
            .lock()
            .conflicting_lock(node, &owner, kind, req.start, end)?;
        let lock = match found {
            Some(l) => GetLock {
                ty: match l.kind {
                    LockKind::Read => lock::TYPE_RDLCK,
                    LockKind::Write => lock::TYPE_WRLCK,
                },
                start: l.start,
                length: if l.end == u64::MAX {
                    0
                } else {
                    l.end - l.start + 1
                },
                proc_id: l.owner.proc_id,
                client_id: l.owner.client_id,
            },
            None => GetLock {
                ty: lock::TYPE_UNLCK,
                ..req
            },
        };
        Ok(Msg::Rgetlock { lock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makedev_matches_linux() {
        assert_eq!(makedev(1, 3), 0x103);
        assert_eq!(makedev(8, 0x123), 0x10_0823);
        assert_eq!(makedev(0x1000, 0), 0x1000_0000_0000);
    }
}
