//! The memory limit: bytes in use against bytes allowed.
//!
//! What counts: each allocated file page ([`super::data::PAGE_SIZE`] bytes), each
//! directory entry's name, each symlink target, each extended attribute's name and value,
//! and a fixed [`NODE_COST`] for every file; each record lock
//! ([`super::RecordLock::memory_cost`]) and each user or group name a client registers
//! (`Users::registration_cost`); also what front ends hold for clients through
//! [`super::Tree::reserve_pending`] (extended attribute values being written or read
//! through 9P fids). Everything is reserved before it is changed, so an operation that
//! would go past the limit fails and changes nothing.
//!
//! The account is atomic: a write under the tree's shared lock reserves its pages
//! while other writes reserve theirs, and a reservation either takes all its bytes
//! (one compare-and-swap that sees them fit) or none, so the total never passes the
//! limit and never drifts.

#[cfg(all(test, loom))]
use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(all(test, loom)))]
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Bytes charged for each file, directory or link target besides its contents: an
/// estimate of the bookkeeping it needs, so that empty files are not free.
pub const NODE_COST: u64 = 256;

/// Bytes in use and the limit.
#[derive(Debug)]
pub struct Memory {
    limit: u64,
    used: AtomicU64,
}

impl Memory {
    /// An account with nothing in use.
    pub fn new(limit: u64) -> Memory {
        Memory {
            limit,
            used: AtomicU64::new(0),
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Bytes still free.
    pub fn free(&self) -> u64 {
        self.limit.saturating_sub(self.used())
    }

    /// True if `bytes` more would fit.
    pub fn fits(&self, bytes: u64) -> bool {
        bytes <= self.free()
    }

    /// Takes `bytes`, or fails with [`Error::NoSpace`] and takes nothing.
    pub fn reserve(&self, bytes: u64) -> Result<()> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .map(|_| ())
            .map_err(|_| Error::NoSpace)
    }

    /// Gives back `bytes` taken earlier.
    pub fn release(&self, bytes: u64) {
        let before = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            })
            .unwrap_or_else(|used| used);
        debug_assert!(bytes <= before, "releasing more than reserved");
    }
}

/// loom's model of the account: two threads reserve and one releases at once, in every
/// interleaving loom finds; the account never passes the limit and ends exactly at what
/// the successful reservations add up to. A check-then-add reservation (a load and a
/// store) fails it.
#[cfg(all(test, loom))]
mod loom_model {
    use super::Memory;
    use loom::sync::Arc;
    use loom::thread;

    #[test]
    fn reservations_never_pass_the_limit_and_add_up() {
        loom::model(|| {
            let m = Arc::new(Memory::new(10));
            m.reserve(4).unwrap();
            let a = {
                let m = Arc::clone(&m);
                thread::spawn(move || {
                    let ok = m.reserve(5).is_ok();
                    assert!(m.used() <= m.limit());
                    ok
                })
            };
            let b = {
                let m = Arc::clone(&m);
                thread::spawn(move || {
                    let ok = m.reserve(3).is_ok();
                    assert!(m.used() <= m.limit());
                    m.release(4);
                    ok
                })
            };
            let (a, b) = (a.join().unwrap(), b.join().unwrap());
            assert!(a || b, "one of them always fits");
            let expected = if a { 5 } else { 0 } + if b { 3 } else { 0 };
            assert_eq!(m.used(), expected);
        });
    }
}
