//! RPC multiplexing over one transport: tags, the reader role, flushes, breakage.
//!
//! Many threads have requests in flight on one mount, one tag each. There is no
//! reader thread: as in Plan 9's devmnt, one of the waiting callers is the reader. It
//! receives messages and hands each to the request with its tag, until its own reply
//! has come; then it gives the role up and wakes another waiter to take it. So every
//! caller waits only for its own reply, and a server that never answers one request
//! stalls only that request's caller.
//!
//! An interrupted caller sends a `Tflush` naming its request's tag and waits for the
//! `Rflush`; a further interruption sends another `Tflush` with the same (original)
//! tag. If the request's own reply arrives before the last `Rflush`, it wins and the
//! caller gets it. Every tag of the chain stays in use until the chain is settled, so
//! no new request can be confused with one a `Tflush` on the wire names.
//!
//! Lock rules: `Mux::state` is a spin lock held only for bookkeeping, never across
//! a transport call, never while decoding or encoding. A `Rendez::wakeup` may be
//! called with it held (order: state → rendez), which is why a sleeper's condition
//! reads only atomics. `Rpc::outcome` is a leaf lock.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use ninep::{Dialect, Fcall, Msg, HEADER_LEN};

use crate::error::{BadReply, BrokenReason, MntError, TransportError};
use crate::fids::FidPool;
use crate::rendez::{Interrupt, Platform, Rendez};
use crate::stats::{Counters, MountStats};
use crate::tags::TagPool;
use crate::transport::Transport;

/// One request on the wire, from send until settled.
pub(crate) struct Rpc {
    tag: u16,
    /// The T-message type, to check the reply's.
    mtype: u8,
    done: AtomicBool,
    /// The reply (an error reply already turned into `Err`) or why there is none.
    outcome: spin::Mutex<Option<Result<Msg, MntError>>>,
    /// Woken when the request is done; `None` for a queued clunk nobody waits for.
    waker: Option<Arc<dyn Rendez>>,
    /// For a queued clunk: the fid to release (or abandon) when its reply comes.
    queued_clunk: Option<u32>,
}

