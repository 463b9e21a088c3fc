//! A channel: one fid on a mount, with the dialect-neutral file operations.

mod io;

use io::transfer_end;

use crate::sync::Arc;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ninep::{dm, getattr, setattr, Dialect, Dirent, Msg, Qid, SetAttr, Stat, MAXWELEM};

use crate::error::{BadReply, MntError};
use crate::fileinfo::{Changes, FileInfo, OpenMode};
use crate::id::{AttachId, FileKey, MountId};
use crate::mount::Mount;
use crate::rendez::Interrupt;

/// An open (or merely walked-to) file of a mount: it owns one fid.
///
/// A channel holds its mount; the mount's transport closes when its last channel is
/// gone. [`clunk`](Self::clunk) and [`remove`](Self::remove) wait for the server;
/// dropping a channel queues its clunk instead (the `Tclunk` is sent at once, and
/// whichever caller is reading when the `Rclunk` comes finishes it), so dropping
/// never waits for the server, though it may wait for the transport to take the
/// message: drop channels outside your own locks.
pub struct Chan {
    mount: Mount,
    /// The attach whose tree the file is in: the `dev` of its [`FileKey`].
    attach: AttachId,
    fid: u32,
    /// False once clunked or removed: nothing left for `Drop` to do.
    live: bool,
    qid: Qid,
    opened: Option<Opened>,
    /// The numeric user of the attach: the group of files created in 9P2000.L.
    n_uname: u32,
    /// The names walked (or created) from the attach's root, `..` taken off: the
    /// channel's name in 9P2000.L, whose attributes carry none, and the way to its
    /// parent for a 9P2000.L rename.
    path: Vec<String>,
    /// 9P2000.L only: the attach's own fid, kept while any channel of the attach
    /// lives, to walk to a channel's parent from (a walk to `..` needs a directory).
    root: Option<Arc<AttachRoot>>,
}

/// The root fid of a 9P2000.L attach. It counts as a channel of the mount; the last
/// channel of the attach to go drops it, which queues its clunk.
pub(crate) struct AttachRoot {
    mount: Mount,
    fid: u32,
}

impl AttachRoot {
    pub(crate) fn new(mount: Mount, fid: u32) -> AttachRoot {
        AttachRoot { mount, fid }
    }
}

impl Drop for AttachRoot {
    fn drop(&mut self) {
        let mux = self.mount.mux();
        if mux.clunk_queued(self.fid).is_err() {
            mux.abandon_fid(self.fid);
        }
        mux.chan_gone();
    }
}

#[derive(Debug, Clone, Copy)]
struct Opened {
    mode: OpenMode,
    iounit: u32,
}

/// One entry of a directory read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub qid: Qid,
    pub name: String,
    /// Everything the server said, when it said it (9P2000 directory reads return
    /// whole stat records; 9P2000.L's `Rreaddir` only qid, type and name).
    pub info: Option<FileInfo>,
}

impl fmt::Debug for Chan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chan")
            .field("mount", &self.mount.id())
            .field("fid", &self.fid)
            .field("qid", &self.qid)
            .field("path", &self.path)
            .field("open", &self.opened.map(|o| o.mode))
            .finish()
    }
}

impl Chan {
    pub(crate) fn new(
        mount: Mount,
        attach: AttachId,
        fid: u32,
        qid: Qid,
        n_uname: u32,
        root: Option<Arc<AttachRoot>>,
    ) -> Chan {
        Chan {
            mount,
            attach,
            fid,
            live: true,
            qid,
            opened: None,
            n_uname,
            path: Vec::new(),
            root,
        }
    }

    /// The mount this channel belongs to.
    pub fn mount(&self) -> &Mount {
        &self.mount
    }

    /// The id of the mount.
    pub fn mount_id(&self) -> MountId {
        self.mount.id()
    }

    /// The id of the attach whose tree the file is in (the `dev` of [`FileKey`]).
    pub fn attach_id(&self) -> AttachId {
        self.attach
    }

    /// The file's qid as of the last walk, open or create.
    pub fn qid(&self) -> Qid {
        self.qid
    }

    /// The cache identity of the file's current version.
    pub fn file_key(&self) -> FileKey {
        FileKey::mounted(self.attach, self.qid)
    }

    /// The fid on the wire (for diagnostics and tests).
    pub fn fid(&self) -> u32 {
        self.fid
    }

    /// The last name this channel was walked to or created as ("/" for a root).
    pub fn name(&self) -> &str {
        self.path.last().map_or("/", String::as_str)
    }

