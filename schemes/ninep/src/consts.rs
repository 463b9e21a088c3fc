//! Protocol constants: message type numbers, qid types, mode bits, open modes, and the
//! 9P2000.L masks and flags.

/// The tag of `Tversion`, which is outside any session.
pub const NOTAG: u16 = 0xffff;
/// "No fid": the afid of an unauthenticated `Tattach`.
pub const NOFID: u32 = 0xffff_ffff;
/// Bytes of `size[4] type[1] tag[2]`.
pub const HEADER_LEN: usize = 7;
/// At most this many names in one `Twalk` and qids in one `Rwalk`.
pub const MAXWELEM: usize = 16;
/// Smallest msize a session may negotiate.
pub const MIN_MSIZE: u32 = 256;
/// Largest msize a session may negotiate.
pub const MAX_MSIZE: u32 = 1 << 20;
/// Bytes of an `Rread`/`Twrite` header before the data: size, type, tag, and
/// (fid, offset, count) for Twrite, the larger of the two. Plan 9's `IOHDRSZ`.
pub const IOHDRSZ: u32 = 24;

/// The version string of Plan 9's 9P2000.
pub const VERSION_9P2000: &str = "9P2000";
/// The version string of Linux's 9P2000.L.
pub const VERSION_9P2000L: &str = "9P2000.L";
/// The reply to a version a server does not speak.
pub const VERSION_UNKNOWN: &str = "unknown";

/// Wire type numbers.
pub mod mtype {
    pub const TLERROR: u8 = 6;
    pub const RLERROR: u8 = 7;
    pub const TSTATFS: u8 = 8;
    pub const RSTATFS: u8 = 9;
    pub const TLOPEN: u8 = 12;
    pub const RLOPEN: u8 = 13;
    pub const TLCREATE: u8 = 14;
    pub const RLCREATE: u8 = 15;
    pub const TSYMLINK: u8 = 16;
    pub const RSYMLINK: u8 = 17;
    pub const TMKNOD: u8 = 18;
    pub const RMKNOD: u8 = 19;
    pub const TRENAME: u8 = 20;
    pub const RRENAME: u8 = 21;
    pub const TREADLINK: u8 = 22;
    pub const RREADLINK: u8 = 23;
    pub const TGETATTR: u8 = 24;
    pub const RGETATTR: u8 = 25;
    pub const TSETATTR: u8 = 26;
    pub const RSETATTR: u8 = 27;
    pub const TXATTRWALK: u8 = 30;
    pub const RXATTRWALK: u8 = 31;
    pub const TXATTRCREATE: u8 = 32;
    pub const RXATTRCREATE: u8 = 33;
    pub const TREADDIR: u8 = 40;
    pub const RREADDIR: u8 = 41;
    pub const TFSYNC: u8 = 50;
    pub const RFSYNC: u8 = 51;
    pub const TLOCK: u8 = 52;
    pub const RLOCK: u8 = 53;
    pub const TGETLOCK: u8 = 54;
    pub const RGETLOCK: u8 = 55;
    pub const TLINK: u8 = 70;
    pub const RLINK: u8 = 71;
    pub const TMKDIR: u8 = 72;
    pub const RMKDIR: u8 = 73;
    pub const TRENAMEAT: u8 = 74;
    pub const RRENAMEAT: u8 = 75;
    pub const TUNLINKAT: u8 = 76;
    pub const RUNLINKAT: u8 = 77;
    pub const TVERSION: u8 = 100;
    pub const RVERSION: u8 = 101;
    pub const TAUTH: u8 = 102;
    pub const RAUTH: u8 = 103;
    pub const TATTACH: u8 = 104;
    pub const RATTACH: u8 = 105;
    /// Illegal on the wire: a `Terror` is never sent.
    pub const TERROR: u8 = 106;
    pub const RERROR: u8 = 107;
    pub const TFLUSH: u8 = 108;
    pub const RFLUSH: u8 = 109;
    pub const TWALK: u8 = 110;
    pub const RWALK: u8 = 111;
    pub const TOPEN: u8 = 112;
    pub const ROPEN: u8 = 113;
    pub const TCREATE: u8 = 114;
    pub const RCREATE: u8 = 115;
    pub const TREAD: u8 = 116;
    pub const RREAD: u8 = 117;
    pub const TWRITE: u8 = 118;
    pub const RWRITE: u8 = 119;
    pub const TCLUNK: u8 = 120;
    pub const RCLUNK: u8 = 121;
    pub const TREMOVE: u8 = 122;
    pub const RREMOVE: u8 = 123;
    pub const TSTAT: u8 = 124;
    pub const RSTAT: u8 = 125;
    pub const TWSTAT: u8 = 126;
    pub const RWSTAT: u8 = 127;
}

/// `Qid::ty` bits.
pub mod qt {
    pub const DIR: u8 = 0x80;
    pub const APPEND: u8 = 0x40;
    pub const EXCL: u8 = 0x20;
    pub const MOUNT: u8 = 0x10;
    pub const AUTH: u8 = 0x08;
    pub const TMP: u8 = 0x04;
    pub const SYMLINK: u8 = 0x02;
    pub const LINK: u8 = 0x01;
    pub const FILE: u8 = 0x00;
}

/// 9P2000 `Stat::mode` bits above the permission bits.
pub mod dm {
    pub const DIR: u32 = 0x8000_0000;
    pub const APPEND: u32 = 0x4000_0000;
    pub const EXCL: u32 = 0x2000_0000;
    pub const MOUNT: u32 = 0x1000_0000;
    pub const AUTH: u32 = 0x0800_0000;
    pub const TMP: u32 = 0x0400_0000;
    /// 9P2000.u extensions, recognised so they are not mistaken for permissions.
    pub const SYMLINK: u32 = 0x0200_0000;
    pub const DEVICE: u32 = 0x0080_0000;
    pub const NAMEDPIPE: u32 = 0x0020_0000;
    pub const SOCKET: u32 = 0x0010_0000;
    pub const SETUID: u32 = 0x0008_0000;
    pub const SETGID: u32 = 0x0004_0000;
    /// Read, write, execute for owner, group, other.
    pub const PERM: u32 = 0o777;
}

