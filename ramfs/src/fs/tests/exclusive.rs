//! Exclusive use: DMEXCL's one open, record locks by owner and session.

use super::*;

#[test]
fn dmexcl_allows_one_open() {
    let mut t = tree();
    let u = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    let mut spec = NewNode::new(NewKind::File, 0o666);
    spec.excl = true;
    let f = t.create(&u, root, "lock", spec).unwrap();
    t.open(&u, f, RW, true).unwrap();
    assert_eq!(t.open(&u, f, RW, true), Err(Error::ExclusiveInUse));
    t.close(f);
    assert!(t.open(&u, f, RW, true).is_ok());
}

#[test]
fn record_locks_by_owner_and_session() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let root = t.root();
    let f = file(&mut t, &u, root, "f", 0o644);
    let a = LockOwner {
        session: 1,
        client_id: "h".into(),
        proc_id: 10,
    };
    let b = LockOwner {
        session: 2,
        client_id: "h".into(),
        proc_id: 11,
    };
    t.lock(f, &a, Some(LockKind::Write), 0, 99)
        .unwrap()
        .unwrap();
    assert_eq!(
        t.lock(f, &b, Some(LockKind::Read), 50, 50).unwrap(),
        Err(LockRefusal::Conflict)
    );
    let c = t
        .conflicting_lock(f, &b, LockKind::Read, 0, u64::MAX)
        .unwrap();
    assert_eq!(
        c.map(|l| (l.owner.proc_id, l.start, l.end)),
        Some((10, 0, 99))
    );
    t.release_session_locks(1);
    assert!(t.lock(f, &b, Some(LockKind::Write), 0, 0).unwrap().is_ok());
    assert_eq!(t.locks_of(f).unwrap().len(), 1);
}
