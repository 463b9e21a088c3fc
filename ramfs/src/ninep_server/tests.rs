//! End-to-end tests of the 9P front end in process: byte streams in memory, and
//! connections over socket pairs served by threads, several at once on one tree.

use std::io::{Read, Write};
use std::sync::Arc;

use ninep::{
    decode, dm, encode, errno, lflags, lock, om, qt, Dialect, Dirent, Fcall, LockReq, Msg, SetAttr,
    Stat, AT_REMOVEDIR, NOFID, NOTAG,
};

use super::{ConnectionEnd, FramingError, Server, ServerConfig};
use crate::fs::{Clock, Config, Fs};

fn server_with(max_fids: usize) -> Arc<Server> {
    server_with_config(ServerConfig {
        max_fids,
        trace: false,
        ..ServerConfig::default()
    })
}

fn server_with_config(config: ServerConfig) -> Arc<Server> {
    let fs = Arc::new(Fs::new(Config {
        memory_limit: 64 << 20,
        owner: "adm".into(),
        clock: Clock::Fixed(1_700_000_000),
    }));
    Arc::new(Server::new(fs, config))
}

fn server() -> Arc<Server> {
    server_with(100)
}

fn bytes_of(msgs: &[Fcall]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        encode(m, &mut out).expect("encode request");
    }
    out
}

fn replies_of(mut buf: &[u8]) -> Vec<Fcall> {
    let mut out = Vec::new();
    while let Some(size) = ninep::peek_size(buf) {
        let (m, rest) = buf.split_at(size as usize);
        out.push(decode(m, Dialect::L).expect("decode reply"));
        buf = rest;
    }
    out
}

/// Serves a whole input stream in memory; returns the replies and why it ended.
fn serve_bytes(server: &Server, input: &[u8]) -> (Vec<Fcall>, ConnectionEnd) {
    let mut output = Vec::new();
    let end = server.serve(input, &mut output, "test");
    (replies_of(&output), end)
}

/// Numbers requests with tags 1, 2, … (Tversion gets NOTAG).
fn tagged(msgs: Vec<Msg>) -> Vec<Fcall> {
    msgs.into_iter()
        .enumerate()
        .map(|(i, msg)| Fcall {
            tag: if matches!(msg, Msg::Tversion { .. }) {
                NOTAG
            } else {
                i as u16
            },
            msg,
        })
        .collect()
}

fn tversion(v: &str) -> Msg {
    Msg::Tversion {
        msize: 8192,
        version: v.into(),
    }
}

fn tattach(fid: u32, uname: &str, n_uname: Option<u32>) -> Msg {
    Msg::Tattach {
        fid,
        afid: NOFID,
        uname: uname.into(),
        aname: String::new(),
        n_uname,
    }
}

fn twalk(fid: u32, newfid: u32, names: &[&str]) -> Msg {
    Msg::Twalk {
        fid,
        newfid,
        wnames: names.iter().map(|s| s.to_string()).collect(),
    }
}

fn rerror(m: &Msg) -> &str {
    match m {
        Msg::Rerror { ename } => ename,
        other => panic!("expected Rerror, got {other:?}"),
    }
}

fn rlerror(m: &Msg) -> u32 {
    match m {
        Msg::Rlerror { ecode } => *ecode,
        other => panic!("expected Rlerror, got {other:?}"),
    }
}

/// A client connection over a socket pair, served by its own thread.
#[cfg(unix)]
struct Conn {
    stream: std::os::unix::net::UnixStream,
    dialect: Dialect,
    next_tag: u16,
    thread: Option<std::thread::JoinHandle<ConnectionEnd>>,
}

#[cfg(unix)]
impl Conn {
    fn open(server: &Arc<Server>, version: &str) -> Conn {
        let (mine, theirs) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        mine.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let srv = Arc::clone(server);
        let thread = std::thread::spawn(move || {
            let reader = theirs.try_clone().expect("clone");
            srv.serve(reader, theirs, "pair")
        });
        let dialect = if version == "9P2000.L" {
            Dialect::L
        } else {
            Dialect::P2000
        };
        let mut c = Conn {
            stream: mine,
            dialect,
            next_tag: 0,
            thread: Some(thread),
        };
        let r = c.rpc(tversion(version));
        assert!(matches!(r, Msg::Rversion { .. }), "{r:?}");
        c
    }

    fn send(&mut self, msg: Msg) -> u16 {
        let tag = if matches!(msg, Msg::Tversion { .. }) {
            NOTAG
        } else {
            self.next_tag += 1;
            self.next_tag
        };
        let mut buf = Vec::new();
        encode(&Fcall { tag, msg }, &mut buf).expect("encode");
        self.stream.write_all(&buf).expect("write");
        tag
    }

    fn recv(&mut self) -> Fcall {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).expect("read size");
        let n = u32::from_le_bytes(size) as usize;
        let mut buf = size.to_vec();
        buf.resize(n, 0);
        self.stream.read_exact(&mut buf[4..]).expect("read body");
        decode(&buf, self.dialect).expect("decode reply")
    }

    fn rpc(&mut self, msg: Msg) -> Msg {
        let tag = self.send(msg);
        let r = self.recv();
        assert_eq!(r.tag, tag);
        r.msg
    }

    fn close(mut self) -> ConnectionEnd {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        self.thread
            .take()
            .expect("thread")
            .join()
            .expect("server thread")
    }
}

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
fn plan9_session_create_write_read_stat_remove() {
    let s = server();
    let msgs = vec![
        tversion("9P2000"),
        tattach(0, "glenda", None),
        twalk(0, 1, &[]),
        Msg::Tcreate {
            fid: 1,
            name: "f".into(),
            perm: 0o666,
            mode: om::RDWR,
        },
        Msg::Twrite {
            fid: 1,
            offset: 0,
            data: b"hello".to_vec(),
        },
        Msg::Tread {
            fid: 1,
            offset: 1,
            count: 100,
        },
        Msg::Tstat { fid: 1 },
        Msg::Tremove { fid: 1 },
        twalk(0, 2, &["f"]),
        Msg::Tclunk { fid: 1 },
    ];
    let (r, end) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert!(matches!(end, ConnectionEnd::Eof));
    let Msg::Rcreate { qid, iounit } = &r[3].msg else {
        panic!("{:?}", r[3])
    };
    assert_eq!(qid.ty, qt::FILE);
    assert_eq!(*iounit, 8192 - 24);
    assert_eq!(r[4].msg, Msg::Rwrite { count: 5 });
    assert_eq!(
        r[5].msg,
        Msg::Rread {
            data: b"ello".to_vec()
        }
    );
    let Msg::Rstat { stat } = &r[6].msg else {
        panic!("{:?}", r[6])
    };
    assert_eq!(
        (stat.name.as_str(), stat.uid.as_str(), stat.gid.as_str()),
        ("f", "glenda", "adm")
    );
    assert_eq!(
        (stat.length, stat.mode, stat.mtime),
        (5, 0o666, 1_700_000_000)
    );
    assert_eq!(r[7].msg, Msg::Rremove);
    assert_eq!(rerror(&r[8].msg), "file does not exist");
    assert_eq!(
        rerror(&r[9].msg),
        "fid unknown or out of range",
        "remove clunked"
    );
}

