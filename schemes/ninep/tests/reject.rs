//! Every rule of what `decode` refuses, what `encode` refuses, and what the errors
//! carry.

mod common;

use common::bytes_of;
use ninep::*;
use DecodeErrorKind::*;

/// `size[4]` set to the real length of `buf`.
fn fix_size(mut buf: Vec<u8>) -> Vec<u8> {
    let n = buf.len() as u32;
    buf[..4].copy_from_slice(&n.to_le_bytes());
    buf
}

/// A message from a raw type, tag and body, with a correct size.
fn raw(t: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 0, t];
    b.extend_from_slice(&tag.to_le_bytes());
    b.extend_from_slice(body);
    fix_size(b)
}

fn err(buf: &[u8], d: Dialect) -> DecodeError {
    decode(buf, d).expect_err("must be rejected")
}

fn kind(buf: &[u8]) -> DecodeErrorKind {
    let e = err(buf, Dialect::L);
    assert_eq!(e.kind, err(buf, Dialect::P2000).kind, "both dialects agree");
    e.kind
}

fn rstat_sample() -> Fcall {
    Fcall {
        tag: 8,
        msg: Msg::Rstat {
            stat: Stat {
                name: "file".into(),
                uid: "glenda".into(),
                ..Stat::default()
            },
        },
    }
}

#[test]
fn too_short() {
    for buf in [&[][..], &[7, 0, 0], &[7, 0, 0, 0], &[7, 0, 0, 0, 100, 1]] {
        let e = err(buf, Dialect::L);
        assert_eq!(e.kind, TooShort, "{buf:?}");
        assert_eq!((e.mtype, e.tag), (None, None));
        assert!(e.is_framing());
    }
    // size below 7 with the header there: the header is still reported.
    let e = err(&[6, 0, 0, 0, 120, 5, 0], Dialect::L);
    assert_eq!((e.kind, e.mtype, e.tag), (TooShort, Some(120), Some(5)));
    assert_eq!(kind(&[0, 0, 0, 0, 121, 5, 0]), TooShort);
}

#[test]
fn size_disagrees_with_buffer() {
    let good = bytes_of(&Fcall {
        tag: 2,
        msg: Msg::Tclunk { fid: 1 },
    });
    let mut longer = good.clone();
    longer.push(0);
    let e = err(&longer, Dialect::P2000);
    assert_eq!(
        e.kind,
        SizeMismatch {
            declared: 11,
            actual: 12
        }
    );
    assert_eq!((e.mtype, e.tag), (Some(mtype::TCLUNK), Some(2)));
    assert!(e.is_framing());
    assert_eq!(
        kind(&good[..10]),
        SizeMismatch {
            declared: 11,
            actual: 10
        }
    );
    let mut huge = good.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(kind(&huge), SizeMismatch { .. }));
}

#[test]
fn field_overruns() {
    // Tclunk with a 3-byte fid.
    assert_eq!(kind(&raw(mtype::TCLUNK, 1, &[1, 2, 3])), Overrun);
    // A string whose length says more than there is.
    let e = err(
        &raw(mtype::TVERSION, NOTAG, &[0, 32, 0, 0, 9, 0, b'9', b'P']),
        Dialect::L,
    );
    assert_eq!((e.kind, e.mtype, e.tag), (Overrun, Some(100), Some(NOTAG)));
    assert!(e.is_framing());
    // Data counts beyond the message: must fail without reserving 4 GiB.
    for t in [mtype::RREAD, mtype::RREADDIR] {
        assert_eq!(kind(&raw(t, 1, &[0xff, 0xff, 0xff, 0xff, 1, 2])), Overrun);
    }
    let mut twrite = vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    twrite.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(kind(&raw(mtype::TWRITE, 1, &twrite)), Overrun);
    // Empty bodies where fields are due.
    for t in [
        mtype::RATTACH,
        mtype::RGETATTR,
        mtype::TLOCK,
        mtype::RSTATFS,
    ] {
        assert_eq!(kind(&raw(t, 1, &[])), Overrun, "{}", mtype_name(t));
    }
}

