//! What a client can make the server keep counts against `--max-memory`: xattr values
//! copied into fids, attach names, record locks and their client ids.

use super::*;

#[test]
fn pending_xattr_values_count_against_memory() {
    let s = server_with_memory(100_000);
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
    assert_eq!(used(&s), 0);
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
