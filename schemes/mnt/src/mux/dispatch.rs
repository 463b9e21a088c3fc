//! Dispatch: a received message to the request with its tag, and what breaks a mount.
//!
//! A reply is checked (length rules, known tag, decodable, of the type asked for)
//! and its outcome handed to the rpc's owner. Anything malformed breaks the mount:
//! the culprit's request fails with `BadReply`, all others with `Broken`, and the
//! connection is closed.
//!
//! Lock rules: decoding happens outside `Mux::state` (it allocates); completion
//! happens under it, and `Rpc::outcome` (a leaf) is taken inside it. The transport
//! is closed after the state lock is released.

use crate::sync::Ordering;

use ninep::{Dialect, Msg, HEADER_LEN};

use super::{Mux, Owner, Rpc, State};
use crate::error::{BadReply, BrokenReason, MntError, TransportError};

impl Mux {
    /// Marks `rpc` done with `outcome` and wakes its caller. Called with the state lock
    /// held (the rpc is already out of `in_flight`).
    pub(super) fn complete(&self, st: &mut State, rpc: &Rpc, outcome: Result<Msg, MntError>) {
        if rpc.is_done() {
            return;
        }
        match &rpc.owner {
            Owner::Caller(_) => *rpc.outcome.lock() = Some(outcome),
            Owner::QueuedClunk(fid) => self.queued_clunk_answered(st, rpc, *fid, outcome.is_ok()),
            Owner::Abandoned { settles } => self.abandoned_answered(st, rpc, settles),
        }
        rpc.done.store(true, Ordering::Release);
        if let Owner::Caller(w) = &rpc.owner {
            w.wakeup();
        }
    }

    /// Hands one received message to its request. Anything malformed breaks the mount.
    pub(super) fn dispatch(&self, bytes: &[u8]) {
        let len = bytes.len();
        let culprit = (len >= HEADER_LEN).then(|| u16::from_le_bytes([bytes[5], bytes[6]]));
        if let Err(bad) = self.check_frame(bytes) {
            self.break_mount(BadReply::clone(&bad), culprit);
            return;
        }
        let Some(tag) = culprit else {
            self.break_mount(BadReply::TooShort(len), None);
            return;
        };
        // Decode outside the lock: it allocates.
        let decoded = ninep::decode(bytes, self.dialect);
        let mut st = self.state.lock();
        let Some(rpc) = st.in_flight.remove(&tag) else {
            drop(st);
            self.break_mount(BadReply::UnknownTag(tag), None);
            return;
        };
        let fc = match decoded {
            Ok(fc) => fc,
            Err(e) => {
                // Put it back so break_mount reports BadReply to this very request.
                st.in_flight.insert(tag, rpc);
                drop(st);
                self.break_mount(BadReply::Decode(e.kind), Some(tag));
                return;
            }
        };
        let got = fc.msg.mtype();
        let outcome = match fc.msg {
            Msg::Rerror { ename } if self.dialect == Dialect::P2000 => Err(MntError::Server(ename)),
            Msg::Rlerror { ecode } if self.dialect == Dialect::L => Err(MntError::Errno(ecode)),
            m if got == rpc.mtype.wrapping_add(1) => Ok(m),
            _ => {
                st.in_flight.insert(tag, rpc.clone());
                drop(st);
                self.break_mount(
                    BadReply::WrongType {
                        sent: rpc.mtype,
                        got,
                    },
                    Some(tag),
                );
                return;
            }
        };
        if let Ok(Msg::Rread { data }) = &outcome {
            self.counters.read(data.len());
        }
        self.counters.replied();
        self.complete(&mut st, &rpc, outcome);
    }

    /// Checks the length rules of a reply: at least 7 bytes, at most msize, and a
    /// size field that tells the truth.
    pub(super) fn check_frame(&self, bytes: &[u8]) -> Result<(), BadReply> {
        check_frame(bytes, self.msize)
    }

    /// The transport failed: the mount is broken.
    pub(super) fn fail_transport(&self, e: TransportError) {
        {
            let st = self.state.lock();
            // Closed on purpose, or already broken (and so closed by us): every
            // request has been failed already.
            if st.closed || st.broken.is_some() {
                return;
            }
        }
        log::warn!("mnt: transport failed: {e}");
        self.break_with(BrokenReason::Transport(e), None, None);
    }

    /// A malformed reply: the request `culprit` (if known) fails with `BadReply`, all
    /// others with `Broken`, and the connection is closed.
    pub(crate) fn break_mount(&self, bad: BadReply, culprit: Option<u16>) {
        log::warn!("mnt: server broke the protocol: {bad}");
        self.break_with(BrokenReason::BadReply(bad.clone()), Some(bad), culprit);
    }

    pub(super) fn break_with(
        &self,
        reason: BrokenReason,
        bad: Option<BadReply>,
        culprit: Option<u16>,
    ) {
        {
            let mut st = self.state.lock();
            if st.broken.is_none() {
                st.broken = Some(reason.clone());
            }
            let rpcs = core::mem::take(&mut st.in_flight);
            for (tag, rpc) in rpcs.iter() {
                let err = match (&bad, culprit) {
                    (Some(b), Some(c)) if c == *tag => MntError::BadReply(b.clone()),
                    _ => MntError::Broken(reason.clone()),
                };
                self.complete(&mut st, rpc, Err(err));
            }
            st.deferred_clunks.clear();
            self.tags_changed(&mut st);
        }
        // Framing can no longer be trusted: hang up (outside the lock).
        self.transport.close();
    }
}

/// The length rules of a reply: at least 7 bytes, at most `msize`, and a size field
/// equal to the length.
pub(crate) fn check_frame(bytes: &[u8], msize: u32) -> Result<(), BadReply> {
    let len = bytes.len();
    if len < HEADER_LEN {
        return Err(BadReply::TooShort(len));
    }
    if len > msize as usize {
        return Err(BadReply::TooLong { len, msize });
    }
    let declared = ninep::peek_size(bytes).unwrap_or(0);
    if declared as usize != len {
        if (declared as usize) < HEADER_LEN {
            return Err(BadReply::TooShort(declared as usize));
        }
        return Err(BadReply::SizeMismatch {
            declared,
            actual: len,
        });
    }
    Ok(())
}
