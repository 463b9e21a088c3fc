//! Every error the server can answer, with its 9P2000 string and its Linux errno.
//!
//! All error strings live in this one module. In 9P2000 mode the Linux v9fs client turns
//! an `Rerror` string into an errno through a fixed table (its `net/9p/error.c`); a string
//! outside that table reaches Linux programs as "Unknown error 526". So every string here
//! is one that table knows, preferring the Plan 9 wording where the table has it. The test
//! at the bottom keeps it that way.
//!
//! In 9P2000.L the errno goes on the wire (`Rlerror`); it is chosen for what a Linux
//! program expects, which is sometimes not the errno the table gives the string (e.g.
//! "not owner" is `EPERM` for chmod, as POSIX says, though the table says `EACCES`).

use ninep::errno;

/// An error of a file tree operation or of the 9P front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// No such file, or a walk past a missing name.
    #[error("{}", self.ename())]
    NotFound,
    /// Create or link onto a name that is taken.
    #[error("{}", self.ename())]
    Exists,
    /// A directory operation on something else.
    #[error("{}", self.ename())]
    NotDir,
    /// A file operation (write, truncate, …) on a directory.
    #[error("{}", self.ename())]
    IsDir,
    /// The permission bits deny the caller.
    #[error("{}", self.ename())]
    PermissionDenied,
    /// The operation is not allowed to this caller at all (POSIX `EPERM`).
    #[error("{}", self.ename())]
    NotPermitted,
    /// Only the owner may do this (chmod, utimes, wstat of mode or times).
    #[error("{}", self.ename())]
    NotOwner,
    /// A wstat that Plan 9 forbids outright (changing the owner, a directory's length).
    #[error("{}", self.ename())]
    WstatProhibited,
    /// A wstat that would turn a file into a directory or back.
    #[error("{}", self.ename())]
    WstatFileDir,
    /// A group change to a group the caller does not belong to.
    #[error("{}", self.ename())]
    NotInGroup,
    /// Removing a directory that still has entries (Plan 9 ramfs says "has children";
    /// Linux's table does not know that string).
    #[error("{}", self.ename())]
    NotEmpty,
    /// The memory limit would be exceeded; nothing was changed.
    #[error("{}", self.ename())]
    NoSpace,
    /// A second open of a `DMEXCL` file.
    #[error("{}", self.ename())]
    ExclusiveInUse,
    /// A name that may not be used: empty, ".", "..", or holding a '/'.
    #[error("{}", self.ename())]
    BadName,
    /// A name longer than [`crate::fs::NAME_MAX`] bytes.
    #[error("{}", self.ename())]
    NameTooLong,
    /// An argument out of its domain.
    #[error("{}", self.ename())]
    Invalid,
    /// An open or create mode that makes no sense for the file (e.g. writing a directory).
    #[error("{}", self.ename())]
    BadMode,
    /// A fid that the session does not have.
    #[error("{}", self.ename())]
    UnknownFid,
    /// A new fid number that the session already uses.
    #[error("{}", self.ename())]
    FidInUse,
    /// A fid in the wrong state for the request (walking an open fid, reading an unopened
    /// one, opening twice).
    #[error("{}", self.ename())]
    BadFidUse,
    /// A directory read at an offset other than 0 or where the last read ended.
    #[error("{}", self.ename())]
    BadDirOffset,
    /// A request out of protocol order (before Tversion, an R-message, a Terror).
    #[error("{}", self.ename())]
    Botch,
    /// A well-framed Twstat whose stat record disagrees with its sizes (an inner size
    /// unlike the outer one or the fields, bytes after the record). fossil's wording,
    /// which Linux's table maps to `EPROTO`; in 9P2000.L we say `EINVAL`, a bad
    /// argument rather than a broken connection, since the session goes on.
    #[error("{}", self.ename())]
    BadWstat,
    /// The per-connection fid limit is reached.
    #[error("{}", self.ename())]
    TooManyFids,
    /// A feature this server does not offer (authentication, some xattr flags).
    #[error("{}", self.ename())]
    NotSupported,
    /// Authentication was asked for but none is configured.
    #[error("{}", self.ename())]
    NoAuth,
    /// A message of the other dialect.
    #[error("{}", self.ename())]
    NotImplemented,
    /// A read or write count larger than the session's msize allows.
    #[error("{}", self.ename())]
    CountTooLarge,
    /// A directory read whose count cannot hold even the next entry, which an empty
    /// reply would hide (it means end of directory). Plan 9's kernel says "i/o count
    /// too small", a string Linux's table does not know; Linux's own getdents(2) says
    /// `EINVAL` for a buffer too small, and so do we.
    #[error("{}", self.ename())]
    CountTooSmall,
    /// An offset or size past the largest file this server keeps.
    #[error("{}", self.ename())]
    FileTooBig,
    /// A missing extended attribute.
    #[error("{}", self.ename())]
    NoData,
    /// An extended attribute value or list larger than the caller's buffer, or a size
    /// that disagrees with the data written.
    #[error("{}", self.ename())]
    Range,
    /// A file with too many hard links.
    #[error("{}", self.ename())]
    TooManyLinks,
    /// A truncation that would drop file pages lent to a memory mapping (a running
    /// program's text on Redox): refused until they come back.
    #[error("{}", self.ename())]
    TextBusy,
    /// File pages cannot be lent side by side without moving a page that an earlier
    /// mapping holds.
    #[error("{}", self.ename())]
    Busy,
    /// A mapping of pages that hold no byte of the file.
    #[error("{}", self.ename())]
    PastEnd,
}

