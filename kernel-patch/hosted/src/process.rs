//! Processes: an address space, descriptors, a namespace, a family.
//!
//! Locks of one process, each a leaf with respect to the others (never two at once):
//! `mem` (held across faults, which may call a server), `files`, `namespace`, `family`,
//! and the lock inside `notes`.
//! The kernel's process table lock is taken before any of them, never after.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::error::KernelError;
use crate::fd::FdTable;
use crate::memory::Memory;
use crate::namespace::Namespace;
use crate::notes::Notes;

/// A process id; never reused within one kernel.
pub type Pid = u32;

/// What a parent's `wait` returns for an exited child (Plan 9's `Waitmsg`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitMsg {
    /// The child.
    pub pid: Pid,
    /// Its exit string ("" for success).
    pub status: String,
}

/// What a child of fork gets of its parent's namespace (Plan 9's `rfork` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NamespaceShare {
    /// The same namespace: mounts and unmounts of either are seen by both.
    #[default]
    Share,
    /// A copy (`RFNAMEG`): the same mounts, but later changes are private.
    Copy,
    /// An empty namespace (`RFCNAMEG`).
    Clean,
}

/// How to fork.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkFlags {
    /// The namespace of the child.
    pub namespace: NamespaceShare,
}

#[derive(Default)]
pub(crate) struct Family {
    pub(crate) parent: Option<Pid>,
    /// Children that have not exited.
    pub(crate) live_children: usize,
    /// Exited children not yet waited for.
    pub(crate) waitq: VecDeque<WaitMsg>,
}

/// One process.
pub(crate) struct Proc {
    pub(crate) pid: Pid,
    /// Notes posted to the process, and the interrupts of its calls in progress.
    pub(crate) notes: Notes,
    pub(crate) mem: Mutex<Memory>,
    pub(crate) files: Mutex<FdTable>,
    /// `None` once the process has exited.
    pub(crate) namespace: Mutex<Option<Arc<Namespace>>>,
    pub(crate) family: Mutex<Family>,
    /// Signalled when a child exits.
    pub(crate) child_exited: Condvar,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Proc {
    pub(crate) fn new(
        pid: Pid,
        parent: Option<Pid>,
        mem: Memory,
        files: FdTable,
        namespace: Arc<Namespace>,
    ) -> Self {
        Self {
            pid,
            notes: Notes::default(),
            mem: Mutex::new(mem),
            files: Mutex::new(files),
            namespace: Mutex::new(Some(namespace)),
            family: Mutex::new(Family {
                parent,
                ..Family::default()
            }),
            child_exited: Condvar::new(),
        }
    }

    /// The process's namespace.
    pub(crate) fn namespace(&self) -> Result<Arc<Namespace>, KernelError> {
        lock(&self.namespace)
            .clone()
            .ok_or(KernelError::NoSuchProcess(self.pid))
    }
}