    /// The names from the attach's root to this file (`..` taken off as walked).
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// How the channel is open, if it is.
    pub fn open_mode(&self) -> Option<OpenMode> {
        self.opened.map(|o| o.mode)
    }

    /// The most data one read or write message carries on this channel.
    pub fn iounit(&self) -> u32 {
        self.opened
            .map(|o| o.iounit)
            .unwrap_or_else(|| self.mount.max_iounit())
    }

    fn dialect(&self) -> Dialect {
        self.mount.dialect()
    }

    /// A new channel walked from this one along `names` (none: a clone). Walks of
    /// more than 16 names go out as several `Twalk`s of at most 16.
    ///
    /// A walk that stops early fails with [`MntError::WalkIncomplete`].
    pub fn walk(&self, names: &[&str], intr: &Interrupt) -> Result<Chan, MntError> {
        let (fid, qid) = walk_fid(&self.mount, self.fid, self.qid, names, intr)?;
        let mut path = self.path.clone();
        for n in names {
            match *n {
                ".." => {
                    path.pop();
                }
                "." => {}
                n => path.push(String::from(n)),
            }
        }
        Ok(Chan {
            mount: self.mount.clone(),
            attach: self.attach,
            fid,
            live: true,
            qid,
            opened: None,
            n_uname: self.n_uname,
            path,
            root: self.root.clone(),
        })
    }

    /// Opens the file for I/O.
    pub fn open(&mut self, mode: OpenMode, intr: &Interrupt) -> Result<(), MntError> {
        if self.opened.is_some() {
            return Err(MntError::AlreadyOpen);
        }
        let msg = match self.dialect() {
            Dialect::P2000 => Msg::Topen {
                fid: self.fid,
                mode: mode.to_9p2000(),
            },
            Dialect::L => Msg::Tlopen {
                fid: self.fid,
                flags: mode.to_linux_flags().ok_or(MntError::Unsupported)?,
            },
        };
        match self.mount.mux().rpc(msg, intr)? {
            Msg::Ropen { qid, iounit } | Msg::Rlopen { qid, iounit } => {
                self.set_open(qid, iounit, mode);
                Ok(())
            }
            other => Err(self.mount.wrong_reply(ninep::mtype::TOPEN, &other)),
        }
    }

    fn set_open(&mut self, qid: Qid, iounit: u32, mode: OpenMode) {
        let max = self.mount.max_iounit();
        let iounit = if iounit == 0 || iounit > max {
            max
        } else {
            iounit
        };
        self.qid = qid;
        self.opened = Some(Opened { mode, iounit });
    }

    /// Creates `name` in this directory and makes this channel the new file, open
    /// with `mode`. `perm` is Plan 9's: permission bits, plus `dm::DIR` for a
    /// directory.
    ///
    /// In 9P2000.L a directory takes three messages (`Tmkdir`, `Twalk`, `Tlopen`); if
    /// a later one fails the directory exists and the channel may already be on it.
    pub fn create(
        &mut self,
        name: &str,
        perm: u32,
        mode: OpenMode,
        intr: &Interrupt,
    ) -> Result<(), MntError> {
        if self.opened.is_some() {
            return Err(MntError::AlreadyOpen);
        }
        let mux = self.mount.mux();
        match self.dialect() {
            Dialect::P2000 => {
                let msg = Msg::Tcreate {
                    fid: self.fid,
                    name: String::from(name),
                    perm,
                    mode: mode.to_9p2000(),
                };
                match mux.rpc(msg, intr)? {
                    Msg::Rcreate { qid, iounit } => self.set_open(qid, iounit, mode),
                    other => return Err(self.mount.wrong_reply(ninep::mtype::TCREATE, &other)),
                }
            }
            Dialect::L if perm & dm::DIR != 0 => {
                let flags = mode.to_linux_flags().ok_or(MntError::Unsupported)?;
                let mkdir = Msg::Tmkdir {
                    dfid: self.fid,
                    name: String::from(name),
                    mode: perm & dm::PERM,
                    gid: self.n_uname,
                };
                mux.rpc(mkdir, intr)?;
                let walk = Msg::Twalk {
                    fid: self.fid,
                    newfid: self.fid,
                    wnames: Vec::from([String::from(name)]),
                };
                match mux.rpc(walk, intr)? {
                    Msg::Rwalk { wqids } if wqids.len() == 1 => self.qid = wqids[0],
                    _ => return Err(MntError::WalkIncomplete { walked: 0 }),
                }
                self.path.push(String::from(name));
                match mux.rpc(
                    Msg::Tlopen {
                        fid: self.fid,
                        flags,
                    },
                    intr,
                )? {
                    Msg::Rlopen { qid, iounit } => self.set_open(qid, iounit, mode),
                    other => return Err(self.mount.wrong_reply(ninep::mtype::TLOPEN, &other)),
                }
            }
            Dialect::L => {
                let flags = mode.to_linux_flags().ok_or(MntError::Unsupported)?
                    | ninep::lflags::CREAT
                    | ninep::lflags::EXCL;
                let msg = Msg::Tlcreate {
                    fid: self.fid,
                    name: String::from(name),
                    flags,
                    mode: perm & dm::PERM,
                    gid: self.n_uname,
                };
                match mux.rpc(msg, intr)? {
                    Msg::Rlcreate { qid, iounit } => self.set_open(qid, iounit, mode),
                    other => return Err(self.mount.wrong_reply(ninep::mtype::TLCREATE, &other)),
                }
            }
        }
        if !(self.dialect() == Dialect::L && perm & dm::DIR != 0) {
            self.path.push(String::from(name));
        }
        Ok(())
    }

