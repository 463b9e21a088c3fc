//! The messages of 9P2000 and 9P2000.L as Rust values.

use alloc::string::String;
use alloc::vec::Vec;

/// Which protocol a session speaks; chosen by `Tversion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Plan 9's 9P2000: `Rerror` strings, `Topen`/`Tcreate`/`Tstat`/`Twstat`.
    P2000,
    /// Linux's 9P2000.L: `Rlerror` errnos, `n_uname` in `Tauth`/`Tattach`, and the
    /// `T…`/`R…` pairs numbered below 100.
    L,
}

impl Dialect {
    /// The version string a server answers for this dialect.
    pub fn version_str(self) -> &'static str {
        match self {
            Dialect::P2000 => crate::VERSION_9P2000,
            Dialect::L => crate::VERSION_9P2000L,
        }
    }
}

/// A server's unique identification of a file: type bits, version, and a path that is
/// never reused for another file of the same server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Qid {
    /// `qt::*` bits.
    pub ty: u8,
    /// Bumped on every change of the file.
    pub version: u32,
    /// Unique among the server's files, never reused.
    pub path: u64,
}

/// Encoded length of a [`Qid`].
pub const QID_LEN: usize = 13;

/// A 9P2000 directory entry (`stat(5)`). On the wire it is preceded by its own size.
///
/// In `Twstat`, the "don't touch" values are `!0` for the integers and the empty
/// string for the strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stat {
    /// For kernel use.
    pub ty: u16,
    /// For kernel use.
    pub dev: u32,
    pub qid: Qid,
    /// Permissions and `dm::*` flags.
    pub mode: u32,
    /// Seconds since the epoch.
    pub atime: u32,
    /// Seconds since the epoch.
    pub mtime: u32,
    pub length: u64,
    pub name: String,
    pub uid: String,
    pub gid: String,
    /// Who changed the file last.
    pub muid: String,
}

impl Stat {
    /// A `Twstat` value that changes nothing: every field at its don't-touch value.
    pub fn dont_touch() -> Stat {
        Stat {
            ty: !0,
            dev: !0,
            qid: Qid {
                ty: !0,
                version: !0,
                path: !0,
            },
            mode: !0,
            atime: !0,
            mtime: !0,
            length: !0,
            name: String::new(),
            uid: String::new(),
            gid: String::new(),
            muid: String::new(),
        }
    }
}

/// One entry of an `Rreaddir` payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirent {
    pub qid: Qid,
    /// The offset to pass to the next `Treaddir` to continue after this entry.
    pub offset: u64,
    /// `dt::*`.
    pub ty: u8,
    pub name: String,
}

/// Attributes of an `Rgetattr`; which fields mean something is in `valid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attr {
    /// `getattr::*` bits that this reply fills in.
    pub valid: u64,
    pub qid: Qid,
    /// Linux `st_mode`: type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime_sec: u64,
    pub atime_nsec: u64,
    pub mtime_sec: u64,
    pub mtime_nsec: u64,
    pub ctime_sec: u64,
    pub ctime_nsec: u64,
    pub btime_sec: u64,
    pub btime_nsec: u64,
    pub gen: u64,
    pub data_version: u64,
}

/// Changes of a `Tsetattr`; which fields apply is in `valid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetAttr {
    /// `setattr::*` bits.
    pub valid: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime_sec: u64,
    pub atime_nsec: u64,
    pub mtime_sec: u64,
    pub mtime_nsec: u64,
}

/// File system figures of an `Rstatfs` (Linux `struct statfs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatFs {
    pub ty: u32,
    pub bsize: u32,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub fsid: u64,
    pub namelen: u32,
}

/// A POSIX byte-range lock request of `Tlock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockReq {
    /// `lock::TYPE_*`.
    pub ty: u8,
    /// `lock::FLAGS_*`.
    pub flags: u32,
    pub start: u64,
    /// 0 means "to the end of the file".
    pub length: u64,
    pub proc_id: u32,
    pub client_id: String,
}

/// A lock description of `Tgetlock`/`Rgetlock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetLock {
    /// `lock::TYPE_*`; `TYPE_UNLCK` in a reply means "no conflicting lock".
    pub ty: u8,
    pub start: u64,
    pub length: u64,
    pub proc_id: u32,
    pub client_id: String,
}

/// One message: its tag and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fcall {
    pub tag: u16,
    pub msg: Msg,
}

