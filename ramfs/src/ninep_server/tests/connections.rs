//! Several connections on one tree: shared files and conflicting locks, DMEXCL, and
//! pages mapped by another front end that a 9P truncate must not take away.

use super::*;

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