    /// Reads directory entries from `offset` (0 to start; then the returned next
    /// offset). An empty list means the end.
    ///
    /// In 9P2000 the offset is a byte offset in the stream of stat records and each
    /// entry has its full [`FileInfo`]; in 9P2000.L it is the server's cookie, and
    /// the `.` and `..` entries are left out, as Plan 9 lists directories. A 9P2000.L
    /// server whose answer makes no progress (its entries end at the cookie asked
    /// for, or it lists `.` or `..` twice in one call) breaks the mount with
    /// [`BadReply::DirNoProgress`].
    pub fn read_dir(
        &self,
        offset: u64,
        intr: &Interrupt,
    ) -> Result<(Vec<DirEntry>, u64), MntError> {
        if !self.opened.is_some_and(|o| o.mode.can_read()) {
            return Err(MntError::NotOpen);
        }
        let count = self.iounit();
        let mux = self.mount.mux();
        let mut entries = Vec::new();
        match self.dialect() {
            Dialect::P2000 => {
                let msg = Msg::Tread {
                    fid: self.fid,
                    offset,
                    count,
                };
                let data = match mux.rpc(msg, intr)? {
                    Msg::Rread { data } if data.len() > count as usize => {
                        return Err(self.overlong(count as usize, data.len()));
                    }
                    Msg::Rread { data } => data,
                    other => return Err(self.mount.wrong_reply(ninep::mtype::TREAD, &other)),
                };
                let mut rest = &data[..];
                while !rest.is_empty() {
                    let (st, used) = Stat::decode(rest)
                        .map_err(|e| MntError::BadReply(BadReply::Decode(e.kind)))?;
                    rest = &rest[used..];
                    entries.push(DirEntry {
                        qid: st.qid,
                        name: st.name.clone(),
                        info: Some(FileInfo::from_stat(st)),
                    });
                }
                Ok((entries, transfer_end(offset, data.len())?))
            }
            Dialect::L => {
                let mut next = offset;
                // Whether this call has seen `.` and `..`: a listing has each once.
                let (mut dot, mut dotdot) = (false, false);
                // A batch of only `.` and `..` is no end: ask again from after it.
                loop {
                    let asked = next;
                    let msg = Msg::Treaddir {
                        fid: self.fid,
                        offset: asked,
                        count,
                    };
                    let data = match mux.rpc(msg, intr)? {
                        Msg::Rreaddir { data } => data,
                        other => {
                            return Err(self.mount.wrong_reply(ninep::mtype::TREADDIR, &other))
                        }
                    };
                    if data.is_empty() {
                        return Ok((entries, next));
                    }
                    let mut rest = &data[..];
                    while !rest.is_empty() {
                        let (d, used): (Dirent, usize) = Dirent::decode(rest)
                            .map_err(|e| MntError::BadReply(BadReply::Decode(e.kind)))?;
                        rest = &rest[used..];
                        next = d.offset;
                        // Plan 9 directories do not list themselves or their parent.
                        let seen = match d.name.as_str() {
                            "." => &mut dot,
                            ".." => &mut dotdot,
                            _ => {
                                entries.push(DirEntry {
                                    qid: d.qid,
                                    name: d.name,
                                    info: None,
                                });
                                continue;
                            }
                        };
                        if core::mem::replace(seen, true) {
                            return Err(self.no_progress(asked));
                        }
                    }
                    // Cookies are the server's own (not always increasing), but one
                    // that ends where we asked would give the same batch again: the
                    // caller (or this loop) would list forever.
                    if next == asked {
                        return Err(self.no_progress(asked));
                    }
                    if !entries.is_empty() {
                        return Ok((entries, next));
                    }
                }
            }
        }
    }

