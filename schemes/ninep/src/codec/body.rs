//! The layout of every message body, after `size[4] type[1] tag[2]`.
//!
//! [`put`] and [`get`] list the messages in the same order so that each layout can be
//! read against its mirror image.

use alloc::vec::Vec;

use super::wire::{Reader, Sink, Writer};
use super::{DecodeErrorKind, EncodeError};
use crate::consts::{mtype, MAXWELEM};
use crate::msg::{Attr, Dialect, GetLock, LockReq, Msg, SetAttr, StatFs};

/// Writes the body of `m`.
pub(super) fn put<S: Sink>(m: &Msg, w: &mut Writer<S>) {
    match m {
        Msg::Tversion { msize, version } | Msg::Rversion { msize, version } => {
            w.u32(*msize);
            w.string(version);
        }
        Msg::Tauth {
            afid,
            uname,
            aname,
            n_uname,
        } => {
            w.u32(*afid);
            w.string(uname);
            w.string(aname);
            if let Some(n) = n_uname {
                w.u32(*n);
            }
        }
        Msg::Tattach {
            fid,
            afid,
            uname,
            aname,
            n_uname,
        } => {
            w.u32(*fid);
            w.u32(*afid);
            w.string(uname);
            w.string(aname);
            if let Some(n) = n_uname {
                w.u32(*n);
            }
        }
        Msg::Rauth { aqid: qid }
        | Msg::Rattach { qid }
        | Msg::Rsymlink { qid }
        | Msg::Rmknod { qid }
        | Msg::Rmkdir { qid } => w.qid(qid),
        Msg::Rerror { ename } => w.string(ename),
        Msg::Rlerror { ecode } => w.u32(*ecode),
        Msg::Tflush { oldtag } => w.u16(*oldtag),
        Msg::Rflush
        | Msg::Rclunk
        | Msg::Rremove
        | Msg::Rwstat
        | Msg::Rrename
        | Msg::Rsetattr
        | Msg::Rxattrcreate
        | Msg::Rfsync
        | Msg::Rlink
        | Msg::Rrenameat
        | Msg::Runlinkat => {}
        Msg::Twalk {
            fid,
            newfid,
            wnames,
        } => {
            w.u32(*fid);
            w.u32(*newfid);
            put_walk_count(w, wnames.len());
            for name in wnames {
                w.string(name);
            }
        }
        Msg::Rwalk { wqids } => {
            put_walk_count(w, wqids.len());
            for q in wqids {
                w.qid(q);
            }
        }
        Msg::Topen { fid, mode } => {
            w.u32(*fid);
            w.u8(*mode);
        }
        Msg::Ropen { qid, iounit }
        | Msg::Rcreate { qid, iounit }
        | Msg::Rlopen { qid, iounit }
        | Msg::Rlcreate { qid, iounit } => {
            w.qid(qid);
            w.u32(*iounit);
        }
        Msg::Tcreate {
            fid,
            name,
            perm,
            mode,
        } => {
            w.u32(*fid);
            w.string(name);
            w.u32(*perm);
            w.u8(*mode);
        }
        Msg::Tread { fid, offset, count } | Msg::Treaddir { fid, offset, count } => {
            w.u32(*fid);
            w.u64(*offset);
            w.u32(*count);
        }
        Msg::Rread { data } | Msg::Rreaddir { data } => w.counted_bytes(data),
        Msg::Twrite { fid, offset, data } => {
            w.u32(*fid);
            w.u64(*offset);
            w.counted_bytes(data);
        }
        Msg::Rwrite { count } => w.u32(*count),
        Msg::Tclunk { fid }
        | Msg::Tremove { fid }
        | Msg::Tstat { fid }
        | Msg::Tstatfs { fid }
        | Msg::Treadlink { fid } => w.u32(*fid),
        Msg::Rstat { stat } => w.sized_stat(stat),
        Msg::Twstat { fid, stat } => {
            w.u32(*fid);
            w.sized_stat(stat);
        }
        Msg::Rstatfs { statfs } => put_statfs(w, statfs),
        Msg::Tlopen { fid, flags } => {
            w.u32(*fid);
            w.u32(*flags);
        }
        Msg::Tlcreate {
            fid,
            name,
            flags,
            mode,
            gid,
        } => {
            w.u32(*fid);
            w.string(name);
            w.u32(*flags);
            w.u32(*mode);
            w.u32(*gid);
        }
        Msg::Tsymlink {
            fid,
            name,
            symtgt,
            gid,
        } => {
            w.u32(*fid);
            w.string(name);
            w.string(symtgt);
            w.u32(*gid);
        }
        Msg::Tmknod {
            dfid,
            name,
            mode,
            major,
            minor,
            gid,
        } => {
            w.u32(*dfid);
            w.string(name);
            w.u32(*mode);
            w.u32(*major);
            w.u32(*minor);
            w.u32(*gid);
        }
        Msg::Trename { fid, dfid, name } => {
            w.u32(*fid);
            w.u32(*dfid);
            w.string(name);
        }
        Msg::Rreadlink { target } => w.string(target),
        Msg::Tgetattr { fid, request_mask } => {
            w.u32(*fid);
            w.u64(*request_mask);
        }
        Msg::Rgetattr { attr } => put_attr(w, attr),
        Msg::Tsetattr { fid, attr } => {
            w.u32(*fid);
            put_setattr(w, attr);
        }
        Msg::Txattrwalk { fid, newfid, name } => {
            w.u32(*fid);
            w.u32(*newfid);
            w.string(name);
        }
        Msg::Rxattrwalk { size } => w.u64(*size),
        Msg::Txattrcreate {
            fid,
            name,
            attr_size,
            flags,
        } => {
            w.u32(*fid);
            w.string(name);
            w.u64(*attr_size);
            w.u32(*flags);
        }
        Msg::Tfsync { fid, datasync } => {
            w.u32(*fid);
            w.u32(*datasync);
        }
        Msg::Tlock { fid, lock } => {
            w.u32(*fid);
            put_lockreq(w, lock);
        }
        Msg::Rlock { status } => w.u8(*status),
        Msg::Tgetlock { fid, lock } => {
            w.u32(*fid);
            put_getlock(w, lock);
        }
        Msg::Rgetlock { lock } => put_getlock(w, lock),
        Msg::Tlink { dfid, fid, name } => {
            w.u32(*dfid);
            w.u32(*fid);
            w.string(name);
        }
        Msg::Tmkdir {
            dfid,
            name,
            mode,
            gid,
        } => {
            w.u32(*dfid);
            w.string(name);
            w.u32(*mode);
            w.u32(*gid);
        }
        Msg::Trenameat {
            olddirfid,
            oldname,
            newdirfid,
            newname,
        } => {
            w.u32(*olddirfid);
            w.string(oldname);
            w.u32(*newdirfid);
            w.string(newname);
        }
        Msg::Tunlinkat { dirfd, name, flags } => {
            w.u32(*dirfd);
            w.string(name);
            w.u32(*flags);
        }
    }
}

