//! Tag allocation: one tag per request in flight, never `NOTAG`.

use alloc::vec;
use alloc::vec::Vec;

/// Tags usable by requests: 0 through 0xfffe (0xffff is `NOTAG`).
#[cfg(not(loom))]
const NTAGS: usize = ninep::NOTAG as usize;

/// Under loom, four tags, so that the models can run out of them in a few messages.
#[cfg(loom)]
const NTAGS: usize = 4;
const WORD_BITS: usize = 64;

/// A bitmap of the tags in use.
///
/// A tag stays in use from its request's send until the request is settled: for a
/// flushed request that is after its last `Rflush`, so a tag named by a `Tflush` on
/// the wire is never given to a new request; for a request the server may still
/// answer, until it does.
pub(crate) struct TagPool {
    used: Vec<u64>,
    /// Where the next search starts: tags rotate, so a just-freed tag is the last to
    /// come back (it reads better in traces and hides no reuse bug).
    hint: usize,
    in_use: usize,
}

impl TagPool {
    pub(crate) fn new() -> Self {
        TagPool {
            used: vec![0; NTAGS.div_ceil(WORD_BITS)],
            hint: 0,
            in_use: 0,
        }
    }

    /// A free tag, now in use; `None` when all are in use.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn alloc(&mut self) -> Option<u16> {
        self.alloc_keeping(0)
    }

    /// A free tag, now in use, if that leaves at least `reserve` tags free; `None`
    /// otherwise.
    pub(crate) fn alloc_keeping(&mut self, reserve: usize) -> Option<u16> {
        if self.in_use + reserve >= NTAGS {
            return None;
        }
        for step in 0..NTAGS {
            let t = (self.hint + step) % NTAGS;
            let (w, b) = (t / WORD_BITS, t % WORD_BITS);
            if self.used[w] & (1 << b) == 0 {
                self.used[w] |= 1 << b;
                self.in_use += 1;
                self.hint = (t + 1) % NTAGS;
                // NTAGS ≤ 0xffff, so t fits and is never NOTAG.
                return u16::try_from(t).ok();
            }
        }
        None
    }

    /// Returns a tag to the pool.
    pub(crate) fn free(&mut self, tag: u16) {
        let t = usize::from(tag);
        if t >= NTAGS {
            return;
        }
        let (w, b) = (t / WORD_BITS, t % WORD_BITS);
        if self.used[w] & (1 << b) != 0 {
            self.used[w] &= !(1 << b);
            self.in_use -= 1;
        }
    }

    /// Whether `tag` is in use.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn is_used(&self, tag: u16) -> bool {
        let t = usize::from(tag);
        t < NTAGS && self.used[t / WORD_BITS] & (1 << (t % WORD_BITS)) != 0
    }
}

// The real pool's tests: under loom a pool has four tags.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn all_tags_then_none_and_never_notag() {
        let mut p = TagPool::new();
        let mut seen = vec![false; NTAGS];
        for _ in 0..NTAGS {
            let t = p.alloc().expect("a free tag");
            assert_ne!(t, ninep::NOTAG);
            assert!(!seen[usize::from(t)], "tag {t} handed out twice");
            seen[usize::from(t)] = true;
        }
        assert_eq!(p.alloc(), None);
        p.free(77);
        assert!(!p.is_used(77));
        assert_eq!(p.alloc(), Some(77));
        assert!(p.is_used(77));
    }

    #[test]
    fn a_reserve_is_left_free() {
        let mut p = TagPool::new();
        for _ in 0..NTAGS - 10 {
            p.alloc_keeping(10).expect("a tag above the reserve");
        }
        assert_eq!(p.alloc_keeping(10), None);
        for _ in 0..10 {
            p.alloc_keeping(0).expect("a reserved tag");
        }
        assert_eq!(p.alloc_keeping(0), None);
    }

    #[test]
    fn freed_tag_is_not_reused_at_once() {
        let mut p = TagPool::new();
        let a = p.alloc().unwrap();
        p.free(a);
        let b = p.alloc().unwrap();
        assert_ne!(a, b);
    }
}
