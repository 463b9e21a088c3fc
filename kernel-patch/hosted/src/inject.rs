//! Fault injection on the wire: a transport that sits between the kernel and a server,
//! records every message, and can hold requests back so the server never sees them.
//!
//! [`interpose`] wraps a transport and returns the [`Interposer`] (the transport to mount)
//! and a [`Wire`] (the test's handle). A [`Hold`] rule swallows the next requests of a
//! type: they are recorded, never forwarded, never answered. A `Tflush` naming a
//! swallowed request is then either answered with an `Rflush` by the interposer (a server
//! that drops a request it had not started, [`FlushPolicy::Answer`]) or swallowed too (a
//! server that never answers anything about it, [`FlushPolicy::Ignore`]).
//!
//! Replies from the server are moved by a pump thread into a queue, merged with the
//! replies the interposer makes up; the kernel's receive takes from that queue and can be
//! interrupted without losing a message. [`Wire::hold_replies`] keeps replies of a type
//! back from the kernel until the test releases them. [`Wire::refuse`] answers the next
//! requests of a type with an error the interposer makes up (a server refusing writes:
//! "No space left on device", or ENOSPC in 9P2000.L), so the server never sees them.
//!
//! Lock: one mutex over the record, the rules and the queue; never held across a call to
//! the inner transport, and released before any rendezvous is woken.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mnt::host::StdRendez;
use mnt::{Interrupt, Rendez, Transport, TransportError};
use ninep::mtype;

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the kernel to the server.
    ToServer,
    /// From the server (or the interposer) to the kernel.
    ToKernel,
}

/// What happened to a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Passed on.
    Forwarded,
    /// Held back by a rule: the server never saw it.
    Swallowed,
    /// Made up by the interposer (an `Rflush` for a swallowed request).
    Synthesized,
}

/// One message on the wire, with the fields tests look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireEvent {
    /// Which way.
    pub direction: Direction,
    /// What became of it.
    pub fate: Fate,
    /// The message type (`ninep::mtype`).
    pub mtype: u8,
    /// The tag.
    pub tag: u16,
    /// The fid of a request that names one first (`Tread`, `Twrite`, `Tclunk`, ...).
    pub fid: Option<u32>,
    /// The offset of a `Tread` or `Twrite`.
    pub offset: Option<u64>,
    /// The count of a `Tread`, `Twrite`, `Rread` or `Rwrite`.
    pub count: Option<u32>,
    /// The old tag of a `Tflush`.
    pub oldtag: Option<u16>,
}

/// What to do with a `Tflush` of a swallowed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Answer it with an `Rflush` (the request is then over).
    Answer,
    /// Swallow it too: the server never answers.
    Ignore,
}

/// Swallow the next `count` requests of type `mtype` (a `ninep::mtype::T*` value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// The request type.
    pub mtype: u8,
    /// How many to swallow.
    pub count: usize,
    /// What to do with their flushes.
    pub flush: FlushPolicy,
}

struct Held {
    tag: u16,
    flush: FlushPolicy,
    /// The request itself, for [`Wire::release_held`].
    msg: Vec<u8>,
}

#[derive(Default)]
struct State {
    log: Vec<WireEvent>,
    holds: Vec<Hold>,
    held: Vec<Held>,
    /// Request types to answer with an error of our own, and how many of each.
    refusals: Vec<(u8, usize)>,
    /// Whether the session speaks 9P2000.L (seen in the server's `Rversion`): errors are
    /// `Rlerror`s then.
    linux: bool,
    /// Reply types (`ninep::mtype::R*`) to keep back, and how many of each.
    reply_holds: Vec<(u8, usize)>,
    /// Replies the server sent that the kernel has not been given yet.
    held_replies: Vec<Vec<u8>>,
    inbound: VecDeque<Vec<u8>>,
    /// Why no more messages will come, once known.
    end: Option<TransportError>,
}

/// What the interposer and its pump thread share: the record, the holds, and the messages
/// let through to the kernel.
struct Recording {
    state: Mutex<State>,
    /// The kernel's receive sleeps here.
    rendez: Arc<StdRendez>,
    /// Signalled on every change, for tests waiting on the record.
    changed: Condvar,
}

impl Recording {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notify(&self) {
        self.changed.notify_all();
        self.rendez.wakeup();
    }
}

/// The transport to mount: the server's transport behind the rules of its [`Wire`].
pub struct Interposer {
    inner: Arc<dyn Transport>,
    shared: Arc<Recording>,
}

/// The test's handle on an [`Interposer`]: rules and the record. Cheap to clone.
#[derive(Clone)]
pub struct Wire {
    shared: Arc<Recording>,
    inner: Arc<dyn Transport>,
}