impl Rpc {
    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// The bookkeeping of a mount, under `Mux::state`.
struct State {
    /// Requests whose reply has not been received, by tag.
    in_flight: BTreeMap<u16, Arc<Rpc>>,
    tags: TagPool,
    fids: FidPool,
    /// Live channels (and attaches in progress). The last one closes the transport.
    chans: usize,
    /// The first failure; once set, nothing more is sent.
    broken: Option<BrokenReason>,
    /// The transport has been closed (last channel gone, or hung up).
    closed: bool,
}

/// How a wait ended.
enum Woke {
    /// The request awaited is done (answered, or failed with the mount).
    Done,
    /// The caller's interrupt was posted (and is now consumed).
    Interrupted,
}

/// The multiplexer of one mount.
pub(crate) struct Mux {
    transport: Box<dyn Transport>,
    platform: Arc<dyn Platform>,
    dialect: Dialect,
    msize: u32,
    state: spin::Mutex<State>,
    /// No caller is the reader now (Plan 9's `m->rip == nil`).
    reader_free: AtomicBool,
    pub(crate) counters: Counters,
}

impl Drop for Mux {
    fn drop(&mut self) {
        // A mount that never had a channel (or outlived them all) still owns its
        // connection: let the server see end of file.
        self.transport.close();
    }
}

impl Mux {
    pub(crate) fn new(
        transport: Box<dyn Transport>,
        platform: Arc<dyn Platform>,
        dialect: Dialect,
        msize: u32,
        counters: Counters,
    ) -> Mux {
        Mux {
            transport,
            platform,
            dialect,
            msize,
            state: spin::Mutex::new(State {
                in_flight: BTreeMap::new(),
                tags: TagPool::new(),
                fids: FidPool::new(),
                chans: 0,
                broken: None,
                closed: false,
            }),
            reader_free: AtomicBool::new(true),
            counters,
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn msize(&self) -> u32 {
        self.msize
    }

    pub(crate) fn stats(&self) -> MountStats {
        let in_flight = self.state.lock().in_flight.len();
        self.counters.snapshot(in_flight)
    }

    /// Why the mount is broken, if it is.
    pub(crate) fn broken(&self) -> Option<BrokenReason> {
        self.state.lock().broken.clone()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    // ---- fids and channels ----

    /// Reserves a fid for a new channel and counts the channel, so the transport
    /// stays open while the channel is being made.
    pub(crate) fn new_chan_fid(&self) -> Result<u32, MntError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(MntError::Hungup);
        }
        if let Some(r) = &st.broken {
            return Err(MntError::Broken(r.clone()));
        }
        let fid = st.fids.alloc().ok_or(MntError::NoFids)?;
        st.chans += 1;
        Ok(fid)
    }

    /// The server no longer knows `fid`: it may be reused.
    pub(crate) fn release_fid(&self, fid: u32) {
        self.state.lock().fids.release(fid);
    }

    /// The server may or may not know `fid`: never use its number again.
    pub(crate) fn abandon_fid(&self, fid: u32) {
        log::debug!("mnt: abandoning fid {fid}");
        self.counters.fid_abandoned();
    }

    /// A channel is gone. The last one closes the transport (after every request
    /// sent before, so the server reads them, then end of file).
    pub(crate) fn chan_gone(&self) {
        let close = {
            let mut st = self.state.lock();
            st.chans = st.chans.saturating_sub(1);
            st.chans == 0 && !st.closed
        };
        if close {
            self.shut(MntError::Hungup);
        }
    }

    /// Closes the transport now; every request in flight fails with `why`.
    pub(crate) fn shut(&self, why: MntError) {
        {
            let mut st = self.state.lock();
            st.closed = true;
            let rpcs = core::mem::take(&mut st.in_flight);
            for rpc in rpcs.values() {
                Self::complete(&mut st, rpc, Err(why.clone()));
            }
        }
        self.transport.close();
    }

    // ---- requests ----

    /// Sends `msg` and waits for its reply, flushing it if `intr` is posted.
    /// An error reply comes back as [`MntError::Server`] or [`MntError::Errno`].
    pub(crate) fn rpc(&self, msg: Msg, intr: &Interrupt) -> Result<Msg, MntError> {
        if intr.take() {
            return Err(MntError::Interrupted);
        }
        let rendez = self.platform.rendez();
        let orig = self.start(msg, Some(rendez.clone()), None)?;
        let mut chain: Vec<Arc<Rpc>> = Vec::from([orig.clone()]);
        loop {
            let Some(last) = chain.last().cloned() else {
                break;
            };
            match self.wait(&last, &rendez, intr) {
                Woke::Done => break,
                Woke::Interrupted => {
                    // Nothing to flush if the reply is already here and no flush is
                    // on the wire yet: the reply wins outright.
                    if chain.len() == 1 && orig.is_done() {
                        break;
                    }
                    let flush = Msg::Tflush { oldtag: orig.tag };
                    log::debug!("mnt: flushing tag {}", orig.tag);
                    match self.start(flush, Some(rendez.clone()), None) {
                        Ok(f) => chain.push(f),
                        // Mount broken or closed: every rpc of the chain is done.
                        Err(_) => break,
                    }
                }
            }
        }
        self.settle(&chain);
        let outcome = orig.outcome.lock().take();
        outcome.unwrap_or(Err(MntError::Interrupted))
    }

    /// Sends `msg` as a queued clunk of `fid`: nobody waits for the reply; whoever is
    /// reading when it comes releases the fid (or abandons it on an error reply).
    pub(crate) fn clunk_queued(&self, fid: u32) -> Result<(), MntError> {
        self.counters.clunk_queued();
        self.start(Msg::Tclunk { fid }, None, Some(fid)).map(|_| ())
    }

    /// Registers and sends one request. Errors before sending leave nothing behind;
    /// a failed send breaks the mount, which completes the returned rpc.
    fn start(
        &self,
        msg: Msg,
        waker: Option<Arc<dyn Rendez>>,
        queued_clunk: Option<u32>,
    ) -> Result<Arc<Rpc>, MntError> {
        let mtype = msg.mtype();
        let mut buf = Vec::new();
        // Encode with a placeholder tag outside the lock; the real tag is patched in.
        ninep::encode(&Fcall { tag: 0, msg }, &mut buf).map_err(MntError::Encode)?;
        if buf.len() > self.msize as usize {
            return Err(MntError::TooLarge {
                len: buf.len(),
                msize: self.msize,
            });
        }
        let rpc = {
            let mut st = self.state.lock();
            if st.closed {
                return Err(MntError::Hungup);
            }
            if let Some(r) = &st.broken {
                return Err(MntError::Broken(r.clone()));
            }
            let tag = st.tags.alloc().ok_or(MntError::NoTags)?;
            let rpc = Arc::new(Rpc {
                tag,
                mtype,
                done: AtomicBool::new(false),
                outcome: spin::Mutex::new(None),
                waker,
                queued_clunk,
            });
            st.in_flight.insert(tag, rpc.clone());
            rpc
        };
        buf[5..7].copy_from_slice(&rpc.tag.to_le_bytes());
        match self.transport.send(&buf) {
            Ok(()) => self.counters.sent(mtype),
            Err(e) => self.fail_transport(e),
        }
        Ok(rpc)
    }

    /// Waits until `rpc` is done or `intr` is posted, reading for everyone while no
    /// one else does.
    fn wait(&self, rpc: &Arc<Rpc>, rendez: &Arc<dyn Rendez>, intr: &Interrupt) -> Woke {
        loop {
            if rpc.is_done() {
                return Woke::Done;
            }
            if intr.take() {
                return Woke::Interrupted;
            }
            if self
                .reader_free
                .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let woke = self.read_until_done(rpc, intr);
                self.gate();
                match woke {
                    Woke::Done => return Woke::Done,
                    Woke::Interrupted => {
                        intr.take();
                        return Woke::Interrupted;
                    }
                }
            }
            intr.sleep_on(rendez, &|| {
                rpc.is_done() || self.reader_free.load(Ordering::Acquire)
            });
        }
    }

