//! RPC multiplexing over one transport: tags, the reader role, flushes, breakage.
//!
//! Many threads have requests in flight on one mount, one tag each. There is no
//! reader thread: as in Plan 9's devmnt, one of the waiting callers is the reader. It
//! receives messages and hands each to the request with its tag, until its own reply
//! has come; then it gives the role up and wakes another waiter to take it. So every
//! caller waits only for its own reply, and a server that never answers one request
//! stalls only that request's caller. A caller woken to take the role that leaves
//! instead (its reply came meanwhile) passes it on as it goes.
//!
//! An interrupted caller sends a `Tflush` naming its request's tag and waits for the
//! `Rflush`; a further interruption sends another `Tflush` with the same (original)
//! tag. If the request's own reply arrives before the last `Rflush`, it wins and the
//! caller gets it. Every tag of the chain stays in use until the chain is settled (the
//! request's reply when no flush was sent, else the last `Rflush`), so no new request
//! can be confused with one a `Tflush` on the wire names.
//!
//! Tags run out only in extreme cases, and are kept for the messages that most need
//! them: the last [`FLUSH_RESERVE`] tags are for `Tflush`es only, and at most
//! [`MAX_QUEUED_CLUNKS`] clunks of dropped channels are on the wire at once (the
//! others wait, unsent, for a later caller to send them). A request that finds no tag
//! waits for one, reading replies meanwhile if nobody else does. An interrupted caller
//! that finds no tag for its `Tflush` leaves without it, and its chain stays on the
//! books, every tag in use, until the server settles it.
//!
//! Lock rules: `Mux::state` is a spin lock held only for bookkeeping, never across
//! a transport call, never while decoding or encoding. A `Rendez::wakeup` may be
//! called with it held (order: state → rendez), which is why a sleeper's condition
//! reads only atomics. `Rpc::outcome` is a leaf lock.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ninep::{Dialect, Fcall, Msg, HEADER_LEN};

use crate::error::{BadReply, BrokenReason, MntError, TransportError};
use crate::fids::FidPool;
use crate::rendez::{Interrupt, Platform, Rendez};
use crate::stats::{Counters, MountStats};
use crate::tags::TagPool;
use crate::transport::Transport;

/// Tags only a `Tflush` may take, so that an interrupted caller can tell the server
/// even when requests have taken every other tag.
pub(crate) const FLUSH_RESERVE: usize = 64;

/// Queued clunks on the wire at once. Nobody waits for their replies, so they are
/// read only when some caller waits: without a bound, dropped channels could take
/// every tag and leave none for the callers who would read the replies.
pub(crate) const MAX_QUEUED_CLUNKS: usize = 1024;

/// One request on the wire, from send until settled.
pub(crate) struct Rpc {
    tag: u16,
    /// The T-message type, to check the reply's.
    mtype: u8,
    done: AtomicBool,
    /// The reply (an error reply already turned into `Err`) or why there is none.
    outcome: spin::Mutex<Option<Result<Msg, MntError>>>,
    owner: Owner,
}

/// Who the reply of an rpc is for, and what its arrival settles.
enum Owner {
    /// A caller, woken on this rendezvous when the rpc is done.
    Caller(Arc<dyn Rendez>),
    /// A queued clunk of this fid: nobody waits; the reply releases the fid (an error
    /// reply abandons it) and the tag.
    QueuedClunk(u32),
    /// An rpc of a flush chain whose caller left without settling it (no tag was free
    /// for another `Tflush`); its reply is dropped. The chain's last message settles
    /// it: its reply frees every tag in `settles` (the whole chain's, its own
    /// included); the others' replies free nothing (a `Tflush` may still name them).
    Abandoned { settles: Vec<u16> },
}

impl Rpc {
    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// Which tags a message may take.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TagClass {
    /// Any request but a flush: not the last [`FLUSH_RESERVE`].
    Request,
    /// A `Tflush`: any free tag.
    Flush,
}

impl TagClass {
    fn reserve(self) -> usize {
        match self {
            TagClass::Request => FLUSH_RESERVE,
            TagClass::Flush => 0,
        }
    }
}

