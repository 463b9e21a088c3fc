//! Symbolic names that transcripts may use for numbers, from ninep's constants.
//!
//! An integer field takes terms joined by `|`; each term is a number (`12`, `0x80`,
//! `0o755`), `~0` (all ones, for don't-touch values), or one of these names.

use ninep::errno::*;
use ninep::*;

/// Every name a number may be written as. Names are grouped by the field they fit, so a
/// formatter can pick the right group.
pub const NAMES: &[(&str, u64)] = &[
    ("NOTAG", NOTAG as u64),
    ("NOFID", NOFID as u64),
    // Qid types.
    ("QTDIR", qt::DIR as u64),
    ("QTAPPEND", qt::APPEND as u64),
    ("QTEXCL", qt::EXCL as u64),
    ("QTMOUNT", qt::MOUNT as u64),
    ("QTAUTH", qt::AUTH as u64),
    ("QTTMP", qt::TMP as u64),
    ("QTSYMLINK", qt::SYMLINK as u64),
    ("QTLINK", qt::LINK as u64),
    ("QTFILE", qt::FILE as u64),
    // 9P2000 mode bits.
    ("DMDIR", dm::DIR as u64),
    ("DMAPPEND", dm::APPEND as u64),
    ("DMEXCL", dm::EXCL as u64),
    ("DMMOUNT", dm::MOUNT as u64),
    ("DMAUTH", dm::AUTH as u64),
    ("DMTMP", dm::TMP as u64),
    ("DMSYMLINK", dm::SYMLINK as u64),
    ("DMDEVICE", dm::DEVICE as u64),
    ("DMNAMEDPIPE", dm::NAMEDPIPE as u64),
    ("DMSOCKET", dm::SOCKET as u64),
    ("DMSETUID", dm::SETUID as u64),
    ("DMSETGID", dm::SETGID as u64),
    // 9P2000 open modes.
    ("OREAD", om::READ as u64),
    ("OWRITE", om::WRITE as u64),
    ("ORDWR", om::RDWR as u64),
    ("OEXEC", om::EXEC as u64),
    ("OTRUNC", om::TRUNC as u64),
    ("OCEXEC", om::CEXEC as u64),
    ("ORCLOSE", om::RCLOSE as u64),
    // Linux open flags.
    ("O_RDONLY", lflags::RDONLY as u64),
    ("O_WRONLY", lflags::WRONLY as u64),
    ("O_RDWR", lflags::RDWR as u64),
    ("O_CREAT", lflags::CREAT as u64),
    ("O_EXCL", lflags::EXCL as u64),
    ("O_NOCTTY", lflags::NOCTTY as u64),
    ("O_TRUNC", lflags::TRUNC as u64),
    ("O_APPEND", lflags::APPEND as u64),
    ("O_NONBLOCK", lflags::NONBLOCK as u64),
    ("O_DSYNC", lflags::DSYNC as u64),
    ("O_DIRECT", lflags::DIRECT as u64),
    ("O_LARGEFILE", lflags::LARGEFILE as u64),
    ("O_DIRECTORY", lflags::DIRECTORY as u64),
    ("O_NOFOLLOW", lflags::NOFOLLOW as u64),
    ("O_NOATIME", lflags::NOATIME as u64),
    ("O_CLOEXEC", lflags::CLOEXEC as u64),
    ("O_SYNC", lflags::SYNC as u64),
    // Linux st_mode types.
    ("S_IFMT", smode::IFMT as u64),
    ("S_IFSOCK", smode::IFSOCK as u64),
    ("S_IFLNK", smode::IFLNK as u64),
    ("S_IFREG", smode::IFREG as u64),
    ("S_IFBLK", smode::IFBLK as u64),
    ("S_IFDIR", smode::IFDIR as u64),
    ("S_IFCHR", smode::IFCHR as u64),
    ("S_IFIFO", smode::IFIFO as u64),
    ("S_ISUID", smode::ISUID as u64),
    ("S_ISGID", smode::ISGID as u64),
    ("S_ISVTX", smode::ISVTX as u64),
    ("AT_REMOVEDIR", AT_REMOVEDIR as u64),
    // Tgetattr/Rgetattr masks.
    ("GETATTR_MODE", getattr::MODE),
    ("GETATTR_NLINK", getattr::NLINK),
    ("GETATTR_UID", getattr::UID),
    ("GETATTR_GID", getattr::GID),
    ("GETATTR_RDEV", getattr::RDEV),
    ("GETATTR_ATIME", getattr::ATIME),
    ("GETATTR_MTIME", getattr::MTIME),
    ("GETATTR_CTIME", getattr::CTIME),
    ("GETATTR_INO", getattr::INO),
    ("GETATTR_SIZE", getattr::SIZE),
    ("GETATTR_BLOCKS", getattr::BLOCKS),
    ("GETATTR_BTIME", getattr::BTIME),
    ("GETATTR_GEN", getattr::GEN),
    ("GETATTR_DATA_VERSION", getattr::DATA_VERSION),
    ("GETATTR_BASIC", getattr::BASIC),
    ("GETATTR_ALL", getattr::ALL),
    // Tsetattr mask.
    ("SETATTR_MODE", setattr::MODE as u64),
    ("SETATTR_UID", setattr::UID as u64),
    ("SETATTR_GID", setattr::GID as u64),
    ("SETATTR_SIZE", setattr::SIZE as u64),
    ("SETATTR_ATIME", setattr::ATIME as u64),
    ("SETATTR_MTIME", setattr::MTIME as u64),
    ("SETATTR_CTIME", setattr::CTIME as u64),
    ("SETATTR_ATIME_SET", setattr::ATIME_SET as u64),
    ("SETATTR_MTIME_SET", setattr::MTIME_SET as u64),
    // Locks.
    ("LOCK_RDLCK", lock::TYPE_RDLCK as u64),
    ("LOCK_WRLCK", lock::TYPE_WRLCK as u64),
    ("LOCK_UNLCK", lock::TYPE_UNLCK as u64),
    ("LOCK_SUCCESS", lock::STATUS_SUCCESS as u64),
    ("LOCK_BLOCKED", lock::STATUS_BLOCKED as u64),
    ("LOCK_ERROR", lock::STATUS_ERROR as u64),
    ("LOCK_GRACE", lock::STATUS_GRACE as u64),
    ("LOCK_FLAGS_BLOCK", lock::FLAGS_BLOCK as u64),
    ("LOCK_FLAGS_RECLAIM", lock::FLAGS_RECLAIM as u64),
    // Directory entry types.
    ("DT_UNKNOWN", dt::UNKNOWN as u64),
    ("DT_FIFO", dt::FIFO as u64),
    ("DT_CHR", dt::CHR as u64),
    ("DT_DIR", dt::DIR as u64),
    ("DT_BLK", dt::BLK as u64),
    ("DT_REG", dt::REG as u64),
    ("DT_LNK", dt::LNK as u64),
    ("DT_SOCK", dt::SOCK as u64),
    // errno.
    ("EPERM", EPERM as u64),
    ("ENOENT", ENOENT as u64),
    ("EIO", EIO as u64),
    ("ENXIO", ENXIO as u64),
    ("E2BIG", E2BIG as u64),
    ("EBADF", EBADF as u64),
    ("EAGAIN", EAGAIN as u64),
    ("ENOMEM", ENOMEM as u64),
    ("EACCES", EACCES as u64),
    ("EFAULT", EFAULT as u64),
    ("EBUSY", EBUSY as u64),
    ("EEXIST", EEXIST as u64),
    ("EXDEV", EXDEV as u64),
    ("ENODEV", ENODEV as u64),
    ("ENOTDIR", ENOTDIR as u64),
    ("EISDIR", EISDIR as u64),
    ("EINVAL", EINVAL as u64),
    ("ENFILE", ENFILE as u64),
    ("EMFILE", EMFILE as u64),
    ("ETXTBSY", ETXTBSY as u64),
    ("EFBIG", EFBIG as u64),
    ("ENOSPC", ENOSPC as u64),
    ("ESPIPE", ESPIPE as u64),
    ("EROFS", EROFS as u64),
    ("EMLINK", EMLINK as u64),
    ("ERANGE", ERANGE as u64),
    ("EDEADLK", EDEADLK as u64),
    ("ENAMETOOLONG", ENAMETOOLONG as u64),
    ("ENOLCK", ENOLCK as u64),
    ("ENOSYS", ENOSYS as u64),
    ("ENOTEMPTY", ENOTEMPTY as u64),
    ("ELOOP", ELOOP as u64),
    ("ENODATA", ENODATA as u64),
    ("EPROTO", EPROTO as u64),
    ("EBADMSG", EBADMSG as u64),
    ("EOVERFLOW", EOVERFLOW as u64),
    ("EOPNOTSUPP", EOPNOTSUPP as u64),
    ("ECONNRESET", ECONNRESET as u64),
    ("ETIMEDOUT", ETIMEDOUT as u64),
    ("EDQUOT", EDQUOT as u64),
    ("ECANCELED", ECANCELED as u64),
];

