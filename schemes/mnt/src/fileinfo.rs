//! Dialect-neutral file attributes, open modes and attribute changes, and their
//! translation to 9P2000 and 9P2000.L.

use alloc::string::String;

use ninep::{dm, lflags, om, smode, Attr, Qid, Stat};

/// What a file is, in either dialect's terms, as Plan 9's `Dir` would say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub qid: Qid,
    /// Permission bits (`0o777`) and Plan 9's `dm::*` type bits (`dm::DIR`, …).
    pub mode: u32,
    /// Bytes.
    pub length: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
    /// The version of the file's contents, as caches compare it: in 9P2000 the
    /// `qid.version`; in 9P2000.L a fold ([`fold_version`]) of `qid.version` with the
    /// mtime's seconds and nanoseconds, the size and `data_version`. 9P2000.L servers fill
    /// `qid.version` as they please: crosvm's p9 puts the whole-second mtime there and 0 in
    /// `data_version`, so a same-length rewrite within one second would change none of what
    /// a 9P2000 client looks at.
    pub version: u64,
    /// The file's name: from the server in 9P2000; in 9P2000.L (which has no names
    /// in attributes) the name the channel was walked to, "/" for a root.
    pub name: String,
}

impl FileInfo {
    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & dm::DIR != 0
    }

    pub(crate) fn from_stat(st: Stat) -> FileInfo {
        FileInfo {
            qid: st.qid,
            mode: st.mode,
            length: st.length,
            mtime: u64::from(st.mtime),
            version: u64::from(st.qid.version),
            name: st.name,
        }
    }

    pub(crate) fn from_attr(a: &Attr, name: String) -> FileInfo {
        FileInfo {
            qid: a.qid,
            mode: dm_from_linux_mode(a.mode),
            length: a.size,
            mtime: a.mtime_sec,
            version: fold_version(&[
                u64::from(a.qid.version),
                a.mtime_sec,
                a.mtime_nsec,
                a.size,
                a.data_version,
            ]),
            name,
        }
    }
}

/// One 64-bit version made of `parts`: a change of any part changes it, but with a chance
/// of 2^-64 (each part is mixed in with splitmix64's finaliser, so parts that move together,
/// such as the mtime's seconds and the size, do not cancel out).
pub fn fold_version(parts: &[u64]) -> u64 {
    parts.iter().fold(0x243f_6a88_85a3_08d3, |folded, &part| {
        splitmix64(folded ^ splitmix64(part))
    })
}

fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Linux `st_mode` → Plan 9 mode: permissions plus the type bits Plan 9 has.
pub fn dm_from_linux_mode(mode: u32) -> u32 {
    let mut m = mode & dm::PERM;
    match mode & smode::IFMT {
        smode::IFDIR => m |= dm::DIR,
        smode::IFLNK => m |= dm::SYMLINK,
        smode::IFSOCK => m |= dm::SOCKET,
        smode::IFIFO => m |= dm::NAMEDPIPE,
        smode::IFCHR | smode::IFBLK => m |= dm::DEVICE,
        _ => {}
    }
    if mode & smode::ISUID != 0 {
        m |= dm::SETUID;
    }
    if mode & smode::ISGID != 0 {
        m |= dm::SETGID;
    }
    m
}

/// How a channel is opened for I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
    /// Read for execution (9P2000 `OEXEC`; 9P2000.L opens read-only).
    Exec,
}

/// A dialect-neutral open mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenMode {
    pub access: Access,
    /// Truncate the file to zero length.
    pub truncate: bool,
    /// Remove the file when the channel is clunked (9P2000 `ORCLOSE`; 9P2000.L has no
    /// such flag and refuses it with [`MntError::Unsupported`](crate::MntError)).
    pub remove_on_close: bool,
}

impl OpenMode {
    /// Read only.
    pub const READ: OpenMode = OpenMode::new(Access::Read);
    /// Write only.
    pub const WRITE: OpenMode = OpenMode::new(Access::Write);
    /// Read and write.
    pub const RDWR: OpenMode = OpenMode::new(Access::ReadWrite);
    /// Read for execution.
    pub const EXEC: OpenMode = OpenMode::new(Access::Exec);

    /// `access` without truncation or remove-on-close.
    pub const fn new(access: Access) -> OpenMode {
        OpenMode {
            access,
            truncate: false,
            remove_on_close: false,
        }
    }

