//! When and how long a connection spins: [`Adaptive`].
//!
//! Two decisions, both from the waits the connection has seen (the time from its
//! replies being written to its next request being read):
//!
//! - *Whether to spin at all.* Spinning pays only when the CPU would otherwise go idle
//!   and halt. On a busy machine, or when the scheduler runs the client on the server's
//!   CPU, sleeping is faster: the client runs as soon as the server sleeps and its
//!   request wakes the server at once, where a spinning server holds its CPU and pushes
//!   the client (and everything else) onto the other. Measured on the 2-vCPU test
//!   machine under load (another engineer's build), spinning made stat q1 0.7x of
//!   sleeping; idle, 2 to 3x. So the policy measures both: it spins for
//!   [`EXPLOIT_WAITS`] waits, sleeps for [`EXPLORE_WAITS`] (or the other way round) and
//!   keeps whichever had the shorter mean wait. A check that finds the winner still
//!   winning doubles the time to the next (up to [`MAX_EXPLOIT_WAITS`]), because a
//!   check is dear when spinning loses: a spin wait was about 4 times a sleeping one
//!   under load, and checking every 256 waits cost a fifth of stat q1. So in a steady
//!   state one wait in 513 is spent on the arm that lost; a change (the machine going
//!   idle) is noticed within 8192 waits, a fraction of a second.
//! - *How long to spin*, as Linux's guest halt-polling adapts its window: a request that
//!   arrives within the window keeps it; one that arrives after it but within the
//!   configured maximum doubles it; a wait longer than the maximum halves it, so a
//!   connection whose client pauses stops spinning after a few waits (about twice the
//!   maximum spent in vain, in all, over any run of long waits).

use std::time::Duration;

/// The first window a connection whose window had shrunk to nothing grows back to.
pub(super) const GROW_START_NS: u64 = 10_000;
/// Waits on the arm that is winning before the other is tried again, at first; each
/// check that the winner still wins doubles it, up to [`MAX_EXPLOIT_WAITS`].
pub const EXPLOIT_WAITS: u32 = 256;
/// The most waits between two checks.
pub const MAX_EXPLOIT_WAITS: u32 = 8192;
/// Waits on the arm that is losing, to see whether it still loses.
pub const EXPLORE_WAITS: u32 = 16;

/// Spin before sleeping, or sleep at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arm {
    Spin,
    Sleep,
}

impl Arm {
    fn other(self) -> Arm {
        match self {
            Arm::Spin => Arm::Sleep,
            Arm::Sleep => Arm::Spin,
        }
    }
}

/// How long a connection spins before it sleeps (see the module's notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adaptive {
    max_ns: u64,
    /// The spin arm's window.
    window_ns: u64,
    /// The arm with the shorter mean wait so far.
    best: Arm,
    /// The arm in use.
    arm: Arm,
    /// Waits left on `arm` before the next decision.
    left: u32,
    /// Waits on the winner between two checks now.
    exploit: u32,
    /// Mean wait of each arm (spin, sleep), exponentially weighted; `None` before any.
    mean_ns: [Option<u64>; 2],
}

impl Adaptive {
    /// A policy whose window never exceeds `max` (zero: never spin). It starts spinning
    /// with the whole window and tries sleeping after `EXPLORE_WAITS` waits.
    pub fn new(max: Duration) -> Adaptive {
        let max_ns = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Adaptive {
            max_ns,
            window_ns: max_ns,
            best: Arm::Spin,
            arm: Arm::Spin,
            left: EXPLORE_WAITS,
            // The first check, finding spinning faster, doubles this to EXPLOIT_WAITS.
            exploit: EXPLOIT_WAITS / 2,
            mean_ns: [None, None],
        }
    }

    /// False if the maximum is zero: never spin, nothing to learn.
    pub fn enabled(&self) -> bool {
        self.max_ns > 0
    }

