//! The 9P2000 dialect: a session's files and directories, stat records and directory
//! reads, Plan 9's permissions, wstat, and files removed on close.

use super::*;

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
    let stat = crate::ninep_server::p2000::stat_of(&tree, &tree.attr(f).unwrap());
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
