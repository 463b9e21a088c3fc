//! Namespaces (Plan 9's `Pgrp` mount table): which mount serves which path.
//!
//! A namespace maps absolute mount points to mounts. A path resolves to the mount at its
//! longest mounted prefix and the names left to walk from that mount's root. Processes
//! share a namespace or get a copy at fork; a copy holds the same mounts, so a server stays
//! connected while any namespace still holds its mount (and while any channel of it lives).
//!
//! Lock: one reader-writer lock a namespace, never held across a call to a server; mount
//! points taken out of it are dropped after it is released.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::BitOr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use mnt::{Mount, MountId};

use crate::error::KernelError;
use crate::kchan::KChan;

/// How a mount is made (Plan 9's `MREPL`, `MCACHE`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct MountFlags(u32);

impl MountFlags {
    /// Replace whatever is mounted at the path (the only kind of mount this kernel has: no
    /// union directories).
    pub const REPLACE: MountFlags = MountFlags(0);
    /// Cache file data of the mount (`mount -C`): regular files are read and written
    /// through vm's mount cache, validated at each open.
    pub const CACHE: MountFlags = MountFlags(0x10);

    /// The bits, as Plan 9 numbers them.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: MountFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for MountFlags {
    type Output = MountFlags;

    fn bitor(self, other: MountFlags) -> MountFlags {
        MountFlags(self.0 | other.0)
    }
}

impl fmt::Debug for MountFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.contains(MountFlags::CACHE) {
            f.write_str("MCACHE")
        } else {
            f.write_str("MREPL")
        }
    }
}

/// One mount in one or more namespaces: the session and the channel to its root.
pub(crate) struct MountPoint {
    pub(crate) mount: Mount,
    /// The attach's root, never opened; every walk starts here. Dropped (its clunk queued)
    /// when the last namespace holding the mount lets go.
    pub(crate) root: KChan,
    pub(crate) flags: MountFlags,
}

/// What a namespace says about one of its mounts.
#[derive(Clone, Debug)]
pub struct MountInfo {
    /// Where it is mounted.
    pub path: String,
    /// The mount (for its id and statistics; a handle does not keep it connected).
    pub mount: Mount,
    /// How it was mounted.
    pub flags: MountFlags,
}

impl MountInfo {
    /// The mount's never-reused id.
    pub fn id(&self) -> MountId {
        self.mount.id()
    }
}

/// A mount table.
#[derive(Default)]
pub(crate) struct Namespace {
    mounts: RwLock<BTreeMap<String, Arc<MountPoint>>>,
}

/// The names of a cleaned absolute path (Plan 9's `cleanname`: `.` dropped, `..` taken
/// back lexically, never above `/`).
pub(crate) fn clean_path(path: &str) -> Result<Vec<String>, KernelError> {
    if !path.starts_with('/') {
        return Err(KernelError::BadPath(path.to_string()));
    }
    let mut names: Vec<String> = Vec::new();
    for name in path.split('/') {
        match name {
            "" | "." => {}
            ".." => {
                names.pop();
            }
            name => names.push(name.to_string()),
        }
    }
    Ok(names)
}

/// The mount point key of cleaned names.
pub(crate) fn key_of(names: &[String]) -> String {
    let mut key = String::from("/");
    key.push_str(&names.join("/"));
    key
}

impl Namespace {
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Arc<MountPoint>>> {
        self.mounts
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Arc<MountPoint>>> {
        self.mounts
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A namespace with the same mounts (fork with `RFNAMEG`).
    pub(crate) fn copy(&self) -> Namespace {
        Namespace {
            mounts: RwLock::new(self.read().clone()),
        }
    }

    /// Mounts `point` at `key`; returns what was mounted there before, for the caller to
    /// drop after the lock is released.
    pub(crate) fn install(&self, key: String, point: Arc<MountPoint>) -> Option<Arc<MountPoint>> {
        self.write().insert(key, point)
    }

    /// Takes the mount at `key` out of this namespace.
    pub(crate) fn remove(&self, key: &str) -> Option<Arc<MountPoint>> {
        self.write().remove(key)
    }

    /// Every mount point (for the checker).
    pub(crate) fn points(&self) -> Vec<Arc<MountPoint>> {
        self.read().values().cloned().collect()
    }

    /// The mount serving `names` and the names left to walk from its root.
    pub(crate) fn resolve(&self, names: &[String]) -> Option<(Arc<MountPoint>, usize)> {
        let mounts = self.read();
        (0..=names.len()).rev().find_map(|depth| {
            mounts
                .get(&key_of(&names[..depth]))
                .map(|point| (point.clone(), depth))
        })
    }

    /// The mounts, by path.
    pub(crate) fn list(&self) -> Vec<MountInfo> {
        self.read()
            .iter()
            .map(|(path, point)| MountInfo {
                path: path.clone(),
                mount: point.mount.clone(),
                flags: point.flags,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_lexically() {
        assert_eq!(clean_path("/").unwrap(), Vec::<String>::new());
        assert_eq!(clean_path("/n//ram/./bin/../x").unwrap(), ["n", "ram", "x"]);
        assert_eq!(clean_path("/../..").unwrap(), Vec::<String>::new());
        assert!(clean_path("relative/path").is_err());
        assert_eq!(key_of(&clean_path("/n/ram/").unwrap()), "/n/ram");
        assert_eq!(key_of(&[]), "/");
    }

    #[test]
    fn flags() {
        let flags = MountFlags::REPLACE | MountFlags::CACHE;
        assert!(flags.contains(MountFlags::CACHE));
        assert!(!MountFlags::REPLACE.contains(MountFlags::CACHE));
        assert_eq!(flags.bits(), 0x10);
        assert_eq!(format!("{flags:?}"), "MCACHE");
    }
}
