//! The spin-then-sleep reader against a scripted socket on a scripted clock: every test
//! knows exactly when each request arrives and counts how it was found.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use super::*;

/// Fake nanoseconds, shared by a [`Timeline`] and the reader that waits on it; a yield
/// takes no time unless `busy` says how long the tasks it lets run take.
#[derive(Clone, Default)]
pub(crate) struct FakeClock(pub Rc<Cell<u64>>, pub Rc<RefCell<VecDeque<u64>>>);

impl FakeClock {
    /// The next yields run other tasks for these many nanoseconds each.
    pub fn busy(&self, yields: impl IntoIterator<Item = u64>) {
        self.1.borrow_mut().extend(yields);
    }
}

impl WaitClock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.0.get()
    }

    fn relax(&self) {
        let ran = self.1.borrow_mut().pop_front().unwrap_or(0);
        self.0.set(self.0.get() + ran);
    }
}

/// What arrives on a [`Timeline`].
pub(crate) enum Arrival {
    Bytes(Vec<u8>),
    Eof,
    Error(io::ErrorKind),
}

/// How an arrival was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// By a non-blocking try.
    Tried,
    /// By a blocking read.
    Slept,
}

/// Each non-blocking try costs this much fake time.
pub(crate) const TRY_NS: u64 = 1_000;

/// A socket on which each arrival comes a given time after the reader first asks for it
/// (after the one before it was taken). A try advances the clock by [`TRY_NS`] and finds
/// the arrival if its time has come; a blocking read moves the clock to it.
pub(crate) struct Timeline {
    clock: FakeClock,
    /// (delay, absolute time once asked for, what).
    script: VecDeque<(u64, Option<u64>, Arrival)>,
    /// How each arrival was taken, in order (bytes cut by small reads count once).
    pub taken: Rc<RefCell<Vec<Taken>>>,
    /// Non-blocking tries made.
    pub tries: Rc<Cell<u64>>,
}

impl Timeline {
    pub fn new(clock: &FakeClock, script: Vec<(Duration, Arrival)>) -> Timeline {
        Timeline {
            clock: clock.clone(),
            script: script
                .into_iter()
                .map(|(d, a)| (d.as_nanos() as u64, None, a))
                .collect(),
            taken: Rc::default(),
            tries: Rc::default(),
        }
    }

    /// The front arrival's absolute time (fixed the first time it is asked for).
    fn due(&mut self) -> Option<u64> {
        let now = self.clock.0.get();
        let (delay, at, _) = self.script.front_mut()?;
        Some(*at.get_or_insert(now + *delay))
    }

    fn take(&mut self, buf: &mut [u8], how: Taken) -> io::Result<usize> {
        let Some((_, _, arrival)) = self.script.front_mut() else {
            return Ok(0);
        };
        let r = match arrival {
            Arrival::Eof => return Ok(0),
            Arrival::Error(kind) => Err(io::Error::from(*kind)),
            Arrival::Bytes(bytes) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                bytes.drain(..n);
                if !bytes.is_empty() {
                    // The rest has arrived too; it is taken by the next read.
                    return Ok(n);
                }
                Ok(n)
            }
        };
        self.script.pop_front();
        self.taken.borrow_mut().push(how);
        r
    }

    /// [`Timeline::take`] into several buffers in order.
    fn take_vectored(&mut self, bufs: &mut [IoSliceMut<'_>], how: Taken) -> io::Result<usize> {
        let mut all = vec![0; bufs.iter().map(|b| b.len()).sum()];
        let n = self.take(&mut all, how)?;
        let mut from = &all[..n];
        for buf in bufs.iter_mut() {
            let k = buf.len().min(from.len());
            buf[..k].copy_from_slice(&from[..k]);
            from = &from[k..];
        }
        Ok(n)
    }
}

impl Read for Timeline {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(at) = self.due() {
            let now = self.clock.0.get();
            self.clock.0.set(now.max(at));
        }
        self.take(buf, Taken::Slept)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        if let Some(at) = self.due() {
            let now = self.clock.0.get();
            self.clock.0.set(now.max(at));
        }
        self.take_vectored(bufs, Taken::Slept)
    }
}

impl PollRead for Timeline {
    fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tries.set(self.tries.get() + 1);
        let Some(at) = self.due() else {
            return Ok(0);
        };
        let now = self.clock.0.get() + TRY_NS;
        self.clock.0.set(now);
        if now < at {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.take(buf, Taken::Tried)
    }

