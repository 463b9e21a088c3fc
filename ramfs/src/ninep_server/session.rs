//! One connection's 9P session: the dialect and msize Tversion chose, the fid table,
//! and the requests both dialects share (version, auth, attach, flush, walk, read,
//! write, clunk, remove). The dialect-specific requests are in `p2000` and `linux`.

use crate::id_hash::IdMap;
use std::sync::Arc;

use ninep::{
    decode_view, encode, encoded_len, mtype, om, qt, DecodeError, DecodeErrorKind, Dialect, Fcall,
    Msg, MsgView, Qid, RreadInPlace, IOHDRSZ, MAX_MSIZE, MIN_MSIZE, NOFID, VERSION_UNKNOWN,
};

use super::attach_rule::{claimed_uid, AttachRule};
use super::client_checks::ClientChecks;
use super::trace::{log_message, log_rread, log_write, Direction};
use super::ServerConfig;
use crate::error::{Error, Result};
use crate::fs::{Attr, Cred, FileHandle, FileType, Fs, NodeId, OpenMode, Tree, XattrSetMode};

/// What an open fid may do and where its directory reads stand.
#[derive(Debug, Clone, Default)]
pub(super) struct OpenState {
    pub mode: OpenMode,
    /// Remove the file when the fid is clunked (or the connection drops).
    pub orclose: bool,
    /// 9P2000.L O_APPEND: every write goes to the end.
    pub append: bool,
    /// 9P2000 directory reads: the byte offset where the last read ended…
    pub dir_offset: u64,
    /// …and the sequence number of the last entry it returned.
    pub dir_cursor: u64,
    /// A regular file's data, which the fid's reads go through without the tree lock
    /// (`None` for anything else).
    pub file: Option<FileHandle>,
}

/// An extended attribute being read or written through a fid (9P2000.L).
#[derive(Debug, Clone)]
pub(super) enum XattrFid {
    /// Txattrwalk: a copy of the value (or of the list of names) to read. Its length
    /// is reserved against the memory limit until the fid is clunked.
    Read(Vec<u8>),
    /// Txattrcreate: the value being written, set at clunk. Its `size` is reserved
    /// against the memory limit until then.
    Write {
        name: String,
        size: u64,
        mode: XattrSetMode,
        data: Vec<u8>,
    },
}

/// A fid: a node, the identity it was attached with, and its open state.
#[derive(Debug, Clone)]
pub(super) struct Fid {
    pub node: NodeId,
    pub cred: Arc<Cred>,
    pub open: Option<OpenState>,
    pub xattr: Option<XattrFid>,
}

/// One connection's session.
pub(super) struct Session<'a> {
    pub fs: &'a Fs,
    /// Unique among all connections: the owner of its record locks.
    pub id: u64,
    pub config: &'a ServerConfig,
    /// Set by a successful Tversion.
    pub dialect: Option<Dialect>,
    pub msize: u32,
    pub fids: IdMap<u32, Fid>,
    /// Who this connection may attach as (set by the server from the transport's peer).
    pub attach_rule: AttachRule,
    /// Whether the client's own permission checks are trusted (diod's rule).
    pub client_checks: ClientChecks,
}

/// The qid of a node.
pub(super) fn qid_of(a: &Attr) -> Qid {
    let mut ty = match a.file_type {
        FileType::Directory => qt::DIR,
        FileType::Symlink => qt::SYMLINK,
        _ => qt::FILE,
    };
    if a.append {
        ty |= qt::APPEND;
    }
    if a.excl {
        ty |= qt::EXCL;
    }
    if a.tmp {
        ty |= qt::TMP;
    }
    Qid {
        ty,
        version: a.version,
        path: a.id,
    }
}

