//! Tversion, Tauth and Tattach: the dialect and msize a version picks, what a new
//! version resets, each dialect's own message set, and the fid limit of a connection.

use super::*;

#[test]
fn version_picks_the_dialect_and_clips_msize() {
    let s = server();
    let cases = [
        ("9P2000", 8192, "9P2000", 8192),
        ("9P2000.L", 100, "9P2000.L", 256),
        ("9P2000.u", 1 << 30, "9P2000", 1 << 20),
        ("9P", 8192, "9P2000", 8192),
        ("NFS", 8192, "unknown", 8192),
    ];
    for (asked, msize, answered, clipped) in cases {
        let input = bytes_of(&tagged(vec![Msg::Tversion {
            msize,
            version: asked.into(),
        }]));
        let (r, end) = serve_bytes(&s, &input);
        assert!(matches!(end, ConnectionEnd::Eof));
        assert_eq!(
            r[0].msg,
            Msg::Rversion {
                msize: clipped,
                version: answered.into()
            },
            "{asked}"
        );
    }
}

#[test]
fn requests_before_version_are_a_botch() {
    let s = server();
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(vec![tattach(0, "glenda", None)])));
    assert_eq!(rerror(&r[0].msg), "protocol botch");
}

#[test]
fn auth_is_refused_in_both_dialects() {
    let s = server();
    let tauth = |n_uname| Msg::Tauth {
        afid: 1,
        uname: "u".into(),
        aname: String::new(),
        n_uname,
    };
    let (r, _) = serve_bytes(
        &s,
        &bytes_of(&tagged(vec![tversion("9P2000"), tauth(None)])),
    );
    assert_eq!(rerror(&r[1].msg), "Operation not supported");
    let (r, _) = serve_bytes(
        &s,
        &bytes_of(&tagged(vec![tversion("9P2000.L"), tauth(Some(0))])),
    );
    assert_eq!(rlerror(&r[1].msg), errno::ENOENT);
}

#[test]
fn a_new_version_clunks_every_fid() {
    let s = server();
    let msgs = vec![
        tversion("9P2000"),
        tattach(0, "glenda", None),
        twalk(0, 1, &[]),
        Msg::Tcreate {
            fid: 1,
            name: "tmp".into(),
            perm: 0o644,
            mode: om::WRITE | om::RCLOSE,
        },
        tversion("9P2000"),
        Msg::Tclunk { fid: 0 },
        tattach(0, "glenda", None),
        twalk(0, 2, &["tmp"]),
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert_eq!(rerror(&r[5].msg), "fid unknown or out of range");
    assert_eq!(rerror(&r[7].msg), "file does not exist", "ORCLOSE ran");
}

#[test]
fn other_dialects_messages_are_not_implemented() {
    let s = server();
    let (r, _) = serve_bytes(
        &s,
        &bytes_of(&tagged(vec![
            tversion("9P2000"),
            tattach(0, "glenda", None),
            Msg::Tgetattr {
                fid: 0,
                request_mask: 0,
            },
        ])),
    );
    assert_eq!(rerror(&r[2].msg), "Function not implemented");
    let (r, _) = serve_bytes(
        &s,
        &bytes_of(&tagged(vec![
            tversion("9P2000.L"),
            tattach(0, "", Some(0)),
            Msg::Tstat { fid: 0 },
            Msg::Rclunk,
        ])),
    );
    assert_eq!(rlerror(&r[2].msg), errno::ENOSYS);
    assert_eq!(rlerror(&r[3].msg), errno::EPROTO);
}

#[test]
fn fid_limit_per_connection() {
    let s = server_with(2);
    let (r, _) = serve_bytes(
        &s,
        &bytes_of(&tagged(vec![
            tversion("9P2000"),
            tattach(0, "glenda", None),
            twalk(0, 1, &[]),
            twalk(0, 2, &[]),
        ])),
    );
    assert!(matches!(r[2].msg, Msg::Rwalk { .. }));
    assert_eq!(rerror(&r[3].msg), "Too many open files");
}
