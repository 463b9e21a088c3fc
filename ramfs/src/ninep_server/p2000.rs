//! 9P2000 requests: open, create, stat, wstat, and directory reads of whole stat
//! records, with Plan 9's rules.

use ninep::{dm, om, Msg, Stat};

use super::session::{p2000_open_mode, qid_of, Session};
use crate::error::{Error, Result};
use crate::fs::{Attr, FileType, NewKind, NewNode, NodeId, SpecialKind, Tree, Wstat, WstatMode};

/// Plan 9 times are 32-bit seconds.
fn secs32(sec: u64) -> u32 {
    u32::try_from(sec).unwrap_or(u32::MAX)
}

/// The 9P2000 stat record of a node.
pub(super) fn stat_of(tree: &Tree, a: &Attr) -> Stat {
    let mut mode = a.perm & dm::PERM;
    mode |= match a.file_type {
        FileType::Directory => dm::DIR,
        FileType::Symlink => dm::SYMLINK,
        FileType::Fifo => dm::NAMEDPIPE,
        FileType::Socket => dm::SOCKET,
        FileType::CharDevice | FileType::BlockDevice => dm::DEVICE,
        FileType::Regular => 0,
    };
    if a.append {
        mode |= dm::APPEND;
    }
    if a.excl {
        mode |= dm::EXCL;
    }
    if a.tmp {
        mode |= dm::TMP;
    }
    Stat {
        ty: 0,
        dev: 0,
        qid: qid_of(a),
        mode,
        atime: secs32(a.atime.sec),
        mtime: secs32(a.mtime.sec),
        length: if a.file_type == FileType::Directory {
            0
        } else {
            a.size
        },
        name: a.name.clone(),
        uid: tree.user_name(a.uid),
        gid: tree.user_name(a.gid),
        muid: tree.user_name(a.muid),
    }
}

/// The tree's form of a Twstat: the don't-touch values become `None`. Type, dev, qid
/// and muid are not the client's to change and are ignored, as lib9p does.
fn wstat_of(s: Stat) -> Wstat {
    let opt32 = |v: u32| (v != u32::MAX).then_some(v);
    let opt_str = |v: String| (!v.is_empty()).then_some(v);
    Wstat {
        mode: opt32(s.mode).map(|m| WstatMode {
            is_dir: m & dm::DIR != 0,
            perm: m & dm::PERM,
            append: m & dm::APPEND != 0,
            excl: m & dm::EXCL != 0,
            tmp: m & dm::TMP != 0,
        }),
        atime: opt32(s.atime),
        mtime: opt32(s.mtime),
        length: (s.length != u64::MAX).then_some(s.length),
        name: opt_str(s.name),
        uid: opt_str(s.uid),
        gid: opt_str(s.gid),
    }
}

/// Type, dev, qid and muid cannot be changed by wstat (stat(5): "attempts to change
/// them will trigger an error"); each must be its don't-touch value or what it is.
fn check_fixed_fields(new: &Stat, current: &Stat) -> Result<()> {
    let same_or_untouched = new.ty == u16::MAX || new.ty == current.ty;
    let dev_ok = new.dev == u32::MAX || new.dev == current.dev;
    let q = &new.qid;
    let qid_ok = (q.ty == u8::MAX || q.ty == current.qid.ty)
        && (q.version == u32::MAX || q.version == current.qid.version)
        && (q.path == u64::MAX || q.path == current.qid.path);
    let muid_ok = new.muid.is_empty() || new.muid == current.muid;
    if same_or_untouched && dev_ok && qid_ok && muid_ok {
        Ok(())
    } else {
        Err(Error::WstatProhibited)
    }
}

