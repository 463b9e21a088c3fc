//! A queue of whole messages with an interruptible receive, bounded or not.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::rendez::StdRendez;
use crate::error::TransportError;
use crate::rendez::{Interrupt, Rendez};

/// Messages in arrival order, then (maybe) the reason no more will come.
#[derive(Default)]
struct Queue {
    msgs: VecDeque<Vec<u8>>,
    /// The bytes of `msgs`.
    bytes: usize,
    end: Option<TransportError>,
}

/// How much a bounded inbox holds before [`Inbox::push_when_room`] waits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    pub(crate) msgs: usize,
    pub(crate) bytes: usize,
}

/// Lock order: `rendez` (its own mutex, while a receiver checks) → `queue`.
pub(crate) struct Inbox {
    queue: Mutex<Queue>,
    rendez: Arc<StdRendez>,
    /// Signalled when a message is taken or the inbox ends (for a waiting pusher).
    room: Condvar,
    bound: Option<Bound>,
}

impl Inbox {
    /// An inbox that holds whatever is pushed.
    pub(crate) fn new() -> Inbox {
        Self::with_bound(None)
    }

    /// An inbox whose [`push_when_room`](Self::push_when_room) waits while it holds
    /// `bound.msgs` messages or `bound.bytes` bytes (one message always fits).
    pub(crate) fn bounded(bound: Bound) -> Inbox {
        Self::with_bound(Some(bound))
    }

    fn with_bound(bound: Option<Bound>) -> Inbox {
        Inbox {
            queue: Mutex::new(Queue::default()),
            rendez: Arc::new(StdRendez::new()),
            room: Condvar::new(),
            bound,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn full(&self, q: &Queue) -> bool {
        self.bound
            .is_some_and(|b| !q.msgs.is_empty() && (q.msgs.len() >= b.msgs || q.bytes >= b.bytes))
    }

    /// Appends a message, unless the inbox has ended.
    pub(crate) fn push(&self, msg: Vec<u8>) -> Result<(), TransportError> {
        let q = self.lock();
        self.append(q, msg)
    }

    /// Appends a message once the inbox has room for it (at once if unbounded),
    /// unless the inbox has ended (meanwhile).
    pub(crate) fn push_when_room(&self, msg: Vec<u8>) -> Result<(), TransportError> {
        let mut q = self.lock();
        while q.end.is_none() && self.full(&q) {
            q = self.room.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        self.append(q, msg)
    }

    fn append(&self, mut q: MutexGuard<'_, Queue>, msg: Vec<u8>) -> Result<(), TransportError> {
        if let Some(e) = q.end {
            return Err(e);
        }
        q.bytes += msg.len();
        q.msgs.push_back(msg);
        drop(q);
        self.rendez.wakeup();
        Ok(())
    }

    /// No more messages will come, for this reason (the first reason given wins).
    /// Messages already queued are still delivered.
    pub(crate) fn finish(&self, why: TransportError) {
        {
            let mut q = self.lock();
            q.end.get_or_insert(why);
        }
        self.room.notify_all();
        self.rendez.wakeup();
    }

    /// Drops queued messages and ends the inbox now.
    pub(crate) fn abort(&self, why: TransportError) {
        {
            let mut q = self.lock();
            q.msgs.clear();
            q.bytes = 0;
            q.end.get_or_insert(why);
        }
        self.room.notify_all();
        self.rendez.wakeup();
    }

    fn ready(&self) -> bool {
        let q = self.lock();
        !q.msgs.is_empty() || q.end.is_some()
    }

    fn take(&self) -> Option<Result<Vec<u8>, TransportError>> {
        let mut q = self.lock();
        if let Some(m) = q.msgs.pop_front() {
            q.bytes -= m.len();
            drop(q);
            self.room.notify_all();
            return Some(Ok(m));
        }
        q.end.map(Err)
    }

    /// The next message; `Interrupted` once `intr` is pending (not consumed).
    pub(crate) fn recv(&self, intr: &Interrupt) -> Result<Vec<u8>, TransportError> {
        let rendez: Arc<dyn Rendez> = self.rendez.clone();
        intr.sleep_on(&rendez, &|| self.ready());
        self.take().unwrap_or(Err(TransportError::Interrupted))
    }

    /// The next message, or `None` at `deadline`.
    pub(crate) fn recv_until(&self, deadline: Instant) -> Option<Result<Vec<u8>, TransportError>> {
        self.rendez.sleep_until(&|| self.ready(), deadline);
        self.take()
    }
}
