//! The flags of a Redox `openat`, decoded once.
//!
//! Redox's open flags are not Linux's (`O_RDONLY` is a bit of its own, `0x1_0000`), and
//! relibc packs the creation mode into the low 16 bits of the same word
//! (`(oflag & 0xFFFF_0000) | (mode & 0xFFFF)`, relibc `platform/redox/libredox.rs`).

use syscall::flag::{
    MODE_DIR, MODE_FILE, MODE_TYPE, O_ACCMODE, O_APPEND, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW,
    O_RDONLY, O_RDWR, O_STAT, O_SYMLINK, O_TRUNC, O_WRONLY,
};

/// What an `openat` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFlags {
    /// Open for reading (`O_RDONLY` or `O_RDWR`).
    pub read: bool,
    /// Open for writing (`O_WRONLY` or `O_RDWR`).
    pub write: bool,
    /// `O_CREAT`: create the last name if it is missing.
    pub create: bool,
    /// `O_EXCL` with `O_CREAT`: fail if the name exists.
    pub exclusive: bool,
    /// `O_TRUNC`: empty the file, when it is opened for writing.
    pub truncate: bool,
    /// `O_DIRECTORY`: the node must be (or be created as) a directory.
    pub directory: bool,
    /// `O_STAT`: a handle for `fstat` and friends only, whatever the permission bits.
    pub stat: bool,
    /// `O_SYMLINK`: open a symbolic link itself instead of following it.
    pub symlink: bool,
    /// `O_NOFOLLOW`: a symbolic link as the last name is an error.
    pub no_follow: bool,
    /// `O_APPEND`.
    pub append: bool,
    /// Permission bits for a new node (`0o7777` part of the mode).
    pub perm: u32,
    /// The file type bits of the mode (`MODE_TYPE` part), 0 when not given.
    pub mode_type: u16,
}

/// The `openat` flags that make no sense together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadFlags {
    /// `O_CREAT` with `O_STAT`: there is nothing to stat yet.
    CreateForStat,
    /// A type in the mode that disagrees with `O_DIRECTORY`.
    TypeMismatch,
}

impl OpenFlags {
    /// Decodes `flags` (with the mode in its low 16 bits) and the call's `fcntl_flags`.
    pub fn decode(flags: usize, fcntl_flags: u32) -> Result<OpenFlags, BadFlags> {
        let all = flags | fcntl_flags as usize;
        let access = all & O_ACCMODE;
        let mode = (flags & 0xFFFF) as u16;
        let decoded = OpenFlags {
            read: access == O_RDONLY || access == O_RDWR,
            write: access == O_WRONLY || access == O_RDWR,
            create: all & O_CREAT != 0,
            exclusive: all & O_EXCL != 0,
            truncate: all & O_TRUNC != 0,
            directory: all & O_DIRECTORY != 0,
            stat: all & O_STAT != 0,
            symlink: all & O_SYMLINK != 0,
            no_follow: all & O_NOFOLLOW != 0,
            append: all & O_APPEND != 0,
            perm: u32::from(mode & 0o7777),
            mode_type: mode & MODE_TYPE,
        };
        if decoded.create && decoded.stat {
            return Err(BadFlags::CreateForStat);
        }
        let wants_dir = decoded.mode_type == MODE_DIR;
        let wants_file = decoded.mode_type == MODE_FILE;
        if decoded.create
            && ((decoded.directory && wants_file) || (!decoded.directory && wants_dir))
        {
            return Err(BadFlags::TypeMismatch);
        }
        Ok(decoded)
    }

    /// Whether the handle reads or writes data (an `O_STAT` handle does neither).
    pub fn data_access(&self) -> bool {
        !self.stat && (self.read || self.write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_modes_are_bits_of_their_own() {
        let r = OpenFlags::decode(O_RDONLY, 0).unwrap();
        assert!(r.read && !r.write && r.data_access());
        let w = OpenFlags::decode(O_WRONLY, 0).unwrap();
        assert!(!w.read && w.write);
        let rw = OpenFlags::decode(O_RDWR, 0).unwrap();
        assert!(rw.read && rw.write);
        let none = OpenFlags::decode(0, 0).unwrap();
        assert!(!none.read && !none.write && !none.data_access());
        let stat = OpenFlags::decode(O_STAT | O_RDONLY, 0).unwrap();
        assert!(!stat.data_access());
    }

    #[test]
    fn the_mode_rides_in_the_low_bits() {
        let f = OpenFlags::decode(O_CREAT | O_RDWR | 0o640, 0).unwrap();
        assert!(f.create && f.perm == 0o640 && f.mode_type == 0);
        let d = OpenFlags::decode(O_CREAT | O_DIRECTORY | MODE_DIR as usize | 0o755, 0).unwrap();
        assert!(d.directory && d.perm == 0o755);
        let sticky = OpenFlags::decode(O_CREAT | O_DIRECTORY | 0o1777, 0).unwrap();
        assert_eq!(sticky.perm, 0o1777);
    }

    #[test]
    fn fcntl_flags_count_too() {
        let f = OpenFlags::decode(O_WRONLY, O_APPEND as u32).unwrap();
        assert!(f.append);
    }

    #[test]
    fn contradictions_are_refused() {
        assert_eq!(
            OpenFlags::decode(O_CREAT | O_STAT, 0),
            Err(BadFlags::CreateForStat)
        );
        assert_eq!(
            OpenFlags::decode(O_CREAT | O_DIRECTORY | MODE_FILE as usize | 0o644, 0),
            Err(BadFlags::TypeMismatch)
        );
        assert_eq!(
            OpenFlags::decode(O_CREAT | MODE_DIR as usize | 0o755, 0),
            Err(BadFlags::TypeMismatch)
        );
    }
}