/// The body of every message of both dialects.
///
/// Strings are UTF-8 without NUL; `Twalk` carries at most 16 names and `Rwalk` at most
/// 16 qids. `Rread`/`Twrite` data and `Rreaddir` payloads are raw bytes (a 9P2000
/// directory read returns whole encoded [`Stat`] records; a 9P2000.L `Rreaddir`
/// returns encoded [`Dirent`]s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    // ---- 9P2000 (shared by 9P2000.L where noted) ----
    /// Shared.
    Tversion {
        msize: u32,
        version: String,
    },
    /// Shared.
    Rversion {
        msize: u32,
        version: String,
    },
    /// Shared; `n_uname` is present exactly in 9P2000.L.
    Tauth {
        afid: u32,
        uname: String,
        aname: String,
        n_uname: Option<u32>,
    },
    /// Shared.
    Rauth {
        aqid: Qid,
    },
    /// Shared; `n_uname` is present exactly in 9P2000.L.
    Tattach {
        fid: u32,
        afid: u32,
        uname: String,
        aname: String,
        n_uname: Option<u32>,
    },
    /// Shared.
    Rattach {
        qid: Qid,
    },
    /// 9P2000 only.
    Rerror {
        ename: String,
    },
    /// Shared.
    Tflush {
        oldtag: u16,
    },
    /// Shared.
    Rflush,
    /// Shared.
    Twalk {
        fid: u32,
        newfid: u32,
        wnames: Vec<String>,
    },
    /// Shared.
    Rwalk {
        wqids: Vec<Qid>,
    },
    Topen {
        fid: u32,
        mode: u8,
    },
    Ropen {
        qid: Qid,
        iounit: u32,
    },
    Tcreate {
        fid: u32,
        name: String,
        perm: u32,
        mode: u8,
    },
    Rcreate {
        qid: Qid,
        iounit: u32,
    },
    /// Shared.
    Tread {
        fid: u32,
        offset: u64,
        count: u32,
    },
    /// Shared.
    Rread {
        data: Vec<u8>,
    },
    /// Shared.
    Twrite {
        fid: u32,
        offset: u64,
        data: Vec<u8>,
    },
    /// Shared.
    Rwrite {
        count: u32,
    },
    /// Shared.
    Tclunk {
        fid: u32,
    },
    /// Shared.
    Rclunk,
    /// Shared.
    Tremove {
        fid: u32,
    },
    /// Shared.
    Rremove,
    Tstat {
        fid: u32,
    },
    Rstat {
        stat: Stat,
    },
    Twstat {
        fid: u32,
        stat: Stat,
    },
    Rwstat,

    // ---- 9P2000.L ----
    Rlerror {
        ecode: u32,
    },
    Tstatfs {
        fid: u32,
    },
    Rstatfs {
        statfs: StatFs,
    },
    Tlopen {
        fid: u32,
        flags: u32,
    },
    Rlopen {
        qid: Qid,
        iounit: u32,
    },
    Tlcreate {
        fid: u32,
        name: String,
        flags: u32,
        mode: u32,
        gid: u32,
    },
    Rlcreate {
        qid: Qid,
        iounit: u32,
    },
    Tsymlink {
        fid: u32,
        name: String,
        symtgt: String,
        gid: u32,
    },
    Rsymlink {
        qid: Qid,
    },
    Tmknod {
        dfid: u32,
        name: String,
        mode: u32,
        major: u32,
        minor: u32,
        gid: u32,
    },
    Rmknod {
        qid: Qid,
    },
    Trename {
        fid: u32,
        dfid: u32,
        name: String,
    },
    Rrename,
    Treadlink {
        fid: u32,
    },
    Rreadlink {
        target: String,
    },
    Tgetattr {
        fid: u32,
        request_mask: u64,
    },
    Rgetattr {
        attr: Attr,
    },
    Tsetattr {
        fid: u32,
        attr: SetAttr,
    },
    Rsetattr,
    Txattrwalk {
        fid: u32,
        newfid: u32,
        name: String,
    },
    Rxattrwalk {
        size: u64,
    },
    Txattrcreate {
        fid: u32,
        name: String,
        attr_size: u64,
        flags: u32,
    },
    Rxattrcreate,
    Treaddir {
        fid: u32,
        offset: u64,
        count: u32,
    },
    Rreaddir {
        data: Vec<u8>,
    },
    /// `datasync` is nonzero for fdatasync(2).
    Tfsync {
        fid: u32,
        datasync: u32,
    },
    Rfsync,
    Tlock {
        fid: u32,
        lock: LockReq,
    },
    /// `lock::STATUS_*`.
    Rlock {
        status: u8,
    },
    Tgetlock {
        fid: u32,
        lock: GetLock,
    },
    Rgetlock {
        lock: GetLock,
    },
    Tlink {
        dfid: u32,
        fid: u32,
        name: String,
    },
    Rlink,
    Tmkdir {
        dfid: u32,
        name: String,
        mode: u32,
        gid: u32,
    },
    Rmkdir {
        qid: Qid,
    },
    Trenameat {
        olddirfid: u32,
        oldname: String,
        newdirfid: u32,
        newname: String,
    },
    Rrenameat,
    Tunlinkat {
        dirfd: u32,
        name: String,
        flags: u32,
    },
    Runlinkat,
}