#[test]
fn walk_counts_are_checked_before_reserving() {
    // 16 names need at least 32 bytes; none follow.
    let twalk = [1, 0, 0, 0, 2, 0, 0, 0, 16, 0];
    assert_eq!(kind(&raw(mtype::TWALK, 1, &twalk)), Overrun);
    // 16 qids need 208 bytes; 200 follow.
    let mut rwalk = vec![16, 0];
    rwalk.extend_from_slice(&[0; 200]);
    assert_eq!(kind(&raw(mtype::RWALK, 1, &rwalk)), Overrun);
}

#[test]
fn too_many_walk_elements() {
    let mut twalk = vec![1, 0, 0, 0, 2, 0, 0, 0, 17, 0];
    twalk.extend_from_slice(&[0; 34]); // 17 empty names
    let e = err(&raw(mtype::TWALK, 4, &twalk), Dialect::P2000);
    assert_eq!(
        (e.kind, e.mtype, e.tag),
        (TooManyWalkElems(17), Some(110), Some(4))
    );
    // Well framed: a server answers the tag instead of hanging up.
    assert!(!e.is_framing());
    assert_eq!(
        kind(&raw(mtype::TWALK, 4, &[1, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff])),
        TooManyWalkElems(0xffff)
    );
    let mut rwalk = vec![17, 0];
    rwalk.extend_from_slice(&[0; 17 * 13]);
    assert_eq!(kind(&raw(mtype::RWALK, 4, &rwalk)), TooManyWalkElems(17));
}

#[test]
fn trailing_bytes() {
    assert_eq!(
        kind(&raw(mtype::TCLUNK, 1, &[1, 0, 0, 0, 0])),
        TrailingBytes
    );
    assert_eq!(kind(&raw(mtype::RCLUNK, 1, &[0])), TrailingBytes);
    let mut rstat = bytes_of(&rstat_sample());
    rstat.push(0);
    let e = err(&fix_size(rstat), Dialect::P2000);
    assert_eq!(
        (e.kind, e.mtype, e.tag),
        (TrailingBytes, Some(125), Some(8))
    );
    // The size is right, so the message is well framed: a server answers its tag.
    assert!(!e.is_framing());
    let e = err(
        &raw(mtype::TCLUNK, 3, &[1, 0, 0, 0, 0xaa, 0xaa]),
        Dialect::P2000,
    );
    assert_eq!((e.kind, e.tag), (TrailingBytes, Some(3)));
    assert!(!e.is_framing());
}

#[test]
fn unknown_types() {
    let known = common::all_mtypes();
    for t in 0..=255u8 {
        if known.contains(&t) {
            continue;
        }
        let e = err(&raw(t, 9, &[0; 16]), Dialect::L);
        assert_eq!((e.kind, e.mtype, e.tag), (UnknownType(t), Some(t), Some(9)));
        assert!(e.is_framing());
    }
    // Terror and Tlerror in particular: they exist as numbers, never on the wire.
    assert_eq!(kind(&raw(mtype::TERROR, 1, &[])), UnknownType(106));
    assert_eq!(kind(&raw(mtype::TLERROR, 1, &[])), UnknownType(6));
}

#[test]
fn nul_in_strings() {
    let e = err(
        &raw(mtype::TVERSION, NOTAG, &[0, 32, 0, 0, 3, 0, b'9', 0, b'P']),
        Dialect::L,
    );
    assert_eq!(
        (e.kind, e.mtype, e.tag),
        (NulInString, Some(100), Some(NOTAG))
    );
    assert!(!e.is_framing());
    // In a walk name, and in the last string of a stat.
    let twalk = [1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 1, 0, 0];
    assert_eq!(kind(&raw(mtype::TWALK, 1, &twalk)), NulInString);
    let mut rstat = bytes_of(&rstat_sample());
    let last = rstat.len() - 1; // the last byte of uid... muid is empty, so of "glenda"
    rstat[last - 4] = 0;
    assert_eq!(kind(&rstat), NulInString);
}

#[test]
fn invalid_utf8() {
    let e = err(&raw(mtype::RERROR, 3, &[2, 0, 0xc3, 0x28]), Dialect::P2000);
    assert_eq!((e.kind, e.mtype, e.tag), (InvalidUtf8, Some(107), Some(3)));
    assert!(!e.is_framing());
    assert_eq!(kind(&raw(mtype::RREADLINK, 3, &[1, 0, 0xff])), InvalidUtf8);
}

