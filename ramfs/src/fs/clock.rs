//! File times: the system clock, or one fixed time for reproducible transcripts.

use std::time::{SystemTime, UNIX_EPOCH};

/// A time in seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timespec {
    /// Seconds since 1970-01-01 00:00 UTC.
    pub sec: u64,
    /// Nanoseconds within the second.
    pub nsec: u32,
}

/// Where "now" comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The system's real-time clock.
    System,
    /// Always this many seconds since the epoch (`--epoch`).
    Fixed(u64),
}

impl Clock {
    /// The current time by this clock.
    pub fn now(self) -> Timespec {
        match self {
            Clock::Fixed(sec) => Timespec { sec, nsec: 0 },
            Clock::System => {
                let d = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                Timespec {
                    sec: d.as_secs(),
                    nsec: d.subsec_nanos(),
                }
            }
        }
    }
}
