//! When the scheme daemon may exit: Redox's stand-in for end of file.
//!
//! A 9P server learns that its client is gone when the transport reaches end of file.
//! A Redox scheme has no such moment: the kernel never says "your clients are gone".
//! It does send `CloseMsg` for each of our handles once the last reference to it drops
//! (every dup closed, every holder exited, every mapping of it unmapped). So the
//! daemon keeps the count itself and may exit when
//!
//! - the root handle (the capability registered as the scheme, or handed to the process
//!   that started us) has been closed: nothing can open anything through us any more;
//! - no other handle is open; and
//! - no page is lent to the kernel for a mapping ([`crate::fs::Tree::lent_pages`]).
//!
//! ARCHITECTURE.md ("When ramfs goes away") maps this onto Plan 9's end of file.

use std::collections::BTreeSet;

/// A handle number as the kernel knows it.
pub type HandleId = usize;

/// Where the root handle is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// `scheme_root` has not been called: the scheme is not reachable yet, and a daemon
    /// that never registered has nothing to wait for.
    NotIssued,
    Open(HandleId),
    Closed,
}

/// Open handles and the root's state; the daemon's reason to stay.
#[derive(Debug, Clone)]
pub struct Lifetime {
    root: Root,
    open: BTreeSet<HandleId>,
}

/// What a `CloseMsg` closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The root handle: the scheme can no longer be reached.
    Root,
    /// An ordinary handle.
    Handle,
    /// A handle we do not know (closed twice, or never opened). Logged, not fatal.
    Unknown,
}

impl Default for Lifetime {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifetime {
    /// Nothing issued yet.
    pub fn new() -> Self {
        Lifetime {
            root: Root::NotIssued,
            open: BTreeSet::new(),
        }
    }

    /// `scheme_root` handed out `id`. Issuing a second root replaces the first (a
    /// daemon registers once; a second registration would be a bug we do not amplify).
    pub fn root_issued(&mut self, id: HandleId) {
        self.root = Root::Open(id);
    }

    /// The root handle's id while it is open.
    pub fn root(&self) -> Option<HandleId> {
        match self.root {
            Root::Open(id) => Some(id),
            Root::NotIssued | Root::Closed => None,
        }
    }

    /// `openat` (or `dup`) handed out `id`.
    pub fn opened(&mut self, id: HandleId) {
        self.open.insert(id);
    }

    /// The kernel sent `CloseMsg` for `id`.
    pub fn closed(&mut self, id: HandleId) -> Closed {
        if self.root == Root::Open(id) {
            self.root = Root::Closed;
            Closed::Root
        } else if self.open.remove(&id) {
            Closed::Handle
        } else {
            Closed::Unknown
        }
    }

    /// Handles open now, the root not included.
    pub fn open_handles(&self) -> usize {
        self.open.len()
    }

    /// Whether the root handle has been closed.
    pub fn root_closed(&self) -> bool {
        self.root == Root::Closed
    }

    /// The exit rule: the root is closed, no handle is open, and none of the
    /// `lent_pages` is still lent.
    pub fn may_exit(&self, lent_pages: u64) -> bool {
        self.root_closed() && self.open.is_empty() && lent_pages == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_only_after_root_handles_and_pages_are_gone() {
        let mut life = Lifetime::new();
        assert!(
            !life.may_exit(0),
            "never registered: nothing to wait for, never exit"
        );
        life.root_issued(0);
        life.opened(1);
        life.opened(2);
        assert!(!life.may_exit(0));
        assert_eq!(life.closed(0), Closed::Root);
        assert!(life.root_closed());
        assert!(!life.may_exit(0), "two handles still open");
        assert_eq!(life.closed(1), Closed::Handle);
        assert_eq!(life.closed(2), Closed::Handle);
        assert!(!life.may_exit(3), "three pages still lent");
        assert!(life.may_exit(0));
    }

    #[test]
    fn handles_closed_before_the_root_do_not_end_it() {
        let mut life = Lifetime::new();
        life.root_issued(5);
        life.opened(6);
        assert_eq!(life.closed(6), Closed::Handle);
        assert_eq!(life.open_handles(), 0);
        assert!(!life.may_exit(0), "the scheme is still reachable");
        assert_eq!(life.root(), Some(5));
        assert_eq!(life.closed(5), Closed::Root);
        assert_eq!(life.root(), None);
        assert!(life.may_exit(0));
    }

    #[test]
    fn unknown_and_repeated_closes_are_reported_and_change_nothing() {
        let mut life = Lifetime::new();
        life.root_issued(0);
        life.opened(1);
        assert_eq!(life.closed(9), Closed::Unknown);
        assert_eq!(life.closed(1), Closed::Handle);
        assert_eq!(life.closed(1), Closed::Unknown);
        assert_eq!(life.closed(0), Closed::Root);
        assert_eq!(life.closed(0), Closed::Unknown, "the root closes once");
        assert!(life.may_exit(0));
    }
}