#[test]
fn plan9_directory_reads_return_whole_records_and_continue() {
    let s = server();
    let mut msgs = vec![tversion("9P2000"), tattach(0, "glenda", None)];
    for (i, name) in ["a", "bb", "ccc"].iter().enumerate() {
        msgs.push(twalk(0, 10 + i as u32, &[]));
        msgs.push(Msg::Tcreate {
            fid: 10 + i as u32,
            name: name.to_string(),
            perm: 0o644,
            mode: om::READ,
        });
    }
    msgs.push(twalk(0, 1, &[]));
    msgs.push(Msg::Topen {
        fid: 1,
        mode: om::READ,
    });
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs.clone())));
    let one_record = {
        let Msg::Rcreate { .. } = &r[3].msg else {
            panic!()
        };
        // Every record here has the same length but for the name.
        Stat {
            name: "a".into(),
            uid: "glenda".into(),
            gid: "adm".into(),
            muid: "glenda".into(),
            ..Default::default()
        }
        .encoded_len() as u32
    };
    // Too small for the first record: an error (an empty reply would mean the end).
    msgs.push(Msg::Tread {
        fid: 1,
        offset: 0,
        count: one_record - 1,
    });
    // Room for one and a half: one record.
    msgs.push(Msg::Tread {
        fid: 1,
        offset: 0,
        count: one_record + one_record / 2,
    });
    // Continue at the end of the last read.
    msgs.push(Msg::Tread {
        fid: 1,
        offset: u64::from(one_record),
        count: 8000,
    });
    msgs.push(Msg::Tread {
        fid: 1,
        offset: 7,
        count: 8000,
    });
    let n = msgs.len();
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert_eq!(rerror(&r[n - 4].msg), "Invalid argument");
    let Msg::Rread { data } = &r[n - 3].msg else {
        panic!("{:?}", r[n - 3])
    };
    let (st, used) = Stat::decode(data).expect("a whole record");
    assert_eq!((st.name.as_str(), used), ("a", data.len()));
    let Msg::Rread { data } = &r[n - 2].msg else {
        panic!("{:?}", r[n - 2])
    };
    let (b, used) = Stat::decode(data).unwrap();
    let (c, rest) = Stat::decode(&data[used..]).unwrap();
    assert_eq!((b.name.as_str(), c.name.as_str()), ("bb", "ccc"));
    assert_eq!(used + rest, data.len());
    assert_eq!(rerror(&r[n - 1].msg), "bad offset in directory read");
}

