//! The load loop: keeps `depth` operations in flight on one connection, each in its own
//! slot whose tag is the slot number, and counts the operations that complete inside
//! the measured window.
//!
//! An operation may take several requests in a row (walk, then open, then clunk); a slot
//! has at most one request outstanding, so a reply's tag names the slot and the step.

use std::time::{Duration, Instant};

use super::client::{ClientError, Conn, Reply};

/// What an operation did with a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// It queued its next request under the same tag.
    Pending,
    /// It is complete and moved this many bytes of file data.
    Done { bytes: u64 },
}

/// One kind of operation, run in many slots at once.
pub trait Operation {
    /// Queues the first request of a new operation in `slot`, tagged `slot`.
    fn begin(&mut self, conn: &mut Conn, slot: u16) -> Result<(), ClientError>;
    /// Takes the reply to `slot`'s outstanding request: queues the operation's next
    /// request, or says it is done.
    fn advance(
        &mut self,
        conn: &mut Conn,
        slot: u16,
        reply: Reply,
    ) -> Result<Progress, ClientError>;
}

/// How long a cell runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Run `warmup` uncounted, then count completions for `measure`.
    Time { warmup: Duration, measure: Duration },
    /// Run exactly this many operations, all counted, from the first request.
    Ops(u64),
}

/// Operations completed in a measured window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    pub ops: u64,
    /// File data moved by those operations.
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Measurement {
    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// Megabytes (10^6 bytes) per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A [`Measurement`] with the moments its window opened and closed, so the windows of
/// connections measured at once can be put together ([`Counted::aggregate`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counted {
    pub measurement: Measurement,
    pub from: Instant,
    pub to: Instant,
}

impl Counted {
    /// Connections measured at once as one: every operation and byte of them all,
    /// over the time from the first window's opening to the last one's closing (a
    /// connection the server starves stretches the time, it does not vanish from it).
    /// No connections: nothing in no time.
    pub fn aggregate(parts: &[Counted]) -> Measurement {
        let from = parts.iter().map(|c| c.from).min();
        let to = parts.iter().map(|c| c.to).max();
        Measurement {
            ops: parts.iter().map(|c| c.measurement.ops).sum(),
            bytes: parts.iter().map(|c| c.measurement.bytes).sum(),
            elapsed: match (from, to) {
                (Some(from), Some(to)) => to.duration_since(from),
                _ => Duration::ZERO,
            },
        }
    }
}

/// Runs `op` with `depth` (at least 1) slots until `limit`, then lets every slot finish
/// its operation, so the connection is quiet when this returns `Ok`.
pub fn run(
    conn: &mut Conn,
    op: &mut dyn Operation,
    depth: u16,
    limit: Limit,
) -> Result<Measurement, ClientError> {
    run_counted(conn, op, depth, limit).map(|c| c.measurement)
}

/// [`run`], with the moments the measured window opened and closed.
pub fn run_counted(
    conn: &mut Conn,
    op: &mut dyn Operation,
    depth: u16,
    limit: Limit,
) -> Result<Counted, ClientError> {
    let depth = depth.max(1);
    let mut window = Window::new(limit);
    let mut in_flight = vec![false; usize::from(depth)];
    let mut busy = 0usize;
    for slot in 0..depth {
        if !window.may_start() {
            break;
        }
        op.begin(conn, slot)?;
        window.started();
        in_flight[usize::from(slot)] = true;
        busy += 1;
    }
    while busy > 0 {
        let reply = conn.recv()?;
        let tag = reply.tag();
        if !in_flight.get(usize::from(tag)).copied().unwrap_or(false) {
            return Err(ClientError::StrayTag(tag));
        }
        if let Progress::Done { bytes } = op.advance(conn, tag, reply)? {
            window.completed(bytes, Instant::now());
            if window.may_start() {
                op.begin(conn, tag)?;
                window.started();
            } else {
                in_flight[usize::from(tag)] = false;
                busy -= 1;
            }
        }
    }
    Ok(window.counted())
}

/// The measured window and the decision to keep starting operations.
struct Window {
    limit: Limit,
    start: Instant,
    /// When counting began: at the start for `Ops`, at the first completion after the
    /// warmup for `Time`.
    counting_since: Option<Instant>,
    last_counted: Instant,
    started: u64,
    ops: u64,
    bytes: u64,
    closed: bool,
}

impl Window {
    fn new(limit: Limit) -> Window {
        let start = Instant::now();
        Window {
            limit,
            start,
            counting_since: matches!(limit, Limit::Ops(_)).then_some(start),
            last_counted: start,
            started: 0,
            ops: 0,
            bytes: 0,
            closed: false,
        }
    }

