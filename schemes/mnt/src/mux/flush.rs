//! Flush chains: an interrupted request, its `Tflush`es, and how a chain is settled.
//!
//! An interrupted caller sends a `Tflush` naming its request's tag and waits for the
//! `Rflush`; a further interruption sends another `Tflush` with the same (original)
//! tag. If the request's own reply arrives before the last `Rflush`, it wins and the
//! caller gets it. Every tag of the chain stays in use until the chain is settled (the
//! request's reply when no flush was sent, else the last `Rflush`), so no new request
//! can be confused with one a `Tflush` on the wire names. An interrupted caller that
//! finds no tag for its `Tflush` leaves without it, and its chain stays on the books,
//! every tag in use, under stand-ins whose replies are dropped, until the server
//! settles it.
//!
//! Lock rules: a chain is settled (or handed to stand-ins) in one critical section of
//! `Mux::state`, so the reader never sees half a chain; an rpc's `done` flag is set
//! under it too.

use crate::sync::Arc;
use crate::sync::Ordering;
use alloc::vec::Vec;

use super::{Mux, Owner, Rpc, State};

impl Mux {
    /// Finishes a caller's chain (its request and its flushes). Settled (its last
    /// message answered, or the mount failed): whatever has no reply yet is taken off
    /// the books, and every tag goes back. Not settled (no tag was free for another
    /// `Tflush`): the server may still answer, so the chain stays on the books under
    /// stand-ins whose replies are dropped, and its tags come back when its last
    /// message is answered.
    pub(super) fn settle(&self, chain: &[Arc<Rpc>]) {
        let Some(last) = chain.last() else {
            return;
        };
        let mut st = self.state.lock();
        if last.is_done() {
            for rpc in chain {
                if !rpc.is_done() {
                    if let Some(r) = st.in_flight.get(&rpc.tag) {
                        if Arc::ptr_eq(r, rpc) {
                            st.in_flight.remove(&rpc.tag);
                        }
                    }
                    rpc.done.store(true, Ordering::Release);
                }
                st.tags.free(rpc.tag);
            }
            self.tags_changed_if_wanted(&mut st);
            return;
        }
        log::debug!(
            "mnt: no tag to flush tag {}; its chain of {} is left to the server",
            chain[0].tag,
            chain.len()
        );
        let mut settles: Vec<u16> = chain.iter().map(|r| r.tag).collect();
        for (i, rpc) in chain.iter().enumerate() {
            // Done under the lock means answered and off the books; its tag waits for
            // the last message's answer. The last is not done.
            if rpc.is_done() {
                continue;
            }
            let owner = Owner::Abandoned {
                settles: if i + 1 == chain.len() {
                    core::mem::take(&mut settles)
                } else {
                    Vec::new()
                },
            };
            let stand_in = Self::new_rpc(rpc.tag, rpc.mtype, owner);
            if let Some(r) = st.in_flight.get_mut(&rpc.tag) {
                if Arc::ptr_eq(r, rpc) {
                    *r = stand_in;
                }
            }
            rpc.done.store(true, Ordering::Release);
        }
    }

    /// A message of a chain left to the server was answered (or the mount failed).
    /// The chain's last message settles it: `settles` lists every tag of the chain,
    /// which all come back now; the others' answers free nothing. Called under the
    /// state lock.
    pub(super) fn abandoned_answered(&self, st: &mut State, rpc: &Rpc, settles: &[u16]) {
        for &tag in settles {
            if tag != rpc.tag {
                // No reply will come for the rest of the chain now.
                if let Some(other) = st.in_flight.get(&tag) {
                    if matches!(other.owner, Owner::Abandoned { .. }) {
                        other.done.store(true, Ordering::Release);
                        st.in_flight.remove(&tag);
                    }
                }
            }
            st.tags.free(tag);
        }
        if !settles.is_empty() {
            log::debug!("mnt: abandoned flush chain of tag {} settled", rpc.tag);
            self.tags_changed_if_wanted(st);
        }
    }
}
