//! Per-mount statistics a user can read.

use core::sync::atomic::Ordering;

use crate::sync::StatCounter;

/// Live counters of one mount; updated with relaxed atomics, read by [`Self::snapshot`].
pub(crate) struct Counters {
    sent_by_type: [StatCounter; 256],
    replies: StatCounter,
    bytes_read: StatCounter,
    bytes_written: StatCounter,
    write_bytes_copied: StatCounter,
    write_bytes_lent: StatCounter,
    flushes: StatCounter,
    fids_abandoned: StatCounter,
    clunks_queued: StatCounter,
}

impl Counters {
    pub(crate) fn new() -> Self {
        Counters {
            sent_by_type: [const { StatCounter::new(0) }; 256],
            replies: StatCounter::new(0),
            bytes_read: StatCounter::new(0),
            bytes_written: StatCounter::new(0),
            write_bytes_copied: StatCounter::new(0),
            write_bytes_lent: StatCounter::new(0),
            flushes: StatCounter::new(0),
            fids_abandoned: StatCounter::new(0),
            clunks_queued: StatCounter::new(0),
        }
    }

    pub(crate) fn sent(&self, mtype: u8) {
        self.sent_by_type[usize::from(mtype)].fetch_add(1, Ordering::Relaxed);
        if mtype == ninep::mtype::TFLUSH {
            self.flushes.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn replied(&self) {
        self.replies.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read(&self, n: usize) {
        self.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn written(&self, n: usize) {
        self.bytes_written.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `n` bytes of a write copied into a `Twrite`'s message buffer.
    pub(crate) fn write_copied(&self, n: usize) {
        self.write_bytes_copied
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `n` bytes of a write sent from borrowed slices, after the `Twrite`'s header.
    pub(crate) fn write_lent(&self, n: usize) {
        self.write_bytes_lent.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn fid_abandoned(&self) {
        self.fids_abandoned.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn clunk_queued(&self) {
        self.clunks_queued.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, in_flight: usize) -> MountStats {
        let mut sent_by_type = [0u64; 256];
        for (out, c) in sent_by_type.iter_mut().zip(self.sent_by_type.iter()) {
            *out = c.load(Ordering::Relaxed);
        }
        MountStats {
            sent_by_type,
            replies: self.replies.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            write_bytes_copied: self.write_bytes_copied.load(Ordering::Relaxed),
            write_bytes_lent: self.write_bytes_lent.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            fids_abandoned: self.fids_abandoned.load(Ordering::Relaxed),
            clunks_queued: self.clunks_queued.load(Ordering::Relaxed),
            in_flight,
        }
    }
}

/// A copy of a mount's statistics at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStats {
    /// Messages sent, indexed by wire type number (`Tversion` included).
    pub sent_by_type: [u64; 256],
    /// Replies received and matched to a request.
    pub replies: u64,
    /// Data bytes received in `Rread`s.
    pub bytes_read: u64,
    /// Data bytes the server accepted in `Rwrite`s.
    pub bytes_written: u64,
    /// Data bytes of `Twrite`s copied into the message buffer ([`Chan::write`]): counted
    /// as each message is built, accepted or not.
    ///
    /// [`Chan::write`]: crate::Chan::write
    pub write_bytes_copied: u64,
    /// Data bytes of `Twrite`s sent from the caller's borrowed slices after the header,
    /// with no copy ([`Chan::write_parts`]), counted as each message is built.
    ///
    /// [`Chan::write_parts`]: crate::Chan::write_parts
    pub write_bytes_lent: u64,
    /// `Tflush`es sent.
    pub flushes: u64,
    /// Fids given up after a botched or flushed clunk (or create/walk): never reused.
    pub fids_abandoned: u64,
    /// Clunks queued without waiting for their reply (a dropped channel): sent at
    /// once, or by a later caller while 1024 are already on the wire.
    pub clunks_queued: u64,
    /// Requests sent or about to be sent whose reply has not arrived (flushes included).
    pub in_flight: usize,
}

impl MountStats {
    /// Messages of this type sent.
    pub fn sent(&self, mtype: u8) -> u64 {
        self.sent_by_type[usize::from(mtype)]
    }

    /// `Tread`s sent.
    pub fn treads(&self) -> u64 {
        self.sent(ninep::mtype::TREAD)
    }
}