/// `nwname[2]`/`nwqid[2]`: at most [`MAXWELEM`].
fn put_walk_count<S: Sink>(w: &mut Writer<S>, n: usize) {
    if n > MAXWELEM {
        w.fail(EncodeError::TooManyWalkElems);
    }
    w.u16_len(n, EncodeError::TooManyWalkElems);
}

fn put_statfs<S: Sink>(w: &mut Writer<S>, s: &StatFs) {
    w.u32(s.ty);
    w.u32(s.bsize);
    w.u64(s.blocks);
    w.u64(s.bfree);
    w.u64(s.bavail);
    w.u64(s.files);
    w.u64(s.ffree);
    w.u64(s.fsid);
    w.u32(s.namelen);
}

fn put_attr<S: Sink>(w: &mut Writer<S>, a: &Attr) {
    w.u64(a.valid);
    w.qid(&a.qid);
    w.u32(a.mode);
    w.u32(a.uid);
    w.u32(a.gid);
    for v in [
        a.nlink,
        a.rdev,
        a.size,
        a.blksize,
        a.blocks,
        a.atime_sec,
        a.atime_nsec,
        a.mtime_sec,
        a.mtime_nsec,
        a.ctime_sec,
        a.ctime_nsec,
        a.btime_sec,
        a.btime_nsec,
        a.gen,
        a.data_version,
    ] {
        w.u64(v);
    }
}

