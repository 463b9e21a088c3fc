//! The plain values that [`Tree`](super::Tree) operations take and give back: a node's
//! attributes, what to create, open modes, attribute changes (POSIX and Plan 9), unlink and
//! extended-attribute modes, file system figures and directory entries.

use super::{FileType, NodeId, SpecialKind, Timespec};

/// A node's attributes, as every front end reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub id: NodeId,
    pub version: u32,
    pub file_type: FileType,
    /// Permission bits, `0o7777`.
    pub perm: u32,
    pub append: bool,
    pub excl: bool,
    pub tmp: bool,
    pub uid: u32,
    pub gid: u32,
    pub muid: u32,
    /// Names that refer to it (for a directory: 2 plus its subdirectories).
    pub nlink: u64,
    /// Length in bytes: the data of a file, the target of a link, 0 otherwise.
    pub size: u64,
    /// Allocated 512-byte blocks.
    pub blocks: u64,
    pub rdev: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    pub btime: Timespec,
    /// The last name it was given ("/" for the root).
    pub name: String,
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewKind {
    File,
    Dir,
    Symlink(String),
    Special { kind: SpecialKind, rdev: u64 },
}

/// The attributes of a new node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNode {
    pub kind: NewKind,
    /// Permission bits requested.
    pub perm: u32,
    /// Apply Plan 9's create mask rule (open(5)) against the directory's permissions.
    pub plan9_mask: bool,
    /// The group; `None` takes the directory's group, as Plan 9 does.
    pub gid: Option<u32>,
    pub append: bool,
    pub excl: bool,
    pub tmp: bool,
}

impl NewNode {
    /// A node of `kind` with permission bits `perm` and nothing else special.
    pub fn new(kind: NewKind, perm: u32) -> NewNode {
        NewNode {
            kind,
            perm,
            plan9_mask: false,
            gid: None,
            append: false,
            excl: false,
            tmp: false,
        }
    }
}

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenMode {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub truncate: bool,
}

/// A time to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSet {
    /// The clock's current time.
    Now,
    /// This time.
    At(Timespec),
}

/// A POSIX attribute change (9P2000.L Tsetattr); `None` leaves a field alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetAttrs {
    pub perm: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeSet>,
    pub mtime: Option<TimeSet>,
    /// The request came through a descriptor opened for writing (`ftruncate(2)`): a
    /// size change needs no write permission now, the open was granted it. (A file
    /// created with mode 0 and opened read-write can be truncated.)
    pub opened_for_write: bool,
}

/// The mode part of a Plan 9 wstat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WstatMode {
    /// `DMDIR` as given: it must match the file.
    pub is_dir: bool,
    /// The `0o777` bits.
    pub perm: u32,
    pub append: bool,
    pub excl: bool,
    pub tmp: bool,
}

/// A Plan 9 attribute change (9P2000 Twstat); `None` is the don't-touch value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wstat {
    pub mode: Option<WstatMode>,
    pub atime: Option<u32>,
    pub mtime: Option<u32>,
    pub length: Option<u64>,
    pub name: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
}

/// Which kind of entry an unlink expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkKind {
    /// `unlink(2)`: anything but a directory.
    NonDir,
    /// `rmdir(2)`: an empty directory.
    Dir,
}

/// How an extended attribute is set (Linux `XATTR_CREATE`/`XATTR_REPLACE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XattrSetMode {
    /// Create or replace.
    Any,
    /// Fail with [`Error::Exists`](crate::error::Error::Exists) if it exists.
    Create,
    /// Fail with [`Error::NoData`](crate::error::Error::NoData) if it does not.
    Replace,
}

/// File system figures for statfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    pub bsize: u32,
    pub blocks: u64,
    pub bfree: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: u32,
    /// Bytes in use and the limit.
    pub used: u64,
    pub limit: u64,
}

/// One directory entry as [`Tree::dir_entries`](super::Tree::dir_entries) yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Its sequence number in the directory (a readdir cookie).
    pub seq: u64,
    pub name: &'a str,
    pub id: NodeId,
}