    /// As the reader: receives and dispatches messages until `rpc` is done.
    fn read_until_done(&self, rpc: &Arc<Rpc>, intr: &Interrupt) -> Woke {
        loop {
            if rpc.is_done() {
                return Woke::Done;
            }
            if intr.is_pending() {
                return Woke::Interrupted;
            }
            match self.transport.recv(intr) {
                Ok(bytes) => self.dispatch(&bytes),
                Err(TransportError::Interrupted) => return Woke::Interrupted,
                Err(e) => {
                    self.fail_transport(e);
                    return Woke::Done;
                }
            }
        }
    }

    /// Gives up the reader role and wakes one waiter to take it (Plan 9's `mntgate`).
    fn gate(&self) {
        let st = self.state.lock();
        self.reader_free.store(true, Ordering::Release);
        for rpc in st.in_flight.values() {
            if rpc.is_done() {
                continue;
            }
            if let Some(w) = &rpc.waker {
                if w.wakeup() {
                    break;
                }
            }
        }
    }

    /// Marks `rpc` done with `outcome` and wakes its caller. Called with the state lock
    /// held (the rpc is already out of `in_flight`).
    fn complete(st: &mut State, rpc: &Rpc, outcome: Result<Msg, MntError>) {
        if rpc.is_done() {
            return;
        }
        if let Some(fid) = rpc.queued_clunk {
            // Nobody waits: finish the clunk here.
            match outcome {
                Ok(_) => st.fids.release(fid),
                Err(_) => log::debug!("mnt: queued clunk of fid {fid} failed; abandoned"),
            }
            st.tags.free(rpc.tag);
        } else {
            *rpc.outcome.lock() = Some(outcome);
        }
        rpc.done.store(true, Ordering::Release);
        if let Some(w) = &rpc.waker {
            w.wakeup();
        }
    }

    /// Finishes a caller's chain (its request and its flushes): whatever has no
    /// reply yet is taken off the wire's books, and every tag goes back.
    fn settle(&self, chain: &[Arc<Rpc>]) {
        let mut st = self.state.lock();
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
    }

    /// Hands one received message to its request. Anything malformed breaks the mount.
    fn dispatch(&self, bytes: &[u8]) {
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
        Self::complete(&mut st, &rpc, outcome);
    }

    /// Checks the length rules of a reply: at least 7 bytes, at most msize, and a
    /// size field that tells the truth.
    fn check_frame(&self, bytes: &[u8]) -> Result<(), BadReply> {
        check_frame(bytes, self.msize)
    }

    /// The transport failed: the mount is broken.
    fn fail_transport(&self, e: TransportError) {
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

    fn break_with(&self, reason: BrokenReason, bad: Option<BadReply>, culprit: Option<u16>) {
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
                Self::complete(&mut st, rpc, Err(err));
            }
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
