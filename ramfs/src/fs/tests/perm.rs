//! Who may walk, create, open and remove: the root's owner and mode, search and write
//! permission, Plan 9's create mask and group inheritance.

use super::*;

#[test]
fn root_is_world_writable_and_owned_by_the_owner() {
    let mut t = tree();
    let a = t.attr(t.root()).unwrap();
    assert_eq!(a.perm, 0o777);
    assert_eq!(t.user_name(a.uid), "adm");
    assert_eq!(a.file_type, FileType::Directory);
    let nobody = t.cred_for_name("nobody").unwrap();
    let root = t.root();
    file(&mut t, &nobody, root, "f", 0o644);
}

#[test]
fn walk_needs_search_permission() {
    let mut t = tree();
    let owner = t.cred_for_name("glenda").unwrap();
    let other = t.cred_for_name("other").unwrap();
    let root = t.root();
    let d = mkdir(&mut t, &owner, root, "d", 0o700);
    file(&mut t, &owner, d, "f", 0o644);
    assert!(t.lookup(&owner, d, "f").is_ok());
    assert_eq!(t.lookup(&other, d, "f"), Err(Error::PermissionDenied));
    assert_eq!(t.lookup(&owner, d, ".."), Ok(root));
    assert_eq!(t.lookup(&owner, root, ".."), Ok(root));
    assert_eq!(t.lookup(&owner, d, "missing"), Err(Error::NotFound));
}

#[test]
fn create_needs_write_in_the_directory() {
    let mut t = tree();
    let owner = t.cred_for_name("glenda").unwrap();
    let other = t.cred_for_name("other").unwrap();
    let root = t.root();
    let d = mkdir(&mut t, &owner, root, "d", 0o755);
    let r = t.create(&other, d, "x", NewNode::new(NewKind::File, 0o644));
    assert_eq!(r, Err(Error::PermissionDenied));
    assert_eq!(
        t.create(&owner, d, "x/y", NewNode::new(NewKind::File, 0o644)),
        Err(Error::BadName)
    );
    file(&mut t, &owner, d, "x", 0o644);
    assert_eq!(
        t.create(&owner, d, "x", NewNode::new(NewKind::File, 0o644)),
        Err(Error::Exists)
    );
}

#[test]
fn plan9_create_mask_and_group_inheritance() {
    let mut t = tree();
    let owner = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    let d = mkdir(&mut t, &owner, root, "d", 0o750);
    let mut spec = NewNode::new(NewKind::File, 0o666);
    spec.plan9_mask = true;
    let f = t.create(&owner, d, "f", spec).unwrap();
    let a = t.attr(f).unwrap();
    assert_eq!(a.perm, 0o640);
    assert_eq!(a.gid, t.attr(d).unwrap().gid, "group of the directory");
    assert_eq!(a.uid, owner.uid);
}

#[test]
fn open_checks_permission_and_dirs_cannot_be_written() {
    let mut t = tree();
    let owner = t.cred_for_name("glenda").unwrap();
    let other = t.cred_for_name("other").unwrap();
    let root = t.root();
    let f = file(&mut t, &owner, root, "f", 0o644);
    let read = OpenMode {
        read: true,
        ..Default::default()
    };
    assert!(t.open(&other, f, read, true).is_ok());
    assert_eq!(t.open(&other, f, RW, true), Err(Error::PermissionDenied));
    // Create opens without a check, even a file it makes unwritable.
    let g = file(&mut t, &owner, root, "g", 0o444);
    assert!(t.open(&owner, g, RW, false).is_ok());
    assert_eq!(t.open(&owner, root, RW, true), Err(Error::IsDir));
}

#[test]
fn remove_needs_write_in_the_parent_except_for_orclose() {
    let mut t = tree();
    let owner = t.cred_for_name("glenda").unwrap();
    let other = t.cred_for_name("other").unwrap();
    let root = t.root();
    let d = mkdir(&mut t, &owner, root, "d", 0o755);
    let f = file(&mut t, &owner, d, "f", 0o666);
    assert_eq!(t.remove(Some(&other), f), Err(Error::PermissionDenied));
    // ORCLOSE was checked when the file was opened; the removal itself is unchecked.
    t.remove(None, f).unwrap();
    assert!(!t.exists(f));
}