    /// A 9P2000.L directory read from `offset` that goes nowhere: the server is broken.
    fn no_progress(&self, offset: u64) -> MntError {
        let bad = BadReply::DirNoProgress { offset };
        self.mount.mux().break_mount(bad.clone(), None);
        MntError::BadReply(bad)
    }

    /// The file's attributes.
    pub fn stat(&self, intr: &Interrupt) -> Result<FileInfo, MntError> {
        let mux = self.mount.mux();
        match self.dialect() {
            Dialect::P2000 => match mux.rpc(Msg::Tstat { fid: self.fid }, intr)? {
                Msg::Rstat { stat } => Ok(FileInfo::from_stat(stat)),
                other => Err(self.mount.wrong_reply(ninep::mtype::TSTAT, &other)),
            },
            Dialect::L => {
                let msg = Msg::Tgetattr {
                    fid: self.fid,
                    request_mask: getattr::BASIC,
                };
                match mux.rpc(msg, intr)? {
                    Msg::Rgetattr { attr } => {
                        Ok(FileInfo::from_attr(&attr, String::from(self.name())))
                    }
                    other => Err(self.mount.wrong_reply(ninep::mtype::TGETATTR, &other)),
                }
            }
        }
    }

    /// Changes the file's attributes: truncate, rename, chmod, set mtime.
    pub fn wstat(&mut self, changes: &Changes, intr: &Interrupt) -> Result<(), MntError> {
        let mux = self.mount.mux();
        match self.dialect() {
            Dialect::P2000 => {
                let mut st = Stat::dont_touch();
                if let Some(l) = changes.length {
                    st.length = l;
                }
                if let Some(n) = &changes.name {
                    st.name = n.clone();
                }
                if let Some(m) = changes.mode {
                    st.mode = m;
                }
                if let Some(t) = changes.mtime {
                    st.mtime = t;
                }
                match mux.rpc(
                    Msg::Twstat {
                        fid: self.fid,
                        stat: st,
                    },
                    intr,
                )? {
                    Msg::Rwstat => {}
                    other => return Err(self.mount.wrong_reply(ninep::mtype::TWSTAT, &other)),
                }
            }
            Dialect::L => {
                let mut attr = SetAttr::default();
                if let Some(l) = changes.length {
                    attr.valid |= setattr::SIZE;
                    attr.size = l;
                }
                if let Some(m) = changes.mode {
                    attr.valid |= setattr::MODE;
                    attr.mode = m & dm::PERM;
                }
                if let Some(t) = changes.mtime {
                    attr.valid |= setattr::MTIME | setattr::MTIME_SET;
                    attr.mtime_sec = u64::from(t);
                }
                if attr.valid != 0 {
                    match mux.rpc(
                        Msg::Tsetattr {
                            fid: self.fid,
                            attr,
                        },
                        intr,
                    )? {
                        Msg::Rsetattr => {}
                        other => {
                            return Err(self.mount.wrong_reply(ninep::mtype::TSETATTR, &other))
                        }
                    }
                }
                if let Some(n) = &changes.name {
                    self.rename_dotl(n, intr)?;
                }
            }
        }
        if let Some(n) = &changes.name {
            if let Some(last) = self.path.last_mut() {
                last.clone_from(n);
            }
        }
        Ok(())
    }

    /// A 9P2000.L rename within the same directory: `Trename` names the new parent,
    /// reached by walking the attach's root along this channel's path. (If another
    /// client renamed a directory on the way, that walk fails or finds another
    /// directory: the path is only as fresh as this channel's walks.)
    fn rename_dotl(&self, name: &str, intr: &Interrupt) -> Result<(), MntError> {
        let (Some(root), Some((_, parent_path))) = (&self.root, self.path.split_last()) else {
            // The root itself has no parent to rename it in.
            return Err(MntError::Unsupported);
        };
        let names: Vec<&str> = parent_path.iter().map(String::as_str).collect();
        let mux = self.mount.mux();
        // A channel, so that its fid is clunked when it goes, whatever happens.
        let (pfid, pqid) = walk_fid(&self.mount, root.fid, Qid::default(), &names, intr)?;
        let parent = Chan::new(
            self.mount.clone(),
            self.attach,
            pfid,
            pqid,
            self.n_uname,
            None,
        );
        let msg = Msg::Trename {
            fid: self.fid,
            dfid: parent.fid,
            name: String::from(name),
        };
        let r = mux.rpc(msg, intr);
        drop(parent);
        match r? {
            Msg::Rrename => Ok(()),
            other => Err(self.mount.wrong_reply(ninep::mtype::TRENAME, &other)),
        }
    }

