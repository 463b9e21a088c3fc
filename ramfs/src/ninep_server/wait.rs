//! Waiting for a connection's next request: a short, adaptive spin on the socket before
//! the thread sleeps in `read`.
//!
//! Why: with one request in flight, a client sends its next request a few tens of
//! microseconds after it gets the reply. A server that sleeps in `read` in between lets
//! its CPU go idle, and on a virtual machine an idle vCPU halts: the client's next send
//! must then wake it through the host (an inter-processor interrupt and a host
//! scheduler wake-up), which on the 2-vCPU machine the benchmarks run on costs about as
//! much as the rest of the request. A thread that keeps trying a non-blocking read for
//! a little while finds the request without being woken.
//!
//! [`Polling`] wraps a connection's reader. Each `read` first tries the socket without
//! blocking (free when requests are pipelined: the bytes are already there); if it is
//! empty it retries, yielding the CPU between tries so that anything runnable there (the
//! client, on a busy machine) runs first, until the connection's *window* has passed,
//! and then sleeps in a blocking `read` as before. A spin also ends as soon as a yield
//! gives the CPU to another task for a while: on a busy machine the CPU does not go
//! idle anyway, so there is no wake-up to save and the spin would only take time from
//! the others. What a read returns (bytes, end of file, an error) is the same either
//! way, so the connection loop, its EOF, error and Tflush handling do not know whether a
//! request was found spinning or sleeping.
//!
//! Whether a connection spins at all, and for how long, is [`Adaptive`]'s decision
//! (`policy`): it measures the waits of both and keeps the faster, and its window
//! adapts as Linux's guest halt-polling's does. A connection never spins while
//! it is idle: a read that finds the socket empty (after its replies are written, after
//! part of a message, at the start) spins at most one window, and a client that pauses
//! longer than the window shrinks it. And at most [`Spinners`]' limit of connections
//! spin at once (one fewer than the CPUs, none on one CPU), and none while more than
//! that many are awake (answering or spinning), so the clients, and connections with
//! full queues, keep their CPUs. A connection whose writer ([`PollingWriter`]) finds the
//! socket full and blocks counts as asleep while it waits, so a client that does not
//! read does not turn spinning off for the others.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::output::{Output, ReplyWrite, Sharing};
#[cfg(target_os = "linux")]
use super::SplicingSocket;

/// A reader that can also be asked for bytes without blocking.
pub trait PollRead: Read {
    /// Reads what is there now: like `read`, but fails with
    /// [`io::ErrorKind::WouldBlock`] instead of waiting when nothing is there. A source
    /// that cannot do that (standard input) fails with [`io::ErrorKind::Unsupported`],
    /// and is then only ever read blocking.
    fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// [`PollRead::read_now`] into several buffers in order, as `read_vectored` is to
    /// `read`; by default into the first non-empty one only.
    fn read_now_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match bufs.iter_mut().find(|b| !b.is_empty()) {
            Some(buf) => self.read_now(buf),
            None => Ok(0),
        }
    }
}

impl<T: PollRead + ?Sized> PollRead for Box<T> {
    fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_now(buf)
    }

    fn read_now_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (**self).read_now_vectored(bufs)
    }
}

/// A writer that can also be asked to take bytes without blocking.
pub trait PollWrite: Write {
    /// Writes what the destination takes now: like `write_vectored`, but fails with
    /// [`io::ErrorKind::WouldBlock`] instead of waiting when it takes nothing. A
    /// destination that cannot do that (standard output) fails with
    /// [`io::ErrorKind::Unsupported`], and is then only ever written blocking.
    fn write_now_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// The destination as a socket that sends held file pages by reference, if it is
    /// one.
    #[cfg(target_os = "linux")]
    fn splicing(&mut self) -> Option<&mut SplicingSocket> {
        None
    }
}

impl<T: PollWrite + ?Sized> PollWrite for Box<T> {
    fn write_now_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (**self).write_now_vectored(bufs)
    }

    #[cfg(target_os = "linux")]
    fn splicing(&mut self) -> Option<&mut SplicingSocket> {
        (**self).splicing()
    }
}

/// A connection's writer that counts the connection asleep (see [`Spinners`]) while a
/// write waits for a client that is not reading: a write first tries without
/// blocking, and only when nothing was taken waits, asleep.
pub struct PollingWriter<W> {
    inner: W,
    spinners: Arc<Spinners>,
    /// False once the destination said it cannot write without blocking.
    can_poll: bool,
    /// Writes that had to wait.
    waited: u64,
}

impl<W: PollWrite> PollingWriter<W> {
    /// `inner`, counted in `spinners` while it waits.
    pub fn new(inner: W, spinners: Arc<Spinners>) -> PollingWriter<W> {
        PollingWriter {
            inner,
            spinners,
            can_poll: true,
            waited: 0,
        }
    }

