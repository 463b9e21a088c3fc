//! Waiting for a tag: what a request does when every tag it may take is in use.
//!
//! Tags run out only in extreme cases (a long flush chain, many queued clunks), and
//! are kept for the messages that most need them: the last [`FLUSH_RESERVE`] tags
//! are for `Tflush`es only. A request that finds no tag waits for one, reading
//! replies meanwhile if nobody else does, as the replies it reads are what free
//! tags. Whoever frees a tag while someone waits for one moves the tag epoch and
//! wakes the tag waiters.
//!
//! Lock rules: the "no tag" verdict and the waiter's `wants_tag` flag are set in one
//! critical section of `Mux::state`, and every free of a tag happens under it, so a
//! free after the verdict always moves the epoch the waiter sleeps on.

use crate::sync::Ordering;

use super::reader::Registered;
use super::{Enroll, Mux, Owner, Rpc, State, TagClass, Woke};
use crate::error::MntError;
use crate::rendez::Interrupt;
use crate::sync::Arc;
use ninep::Msg;

impl Mux {
    /// Registers and sends the request of caller `me` (followed on the wire by `data`,
    /// a `Twrite`'s borrowed bytes), waiting (interruptibly) for a tag if none is free;
    /// meanwhile it reads for everyone if nobody else does, as the replies it reads are
    /// what free tags.
    pub(super) fn start_request(
        &self,
        msg: Msg,
        data: &[&[u8]],
        me: &Registered<'_>,
        intr: &Interrupt,
    ) -> Result<Arc<Rpc>, MntError> {
        let (mtype, mut buf) = self.encode(msg, data)?;
        loop {
            let owner = Owner::Caller(me.rendez.clone());
            let seen = match self.enroll(mtype, owner, TagClass::Request, Some(me.id)) {
                Ok(rpc) => {
                    self.stop_wanting_tag(me);
                    buf[5..7].copy_from_slice(&rpc.tag.to_le_bytes());
                    self.send(&rpc, &buf, data);
                    return Ok(rpc);
                }
                Err(Enroll::Refused(e)) => return Err(e),
                Err(Enroll::NoTag { epoch }) => epoch,
            };
            let freed = || self.tag_epoch.load(Ordering::Acquire) != seen;
            if let Woke::Interrupted = self.wait(me, &freed, intr) {
                self.stop_wanting_tag(me);
                return Err(MntError::Interrupted);
            }
        }
    }

    /// Caller `me` no longer waits for a tag.
    pub(super) fn stop_wanting_tag(&self, me: &Registered<'_>) {
        let mut st = self.state.lock();
        if let Some(w) = st.waiters.get_mut(&me.id) {
            if w.wants_tag {
                w.wants_tag = false;
                st.tag_waiters -= 1;
            }
        }
    }

    /// A tag was freed or the mount failed: wake the callers waiting for a tag, and
    /// the reader, which may be one of them, asleep in `recv` for a message that may
    /// never come (the free may be a caller's settling of its chain, not a reply).
    pub(super) fn tags_changed(&self, st: &mut State) {
        self.tag_epoch.fetch_add(1, Ordering::AcqRel);
        for w in st.waiters.values() {
            if w.wants_tag {
                w.rendez.wakeup();
            }
        }
        if let Some(wake) = &st.reader_wake {
            wake.post();
        }
    }

    pub(super) fn tags_changed_if_wanted(&self, st: &mut State) {
        if st.tag_waiters > 0 {
            self.tags_changed(st);
        }
    }
}
