//! A queue of whole messages with an interruptible receive.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::rendez::StdRendez;
use crate::error::TransportError;
use crate::rendez::{Interrupt, Rendez};

/// Messages in arrival order, then (maybe) the reason no more will come.
#[derive(Default)]
struct Queue {
    msgs: VecDeque<Vec<u8>>,
    end: Option<TransportError>,
}

/// Lock order: `rendez` (its own mutex, while a receiver checks) → `queue`.
pub(crate) struct Inbox {
    queue: Mutex<Queue>,
    rendez: Arc<StdRendez>,
}

impl Inbox {
    pub(crate) fn new() -> Inbox {
        Inbox {
            queue: Mutex::new(Queue::default()),
            rendez: Arc::new(StdRendez::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a message, unless the inbox has ended.
    pub(crate) fn push(&self, msg: Vec<u8>) -> Result<(), TransportError> {
        {
            let mut q = self.lock();
            if let Some(e) = q.end {
                return Err(e);
            }
            q.msgs.push_back(msg);
        }
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
        self.rendez.wakeup();
    }

    /// Drops queued messages and ends the inbox now.
    pub(crate) fn abort(&self, why: TransportError) {
        {
            let mut q = self.lock();
            q.msgs.clear();
            q.end.get_or_insert(why);
        }
        self.rendez.wakeup();
    }

    fn ready(&self) -> bool {
        let q = self.lock();
        !q.msgs.is_empty() || q.end.is_some()
    }

    fn take(&self) -> Option<Result<Vec<u8>, TransportError>> {
        let mut q = self.lock();
        if let Some(m) = q.msgs.pop_front() {
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