    /// Writes that found the destination full and waited.
    pub fn waited(&self) -> u64 {
        self.waited
    }
}

impl<W: PollWrite> Write for PollingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.can_poll {
            match self.inner.write_now_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::Unsupported => self.can_poll = false,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                r => return r,
            }
        }
        if self.can_poll {
            self.waited += 1;
        }
        let _asleep = Asleep::new(&self.spinners);
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: PollWrite> ReplyWrite for PollingWriter<W> {
    /// Through the destination's [`SplicingSocket`] if it has one, which counts the
    /// connection asleep while the socket is full; else copied, as any writer.
    fn write_output(&mut self, out: &mut Output) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(socket) = self.inner.splicing() {
            let (spinners, waited) = (&self.spinners, &mut self.waited);
            return socket.send_output(out, || {
                *waited += 1;
                Asleep::new(spinners)
            });
        }
        out.write_to(self)
    }

    fn sharing(&mut self) -> Sharing {
        #[cfg(target_os = "linux")]
        if self.inner.splicing().is_some() {
            return super::splice::SPLICE_SHARING;
        }
        super::output::WRITEV_SHARING
    }
}

/// Time and the CPU as a spinning reader sees them; a trait so that tests drive both.
pub trait WaitClock {
    /// Nanoseconds from some fixed point.
    fn now_ns(&self) -> u64;
    /// Lets whatever else is runnable on this CPU run first (`sched_yield`).
    fn relax(&self);
}

/// The monotonic clock, from when it was made.
#[derive(Debug, Clone, Copy)]
pub struct Monotonic(Instant);

impl Default for Monotonic {
    fn default() -> Self {
        Monotonic(Instant::now())
    }
}

impl WaitClock for Monotonic {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn relax(&self) {
        thread::yield_now();
    }
}

/// A [`WaitClock::relax`] that took longer than this ran another task: the CPU is not
/// about to go idle, so spinning saves no wake-up (and takes time from that task). A
/// yield that finds nothing to run returns in well under a microsecond.
const BUSY_CPU_NS: u64 = 10_000;

/// How many connections may spin at once, shared by a server's connections.
#[derive(Debug)]
pub struct Spinners {
    limit: usize,
    spinning: AtomicUsize,
    /// Connections not asleep in a blocking read: answering requests or spinning.
    awake: AtomicUsize,
}

impl Spinners {
    /// At most `limit` spinning at once.
    pub fn new(limit: usize) -> Spinners {
        Spinners {
            limit,
            spinning: AtomicUsize::new(0),
            awake: AtomicUsize::new(0),
        }
    }

    /// One fewer than the CPUs: a client always has a CPU to run on.
    pub fn for_this_machine() -> Spinners {
        let cpus = thread::available_parallelism().map_or(1, |n| n.get());
        Spinners::new(cpus - 1)
    }

    /// A turn to spin, if fewer than the limit spin now and no more than the limit are
    /// awake. When more connections are busy than the limit their threads and their
    /// clients' fill the CPUs, none is about to idle, and a spinning one would only take
    /// a CPU from them (measured: read 64K q16 on 8 connections 0.9x of not spinning,
    /// before this rule).
    fn enter(self: &Arc<Self>) -> Option<SpinTurn> {
        if self.awake() > self.limit {
            return None;
        }
        self.spinning
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| SpinTurn(Arc::clone(self)))
    }

    /// Connections spinning now.
    pub fn spinning(&self) -> usize {
        self.spinning.load(Ordering::Acquire)
    }

    /// Connections awake now (their [`Polling`] readers exist and are not in a blocking
    /// read).
    pub fn awake(&self) -> usize {
        self.awake.load(Ordering::Acquire)
    }
}

/// A connection asleep in a blocking read, for as long as this lives.
struct Asleep<'a>(&'a Spinners);

impl<'a> Asleep<'a> {
    fn new(spinners: &'a Spinners) -> Asleep<'a> {
        spinners.awake.fetch_sub(1, Ordering::AcqRel);
        Asleep(spinners)
    }
}

impl Drop for Asleep<'_> {
    fn drop(&mut self) {
        self.0.awake.fetch_add(1, Ordering::AcqRel);
    }
}

/// A connection's turn to spin; ends when dropped.
struct SpinTurn(Arc<Spinners>);