fn put_setattr<S: Sink>(w: &mut Writer<S>, a: &SetAttr) {
    w.u32(a.valid);
    w.u32(a.mode);
    w.u32(a.uid);
    w.u32(a.gid);
    w.u64(a.size);
    w.u64(a.atime_sec);
    w.u64(a.atime_nsec);
    w.u64(a.mtime_sec);
    w.u64(a.mtime_nsec);
}

fn put_lockreq<S: Sink>(w: &mut Writer<S>, l: &LockReq) {
    w.u8(l.ty);
    w.u32(l.flags);
    w.u64(l.start);
    w.u64(l.length);
    w.u32(l.proc_id);
    w.string(&l.client_id);
}

fn put_getlock<S: Sink>(w: &mut Writer<S>, l: &GetLock) {
    w.u8(l.ty);
    w.u64(l.start);
    w.u64(l.length);
    w.u32(l.proc_id);
    w.string(&l.client_id);
}

/// Reads the body of a message of type `t`. Struct literals evaluate their fields in
/// the order written, which is the wire order.
pub(super) fn get(t: u8, r: &mut Reader<'_>, dialect: Dialect) -> Result<Msg, DecodeErrorKind> {
    use mtype::*;
    let m = match t {
        TVERSION => Msg::Tversion {
            msize: r.u32()?,
            version: r.string()?,
        },
        RVERSION => Msg::Rversion {
            msize: r.u32()?,
            version: r.string()?,
        },
        TAUTH => Msg::Tauth {
            afid: r.u32()?,
            uname: r.string()?,
            aname: r.string()?,
            n_uname: n_uname(r, dialect)?,
        },
        TATTACH => Msg::Tattach {
            fid: r.u32()?,
            afid: r.u32()?,
            uname: r.string()?,
            aname: r.string()?,
            n_uname: n_uname(r, dialect)?,
        },
        RAUTH => Msg::Rauth { aqid: r.qid()? },
        RATTACH => Msg::Rattach { qid: r.qid()? },
        RSYMLINK => Msg::Rsymlink { qid: r.qid()? },
        RMKNOD => Msg::Rmknod { qid: r.qid()? },
        RMKDIR => Msg::Rmkdir { qid: r.qid()? },
        RERROR => Msg::Rerror { ename: r.string()? },
        RLERROR => Msg::Rlerror { ecode: r.u32()? },
        TFLUSH => Msg::Tflush { oldtag: r.u16()? },
        RFLUSH => Msg::Rflush,
        RCLUNK => Msg::Rclunk,
        RREMOVE => Msg::Rremove,
        RWSTAT => Msg::Rwstat,
        RRENAME => Msg::Rrename,
        RSETATTR => Msg::Rsetattr,
        RXATTRCREATE => Msg::Rxattrcreate,
        RFSYNC => Msg::Rfsync,
        RLINK => Msg::Rlink,
        RRENAMEAT => Msg::Rrenameat,
        RUNLINKAT => Msg::Runlinkat,
        TWALK => Msg::Twalk {
            fid: r.u32()?,
            newfid: r.u32()?,
            wnames: {
                // Each name takes at least its len[2].
                let n = get_walk_count(r, 2)?;
                let mut names = Vec::with_capacity(n);
                for _ in 0..n {
                    names.push(r.string()?);
                }
                names
            },
        },
        RWALK => Msg::Rwalk {
            wqids: {
                let n = get_walk_count(r, crate::msg::QID_LEN)?;
                let mut qids = Vec::with_capacity(n);
                for _ in 0..n {
                    qids.push(r.qid()?);
                }
                qids
            },
        },
        TOPEN => Msg::Topen {
            fid: r.u32()?,
            mode: r.u8()?,
        },
        ROPEN => Msg::Ropen {
            qid: r.qid()?,
            iounit: r.u32()?,
        },
        RCREATE => Msg::Rcreate {
            qid: r.qid()?,
            iounit: r.u32()?,
        },
        RLOPEN => Msg::Rlopen {
            qid: r.qid()?,
            iounit: r.u32()?,
        },
        RLCREATE => Msg::Rlcreate {
            qid: r.qid()?,
            iounit: r.u32()?,
        },
        TCREATE => Msg::Tcreate {
            fid: r.u32()?,
            name: r.string()?,
            perm: r.u32()?,
            mode: r.u8()?,
        },
        TREAD => Msg::Tread {
            fid: r.u32()?,
            offset: r.u64()?,
            count: r.u32()?,
        },
        TREADDIR => Msg::Treaddir {
            fid: r.u32()?,
            offset: r.u64()?,
            count: r.u32()?,
        },
        RREAD => Msg::Rread {
            data: r.counted_bytes()?,
        },
        RREADDIR => Msg::Rreaddir {
            data: r.counted_bytes()?,
        },
        TWRITE => Msg::Twrite {
            fid: r.u32()?,
            offset: r.u64()?,
            data: r.counted_bytes()?,
        },
        RWRITE => Msg::Rwrite { count: r.u32()? },
        TCLUNK => Msg::Tclunk { fid: r.u32()? },
        TREMOVE => Msg::Tremove { fid: r.u32()? },
        TSTAT => Msg::Tstat { fid: r.u32()? },
        TSTATFS => Msg::Tstatfs { fid: r.u32()? },
        TREADLINK => Msg::Treadlink { fid: r.u32()? },
        RSTAT => Msg::Rstat {
            stat: r.sized_stat()?,
        },
        TWSTAT => Msg::Twstat {
            fid: r.u32()?,
            stat: r.sized_stat()?,
        },
        RSTATFS => Msg::Rstatfs {
            statfs: get_statfs(r)?,
        },
        TLOPEN => Msg::Tlopen {
            fid: r.u32()?,
            flags: r.u32()?,
        },
        TLCREATE => Msg::Tlcreate {
            fid: r.u32()?,
            name: r.string()?,
            flags: r.u32()?,
            mode: r.u32()?,
            gid: r.u32()?,
        },
        TSYMLINK => Msg::Tsymlink {
            fid: r.u32()?,
            name: r.string()?,
            symtgt: r.string()?,
            gid: r.u32()?,
        },
        TMKNOD => Msg::Tmknod {
            dfid: r.u32()?,
            name: r.string()?,
            mode: r.u32()?,
            major: r.u32()?,
            minor: r.u32()?,
            gid: r.u32()?,
        },
        TRENAME => Msg::Trename {
            fid: r.u32()?,
            dfid: r.u32()?,
            name: r.string()?,
        },
        RREADLINK => Msg::Rreadlink {
            target: r.string()?,
        },
        TGETATTR => Msg::Tgetattr {
            fid: r.u32()?,
            request_mask: r.u64()?,
        },
        RGETATTR => Msg::Rgetattr { attr: get_attr(r)? },
        TSETATTR => Msg::Tsetattr {
            fid: r.u32()?,
            attr: get_setattr(r)?,
        },
        TXATTRWALK => Msg::Txattrwalk {
            fid: r.u32()?,
            newfid: r.u32()?,
            name: r.string()?,
        },
        RXATTRWALK => Msg::Rxattrwalk { size: r.u64()? },
        TXATTRCREATE => Msg::Txattrcreate {
            fid: r.u32()?,
            name: r.string()?,
            attr_size: r.u64()?,
            flags: r.u32()?,
        },
        TFSYNC => Msg::Tfsync {
            fid: r.u32()?,
            datasync: r.u32()?,
        },
        TLOCK => Msg::Tlock {
            fid: r.u32()?,
            lock: get_lockreq(r)?,
        },
        RLOCK => Msg::Rlock { status: r.u8()? },
        TGETLOCK => Msg::Tgetlock {
            fid: r.u32()?,
            lock: get_getlock(r)?,
        },
        RGETLOCK => Msg::Rgetlock {
            lock: get_getlock(r)?,
        },
        TLINK => Msg::Tlink {
            dfid: r.u32()?,
            fid: r.u32()?,
            name: r.string()?,
        },
        TMKDIR => Msg::Tmkdir {
            dfid: r.u32()?,
            name: r.string()?,
            mode: r.u32()?,
            gid: r.u32()?,
        },
        TRENAMEAT => Msg::Trenameat {
            olddirfid: r.u32()?,
            oldname: r.string()?,
            newdirfid: r.u32()?,
            newname: r.string()?,
        },
        TUNLINKAT => Msg::Tunlinkat {
            dirfd: r.u32()?,
            name: r.string()?,
            flags: r.u32()?,
        },
        // Includes Terror (106) and Tlerror (6), which are never sent.
        _ => return Err(DecodeErrorKind::UnknownType(t)),
    };
    Ok(m)
}

