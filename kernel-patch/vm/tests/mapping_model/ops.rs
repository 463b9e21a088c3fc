//! The random operations of a run and their strategy: map, unmap, carves, stores and
//! loads, fork and exit, msync, the kernel's write, truncate, refusals, lends and releases.

use super::*;

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Map {
        proc: usize,
        slot: usize,
        shared: bool,
        first: u64,
        pages: u64,
    },
    Unmap {
        proc: usize,
        slot: usize,
    },
    /// Unmaps pages `from..from + pages` of the slot (whatever maps them).
    UnmapPart {
        proc: usize,
        slot: usize,
        from: u64,
        pages: u64,
    },
    /// Makes pages `from..from + pages` of the slot writable or read only.
    Protect {
        proc: usize,
        slot: usize,
        from: u64,
        pages: u64,
        writable: bool,
    },
    Store {
        proc: usize,
        slot: usize,
        page: u64,
        at: usize,
        byte: u8,
    },
    Load {
        proc: usize,
        slot: usize,
        page: u64,
        at: usize,
    },
    Fork {
        proc: usize,
    },
    Exit {
        proc: usize,
    },
    Sync {
        proc: usize,
        slot: usize,
    },
    Write {
        page: u64,
        at: usize,
        byte: u8,
    },
    Truncate {
        pages: u64,
    },
    /// The server starts or stops refusing writes: a refused write-back leaves its pages
    /// dirty for a later one (or, once nobody holds the file, for `write_back_dirty`).
    Refuse {
        on: bool,
    },
    /// Lends slot pages `from..from + pages` of the mapping that maps slot page `from`
    /// (clamped to that mapping; with none there, of the slot's first mapping from its
    /// start).
    Lend {
        proc: usize,
        slot: usize,
        from: u64,
        pages: u64,
    },
    /// Releases live loan `loan` (modulo the loans live), after checking its bytes.
    Release {
        loan: usize,
    },
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    let proc = 0..MAX_PROCESSES;
    let slot = 0..SLOTS;
    prop_oneof![
        2 => (
            proc.clone(),
            slot.clone(),
            any::<bool>(),
            0..FILE_PAGES,
            1..=FILE_PAGES
        )
            .prop_map(|(proc, slot, shared, first, pages)| Op::Map {
                proc,
                slot,
                shared,
                first,
                pages: pages.min(FILE_PAGES - first),
            }),
        1 => (proc.clone(), slot.clone()).prop_map(|(proc, slot)| Op::Unmap { proc, slot }),
        1 => (proc.clone(), slot.clone(), 0..FILE_PAGES, 1..FILE_PAGES).prop_map(
            |(proc, slot, from, pages)| Op::UnmapPart {
                proc,
                slot,
                from,
                pages
            }
        ),
        1 => (
            proc.clone(),
            slot.clone(),
            0..FILE_PAGES,
            1..FILE_PAGES,
            any::<bool>()
        )
            .prop_map(|(proc, slot, from, pages, writable)| Op::Protect {
                proc,
                slot,
                from,
                pages,
                writable
            }),
        4 => (
            proc.clone(),
            slot.clone(),
            0..FILE_PAGES,
            0..OFFSETS.len(),
            any::<u8>()
        )
            .prop_map(|(proc, slot, page, at, byte)| Op::Store {
                proc,
                slot,
                page,
                at: OFFSETS[at],
                byte,
            }),
        4 => (proc.clone(), slot.clone(), 0..FILE_PAGES, 0..OFFSETS.len()).prop_map(
            |(proc, slot, page, at)| Op::Load {
                proc,
                slot,
                page,
                at: OFFSETS[at],
            }
        ),
        2 => proc.clone().prop_map(|proc| Op::Fork { proc }),
        1 => proc.clone().prop_map(|proc| Op::Exit { proc }),
        1 => (proc.clone(), slot.clone()).prop_map(|(proc, slot)| Op::Sync { proc, slot }),
        1 => (0..=FILE_PAGES).prop_map(|pages| Op::Truncate { pages }),
        1 => any::<bool>().prop_map(|on| Op::Refuse { on }),
        4 => (proc, slot, 0..FILE_PAGES, 1..=FILE_PAGES).prop_map(
            |(proc, slot, from, pages)| Op::Lend {
                proc,
                slot,
                from,
                pages
            }
        ),
        1 => (0..MAX_LOANS).prop_map(|loan| Op::Release { loan }),
        1 => (0..FILE_PAGES, 0..OFFSETS.len(), any::<u8>()).prop_map(|(page, at, byte)| Op::Write {
            page,
            at: OFFSETS[at],
            byte,
        }),
    ]
}
