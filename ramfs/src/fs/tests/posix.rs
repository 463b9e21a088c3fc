//! POSIX rules of the tree that Linux's client relies on: set-id bits cleared by others'
//! writes, truncations and chowns; the clearing request a writer's client sends; a size
//! change through a descriptor opened for writing; callers whose client checked.

use super::*;

fn posix(t: &mut Tree, uid: u32) -> Cred {
    t.cred_for_uid(uid, None)
}

fn client_checked(t: &mut Tree, uid: u32) -> Cred {
    Cred {
        style: PermStyle::ClientChecked,
        ..t.cred_for_uid(uid, None)
    }
}

fn perm(t: &Tree, id: NodeId) -> u32 {
    t.attr(id).unwrap().perm
}

fn set_perm(p: u32) -> SetAttrs {
    SetAttrs {
        perm: Some(p),
        ..Default::default()
    }
}

#[test]
fn a_write_by_anyone_but_root_clears_setid_bits() {
    let mut t = tree();
    let root = t.root();
    let (su, user) = (posix(&mut t, 0), posix(&mut t, 65534));
    let f = file(&mut t, &su, root, "f", 0o6777);
    t.write(&user, f, 0, b"x", false).unwrap();
    assert_eq!(perm(&t, f), 0o777);
    // S_ISGID without group execute is a locking mark, not a set-id bit.
    let g = file(&mut t, &su, root, "g", 0o6767);
    t.write(&user, g, 0, b"x", false).unwrap();
    assert_eq!(perm(&t, g), 0o2767);
    let h = file(&mut t, &su, root, "h", 0o6777);
    t.write(&su, h, 0, b"x", false).unwrap();
    assert_eq!(perm(&t, h), 0o6777, "root's writes keep them");
    let checked = client_checked(&mut t, 65534);
    t.write(&checked, h, 0, b"x", false).unwrap();
    assert_eq!(perm(&t, h), 0o777, "a client-checked caller is not root");
}

#[test]
fn a_writer_may_clear_setid_bits_and_nothing_else() {
    let mut t = tree();
    let root = t.root();
    let (owner, writer) = (posix(&mut t, 1000), posix(&mut t, 1001));
    let f = file(&mut t, &owner, root, "f", 0o6777);
    assert_eq!(
        t.setattr(&writer, f, set_perm(0o775)),
        Err(Error::NotPermitted)
    );
    t.setattr(&writer, f, set_perm(0o2777)).unwrap();
    assert_eq!(perm(&t, f), 0o2777);
    assert_eq!(
        t.setattr(&writer, f, set_perm(0o6777)),
        Err(Error::NotPermitted),
        "setting is the owner's"
    );
    // Someone who may not write the file may not clear them either.
    let g = file(&mut t, &owner, root, "g", 0o4755);
    assert_eq!(
        t.setattr(&writer, g, set_perm(0o755)),
        Err(Error::NotPermitted)
    );
    assert_eq!(perm(&t, g), 0o4755);
}

#[test]
fn chown_and_truncate_by_anyone_but_root_clear_setid_bits_of_files() {
    let mut t = tree();
    let root = t.root();
    let (su, owner) = (posix(&mut t, 0), posix(&mut t, 1000));
    let f = file(&mut t, &owner, root, "f", 0o6555);
    let d = mkdir(&mut t, &owner, root, "d", 0o6755);
    let chgrp = SetAttrs {
        gid: Some(1000),
        ..Default::default()
    };
    t.setattr(&owner, f, chgrp).unwrap();
    assert_eq!(perm(&t, f), 0o555);
    t.setattr(&owner, d, chgrp).unwrap();
    assert_eq!(perm(&t, d), 0o6755, "a directory keeps them, as in Linux");
    let g = file(&mut t, &owner, root, "g", 0o6555);
    t.setattr(&su, g, chgrp).unwrap();
    assert_eq!(perm(&t, g), 0o6555, "root's chown keeps them");
    let h = file(&mut t, &owner, root, "h", 0o6777);
    let size = SetAttrs {
        size: Some(3),
        ..Default::default()
    };
    t.setattr(&owner, h, size).unwrap();
    assert_eq!(perm(&t, h), 0o777);
}