/// The tag is unknown only when the header itself is missing; then even an error of a
/// well-framed message is framing, since there is nothing to answer.
#[test]
fn is_framing_needs_a_tag_to_answer() {
    let well_framed = [
        NulInString,
        InvalidUtf8,
        TooManyWalkElems(17),
        BadStatSize,
        TrailingBytes,
    ];
    for kind in well_framed {
        let e = DecodeError {
            kind,
            mtype: Some(126),
            tag: Some(1),
        };
        assert!(!e.is_framing(), "{kind:?}");
        let e = DecodeError {
            kind,
            mtype: None,
            tag: None,
        };
        assert!(e.is_framing(), "{kind:?}");
    }
    let framing = [
        TooShort,
        SizeMismatch {
            declared: 11,
            actual: 12,
        },
        Overrun,
        UnknownType(200),
    ];
    for kind in framing {
        let e = DecodeError {
            kind,
            mtype: Some(126),
            tag: Some(1),
        };
        assert!(e.is_framing(), "{kind:?}");
    }
}

#[test]
fn stat_sizes_must_agree() {
    let good = bytes_of(&rstat_sample());
    assert!(decode(&good, Dialect::P2000).is_ok());
    // Offsets in an Rstat: 7..9 is n, 9..11 the record's own size.
    let set16 = |buf: &mut Vec<u8>, at: usize, v: u16| {
        buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
    };
    let n = u16::from_le_bytes([good[7], good[8]]);
    let inner = u16::from_le_bytes([good[9], good[10]]);
    assert_eq!(n, inner + 2);

    // Inner size larger than n allows.
    let mut b = good.clone();
    set16(&mut b, 9, inner + 1);
    let e = err(&b, Dialect::P2000);
    assert_eq!((e.kind, e.mtype, e.tag), (BadStatSize, Some(125), Some(8)));
    // The message's own size is right: well framed, answered on its tag.
    assert!(!e.is_framing());

    // Inner size smaller than the fields.
    let mut b = good.clone();
    set16(&mut b, 9, inner - 1);
    assert_eq!(kind(&b), BadStatSize);

    // n larger than the stat, with the extra byte inside the message.
    let mut b = good.clone();
    set16(&mut b, 7, n + 1);
    b.push(0);
    assert_eq!(kind(&fix_size(b)), BadStatSize);

    // Both sizes grown together: the record claims a byte its fields do not use.
    let mut b = good.clone();
    set16(&mut b, 7, n + 1);
    set16(&mut b, 9, inner + 1);
    b.push(0);
    assert_eq!(kind(&fix_size(b)), BadStatSize);

    // n running past the message.
    let mut b = good.clone();
    set16(&mut b, 7, n + 1);
    assert_eq!(kind(&b), Overrun);

    // Twstat: the same record after a fid.
    let twstat = bytes_of(&Fcall {
        tag: 8,
        msg: Msg::Twstat {
            fid: 1,
            stat: Stat::dont_touch(),
        },
    });
    let mut b = twstat.clone();
    set16(&mut b, 13, 0);
    assert_eq!(kind(&b), BadStatSize);
    assert!(!err(&b, Dialect::P2000).is_framing());
    // The record's n running past the message is an overrun: framing.
    let mut b = twstat.clone();
    set16(&mut b, 11, u16::from_le_bytes([twstat[11], twstat[12]]) + 1);
    let e = err(&b, Dialect::P2000);
    assert_eq!(e.kind, Overrun);
    assert!(e.is_framing());
}

#[test]
fn stat_decode_alone() {
    let st = Stat {
        name: "x".into(),
        ..Stat::default()
    };
    let mut buf = Vec::new();
    st.encode(&mut buf).unwrap();
    // Fewer bytes than the size says.
    let e = Stat::decode(&buf[..buf.len() - 1]).unwrap_err();
    assert_eq!((e.kind, e.mtype, e.tag), (Overrun, None, None));
    assert_eq!(Stat::decode(&buf[..1]).unwrap_err().kind, Overrun);
    // A size that leaves a byte the fields do not use.
    let mut longer = buf.clone();
    longer[0] += 1;
    longer.push(0);
    assert_eq!(Stat::decode(&longer).unwrap_err().kind, BadStatSize);
    // A size that cuts the last string short.
    let mut shorter = buf.clone();
    shorter[0] -= 1;
    assert_eq!(Stat::decode(&shorter).unwrap_err().kind, BadStatSize);
}

