//! Fid allocation, with abandoned fids never reused.

use alloc::vec::Vec;

/// The fids of one mount.
///
/// A fid whose clunk succeeded comes back and may be reused. A fid whose clunk (or
/// remove, or creating walk/attach) was botched or flushed is abandoned: the server
/// may still hold it, so its number is never handed out again (Plan 9's devmnt sets
/// `c->fid = 0` for the same reason).
pub(crate) struct FidPool {
    /// Never handed out yet: `next..NOFID`.
    next: u32,
    /// Cleanly clunked, reusable.
    free: Vec<u32>,
}

impl FidPool {
    pub(crate) fn new() -> Self {
        FidPool {
            next: 0,
            free: Vec::new(),
        }
    }

    /// A fid not in use on the server; `None` when the space is exhausted.
    pub(crate) fn alloc(&mut self) -> Option<u32> {
        if let Some(f) = self.free.pop() {
            return Some(f);
        }
        if self.next == ninep::NOFID {
            return None;
        }
        let f = self.next;
        self.next += 1;
        Some(f)
    }

    /// The server no longer knows `fid`: it may be reused.
    pub(crate) fn release(&mut self, fid: u32) {
        self.free.push(fid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_fids_come_back_abandoned_do_not() {
        let mut p = FidPool::new();
        let a = p.alloc().unwrap();
        let b = p.alloc().unwrap();
        assert_ne!(a, b);
        p.release(a);
        assert_eq!(p.alloc(), Some(a));
        // b is abandoned: simply never released. Nothing hands it out again.
        for _ in 0..1000 {
            assert_ne!(p.alloc(), Some(b));
        }
    }

    #[test]
    fn exhaustion_is_an_answer_not_a_panic() {
        let mut p = FidPool::new();
        p.next = ninep::NOFID - 1;
        assert_eq!(p.alloc(), Some(ninep::NOFID - 1));
        assert_eq!(p.alloc(), None);
    }
}
