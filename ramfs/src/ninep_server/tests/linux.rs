//! The 9P2000.L dialect: files, directories, links and readdir, setattr, xattrs through
//! fids, and readdir cookies that survive changes to the directory.

use super::*;

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