impl Session<'_> {
    pub(super) fn dispatch_p2000(&mut self, msg: Msg) -> Result<Msg> {
        match msg {
            Msg::Topen { fid, mode } => self.open(fid, mode),
            Msg::Tcreate {
                fid,
                name,
                perm,
                mode,
            } => self.create(fid, &name, perm, mode),
            Msg::Tstat { fid } => {
                let node = self.fid(fid)?.node;
                let tree = self.fs.lock_shared();
                let stat = stat_of(&tree, &tree.attr(node)?);
                Ok(Msg::Rstat { stat })
            }
            Msg::Twstat { fid, stat } => {
                let f = self.fid(fid)?;
                let (node, cred) = (f.node, f.cred.clone());
                let mut tree = self.fs.lock();
                let current = stat_of(&tree, &tree.attr(node)?);
                check_fixed_fields(&stat, &current)?;
                tree.wstat(&cred, node, wstat_of(stat))?;
                Ok(Msg::Rwstat)
            }
            _ => Err(Error::NotImplemented),
        }
    }

    fn open(&mut self, fid: u32, mode: u8) -> Result<Msg> {
        let node = self.unopened_fid(fid)?.node;
        let fs = self.fs;
        let mut tree = fs.lock();
        let open = p2000_open_mode(mode);
        if tree.attr(node)?.file_type == FileType::Directory && (open.write || open.truncate) {
            return Err(Error::IsDir);
        }
        let orclose = mode & om::RCLOSE != 0;
        if orclose && tree.attr(node)?.file_type == FileType::Directory {
            // Plan 9 removes a file at clunk, not a directory and what it holds.
            return Err(Error::BadMode);
        }
        let qid = self.open_fid(&mut tree, fid, open, orclose, false, true)?;
        Ok(Msg::Ropen {
            qid,
            iounit: self.iounit(),
        })
    }

    fn create(&mut self, fid: u32, name: &str, perm: u32, mode: u8) -> Result<Msg> {
        let f = self.unopened_fid(fid)?;
        let (dir, cred) = (f.node, f.cred.clone());
        let open = p2000_open_mode(mode);
        let is_dir = perm & dm::DIR != 0;
        if is_dir && (open.write || open.truncate) {
            return Err(Error::IsDir);
        }
        if is_dir && mode & om::RCLOSE != 0 {
            return Err(Error::BadMode);
        }
        let kind = if is_dir {
            NewKind::Dir
        } else if perm & dm::NAMEDPIPE != 0 {
            NewKind::Special {
                kind: SpecialKind::Fifo,
                rdev: 0,
            }
        } else {
            NewKind::File
        };
        let new = NewNode {
            kind,
            perm: perm & dm::PERM,
            plan9_mask: true,
            gid: None,
            append: perm & dm::APPEND != 0,
            excl: perm & dm::EXCL != 0,
            tmp: perm & dm::TMP != 0,
        };
        let fs = self.fs;
        let mut tree = fs.lock();
        let node = tree.create(&cred, dir, name, new)?;
        let orclose = mode & om::RCLOSE != 0;
        let qid = self.become_created(&mut tree, fid, node, open, orclose, false)?;
        Ok(Msg::Rcreate {
            qid,
            iounit: self.iounit(),
        })
    }

    /// A directory read: whole stat records from where the last read ended (offset 0
    /// starts over; any other offset must be where the last read ended). If not even
    /// the next record fits in a non-zero `count`, the read fails with
    /// [`Error::CountTooSmall`] and the record stays next: an empty reply, as lib9p
    /// gives, would read as the end of the directory and hide the rest. (Plan 9's
    /// `devdirread` fails too.) A record is at most 1069 bytes (names are at most 255
    /// bytes), so a full read fits one at any msize from 1093 up.
    pub(super) fn read_dir_p2000(
        &mut self,
        tree: &Tree,
        fid: u32,
        offset: u64,
        count: usize,
    ) -> Result<Vec<u8>> {
        let f = self.fid_mut(fid)?;
        let node: NodeId = f.node;
        let open = f.open.as_mut().ok_or(Error::BadFidUse)?;
        if offset == 0 {
            open.dir_offset = 0;
            open.dir_cursor = 0;
        } else if offset != open.dir_offset {
            return Err(Error::BadDirOffset);
        }
        let mut data = Vec::new();
        let mut cursor = open.dir_cursor;
        for e in tree.dir_entries(node, open.dir_cursor)? {
            let stat = stat_of(tree, &tree.attr(e.id)?);
            if data.len() + stat.encoded_len() > count {
                if data.is_empty() && count > 0 {
                    return Err(Error::CountTooSmall);
                }
                break;
            }
            stat.encode(&mut data).map_err(|_| Error::Invalid)?;
            cursor = e.seq;
        }
        open.dir_cursor = cursor;
        open.dir_offset += data.len() as u64;
        Ok(data)
    }
}