    /// How long to spin on the next wait, in nanoseconds (zero: sleep at once).
    pub fn window_ns(&self) -> u64 {
        match self.arm {
            Arm::Spin => self.window_ns,
            Arm::Sleep => 0,
        }
    }

    /// True while sleeping won: the connection spins only to check that it still does.
    pub fn sleeping_wins(&self) -> bool {
        self.best == Arm::Sleep
    }

    /// Learns from a wait that took `waited_ns` until the request came (spinning or
    /// sleeping).
    pub fn waited(&mut self, waited_ns: u64) {
        if self.max_ns == 0 {
            return;
        }
        if self.arm == Arm::Spin {
            self.adapt_window(waited_ns);
        }
        // A pause far longer than any window says nothing about either arm's cost, and
        // would swamp the means.
        // Saturating, and the mean as m - m/8 + s/8 (never above the larger of the
        // two): the maximum comes from the command line and may be near u64::MAX.
        let sample = waited_ns.min(self.max_ns.saturating_mul(2));
        let mean = &mut self.mean_ns[self.arm as usize];
        *mean = Some(mean.map_or(sample, |m| m - m / 8 + sample / 8));
        self.left -= 1;
        if self.left > 0 {
            return;
        }
        if self.arm == self.best {
            self.arm = self.best.other();
            self.left = EXPLORE_WAITS;
        } else {
            let best = match self.mean_ns {
                [Some(spin), Some(sleep)] if sleep < spin => Arm::Sleep,
                _ => Arm::Spin,
            };
            self.exploit = if best == self.best {
                (self.exploit * 2).min(MAX_EXPLOIT_WAITS)
            } else {
                EXPLOIT_WAITS
            };
            self.best = best;
            self.arm = best;
            self.left = self.exploit;
        }
    }

