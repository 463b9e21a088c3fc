//! 9P2000.L requests as Linux's client sends them for the POSIX cases pjdfstest checks:
//! group membership only the client knows (trusted after a root attach), set-id bits
//! and the client's own clearing request, ftruncate on a fid opened for writing.

use super::*;
use ninep::setattr;

fn tlcreate(fid: u32, name: &str, flags: u32, mode: u32, gid: u32) -> Msg {
    Msg::Tlcreate {
        fid,
        name: name.into(),
        flags,
        mode,
        gid,
    }
}

fn tsetattr(fid: u32, valid: u32, mode: u32, gid: u32, size: u64) -> Msg {
    Msg::Tsetattr {
        fid,
        attr: SetAttr {
            valid,
            mode,
            gid,
            size,
            ..Default::default()
        },
    }
}

fn tgetattr(fid: u32) -> Msg {
    Msg::Tgetattr {
        fid,
        request_mask: ninep::getattr::ALL,
    }
}

/// The (mode & 0o7777, gid) of an Rgetattr.
fn mode_gid(m: &Msg) -> (u32, u32) {
    match m {
        Msg::Rgetattr { attr } => (attr.mode & 0o7777, attr.gid),
        other => panic!("expected Rgetattr, got {other:?}"),
    }
}

/// Root attaches (fid 0) or not, then uid 65534 (fid 1) creates `f` (fid 2) and
/// changes its group to 65532, a group of its own that only the client knows of; root
/// creates `g` (mode 0640, group 65533) and 65534 opens it for reading.
fn group_member_session(root_first: bool) -> Vec<Fcall> {
    let s = server();
    let mut msgs = vec![tversion("9P2000.L")];
    msgs.push(if root_first {
        tattach(0, "", Some(0))
    } else {
        tattach(0, "", Some(1000))
    });
    msgs.extend([
        tattach(1, "", Some(65534)),
        twalk(1, 2, &[]),
        tlcreate(2, "f", lflags::RDWR, 0o644, 65534),
        tsetattr(2, setattr::GID, 0, 65532, 0),
        tgetattr(2),
        twalk(0, 3, &[]),
        tlcreate(3, "g", lflags::RDWR, 0o640, 65533),
        twalk(1, 4, &["g"]),
        Msg::Tlopen {
            fid: 4,
            flags: lflags::RDONLY,
        },
    ]);
    serve_bytes(&s, &bytes_of(&tagged(msgs))).0
}

#[test]
fn after_a_root_attach_the_clients_group_checks_are_trusted() {
    let r = group_member_session(true);
    assert!(matches!(r[4].msg, Msg::Rlcreate { .. }), "{:?}", r[4]);
    assert_eq!(r[5].msg, Msg::Rsetattr, "chgrp to the owner's own group");
    assert_eq!(mode_gid(&r[6].msg), (0o644, 65532));
    assert!(matches!(r[8].msg, Msg::Rlcreate { .. }), "{:?}", r[8]);
    assert!(
        matches!(r[10].msg, Msg::Rlopen { .. }),
        "a group member reads by the group bits: {:?}",
        r[10]
    );
}

#[test]
fn without_a_root_attach_the_server_judges_groups_itself() {
    let r = group_member_session(false);
    assert_eq!(rlerror(&r[5].msg), errno::EPERM);
    assert_eq!(mode_gid(&r[6].msg), (0o644, 65534));
    assert_eq!(rlerror(&r[10].msg), errno::EACCES);
}