    fn read_now_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.tries.set(self.tries.get() + 1);
        let Some(at) = self.due() else {
            return Ok(0);
        };
        let now = self.clock.0.get() + TRY_NS;
        self.clock.0.set(now);
        if now < at {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.take_vectored(bufs, Taken::Tried)
    }
}

const WINDOW: Duration = Duration::from_micros(100);

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// A reader over `script` that may spin up to [`WINDOW`], with a spinner limit of one.
fn polling(script: Vec<(Duration, Arrival)>) -> Polling<Timeline, FakeClock> {
    let clock = FakeClock::default();
    let timeline = Timeline::new(&clock, script);
    Polling::with_clock(timeline, WINDOW, Arc::new(Spinners::new(1)), clock)
}

#[test]
fn a_request_within_the_window_is_found_spinning() {
    let mut r = polling(vec![(us(30), Arrival::Bytes(b"abc".to_vec()))]);
    let mut buf = [0; 8];
    assert_eq!(r.read(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"abc");
    assert_eq!(*r.inner.taken.borrow(), [Taken::Tried]);
    assert_eq!(r.counts().spun, 1);
    assert_eq!(r.counts().slept, 0);
    assert_eq!(
        r.inner.tries.get(),
        30,
        "one try a microsecond until it came"
    );
    assert_eq!(r.policy().window_ns(), 100_000);
}

#[test]
fn bytes_already_there_are_read_at_once() {
    let mut r = polling(vec![
        (Duration::ZERO, Arrival::Bytes(b"abcdef".to_vec())),
        (us(1), Arrival::Eof),
    ]);
    let mut buf = [0; 4];
    // The first try finds the bytes (its microsecond has come), cut to the buffer.
    assert_eq!(r.read(&mut buf).unwrap(), 4);
    assert_eq!(r.read(&mut buf).unwrap(), 2);
    assert_eq!(r.counts().ready, 2);
    assert_eq!(r.inner.tries.get(), 2);
}

#[test]
fn a_request_after_the_window_is_read_sleeping() {
    let mut r = polling(vec![(us(500), Arrival::Bytes(b"late".to_vec()))]);
    let mut buf = [0; 8];
    assert_eq!(r.read(&mut buf).unwrap(), 4);
    assert_eq!(*r.inner.taken.borrow(), [Taken::Slept]);
    assert_eq!(r.counts().slept, 1);
    assert_eq!(
        r.inner.tries.get(),
        100,
        "tried for the whole window, no longer"
    );
    assert_eq!(
        r.policy().window_ns(),
        50_000,
        "a long wait shrinks the window"
    );
}

#[test]
fn end_of_file_while_spinning_ends_the_read() {
    let mut r = polling(vec![(us(20), Arrival::Eof)]);
    let mut buf = [0; 8];
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    assert_eq!(r.counts().spun, 1);
    assert_eq!(r.counts().slept, 0);
}

#[test]
fn an_error_while_spinning_is_returned() {
    let mut r = polling(vec![(
        us(20),
        Arrival::Error(io::ErrorKind::ConnectionReset),
    )]);
    let mut buf = [0; 8];
    let e = r.read(&mut buf).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(r.counts().spun, 1);
    assert_eq!(r.counts().slept, 0);
}

#[test]
fn a_long_pause_stops_the_spinning_and_short_waits_bring_it_back() {
    let pauses = (0..10).map(|_| (us(10_000), Arrival::Bytes(vec![1])));
    let quick = (0..4).map(|_| (us(20), Arrival::Bytes(vec![2])));
    let mut r = polling(pauses.chain(quick).collect());
    let mut buf = [0; 8];
    let mut tries = Vec::new();
    for _ in 0..14 {
        let before = r.inner.tries.get();
        assert_eq!(r.read(&mut buf).unwrap(), 1);
        tries.push(r.inner.tries.get() - before);
    }
    // 100, 50, 25, 12.5, 6.25 µs of spinning, then only the one try a wait.
    assert_eq!(&tries[..10], &[100, 50, 25, 13, 7, 1, 1, 1, 1, 1]);
    let taken = r.inner.taken.borrow();
    assert!(taken[..10].iter().all(|t| *t == Taken::Slept));
    // Quick requests grow it back (10, then 20 µs), and are then found spinning.
    assert_eq!(&tries[10..], &[1, 10, 20, 20]);
    assert_eq!(
        &taken[10..],
        &[Taken::Slept, Taken::Slept, Taken::Tried, Taken::Tried]
    );
    assert_eq!(r.policy().window_ns(), 20_000);
}

#[test]
fn no_more_connections_spin_at_once_than_the_limit() {
    let spinners = Arc::new(Spinners::new(1));
    let held = spinners.enter().expect("a first turn");
    assert!(spinners.enter().is_none(), "the limit is one");
    assert_eq!(spinners.spinning(), 1);
    let clock = FakeClock::default();
    let timeline = Timeline::new(&clock, vec![(us(30), Arrival::Bytes(vec![1]))]);
    let mut r = Polling::with_clock(timeline, WINDOW, Arc::clone(&spinners), clock);
    let mut buf = [0; 8];
    assert_eq!(r.read(&mut buf).unwrap(), 1);
    assert_eq!(r.counts().no_turn, 1);
    assert_eq!(*r.inner.taken.borrow(), [Taken::Slept]);
    drop(held);
    assert_eq!(spinners.spinning(), 0, "a turn ends when dropped");
    // One CPU: nobody spins.
    let none = Arc::new(Spinners::new(0));
    assert!(none.enter().is_none());
}

#[test]
fn a_turn_is_given_back_after_every_spin() {
    let mut r = polling(vec![
        (us(30), Arrival::Bytes(vec![1])),
        (us(500), Arrival::Bytes(vec![2])),
        (us(30), Arrival::Error(io::ErrorKind::BrokenPipe)),
    ]);
    let mut buf = [0; 8];
    assert_eq!(r.read(&mut buf).unwrap(), 1);
    assert_eq!(r.spinners.spinning(), 0);
    assert_eq!(r.read(&mut buf).unwrap(), 1);
    assert_eq!(r.spinners.spinning(), 0);
    r.read(&mut buf).unwrap_err();
    assert_eq!(r.spinners.spinning(), 0);
    assert_eq!(r.counts().spun, 2);
}

/// A source that cannot read without blocking, like standard input.
struct BlockingOnly {
    tries: u32,
    reads: u32,
}

impl Read for BlockingOnly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        buf[0] = 7;
        Ok(1)
    }
}