/// 9P2000.L appends a numeric uid to `Tauth` and `Tattach`.
fn n_uname(r: &mut Reader<'_>, dialect: Dialect) -> Result<Option<u32>, DecodeErrorKind> {
    match dialect {
        Dialect::L => Ok(Some(r.u32()?)),
        Dialect::P2000 => Ok(None),
    }
}

/// Reads `nwname[2]`/`nwqid[2]` and checks it against [`MAXWELEM`] and against the
/// bytes that remain (each element taking at least `min_elem_len`), before the caller
/// reserves room for the elements.
fn get_walk_count(r: &mut Reader<'_>, min_elem_len: usize) -> Result<usize, DecodeErrorKind> {
    let n = r.u16()?;
    let count = usize::from(n);
    if count > MAXWELEM {
        return Err(DecodeErrorKind::TooManyWalkElems(n));
    }
    if count * min_elem_len > r.remaining() {
        return Err(DecodeErrorKind::Overrun);
    }
    Ok(count)
}

fn get_statfs(r: &mut Reader<'_>) -> Result<StatFs, DecodeErrorKind> {
    Ok(StatFs {
        ty: r.u32()?,
        bsize: r.u32()?,
        blocks: r.u64()?,
        bfree: r.u64()?,
        bavail: r.u64()?,
        files: r.u64()?,
        ffree: r.u64()?,
        fsid: r.u64()?,
        namelen: r.u32()?,
    })
}