    fn may_start(&self) -> bool {
        match self.limit {
            Limit::Ops(n) => self.started < n,
            Limit::Time { .. } => !self.closed,
        }
    }

    fn started(&mut self) {
        self.started += 1;
    }

    fn completed(&mut self, bytes: u64, now: Instant) {
        if self.closed {
            return;
        }
        let Some(since) = self.counting_since else {
            // Still warming up: the first completion after the warmup opens the window.
            if let Limit::Time { warmup, .. } = self.limit {
                if now.duration_since(self.start) >= warmup {
                    self.counting_since = Some(now);
                    self.last_counted = now;
                }
            }
            return;
        };
        self.ops += 1;
        self.bytes += bytes;
        self.last_counted = now;
        if let Limit::Time { measure, .. } = self.limit {
            if now.duration_since(since) >= measure {
                self.closed = true;
            }
        }
    }

    #[cfg(test)]
    fn measurement(&self) -> Measurement {
        self.counted().measurement
    }

    fn counted(&self) -> Counted {
        let since = self.counting_since.unwrap_or(self.start);
        Counted {
            measurement: Measurement {
                ops: self.ops,
                bytes: self.bytes,
                elapsed: self.last_counted.duration_since(since),
            },
            from: since,
            to: self.last_counted,
        }
    }
}

/// `limit` shared among `n` connections run at once: a time applies to each; a number
/// of operations is split, so that all of them together do that many.
pub fn split_limit(limit: Limit, n: u16) -> Vec<Limit> {
    let n = u64::from(n.max(1));
    match limit {
        Limit::Time { .. } => vec![limit; n as usize],
        Limit::Ops(ops) => (0..n)
            .map(|i| Limit::Ops(ops / n + u64::from(i < ops % n)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_limit_counts_every_completion_and_stops_starting() {
        let mut w = Window::new(Limit::Ops(3));
        let t = w.start;
        for i in 0..3 {
            assert!(w.may_start());
            w.started();
            w.completed(10, t + Duration::from_millis(i + 1));
        }
        assert!(!w.may_start());
        let m = w.measurement();
        assert_eq!((m.ops, m.bytes), (3, 30));
        assert_eq!(m.elapsed, Duration::from_millis(3));
    }

    #[test]
    fn time_limit_skips_the_warmup_and_closes_after_the_window() {
        let ms = Duration::from_millis;
        let mut w = Window::new(Limit::Time {
            warmup: ms(10),
            measure: ms(20),
        });
        let t = w.start;
        w.completed(1, t + ms(5)); // warmup, not counted
        w.completed(1, t + ms(12)); // opens the window, not counted
        w.completed(1, t + ms(20));
        assert!(w.may_start());
        w.completed(1, t + ms(32)); // 20 ms after the window opened: closes it
        assert!(!w.may_start());
        w.completed(1, t + ms(40)); // draining, not counted
        let m = w.measurement();
        assert_eq!((m.ops, m.bytes), (2, 2));
        assert_eq!(m.elapsed, ms(20));
    }

    #[test]
    fn connections_at_once_add_up_over_the_span_of_their_windows() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let part = |ops, from, to| Counted {
            measurement: Measurement {
                ops,
                bytes: ops * 10,
                elapsed: ms(to - from),
            },
            from: t + ms(from),
            to: t + ms(to),
        };
        let m = Counted::aggregate(&[part(100, 0, 1000), part(50, 10, 1010), part(0, 5, 5)]);
        assert_eq!((m.ops, m.bytes, m.elapsed), (150, 1500, ms(1010)));
        assert_eq!(Counted::aggregate(&[]).ops, 0);
    }

    #[test]
    fn an_operation_count_is_split_and_a_time_is_not() {
        let ops = |v: Vec<Limit>| -> Vec<u64> {
            v.into_iter()
                .map(|l| match l {
                    Limit::Ops(n) => n,
                    Limit::Time { .. } => panic!("a time"),
                })
                .collect()
        };
        assert_eq!(ops(split_limit(Limit::Ops(10), 4)), [3, 3, 2, 2]);
        assert_eq!(ops(split_limit(Limit::Ops(2), 3)), [1, 1, 0]);
        let time = Limit::Time {
            warmup: Duration::ZERO,
            measure: Duration::from_secs(1),
        };
        assert_eq!(split_limit(time, 8), vec![time; 8]);
    }

    #[test]
    fn rates_use_megabytes_of_a_million_bytes() {
        let m = Measurement {
            ops: 4,
            bytes: 2_000_000,
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(m.ops_per_sec(), 2.0);
        assert_eq!(m.mb_per_sec(), 1.0);
    }
}