    /// The same mode, truncating.
    pub const fn truncating(self) -> OpenMode {
        OpenMode {
            truncate: true,
            ..self
        }
    }

    /// Whether the mode allows reading.
    pub fn can_read(self) -> bool {
        !matches!(self.access, Access::Write)
    }

    /// Whether the mode allows writing.
    pub fn can_write(self) -> bool {
        matches!(self.access, Access::Write | Access::ReadWrite)
    }

    /// The 9P2000 `Topen`/`Tcreate` mode byte.
    pub fn to_9p2000(self) -> u8 {
        let mut m = match self.access {
            Access::Read => om::READ,
            Access::Write => om::WRITE,
            Access::ReadWrite => om::RDWR,
            Access::Exec => om::EXEC,
        };
        if self.truncate {
            m |= om::TRUNC;
        }
        if self.remove_on_close {
            m |= om::RCLOSE;
        }
        m
    }

    /// The 9P2000.L `Tlopen`/`Tlcreate` flags, or `None` if the mode cannot be said.
    pub fn to_linux_flags(self) -> Option<u32> {
        if self.remove_on_close {
            return None;
        }
        let mut f = match self.access {
            Access::Read | Access::Exec => lflags::RDONLY,
            Access::Write => lflags::WRONLY,
            Access::ReadWrite => lflags::RDWR,
        };
        if self.truncate {
            f |= lflags::TRUNC;
        }
        Some(f)
    }
}

/// Changes to a file's attributes: `None` leaves a field alone.
///
/// In 9P2000 all changes go in one `Twstat`, which the server applies entirely or
/// not at all. In 9P2000.L a rename is a separate `Trename` after a `Tsetattr` for
/// the rest, so a failed rename can leave the other changes made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// New length: truncate or extend.
    pub length: Option<u64>,
    /// New name within the same directory.
    pub name: Option<String>,
    /// New mode, as [`FileInfo::mode`] has it: the file's own `dm::*` type bits (a
    /// 9P2000 server refuses to change them) and the new permissions. 9P2000.L is
    /// sent only the permission bits.
    pub mode: Option<u32>,
    /// New modification time, seconds since the epoch.
    pub mtime: Option<u32>,
}

impl Changes {
    /// Just a new length.
    pub fn truncate(length: u64) -> Changes {
        Changes {
            length: Some(length),
            ..Changes::default()
        }
    }

    /// Just a new name.
    pub fn rename(name: &str) -> Changes {
        Changes {
            name: Some(String::from(name)),
            ..Changes::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(version: u32, mtime: (u64, u64), size: u64) -> Attr {
        Attr {
            qid: Qid {
                ty: 0,
                version,
                path: 9,
            },
            mtime_sec: mtime.0,
            mtime_nsec: mtime.1,
            size,
            ..Attr::default()
        }
    }

    #[test]
    fn a_9p2000_l_version_moves_with_the_nanoseconds_and_the_size() {
        let version = |a: Attr| FileInfo::from_attr(&a, String::from("f")).version;
        // crosvm's p9: qid.version is the whole-second mtime.
        let first = version(attr(1_600_000_000, (1_600_000_000, 100), 14));
        assert_eq!(
            first,
            version(attr(1_600_000_000, (1_600_000_000, 100), 14))
        );
        assert_ne!(
            first,
            version(attr(1_600_000_000, (1_600_000_000, 200), 14)),
            "a rewrite within the second"
        );
        assert_ne!(
            first,
            version(attr(1_600_000_000, (1_600_000_000, 100), 15))
        );
        assert_ne!(
            first,
            version(attr(1_600_000_001, (1_600_000_000, 100), 14))
        );
        // Parts that move together do not cancel out.
        assert_ne!(fold_version(&[1, 2]), fold_version(&[2, 1]));
        assert_ne!(fold_version(&[0, 0]), fold_version(&[1, 1]));
    }

    #[test]
    fn a_9p2000_version_is_the_qid_version() {
        let stat = Stat {
            qid: Qid {
                ty: 0,
                version: 7,
                path: 9,
            },
            ..Stat::dont_touch()
        };
        assert_eq!(FileInfo::from_stat(stat).version, 7);
    }
}
