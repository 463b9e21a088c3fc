//! Event counters of the hosted kernel, shared by its parts (relaxed atomics: each is a
//! tally, never a synchronisation point).

use std::sync::atomic::{AtomicU64, Ordering};

/// The live counters.
#[derive(Default, Debug)]
pub(crate) struct Counters {
    pub(crate) chans_made: AtomicU64,
    pub(crate) chans_closed: AtomicU64,
    pub(crate) clunk_failures: AtomicU64,
    pub(crate) closes_queued: AtomicU64,
    pub(crate) image_reads: AtomicU64,
    pub(crate) image_read_bytes: AtomicU64,
    pub(crate) image_read_errors: AtomicU64,
    pub(crate) header_reads: AtomicU64,
    pub(crate) faults: AtomicU64,
    pub(crate) mmu_hits: AtomicU64,
    pub(crate) execs: AtomicU64,
    pub(crate) exec_failures: AtomicU64,
    pub(crate) forks: AtomicU64,
    pub(crate) exits: AtomicU64,
    pub(crate) pipe_waits: AtomicU64,
    pub(crate) user_bytes_copied: AtomicU64,
    pub(crate) user_bytes_lent: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