    /// Clunks the fid and waits for the server. On any failure (an error reply, a
    /// flush, a broken mount) the fid number is abandoned, never reused.
    pub fn clunk(self, intr: &Interrupt) -> Result<(), MntError> {
        let fid = self.fid;
        self.finish(Msg::Tclunk { fid }, intr)
    }

    /// Removes the file, and clunks the fid (even if the removal fails).
    pub fn remove(self, intr: &Interrupt) -> Result<(), MntError> {
        let fid = self.fid;
        self.finish(Msg::Tremove { fid }, intr)
    }

    fn finish(mut self, msg: Msg, intr: &Interrupt) -> Result<(), MntError> {
        self.live = false;
        let mux = self.mount.mux();
        let r = mux.rpc(msg, intr);
        match &r {
            Ok(_) => mux.release_fid(self.fid),
            // A botched or flushed clunk: the server may still hold the fid.
            Err(_) => mux.abandon_fid(self.fid),
        }
        mux.chan_gone();
        r.map(|_| ())
    }
}

impl Drop for Chan {
    fn drop(&mut self) {
        if !self.live {
            return;
        }
        self.live = false;
        let mux = self.mount.mux();
        if mux.clunk_queued(self.fid).is_err() {
            mux.abandon_fid(self.fid);
        }
        mux.chan_gone();
    }
}

/// Walks from `fid` (whose qid is `qid`) along `names` to a new fid, in `Twalk`s of
/// at most 16 names; returns the new fid, counted as a channel of the mount, and
/// its qid. A walk that stops early fails with [`MntError::WalkIncomplete`].
pub(crate) fn walk_fid(
    mount: &Mount,
    fid: u32,
    qid: Qid,
    names: &[&str],
    intr: &Interrupt,
) -> Result<(u32, Qid), MntError> {
    let mux = mount.mux();
    let newfid = mux.new_chan_fid()?;
    let mut qid = qid;
    let mut walked = 0;
    // Whether newfid exists on the server (after the first step succeeded).
    let mut made = false;
    let steps: Vec<&[&str]> = if names.is_empty() {
        // An empty walk still takes one Twalk: it clones the fid.
        Vec::from([names])
    } else {
        names.chunks(MAXWELEM).collect()
    };
    for step in steps {
        let msg = Msg::Twalk {
            fid: if made { newfid } else { fid },
            newfid,
            wnames: step.iter().map(|n| String::from(*n)).collect(),
        };
        let err = match mux.rpc(msg, intr) {
            Ok(Msg::Rwalk { wqids }) if wqids.len() > step.len() => {
                let bad = BadReply::TooManyQids {
                    names: step.len(),
                    qids: wqids.len(),
                };
                mux.break_mount(bad.clone(), None);
                MntError::BadReply(bad)
            }
            Ok(Msg::Rwalk { wqids }) if wqids.len() < step.len() => MntError::WalkIncomplete {
                walked: walked + wqids.len(),
            },
            Ok(Msg::Rwalk { wqids }) => {
                walked += wqids.len();
                if let Some(q) = wqids.last() {
                    qid = *q;
                }
                made = true;
                continue;
            }
            Ok(other) => mount.wrong_reply(ninep::mtype::TWALK, &other),
            Err(e) => e,
        };
        discard_new_fid(mount, newfid, made, &err);
        return Err(err);
    }
    Ok((newfid, qid))
}

/// After a failed walk: a fid the server holds is clunked (queued); one it never
/// made is free; one nobody can be sure of is abandoned.
fn discard_new_fid(mount: &Mount, newfid: u32, made: bool, err: &MntError) {
    let mux = mount.mux();
    if made {
        if mux.clunk_queued(newfid).is_err() {
            mux.abandon_fid(newfid);
        }
    } else if matches!(err, MntError::WalkIncomplete { .. }) {
        mux.release_fid(newfid);
    } else {
        mount.forget_new_fid(newfid, err);
    }
    mux.chan_gone();
}
