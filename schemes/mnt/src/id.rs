//! Identity: mount and attach ids that are never reused, and the cache key of a mounted
//! file.

use core::fmt;
use core::sync::atomic::Ordering;

use ninep::Qid;

use crate::sync::StaticCounter;

/// The device type of mounted files in a [`FileKey`] (Plan 9's `'M'`).
pub const DEV_TYPE_MNT: u16 = b'M' as u16;

/// Next id to hand out, to a mount or an attach. Starts at 1 so that 0 never names one.
static NEXT_MOUNT_ID: StaticCounter = StaticCounter::new(1);

/// The identity of one mount, from a global counter that is never reused, so a cache
/// keyed by it never confuses a remounted server (whose qid paths may restart) with
/// the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MountId(u64);

impl MountId {
    /// A fresh id, greater than every id handed out before.
    pub fn next() -> MountId {
        // Relaxed is enough: only uniqueness matters, and fetch_add is atomic.
        MountId(NEXT_MOUNT_ID.fetch_add(1, Ordering::Relaxed))
    }

    /// The number (at least 1).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// The identity of one attach (one `Tattach`, one tree: a session may attach several
/// anames), the `dev` of its files' [`FileKey`]s. From the counter of [`MountId`]s, so it
/// is never reused either, and files of two attaches of one session whose qid paths
/// overlap never share a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttachId(u64);

impl AttachId {
    /// A fresh id, greater than every mount or attach id handed out before.
    pub(crate) fn next() -> AttachId {
        AttachId(NEXT_MOUNT_ID.fetch_add(1, Ordering::Relaxed))
    }

    /// The number (at least 1).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for MountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mnt#{}", self.0)
    }
}

/// The identity of a file version for caches: `(device type, dev, qid.path,
/// qid.vers)`. Two keys are equal exactly when they name the same contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileKey {
    /// [`DEV_TYPE_MNT`] for mounted files.
    pub dev_type: u16,
    /// The attach's id ([`AttachId`]): never reused, and one of its own for every attach,
    /// also of one session.
    pub dev: u64,
    /// The server's `qid.path`.
    pub path: u64,
    /// The server's `qid.version`.
    pub version: u32,
}

impl FileKey {
    /// The key of a file with this qid in the tree of this attach.
    pub fn mounted(dev: AttachId, qid: Qid) -> FileKey {
        FileKey {
            dev_type: DEV_TYPE_MNT,
            dev: dev.get(),
            path: qid.path,
            version: qid.version,
        }
    }
}
