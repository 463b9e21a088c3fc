//! The scheme's open handles: what each number the kernel holds stands for.

use std::collections::BTreeMap;

use crate::fs::{Cred, NodeId};

/// What a handle is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleKind {
    /// The scheme's root capability: the starting point of `openat`, never read.
    Root,
    /// A directory.
    Directory,
    /// A regular file.
    File,
    /// A symbolic link or a special file (FIFO, socket, device) made by a 9P client.
    Other,
}

/// One open handle.
#[derive(Debug, Clone)]
pub struct Handle {
    pub node: NodeId,
    pub kind: HandleKind,
    /// Opened for reading.
    pub read: bool,
    /// Opened for writing.
    pub write: bool,
    /// Opened with `O_APPEND`.
    pub append: bool,
    /// Whether the tree counts an open for it ([`crate::fs::Tree::open`]) that its close
    /// must end; `O_STAT` handles and the root have none.
    pub tree_open: bool,
    /// Who opened it. Calls on a handle are judged as this user, as 9P judges a fid
    /// by its attach user: several calls (fchmod, ftruncate, futimens, ...) reach the
    /// scheme without the caller's credentials (see NOTES-redox-scheme.md §1).
    pub cred: Cred,
    /// The path it was opened by (relative to the scheme root), for `fpath` once the
    /// node has no name left.
    pub path: String,
}

/// Handle numbers and their handles. Numbers are never reused while the daemon runs, so
/// a late message about a closed handle cannot hit a new one.
#[derive(Debug)]
pub struct Handles {
    handles: BTreeMap<usize, Handle>,
    next: usize,
}

/// Every handle number has been used (after 2^64 opens on a 64-bit system).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

impl Default for Handles {
    fn default() -> Self {
        Self::new()
    }
}

impl Handles {
    /// No handles; the first gets number 1.
    pub fn new() -> Self {
        Handles {
            handles: BTreeMap::new(),
            next: 1,
        }
    }

    /// Stores `handle` under a fresh number.
    pub fn insert(&mut self, handle: Handle) -> Result<usize, Exhausted> {
        let id = self.next;
        self.next = id.checked_add(1).ok_or(Exhausted)?;
        self.handles.insert(id, handle);
        Ok(id)
    }

    pub fn get(&self, id: usize) -> Option<&Handle> {
        self.handles.get(&id)
    }

    pub fn get_mut(&mut self, id: usize) -> Option<&mut Handle> {
        self.handles.get_mut(&id)
    }

    pub fn remove(&mut self, id: usize) -> Option<Handle> {
        self.handles.remove(&id)
    }

    /// Handles held now.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::PermStyle;

    fn handle(node: NodeId) -> Handle {
        Handle {
            node,
            kind: HandleKind::File,
            read: true,
            write: false,
            append: false,
            tree_open: true,
            cred: Cred {
                name: "root".into(),
                uid: 0,
                gid: 0,
                style: PermStyle::Posix,
            },
            path: "f".into(),
        }
    }

    #[test]
    fn numbers_are_never_reused() {
        let mut hs = Handles::new();
        let a = hs.insert(handle(10)).unwrap();
        let b = hs.insert(handle(11)).unwrap();
        assert_ne!(a, b);
        assert_eq!(hs.remove(a).map(|h| h.node), Some(10));
        let c = hs.insert(handle(12)).unwrap();
        assert!(c != a && c != b);
        assert!(hs.get(a).is_none());
        assert_eq!(hs.len(), 2);
    }
}