#[test]
fn dirent_decode_alone() {
    let e = Dirent {
        qid: Qid::default(),
        offset: 1,
        ty: dt::REG,
        name: "f".into(),
    };
    let mut buf = Vec::new();
    e.encode(&mut buf).unwrap();
    for cut in 0..buf.len() {
        assert_eq!(Dirent::decode(&buf[..cut]).unwrap_err().kind, Overrun);
    }
    let last = buf.len() - 1;
    buf[last] = 0;
    assert_eq!(Dirent::decode(&buf).unwrap_err().kind, NulInString);
    buf[last] = 0xfe;
    assert_eq!(Dirent::decode(&buf).unwrap_err().kind, InvalidUtf8);
}

/// Encode refuses what the wire cannot carry, and leaves `out` as it was.
#[test]
fn encode_limits() {
    let prefix = vec![1u8, 2, 3];
    let refuse = |fc: Fcall, want: EncodeError| {
        let mut out = prefix.clone();
        assert_eq!(encode(&fc, &mut out), Err(want), "{}", fc.msg.name());
        assert_eq!(out, prefix);
    };
    let long = "x".repeat(65536);
    refuse(
        Fcall {
            tag: 1,
            msg: Msg::Rerror {
                ename: long.clone(),
            },
        },
        EncodeError::StringTooLong,
    );
    refuse(
        Fcall {
            tag: 1,
            msg: Msg::Tlcreate {
                fid: 1,
                name: long.clone(),
                flags: 0,
                mode: 0,
                gid: 0,
            },
        },
        EncodeError::StringTooLong,
    );
    refuse(
        Fcall {
            tag: 1,
            msg: Msg::Twalk {
                fid: 1,
                newfid: 2,
                wnames: vec![String::new(); 17],
            },
        },
        EncodeError::TooManyWalkElems,
    );
    refuse(
        Fcall {
            tag: 1,
            msg: Msg::Rwalk {
                wqids: vec![Qid::default(); 17],
            },
        },
        EncodeError::TooManyWalkElems,
    );
    // Each string fits, the record does not.
    let big = Stat {
        name: "n".repeat(20000),
        uid: "u".repeat(20000),
        gid: "g".repeat(20000),
        muid: "m".repeat(6000),
        ..Stat::default()
    };
    assert!(big.encoded_len() > 65535);
    refuse(
        Fcall {
            tag: 1,
            msg: Msg::Rstat { stat: big.clone() },
        },
        EncodeError::TooLong,
    );
    refuse(
        Fcall {
            tag: 1,
            msg: Msg::Twstat {
                fid: 1,
                stat: big.clone(),
            },
        },
        EncodeError::TooLong,
    );
    let mut out = prefix.clone();
    assert_eq!(big.encode(&mut out), Err(EncodeError::TooLong));
    assert_eq!(out, prefix);

    // The largest stat that fits does encode, and decodes back.
    let max = Stat {
        muid: "m".repeat(65535 - 49 - 60000),
        ..big.clone()
    };
    let max = Stat {
        name: "n".repeat(20000),
        uid: "u".repeat(20000),
        gid: "g".repeat(20000),
        ..max
    };
    assert_eq!(max.encoded_len(), 65535);
    let fc = Fcall {
        tag: 1,
        msg: Msg::Rstat { stat: max },
    };
    let bytes = bytes_of(&fc);
    assert_eq!(decode(&bytes, Dialect::P2000).unwrap(), fc);

    let mut out = prefix.clone();
    let d = Dirent {
        qid: Qid::default(),
        offset: 0,
        ty: 0,
        name: long,
    };
    assert_eq!(d.encode(&mut out), Err(EncodeError::StringTooLong));
    assert_eq!(out, prefix);
}