/// The value of a symbolic name.
pub fn lookup(name: &str) -> Option<u64> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// The errno name of `code`, if it has one.
pub fn errno_name(code: u32) -> Option<&'static str> {
    let first_errno = NAMES.iter().position(|(n, _)| *n == "EPERM")?;
    NAMES[first_errno..]
        .iter()
        .find(|(_, v)| *v == u64::from(code))
        .map(|(n, _)| *n)
}

/// Evaluates `a|b|c` for a field `bits` wide.
pub fn eval(expr: &str, bits: u32) -> Result<u64, String> {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut acc = 0u64;
    for term in expr.split('|') {
        let v = if term == "~0" {
            max
        } else if let Some(h) = term.strip_prefix("0x") {
            u64::from_str_radix(h, 16).map_err(|e| format!("{term}: {e}"))?
        } else if let Some(o) = term.strip_prefix("0o") {
            u64::from_str_radix(o, 8).map_err(|e| format!("{term}: {e}"))?
        } else if term.starts_with(|c: char| c.is_ascii_digit()) {
            term.parse::<u64>().map_err(|e| format!("{term}: {e}"))?
        } else {
            lookup(term).ok_or_else(|| format!("unknown name {term}"))?
        };
        if v > max {
            return Err(format!("{term} does not fit in {bits} bits"));
        }
        acc |= v;
    }
    Ok(acc)
}