/// 9P2000 `Topen`/`Tcreate` modes.
pub mod om {
    pub const READ: u8 = 0;
    pub const WRITE: u8 = 1;
    pub const RDWR: u8 = 2;
    pub const EXEC: u8 = 3;
    /// The low two bits: one of the four above.
    pub const ACCMODE: u8 = 3;
    pub const TRUNC: u8 = 0x10;
    pub const CEXEC: u8 = 0x20;
    pub const RCLOSE: u8 = 0x40;
}

/// 9P2000.L `Tgetattr::request_mask` and `Rgetattr::valid` bits.
pub mod getattr {
    pub const MODE: u64 = 0x0000_0001;
    pub const NLINK: u64 = 0x0000_0002;
    pub const UID: u64 = 0x0000_0004;
    pub const GID: u64 = 0x0000_0008;
    pub const RDEV: u64 = 0x0000_0010;
    pub const ATIME: u64 = 0x0000_0020;
    pub const MTIME: u64 = 0x0000_0040;
    pub const CTIME: u64 = 0x0000_0080;
    pub const INO: u64 = 0x0000_0100;
    pub const SIZE: u64 = 0x0000_0200;
    pub const BLOCKS: u64 = 0x0000_0400;
    pub const BTIME: u64 = 0x0000_0800;
    pub const GEN: u64 = 0x0000_1000;
    pub const DATA_VERSION: u64 = 0x0000_2000;
    /// Everything `stat(2)` reports.
    pub const BASIC: u64 = 0x0000_07ff;
    pub const ALL: u64 = 0x0000_3fff;
}

/// 9P2000.L `Tsetattr::valid` bits.
pub mod setattr {
    pub const MODE: u32 = 0x0000_0001;
    pub const UID: u32 = 0x0000_0002;
    pub const GID: u32 = 0x0000_0004;
    pub const SIZE: u32 = 0x0000_0008;
    pub const ATIME: u32 = 0x0000_0010;
    pub const MTIME: u32 = 0x0000_0020;
    pub const CTIME: u32 = 0x0000_0040;
    /// The given atime, not the server's clock.
    pub const ATIME_SET: u32 = 0x0000_0080;
    /// The given mtime, not the server's clock.
    pub const MTIME_SET: u32 = 0x0000_0100;
}

/// 9P2000.L `Tlock`/`Tgetlock` lock types and `Rlock` statuses.
pub mod lock {
    pub const TYPE_RDLCK: u8 = 0;
    pub const TYPE_WRLCK: u8 = 1;
    pub const TYPE_UNLCK: u8 = 2;
    pub const STATUS_SUCCESS: u8 = 0;
    pub const STATUS_BLOCKED: u8 = 1;
    pub const STATUS_ERROR: u8 = 2;
    pub const STATUS_GRACE: u8 = 3;
    /// `Tlock::flags`: the client would block (F_SETLKW).
    pub const FLAGS_BLOCK: u32 = 1;
    pub const FLAGS_RECLAIM: u32 = 2;
}

/// Linux open(2) flags as 9P2000.L carries them in `Tlopen`/`Tlcreate`.
pub mod lflags {
    pub const RDONLY: u32 = 0o0;
    pub const WRONLY: u32 = 0o1;
    pub const RDWR: u32 = 0o2;
    pub const ACCMODE: u32 = 0o3;
    pub const CREAT: u32 = 0o100;
    pub const EXCL: u32 = 0o200;
    pub const NOCTTY: u32 = 0o400;
    pub const TRUNC: u32 = 0o1000;
    pub const APPEND: u32 = 0o2000;
    pub const NONBLOCK: u32 = 0o4000;
    pub const DSYNC: u32 = 0o10000;
    pub const FASYNC: u32 = 0o20000;
    pub const DIRECT: u32 = 0o40000;
    pub const LARGEFILE: u32 = 0o100000;
    pub const DIRECTORY: u32 = 0o200000;
    pub const NOFOLLOW: u32 = 0o400000;
    pub const NOATIME: u32 = 0o1000000;
    pub const CLOEXEC: u32 = 0o2000000;
    pub const SYNC: u32 = 0o4000000;
}

/// Linux `st_mode` file type bits, as 9P2000.L carries them.
pub mod smode {
    pub const IFMT: u32 = 0o170000;
    pub const IFSOCK: u32 = 0o140000;
    pub const IFLNK: u32 = 0o120000;
    pub const IFREG: u32 = 0o100000;
    pub const IFBLK: u32 = 0o060000;
    pub const IFDIR: u32 = 0o040000;
    pub const IFCHR: u32 = 0o020000;
    pub const IFIFO: u32 = 0o010000;
    pub const ISUID: u32 = 0o4000;
    pub const ISGID: u32 = 0o2000;
    pub const ISVTX: u32 = 0o1000;
}

/// `Tunlinkat::flags`.
pub const AT_REMOVEDIR: u32 = 0x200;

/// Directory entry types of `Rreaddir` (Linux `DT_*`).
pub mod dt {
    pub const UNKNOWN: u8 = 0;
    pub const FIFO: u8 = 1;
    pub const CHR: u8 = 2;
    pub const DIR: u8 = 4;
    pub const BLK: u8 = 6;
    pub const REG: u8 = 8;
    pub const LNK: u8 = 10;
    pub const SOCK: u8 = 12;
}