/// Puts an interposer in front of `inner`. Starts the pump thread that moves the server's
/// messages; it ends when the connection does.
pub fn interpose(inner: Box<dyn Transport>) -> std::io::Result<(Interposer, Wire)> {
    let inner: Arc<dyn Transport> = Arc::from(inner);
    let shared = Arc::new(Recording {
        state: Mutex::new(State::default()),
        rendez: Arc::new(StdRendez::new()),
        changed: Condvar::new(),
    });
    let (pump_inner, pump_shared) = (inner.clone(), shared.clone());
    std::thread::Builder::new()
        .name("interposer-pump".into())
        .spawn(move || pump(&*pump_inner, &pump_shared))?;
    Ok((
        Interposer {
            inner: inner.clone(),
            shared: shared.clone(),
        },
        Wire { shared, inner },
    ))
}

/// Moves the server's messages into the queue until the connection ends.
fn pump(inner: &dyn Transport, shared: &Recording) {
    let intr = Interrupt::new();
    loop {
        let result = inner.recv(&intr);
        {
            let mut state = shared.lock();
            match result {
                Ok(msg) => {
                    let mut event = parse(&msg, Direction::ToKernel, Fate::Forwarded);
                    if event.mtype == mtype::RVERSION {
                        state.linux = msg.ends_with(b"9P2000.L");
                    }
                    let kept = state
                        .reply_holds
                        .iter_mut()
                        .find(|(kind, count)| *kind == event.mtype && *count > 0);
                    if let Some((_, count)) = kept {
                        *count -= 1;
                        event.fate = Fate::Swallowed;
                        state.held_replies.push(msg);
                    } else {
                        state.inbound.push_back(msg);
                    }
                    state.log.push(event);
                }
                Err(err) => {
                    state.end.get_or_insert(err);
                }
            }
        }
        shared.notify();
        if shared.lock().end.is_some() {
            return;
        }
    }
}

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The fields of a message tests look at; absent fields of a short message stay `None`.
fn parse(msg: &[u8], direction: Direction, fate: Fate) -> WireEvent {
    let kind = msg.get(4).copied().unwrap_or(0);
    let mut event = WireEvent {
        direction,
        fate,
        mtype: kind,
        tag: le_u16(msg, 5).unwrap_or(0),
        fid: None,
        offset: None,
        count: None,
        oldtag: None,
    };
    match kind {
        mtype::TREAD | mtype::TWRITE => {
            event.fid = le_u32(msg, 7);
            event.offset = le_u64(msg, 11);
            event.count = le_u32(msg, 19);
        }
        mtype::RREAD | mtype::RWRITE => event.count = le_u32(msg, 7),
        mtype::TFLUSH => event.oldtag = le_u16(msg, 7),
        mtype::TWALK
        | mtype::TOPEN
        | mtype::TCREATE
        | mtype::TCLUNK
        | mtype::TREMOVE
        | mtype::TSTAT
        | mtype::TWSTAT
        | mtype::TATTACH => event.fid = le_u32(msg, 7),
        _ => {}
    }
    event
}

/// The error a server refusing a request answers with: `Rlerror` ENOSPC in 9P2000.L,
/// `Rerror` "No space left on device" in 9P2000.
fn refusal(tag: u16, linux: bool) -> Vec<u8> {
    let mut msg = Vec::new();
    if linux {
        msg.extend_from_slice(&11u32.to_le_bytes());
        msg.push(mtype::RLERROR);
        msg.extend_from_slice(&tag.to_le_bytes());
        msg.extend_from_slice(&28u32.to_le_bytes());
    } else {
        let ename = b"No space left on device";
        msg.extend_from_slice(&(9 + ename.len() as u32).to_le_bytes());
        msg.push(mtype::RERROR);
        msg.extend_from_slice(&tag.to_le_bytes());
        msg.extend_from_slice(&(ename.len() as u16).to_le_bytes());
        msg.extend_from_slice(ename);
    }
    msg
}

/// An `Rflush` for `tag`.
fn rflush(tag: u16) -> Vec<u8> {
    let mut msg = Vec::with_capacity(7);
    msg.extend_from_slice(&7u32.to_le_bytes());
    msg.push(mtype::RFLUSH);
    msg.extend_from_slice(&tag.to_le_bytes());
    msg
}

