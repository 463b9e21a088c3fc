//! Bad input: a framing error closes only its connection, a well-framed message with
//! bad contents is answered with an error and the stream goes on.

use super::*;

#[test]
fn framing_error_closes_only_that_connection() {
    let s = server();
    let mut input = bytes_of(&tagged(vec![
        tversion("9P2000"),
        tattach(0, "glenda", None),
        twalk(0, 1, &[]),
        Msg::Tcreate {
            fid: 1,
            name: "survivor".into(),
            perm: 0o644,
            mode: om::WRITE,
        },
    ]));
    // A size above msize, then a request that must not be answered.
    input.extend_from_slice(&100_000u32.to_le_bytes());
    input.extend_from_slice(&[0; 20]);
    input.extend(bytes_of(&tagged(vec![Msg::Tclunk { fid: 0 }])));
    let (r, end) = serve_bytes(&s, &input);
    assert_eq!(r.len(), 4, "replies before the bad message only");
    assert!(matches!(
        end,
        ConnectionEnd::Framing(FramingError::Size { size: 100_000, .. })
    ));
    // An unknown type number is a framing error too.
    let mut input = bytes_of(&tagged(vec![tversion("9P2000")]));
    input.extend_from_slice(&[7, 0, 0, 0, 99, 1, 0]);
    let (_, end) = serve_bytes(&s, &input);
    assert!(matches!(
        end,
        ConnectionEnd::Framing(FramingError::Decode(_))
    ));
    // The tree is intact for the next connection.
    let (r, _) = serve_bytes(
        &s,
        &bytes_of(&tagged(vec![
            tversion("9P2000"),
            tattach(0, "glenda", None),
            twalk(0, 1, &["survivor"]),
        ])),
    );
    assert!(matches!(r[2].msg, Msg::Rwalk { ref wqids } if wqids.len() == 1));
}

#[test]
fn a_bad_string_is_answered_not_fatal() {
    let s = server();
    let mut input = bytes_of(&tagged(vec![
        tversion("9P2000"),
        tattach(0, "glenda", None),
    ]));
    // Twalk fid 0 newfid 1 with one name holding a NUL byte.
    let mut body = vec![110u8, 9, 0];
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&2u16.to_le_bytes());
    body.extend_from_slice(b"a\0");
    input.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
    input.extend_from_slice(&body);
    input.extend(bytes_of(&[Fcall {
        tag: 10,
        msg: Msg::Tclunk { fid: 0 },
    }]));
    let (r, end) = serve_bytes(&s, &input);
    assert!(matches!(end, ConnectionEnd::Eof), "{end:?}");
    assert_eq!(r[2].tag, 9);
    assert_eq!(rerror(&r[2].msg), "illegal name");
    assert_eq!(r[3].msg, Msg::Rclunk);
}

/// A message whose size is right but whose contents disagree with it (a stat's inner
/// size, bytes after the last field) is well framed: answered on its tag, nothing done,
/// and the connection goes on.
#[test]
fn a_well_framed_message_with_bad_sizes_inside_is_answered() {
    let s = server();
    let raw = |t: u8, tag: u16, body: &[u8]| {
        let mut b = ((body.len() + 7) as u32).to_le_bytes().to_vec();
        b.push(t);
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(body);
        b
    };
    let wstat = bytes_of(&[Fcall {
        tag: 0,
        msg: Msg::Twstat {
            fid: 0,
            stat: Stat {
                mode: dm::DIR | 0o700,
                ..Stat::dont_touch()
            },
        },
    }]);
    // Offsets in a Twstat: 7..11 the fid, 11..13 n, 13..15 the record's own size.
    let wstat_body = &wstat[7..];
    let mut bad_inner = wstat_body.to_vec();
    bad_inner[6] -= 1;
    let mut trailing = wstat_body.to_vec();
    trailing.push(0xaa);

    let mut input = bytes_of(&tagged(vec![tversion("9P2000"), tattach(0, "adm", None)]));
    input.extend(raw(ninep::mtype::TWSTAT, 2, &bad_inner));
    input.extend(raw(ninep::mtype::TWSTAT, 3, &trailing));
    input.extend(raw(ninep::mtype::TCLUNK, 4, &[0, 0, 0, 0, 0xaa, 0xaa]));
    input.extend(bytes_of(&[Fcall {
        tag: 5,
        msg: Msg::Tstat { fid: 0 },
    }]));
    input.extend(bytes_of(&[Fcall {
        tag: 6,
        msg: Msg::Tclunk { fid: 0 },
    }]));
    let (r, end) = serve_bytes(&s, &input);
    assert!(matches!(end, ConnectionEnd::Eof), "{end:?}");
    let tags: Vec<u16> = r.iter().map(|f| f.tag).collect();
    assert_eq!(tags, [NOTAG, 1, 2, 3, 4, 5, 6]);
    assert_eq!(rerror(&r[2].msg), "bogus wstat buffer");
    assert_eq!(rerror(&r[3].msg), "bogus wstat buffer");
    assert_eq!(rerror(&r[4].msg), "Invalid argument");
    // Nothing was done: the mode is unchanged and fid 0 is still there.
    let Msg::Rstat { stat } = &r[5].msg else {
        panic!("{:?}", r[5])
    };
    assert_eq!(stat.mode, dm::DIR | 0o777);
    assert_eq!(r[6].msg, Msg::Rclunk);

    // 9P2000.L: the same answers as errnos.
    let mut input = bytes_of(&tagged(vec![tversion("9P2000.L"), tattach(0, "", Some(0))]));
    input.extend(raw(ninep::mtype::TCLUNK, 2, &[0, 0, 0, 0, 0xaa]));
    input.extend(raw(ninep::mtype::TWSTAT, 3, &bad_inner));
    input.extend(bytes_of(&[Fcall {
        tag: 4,
        msg: Msg::Tclunk { fid: 0 },
    }]));
    let (r, end) = serve_bytes(&s, &input);
    assert!(matches!(end, ConnectionEnd::Eof), "{end:?}");
    assert_eq!(rlerror(&r[2].msg), errno::EINVAL);
    assert_eq!(rlerror(&r[3].msg), errno::EINVAL);
    assert_eq!(r[4].msg, Msg::Rclunk);
}