impl<'a> Session<'a> {
    pub fn new(fs: &'a Fs, id: u64, config: &'a ServerConfig) -> Session<'a> {
        Session {
            fs,
            id,
            config,
            dialect: None,
            msize: MAX_MSIZE,
            fids: IdMap::default(),
            attach_rule: AttachRule::BelieveNames,
            client_checks: ClientChecks::default(),
        }
    }

    /// The negotiated msize, once Tversion has succeeded.
    pub fn msize(&self) -> Option<u32> {
        self.dialect.map(|_| self.msize)
    }

    /// Most data bytes in one Rread or Twrite.
    pub fn iounit(&self) -> u32 {
        self.msize - IOHDRSZ
    }

    /// Decodes one whole, size-checked message and appends its reply to `out`. A
    /// framing error is returned; every other problem is answered.
    ///
    /// File data is copied once each way: a Twrite's data goes from `msg` into the
    /// tree, an Rread's from the tree into `out`.
    pub fn handle_bytes(
        &mut self,
        msg: &[u8],
        out: &mut Vec<u8>,
    ) -> core::result::Result<(), DecodeError> {
        let dialect = self.dialect.unwrap_or(Dialect::P2000);
        let fc = match decode_view(msg, dialect) {
            Ok(fc) => fc,
            Err(e) if e.is_framing() => return Err(e),
            Err(e) => {
                // Well framed but undecodable: answered on its tag, nothing done.
                let err = match e.kind {
                    DecodeErrorKind::TooManyWalkElems(_) => Error::Invalid,
                    DecodeErrorKind::BadStatSize => Error::BadWstat,
                    DecodeErrorKind::TrailingBytes if e.mtype == Some(mtype::TWSTAT) => {
                        Error::BadWstat
                    }
                    DecodeErrorKind::TrailingBytes => Error::Invalid,
                    _ => Error::BadName,
                };
                let tag = e.tag.unwrap_or(ninep::NOTAG);
                if self.config.trace {
                    tracing::info!("<-{} tag {tag} undecodable: {e}", self.id);
                }
                self.reply(tag, Err(err), out);
                return Ok(());
            }
        };
        let tag = fc.tag;
        match fc.msg {
            MsgView::Twrite { fid, offset, data } => {
                if self.config.trace {
                    log_write(self.id, tag, fid, offset, data.len());
                }
                let result = match self.dialect {
                    Some(_) => self.write(fid, offset, data),
                    None => Err(Error::Botch),
                };
                self.reply(tag, result, out);
            }
            MsgView::Owned(msg) => {
                if self.config.trace {
                    log_message(self.id, Direction::In, tag, &msg);
                }
                if let Msg::Tread { fid, offset, count } = msg {
                    if self.dialect.is_some() {
                        self.read(tag, fid, offset, count, out);
                        return Ok(());
                    }
                }
                let result = self.dispatch(msg);
                self.reply(tag, result, out);
            }
        }
        Ok(())
    }

    /// Encodes a reply (or the error reply of the session's dialect) onto `out`. A
    /// reply that would exceed msize (a long link target in a tiny msize) becomes an
    /// error.
    pub(super) fn reply(&mut self, tag: u16, result: Result<Msg>, out: &mut Vec<u8>) {
        let msg = result.unwrap_or_else(|e| self.error_msg(e));
        let mut fc = Fcall { tag, msg };
        let is_error = matches!(fc.msg, Msg::Rerror { .. } | Msg::Rlerror { .. });
        if !is_error && encoded_len(&fc) > self.msize as usize {
            fc.msg = self.error_msg(Error::CountTooLarge);
        }
        if self.config.trace {
            log_message(self.id, Direction::Out, tag, &fc.msg);
        }
        if encode(&fc, out).is_err() {
            let fc = Fcall {
                tag,
                msg: self.error_msg(Error::Invalid),
            };
            // An error reply is a few bytes and always encodes.
            let _ = encode(&fc, out);
        }
    }

    fn error_msg(&self, e: Error) -> Msg {
        match self.dialect {
            Some(Dialect::L) => Msg::Rlerror { ecode: e.errno() },
            _ => Msg::Rerror {
                ename: e.ename().to_owned(),
            },
        }
    }

    fn dispatch(&mut self, msg: Msg) -> Result<Msg> {
        if let Msg::Tversion { msize, version } = msg {
            return Ok(self.version(msize, &version));
        }
        if !msg.is_request() || matches!(msg, Msg::Rlerror { .. }) {
            return Err(Error::Botch);
        }
        let Some(dialect) = self.dialect else {
            return Err(Error::Botch);
        };
        match msg {
            Msg::Tauth { .. } => Err(Error::NoAuth),
            Msg::Tattach {
                fid,
                afid,
                uname,
                aname,
                n_uname,
            } => self.attach(fid, afid, &uname, &aname, n_uname),
            Msg::Tflush { .. } => Ok(Msg::Rflush),
            Msg::Twalk {
                fid,
                newfid,
                wnames,
            } => self.walk(fid, newfid, &wnames),
            // `handle_bytes` answers Tread in place and decodes Twrite borrowed; a
            // Twrite decoded owned is answered all the same.
            Msg::Twrite { fid, offset, data } => self.write(fid, offset, &data),
            Msg::Tclunk { fid } => self.clunk(fid).map(|()| Msg::Rclunk),
            Msg::Tremove { fid } => self.remove(fid).map(|()| Msg::Rremove),
            other => match dialect {
                Dialect::P2000 => self.dispatch_p2000(other),
                Dialect::L => self.dispatch_linux(other),
            },
        }
    }

    // ---- fids -------------------------------------------------------------------

    pub fn fid(&self, fid: u32) -> Result<&Fid> {
        self.fids.get(&fid).ok_or(Error::UnknownFid)
    }

    pub fn fid_mut(&mut self, fid: u32) -> Result<&mut Fid> {
        self.fids.get_mut(&fid).ok_or(Error::UnknownFid)
    }

    /// A fid that names a node and is not open: what walk, open and create start from.
    pub fn unopened_fid(&self, fid: u32) -> Result<&Fid> {
        let f = self.fid(fid)?;
        if f.open.is_some() || f.xattr.is_some() {
            return Err(Error::BadFidUse);
        }
        Ok(f)
    }

    /// Checks that `newfid` may be bound to a new node.
    pub fn check_new_fid(&self, newfid: u32) -> Result<()> {
        if self.fids.contains_key(&newfid) {
            return Err(Error::FidInUse);
        }
        if self.fids.len() >= self.config.max_fids {
            return Err(Error::TooManyFids);
        }
        Ok(())
    }

    /// Binds `fid` to `node`, taking a tree reference (the caller checked the fid).
    pub fn bind(&mut self, tree: &mut Tree, fid: u32, node: NodeId, cred: Arc<Cred>) -> Result<()> {
        tree.incref(node)?;
        self.fids.insert(
            fid,
            Fid {
                node,
                cred,
                open: None,
                xattr: None,
            },
        );
        Ok(())
    }

    /// Ends a fid's use of its node: a pending xattr is set (a read copy given back),
    /// an ORCLOSE file removed, the open closed, the reference dropped.
    fn release(&self, tree: &mut Tree, f: Fid) -> Result<()> {
        let mut result = Ok(());
        match f.xattr {
            Some(XattrFid::Write {
                name,
                size,
                mode,
                data,
            }) => {
                tree.release_pending(size);
                result = if data.len() as u64 != size {
                    Err(Error::Range)
                } else if size == 0 {
                    tree.xattr_remove(&f.cred, f.node, &name)
                } else {
                    tree.xattr_set(&f.cred, f.node, &name, data, mode)
                };
            }
            Some(XattrFid::Read(value)) => tree.release_pending(value.len() as u64),
            None => {}
        }
        if let Some(open) = f.open {
            if open.orclose {
                // Permission was checked at open; a failure here (a full directory)
                // has nobody to report to.
                let _ = tree.remove(None, f.node);
            }
            tree.close(f.node);
        }
        tree.decref(f.node);
        result
    }

    /// Clunks every fid (Tversion, end of connection).
    fn clunk_all(&mut self) {
        let fids: Vec<Fid> = self.fids.drain().map(|(_, f)| f).collect();
        if fids.is_empty() {
            return;
        }
        let mut tree = self.fs.lock();
        for f in fids {
            let _ = self.release(&mut tree, f);
        }
    }

    /// The connection is gone: destroy its fids and drop its record locks.
    pub fn shutdown(&mut self) {
        self.clunk_all();
        self.fs.lock().release_session_locks(self.id);
    }

    // ---- shared requests --------------------------------------------------------

    fn version(&mut self, msize: u32, version: &str) -> Msg {
        self.clunk_all();
        self.fs.lock().release_session_locks(self.id);
        self.client_checks = ClientChecks::default();
        let dialect = if version == ninep::VERSION_9P2000L {
            Some(Dialect::L)
        } else if version.starts_with("9P") {
            Some(Dialect::P2000)
        } else {
            None
        };
        self.dialect = dialect;
        self.msize = msize.clamp(MIN_MSIZE, MAX_MSIZE);
        Msg::Rversion {
            msize: self.msize,
            version: dialect
                .map_or(VERSION_UNKNOWN, |d| d.version_str())
                .to_owned(),
        }
    }

    fn attach(
        &mut self,
        fid: u32,
        afid: u32,
        uname: &str,
        aname: &str,
        n_uname: Option<u32>,
    ) -> Result<Msg> {
        if afid != NOFID {
            return Err(Error::UnknownFid);
        }
        self.check_new_fid(fid)?;
        let fs = self.fs;
        let mut tree = fs.lock();
        self.check_attach_rule(&tree, uname, n_uname)?;
        let cred = match (self.dialect, n_uname) {
            (Some(Dialect::L), Some(uid)) if uid != u32::MAX => tree.cred_for_uid(uid, None),
            (Some(Dialect::L), _) => {
                let uid = tree.user_id(if uname.is_empty() { "none" } else { uname })?;
                tree.cred_for_uid(uid, None)
            }
            _ => tree.cred_for_name(uname)?,
        };
        let cred = self.client_checks.cred_for_attach(cred);
        let mut node = tree.root();
        for name in aname.split('/').filter(|n| !n.is_empty()) {
            node = tree.lookup(&cred, node, name)?;
        }
        let qid = qid_of(&tree.attr(node)?);
        self.bind(&mut tree, fid, node, Arc::new(cred.clone()))?;
        self.client_checks.attached(&cred);
        Ok(Msg::Rattach { qid })
    }

    /// Refuses an attach as someone the connection's peer may not be (before the name
    /// is registered or the tree is touched).
    fn check_attach_rule(&self, tree: &Tree, uname: &str, n_uname: Option<u32>) -> Result<()> {
        let dialect = self.dialect.unwrap_or(Dialect::P2000);
        let claimed = claimed_uid(tree, dialect, uname, n_uname);
        if self.attach_rule.permits(claimed) {
            return Ok(());
        }
        tracing::warn!(
            "connection {}: attach as {uname:?} (n_uname {n_uname:?}, uid {claimed:?}) refused: {:?}",
            self.id,
            self.attach_rule
        );
        Err(Error::NotPermitted)
    }

    fn walk(&mut self, fid: u32, newfid: u32, wnames: &[String]) -> Result<Msg> {
        let f = self.fid(fid)?;
        // Plan 9 walks no open fid (walk(5)). Linux's 9P2000.L client clones fids it has
        // opened (under cache=loose, to open a hard link's other name), as diod and
        // QEMU allow; the new fid starts unopened. A walk onto itself would drop the
        // open, so that stays refused.
        let may_walk_open = self.dialect == Some(Dialect::L) && newfid != fid;
        if f.xattr.is_some() || (f.open.is_some() && !may_walk_open) {
            return Err(Error::BadFidUse);
        }
        let (start, cred) = (f.node, f.cred.clone());
        if newfid == fid {
            return self.walk_in_place(fid, start, cred, wnames);
        }
        self.check_new_fid(newfid)?;
        // A walk to a new fid only looks names up and takes a reference: the shared
        // lock does.
        let tree = self.fs.lock_shared();
        let (node, wqids) = walk_names(&tree, &cred, start, wnames)?;
        if wqids.len() == wnames.len() {
            tree.incref(node)?;
            self.fids.insert(
                newfid,
                Fid {
                    node,
                    cred,
                    open: None,
                    xattr: None,
                },
            );
        }
        Ok(Msg::Rwalk { wqids })
    }

    /// A walk that moves `fid` itself: its old reference is dropped, which may destroy
    /// a removed node, so this takes the exclusive lock.
    fn walk_in_place(
        &mut self,
        fid: u32,
        start: NodeId,
        cred: Arc<Cred>,
        wnames: &[String],
    ) -> Result<Msg> {
        let fs = self.fs;
        let mut tree = fs.lock();
        let (node, wqids) = walk_names(&tree, &cred, start, wnames)?;
        if wqids.len() == wnames.len() {
            tree.incref(node)?;
            if let Some(old) = self.fids.insert(
                fid,
                Fid {
                    node,
                    cred,
                    open: None,
                    xattr: None,
                },
            ) {
                tree.decref(old.node);
            }
        }
        Ok(Msg::Rwalk { wqids })
    }

    /// Answers a Tread, building the Rread in `out` in place: the data goes from the
    /// file's pages (or the fid's xattr value, or the directory's records) straight
    /// after the reply's header, which `RreadInPlace` then completes; an error takes the
    /// header back off and is answered instead.
    fn read(&mut self, tag: u16, fid: u32, offset: u64, count: u32, out: &mut Vec<u8>) {
        match self.read_in_place(tag, fid, offset, count, out) {
            Ok(count) if self.config.trace => log_rread(self.id, tag, count),
            Ok(_) => {}
            Err(e) => self.reply(tag, Err(e), out),
        }
    }

    fn read_in_place(
        &mut self,
        tag: u16,
        fid: u32,
        offset: u64,
        count: u32,
        out: &mut Vec<u8>,
    ) -> Result<u32> {
        // An Rread's header is smaller than IOHDRSZ, so the reply fits msize.
        let count = count.min(self.iounit()) as usize;
        let f = self.fid(fid)?;
        if let Some(XattrFid::Read(value)) = &f.xattr {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(value.len());
            let end = start.saturating_add(count).min(value.len());
            let mut reply = RreadInPlace::begin(out, tag, end - start);
            reply.push(&value[start..end]);
            return reply.finish().map_err(|_| Error::CountTooLarge);
        }
        let open = f.open.as_ref().ok_or(Error::BadFidUse)?;
        if !(open.mode.read || open.mode.exec) {
            return Err(Error::BadFidUse);
        }
        let node = f.node;
        let fs = self.fs;
        let tree = fs.lock_shared();
        let mut reply = RreadInPlace::begin(out, tag, count);
        match tree.read_with(node, offset, count, |bytes| reply.push(bytes)) {
            Ok(_) => reply.finish().map_err(|_| Error::CountTooLarge),
            // 9P2000 reads a directory as its stat records (9P2000.L has Treaddir).
            Err(Error::IsDir) if self.dialect == Some(Dialect::P2000) => {
                drop(reply);
                let data = self.read_dir_p2000(&tree, fid, offset, count)?;
                let mut reply = RreadInPlace::begin(out, tag, data.len());
                reply.push(&data);
                reply.finish().map_err(|_| Error::CountTooLarge)
            }
            Err(e) => Err(e),
        }
    }

    fn write(&mut self, fid: u32, offset: u64, data: &[u8]) -> Result<Msg> {
        if data.len() > self.iounit() as usize {
            return Err(Error::CountTooLarge);
        }
        let f = self.fid_mut(fid)?;
        if let Some(XattrFid::Write {
            size, data: buf, ..
        }) = &mut f.xattr
        {
            if offset != buf.len() as u64 || buf.len() as u64 + data.len() as u64 > *size {
                return Err(Error::Range);
            }
            buf.extend_from_slice(data);
            return Ok(Msg::Rwrite {
                count: data.len() as u32,
            });
        }
        let open = f.open.as_ref().ok_or(Error::BadFidUse)?;
        if !open.mode.write {
            return Err(Error::BadFidUse);
        }
        let (node, append, cred) = (f.node, open.append, f.cred.clone());
        let count = self.fs.write(&cred, node, offset, data, append)?;
        Ok(Msg::Rwrite { count })
    }

    fn clunk(&mut self, fid: u32) -> Result<()> {
        let f = self.fids.remove(&fid).ok_or(Error::UnknownFid)?;
        let mut tree = self.fs.lock();
        self.release(&mut tree, f)
    }

    fn remove(&mut self, fid: u32) -> Result<()> {
        // The fid is clunked whether or not the remove succeeds.
        let f = self.fids.remove(&fid).ok_or(Error::UnknownFid)?;
        let mut tree = self.fs.lock();
        let result = tree.remove(Some(&f.cred), f.node);
        let _ = self.release(&mut tree, f);
        result
    }

    // ---- helpers for the dialects ------------------------------------------------

    /// Opens the node of an unopened fid and records the open state.
    pub fn open_fid(
        &mut self,
        tree: &mut Tree,
        fid: u32,
        mode: OpenMode,
        orclose: bool,
        append: bool,
        check: bool,
    ) -> Result<Qid> {
        let f = self.unopened_fid(fid)?;
        let (node, cred) = (f.node, f.cred.clone());
        if orclose && check {
            tree.check_remove(&cred, node)?;
        }
        tree.open(&cred, node, mode, check)?;
        let qid = qid_of(&tree.attr(node)?);
        let file = tree.file_handle(node);
        let f = self.fid_mut(fid)?;
        f.open = Some(OpenState {
            mode,
            orclose,
            append,
            file,
            ..Default::default()
        });
        Ok(qid)
    }

    /// Moves an unopened directory fid to a node it just created (9P2000 Tcreate,
    /// 9P2000.L Tlcreate), then opens it without a permission check.
    pub fn become_created(
        &mut self,
        tree: &mut Tree,
        fid: u32,
        node: NodeId,
        mode: OpenMode,
        orclose: bool,
        append: bool,
    ) -> Result<Qid> {
        tree.incref(node)?;
        let f = self.fid_mut(fid)?;
        let old = std::mem::replace(&mut f.node, node);
        tree.decref(old);
        self.open_fid(tree, fid, mode, orclose, append, false)
    }
}

/// Looks up `wnames` from `start` as a Twalk does: the node reached and the qids of
/// the steps taken (fewer than asked if a later step failed; the first step's failure
/// is the walk's error).
fn walk_names(
    tree: &Tree,
    cred: &Cred,
    start: NodeId,
    wnames: &[String],
) -> Result<(NodeId, Vec<Qid>)> {
    let mut node = start;
    let mut wqids = Vec::with_capacity(wnames.len());
    for (i, name) in wnames.iter().enumerate() {
        match tree.lookup(cred, node, name) {
            Ok(next) => {
                node = next;
                wqids.push(qid_of(&tree.attr(node)?));
            }
            Err(e) if i == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok((node, wqids))
}

/// The access a 9P2000 open mode asks for.
pub(super) fn p2000_open_mode(mode: u8) -> OpenMode {
    let (read, write, exec) = match mode & om::ACCMODE {
        om::READ => (true, false, false),
        om::WRITE => (false, true, false),
        om::RDWR => (true, true, false),
        _ => (false, false, true),
    };
    OpenMode {
        read,
        write,
        exec,
        truncate: mode & om::TRUNC != 0,
    }
}
