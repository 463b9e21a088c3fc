//! Linux errno values carried by 9P2000.L's `Rlerror`.
//!
//! These are Linux's numbers on every architecture the v9fs client runs on (the
//! asm-generic table), which is what the wire protocol means regardless of the server's
//! own operating system.
pub const EPERM: u32 = 1;
pub const ENOENT: u32 = 2;
pub const EIO: u32 = 5;
pub const ENXIO: u32 = 6;
pub const E2BIG: u32 = 7;
pub const EBADF: u32 = 9;
pub const EAGAIN: u32 = 11;
pub const ENOMEM: u32 = 12;
pub const EACCES: u32 = 13;
pub const EFAULT: u32 = 14;
pub const EBUSY: u32 = 16;
pub const EEXIST: u32 = 17;
pub const EXDEV: u32 = 18;
pub const ENODEV: u32 = 19;
pub const ENOTDIR: u32 = 20;
pub const EISDIR: u32 = 21;
pub const EINVAL: u32 = 22;
pub const ENFILE: u32 = 23;
pub const EMFILE: u32 = 24;
pub const ETXTBSY: u32 = 26;
pub const EFBIG: u32 = 27;
pub const ENOSPC: u32 = 28;
pub const ESPIPE: u32 = 29;
pub const EROFS: u32 = 30;
pub const EMLINK: u32 = 31;
pub const ERANGE: u32 = 34;
pub const EDEADLK: u32 = 35;
pub const ENAMETOOLONG: u32 = 36;
pub const ENOLCK: u32 = 37;
pub const ENOSYS: u32 = 38;
pub const ENOTEMPTY: u32 = 39;
pub const ELOOP: u32 = 40;
pub const ENODATA: u32 = 61;
pub const EPROTO: u32 = 71;
pub const EBADMSG: u32 = 74;
pub const EOVERFLOW: u32 = 75;
pub const EOPNOTSUPP: u32 = 95;
pub const ENOTSUP: u32 = EOPNOTSUPP;
pub const ECONNRESET: u32 = 104;
pub const ETIMEDOUT: u32 = 110;
pub const EDQUOT: u32 = 122;
pub const ECANCELED: u32 = 125;