impl Transport for Interposer {
    fn send(&self, msg: &[u8]) -> Result<(), TransportError> {
        let mut event = parse(msg, Direction::ToServer, Fate::Forwarded);
        {
            let mut state = self.shared.lock();
            if let Some(end) = state.end {
                return Err(end);
            }
            if event.mtype == mtype::TFLUSH {
                let held = state
                    .held
                    .iter()
                    .position(|held| Some(held.tag) == event.oldtag);
                if let Some(position) = held {
                    event.fate = Fate::Swallowed;
                    if state.held[position].flush == FlushPolicy::Answer {
                        state.held.remove(position);
                        let reply = rflush(event.tag);
                        state.log.push(event);
                        state
                            .log
                            .push(parse(&reply, Direction::ToKernel, Fate::Synthesized));
                        state.inbound.push_back(reply);
                    } else {
                        state.log.push(event);
                    }
                }
            } else if let Some((_, count)) = state
                .refusals
                .iter_mut()
                .find(|(kind, count)| *kind == event.mtype && *count > 0)
            {
                *count -= 1;
                event.fate = Fate::Swallowed;
                let reply = refusal(event.tag, state.linux);
                state.log.push(event);
                state
                    .log
                    .push(parse(&reply, Direction::ToKernel, Fate::Synthesized));
                state.inbound.push_back(reply);
            } else if let Some(hold) = state
                .holds
                .iter_mut()
                .find(|hold| hold.mtype == event.mtype && hold.count > 0)
            {
                hold.count -= 1;
                let flush = hold.flush;
                event.fate = Fate::Swallowed;
                state.held.push(Held {
                    tag: event.tag,
                    flush,
                    msg: msg.to_vec(),
                });
                state.log.push(event);
            }
            if event.fate == Fate::Forwarded {
                state.log.push(event);
            }
        }
        self.shared.notify();
        if event.fate == Fate::Swallowed {
            return Ok(());
        }
        self.inner.send(msg)
    }

    fn recv(&self, intr: &Interrupt) -> Result<Vec<u8>, TransportError> {
        let rendez: Arc<dyn Rendez> = self.shared.rendez.clone();
        intr.sleep_on(&rendez, &|| {
            let state = self.shared.lock();
            !state.inbound.is_empty() || state.end.is_some()
        });
        let mut state = self.shared.lock();
        if let Some(msg) = state.inbound.pop_front() {
            return Ok(msg);
        }
        match state.end {
            Some(end) => Err(end),
            None => Err(TransportError::Interrupted),
        }
    }

    fn close(&self) {
        {
            let mut state = self.shared.lock();
            state.inbound.clear();
            state.end.get_or_insert(TransportError::Closed);
        }
        self.inner.close();
        self.shared.notify();
    }
}

impl Drop for Interposer {
    fn drop(&mut self) {
        self.close();
    }
}

impl Wire {
    /// Sends every request held so far on to the server, in the order they came, as if
    /// they had never been held: a test can stop a call at a request, act meanwhile, and
    /// let the call go on. Returns how many went.
    pub fn release_held(&self) -> Result<usize, TransportError> {
        let held = std::mem::take(&mut self.shared.lock().held);
        for request in &held {
            {
                let mut state = self.shared.lock();
                let event = parse(&request.msg, Direction::ToServer, Fate::Forwarded);
                state.log.push(event);
            }
            self.inner.send(&request.msg)?;
        }
        self.shared.notify();
        Ok(held.len())
    }

    /// Keeps the next `count` replies of type `mtype` (a `ninep::mtype::R*` value) from the
    /// kernel until [`release_replies`](Self::release_replies): the server has answered,
    /// the kernel does not know yet (a page read that the server served before a truncate
    /// and the fault sees after it).
    pub fn hold_replies(&self, mtype: u8, count: usize) {
        self.shared.lock().reply_holds.push((mtype, count));
    }

    /// Waits until at least `count` replies are kept back, at most `timeout`.
    pub fn wait_replies_held(&self, count: usize, timeout: Duration) -> bool {
        self.wait_for(timeout, |state| state.held_replies.len() >= count)
    }

    /// Gives the kernel every reply kept back, in the order they came. Returns how many.
    pub fn release_replies(&self) -> usize {
        let released = {
            let mut state = self.shared.lock();
            let held = std::mem::take(&mut state.held_replies);
            let n = held.len();
            state.inbound.extend(held);
            n
        };
        self.shared.notify();
        released
    }

    /// Answers the next `count` requests of type `mtype` (a `ninep::mtype::T*` value) with
    /// an error of the interposer's own (no space left), never forwarding them: a server
    /// that refuses them and then recovers.
    pub fn refuse(&self, mtype: u8, count: usize) {
        self.shared.lock().refusals.push((mtype, count));
    }

    /// Adds a rule.
    pub fn hold(&self, hold: Hold) {
        self.shared.lock().holds.push(hold);
    }

    /// Drops every rule not used up, refusals included (requests already swallowed stay
    /// so).
    pub fn clear_holds(&self) {
        let mut state = self.shared.lock();
        state.holds.clear();
        state.refusals.clear();
    }

