//! The close queue (Plan 9's `ccloseq` and its `closeproc`s): channels whose last
//! reference went away where the caller must not wait for the server, such as a process's
//! files at exit, an image's channel dropped by vm, or a mount point given up by the last
//! namespace holding it.
//!
//! A pushed channel is clunked by a worker thread, which waits for the `Rclunk`. When no
//! worker is idle a new one starts (up to a bound), so one server that never answers
//! wedges only the workers stuck on it, never the callers. Idle workers exit after a while.
//! With no worker at all (a bound of 0, or no thread could be started) a pushed channel
//! is dropped at once, and mnt queues its clunk on the wire; the mount's caches are
//! forgotten on that path too, as a worker would after its clunk.
//! Tests wait for the queue to settle with a deadline ([`CloseQueue::wait_settled`]).
//!
//! Lock: one mutex over the queue and the worker counts; never held across a clunk.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mnt::{Chan, Interrupt};
use vm::Vm;

use crate::counters::Counters;
use crate::mount_gone;

struct State {
    queue: VecDeque<Chan>,
    /// Workers alive.
    workers: usize,
    /// Workers waiting for work.
    idle: usize,
    /// Workers clunking now.
    busy: usize,
    shutdown: bool,
}

struct Inner {
    state: Mutex<State>,
    /// Signalled when work arrives (or on shutdown).
    work: Condvar,
    /// Signalled when the queue is empty and no worker is busy.
    settled: Condvar,
    counters: Arc<Counters>,
    /// For forgetting a mount's cached files after its last channel's clunk.
    vm: Vm,
    max_workers: usize,
    idle_timeout: Duration,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The queue and its workers.
pub(crate) struct CloseQueue {
    inner: Arc<Inner>,
}

impl CloseQueue {
    pub(crate) fn new(counters: Arc<Counters>, max_workers: usize, vm: Vm) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    workers: 0,
                    idle: 0,
                    busy: 0,
                    shutdown: false,
                }),
                work: Condvar::new(),
                settled: Condvar::new(),
                counters,
                vm,
                max_workers,
                idle_timeout: Duration::from_secs(2),
            }),
        }
    }

    /// Queues `chan` to be clunked; never waits for the server.
    pub(crate) fn push(&self, chan: Chan) {
        Counters::bump(&self.inner.counters.closes_queued);
        let mut state = self.inner.lock();
        state.queue.push_back(chan);
        if state.idle > 0 {
            self.inner.work.notify_one();
            return;
        }
        if state.workers >= self.inner.max_workers {
            if state.workers == 0 {
                // No close procs: nobody would take it.
                self.release_without_worker(state);
            }
            // Otherwise every worker is busy; the first one free takes it.
            return;
        }
        state.workers += 1;
        drop(state);
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name("closeproc".into())
            .spawn(move || work(&inner));
        if let Err(err) = spawned {
            log::warn!("hosted: cannot start a close worker: {err}");
            let mut state = self.inner.lock();
            state.workers -= 1;
            if state.workers == 0 {
                self.release_without_worker(state);
            }
        }
    }

    /// With no worker to take them, drops the queued channels (the driver queues their
    /// clunks itself) and forgets each mount whose last channel that was, as a worker
    /// does after its clunk.
    fn release_without_worker(&self, mut state: MutexGuard<'_, State>) {
        let orphans: Vec<Chan> = state.queue.drain(..).collect();
        drop(state);
        let n = orphans.len() as u64;
        for chan in orphans {
            let mount = chan.mount().clone();
            drop(chan);
            mount_gone::channel_released(&self.inner.vm, &mount);
        }
        Counters::add(&self.inner.counters.chans_closed, n);
        self.inner.settled.notify_all();
    }

    /// Channels queued or being clunked, and what `read` returns, read at one moment with
    /// respect to the workers (which count a finished clunk under the same lock).
    pub(crate) fn snapshot<R>(&self, read: impl FnOnce() -> R) -> (usize, R) {
        let state = self.inner.lock();
        (state.queue.len() + state.busy, read())
    }

    /// Waits until nothing is queued or being clunked, at most `timeout`. Returns whether
    /// the queue settled.
    pub(crate) fn wait_settled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.inner.lock();
        loop {
            if state.queue.is_empty() && state.busy == 0 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = match self.inner.settled.wait_timeout(state, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Lets idle workers exit now; queued channels are still clunked.
    pub(crate) fn shutdown(&self) {
        self.inner.lock().shutdown = true;
        self.inner.work.notify_all();
    }
}

/// A worker: clunks queued channels until idle for a while (or shut down and idle).
fn work(inner: &Inner) {
    let mut state = inner.lock();
    loop {
        if let Some(chan) = state.queue.pop_front() {
            state.busy += 1;
            drop(state);
            // The worker's own interrupt: nobody posts it; a dead server fails the clunk.
            let mount = chan.mount().clone();
            let result = chan.clunk(&Interrupt::new());
            // Before the clunk counts as done, so a settled queue has forgotten too.
            mount_gone::channel_released(&inner.vm, &mount);
            if let Err(err) = &result {
                log::debug!("hosted: queued clunk failed: {err}");
                Counters::bump(&inner.counters.clunk_failures);
            }
            state = inner.lock();
            // Counted under the lock, with `busy`, so a snapshot sees both or neither.
            Counters::bump(&inner.counters.chans_closed);
            state.busy -= 1;
            if state.queue.is_empty() && state.busy == 0 {
                inner.settled.notify_all();
            }
            continue;
        }
        if state.shutdown {
            break;
        }
        state.idle += 1;
        let (guard, timeout) = match inner.work.wait_timeout(state, inner.idle_timeout) {
            Ok(pair) => pair,
            Err(poisoned) => poisoned.into_inner(),
        };
        state = guard;
        state.idle -= 1;
        if timeout.timed_out() && state.queue.is_empty() {
            break;
        }
    }
    state.workers -= 1;
}