impl PollRead for BlockingOnly {
    fn read_now(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        self.tries += 1;
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[test]
fn a_source_that_cannot_poll_is_read_blocking_only() {
    let inner = BlockingOnly { tries: 0, reads: 0 };
    let clock = FakeClock::default();
    let mut r = Polling::with_clock(inner, WINDOW, Arc::new(Spinners::new(1)), clock);
    let mut buf = [0; 8];
    for _ in 0..3 {
        assert_eq!(r.read(&mut buf).unwrap(), 1);
    }
    assert_eq!(r.inner.tries, 1, "asked once");
    assert_eq!(r.inner.reads, 3);
}

#[test]
fn a_spin_ends_when_a_yield_runs_another_task() {
    // Short yields (nothing else to run) keep it spinning; one that lets another task
    // run for 50 µs ends the spin: it sleeps, and the request comes to the read.
    let mut r = polling(vec![(us(90), Arrival::Bytes(vec![1]))]);
    r.clock.busy([200, 200, 50_000]);
    let mut buf = [0; 8];
    assert_eq!(r.read(&mut buf).unwrap(), 1);
    assert_eq!(r.counts().busy_cpu, 1);
    assert_eq!(r.counts().slept, 1);
    assert_eq!(
        r.inner.tries.get(),
        3,
        "the first try and two while spinning"
    );
    assert_eq!(*r.inner.taken.borrow(), [Taken::Slept]);
    assert_eq!(r.spinners.spinning(), 0);
}

/// A timeline whose reads report, through `seen`, how many connections were awake.
struct Watching {
    timeline: Timeline,
    spinners: Arc<Spinners>,
    seen: Rc<RefCell<Vec<usize>>>,
}

impl Read for Watching {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.seen.borrow_mut().push(self.spinners.awake());
        self.timeline.read(buf)
    }
}

impl PollRead for Watching {
    fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.timeline.read_now(buf)
    }
}

