//! Proptest strategies for every message of both dialects, shared by the test files.
#![allow(dead_code)]

use ninep::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::Union;

/// A wire string: UTF-8 without NUL, sometimes empty, sometimes not ASCII.
pub fn name() -> impl Strategy<Value = String> {
    "[^\\x00]{0,12}"
}

pub fn qid() -> impl Strategy<Value = Qid> {
    (any::<u8>(), any::<u32>(), any::<u64>()).prop_map(|(ty, version, path)| Qid {
        ty,
        version,
        path,
    })
}

pub fn data() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..48)
}

pub fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<u16>(), any::<u32>(), qid(), any::<u32>()),
        (any::<u32>(), any::<u32>(), any::<u64>()),
        (name(), name(), name(), name()),
    )
        .prop_map(
            |((ty, dev, qid, mode), (atime, mtime, length), (name, uid, gid, muid))| Stat {
                ty,
                dev,
                qid,
                mode,
                atime,
                mtime,
                length,
                name,
                uid,
                gid,
                muid,
            },
        )
}

pub fn dirent() -> impl Strategy<Value = Dirent> {
    (qid(), any::<u64>(), any::<u8>(), name()).prop_map(|(qid, offset, ty, name)| Dirent {
        qid,
        offset,
        ty,
        name,
    })
}

