//! Queued clunks: the clunks of dropped channels, which nobody waits for.
//!
//! Dropping a `Chan` queues a `Tclunk`; whoever is reading when its reply comes
//! releases the fid (or abandons it on an error reply). At most
//! [`MAX_QUEUED_CLUNKS`] are on the wire at once: their replies are read only when
//! some caller waits, so without a bound dropped channels could take every tag and
//! leave none for the callers who would read the replies. The others wait, unsent,
//! for a later caller to send them.
//!
//! Lock rules: the queue, the count on the wire and the fid pool are under
//! `Mux::state`, never held across the send.

use alloc::vec::Vec;

use ninep::{Fcall, Msg};

use super::{Mux, Owner, Rpc, State, TagClass};
use crate::error::MntError;

/// Queued clunks on the wire at once. Nobody waits for their replies, so they are
/// read only when some caller waits: without a bound, dropped channels could take
/// every tag and leave none for the callers who would read the replies.
pub(crate) const MAX_QUEUED_CLUNKS: usize = 1024;

impl Mux {
    /// Queues a clunk of `fid`: nobody waits for the reply; whoever is reading when
    /// it comes releases the fid (or abandons it on an error reply). The `Tclunk` is
    /// sent now, or by a later caller if [`MAX_QUEUED_CLUNKS`] are on the wire.
    pub(crate) fn clunk_queued(&self, fid: u32) -> Result<(), MntError> {
        {
            let mut st = self.state.lock();
            Self::usable(&st)?;
            st.deferred_clunks.push_back(fid);
        }
        self.counters.clunk_queued();
        self.send_deferred_clunks();
        Ok(())
    }

    /// Sends the clunks queued but unsent, as many as the bound and the tags allow.
    pub(super) fn send_deferred_clunks(&self) {
        loop {
            let (rpc, fid) = {
                let mut st = self.state.lock();
                if Self::usable(&st).is_err() || st.queued_clunks >= MAX_QUEUED_CLUNKS {
                    return;
                }
                let Some(&fid) = st.deferred_clunks.front() else {
                    return;
                };
                let Some(tag) = st.tags.alloc_keeping(TagClass::Request.reserve()) else {
                    return;
                };
                st.deferred_clunks.pop_front();
                st.queued_clunks += 1;
                let rpc = Self::new_rpc(tag, ninep::mtype::TCLUNK, Owner::QueuedClunk(fid));
                st.in_flight.insert(tag, rpc.clone());
                (rpc, fid)
            };
            let mut buf = Vec::new();
            let fc = Fcall {
                tag: rpc.tag,
                msg: Msg::Tclunk { fid },
            };
            if let Err(e) = ninep::encode(&fc, &mut buf) {
                // A Tclunk always encodes; should it not, give the fid up.
                log::warn!("mnt: cannot encode a clunk of fid {fid}: {e}");
                let mut st = self.state.lock();
                if st.in_flight.remove(&rpc.tag).is_some() {
                    st.queued_clunks -= 1;
                    st.tags.free(rpc.tag);
                    self.tags_changed_if_wanted(&mut st);
                }
                drop(st);
                self.abandon_fid(fid);
                continue;
            }
            self.send(&rpc, &buf, &[]);
        }
    }

    /// The reply to a queued clunk of `fid` came (or the mount failed): nobody waits,
    /// so the clunk is finished here. Called under the state lock.
    pub(super) fn queued_clunk_answered(&self, st: &mut State, rpc: &Rpc, fid: u32, ok: bool) {
        if ok {
            st.fids.release(fid);
        } else {
            log::debug!("mnt: queued clunk of fid {fid} failed; abandoned");
        }
        st.queued_clunks -= 1;
        st.tags.free(rpc.tag);
        self.tags_changed_if_wanted(st);
    }
}