#[test]
fn no_connection_spins_while_more_than_the_limit_are_awake() {
    let spinners = Arc::new(Spinners::new(1));
    let clock = FakeClock::default();
    let script = || {
        vec![
            (us(30), Arrival::Bytes(vec![1])),
            (us(30), Arrival::Bytes(vec![2])),
        ]
    };
    let seen = Rc::new(RefCell::new(Vec::new()));
    let watching = Watching {
        timeline: Timeline::new(&clock, script()),
        spinners: Arc::clone(&spinners),
        seen: Rc::clone(&seen),
    };
    let mut a = Polling::with_clock(watching, WINDOW, Arc::clone(&spinners), clock.clone());
    assert_eq!(spinners.awake(), 1, "a new connection is awake");
    let b = Polling::with_clock(
        Timeline::new(&clock, script()),
        WINDOW,
        Arc::clone(&spinners),
        clock.clone(),
    );
    assert_eq!(spinners.awake(), 2);
    let mut buf = [0; 8];
    // Two awake, limit one: a sleeps, and is not counted awake while it does.
    assert_eq!(a.read(&mut buf).unwrap(), 1);
    assert_eq!(a.counts().no_turn, 1);
    assert_eq!(
        *seen.borrow(),
        [1],
        "only b was awake during a's blocking read"
    );
    assert_eq!(spinners.awake(), 2, "awake again after it");
    // b goes away: a alone is awake and spins.
    drop(b);
    assert_eq!(spinners.awake(), 1);
    assert_eq!(a.read(&mut buf).unwrap(), 1);
    assert_eq!(a.counts().spun, 1);
    drop(a);
    assert_eq!(spinners.awake(), 0);
}

#[test]
fn a_vectored_read_fills_every_buffer_spinning_or_sleeping_and_teaches_the_policy_nothing() {
    let mut r = polling(vec![
        (us(30), Arrival::Bytes(b"0123456789".to_vec())),
        (us(500), Arrival::Bytes(b"abcdefghij".to_vec())),
    ]);
    for (how, want) in [(Taken::Tried, b"0123456789"), (Taken::Slept, b"abcdefghij")] {
        let (mut a, mut b, mut c) = ([0u8; 3], [0u8; 4], [0u8; 8]);
        let mut bufs = [
            IoSliceMut::new(&mut a),
            IoSliceMut::new(&mut b),
            IoSliceMut::new(&mut c),
        ];
        assert_eq!(r.read_vectored(&mut bufs).unwrap(), 10, "{how:?}");
        assert_eq!([&a[..], &b[..], &c[..3]].concat(), want, "{how:?}");
        assert_eq!(r.inner.taken.borrow().last(), Some(&how));
    }
    assert_eq!((r.counts().spun, r.counts().slept), (1, 1));
    // The rest of a message begun is not a wait for a request: the long one (which
    // shrinks the window for a plain read) leaves the window as it was.
    assert_eq!(r.policy().window_ns(), 100_000);
}

/// A writer over a real socket whose client does not read: the write that finds the
/// socket full waits asleep (the awake count drops while it waits, and comes back),
/// and one the socket takes at once never counts as waiting.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_write_that_waits_for_a_client_not_reading_counts_as_asleep() {
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    let spinners = Arc::new(Spinners::new(1));
    // The connection's reader keeps it awake.
    let reader = Polling::new(
        BlockingOnly { tries: 0, reads: 0 },
        WINDOW,
        Arc::clone(&spinners),
    );
    let (server, mut client) = UnixStream::pair().unwrap();
    let mut w = PollingWriter::new(server, Arc::clone(&spinners));
    w.write_all(b"hello").unwrap();
    assert_eq!(w.waited(), 0, "taken at once");
    assert_eq!(spinners.awake(), 1);
    let big = vec![1u8; 8 << 20];
    let writing = std::thread::spawn(move || {
        w.write_all(&big).unwrap();
        w.waited()
    });
    // While the write waits for the client, the connection is not awake.
    let deadline = Instant::now() + Duration::from_secs(20);
    while spinners.awake() != 0 {
        assert!(Instant::now() < deadline, "the write never slept");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut got = vec![0u8; 5 + (8 << 20)];
    client.read_exact(&mut got).unwrap();
    let waited = writing.join().unwrap();
    assert!(waited >= 1);
    assert_eq!(spinners.awake(), 1, "awake again once written");
    assert_eq!(&got[..5], b"hello");
    drop(reader);
    assert_eq!(spinners.awake(), 0);
}
