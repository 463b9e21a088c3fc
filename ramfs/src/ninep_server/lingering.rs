//! Connections that ended before their client read what was sent to it by reference
//! (`splice`). Each one's socket is kept, shut down, with the buffers its unread bytes
//! refer to; a buffer is let go of once the client has read past it, and the socket is
//! closed once nothing is kept: the client has read everything, or has closed its end,
//! which drops what it had not read. Freeing a buffer the client may still read would
//! show it whatever that memory holds next, another file's data perhaps.
//!
//! One thread for the process looks at them: at once when a connection ends, then
//! less and less often while nothing is read (at most [`LONGEST_WAIT`] apart).
//!
//! Lock: `LINGERING.ended`, taken by a connection's end to add itself and by the thread
//! for a pass; nothing else is taken under it (letting go of a buffer drops `Arc`s).

use std::fmt::Display;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::Duration;

use super::splice::{pages_of, read_of, release_before, Retained};

/// The wait after a pass that let go of something, or after a connection ended.
const SHORTEST_WAIT: Duration = Duration::from_millis(1);

/// The longest wait between passes: each pass that lets go of nothing doubles it.
const LONGEST_WAIT: Duration = Duration::from_millis(200);

/// A connection that ended with bytes its client has not read.
pub(super) struct Ended {
    socket: UnixStream,
    /// Bytes written to the socket.
    sent: u64,
    retained: Retained,
}

impl Ended {
    /// `socket`, to which `sent` bytes were written, and what they keep.
    pub(super) fn new(socket: UnixStream, sent: u64, retained: Retained) -> Ended {
        Ended {
            socket,
            sent,
            retained,
        }
    }

    /// Lets go of what the client has read; true once nothing is kept.
    fn release(&mut self) -> io::Result<bool> {
        let read = read_of(&self.socket, self.sent)?;
        release_before(&mut self.retained, read, drop);
        Ok(self.retained.is_empty())
    }
}

struct Lingering {
    ended: Mutex<Vec<Ended>>,
    /// Signalled when a connection is added.
    added: Condvar,
}

static LINGERING: Lingering = Lingering {
    ended: Mutex::new(Vec::new()),
    added: Condvar::new(),
};

/// Whether the thread runs (it is started by the first connection that ends unread).
static WATCHING: OnceLock<bool> = OnceLock::new();

/// Keeps `ended` until its client has read what it keeps, or has gone away. The
/// socket is shut down first: the client reads what is left, then the end, as if it
/// were closed.
pub(super) fn keep(ended: Ended) {
    let _ = ended.socket.shutdown(Shutdown::Both);
    tracing::debug!(
        "connection ends with {} sends by reference unread ({} pages): kept until read",
        ended.retained.len(),
        pages_of(&ended.retained)
    );
    if !*WATCHING.get_or_init(start) {
        leak(ended.retained, &"no thread to watch for its reads");
        return;
    }
    lock().push(ended);
    LINGERING.added.notify_one();
}

/// Keeps `retained` for good: the client may read what it holds at any time, and
/// nothing can tell when (`why`).
pub(super) fn leak(retained: Retained, why: &dyn Display) {
    tracing::warn!(
        "{} sends by reference ({} pages) kept for good: {why}",
        retained.len(),
        pages_of(&retained)
    );
    std::mem::forget(retained);
}

fn lock() -> MutexGuard<'static, Vec<Ended>> {
    LINGERING
        .ended
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

fn start() -> bool {
    let spawned = thread::Builder::new().name("lingering".into()).spawn(watch);
    if let Err(e) = &spawned {
        tracing::warn!("cannot start the thread for connections ended unread: {e}");
    }
    spawned.is_ok()
}

/// The thread: lets go of what clients have read, for good.
fn watch() {
    let mut wait = SHORTEST_WAIT;
    let mut ended = lock();
    loop {
        if ended.is_empty() {
            ended = LINGERING
                .added
                .wait(ended)
                .unwrap_or_else(PoisonError::into_inner);
            wait = SHORTEST_WAIT;
            continue;
        }
        let kept = |ended: &[Ended]| ended.iter().map(|e| e.retained.len()).sum::<usize>();
        let before = kept(&ended);
        ended.retain_mut(|e| match e.release() {
            Ok(done) => !done,
            Err(err) => {
                leak(std::mem::take(&mut e.retained), &err);
                false
            }
        });
        wait = if kept(&ended) < before {
            SHORTEST_WAIT
        } else {
            (wait * 2).min(LONGEST_WAIT)
        };
        let count = ended.len();
        let (guard, _) = LINGERING
            .added
            .wait_timeout(ended, wait)
            .unwrap_or_else(PoisonError::into_inner);
        ended = guard;
        if ended.len() > count {
            wait = SHORTEST_WAIT;
        }
    }
}