    fn adapt_window(&mut self, waited_ns: u64) {
        if waited_ns <= self.window_ns {
            // The window was long enough.
        } else if waited_ns <= self.max_ns {
            // A longer window would have caught it.
            self.window_ns = (self.window_ns.saturating_mul(2))
                .max(GROW_START_NS)
                .min(self.max_ns);
        } else {
            // The client paused longer than any window: spinning was wasted.
            self.window_ns /= 2;
            if self.window_ns < GROW_START_NS / 2 {
                self.window_ns = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `n` waits: `spin_ns` long when the policy spins, `sleep_ns` when it sleeps.
    /// Returns how many of them spun.
    fn feed(p: &mut Adaptive, n: u32, spin_ns: u64, sleep_ns: u64) -> u32 {
        let mut spun = 0;
        for _ in 0..n {
            if p.window_ns() > 0 {
                spun += 1;
                p.waited(spin_ns);
            } else {
                p.waited(sleep_ns);
            }
        }
        spun
    }

    #[test]
    fn the_window_keeps_grows_and_shrinks_with_the_waits() {
        let mut p = Adaptive::new(Duration::from_micros(100));
        assert_eq!(p.window_ns(), 100_000, "starts at the maximum");
        p.waited(30_000);
        assert_eq!(p.window_ns(), 100_000, "a wait within the window keeps it");
        p.waited(250_000);
        assert_eq!(p.window_ns(), 50_000, "a wait past the maximum halves it");
        p.waited(70_000);
        assert_eq!(
            p.window_ns(),
            100_000,
            "a wait the maximum would catch doubles it"
        );
        // Long pauses take the window to nothing, in a few waits.
        let mut spun = 0;
        for _ in 0..8 {
            spun += p.window_ns();
            p.waited(1_000_000);
        }
        assert_eq!(p.window_ns(), 0);
        assert!(
            spun < 200_000,
            "at most twice the maximum spun in vain: {spun}"
        );
        // With no window, a short wait grows it back from GROW_START_NS.
        p.waited(5_000);
        assert_eq!(p.window_ns(), GROW_START_NS);
        p.waited(15_000);
        assert_eq!(p.window_ns(), 2 * GROW_START_NS);
        // Zero: never a window.
        let mut off = Adaptive::new(Duration::ZERO);
        off.waited(1_000);
        assert_eq!(off.window_ns(), 0);
    }

    #[test]
    fn spinning_is_kept_while_it_waits_less_than_sleeping() {
        // An idle machine: a sleeping server pays a halted CPU's wake-up.
        let mut p = Adaptive::new(Duration::from_micros(100));
        assert_eq!(feed(&mut p, EXPLORE_WAITS, 20_000, 60_000), EXPLORE_WAITS);
        assert_eq!(
            feed(&mut p, EXPLORE_WAITS, 20_000, 60_000),
            0,
            "sleeping is tried"
        );
        assert!(!p.sleeping_wins());
        // Then spinning for 256, 512, ... 8192 waits, sleeping 16 after each to check.
        let mut exploit = EXPLOIT_WAITS;
        for _ in 0..8 {
            assert_eq!(feed(&mut p, exploit, 20_000, 60_000), exploit);
            assert_eq!(feed(&mut p, EXPLORE_WAITS, 20_000, 60_000), 0);
            exploit = (exploit * 2).min(MAX_EXPLOIT_WAITS);
        }
        assert_eq!(exploit, MAX_EXPLOIT_WAITS);
        assert!(!p.sleeping_wins());
    }

    #[test]
    fn sleeping_is_kept_while_it_waits_less_and_spinning_comes_back_when_it_pays() {
        // A busy machine: the client runs on the server's CPU as soon as it sleeps.
        let mut p = Adaptive::new(Duration::from_micros(100));
        feed(&mut p, 2 * EXPLORE_WAITS, 40_000, 8_000);
        assert!(p.sleeping_wins());
        assert_eq!(p.window_ns(), 0);
        // Only the checks spin, fewer and fewer of them.
        let n = 100_000;
        let spun = feed(&mut p, n, 40_000, 8_000);
        assert!(spun <= n / 256, "{spun} of {n} waits spun");
        assert!(p.sleeping_wins());
        // The machine goes idle: within one check spinning wins again, and stays.
        let spun = feed(&mut p, MAX_EXPLOIT_WAITS + EXPLORE_WAITS, 20_000, 60_000);
        assert!(spun >= EXPLORE_WAITS, "{spun}");
        assert!(!p.sleeping_wins());
        let spun = feed(&mut p, 10_000, 20_000, 60_000);
        assert!(spun > 9_000, "spinning again: {spun} of 10000 waits");
    }

    #[test]
    fn a_huge_maximum_does_not_overflow() {
        // `--poll-us` takes any u64: 2^64 - 1 us is more nanoseconds than a u64 holds,
        // so the maximum saturates, and the sample cap (twice it) and the mean must
        // not overflow either.
        let mut p = Adaptive::new(Duration::from_micros(u64::MAX));
        assert_eq!(p.window_ns(), u64::MAX);
        for wait in [1_000, u64::MAX, u64::MAX / 2, 0] {
            p.waited(wait);
        }
        let mean = p.mean_ns[Arm::Spin as usize].unwrap_or(0);
        assert!(mean > u64::MAX / 8, "long waits weigh in the mean: {mean}");
    }

    #[test]
    fn long_pauses_count_as_twice_the_maximum() {
        // A client that pauses for seconds while the policy sleeps does not make
        // sleeping look a thousand times worse than it is.
        let mut p = Adaptive::new(Duration::from_micros(100));
        feed(&mut p, EXPLORE_WAITS, 150_000, 0);
        feed(&mut p, EXPLORE_WAITS, 0, 5_000_000_000);
        assert_eq!(p.mean_ns[Arm::Sleep as usize], Some(200_000));
        assert!(!p.sleeping_wins(), "150 us spinning beats a capped 200 us");
    }
}
