//! The memory limit: a refused write changes nothing; names, symlinks, xattrs, the
//! user and group names clients introduce and record locks are charged.

use super::*;

#[test]
fn memory_limit_refuses_a_write_and_changes_nothing() {
    let limit = 16 * PAGE_SIZE as u64;
    let mut t = tree_with_limit(limit);
    let u = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    let f = file(&mut t, &u, root, "f", 0o644);
    let used = t.statfs().used;
    let free_pages = (limit - used) / PAGE_SIZE as u64;
    let big = vec![1u8; (free_pages as usize + 1) * PAGE_SIZE];
    let v = t.attr(f).unwrap().version;
    assert_eq!(t.write(&u, f, 0, &big, false), Err(Error::NoSpace));
    let a = t.attr(f).unwrap();
    assert_eq!((a.size, a.version, a.blocks), (0, v, 0));
    assert_eq!(t.statfs().used, used);
    // What fits, fits; holes are free.
    t.write(&u, f, 0, &big[..PAGE_SIZE], false).unwrap();
    t.setattr(
        &u,
        f,
        SetAttrs {
            size: Some(1 << 40),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(t.statfs().used, used + PAGE_SIZE as u64);
    let s = t.statfs();
    assert_eq!(s.blocks, 16);
    assert_eq!(s.bfree, (limit - s.used) / PAGE_SIZE as u64);
}

#[test]
fn names_symlinks_and_xattrs_count_against_memory() {
    let mut t = tree_with_limit(NODE_COST + 100);
    // The owner, registered when the tree was made: a new name would cost memory too.
    let u = t.cred_for_name("adm").unwrap();
    let root = t.root();
    let long = "x".repeat(101);
    assert_eq!(
        t.create(&u, root, &long, NewNode::new(NewKind::File, 0o644)),
        Err(Error::NoSpace)
    );
    let f = file(&mut t, &u, root, "f", 0o644);
    assert_eq!(t.statfs().used, NODE_COST + 1);
    assert_eq!(
        t.xattr_set(&u, f, "user.a", vec![0; 99], XattrSetMode::Any),
        Err(Error::NoSpace)
    );
    t.xattr_set(&u, f, "user.a", vec![0; 10], XattrSetMode::Any)
        .unwrap();
    assert_eq!(t.statfs().used, NODE_COST + 1 + 16);
    t.xattr_remove(&u, f, "user.a").unwrap();
    assert_eq!(t.statfs().used, NODE_COST + 1);
    assert_eq!(
        t.create(
            &u,
            root,
            "l",
            NewNode::new(NewKind::Symlink("y".repeat(100)), 0o777)
        ),
        Err(Error::NoSpace)
    );
}

#[test]
fn names_clients_introduce_are_limited_and_charged() {
    let cost = |name: &str| 64 + 2 * name.len() as u64;
    let longest = "n".repeat(USER_NAME_MAX);
    let mut t = tree_with_limit(cost(&longest) + cost("glenda") + 10);
    let too_long = "n".repeat(USER_NAME_MAX + 1);
    assert_eq!(t.cred_for_name(&too_long), Err(Error::NameTooLong));
    assert_eq!(t.user_id(&too_long), Err(Error::NameTooLong));
    assert_eq!(t.statfs().used, 0);
    // Known names are free: the operator's and the well-known ones.
    for known in ["adm", "root", "nobody"] {
        t.cred_for_name(known).unwrap();
    }
    assert_eq!(t.statfs().used, 0);
    let g = t.cred_for_name("glenda").unwrap();
    assert_eq!(t.statfs().used, cost("glenda"));
    assert_eq!(t.cred_for_name("glenda").unwrap(), g, "registered once");
    assert_eq!(t.statfs().used, cost("glenda"));
    t.user_id(&longest).unwrap();
    let full = t.statfs().used;
    assert_eq!(full, cost("glenda") + cost(&longest));
    // Past the limit: refused, and the name takes no number.
    assert_eq!(t.user_id("someone"), Err(Error::NoSpace));
    assert_eq!(
        t.cred_for_name("someone").map(|c| c.uid),
        Err(Error::NoSpace)
    );
    assert_eq!(t.statfs().used, full);
    assert!(t.users.lookup("someone").is_none());
}

#[test]
fn a_refused_wstat_registers_no_group() {
    let mut t = tree();
    let owner = t.cred_for_name("glenda").unwrap();
    let root_cred = t.cred_for_uid(0, Some(0));
    let root = t.root();
    let f = file(&mut t, &owner, root, "f", 0o644);
    file(&mut t, &owner, root, "taken", 0o644);
    let used = t.statfs().used;
    let gid = t.attr(f).unwrap().gid;
    let group = |g: &str| Wstat {
        gid: Some(g.into()),
        ..Wstat::default()
    };
    // Not a member of a group nobody has named yet.
    assert_eq!(t.wstat(&owner, f, group("ghost")), Err(Error::NotInGroup));
    // Allowed group, refused rename.
    let w = Wstat {
        name: Some("taken".into()),
        ..group("staff")
    };
    assert_eq!(t.wstat(&root_cred, f, w), Err(Error::Exists));
    // Too long a group name.
    let long = "g".repeat(USER_NAME_MAX + 1);
    assert_eq!(
        t.wstat(&root_cred, f, group(&long)),
        Err(Error::NameTooLong)
    );
    // Allowed group, truncation refused when applied (a page is lent).
    t.write(&owner, f, 0, &[1; 10], false).unwrap();
    t.lend_pages(f, 0, 1).unwrap();
    let used = t.statfs().used.max(used);
    let w = Wstat {
        length: Some(0),
        ..group("staff")
    };
    assert_eq!(t.wstat(&root_cred, f, w), Err(Error::TextBusy));
    for g in ["ghost", "staff", long.as_str()] {
        assert!(
            t.users.lookup(g).is_none(),
            "{g} registered by a refused wstat"
        );
    }
    assert_eq!(t.statfs().used, used);
    assert_eq!(t.attr(f).unwrap().gid, gid);
    // The next new name gets the number right after glenda's.
    assert_eq!(t.user_id("next").unwrap(), owner.uid + 1);
    // A wstat that succeeds registers and charges its group.
    let used = t.statfs().used;
    t.wstat(&root_cred, f, group("staff")).unwrap();
    let staff = t.users.lookup("staff").expect("registered");
    assert_eq!(t.attr(f).unwrap().gid, staff);
    assert_eq!(t.statfs().used, used + 64 + 2 * 5);
}

#[test]
fn a_wstat_whose_group_does_not_fit_changes_nothing() {
    let mut t = tree_with_limit(NODE_COST + 1 + 64 + 2 * 5 - 1);
    let root_cred = t.cred_for_uid(0, Some(0));
    let root = t.root();
    let f = file(&mut t, &root_cred, root, "f", 0o644);
    let before = t.attr(f).unwrap();
    let w = Wstat {
        gid: Some("staff".into()),
        mode: Some(WstatMode {
            is_dir: false,
            perm: 0o600,
            append: false,
            excl: false,
            tmp: false,
        }),
        ..Wstat::default()
    };
    assert_eq!(t.wstat(&root_cred, f, w), Err(Error::NoSpace));
    assert_eq!(t.attr(f).unwrap(), before);
    assert!(t.users.lookup("staff").is_none());
}

#[test]
fn record_locks_are_charged_and_client_ids_limited() {
    let per_lock = |client_id: &str| 64 + client_id.len() as u64;
    let id = "h".repeat(CLIENT_ID_MAX);
    let mut t = tree_with_limit(NODE_COST + 1 + 3 * per_lock(&id));
    let u = t.cred_for_uid(1000, None);
    let root = t.root();
    let f = file(&mut t, &u, root, "f", 0o644);
    let base = t.statfs().used;
    let owner = |session, client_id: &str| LockOwner {
        session,
        client_id: client_id.into(),
        proc_id: 1,
    };
    let too_long = owner(1, &"h".repeat(CLIENT_ID_MAX + 1));
    assert_eq!(
        t.lock(f, &too_long, Some(LockKind::Read), 0, 0),
        Err(Error::Invalid)
    );
    assert_eq!(
        t.conflicting_lock(f, &too_long, LockKind::Read, 0, 0),
        Err(Error::Invalid)
    );
    let a = owner(1, &id);
    t.lock(f, &a, Some(LockKind::Write), 0, 99)
        .unwrap()
        .unwrap();
    assert_eq!(t.statfs().used, base + per_lock(&id));
    // An unlock in the middle splits one record in two.
    t.lock(f, &a, None, 10, 19).unwrap().unwrap();
    assert_eq!(t.statfs().used, base + 2 * per_lock(&id));
    t.lock(f, &a, Some(LockKind::Read), 200, 200)
        .unwrap()
        .unwrap();
    assert_eq!(t.statfs().used, base + 3 * per_lock(&id));
    // A fourth record does not fit: refused, nothing changes.
    assert_eq!(
        t.lock(f, &a, Some(LockKind::Read), 300, 300),
        Err(Error::NoSpace)
    );
    assert_eq!(t.locks_of(f).unwrap().len(), 3);
    assert_eq!(t.statfs().used, base + 3 * per_lock(&id));
    // Merging back gives memory back.
    t.lock(f, &a, Some(LockKind::Write), 0, 99)
        .unwrap()
        .unwrap();
    assert_eq!(t.statfs().used, base + 2 * per_lock(&id));
    // Another session's locks go with the session.
    let b = owner(2, "b");
    t.lock(f, &b, Some(LockKind::Read), 500, 500)
        .unwrap()
        .unwrap();
    assert_eq!(t.statfs().used, base + 2 * per_lock(&id) + per_lock("b"));
    t.release_session_locks(2);
    assert_eq!(t.statfs().used, base + 2 * per_lock(&id));
    // A removed file's locks go with it.
    t.unlink(&u, root, "f", UnlinkKind::NonDir).unwrap();
    assert_eq!(t.statfs().used, 0);
}
