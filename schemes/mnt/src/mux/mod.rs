//! RPC multiplexing over one transport: tags, the reader role, flushes, breakage.
//!
//! Many threads have requests in flight on one mount, one tag each. There is no
//! reader thread: as in Plan 9's devmnt, one of the waiting callers is the reader
//! (`reader`). It receives messages and hands each to the request with its tag
//! (`dispatch`), until its own reply has come. So every caller waits only for its own
//! reply, and a server that never answers one request stalls only that request's
//! caller. An interrupted request is flushed (`flush`); a request that finds no tag
//! waits for one (`tagwait`); dropped channels' clunks are queued (`clunks`).
//!
//! Lock rules (every file of this module keeps them):
//! - `Mux::state` is a spin lock held only for bookkeeping, never across a transport
//!   call, never while decoding or encoding.
//! - A `Rendez::wakeup` may be called with it held (order: state → rendez), which is
//!   why a sleeper's condition reads only atomics and interrupts' leaf locks.
//! - `Rpc::outcome` is a leaf lock, taken under the state lock or alone.
//! - The reader's wake-up (`State::reader_wake`) is posted with the state lock held
//!   (order: state → interrupt slot → the transport's rendez).

mod clunks;
mod dispatch;
mod flush;
mod reader;
mod tagwait;

use crate::sync::Arc;
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering};
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use ninep::{Dialect, Fcall, Msg};

use crate::error::{BrokenReason, MntError};
use crate::fids::FidPool;
use crate::rendez::{Interrupt, Platform, Rendez};
use crate::stats::{Counters, MountStats};
use crate::tags::TagPool;
use crate::transport::Transport;

pub(crate) use dispatch::check_frame;
use reader::Waiter;

/// Tags only a `Tflush` may take, so that an interrupted caller can tell the server
/// even when requests have taken every other tag.
#[cfg(not(loom))]
pub(crate) const FLUSH_RESERVE: usize = 64;

/// Under loom (four tags in all), one: three requests, or a request and its flushes.
#[cfg(loom)]
pub(crate) const FLUSH_RESERVE: usize = 1;