    /// Swallowed requests whose flush has not been answered.
    pub fn held(&self) -> usize {
        self.shared.lock().held.len()
    }

    /// Waits until at least `count` requests are held, at most `timeout`.
    pub fn wait_held(&self, count: usize, timeout: Duration) -> bool {
        self.wait_for(timeout, |state| state.held.len() >= count)
    }

    /// Waits until the record holds an event that `matches`, at most `timeout`.
    pub fn wait_event(&self, timeout: Duration, matches: impl Fn(&WireEvent) -> bool) -> bool {
        self.wait_for(timeout, |state| state.log.iter().any(&matches))
    }

    fn wait_for(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if done(&state) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = match self.shared.changed.wait_timeout(state, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// The number of events recorded so far: a mark for [`events_since`](Self::events_since).
    pub fn mark(&self) -> usize {
        self.shared.lock().log.len()
    }

    /// The events recorded since `mark`.
    pub fn events_since(&self, mark: usize) -> Vec<WireEvent> {
        let state = self.shared.lock();
        state.log.get(mark..).map(<[_]>::to_vec).unwrap_or_default()
    }

    /// Every event recorded.
    pub fn events(&self) -> Vec<WireEvent> {
        self.events_since(0)
    }

    /// Cuts the connection to the server (as if the server died): the server sees end of
    /// file and the kernel's requests in flight fail.
    pub fn cut(&self) {
        self.inner.close();
    }

    /// Whether the connection has ended (cut, closed by either side).
    pub fn ended(&self) -> bool {
        self.shared.lock().end.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mnt::host::{pipe, ServerRecv};

    fn tread(tag: u16, fid: u32, offset: u64, count: u32) -> Vec<u8> {
        let mut msg = Vec::new();
        msg.extend_from_slice(&23u32.to_le_bytes());
        msg.push(mtype::TREAD);
        msg.extend_from_slice(&tag.to_le_bytes());
        msg.extend_from_slice(&fid.to_le_bytes());
        msg.extend_from_slice(&offset.to_le_bytes());
        msg.extend_from_slice(&count.to_le_bytes());
        msg
    }

    fn tflush(tag: u16, oldtag: u16) -> Vec<u8> {
        let mut msg = Vec::new();
        msg.extend_from_slice(&9u32.to_le_bytes());
        msg.push(mtype::TFLUSH);
        msg.extend_from_slice(&tag.to_le_bytes());
        msg.extend_from_slice(&oldtag.to_le_bytes());
        msg
    }

    #[test]
    fn forwards_records_swallows_and_answers_flushes() {
        let (client, server) = pipe();
        let (interposer, wire) = interpose(Box::new(client)).unwrap();
        interposer.send(&tread(1, 7, 4096, 512)).unwrap();
        assert_eq!(
            server.recv_timeout(Duration::from_secs(5)),
            ServerRecv::Msg(tread(1, 7, 4096, 512))
        );
        wire.hold(Hold {
            mtype: mtype::TREAD,
            count: 1,
            flush: FlushPolicy::Answer,
        });
        interposer.send(&tread(2, 7, 0, 512)).unwrap();
        assert!(wire.wait_held(1, Duration::from_secs(5)));
        assert_eq!(
            server.recv_timeout(Duration::from_millis(50)),
            ServerRecv::Timeout
        );
        interposer.send(&tflush(3, 2)).unwrap();
        let reply = interposer.recv(&Interrupt::new()).unwrap();
        assert_eq!(reply, rflush(3));
        assert_eq!(wire.held(), 0);
        let events = wire.events();
        assert_eq!(events[0].offset, Some(4096));
        assert_eq!(events[0].count, Some(512));
        assert_eq!(events[1].fate, Fate::Swallowed);
        assert_eq!(events[2].oldtag, Some(2));
        assert_eq!(events[3].fate, Fate::Synthesized);
        // The rule was used up: the next read goes through.
        interposer.send(&tread(4, 7, 0, 1)).unwrap();
        assert!(matches!(
            server.recv_timeout(Duration::from_secs(5)),
            ServerRecv::Msg(_)
        ));
    }

    #[test]
    fn server_replies_are_delivered_and_the_end_is_reported() {
        let (client, server) = pipe();
        let (interposer, wire) = interpose(Box::new(client)).unwrap();
        assert!(server.send(rflush(9)));
        assert_eq!(interposer.recv(&Interrupt::new()).unwrap(), rflush(9));
        let intr = Interrupt::new();
        intr.post();
        assert_eq!(interposer.recv(&intr), Err(TransportError::Interrupted));
        drop(server);
        assert!(interposer.recv(&Interrupt::new()).is_err());
        assert!(wire.ended());
    }
}