#[test]
fn another_users_write_clears_setid_and_its_clients_clearing_request_is_accepted() {
    let s = server();
    let msgs = vec![
        tversion("9P2000.L"),
        tattach(0, "", Some(1000)),
        tattach(1, "", Some(1001)),
        twalk(0, 2, &[]),
        tlcreate(2, "f", lflags::RDWR, 0o6777, 1000),
        twalk(0, 3, &[]),
        tlcreate(3, "g", lflags::RDWR, 0o6777, 1000),
        // 1001's client asks, before its write to f, to clear the bits (Linux's
        // file_remove_privs, on a walked fid); a change of other bits stays refused.
        twalk(1, 4, &["f"]),
        tsetattr(4, setattr::MODE, 0o775, 0, 0),
        tsetattr(4, setattr::MODE, 0o777, 0, 0),
        tgetattr(4),
        // A client that sends no such request: the write itself clears them.
        twalk(1, 5, &["g"]),
        Msg::Tlopen {
            fid: 5,
            flags: lflags::WRONLY,
        },
        Msg::Twrite {
            fid: 5,
            offset: 0,
            data: b"x".to_vec(),
        },
        tgetattr(5),
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert_eq!(rlerror(&r[8].msg), errno::EPERM);
    assert_eq!(r[9].msg, Msg::Rsetattr);
    assert_eq!(mode_gid(&r[10].msg).0, 0o777);
    assert!(matches!(r[13].msg, Msg::Rwrite { count: 1 }), "{:?}", r[13]);
    assert_eq!(mode_gid(&r[14].msg).0, 0o777);
}

#[test]
fn an_owners_chgrp_clears_setid_of_a_file() {
    let s = server();
    let msgs = vec![
        tversion("9P2000.L"),
        tattach(0, "", Some(1000)),
        twalk(0, 1, &[]),
        tlcreate(1, "f", lflags::RDWR, 0o6555, 1000),
        tsetattr(1, setattr::GID, 0, 1000, 0),
        tgetattr(1),
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert_eq!(r[4].msg, Msg::Rsetattr);
    assert_eq!(mode_gid(&r[5].msg), (0o555, 1000));
}

#[test]
fn ftruncate_on_a_fid_opened_for_writing_is_not_checked_again() {
    let s = server();
    let msgs = vec![
        tversion("9P2000.L"),
        tattach(0, "", Some(1000)),
        twalk(0, 1, &[]),
        // open(O_CREAT|O_RDWR, 0): the open grants writing whatever the mode says.
        tlcreate(1, "z", lflags::RDWR, 0, 1000),
        tsetattr(1, setattr::SIZE, 0, 0, 7),
        // truncate(2) by path comes on a walked fid: the mode decides.
        twalk(0, 2, &["z"]),
        tsetattr(2, setattr::SIZE, 0, 0, 0),
        tgetattr(2),
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert_eq!(r[4].msg, Msg::Rsetattr);
    assert_eq!(rlerror(&r[6].msg), errno::EACCES);
    match &r[7].msg {
        Msg::Rgetattr { attr } => assert_eq!(attr.size, 7),
        other => panic!("{other:?}"),
    }
}

/// The create mask, per dialect: 9P2000 applies Plan 9's rule (open(5)) against the
/// directory's bits, because a Plan 9 client has no umask and sends 0666 or 0777
/// expecting the directory to limit it; 9P2000.L takes the mode as sent, because the
/// client has applied its umask (and default ACL) already and POSIX wants that mode.
#[test]
fn the_create_mask_is_plan9s_in_9p2000_and_the_clients_in_9p2000l() {
    let s = server();
    let p2000 = vec![
        tversion("9P2000"),
        tattach(0, "glenda", None),
        twalk(0, 1, &[]),
        Msg::Tcreate {
            fid: 1,
            name: "d9".into(),
            perm: dm::DIR | 0o750,
            mode: om::READ,
        },
        twalk(0, 2, &["d9"]),
        Msg::Tcreate {
            fid: 2,
            name: "f".into(),
            perm: 0o666,
            mode: om::WRITE,
        },
        Msg::Tstat { fid: 2 },
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(p2000)));
    match &r[6].msg {
        Msg::Rstat { stat } => assert_eq!(stat.mode & 0o777, 0o640),
        other => panic!("{other:?}"),
    }
    let linux = vec![
        tversion("9P2000.L"),
        tattach(0, "", Some(1000)),
        Msg::Tmkdir {
            dfid: 0,
            name: "dl".into(),
            mode: 0o700,
            gid: 1000,
        },
        twalk(0, 1, &["dl"]),
        tlcreate(1, "f", lflags::RDWR, 0o666, 1000),
        tgetattr(1),
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(linux)));
    assert_eq!(mode_gid(&r[5].msg).0, 0o666);
}

/// `--users`: without a root attach the server judges groups, and a users file tells
/// it who is in which.
#[test]
fn a_users_file_lets_the_server_judge_group_members() {
    let fs = Arc::new(Fs::with_users(
        Config {
            memory_limit: 64 << 20,
            owner: "adm".into(),
            clock: Clock::Fixed(1_700_000_000),
        },
        &crate::fs::UsersFile::parse("1001:alice::\n1002:staff:bob:alice\n1003:bob::").unwrap(),
    ));
    let s = Server::new(fs, ServerConfig::default());
    let msgs = vec![
        tversion("9P2000.L"),
        tattach(0, "", Some(1001)),
        tattach(1, "", Some(1003)),
        twalk(0, 2, &[]),
        tlcreate(2, "a", lflags::RDWR, 0o640, 1001),
        tsetattr(2, setattr::GID, 0, 1002, 0),
        twalk(1, 3, &[]),
        tlcreate(3, "b", lflags::RDWR, 0o640, 1003),
        tsetattr(3, setattr::GID, 0, 1002, 0),
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(msgs)));
    assert_eq!(r[5].msg, Msg::Rsetattr, "alice is in staff");
    assert_eq!(rlerror(&r[8].msg), errno::EPERM, "bob is not");
}

/// Linux's client under cache=loose clones an open fid (opening a hard link's other
/// name did `Twalk` from the fid it had just opened, and got EBADF): 9P2000.L allows
/// it, 9P2000 does not (walk(5)), and neither lets an open fid walk onto itself.
#[test]
fn an_open_fid_may_be_cloned_in_9p2000l_only() {
    let s = server();
    let linux = vec![
        tversion("9P2000.L"),
        tattach(0, "", Some(1000)),
        twalk(0, 1, &[]),
        tlcreate(1, "f", lflags::RDWR, 0o644, 1000),
        twalk(1, 2, &[]),
        Msg::Tlopen {
            fid: 2,
            flags: lflags::RDONLY,
        },
        twalk(1, 1, &[]),
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(linux)));
    assert_eq!(r[4].msg, Msg::Rwalk { wqids: vec![] });
    assert!(
        matches!(r[5].msg, Msg::Rlopen { .. }),
        "the clone is unopened"
    );
    assert_eq!(rlerror(&r[6].msg), errno::EBADF);
    let p2000 = vec![
        tversion("9P2000"),
        tattach(0, "glenda", None),
        twalk(0, 1, &[]),
        Msg::Tcreate {
            fid: 1,
            name: "g".into(),
            perm: 0o644,
            mode: om::RDWR,
        },
        twalk(1, 2, &[]),
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&tagged(p2000)));
    assert!(matches!(r[4].msg, Msg::Rerror { .. }), "{:?}", r[4]);
}