#[test]
fn a_size_change_through_a_descriptor_opened_for_writing_needs_no_write_permission() {
    let mut t = tree();
    let root = t.root();
    let user = posix(&mut t, 1000);
    let f = file(&mut t, &user, root, "f", 0);
    let mut set = SetAttrs {
        size: Some(10),
        ..Default::default()
    };
    assert_eq!(t.setattr(&user, f, set), Err(Error::PermissionDenied));
    set.opened_for_write = true;
    t.setattr(&user, f, set).unwrap();
    assert_eq!(t.attr(f).unwrap().size, 10);
}

#[test]
fn a_client_checked_caller_passes_group_and_owner_checks() {
    let mut t = tree();
    let root = t.root();
    let su = posix(&mut t, 0);
    let d = mkdir(&mut t, &su, root, "d", 0o770);
    t.setattr(
        &su,
        d,
        SetAttrs {
            gid: Some(65533),
            ..Default::default()
        },
    )
    .unwrap();
    let judged = posix(&mut t, 65534);
    let checked = client_checked(&mut t, 65534);
    // Its client found it in group 65533 (a supplementary group the tree cannot see).
    assert_eq!(
        t.create(&judged, d, "f", NewNode::new(NewKind::File, 0o644)),
        Err(Error::PermissionDenied)
    );
    let f = file(&mut t, &checked, d, "f", 0o644);
    let chgrp = SetAttrs {
        gid: Some(65532),
        ..Default::default()
    };
    assert_eq!(t.setattr(&judged, f, chgrp), Err(Error::NotPermitted));
    t.setattr(&checked, f, chgrp).unwrap();
    assert_eq!(t.attr(f).unwrap().gid, 65532);
    // Still not root: set-id bits go on its chown.
    t.setattr(&checked, f, set_perm(0o6755)).unwrap();
    t.setattr(&checked, f, chgrp).unwrap();
    assert_eq!(perm(&t, f), 0o755);
}

const USERS: &str = "1001:alice::\n1002:staff::alice\n1003:bob::\n100:glenda::\n101:sys::glenda\n";

fn tree_with_users() -> Tree {
    Tree::with_users(
        Config {
            memory_limit: 64 << 20,
            owner: "adm".into(),
            clock: Clock::Fixed(1_000_000),
        },
        &UsersFile::parse(USERS).unwrap(),
    )
}

#[test]
fn a_users_file_makes_group_members_posix() {
    let mut t = tree_with_users();
    let root = t.root();
    let su = posix(&mut t, 0);
    let (alice, bob) = (posix(&mut t, 1001), posix(&mut t, 1003));
    let g = file(&mut t, &su, root, "g", 0o640);
    let to_staff = SetAttrs {
        gid: Some(1002),
        ..Default::default()
    };
    t.setattr(&su, g, to_staff).unwrap();
    assert_eq!(t.check_access(&alice, g, access::READ), Ok(true));
    assert_eq!(t.check_access(&bob, g, access::READ), Ok(false));
    let a = file(&mut t, &alice, root, "a", 0o644);
    t.setattr(&alice, a, to_staff).unwrap();
    assert_eq!(t.attr(a).unwrap().gid, 1002);
    let b = file(&mut t, &bob, root, "b", 0o644);
    assert_eq!(t.setattr(&bob, b, to_staff), Err(Error::NotPermitted));
}

#[test]
fn a_users_file_makes_group_members_plan9() {
    let mut t = tree_with_users();
    let root = t.root();
    let glenda = t.cred_for_name("glenda").unwrap();
    assert_eq!(glenda.uid, 100, "the file's number");
    let other = t.cred_for_name("other").unwrap();
    let to_sys = || Wstat {
        gid: Some("sys".into()),
        ..Default::default()
    };
    let f = file(&mut t, &glenda, root, "f", 0o640);
    t.wstat(&glenda, f, to_sys()).unwrap();
    assert_eq!(t.user_name(t.attr(f).unwrap().gid), "sys");
    let o = file(&mut t, &other, root, "o", 0o640);
    assert_eq!(t.wstat(&other, o, to_sys()), Err(Error::NotInGroup));
}