/// One request on the wire, from send until settled.
pub(crate) struct Rpc {
    tag: u16,
    /// The T-message type, to check the reply's.
    mtype: u8,
    done: AtomicBool,
    /// The reply (an error reply already turned into `Err`) or why there is none.
    outcome: Mutex<Option<Result<Msg, MntError>>>,
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
    /// What the reader passes to `Transport::recv`, while there is one: posted by
    /// the reader's own interrupt (relayed) and by the mux when the reader must look
    /// again without a message from the server (see `reader`).
    reader_wake: Option<Arc<Interrupt>>,
    /// Queued clunks sent and not yet answered.
    queued_clunks: usize,
    /// Fids of dropped channels whose `Tclunk` is not sent yet (see
    /// [`clunks::MAX_QUEUED_CLUNKS`]), oldest first.
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
    state: Mutex<State>,
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
            state: Mutex::new(State {
                in_flight: BTreeMap::new(),
                tags: TagPool::new(),
                fids: FidPool::new(),
                chans: 0,
                broken: None,
                closed: false,
                waiters: BTreeMap::new(),
                next_waiter: 0,
                tag_waiters: 0,
                reader_wake: None,
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

    /// How many channels live.
    pub(crate) fn channels(&self) -> usize {
        self.state.lock().chans
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
    /// A post is consumed only when this returns [`MntError::Interrupted`]; one taken
    /// for a flush that the reply beat is posted again.
    pub(crate) fn rpc(&self, msg: Msg, intr: &Interrupt) -> Result<Msg, MntError> {
        self.rpc_with_data(msg, &[], intr)
    }

    /// As [`rpc`](Self::rpc), for a `Twrite` whose `data` is empty and whose bytes are
    /// `data`, borrowed: the message's header is encoded alone and the transport sends it
    /// and the slices as one message (`Transport::send_parts`), so the bytes are never
    /// copied into a message buffer. `data` is for a `Twrite` alone (see
    /// [`append_data`]); a message passing the msize is refused unsent, as by `rpc`.
    pub(crate) fn rpc_with_data(
        &self,
        msg: Msg,
        data: &[&[u8]],
        intr: &Interrupt,
    ) -> Result<Msg, MntError> {
        if intr.take() {
            return Err(MntError::Interrupted);
        }
        self.send_deferred_clunks();
        let me = self.register(self.platform.rendez());
        let orig = self.start_request(msg, data, &me, intr)?;
        let mut chain: Vec<Arc<Rpc>> = Vec::from([orig.clone()]);
        // Whether this call took a post it has not reported yet.
        let mut noted = false;
        loop {
            let Some(last) = chain.last().cloned() else {
                break;
            };
            match self.wait(&me, &|| last.is_done(), intr) {
                Woke::Done => break,
                Woke::Interrupted => {
                    noted = true;
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
        let outcome = outcome.unwrap_or(Err(MntError::Interrupted));
        // The reply beat the flush (or the mount failed first): the caller gets that,
        // not the note, so the note stays posted, as a Plan 9 note stays pending
        // whatever the rpc did. The next call (or the next message of a transfer)
        // reports it.
        if noted && outcome != Err(MntError::Interrupted) {
            intr.post();
        }
        outcome
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
            outcome: Mutex::new(None),
            owner,
        })
    }

    /// Encodes `msg` with a placeholder tag (patched in by [`Self::send`]), and with
    /// `data` counted in as the bytes that follow it on the wire (see [`append_data`]).
    fn encode(&self, msg: Msg, data: &[&[u8]]) -> Result<(u8, Vec<u8>), MntError> {
        let mtype = msg.mtype();
        let mut buf = Vec::new();
        ninep::encode(&Fcall { tag: 0, msg }, &mut buf).map_err(MntError::Encode)?;
        let len = append_data(&mut buf, mtype, data)?;
        if len > self.msize as usize {
            return Err(MntError::TooLarge {
                len,
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

    /// Puts a registered rpc, encoded with its tag (and followed by `data`, a
    /// `Twrite`'s borrowed bytes), on the wire. A failed send breaks the mount, which
    /// completes the rpc.
    fn send(&self, rpc: &Rpc, buf: &[u8], data: &[&[u8]]) {
        let sent = if data.is_empty() {
            self.transport.send(buf)
        } else {
            let mut parts: Vec<&[u8]> = Vec::with_capacity(data.len() + 1);
            parts.push(buf);
            parts.extend_from_slice(data);
            self.transport.send_parts(&parts)
        };
        match sent {
            Ok(()) => self.counters.sent(rpc.mtype),
            Err(e) => self.fail_transport(e),
        }
    }

    /// Registers and sends one message, if a tag of `class` is free now (else
    /// [`MntError::NoTags`]). Errors before sending leave nothing behind.
    fn start(&self, msg: Msg, owner: Owner, class: TagClass) -> Result<Arc<Rpc>, MntError> {
        let (mtype, mut buf) = self.encode(msg, &[])?;
        let rpc = self
            .enroll(mtype, owner, class, None)
            .map_err(|e| match e {
                Enroll::Refused(e) => e,
                Enroll::NoTag { .. } => MntError::NoTags,
            })?;
        buf[5..7].copy_from_slice(&rpc.tag.to_le_bytes());
        self.send(&rpc, &buf, &[]);
        Ok(rpc)
    }
}

/// Makes the encoded message `buf` the header of a message whose last field's bytes are
/// `data`, sent after it: its size and its count (the last 4 bytes, a `Twrite`'s data
/// count, encoded as 0 from an empty `data`) grow by `data`'s length. Returns the whole
/// message's length. Only a `Twrite` ends with a count and its data, so `data` for any
/// other message (or a `Twrite` encoded with data of its own) is a caller's mistake,
/// refused as [`MntError::Unsupported`]; a total past `u32` as [`MntError::TooLarge`].
fn append_data(buf: &mut [u8], mtype: u8, data: &[&[u8]]) -> Result<usize, MntError> {
    if data.is_empty() {
        return Ok(buf.len());
    }
    let at = match buf.len().checked_sub(4) {
        Some(at) if mtype == ninep::mtype::TWRITE && buf[at..] == [0; 4] => at,
        _ => return Err(MntError::Unsupported),
    };
    let extra: usize = data.iter().map(|part| part.len()).sum();
    let total = buf.len().saturating_add(extra);
    let (Ok(size), Ok(count)) = (u32::try_from(total), u32::try_from(extra)) else {
        return Err(MntError::TooLarge {
            len: total,
            msize: u32::MAX,
        });
    };
    buf[..4].copy_from_slice(&size.to_le_bytes());
    buf[at..at + 4].copy_from_slice(&count.to_le_bytes());
    Ok(total)
}