/// A caller inside [`Mux::rpc`]: someone [`Mux::gate`] may hand the reader role to.
struct Waiter {
    rendez: Arc<dyn Rendez>,
    /// It waits for a free tag (not yet for a reply).
    wants_tag: bool,
    /// `gate` woke it to take the reader role (cleared when it takes it): if it
    /// leaves without, it passes the role on.
    offered: bool,
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
    /// Callers inside `rpc`, in arrival order, by a number of their own.
    waiters: BTreeMap<u64, Waiter>,
    next_waiter: u64,
    /// How many waiters want a tag.
    tag_waiters: usize,
    /// Queued clunks sent and not yet answered.
    queued_clunks: usize,
    /// Fids of dropped channels whose `Tclunk` is not sent yet (see
    /// [`MAX_QUEUED_CLUNKS`]), oldest first.
    deferred_clunks: VecDeque<u32>,
}

/// Why an rpc could not be registered.
enum Enroll {
    /// The mount no longer sends.
    Refused(MntError),
    /// No tag of its class is free; `epoch` is the tag epoch when this was seen.
    NoTag { epoch: u64 },
}

/// How a wait ended.
enum Woke {
    /// What was awaited happened (or the mount failed, which ends every wait).
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
    /// Moves whenever a tag is freed while a caller waits for one, and when the mount
    /// breaks or closes: what a caller waiting for a tag sleeps on.
    tag_epoch: AtomicU64,
    pub(crate) counters: Counters,
}

impl Drop for Mux {
    fn drop(&mut self) {
        // A mount that never had a channel (or outlived them all) still owns its
        // connection: let the server see end of file.
        self.transport.close();
    }
}

