//! The random operations of a run and their strategies: the general mix, and one biased
//! towards mount-cache entries that go while handles stay open.

use super::*;

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Exec(Index),
    Fault {
        process: Index,
        segment: Index,
        page: Index,
        write: bool,
    },
    Fork(Index),
    Exit(Index),
    Reclaim(u8),
    FileChange(Index),
    Remount,
    McOpen {
        file: Index,
        kind: Index,
        append_only: bool,
    },
    McRead {
        handle: Index,
        /// From a page boundary (so reads overlap earlier fills often), or anywhere.
        aligned: bool,
        offset: Index,
        len: Index,
    },
    McWrite {
        handle: Index,
        offset: Index,
        len: Index,
        seed: u8,
    },
    McSetLength {
        handle: Index,
        len: Index,
    },
    McClose(Index),
    McServerChange {
        file: Index,
        /// The new length; `None` keeps the old one (then only `qid.vers` tells).
        len: Option<Index>,
        seed: u8,
    },
    McForget(Index),
    McProgramRead {
        path: Index,
        offset: Index,
        len: Index,
    },
}

/// The operations of [`the_caches_match_the_model`]. Its weights stay as they are: the
/// seeds in `main.proptest-regressions` replay cases drawn with them.
pub(crate) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<Index>().prop_map(Op::Exec),
        8 => (any::<Index>(), any::<Index>(), any::<Index>(), any::<bool>())
            .prop_map(|(process, segment, page, write)| Op::Fault { process, segment, page, write }),
        1 => any::<Index>().prop_map(Op::Fork),
        2 => any::<Index>().prop_map(Op::Exit),
        1 => (1u8..20).prop_map(Op::Reclaim),
        1 => any::<Index>().prop_map(Op::FileChange),
        1 => Just(Op::Remount),
        3 => (any::<Index>(), any::<Index>(), proptest::bool::weighted(0.1))
            .prop_map(|(file, kind, append_only)| Op::McOpen { file, kind, append_only }),
        6 => (any::<Index>(), any::<bool>(), any::<Index>(), any::<Index>())
            .prop_map(|(handle, aligned, offset, len)| Op::McRead { handle, aligned, offset, len }),
        3 => (any::<Index>(), any::<Index>(), any::<Index>(), any::<u8>())
            .prop_map(|(handle, offset, len, seed)| Op::McWrite { handle, offset, len, seed }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(handle, len)| Op::McSetLength { handle, len }),
        2 => any::<Index>().prop_map(Op::McClose),
        2 => (any::<Index>(), proptest::option::of(any::<Index>()), any::<u8>())
            .prop_map(|(file, len, seed)| Op::McServerChange { file, len, seed }),
        1 => any::<Index>().prop_map(Op::McForget),
        2 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(path, offset, len)| Op::McProgramRead { path, offset, len }),
    ]
}

/// Operations biased towards handles whose entry went: entries evicted (a small
/// `max_files`, remounts and program reads making more files), forgotten, and written,
/// truncated and read through the handles opened before. The stale reads after our own
/// writes of the hardening issue hide in such sequences.
pub(crate) fn stale_handle_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => any::<Index>().prop_map(Op::Exec),
        1 => any::<Index>().prop_map(Op::Exit),
        1 => (1u8..20).prop_map(Op::Reclaim),
        2 => Just(Op::Remount),
        6 => (any::<Index>(), any::<Index>(), proptest::bool::weighted(0.15))
            .prop_map(|(file, kind, append_only)| Op::McOpen { file, kind, append_only }),
        6 => (any::<Index>(), any::<bool>(), any::<Index>(), any::<Index>())
            .prop_map(|(handle, aligned, offset, len)| Op::McRead { handle, aligned, offset, len }),
        6 => (any::<Index>(), any::<Index>(), any::<Index>(), any::<u8>())
            .prop_map(|(handle, offset, len, seed)| Op::McWrite { handle, offset, len, seed }),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(handle, len)| Op::McSetLength { handle, len }),
        1 => any::<Index>().prop_map(Op::McClose),
        1 => (any::<Index>(), proptest::option::of(any::<Index>()), any::<u8>())
            .prop_map(|(file, len, seed)| Op::McServerChange { file, len, seed }),
        4 => any::<Index>().prop_map(Op::McForget),
        3 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(path, offset, len)| Op::McProgramRead { path, offset, len }),
    ]
}