pub fn attr() -> impl Strategy<Value = Attr> {
    (
        (
            any::<u64>(),
            qid(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        ),
        any::<[u64; 15]>(),
    )
        .prop_map(|((valid, qid, mode, uid, gid), v)| Attr {
            valid,
            qid,
            mode,
            uid,
            gid,
            nlink: v[0],
            rdev: v[1],
            size: v[2],
            blksize: v[3],
            blocks: v[4],
            atime_sec: v[5],
            atime_nsec: v[6],
            mtime_sec: v[7],
            mtime_nsec: v[8],
            ctime_sec: v[9],
            ctime_nsec: v[10],
            btime_sec: v[11],
            btime_nsec: v[12],
            gen: v[13],
            data_version: v[14],
        })
}

pub fn setattr() -> impl Strategy<Value = SetAttr> {
    (any::<[u32; 4]>(), any::<[u64; 5]>()).prop_map(|(a, b)| SetAttr {
        valid: a[0],
        mode: a[1],
        uid: a[2],
        gid: a[3],
        size: b[0],
        atime_sec: b[1],
        atime_nsec: b[2],
        mtime_sec: b[3],
        mtime_nsec: b[4],
    })
}

pub fn statfs() -> impl Strategy<Value = StatFs> {
    (any::<[u32; 3]>(), any::<[u64; 6]>()).prop_map(|(a, b)| StatFs {
        ty: a[0],
        bsize: a[1],
        blocks: b[0],
        bfree: b[1],
        bavail: b[2],
        files: b[3],
        ffree: b[4],
        fsid: b[5],
        namelen: a[2],
    })
}

pub fn lockreq() -> impl Strategy<Value = LockReq> {
    (
        any::<u8>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        name(),
    )
        .prop_map(|(ty, flags, start, length, proc_id, client_id)| LockReq {
            ty,
            flags,
            start,
            length,
            proc_id,
            client_id,
        })
}

pub fn getlock() -> impl Strategy<Value = GetLock> {
    (
        any::<u8>(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        name(),
    )
        .prop_map(|(ty, start, length, proc_id, client_id)| GetLock {
            ty,
            start,
            length,
            proc_id,
            client_id,
        })
}

/// `n_uname` as the dialect carries it.
fn n_uname(dialect: Dialect) -> BoxedStrategy<Option<u32>> {
    match dialect {
        Dialect::L => any::<u32>().prop_map(Some).boxed(),
        Dialect::P2000 => Just(None).boxed(),
    }
}

type B = BoxedStrategy<Msg>;

/// Every message body of both dialects, valid for `dialect` (only `Tauth`/`Tattach`
/// depend on it). The list is checked against [`all_mtypes`] by a test, so a variant
/// cannot be forgotten.
pub fn msg(dialect: Dialect) -> impl Strategy<Value = Msg> {
    use Msg::*;
    let u32_ = any::<u32>;
    let u64_ = any::<u64>;
    let arms: Vec<B> = vec![
        (u32_(), name())
            .prop_map(|(msize, version)| Tversion { msize, version })
            .boxed(),
        (u32_(), name())
            .prop_map(|(msize, version)| Rversion { msize, version })
            .boxed(),
        (u32_(), name(), name(), n_uname(dialect))
            .prop_map(|(afid, uname, aname, n_uname)| Tauth {
                afid,
                uname,
                aname,
                n_uname,
            })
            .boxed(),
        qid().prop_map(|aqid| Rauth { aqid }).boxed(),
        (u32_(), u32_(), name(), name(), n_uname(dialect))
            .prop_map(|(fid, afid, uname, aname, n_uname)| Tattach {
                fid,
                afid,
                uname,
                aname,
                n_uname,
            })
            .boxed(),
        qid().prop_map(|qid| Rattach { qid }).boxed(),
        name().prop_map(|ename| Rerror { ename }).boxed(),
        any::<u16>().prop_map(|oldtag| Tflush { oldtag }).boxed(),
        Just(Rflush).boxed(),
        (u32_(), u32_(), vec(name(), 0..=MAXWELEM))
            .prop_map(|(fid, newfid, wnames)| Twalk {
                fid,
                newfid,
                wnames,
            })
            .boxed(),
        vec(qid(), 0..=MAXWELEM)
            .prop_map(|wqids| Rwalk { wqids })
            .boxed(),
        (u32_(), any::<u8>())
            .prop_map(|(fid, mode)| Topen { fid, mode })
            .boxed(),
        (qid(), u32_())
            .prop_map(|(qid, iounit)| Ropen { qid, iounit })
            .boxed(),
        (u32_(), name(), u32_(), any::<u8>())
            .prop_map(|(fid, name, perm, mode)| Tcreate {
                fid,
                name,
                perm,
                mode,
            })
            .boxed(),
        (qid(), u32_())
            .prop_map(|(qid, iounit)| Rcreate { qid, iounit })
            .boxed(),
        (u32_(), u64_(), u32_())
            .prop_map(|(fid, offset, count)| Tread { fid, offset, count })
            .boxed(),
        data().prop_map(|data| Rread { data }).boxed(),
        (u32_(), u64_(), data())
            .prop_map(|(fid, offset, data)| Twrite { fid, offset, data })
            .boxed(),
        u32_().prop_map(|count| Rwrite { count }).boxed(),
        u32_().prop_map(|fid| Tclunk { fid }).boxed(),
        Just(Rclunk).boxed(),
        u32_().prop_map(|fid| Tremove { fid }).boxed(),
        Just(Rremove).boxed(),
        u32_().prop_map(|fid| Tstat { fid }).boxed(),
        stat().prop_map(|stat| Rstat { stat }).boxed(),
        (u32_(), stat())
            .prop_map(|(fid, stat)| Twstat { fid, stat })
            .boxed(),
        Just(Rwstat).boxed(),
        u32_().prop_map(|ecode| Rlerror { ecode }).boxed(),
        u32_().prop_map(|fid| Tstatfs { fid }).boxed(),
        statfs().prop_map(|statfs| Rstatfs { statfs }).boxed(),
        (u32_(), u32_())
            .prop_map(|(fid, flags)| Tlopen { fid, flags })
            .boxed(),
        (qid(), u32_())
            .prop_map(|(qid, iounit)| Rlopen { qid, iounit })
            .boxed(),
        (u32_(), name(), u32_(), u32_(), u32_())
            .prop_map(|(fid, name, flags, mode, gid)| Tlcreate {
                fid,
                name,
                flags,
                mode,
                gid,
            })
            .boxed(),
        (qid(), u32_())
            .prop_map(|(qid, iounit)| Rlcreate { qid, iounit })
            .boxed(),
        (u32_(), name(), name(), u32_())
            .prop_map(|(fid, name, symtgt, gid)| Tsymlink {
                fid,
                name,
                symtgt,
                gid,
            })
            .boxed(),
        qid().prop_map(|qid| Rsymlink { qid }).boxed(),
        (u32_(), name(), any::<[u32; 4]>())
            .prop_map(|(dfid, name, [mode, major, minor, gid])| Tmknod {
                dfid,
                name,
                mode,
                major,
                minor,
                gid,
            })
            .boxed(),
        qid().prop_map(|qid| Rmknod { qid }).boxed(),
        (u32_(), u32_(), name())
            .prop_map(|(fid, dfid, name)| Trename { fid, dfid, name })
            .boxed(),
        Just(Rrename).boxed(),
        u32_().prop_map(|fid| Treadlink { fid }).boxed(),
        name().prop_map(|target| Rreadlink { target }).boxed(),
        (u32_(), u64_())
            .prop_map(|(fid, request_mask)| Tgetattr { fid, request_mask })
            .boxed(),
        attr().prop_map(|attr| Rgetattr { attr }).boxed(),
        (u32_(), setattr())
            .prop_map(|(fid, attr)| Tsetattr { fid, attr })
            .boxed(),
        Just(Rsetattr).boxed(),
        (u32_(), u32_(), name())
            .prop_map(|(fid, newfid, name)| Txattrwalk { fid, newfid, name })
            .boxed(),
        u64_().prop_map(|size| Rxattrwalk { size }).boxed(),
        (u32_(), name(), u64_(), u32_())
            .prop_map(|(fid, name, attr_size, flags)| Txattrcreate {
                fid,
                name,
                attr_size,
                flags,
            })
            .boxed(),
        Just(Rxattrcreate).boxed(),
        (u32_(), u64_(), u32_())
            .prop_map(|(fid, offset, count)| Treaddir { fid, offset, count })
            .boxed(),
        data().prop_map(|data| Rreaddir { data }).boxed(),
        (u32_(), u32_())
            .prop_map(|(fid, datasync)| Tfsync { fid, datasync })
            .boxed(),
        Just(Rfsync).boxed(),
        (u32_(), lockreq())
            .prop_map(|(fid, lock)| Tlock { fid, lock })
            .boxed(),
        any::<u8>().prop_map(|status| Rlock { status }).boxed(),
        (u32_(), getlock())
            .prop_map(|(fid, lock)| Tgetlock { fid, lock })
            .boxed(),
        getlock().prop_map(|lock| Rgetlock { lock }).boxed(),
        (u32_(), u32_(), name())
            .prop_map(|(dfid, fid, name)| Tlink { dfid, fid, name })
            .boxed(),
        Just(Rlink).boxed(),
        (u32_(), name(), u32_(), u32_())
            .prop_map(|(dfid, name, mode, gid)| Tmkdir {
                dfid,
                name,
                mode,
                gid,
            })
            .boxed(),
        qid().prop_map(|qid| Rmkdir { qid }).boxed(),
        (u32_(), name(), u32_(), name())
            .prop_map(|(olddirfid, oldname, newdirfid, newname)| Trenameat {
                olddirfid,
                oldname,
                newdirfid,
                newname,
            })
            .boxed(),
        Just(Rrenameat).boxed(),
        (u32_(), name(), u32_())
            .prop_map(|(dirfd, name, flags)| Tunlinkat { dirfd, name, flags })
            .boxed(),
        Just(Runlinkat).boxed(),
    ];
    Union::new(arms)
}

pub fn dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![Just(Dialect::P2000), Just(Dialect::L)]
}

/// A dialect and a message valid in it, with any tag.
pub fn fcall() -> impl Strategy<Value = (Dialect, Fcall)> {
    dialect().prop_flat_map(|d| {
        (any::<u16>(), msg(d)).prop_map(move |(tag, msg)| (d, Fcall { tag, msg }))
    })
}

/// Every type number a message is defined for: the 9P2000 range 100..=127 without
/// Terror, and the 9P2000.L pairs.
pub fn all_mtypes() -> Vec<u8> {
    let l_requests = [
        8, 12, 14, 16, 18, 20, 22, 24, 26, 30, 32, 40, 50, 52, 54, 70, 72, 74, 76,
    ];
    let mut all: Vec<u8> = l_requests.iter().flat_map(|&t| [t, t + 1]).collect();
    all.push(mtype::RLERROR);
    all.extend((100..=127).filter(|&t| t != mtype::TERROR));
    all.sort_unstable();
    all
}

/// Encodes `fc`, panicking if it cannot.
pub fn bytes_of(fc: &Fcall) -> Vec<u8> {
    let mut out = Vec::new();
    encode(fc, &mut out).expect("valid message encodes");
    out
}
