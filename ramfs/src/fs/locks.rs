//! POSIX byte-range record locks of one file.
//!
//! Locks belong to an owner: the connection (session) they came on, plus the client's
//! `client_id` and `proc_id`, as 9P2000.L's Tlock names them. An owner's own locks never
//! conflict with each other; setting a lock over an owner's existing range replaces that
//! part (splitting what is left), and unlocking removes it. Nothing here blocks: a
//! conflicting request is refused and the client retries (Linux does for F_SETLKW).
//!
//! A change is planned first ([`LockTable::plan`]) and applied after ([`LockTable::apply`]),
//! so the tree can charge the records' memory ([`RecordLock::memory_cost`]) between the
//! two and refuse a change that does not fit, changing nothing.

/// Longest `client_id` a lock owner may have, in bytes. Linux sends its host name
/// (at most 64 bytes); this leaves room for any real one, not for a buffer.
pub const CLIENT_ID_MAX: usize = 255;

/// Bytes charged for each lock record besides its `client_id`: an estimate of the
/// record's own size in the table.
const RECORD_COST: u64 = 64;

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LockOwner {
    /// The connection the lock was taken on, so a dropped connection frees its locks.
    pub session: u64,
    /// The client's name for itself (Linux: its host name).
    pub client_id: String,
    /// The process on the client.
    pub proc_id: u32,
}

/// Shared or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// A read lock: shared with other read locks.
    Read,
    /// A write lock: exclusive.
    Write,
}

/// One held lock over the bytes `start..=end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLock {
    pub owner: LockOwner,
    pub kind: LockKind,
    pub start: u64,
    /// Inclusive; `u64::MAX` means "to the end of the file, however long".
    pub end: u64,
}

impl RecordLock {
    /// The memory the record takes: its `client_id` is a copy of its own.
    pub fn memory_cost(&self) -> u64 {
        RECORD_COST + self.owner.client_id.len() as u64
    }
}

/// Most locks one file keeps, so a client cannot grow the table without bound.
pub const MAX_LOCKS_PER_FILE: usize = 1024;

/// Why a lock could not be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockRefusal {
    /// Another owner holds a conflicting lock.
    Conflict,
    /// The file has [`MAX_LOCKS_PER_FILE`] locks already.
    TableFull,
}

/// The locks of one file.
#[derive(Debug, Default)]
pub struct LockTable {
    locks: Vec<RecordLock>,
}

/// The locks a table would hold after a change ([`LockTable::plan`]).
#[derive(Debug)]
pub struct LockPlan {
    locks: Vec<RecordLock>,
}

impl LockPlan {
    /// The memory the planned records take.
    pub fn memory_cost(&self) -> u64 {
        cost_of(&self.locks)
    }
}

fn cost_of(locks: &[RecordLock]) -> u64 {
    locks.iter().map(RecordLock::memory_cost).sum()
}

/// The inclusive end of a range given as a start and a length (0 = to the end of file).
pub fn range_end(start: u64, length: u64) -> u64 {
    if length == 0 {
        u64::MAX
    } else {
        start.saturating_add(length - 1)
    }
}

impl LockTable {
    /// True if no lock is held.
    pub fn is_empty(&self) -> bool {
        self.locks.is_empty()
    }

    /// The held locks.
    pub fn locks(&self) -> &[RecordLock] {
        &self.locks
    }

    /// The first lock of another owner that a `kind` lock over `start..=end` conflicts
    /// with.
    pub fn conflict(
        &self,
        owner: &LockOwner,
        kind: LockKind,
        start: u64,
        end: u64,
    ) -> Option<&RecordLock> {
        self.locks.iter().find(|l| {
            l.owner != *owner
                && l.start <= end
                && start <= l.end
                && (kind == LockKind::Write || l.kind == LockKind::Write)
        })
    }

    /// The memory the held records take.
    pub fn memory_cost(&self) -> u64 {
        cost_of(&self.locks)
    }

    /// Sets (`Some(kind)`) or clears (`None`) the owner's lock over `start..=end`:
    /// [`LockTable::plan`] and [`LockTable::apply`] at once, for tests that charge no
    /// memory.
    #[cfg(test)]
    pub fn set(
        &mut self,
        owner: &LockOwner,
        kind: Option<LockKind>,
        start: u64,
        end: u64,
    ) -> Result<(), LockRefusal> {
        let plan = self.plan(owner, kind, start, end)?;
        self.apply(plan);
        Ok(())
    }

