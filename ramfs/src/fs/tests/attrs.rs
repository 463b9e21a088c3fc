//! Changing attributes: wstat and setattr all or nothing, wstat's renames and groups,
//! setattr's times, xattr create and replace flags.

use super::*;

#[test]
fn wstat_is_all_or_nothing() {
    let mut t = tree();
    let owner = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    let f = file(&mut t, &owner, root, "f", 0o644);
    file(&mut t, &owner, root, "taken", 0o644);
    let before = t.attr(f).unwrap();
    // A good mode with a bad name: nothing changes.
    let w = Wstat {
        mode: Some(WstatMode {
            is_dir: false,
            perm: 0o600,
            append: true,
            excl: false,
            tmp: false,
        }),
        length: Some(0),
        name: Some("taken".into()),
        ..Default::default()
    };
    assert_eq!(t.wstat(&owner, f, w), Err(Error::Exists));
    assert_eq!(t.attr(f).unwrap(), before);
    // A file cannot become a directory.
    let w = Wstat {
        mode: Some(WstatMode {
            is_dir: true,
            perm: 0o755,
            append: false,
            excl: false,
            tmp: false,
        }),
        ..Default::default()
    };
    assert_eq!(t.wstat(&owner, f, w), Err(Error::WstatFileDir));
    // Only the owner changes the mode; the owner cannot be changed.
    let other = t.cred_for_name("other").unwrap();
    let w = Wstat {
        mtime: Some(5),
        ..Default::default()
    };
    assert_eq!(t.wstat(&other, f, w), Err(Error::NotOwner));
    let w = Wstat {
        uid: Some("other".into()),
        ..Default::default()
    };
    assert_eq!(t.wstat(&owner, f, w), Err(Error::WstatProhibited));
    // All don't-touch: succeeds and changes nothing.
    assert_eq!(t.wstat(&owner, f, Wstat::default()), Ok(()));
    assert_eq!(t.attr(f).unwrap(), before);
}

#[test]
fn wstat_renames_within_the_directory_and_sets_everything_at_once() {
    let mut t = tree();
    let owner = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    let f = file(&mut t, &owner, root, "f", 0o644);
    t.write(&owner, f, 0, b"hello world", false).unwrap();
    let w = Wstat {
        mode: Some(WstatMode {
            is_dir: false,
            perm: 0o600,
            append: true,
            excl: false,
            tmp: false,
        }),
        mtime: Some(1234),
        length: Some(5),
        name: Some("g".into()),
        ..Default::default()
    };
    t.wstat(&owner, f, w).unwrap();
    let a = t.attr(f).unwrap();
    assert_eq!(
        (a.perm, a.append, a.size, a.mtime.sec),
        (0o600, true, 5, 1234)
    );
    assert_eq!(a.name, "g");
    assert_eq!(names(&t, root), vec!["g"]);
    assert_eq!(t.lookup(&owner, root, "g"), Ok(f));
}

#[test]
fn wstat_group_must_be_the_callers() {
    let mut t = tree();
    let owner = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    let f = file(&mut t, &owner, root, "f", 0o644);
    let w = Wstat {
        gid: Some("sys".into()),
        ..Default::default()
    };
    assert_eq!(t.wstat(&owner, f, w), Err(Error::NotInGroup));
    let w = Wstat {
        gid: Some("glenda".into()),
        ..Default::default()
    };
    t.wstat(&owner, f, w).unwrap();
    assert_eq!(t.user_name(t.attr(f).unwrap().gid), "glenda");
}

#[test]
fn setattr_is_all_or_nothing() {
    let mut t = tree();
    let user = t.cred_for_uid(1000, Some(1000));
    let root = t.root();
    let f = file(&mut t, &user, root, "f", 0o644);
    t.write(&user, f, 0, b"abcdef", false).unwrap();
    let before = t.attr(f).unwrap();
    let set = SetAttrs {
        perm: Some(0o600),
        size: Some(2),
        uid: Some(0),
        ..Default::default()
    };
    assert_eq!(t.setattr(&user, f, set), Err(Error::NotPermitted));
    assert_eq!(t.attr(f).unwrap(), before);
    let root_cred = t.cred_for_uid(0, Some(0));
    t.setattr(&root_cred, f, set).unwrap();
    let a = t.attr(f).unwrap();
    assert_eq!((a.perm, a.size, a.uid), (0o600, 2, 0));
    assert_eq!(
        t.setattr(
            &root_cred,
            root,
            SetAttrs {
                size: Some(0),
                ..Default::default()
            }
        ),
        Err(Error::IsDir)
    );
}

#[test]
fn setattr_times() {
    let mut t = tree();
    let user = t.cred_for_uid(1000, None);
    let other = t.cred_for_uid(1001, None);
    let root = t.root();
    let f = file(&mut t, &user, root, "f", 0o666);
    let at = TimeSet::At(Timespec {
        sec: 981_173_106,
        nsec: 5,
    });
    let set = SetAttrs {
        mtime: Some(at),
        ..Default::default()
    };
    assert_eq!(t.setattr(&other, f, set), Err(Error::NotPermitted));
    let now = SetAttrs {
        mtime: Some(TimeSet::Now),
        ..Default::default()
    };
    assert!(t.setattr(&other, f, now).is_ok(), "writer may touch to now");
    t.setattr(&user, f, set).unwrap();
    assert_eq!(t.attr(f).unwrap().mtime.sec, 981_173_106);
}

#[test]
fn xattr_create_and_replace_flags() {
    let mut t = tree();
    let u = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    let f = file(&mut t, &u, root, "f", 0o644);
    assert_eq!(
        t.xattr_set(&u, f, "user.k", b"v".to_vec(), XattrSetMode::Replace),
        Err(Error::NoData)
    );
    t.xattr_set(&u, f, "user.k", b"v".to_vec(), XattrSetMode::Create)
        .unwrap();
    assert_eq!(
        t.xattr_set(&u, f, "user.k", b"w".to_vec(), XattrSetMode::Create),
        Err(Error::Exists)
    );
    t.xattr_set(&u, f, "user.j", b"".to_vec(), XattrSetMode::Any)
        .unwrap();
    assert_eq!(t.xattr_get(f, "user.k").unwrap(), b"v");
    assert_eq!(t.xattr_list(f).unwrap(), b"user.j\0user.k\0");
    assert_eq!(t.xattr_get(f, "user.none"), Err(Error::NoData));
}