fn get_attr(r: &mut Reader<'_>) -> Result<Attr, DecodeErrorKind> {
    Ok(Attr {
        valid: r.u64()?,
        qid: r.qid()?,
        mode: r.u32()?,
        uid: r.u32()?,
        gid: r.u32()?,
        nlink: r.u64()?,
        rdev: r.u64()?,
        size: r.u64()?,
        blksize: r.u64()?,
        blocks: r.u64()?,
        atime_sec: r.u64()?,
        atime_nsec: r.u64()?,
        mtime_sec: r.u64()?,
        mtime_nsec: r.u64()?,
        ctime_sec: r.u64()?,
        ctime_nsec: r.u64()?,
        btime_sec: r.u64()?,
        btime_nsec: r.u64()?,
        gen: r.u64()?,
        data_version: r.u64()?,
    })
}

fn get_setattr(r: &mut Reader<'_>) -> Result<SetAttr, DecodeErrorKind> {
    Ok(SetAttr {
        valid: r.u32()?,
        mode: r.u32()?,
        uid: r.u32()?,
        gid: r.u32()?,
        size: r.u64()?,
        atime_sec: r.u64()?,
        atime_nsec: r.u64()?,
        mtime_sec: r.u64()?,
        mtime_nsec: r.u64()?,
    })
}

fn get_lockreq(r: &mut Reader<'_>) -> Result<LockReq, DecodeErrorKind> {
    Ok(LockReq {
        ty: r.u8()?,
        flags: r.u32()?,
        start: r.u64()?,
        length: r.u64()?,
        proc_id: r.u32()?,
        client_id: r.string()?,
    })
}

fn get_getlock(r: &mut Reader<'_>) -> Result<GetLock, DecodeErrorKind> {
    Ok(GetLock {
        ty: r.u8()?,
        start: r.u64()?,
        length: r.u64()?,
        proc_id: r.u32()?,
        client_id: r.string()?,
    })
}