/// A caller's registration as a [`Waiter`], from entering `rpc` to leaving it.
struct Registered<'a> {
    mux: &'a Mux,
    id: u64,
    rendez: Arc<dyn Rendez>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut st = self.mux.state.lock();
        let Some(me) = st.waiters.remove(&self.id) else {
            return;
        };
        if me.wants_tag {
            st.tag_waiters -= 1;
        }
        // Woken to be the reader, but leaving (its reply came first, or it gave up):
        // someone else must read, or the others sleep with nobody reading.
        if me.offered && self.mux.reader_free.load(Ordering::Acquire) {
            Mux::offer_reader_role(&mut st);
        }
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
                waiters: BTreeMap::new(),
                next_waiter: 0,
                tag_waiters: 0,
                queued_clunks: 0,
                deferred_clunks: VecDeque::new(),
            }),
            reader_free: AtomicBool::new(true),
            tag_epoch: AtomicU64::new(0),
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
                self.complete(&mut st, rpc, Err(why.clone()));
            }
            // Unsent clunks die with the connection: the server forgets every fid.
            st.deferred_clunks.clear();
            self.tags_changed(&mut st);
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
        self.send_deferred_clunks();
        let me = self.register(self.platform.rendez());
        let orig = self.start_request(msg, &me, intr)?;
        let mut chain: Vec<Arc<Rpc>> = Vec::from([orig.clone()]);
        loop {
            let Some(last) = chain.last().cloned() else {
                break;
            };
            match self.wait(&me, &|| last.is_done(), intr) {
                Woke::Done => break,
                Woke::Interrupted => {
                    // Nothing to flush if the reply is already here and no flush is
                    // on the wire yet: the reply wins outright.
                    if chain.len() == 1 && orig.is_done() {
                        break;
                    }
                    let flush = Msg::Tflush { oldtag: orig.tag };
                    log::debug!("mnt: flushing tag {}", orig.tag);
                    match self.start(flush, Owner::Caller(me.rendez.clone()), TagClass::Flush) {
                        Ok(f) => chain.push(f),
                        // Mount broken or closed: every rpc of the chain is done. No
                        // tag: `settle` leaves the chain on the books.
                        Err(_) => break,
                    }
                }
            }
        }
        self.settle(&chain);
        drop(me);
        let outcome = orig.outcome.lock().take();
        outcome.unwrap_or(Err(MntError::Interrupted))
    }

    /// Registers the calling thread as a waiter, sleeping on `rendez`.
    fn register(&self, rendez: Arc<dyn Rendez>) -> Registered<'_> {
        let mut st = self.state.lock();
        let id = st.next_waiter;
        st.next_waiter += 1;
        st.waiters.insert(
            id,
            Waiter {
                rendez: rendez.clone(),
                wants_tag: false,
                offered: false,
            },
        );
        Registered {
            mux: self,
            id,
            rendez,
        }
    }

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
    fn send_deferred_clunks(&self) {
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
            self.send(&rpc, &buf);
        }
    }

    /// `Ok` while requests may be sent.
    fn usable(st: &State) -> Result<(), MntError> {
        if st.closed {
            return Err(MntError::Hungup);
        }
        if let Some(r) = &st.broken {
            return Err(MntError::Broken(r.clone()));
        }
        Ok(())
    }

    fn new_rpc(tag: u16, mtype: u8, owner: Owner) -> Arc<Rpc> {
        Arc::new(Rpc {
            tag,
            mtype,
            done: AtomicBool::new(false),
            outcome: spin::Mutex::new(None),
            owner,
        })
    }

    /// Encodes `msg` with a placeholder tag (patched in by [`Self::send`]).
    fn encode(&self, msg: Msg) -> Result<(u8, Vec<u8>), MntError> {
        let mtype = msg.mtype();
        let mut buf = Vec::new();
        ninep::encode(&Fcall { tag: 0, msg }, &mut buf).map_err(MntError::Encode)?;
        if buf.len() > self.msize as usize {
            return Err(MntError::TooLarge {
                len: buf.len(),
                msize: self.msize,
            });
        }
        Ok((mtype, buf))
    }

    /// Registers an rpc of type `mtype` under a free tag of `class`. With no such tag
    /// nothing is left behind, and if `waiter` is given it is flagged as wanting a
    /// tag, in the same critical section, so that any later free moves the epoch.
    fn enroll(
        &self,
        mtype: u8,
        owner: Owner,
        class: TagClass,
        waiter: Option<u64>,
    ) -> Result<Arc<Rpc>, Enroll> {
        let mut st = self.state.lock();
        Self::usable(&st).map_err(Enroll::Refused)?;
        let Some(tag) = st.tags.alloc_keeping(class.reserve()) else {
            if let Some(w) = waiter.and_then(|id| st.waiters.get_mut(&id)) {
                if !w.wants_tag {
                    w.wants_tag = true;
                    st.tag_waiters += 1;
                }
            }
            return Err(Enroll::NoTag {
                epoch: self.tag_epoch.load(Ordering::Acquire),
            });
        };
        let rpc = Self::new_rpc(tag, mtype, owner);
        st.in_flight.insert(tag, rpc.clone());
        Ok(rpc)
    }

    /// Puts a registered rpc, encoded with its tag, on the wire. A failed send breaks
    /// the mount, which completes the rpc.
    fn send(&self, rpc: &Rpc, buf: &[u8]) {
        match self.transport.send(buf) {
            Ok(()) => self.counters.sent(rpc.mtype),
            Err(e) => self.fail_transport(e),
        }
    }

    /// Registers and sends one message, if a tag of `class` is free now (else
    /// [`MntError::NoTags`]). Errors before sending leave nothing behind.
    fn start(&self, msg: Msg, owner: Owner, class: TagClass) -> Result<Arc<Rpc>, MntError> {
        let (mtype, mut buf) = self.encode(msg)?;
        let rpc = self
            .enroll(mtype, owner, class, None)
            .map_err(|e| match e {
                Enroll::Refused(e) => e,
                Enroll::NoTag { .. } => MntError::NoTags,
            })?;
        buf[5..7].copy_from_slice(&rpc.tag.to_le_bytes());
        self.send(&rpc, &buf);
        Ok(rpc)
    }

    /// Registers and sends the request of caller `me`, waiting (interruptibly) for a
    /// tag if none is free; meanwhile it reads for everyone if nobody else does, as
    /// the replies it reads are what free tags.
    fn start_request(
        &self,
        msg: Msg,
        me: &Registered<'_>,
        intr: &Interrupt,
    ) -> Result<Arc<Rpc>, MntError> {
        let (mtype, mut buf) = self.encode(msg)?;
        loop {
            let owner = Owner::Caller(me.rendez.clone());
            let seen = match self.enroll(mtype, owner, TagClass::Request, Some(me.id)) {
                Ok(rpc) => {
                    self.stop_wanting_tag(me);
                    buf[5..7].copy_from_slice(&rpc.tag.to_le_bytes());
                    self.send(&rpc, &buf);
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
    fn stop_wanting_tag(&self, me: &Registered<'_>) {
        let mut st = self.state.lock();
        if let Some(w) = st.waiters.get_mut(&me.id) {
            if w.wants_tag {
                w.wants_tag = false;
                st.tag_waiters -= 1;
            }
        }
    }

    /// Waits until `done()` holds or `intr` is posted, reading for everyone while no
    /// one else does.
    fn wait(&self, me: &Registered<'_>, done: &dyn Fn() -> bool, intr: &Interrupt) -> Woke {
        loop {
            if done() {
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
                if let Some(w) = self.state.lock().waiters.get_mut(&me.id) {
                    w.offered = false;
                }
                let woke = self.read_until(done, intr);
                self.gate();
                match woke {
                    Woke::Done => return Woke::Done,
                    Woke::Interrupted => {
                        intr.take();
                        return Woke::Interrupted;
                    }
                }
            }
            intr.sleep_on(&me.rendez, &|| {
                done() || self.reader_free.load(Ordering::Acquire)
            });
        }
    }

    /// As the reader: receives and dispatches messages until `done()` holds.
    fn read_until(&self, done: &dyn Fn() -> bool, intr: &Interrupt) -> Woke {
        loop {
            if done() {
                return Woke::Done;
            }
            if intr.is_pending() {
                return Woke::Interrupted;
            }
            match self.transport.recv(intr) {
                Ok(bytes) => self.dispatch(&bytes),
                Err(TransportError::Interrupted) => return Woke::Interrupted,
                Err(e) => {
                    // Breaks (or has closed) the mount: every wait is over.
                    self.fail_transport(e);
                    return Woke::Done;
                }
            }
        }
    }

    /// Gives up the reader role and wakes one waiter to take it (Plan 9's `mntgate`).
    fn gate(&self) {
        let mut st = self.state.lock();
        self.reader_free.store(true, Ordering::Release);
        Self::offer_reader_role(&mut st);
    }

    /// Wakes the first sleeping waiter, to take the free reader role. A waiter that
    /// leaves instead passes it on (see [`Registered`]'s drop).
    fn offer_reader_role(st: &mut State) {
        for w in st.waiters.values_mut() {
            if w.rendez.wakeup() {
                w.offered = true;
                break;
            }
        }
    }

    /// A tag was freed or the mount failed: wake the callers waiting for a tag.
    fn tags_changed(&self, st: &mut State) {
        self.tag_epoch.fetch_add(1, Ordering::AcqRel);
        for w in st.waiters.values() {
            if w.wants_tag {
                w.rendez.wakeup();
            }
        }
    }

    fn tags_changed_if_wanted(&self, st: &mut State) {
        if st.tag_waiters > 0 {
            self.tags_changed(st);
        }
    }

    /// Marks `rpc` done with `outcome` and wakes its caller. Called with the state lock
    /// held (the rpc is already out of `in_flight`).
    fn complete(&self, st: &mut State, rpc: &Rpc, outcome: Result<Msg, MntError>) {
        if rpc.is_done() {
            return;
        }
        match &rpc.owner {
            Owner::Caller(_) => *rpc.outcome.lock() = Some(outcome),
            Owner::QueuedClunk(fid) => {
                // Nobody waits: finish the clunk here.
                match outcome {
                    Ok(_) => st.fids.release(*fid),
                    Err(_) => log::debug!("mnt: queued clunk of fid {fid} failed; abandoned"),
                }
                st.queued_clunks -= 1;
                st.tags.free(rpc.tag);
                self.tags_changed_if_wanted(st);
            }
            Owner::Abandoned { settles } => {
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
        rpc.done.store(true, Ordering::Release);
        if let Owner::Caller(w) = &rpc.owner {
            w.wakeup();
        }
    }

    /// Finishes a caller's chain (its request and its flushes). Settled (its last
    /// message answered, or the mount failed): whatever has no reply yet is taken off
    /// the books, and every tag goes back. Not settled (no tag was free for another
    /// `Tflush`): the server may still answer, so the chain stays on the books under
    /// stand-ins whose replies are dropped, and its tags come back when its last
    /// message is answered.
    fn settle(&self, chain: &[Arc<Rpc>]) {
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
        self.complete(&mut st, &rpc, outcome);
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