impl Drop for SpinTurn {
    fn drop(&mut self) {
        self.0.spinning.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How a [`Polling`] reader's waits ended, for tests and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WaitCounts {
    /// Reads answered by the first non-blocking try (the bytes were there).
    pub ready: u64,
    /// Reads answered by a later try while spinning.
    pub spun: u64,
    /// Reads that slept in a blocking read.
    pub slept: u64,
    /// Waits that could not spin because as many connections as the limit were
    /// spinning, or more than the limit were awake.
    pub no_turn: u64,
    /// Spins ended because another task was running on this CPU (so it was not going
    /// to idle).
    pub busy_cpu: u64,
}

/// A connection's reader that spins briefly before it sleeps (see the module's notes).
pub struct Polling<R, C = Monotonic> {
    inner: R,
    policy: Adaptive,
    spinners: Arc<Spinners>,
    clock: C,
    /// False once the source said it cannot read without blocking.
    can_poll: bool,
    counts: WaitCounts,
}

impl<R: PollRead> Polling<R> {
    /// `inner` spinning at most `max` before each sleep, while `spinners` has a turn.
    pub fn new(inner: R, max: Duration, spinners: Arc<Spinners>) -> Polling<R> {
        Polling::with_clock(inner, max, spinners, Monotonic::default())
    }
}

impl<R: PollRead, C: WaitClock> Polling<R, C> {
    /// [`Polling::new`] timed by `clock`.
    pub fn with_clock(inner: R, max: Duration, spinners: Arc<Spinners>, clock: C) -> Polling<R, C> {
        spinners.awake.fetch_add(1, Ordering::AcqRel);
        Polling {
            inner,
            policy: Adaptive::new(max),
            spinners,
            clock,
            can_poll: true,
            counts: WaitCounts::default(),
        }
    }

    /// How the reads so far ended.
    pub fn counts(&self) -> WaitCounts {
        self.counts
    }

    /// The window of the next wait.
    pub fn policy(&self) -> Adaptive {
        self.policy
    }

    /// Tries the source without blocking: `Some` for anything but "nothing yet".
    fn try_now(
        &mut self,
        read: &mut impl FnMut(&mut R, Blocking) -> io::Result<usize>,
    ) -> Option<io::Result<usize>> {
        match read(&mut self.inner, Blocking::No) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                None
            }
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                self.can_poll = false;
                None
            }
            r => Some(r),
        }
    }

    /// One read by `read`: tried at once, then spun on, then blocking (see the module's
    /// notes). `sample` says whether the wait is one the policy learns from (a wait for
    /// a request, not for the rest of one begun).
    fn wait_read(
        &mut self,
        sample: bool,
        mut read: impl FnMut(&mut R, Blocking) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if !self.can_poll || !self.policy.enabled() {
            let _asleep = Asleep::new(&self.spinners);
            return read(&mut self.inner, Blocking::Yes);
        }
        let start = self.clock.now_ns();
        if let Some(r) = self.try_now(&mut read) {
            self.counts.ready += 1;
            return r;
        }
        let window = self.policy.window_ns();
        if self.can_poll && window > 0 {
            match self.spinners.enter() {
                Some(_turn) => loop {
                    // Let whatever else is runnable on this CPU (perhaps the client)
                    // go first; returns at once when nothing is.
                    let before = self.clock.now_ns();
                    self.clock.relax();
                    if self.clock.now_ns().saturating_sub(before) > BUSY_CPU_NS {
                        // Something else runs here: sleeping loses nothing.
                        self.counts.busy_cpu += 1;
                        break;
                    }
                    if let Some(r) = self.try_now(&mut read) {
                        self.counts.spun += 1;
                        if sample {
                            self.policy
                                .waited(self.clock.now_ns().saturating_sub(start));
                        }
                        return r;
                    }
                    if !self.can_poll || self.clock.now_ns().saturating_sub(start) >= window {
                        break;
                    }
                },
                None => self.counts.no_turn += 1,
            }
        }
        self.counts.slept += 1;
        let asleep = Asleep::new(&self.spinners);
        let r = read(&mut self.inner, Blocking::Yes);
        drop(asleep);
        if sample {
            self.policy
                .waited(self.clock.now_ns().saturating_sub(start));
        }
        r
    }
}

/// Whether a read may wait for bytes.
#[derive(Clone, Copy)]
enum Blocking {
    Yes,
    No,
}

impl<R, C> Drop for Polling<R, C> {
    fn drop(&mut self) {
        self.spinners.awake.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<R: PollRead, C: WaitClock> Read for Polling<R, C> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.inner.read(buf);
        }
        self.wait_read(true, |inner, blocking| match blocking {
            Blocking::Yes => inner.read(buf),
            Blocking::No => inner.read_now(buf),
        })
    }

    /// The rest of a message already begun (a Twrite's data read into pages): it is on
    /// its way, so it is waited for as a request is, but is not a wait the policy
    /// learns from.
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.wait_read(false, |inner, blocking| match blocking {
            Blocking::Yes => inner.read_vectored(bufs),
            Blocking::No => inner.read_now_vectored(bufs),
        })
    }
}

mod policy;
#[cfg(test)]
pub(super) mod tests;

pub use policy::Adaptive;