#[test]
fn plan9_permissions_for_other_users() {
    let s = server();
    let msgs = vec![
        tversion("9P2000"),
        tattach(0, "glenda", None),
        twalk(0, 1, &[]),
        Msg::Tcreate {
            fid: 1,
            name: "private".into(),
            perm: dm::DIR | 0o700,
            mode: om::READ,
        },
        twalk(0, 2, &[]),
        Msg::Tcreate {
            fid: 2,
            name: "ro".into(),
            perm: dm::DIR | 0o755,
            mode: om::READ,
        },
        twalk(0, 3, &["ro"]),
        Msg::Tcreate {
            fid: 3,
            name: "f".into(),
            perm: 0o666,
            mode: om::READ,
        },
        tattach(5, "other", None),
        twalk(5, 6, &["private"]),
        twalk(6, 7, &["x"]),
        Msg::Topen {
            fid: 6,
            mode: om::READ,
        },
        twalk(5, 8, &["ro", "f"]),
        Msg::Tremove { fid: 8 },
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert!(matches!(r[9].msg, Msg::Rwalk { ref wqids } if wqids.len() == 1));
    assert_eq!(
        rerror(&r[10].msg),
        "permission denied",
        "no search permission"
    );
    assert_eq!(
        rerror(&r[11].msg),
        "permission denied",
        "no read permission"
    );
    assert!(matches!(r[12].msg, Msg::Rwalk { ref wqids } if wqids.len() == 2));
    assert_eq!(rerror(&r[13].msg), "permission denied", "no write in ro");
}

#[test]
fn wstat_renames_and_rejects_partial_changes() {
    let s = server();
    let msgs = vec![
        tversion("9P2000"),
        tattach(0, "glenda", None),
        twalk(0, 1, &[]),
        Msg::Tcreate {
            fid: 1,
            name: "old".into(),
            perm: 0o644,
            mode: om::WRITE,
        },
        Msg::Twstat {
            fid: 1,
            stat: Stat {
                name: "new".into(),
                mode: dm::DIR | 0o755,
                ..Stat::dont_touch()
            },
        },
        Msg::Twstat {
            fid: 1,
            stat: Stat {
                name: "new".into(),
                ..Stat::dont_touch()
            },
        },
        twalk(0, 2, &["new"]),
        twalk(0, 3, &["old"]),
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert_eq!(
        rerror(&r[4].msg),
        "wstat can't convert between files and directories"
    );
    assert_eq!(r[5].msg, Msg::Rwstat);
    assert!(matches!(r[6].msg, Msg::Rwalk { ref wqids } if wqids.len() == 1));
    assert_eq!(rerror(&r[7].msg), "file does not exist");
}

#[test]
fn fixed_fields_and_directory_modes() {
    let s = server();
    let msgs = vec![
        tversion("9P2000"),
        tattach(0, "glenda", None),
        Msg::Twstat {
            fid: 0,
            stat: Stat {
                qid: ninep::Qid {
                    ty: qt::DIR,
                    version: 0,
                    path: 99,
                },
                ..Stat::dont_touch()
            },
        },
        Msg::Twstat {
            fid: 0,
            stat: Stat {
                muid: "adm".into(),
                dev: 0,
                ..Stat::dont_touch()
            },
        },
        twalk(0, 1, &[]),
        Msg::Topen {
            fid: 1,
            mode: om::READ | om::RCLOSE,
        },
        Msg::Tcreate {
            fid: 1,
            name: "d".into(),
            perm: dm::DIR | 0o755,
            mode: om::READ | om::RCLOSE,
        },
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert_eq!(rerror(&r[2].msg), "wstat prohibited", "qid.path differs");
    assert_eq!(r[3].msg, Msg::Rwstat, "the same values are no change");
    assert_eq!(rerror(&r[5].msg), "illegal mode");
    assert_eq!(rerror(&r[6].msg), "illegal mode");
    let (r, _) = serve_bytes(
        &s,
        &bytes_of(&tagged(vec![
            tversion("9P2000.L"),
            tattach(0, "", Some(0)),
            twalk(0, 1, &[]),
            Msg::Tlcreate {
                fid: 1,
                name: "f".into(),
                flags: lflags::WRONLY,
                mode: 0o644,
                gid: 0,
            },
            twalk(0, 2, &["f"]),
            Msg::Tlopen {
                fid: 2,
                flags: lflags::RDONLY | lflags::DIRECTORY,
            },
        ])),
    );
    assert_eq!(rlerror(&r[5].msg), errno::ENOTDIR);
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
fn orclose_files_go_when_the_connection_drops() {
    let s = server();
    let msgs = vec![
        tversion("9P2000"),
        tattach(0, "glenda", None),
        twalk(0, 1, &[]),
        Msg::Tcreate {
            fid: 1,
            name: "scratch".into(),
            perm: 0o644,
            mode: om::WRITE | om::RCLOSE,
        },
        twalk(0, 2, &[]),
        Msg::Tcreate {
            fid: 2,
            name: "kept".into(),
            perm: 0o644,
            mode: om::WRITE,
        },
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert!(matches!(r[5].msg, Msg::Rcreate { .. }));
    let (r, _) = serve_bytes(
        &s,
        &bytes_of(&tagged(vec![
            tversion("9P2000"),
            tattach(0, "glenda", None),
            twalk(0, 1, &["scratch"]),
            twalk(0, 2, &["kept"]),
        ])),
    );
    assert_eq!(rerror(&r[2].msg), "file does not exist");
    assert!(matches!(r[3].msg, Msg::Rwalk { .. }));
}

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

#[test]
fn flush_is_answered_after_the_flushed_reply() {
    let s = server();
    let msgs = vec![
        Fcall {
            tag: NOTAG,
            msg: tversion("9P2000"),
        },
        Fcall {
            tag: 1,
            msg: tattach(0, "glenda", None),
        },
        Fcall {
            tag: 2,
            msg: Msg::Tstat { fid: 0 },
        },
        Fcall {
            tag: 3,
            msg: Msg::Tflush { oldtag: 2 },
        },
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&msgs));
    let tags: Vec<u16> = r.iter().map(|f| f.tag).collect();
    assert_eq!(tags, vec![NOTAG, 1, 2, 3]);
    assert!(matches!(r[2].msg, Msg::Rstat { .. }));
    assert_eq!(r[3].msg, Msg::Rflush);
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

#[test]
fn linux_session_files_dirs_links_and_readdir() {
    let s = server();
    let root_attach = tattach(0, "", Some(0));
    let msgs = vec![
        tversion("9P2000.L"),
        root_attach,
        Msg::Tmkdir {
            dfid: 0,
            name: "d".into(),
            mode: 0o755,
            gid: 0,
        },
        twalk(0, 1, &["d"]),
        Msg::Tlcreate {
            fid: 1,
            name: "f".into(),
            flags: lflags::RDWR,
            mode: 0o640,
            gid: 50,
        },
        Msg::Twrite {
            fid: 1,
            offset: 0,
            data: b"0123456789".to_vec(),
        },
        Msg::Tsymlink {
            fid: 0,
            name: "l".into(),
            symtgt: "d/f".into(),
            gid: 0,
        },
        twalk(0, 2, &["l"]),
        Msg::Treadlink { fid: 2 },
        twalk(0, 3, &["d"]),
        Msg::Tlink {
            dfid: 3,
            fid: 1,
            name: "hard".into(),
        },
        Msg::Tgetattr {
            fid: 1,
            request_mask: ninep::getattr::BASIC,
        },
        Msg::Trenameat {
            olddirfid: 3,
            oldname: "f".into(),
            newdirfid: 0,
            newname: "g".into(),
        },
        Msg::Tlopen {
            fid: 3,
            flags: lflags::RDONLY | lflags::DIRECTORY,
        },
        Msg::Treaddir {
            fid: 3,
            offset: 0,
            count: 4096,
        },
        Msg::Tunlinkat {
            dirfd: 0,
            name: "d".into(),
            flags: AT_REMOVEDIR,
        },
        Msg::Tstatfs { fid: 0 },
    ];
    let (r, end) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert!(matches!(end, ConnectionEnd::Eof));
    assert!(matches!(r[2].msg, Msg::Rmkdir { qid } if qid.ty == qt::DIR));
    assert!(matches!(r[4].msg, Msg::Rlcreate { .. }), "{:?}", r[4]);
    assert_eq!(r[5].msg, Msg::Rwrite { count: 10 });
    assert_eq!(
        r[8].msg,
        Msg::Rreadlink {
            target: "d/f".into()
        }
    );
    assert_eq!(r[10].msg, Msg::Rlink);
    let Msg::Rgetattr { attr } = &r[11].msg else {
        panic!("{:?}", r[11])
    };
    assert_eq!(
        (attr.mode, attr.uid, attr.gid, attr.nlink, attr.size),
        (0o100640, 0, 50, 2, 10)
    );
    assert_eq!(r[12].msg, Msg::Rrenameat);
    let Msg::Rreaddir { data } = &r[14].msg else {
        panic!("{:?}", r[14])
    };
    let mut names = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let (d, used) = Dirent::decode(rest).expect("dirent");
        names.push((d.name, d.offset));
        rest = &rest[used..];
    }
    let names: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec![".", "..", "hard"]);
    assert_eq!(rlerror(&r[15].msg), errno::ENOTEMPTY);
    let Msg::Rstatfs { statfs } = &r[16].msg else {
        panic!("{:?}", r[16])
    };
    assert_eq!((statfs.bsize, statfs.blocks), (4096, (64 << 20) / 4096));
    assert!(statfs.bfree < statfs.blocks);
}

#[test]
fn linux_setattr_truncates_and_sets_times() {
    let s = server();
    let msgs = vec![
        tversion("9P2000.L"),
        tattach(0, "", Some(1000)),
        twalk(0, 1, &[]),
        Msg::Tlcreate {
            fid: 1,
            name: "f".into(),
            flags: lflags::WRONLY,
            mode: 0o644,
            gid: 1000,
        },
        Msg::Twrite {
            fid: 1,
            offset: 0,
            data: b"hello-9p".to_vec(),
        },
        Msg::Tsetattr {
            fid: 1,
            attr: SetAttr {
                valid: ninep::setattr::SIZE | ninep::setattr::MTIME | ninep::setattr::MTIME_SET,
                size: 5,
                mtime_sec: 981_173_106,
                ..Default::default()
            },
        },
        Msg::Tgetattr {
            fid: 1,
            request_mask: ninep::getattr::ALL,
        },
        Msg::Tsetattr {
            fid: 1,
            attr: SetAttr {
                valid: ninep::setattr::UID,
                uid: 0,
                ..Default::default()
            },
        },
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert_eq!(r[5].msg, Msg::Rsetattr);
    let Msg::Rgetattr { attr } = &r[6].msg else {
        panic!("{:?}", r[6])
    };
    assert_eq!(
        (attr.size, attr.mtime_sec, attr.uid),
        (5, 981_173_106, 1000)
    );
    assert_eq!(rlerror(&r[7].msg), errno::EPERM);
}

#[test]
fn linux_xattrs_through_fids() {
    let s = server();
    let msgs = vec![
        tversion("9P2000.L"),
        tattach(0, "", Some(0)),
        twalk(0, 1, &[]),
        Msg::Txattrcreate {
            fid: 1,
            name: "user.k".into(),
            attr_size: 3,
            flags: 0,
        },
        Msg::Twrite {
            fid: 1,
            offset: 0,
            data: b"val".to_vec(),
        },
        Msg::Tclunk { fid: 1 },
        Msg::Txattrwalk {
            fid: 0,
            newfid: 2,
            name: "user.k".into(),
        },
        Msg::Tread {
            fid: 2,
            offset: 0,
            count: 100,
        },
        Msg::Txattrwalk {
            fid: 0,
            newfid: 3,
            name: String::new(),
        },
        Msg::Txattrwalk {
            fid: 0,
            newfid: 4,
            name: "user.none".into(),
        },
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert_eq!(r[5].msg, Msg::Rclunk);
    assert_eq!(r[6].msg, Msg::Rxattrwalk { size: 3 });
    assert_eq!(
        r[7].msg,
        Msg::Rread {
            data: b"val".to_vec()
        }
    );
    assert_eq!(r[8].msg, Msg::Rxattrwalk { size: 7 });
    assert_eq!(rlerror(&r[9].msg), errno::ENODATA);
}

#[test]
fn pending_xattr_values_count_against_memory() {
    let fs = Arc::new(Fs::new(Config {
        memory_limit: 100_000,
        owner: "adm".into(),
        clock: Clock::Fixed(0),
    }));
    let s = Server::new(Arc::clone(&fs), ServerConfig::default());
    let xattrcreate = |fid| Msg::Txattrcreate {
        fid,
        name: "user.big".into(),
        attr_size: 60_000,
        flags: 0,
    };
    let msgs = vec![
        tversion("9P2000.L"),
        tattach(0, "", Some(0)),
        twalk(0, 1, &[]),
        twalk(0, 2, &[]),
        xattrcreate(1),
        xattrcreate(2),
        Msg::Tclunk { fid: 1 },
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert_eq!(r[4].msg, Msg::Rxattrcreate);
    assert_eq!(rlerror(&r[5].msg), errno::ENOSPC, "two would not fit");
    // Clunked without its data: an error, and the reservation is returned.
    assert_eq!(rlerror(&r[6].msg), errno::ERANGE);
    assert_eq!(fs.lock().statfs().used, 0);
}

/// A server of a fresh tree with a small memory limit, for the accounting tests.
fn server_with_memory(limit: u64) -> Arc<Server> {
    let fs = Arc::new(Fs::new(Config {
        memory_limit: limit,
        owner: "adm".into(),
        clock: Clock::Fixed(0),
    }));
    Arc::new(Server::new(fs, ServerConfig::default()))
}

fn used(s: &Server) -> u64 {
    s.fs().lock().statfs().used
}

/// Each Txattrwalk fid holds its own copy of the value until it is clunked: the copy
/// counts against the memory limit, so fids cannot grow the server past it.
#[cfg(unix)]
#[test]
fn xattr_values_read_through_fids_count_against_memory() {
    const VALUE: usize = 5000;
    let name = "user.v";
    let set = (name.len() + VALUE) as u64;
    let s = server_with_memory(set + 4 * VALUE as u64 + 100);
    let mut c = Conn::open(&s, "9P2000.L");
    assert!(matches!(
        c.rpc(tattach(0, "", Some(0))),
        Msg::Rattach { .. }
    ));
    c.rpc(twalk(0, 1, &[]));
    let r = c.rpc(Msg::Txattrcreate {
        fid: 1,
        name: name.into(),
        attr_size: VALUE as u64,
        flags: 0,
    });
    assert_eq!(r, Msg::Rxattrcreate);
    let r = c.rpc(Msg::Twrite {
        fid: 1,
        offset: 0,
        data: vec![b'v'; VALUE],
    });
    assert_eq!(
        r,
        Msg::Rwrite {
            count: VALUE as u32
        }
    );
    assert_eq!(c.rpc(Msg::Tclunk { fid: 1 }), Msg::Rclunk);
    assert_eq!(used(&s), set);

    let walk = |newfid| Msg::Txattrwalk {
        fid: 0,
        newfid,
        name: name.into(),
    };
    for (i, fid) in (10..14).enumerate() {
        assert_eq!(c.rpc(walk(fid)), Msg::Rxattrwalk { size: VALUE as u64 });
        assert_eq!(used(&s), set + (i as u64 + 1) * VALUE as u64, "fid {fid}");
    }
    // A fifth copy does not fit: refused, and nothing is held for it.
    assert_eq!(rlerror(&c.rpc(walk(14))), errno::ENOSPC);
    assert_eq!(used(&s), set + 4 * VALUE as u64);
    assert_eq!(rlerror(&c.rpc(Msg::Tclunk { fid: 14 })), errno::EBADF);
    // A clunk gives one copy back; the rest go with the session.
    let r = c.rpc(Msg::Tread {
        fid: 10,
        offset: 0,
        count: 10,
    });
    assert_eq!(
        r,
        Msg::Rread {
            data: vec![b'v'; 10]
        }
    );
    assert_eq!(c.rpc(Msg::Tclunk { fid: 10 }), Msg::Rclunk);
    assert_eq!(used(&s), set + 3 * VALUE as u64);
    assert_eq!(c.rpc(walk(10)), Msg::Rxattrwalk { size: VALUE as u64 });
    // The list of names is a copy too.
    let list = Msg::Txattrwalk {
        fid: 0,
        newfid: 20,
        name: String::new(),
    };
    assert_eq!(
        c.rpc(list),
        Msg::Rxattrwalk {
            size: name.len() as u64 + 1
        }
    );
    assert_eq!(used(&s), set + 4 * VALUE as u64 + name.len() as u64 + 1);
    // A new Tversion clunks them all.
    assert!(matches!(c.rpc(tversion("9P2000.L")), Msg::Rversion { .. }));
    assert_eq!(used(&s), set);
    assert!(matches!(
        c.rpc(tattach(0, "", Some(0))),
        Msg::Rattach { .. }
    ));
    assert_eq!(c.rpc(walk(1)), Msg::Rxattrwalk { size: VALUE as u64 });
    assert!(matches!(c.close(), ConnectionEnd::Eof));
    assert_eq!(used(&s), set, "the connection's end gave the copies back");
}

/// Every new attach name is registered for good: names are limited to 255 bytes and
/// each registration counts against the memory limit.
#[test]
fn attach_names_are_limited_and_counted() {
    let cost = |name: &str| 64 + 2 * name.len() as u64;
    let long = "u".repeat(crate::fs::USER_NAME_MAX);
    let too_long = "u".repeat(crate::fs::USER_NAME_MAX + 1);
    let s = server_with_memory(cost(&long) + cost("glenda") + 10);
    let msgs = vec![
        tversion("9P2000"),
        tattach(0, &too_long, None),
        tattach(0, "glenda", None),
        tattach(1, "glenda", None),
        tversion("9P2000.L"),
        tattach(0, &too_long, Some(u32::MAX)),
        tattach(0, &long, Some(u32::MAX)),
        // Full: a new name does not fit; a known one and a number still attach.
        tattach(1, "someone", Some(u32::MAX)),
        tattach(1, "glenda", Some(u32::MAX)),
        tattach(2, "", Some(1000)),
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert_eq!(rerror(&r[1].msg), "File name too long");
    assert!(matches!(r[2].msg, Msg::Rattach { .. }));
    assert!(matches!(r[3].msg, Msg::Rattach { .. }));
    assert_eq!(rlerror(&r[5].msg), errno::ENAMETOOLONG);
    assert!(matches!(r[6].msg, Msg::Rattach { .. }));
    assert_eq!(rlerror(&r[7].msg), errno::ENOSPC);
    assert!(matches!(r[8].msg, Msg::Rattach { .. }));
    assert!(matches!(r[9].msg, Msg::Rattach { .. }));
    // Names stay registered after the connection (files may carry their numbers).
    assert_eq!(used(&s), cost("glenda") + cost(&long));
}

/// Record locks count against the memory limit, and a client id is a host name, not
/// an unbounded buffer.
#[test]
fn record_locks_are_counted_and_client_ids_limited() {
    let long = "c".repeat(crate::fs::CLIENT_ID_MAX);
    let per_lock = 64 + long.len() as u64;
    let file_cost = crate::fs::NODE_COST + 1;
    let room = 100;
    let s = server_with_memory(file_cost + room * per_lock + per_lock / 2);
    let tlock = |start, client_id: String| Msg::Tlock {
        fid: 1,
        lock: LockReq {
            ty: lock::TYPE_RDLCK,
            flags: 0,
            start,
            length: 1,
            proc_id: 1,
            client_id,
        },
    };
    let mut msgs = vec![
        tversion("9P2000.L"),
        tattach(0, "", Some(0)),
        twalk(0, 1, &[]),
        Msg::Tlcreate {
            fid: 1,
            name: "f".into(),
            flags: lflags::RDWR,
            mode: 0o644,
            gid: 0,
        },
        tlock(0, "c".repeat(crate::fs::CLIENT_ID_MAX + 1)),
        Msg::Tgetlock {
            fid: 1,
            lock: ninep::GetLock {
                ty: lock::TYPE_RDLCK,
                start: 0,
                length: 0,
                proc_id: 1,
                client_id: "c".repeat(crate::fs::CLIENT_ID_MAX + 1),
            },
        },
    ];
    // As many one-byte locks (with gaps, so none merge) as the limit allows, and more.
    for i in 0..room + 2 {
        msgs.push(tlock(2 * i, long.clone()));
    }
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert_eq!(rlerror(&r[4].msg), errno::EINVAL);
    assert_eq!(rlerror(&r[5].msg), errno::EINVAL);
    let granted = r[6..]
        .iter()
        .filter(|f| {
            f.msg
                == Msg::Rlock {
                    status: lock::STATUS_SUCCESS,
                }
        })
        .count() as u64;
    assert_eq!(granted, room);
    let refused = &r[6 + room as usize..];
    assert_eq!(refused.len(), 2);
    for f in refused {
        assert_eq!(rlerror(&f.msg), errno::ENOSPC);
    }
    // The connection is gone and its locks with it: only the file is left.
    assert_eq!(used(&s), file_cost);
}

/// With file names and user names at most 255 bytes, a 9P2000 stat record is at most
/// 1069 bytes: a full read at any msize from 1093 up (Linux uses 8192 or more) holds
/// the next directory entry, whatever it is.
#[test]
fn the_largest_stat_record_fits_a_full_read() {
    let user = "u".repeat(crate::fs::USER_NAME_MAX);
    let fs = Fs::new(Config {
        memory_limit: 1 << 20,
        owner: "o".repeat(crate::fs::USER_NAME_MAX),
        clock: Clock::Fixed(0),
    });
    let mut tree = fs.lock();
    let cred = tree.cred_for_name(&user).expect("longest user name");
    let root = tree.root();
    let name = "n".repeat(crate::fs::NAME_MAX);
    let f = tree
        .create(
            &cred,
            root,
            &name,
            crate::fs::NewNode::new(crate::fs::NewKind::File, 0o644),
        )
        .expect("longest file name");
    let stat = super::p2000::stat_of(&tree, &tree.attr(f).unwrap());
    assert_eq!(
        (stat.uid.len(), stat.gid.len(), stat.muid.len()),
        (255, 255, 255)
    );
    // size[2] type[2] dev[4] qid[13] mode[4] atime[4] mtime[4] length[8], 4 strings.
    let largest = 41 + 4 * (2 + 255);
    assert_eq!(stat.encoded_len(), largest);
    assert_eq!(largest, 1069);
    assert!(largest as u32 <= 1093 - ninep::IOHDRSZ);
}

/// A directory read whose count cannot hold the next entry is an error, not the empty
/// reply that means end of directory; the entry is still there for a larger read.
#[cfg(unix)]
#[test]
fn a_directory_read_too_small_for_the_next_entry_is_an_error() {
    let s = server();
    let long = "l".repeat(crate::fs::NAME_MAX);
    let mut c = Conn::open(&s, "9P2000");
    assert!(matches!(
        c.rpc(tattach(0, "glenda", None)),
        Msg::Rattach { .. }
    ));
    for name in ["a", long.as_str()] {
        c.rpc(twalk(0, 1, &[]));
        let r = c.rpc(Msg::Tcreate {
            fid: 1,
            name: name.into(),
            perm: 0o644,
            mode: om::READ,
        });
        assert!(matches!(r, Msg::Rcreate { .. }), "{r:?}");
        assert_eq!(c.rpc(Msg::Tclunk { fid: 1 }), Msg::Rclunk);
    }
    c.rpc(twalk(0, 1, &[]));
    assert!(matches!(
        c.rpc(Msg::Topen {
            fid: 1,
            mode: om::READ
        }),
        Msg::Ropen { .. }
    ));
    let read = |offset, count| Msg::Tread {
        fid: 1,
        offset,
        count,
    };
    let Msg::Rread { data: first } = c.rpc(read(0, 100)) else {
        panic!("read")
    };
    assert_eq!(Stat::decode(&first).unwrap().0.name, "a");
    let at = first.len() as u64;
    assert_eq!(rerror(&c.rpc(read(at, 100))), "Invalid argument");
    // Asking for nothing gets nothing.
    assert_eq!(c.rpc(read(at, 0)), Msg::Rread { data: Vec::new() });
    let Msg::Rread { data: second } = c.rpc(read(at, 2000)) else {
        panic!("read")
    };
    assert_eq!(Stat::decode(&second).unwrap().0.name, long);
    let end = at + second.len() as u64;
    assert_eq!(c.rpc(read(end, 100)), Msg::Rread { data: Vec::new() });
    assert!(matches!(c.close(), ConnectionEnd::Eof));

    let mut c = Conn::open(&s, "9P2000.L");
    assert!(matches!(
        c.rpc(tattach(0, "", Some(0))),
        Msg::Rattach { .. }
    ));
    c.rpc(twalk(0, 1, &[]));
    c.rpc(Msg::Tlopen {
        fid: 1,
        flags: lflags::RDONLY | lflags::DIRECTORY,
    });
    let readdir = |offset, count| Msg::Treaddir {
        fid: 1,
        offset,
        count,
    };
    let all = dirents(&c.rpc(readdir(0, 8000)));
    assert_eq!(all.len(), 4, "{all:?}");
    let after_a = all[2].1;
    assert_eq!(all[2].0, "a");
    assert_eq!(rlerror(&c.rpc(readdir(after_a, 100))), errno::EINVAL);
    assert_eq!(
        c.rpc(readdir(after_a, 0)),
        Msg::Rreaddir { data: Vec::new() }
    );
    let rest = dirents(&c.rpc(readdir(after_a, 300)));
    assert_eq!(rest, vec![(long.clone(), all[3].1)]);
    // The dots too: a count that cannot hold ".".
    assert_eq!(rlerror(&c.rpc(readdir(0, 10))), errno::EINVAL);
    assert!(matches!(c.close(), ConnectionEnd::Eof));
}

#[cfg(unix)]
#[test]
fn two_connections_share_the_tree_and_locks_conflict() {
    let s = server();
    let mut a = Conn::open(&s, "9P2000.L");
    let mut b = Conn::open(&s, "9P2000.L");
    assert!(matches!(
        a.rpc(tattach(0, "", Some(0))),
        Msg::Rattach { .. }
    ));
    assert!(matches!(
        b.rpc(tattach(0, "", Some(0))),
        Msg::Rattach { .. }
    ));
    a.rpc(twalk(0, 1, &[]));
    let r = a.rpc(Msg::Tlcreate {
        fid: 1,
        name: "shared".into(),
        flags: lflags::RDWR,
        mode: 0o644,
        gid: 0,
    });
    assert!(matches!(r, Msg::Rlcreate { .. }), "{r:?}");
    // b sees a's file.
    let r = b.rpc(twalk(0, 1, &["shared"]));
    assert!(
        matches!(r, Msg::Rwalk { ref wqids } if wqids.len() == 1),
        "{r:?}"
    );
    b.rpc(Msg::Tlopen {
        fid: 1,
        flags: lflags::RDWR,
    });
    let req = |ty, flags| LockReq {
        ty,
        flags,
        start: 0,
        length: 0,
        proc_id: 42,
        client_id: "guest".into(),
    };
    let lock_a = a.rpc(Msg::Tlock {
        fid: 1,
        lock: req(lock::TYPE_WRLCK, 0),
    });
    assert_eq!(
        lock_a,
        Msg::Rlock {
            status: lock::STATUS_SUCCESS
        }
    );
    // Same client_id and proc_id, another connection: another owner; never blocks.
    let lock_b = b.rpc(Msg::Tlock {
        fid: 1,
        lock: req(lock::TYPE_WRLCK, lock::FLAGS_BLOCK),
    });
    assert_eq!(
        lock_b,
        Msg::Rlock {
            status: lock::STATUS_BLOCKED
        }
    );
    let get = b.rpc(Msg::Tgetlock {
        fid: 1,
        lock: ninep::GetLock {
            ty: lock::TYPE_RDLCK,
            start: 10,
            length: 1,
            proc_id: 42,
            client_id: "guest".into(),
        },
    });
    let Msg::Rgetlock { lock: held } = get else {
        panic!("{get:?}")
    };
    assert_eq!((held.ty, held.start, held.length), (lock::TYPE_WRLCK, 0, 0));
    // Linux asks with type UNLCK: any other owner's overlapping lock is the answer.
    let get = b.rpc(Msg::Tgetlock {
        fid: 1,
        lock: ninep::GetLock {
            ty: lock::TYPE_UNLCK,
            start: 5,
            length: 0,
            proc_id: 42,
            client_id: "guest".into(),
        },
    });
    assert!(
        matches!(get, Msg::Rgetlock { ref lock } if lock.ty == lock::TYPE_WRLCK),
        "{get:?}"
    );
    // a goes away: its locks go with it.
    assert!(matches!(a.close(), ConnectionEnd::Eof));
    let lock_b = b.rpc(Msg::Tlock {
        fid: 1,
        lock: req(lock::TYPE_WRLCK, 0),
    });
    assert_eq!(
        lock_b,
        Msg::Rlock {
            status: lock::STATUS_SUCCESS
        }
    );
    assert!(matches!(b.close(), ConnectionEnd::Eof));
}

#[cfg(unix)]
#[test]
fn dmexcl_across_connections() {
    let s = server();
    let mut a = Conn::open(&s, "9P2000");
    let mut b = Conn::open(&s, "9P2000");
    a.rpc(tattach(0, "glenda", None));
    b.rpc(tattach(0, "glenda", None));
    a.rpc(twalk(0, 1, &[]));
    let r = a.rpc(Msg::Tcreate {
        fid: 1,
        name: "excl".into(),
        perm: dm::EXCL | 0o666,
        mode: om::RDWR,
    });
    assert!(
        matches!(r, Msg::Rcreate { qid, .. } if qid.ty == qt::EXCL),
        "{r:?}"
    );
    b.rpc(twalk(0, 1, &["excl"]));
    let r = b.rpc(Msg::Topen {
        fid: 1,
        mode: om::READ,
    });
    assert_eq!(rerror(&r), "exclusive use file already open");
    a.rpc(Msg::Tclunk { fid: 1 });
    let r = b.rpc(Msg::Topen {
        fid: 1,
        mode: om::READ,
    });
    assert!(matches!(r, Msg::Ropen { .. }), "{r:?}");
    a.close();
    b.close();
}

#[cfg(unix)]
#[test]
fn pipelined_requests_are_all_answered_in_order() {
    let s = server();
    let mut c = Conn::open(&s, "9P2000");
    c.rpc(tattach(0, "glenda", None));
    let tags: Vec<u16> = (0..200).map(|_| c.send(Msg::Tstat { fid: 0 })).collect();
    for t in tags {
        let r = c.recv();
        assert_eq!(r.tag, t);
        assert!(matches!(r.msg, Msg::Rstat { .. }));
    }
    c.close();
}

/// Decodes an Rreaddir payload into (name, cookie) pairs.
fn dirents(m: &Msg) -> Vec<(String, u64)> {
    let Msg::Rreaddir { data } = m else {
        panic!("expected Rreaddir, got {m:?}")
    };
    let mut out = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let (d, used) = Dirent::decode(rest).expect("dirent");
        out.push((d.name, d.offset));
        rest = &rest[used..];
    }
    out
}

#[cfg(unix)]
#[test]
fn linux_readdir_cookies_survive_changes_to_the_directory() {
    let s = server();
    let mut c = Conn::open(&s, "9P2000.L");
    c.rpc(tattach(0, "", Some(0)));
    for name in ["a", "b", "c", "d"] {
        c.rpc(twalk(0, 1, &[]));
        let r = c.rpc(Msg::Tlcreate {
            fid: 1,
            name: name.into(),
            flags: lflags::WRONLY,
            mode: 0o644,
            gid: 0,
        });
        assert!(matches!(r, Msg::Rlcreate { .. }), "{r:?}");
        c.rpc(Msg::Tclunk { fid: 1 });
    }
    c.rpc(twalk(0, 2, &[]));
    c.rpc(Msg::Tlopen {
        fid: 2,
        flags: lflags::RDONLY | lflags::DIRECTORY,
    });
    // Room for ".", ".." and "a" only (each entry is 24 bytes plus its name).
    let first = dirents(&c.rpc(Msg::Treaddir {
        fid: 2,
        offset: 0,
        count: 25 + 26 + 25,
    }));
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec![".", "..", "a"]);
    let cookie = first.last().expect("an entry").1;
    // Change the directory behind the reader's back.
    for name in ["a", "c"] {
        let r = c.rpc(Msg::Tunlinkat {
            dirfd: 0,
            name: name.into(),
            flags: 0,
        });
        assert_eq!(r, Msg::Runlinkat);
    }
    c.rpc(Msg::Tmkdir {
        dfid: 0,
        name: "e".into(),
        mode: 0o755,
        gid: 0,
    });
    let rest = dirents(&c.rpc(Msg::Treaddir {
        fid: 2,
        offset: cookie,
        count: 4096,
    }));
    let names: Vec<&str> = rest.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["b", "d", "e"]);
    let end = dirents(&c.rpc(Msg::Treaddir {
        fid: 2,
        offset: rest.last().expect("entries").1,
        count: 4096,
    }));
    assert!(end.is_empty(), "end of directory");
    c.close();
}

/// Counts the bytes written to it, in how many writes.
struct CountingWriter {
    bytes: usize,
    largest_write: usize,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len();
        self.largest_write = self.largest_write.max(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// On the connection's thread and on two (a run's parallel path writes its replies
/// itself).
#[test]
fn pipelined_large_reads_are_written_out_as_they_go() {
    for data_threads in [1, 2] {
        pipelined_large_reads_are_written_out_as_they_go_on(data_threads);
    }
}

fn pipelined_large_reads_are_written_out_as_they_go_on(data_threads: usize) {
    let s = server_with_config(ServerConfig {
        max_fids: 100,
        trace: false,
        data_threads,
        ..ServerConfig::default()
    });
    let mut msgs = vec![
        Msg::Tversion {
            msize: 1 << 20,
            version: "9P2000".into(),
        },
        tattach(0, "glenda", None),
        twalk(0, 1, &[]),
        Msg::Tcreate {
            fid: 1,
            name: "big".into(),
            perm: 0o644,
            mode: om::RDWR,
        },
    ];
    let chunk = vec![7u8; (1 << 20) - 24];
    msgs.push(Msg::Twrite {
        fid: 1,
        offset: 0,
        data: chunk.clone(),
    });
    // Sixty reads of almost 1 MiB each, all in one batch of input.
    for _ in 0..60 {
        msgs.push(Msg::Tread {
            fid: 1,
            offset: 0,
            count: 1 << 20,
        });
    }
    let input = bytes_of(&tagged(msgs));
    let mut out = CountingWriter {
        bytes: 0,
        largest_write: 0,
    };
    let end = s.serve(&input[..], &mut out, "test");
    assert!(matches!(end, ConnectionEnd::Eof));
    assert!(out.bytes > 60 * chunk.len(), "every read answered");
    assert!(
        out.largest_write <= super::OUTPUT_FLUSH_AT + (1 << 20),
        "{data_threads} data threads: replies buffered: {}",
        out.largest_write
    );
}

/// Pages a Redox process has mapped (lent by the tree to the scheme front end) are
/// respected by 9P clients of the same tree: truncating past them fails with "file in
/// use" / ETXTBSY and changes nothing, and a removed file stays until they come back.
#[cfg(unix)]
#[test]
fn truncating_pages_mapped_elsewhere_is_refused_in_both_dialects() {
    let s = server();
    let page = crate::fs::PAGE_SIZE;

    let mut p9 = Conn::open(&s, "9P2000");
    assert!(matches!(
        p9.rpc(tattach(0, "glenda", None)),
        Msg::Rattach { .. }
    ));
    assert!(matches!(p9.rpc(twalk(0, 1, &[])), Msg::Rwalk { .. }));
    let Msg::Rcreate { qid, .. } = p9.rpc(Msg::Tcreate {
        fid: 1,
        name: "prog".into(),
        perm: 0o666,
        mode: om::RDWR,
    }) else {
        panic!("create")
    };
    let data = vec![0x90u8; 2 * page];
    // Two writes: one of 8 KiB would not fit the 8 KiB msize.
    for half in data.chunks(page) {
        let offset = if half.as_ptr() == data.as_ptr() {
            0
        } else {
            page as u64
        };
        assert!(matches!(
            p9.rpc(Msg::Twrite {
                fid: 1,
                offset,
                data: half.to_vec(),
            }),
            Msg::Rwrite { .. }
        ));
    }
    let node = qid.path;
    s.fs().lock().lend_pages(node, 1, 1).expect("mapped");

    let length = |len: u64| Msg::Twstat {
        fid: 1,
        stat: Stat {
            length: len,
            ..Stat::dont_touch()
        },
    };
    assert_eq!(rerror(&p9.rpc(length(page as u64))), "file in use");
    assert!(matches!(p9.rpc(twalk(0, 2, &["prog"])), Msg::Rwalk { .. }));
    let trunc = Msg::Topen {
        fid: 2,
        mode: om::WRITE | om::TRUNC,
    };
    assert_eq!(rerror(&p9.rpc(trunc)), "file in use");
    // Keeping the mapped page is fine.
    assert_eq!(p9.rpc(length(page as u64 + 1)), Msg::Rwstat);

    let mut l = Conn::open(&s, "9P2000.L");
    assert!(matches!(
        l.rpc(tattach(0, "", Some(0))),
        Msg::Rattach { .. }
    ));
    assert!(matches!(l.rpc(twalk(0, 1, &["prog"])), Msg::Rwalk { .. }));
    let setsize = Msg::Tsetattr {
        fid: 1,
        attr: SetAttr {
            valid: ninep::setattr::SIZE,
            size: 0,
            ..Default::default()
        },
    };
    assert_eq!(rlerror(&l.rpc(setsize)), errno::ETXTBSY);
    let lopen = Msg::Tlopen {
        fid: 1,
        flags: lflags::WRONLY | lflags::TRUNC,
    };
    assert_eq!(rlerror(&l.rpc(lopen)), errno::ETXTBSY);
    let mut back = Vec::new();
    s.fs()
        .lock()
        .read_with(node, 0, usize::MAX, |b| back.extend_from_slice(b))
        .expect("read");
    assert_eq!(back, data[..page + 1], "nothing truncated the mapped page");

    // Removed by a 9P client and clunked everywhere: the file stays while mapped.
    assert_eq!(p9.rpc(Msg::Tremove { fid: 1 }), Msg::Rremove);
    assert_eq!(p9.rpc(Msg::Tclunk { fid: 2 }), Msg::Rclunk);
    assert_eq!(l.rpc(Msg::Tclunk { fid: 1 }), Msg::Rclunk);
    assert!(s.fs().lock().exists(node));
    assert_eq!(s.fs().lock().return_pages(node, 1, 1), Ok(0));
    assert!(!s.fs().lock().exists(node));
    assert!(matches!(p9.close(), ConnectionEnd::Eof));
    assert!(matches!(l.close(), ConnectionEnd::Eof));
}

mod polling;
mod posix;
mod runs;