    /// What the table would hold after [`LockTable::set`], without changing it.
    pub fn plan(
        &self,
        owner: &LockOwner,
        kind: Option<LockKind>,
        start: u64,
        end: u64,
    ) -> Result<LockPlan, LockRefusal> {
        if let Some(k) = kind {
            if self.conflict(owner, k, start, end).is_some() {
                return Err(LockRefusal::Conflict);
            }
        }
        let mut kept = Vec::with_capacity(self.locks.len() + 2);
        for l in &self.locks {
            if l.owner != *owner || l.end < start || end < l.start {
                kept.push(l.clone());
                continue;
            }
            // Keep the parts of the owner's old lock outside the new range.
            if l.start < start {
                kept.push(RecordLock {
                    end: start - 1,
                    ..l.clone()
                });
            }
            if end < l.end {
                kept.push(RecordLock {
                    start: end + 1,
                    ..l.clone()
                });
            }
        }
        if let Some(kind) = kind {
            kept.push(RecordLock {
                owner: owner.clone(),
                kind,
                start,
                end,
            });
        }
        if kept.len() > MAX_LOCKS_PER_FILE && kept.len() > self.locks.len() {
            return Err(LockRefusal::TableFull);
        }
        Ok(LockPlan { locks: kept })
    }

    /// Makes a plan of this table's the table's locks.
    pub fn apply(&mut self, plan: LockPlan) {
        self.locks = plan.locks;
    }

    /// Drops every lock taken on `session`; returns the memory they took.
    pub fn release_session(&mut self, session: u64) -> u64 {
        let before = self.memory_cost();
        self.locks.retain(|l| l.owner.session != session);
        before - self.memory_cost()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(session: u64, pid: u32) -> LockOwner {
        LockOwner {
            session,
            client_id: "host".into(),
            proc_id: pid,
        }
    }

    #[test]
    fn read_locks_share_write_locks_exclude() {
        let mut t = LockTable::default();
        let (a, b) = (owner(1, 1), owner(1, 2));
        t.set(&a, Some(LockKind::Read), 0, 99).unwrap();
        t.set(&b, Some(LockKind::Read), 50, 149).unwrap();
        assert_eq!(
            t.set(&b, Some(LockKind::Write), 0, 9),
            Err(LockRefusal::Conflict)
        );
        assert!(
            t.set(&b, Some(LockKind::Write), 100, 200).is_ok(),
            "own lock"
        );
        assert!(t.conflict(&a, LockKind::Read, 120, 130).is_some());
        assert!(t.conflict(&a, LockKind::Read, 201, u64::MAX).is_none());
    }

    #[test]
    fn unlock_splits_a_range() {
        let mut t = LockTable::default();
        let a = owner(1, 1);
        t.set(&a, Some(LockKind::Write), 0, range_end(0, 0))
            .unwrap();
        t.set(&a, None, 10, 19).unwrap();
        let mut ranges: Vec<_> = t.locks().iter().map(|l| (l.start, l.end)).collect();
        ranges.sort();
        assert_eq!(ranges, vec![(0, 9), (20, u64::MAX)]);
        let b = owner(2, 1);
        assert!(t.conflict(&b, LockKind::Write, 10, 19).is_none());
        assert!(t.conflict(&b, LockKind::Read, 5, 12).is_some());
    }

    #[test]
    fn same_pid_on_another_connection_is_another_owner() {
        let mut t = LockTable::default();
        t.set(&owner(1, 7), Some(LockKind::Write), 0, 0).unwrap();
        assert_eq!(
            t.set(&owner(2, 7), Some(LockKind::Write), 0, 0),
            Err(LockRefusal::Conflict)
        );
        t.release_session(1);
        assert!(t.is_empty());
    }

    #[test]
    fn table_is_bounded() {
        let mut t = LockTable::default();
        let a = owner(1, 1);
        for i in 0..MAX_LOCKS_PER_FILE as u64 {
            t.set(&a, Some(LockKind::Read), i * 2, i * 2).unwrap();
        }
        let last = MAX_LOCKS_PER_FILE as u64 * 2;
        assert_eq!(
            t.set(&a, Some(LockKind::Read), last, last),
            Err(LockRefusal::TableFull)
        );
        assert_eq!(
            t.locks().len(),
            MAX_LOCKS_PER_FILE,
            "refusal changed nothing"
        );
    }

    #[test]
    fn range_end_of_length() {
        assert_eq!(range_end(5, 0), u64::MAX);
        assert_eq!(range_end(5, 1), 5);
        assert_eq!(range_end(u64::MAX - 1, 10), u64::MAX);
    }
}