impl Error {
    /// Every variant, for tests and documentation.
    pub const ALL: [Error; 36] = [
        Error::NotFound,
        Error::Exists,
        Error::NotDir,
        Error::IsDir,
        Error::PermissionDenied,
        Error::NotPermitted,
        Error::NotOwner,
        Error::WstatProhibited,
        Error::WstatFileDir,
        Error::NotInGroup,
        Error::NotEmpty,
        Error::NoSpace,
        Error::ExclusiveInUse,
        Error::BadName,
        Error::NameTooLong,
        Error::Invalid,
        Error::BadMode,
        Error::UnknownFid,
        Error::FidInUse,
        Error::BadFidUse,
        Error::BadDirOffset,
        Error::Botch,
        Error::BadWstat,
        Error::TooManyFids,
        Error::NotSupported,
        Error::NoAuth,
        Error::NotImplemented,
        Error::CountTooLarge,
        Error::CountTooSmall,
        Error::FileTooBig,
        Error::NoData,
        Error::Range,
        Error::TooManyLinks,
        Error::TextBusy,
        Error::Busy,
        Error::PastEnd,
    ];

    /// The 9P2000 `Rerror` string and the 9P2000.L `Rlerror` errno.
    const fn info(self) -> (&'static str, u32) {
        match self {
            Error::NotFound => ("file does not exist", errno::ENOENT),
            Error::Exists => ("file already exists", errno::EEXIST),
            Error::NotDir => ("not a directory", errno::ENOTDIR),
            Error::IsDir => ("Is a directory", errno::EISDIR),
            Error::PermissionDenied => ("permission denied", errno::EACCES),
            Error::NotPermitted => ("Operation not permitted", errno::EPERM),
            Error::NotOwner => ("not owner", errno::EPERM),
            Error::WstatProhibited => ("wstat prohibited", errno::EPERM),
            Error::WstatFileDir => (
                "wstat can't convert between files and directories",
                errno::EPERM,
            ),
            Error::NotInGroup => ("not a member of proposed group", errno::EPERM),
            Error::NotEmpty => ("directory is not empty", errno::ENOTEMPTY),
            Error::NoSpace => ("file system is full", errno::ENOSPC),
            Error::ExclusiveInUse => ("exclusive use file already open", errno::EAGAIN),
            Error::BadName => ("illegal name", errno::EINVAL),
            Error::NameTooLong => ("File name too long", errno::ENAMETOOLONG),
            Error::Invalid => ("Invalid argument", errno::EINVAL),
            Error::BadMode => ("illegal mode", errno::EINVAL),
            Error::UnknownFid => ("fid unknown or out of range", errno::EBADF),
            Error::FidInUse => ("fid already in use", errno::EBADF),
            Error::BadFidUse => ("bad use of fid", errno::EBADF),
            Error::BadDirOffset => ("bad offset in directory read", errno::ESPIPE),
            Error::Botch => ("protocol botch", errno::EPROTO),
            Error::BadWstat => ("bogus wstat buffer", errno::EINVAL),
            Error::TooManyFids => ("Too many open files", errno::EMFILE),
            Error::NotSupported => ("Operation not supported", errno::EOPNOTSUPP),
            // diod answers an unconfigured Tauth with ENOENT; Linux ignores the failure.
            Error::NoAuth => ("Operation not supported", errno::ENOENT),
            Error::NotImplemented => ("Function not implemented", errno::ENOSYS),
            Error::CountTooLarge => ("i/o count too large", errno::EIO),
            Error::CountTooSmall => ("Invalid argument", errno::EINVAL),
            Error::FileTooBig => ("file too big", errno::EFBIG),
            Error::NoData => ("No data available", errno::ENODATA),
            Error::Range => ("Numerical result out of range", errno::ERANGE),
            Error::TooManyLinks => ("Too many links", errno::EMLINK),
            // fossil's wording, which Linux's table maps to ETXTBSY.
            Error::TextBusy => ("file in use", errno::ETXTBSY),
            Error::Busy => ("Device or resource busy", errno::EBUSY),
            Error::PastEnd => ("No such device or address", errno::ENXIO),
        }
    }