impl Msg {
    /// The wire type number of this message.
    pub fn mtype(&self) -> u8 {
        use crate::mtype::*;
        match self {
            Msg::Tversion { .. } => TVERSION,
            Msg::Rversion { .. } => RVERSION,
            Msg::Tauth { .. } => TAUTH,
            Msg::Rauth { .. } => RAUTH,
            Msg::Tattach { .. } => TATTACH,
            Msg::Rattach { .. } => RATTACH,
            Msg::Rerror { .. } => RERROR,
            Msg::Tflush { .. } => TFLUSH,
            Msg::Rflush => RFLUSH,
            Msg::Twalk { .. } => TWALK,
            Msg::Rwalk { .. } => RWALK,
            Msg::Topen { .. } => TOPEN,
            Msg::Ropen { .. } => ROPEN,
            Msg::Tcreate { .. } => TCREATE,
            Msg::Rcreate { .. } => RCREATE,
            Msg::Tread { .. } => TREAD,
            Msg::Rread { .. } => RREAD,
            Msg::Twrite { .. } => TWRITE,
            Msg::Rwrite { .. } => RWRITE,
            Msg::Tclunk { .. } => TCLUNK,
            Msg::Rclunk => RCLUNK,
            Msg::Tremove { .. } => TREMOVE,
            Msg::Rremove => RREMOVE,
            Msg::Tstat { .. } => TSTAT,
            Msg::Rstat { .. } => RSTAT,
            Msg::Twstat { .. } => TWSTAT,
            Msg::Rwstat => RWSTAT,
            Msg::Rlerror { .. } => RLERROR,
            Msg::Tstatfs { .. } => TSTATFS,
            Msg::Rstatfs { .. } => RSTATFS,
            Msg::Tlopen { .. } => TLOPEN,
            Msg::Rlopen { .. } => RLOPEN,
            Msg::Tlcreate { .. } => TLCREATE,
            Msg::Rlcreate { .. } => RLCREATE,
            Msg::Tsymlink { .. } => TSYMLINK,
            Msg::Rsymlink { .. } => RSYMLINK,
            Msg::Tmknod { .. } => TMKNOD,
            Msg::Rmknod { .. } => RMKNOD,
            Msg::Trename { .. } => TRENAME,
            Msg::Rrename => RRENAME,
            Msg::Treadlink { .. } => TREADLINK,
            Msg::Rreadlink { .. } => RREADLINK,
            Msg::Tgetattr { .. } => TGETATTR,
            Msg::Rgetattr { .. } => RGETATTR,
            Msg::Tsetattr { .. } => TSETATTR,
            Msg::Rsetattr => RSETATTR,
            Msg::Txattrwalk { .. } => TXATTRWALK,
            Msg::Rxattrwalk { .. } => RXATTRWALK,
            Msg::Txattrcreate { .. } => TXATTRCREATE,
            Msg::Rxattrcreate => RXATTRCREATE,
            Msg::Treaddir { .. } => TREADDIR,
            Msg::Rreaddir { .. } => RREADDIR,
            Msg::Tfsync { .. } => TFSYNC,
            Msg::Rfsync => RFSYNC,
            Msg::Tlock { .. } => TLOCK,
            Msg::Rlock { .. } => RLOCK,
            Msg::Tgetlock { .. } => TGETLOCK,
            Msg::Rgetlock { .. } => RGETLOCK,
            Msg::Tlink { .. } => TLINK,
            Msg::Rlink => RLINK,
            Msg::Tmkdir { .. } => TMKDIR,
            Msg::Rmkdir { .. } => RMKDIR,
            Msg::Trenameat { .. } => TRENAMEAT,
            Msg::Rrenameat => RRENAMEAT,
            Msg::Tunlinkat { .. } => TUNLINKAT,
            Msg::Runlinkat => RUNLINKAT,
        }
    }

    /// True for the T-messages (requests), false for replies.
    pub fn is_request(&self) -> bool {
        let t = self.mtype();
        t & 1 == 0
    }

    /// A short name for logs, like Plan 9's `fcallfmt` ("Twalk", "Rlerror").
    pub fn name(&self) -> &'static str {
        crate::codec::mtype_name(self.mtype())
    }
}
