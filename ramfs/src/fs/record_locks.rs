//! POSIX record locks on files, owned by sessions.

use super::*;

impl Tree {
    /// Sets (`Some`) or clears (`None`) a record lock over `start..=end`. Never blocks:
    /// a conflict is refused. Each lock record counts against the memory limit
    /// ([`Error::NoSpace`], changing nothing, if the change does not fit; even an
    /// unlock may need a record more, to split a range). A `client_id` longer than
    /// [`CLIENT_ID_MAX`] is [`Error::Invalid`].
    pub fn lock(
        &mut self,
        id: NodeId,
        owner: &LockOwner,
        kind: Option<LockKind>,
        start: u64,
        end: u64,
    ) -> Result<core::result::Result<(), LockRefusal>> {
        check_lock_owner(owner)?;
        let n = self.nodes.get_mut(&id).ok_or(Error::NotFound)?;
        let plan = match n.locks.plan(owner, kind, start, end) {
            Ok(plan) => plan,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let (held, planned) = (n.locks.memory_cost(), plan.memory_cost());
        if planned > held {
            self.memory.reserve(planned - held)?;
        } else {
            self.memory.release(held - planned);
        }
        n.locks.apply(plan);
        if n.locks.is_empty() {
            self.locked.remove(&id);
        } else {
            self.locked.insert(id);
        }
        Ok(Ok(()))
    }

    /// The first lock of another owner that a `kind` lock over `start..=end` would
    /// conflict with (`F_GETLK`).
    pub fn conflicting_lock(
        &self,
        id: NodeId,
        owner: &LockOwner,
        kind: LockKind,
        start: u64,
        end: u64,
    ) -> Result<Option<RecordLock>> {
        check_lock_owner(owner)?;
        Ok(self
            .node(id)?
            .locks
            .conflict(owner, kind, start, end)
            .cloned())
    }

    /// The record locks held on a node.
    pub fn locks_of(&self, id: NodeId) -> Result<&[RecordLock]> {
        Ok(self.node(id)?.locks.locks())
    }

    /// Drops every record lock taken on `session`.
    pub fn release_session_locks(&mut self, session: u64) {
        let ids: Vec<NodeId> = self.locked.iter().copied().collect();
        for id in ids {
            if let Some(n) = self.nodes.get_mut(&id) {
                let freed = n.locks.release_session(session);
                self.memory.release(freed);
                if n.locks.is_empty() {
                    self.locked.remove(&id);
                }
            }
        }
    }
}