    /// The string of a 9P2000 `Rerror`.
    pub const fn ename(self) -> &'static str {
        self.info().0
    }

    /// The Linux errno of a 9P2000.L `Rlerror`.
    pub const fn errno(self) -> u32 {
        self.info().1
    }
}

/// Results of tree and session operations.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The strings of Linux's `net/9p/error.c` table that this module uses, copied as
    /// data (with the errno the table maps them to) so the test fails if a string drifts
    /// out of the table.
    const LINUX_ERRMAP_SUBSET: &[(&str, u32)] = &[
        ("Operation not permitted", errno::EPERM),
        ("wstat prohibited", errno::EPERM),
        ("Permission denied", errno::EACCES),
        ("Is a directory", errno::EISDIR),
        ("Invalid argument", errno::EINVAL),
        ("Too many open files", errno::EMFILE),
        ("File name too long", errno::ENAMETOOLONG),
        ("Too many links", errno::EMLINK),
        ("Function not implemented", errno::ENOSYS),
        ("No data available", errno::ENODATA),
        ("Numerical result out of range", errno::ERANGE),
        ("Operation not supported", errno::EOPNOTSUPP),
        ("fid unknown or out of range", errno::EBADF),
        ("permission denied", errno::EACCES),
        ("file does not exist", errno::ENOENT),
        ("bad offset in directory read", errno::ESPIPE),
        ("bad use of fid", errno::EBADF),
        (
            "wstat can't convert between files and directories",
            errno::EPERM,
        ),
        ("directory is not empty", errno::ENOTEMPTY),
        ("file already exists", errno::EEXIST),
        ("fid already in use", errno::EBADF),
        ("illegal mode", errno::EINVAL),
        ("illegal name", errno::ENAMETOOLONG),
        ("not a directory", errno::ENOTDIR),
        ("not a member of proposed group", errno::EPERM),
        ("not owner", errno::EACCES),
        ("i/o count too large", errno::EIO),
        ("exclusive use file already open", errno::EAGAIN),
        ("protocol botch", errno::EPROTO),
        ("bogus wstat buffer", errno::EPROTO),
        ("file system is full", errno::ENOSPC),
        ("file too big", errno::EFBIG),
        ("file in use", errno::ETXTBSY),
        ("Device or resource busy", errno::EBUSY),
        ("No such device or address", errno::ENXIO),
    ];

    #[test]
    fn every_string_is_in_the_linux_table() {
        for e in Error::ALL {
            assert!(
                LINUX_ERRMAP_SUBSET.iter().any(|(s, _)| *s == e.ename()),
                "{e:?}: {:?} is not in Linux's net/9p/error.c table",
                e.ename()
            );
        }
    }

    #[test]
    fn the_linux_table_gives_the_right_class_of_errno() {
        // Where the table's errno differs from ours, it must be a deliberate choice.
        let deliberate = [
            Error::NotOwner,
            Error::BadName,
            Error::NoAuth,
            Error::NotSupported,
            Error::BadWstat,
        ];
        for e in Error::ALL {
            let (_, table_errno) = LINUX_ERRMAP_SUBSET
                .iter()
                .find(|(s, _)| *s == e.ename())
                .expect("checked above");
            if !deliberate.contains(&e) {
                assert_eq!(*table_errno, e.errno(), "{e:?}");
            }
        }
    }

    #[test]
    fn display_is_the_9p_string() {
        assert_eq!(Error::NotEmpty.to_string(), "directory is not empty");
    }
}
