//! Encode → decode → equal, for every message of both dialects and for the stat and
//! readdir-entry helpers.

mod common;

use std::collections::BTreeSet;

use common::*;
use ninep::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn every_message_round_trips((dialect, fc) in fcall()) {
        let mut out = vec![0xAA, 0xBB]; // encode appends; what was there stays
        encode(&fc, &mut out).unwrap();
        prop_assert_eq!(&out[..2], &[0xAA, 0xBB]);
        let bytes = &out[2..];
        prop_assert_eq!(bytes.len(), encoded_len(&fc));
        prop_assert_eq!(peek_size(bytes), Some(bytes.len() as u32));
        prop_assert_eq!(bytes[4], fc.msg.mtype());
        prop_assert_eq!(decode(bytes, dialect).unwrap(), fc);
    }

    #[test]
    fn stat_round_trips(st in stat()) {
        let mut out = Vec::new();
        st.encode(&mut out).unwrap();
        prop_assert_eq!(out.len(), st.encoded_len());
        // The size field counts what follows it.
        prop_assert_eq!(u16::from_le_bytes([out[0], out[1]]) as usize, out.len() - 2);
        prop_assert_eq!(Stat::decode(&out).unwrap(), (st, out.len()));
    }

    /// A 9P2000 directory read returns whole stat records back to back.
    #[test]
    fn stats_back_to_back(stats in vec(stat(), 0..6), tail in vec(any::<u8>(), 0..3)) {
        let mut buf = Vec::new();
        for st in &stats {
            st.encode(&mut buf).unwrap();
        }
        let records_end = buf.len();
        buf.extend_from_slice(&tail);
        let mut at = 0;
        let mut got = Vec::new();
        while at < records_end {
            let (st, used) = Stat::decode(&buf[at..]).unwrap();
            got.push(st);
            at += used;
        }
        prop_assert_eq!(at, records_end);
        prop_assert_eq!(got, stats);
    }

    #[test]
    fn dirent_round_trips(entries in vec(dirent(), 0..8)) {
        let mut buf = Vec::new();
        for e in &entries {
            let before = buf.len();
            e.encode(&mut buf).unwrap();
            prop_assert_eq!(buf.len() - before, e.encoded_len());
        }
        let mut at = 0;
        let mut got = Vec::new();
        while at < buf.len() {
            let (e, used) = Dirent::decode(&buf[at..]).unwrap();
            prop_assert_eq!(used, e.encoded_len());
            got.push(e);
            at += used;
        }
        prop_assert_eq!(got, entries);
    }
}

/// The strategy produces every message type of both dialects, so the round trip above
/// covers them all.
#[test]
fn strategy_covers_every_message_type() {
    let mut runner = TestRunner::deterministic();
    let want: BTreeSet<u8> = all_mtypes().into_iter().collect();
    for dialect in [Dialect::P2000, Dialect::L] {
        let strategy = msg(dialect);
        let mut seen = BTreeSet::new();
        for _ in 0..20_000 {
            seen.insert(strategy.new_tree(&mut runner).unwrap().current().mtype());
            if seen == want {
                break;
            }
        }
        assert_eq!(seen, want, "{dialect:?}");
    }
}

/// `mtype_name` agrees with the numbers and with `Msg::name`.
#[test]
fn names() {
    assert_eq!(mtype_name(mtype::TVERSION), "Tversion");
    assert_eq!(mtype_name(mtype::RLERROR), "Rlerror");
    assert_eq!(mtype_name(mtype::TGETATTR), "Tgetattr");
    assert_eq!(mtype_name(mtype::RWSTAT), "Rwstat");
    assert_eq!(mtype_name(0), "T?");
    assert_eq!(mtype_name(255), "R?");
    for t in all_mtypes() {
        let name = mtype_name(t);
        let first = if t % 2 == 0 { 'T' } else { 'R' };
        assert!(name.starts_with(first) && name.len() > 2, "{t}: {name}");
    }
    let fc = Fcall {
        tag: 1,
        msg: Msg::Rreaddir { data: vec![] },
    };
    assert_eq!(fc.msg.name(), "Rreaddir");
    assert!(!fc.msg.is_request());
}

/// Tauth and Tattach carry `n_uname` in 9P2000.L only.
#[test]
fn n_uname_follows_the_dialect() {
    let l = Fcall {
        tag: 3,
        msg: Msg::Tattach {
            fid: 1,
            afid: NOFID,
            uname: "glenda".into(),
            aname: "".into(),
            n_uname: Some(1000),
        },
    };
    let bytes = bytes_of(&l);
    assert_eq!(decode(&bytes, Dialect::L).unwrap(), l);
    // The same bytes in 9P2000 leave the uid over.
    assert_eq!(
        decode(&bytes, Dialect::P2000).unwrap_err().kind,
        DecodeErrorKind::TrailingBytes
    );
    let plan9 = Fcall {
        tag: 3,
        msg: Msg::Tauth {
            afid: 2,
            uname: "glenda".into(),
            aname: "main".into(),
            n_uname: None,
        },
    };
    let bytes = bytes_of(&plan9);
    assert_eq!(bytes.len(), 7 + 4 + 8 + 6);
    assert_eq!(decode(&bytes, Dialect::P2000).unwrap(), plan9);
    assert_eq!(
        decode(&bytes, Dialect::L).unwrap_err().kind,
        DecodeErrorKind::Overrun
    );
}

/// Messages of the other dialect's numbers still decode.
#[test]
fn other_dialects_messages_decode() {
    let lopen = Fcall {
        tag: 9,
        msg: Msg::Tlopen { fid: 4, flags: 0 },
    };
    assert_eq!(decode(&bytes_of(&lopen), Dialect::P2000).unwrap(), lopen);
    let rerror = Fcall {
        tag: 9,
        msg: Msg::Rerror {
            ename: "file does not exist".into(),
        },
    };
    assert_eq!(decode(&bytes_of(&rerror), Dialect::L).unwrap(), rerror);
}
