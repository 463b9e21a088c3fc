//! Unit tests of the tree's rules: permissions, DMEXCL, removal, append, wstat and
//! setattr all-or-nothing, directory cursors under mutation, the memory limit, locks.

use super::*;

const MIB: u64 = 1 << 20;

fn tree_with_limit(limit: u64) -> Tree {
    Tree::new(Config {
        memory_limit: limit,
        owner: "adm".into(),
        clock: Clock::Fixed(1_000_000),
    })
}

fn tree() -> Tree {
    tree_with_limit(64 * MIB)
}

impl Tree {
    /// [`Tree::read_with`] into a vector, for tests that look at the bytes.
    fn read(&mut self, id: NodeId, offset: u64, count: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_with(id, offset, count, |b| out.extend_from_slice(b))?;
        Ok(out)
    }
}

fn file(t: &mut Tree, who: &Cred, dir: NodeId, name: &str, perm: u32) -> NodeId {
    t.create(who, dir, name, NewNode::new(NewKind::File, perm))
        .expect("create file")
}

fn mkdir(t: &mut Tree, who: &Cred, dir: NodeId, name: &str, perm: u32) -> NodeId {
    t.create(who, dir, name, NewNode::new(NewKind::Dir, perm))
        .expect("create dir")
}

fn names(t: &Tree, dir: NodeId) -> Vec<String> {
    t.dir_entries(dir, 0)
        .unwrap()
        .map(|e| e.name.to_owned())
        .collect()
}

const RW: OpenMode = OpenMode {
    read: true,
    write: true,
    exec: false,
    truncate: false,
};

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
fn qid_paths_are_never_reused() {
    let mut t = tree();
    let u = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    let a = file(&mut t, &u, root, "a", 0o644);
    t.unlink(&u, root, "a", UnlinkKind::NonDir).unwrap();
    let b = file(&mut t, &u, root, "a", 0o644);
    assert_ne!(a, b);
    assert!(!t.exists(a));
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
fn truncating_open_empties_and_bumps_version() {
    let mut t = tree();
    let u = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    let f = file(&mut t, &u, root, "f", 0o644);
    t.write(&u, f, 0, &[1; 10_000], false).unwrap();
    let v = t.attr(f).unwrap().version;
    let used = t.statfs().used;
    let trunc = OpenMode {
        write: true,
        truncate: true,
        ..Default::default()
    };
    t.open(&u, f, trunc, true).unwrap();
    let a = t.attr(f).unwrap();
    assert_eq!(a.size, 0);
    assert!(a.version != v);
    assert_eq!(t.statfs().used, used - 3 * PAGE_SIZE as u64);
}

#[test]
fn every_change_bumps_qid_version() {
    let mut t = tree();
    let u = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    let f = file(&mut t, &u, root, "f", 0o644);
    let mut last = t.attr(f).unwrap().version;
    let mut check = |t: &Tree, what: &str| {
        let v = t.attr(f).unwrap().version;
        assert_ne!(v, last, "{what} did not bump qid.vers");
        last = v;
    };
    t.write(&u, f, 0, b"x", false).unwrap();
    check(&t, "write");
    t.setattr(
        &u,
        f,
        SetAttrs {
            perm: Some(0o600),
            ..Default::default()
        },
    )
    .unwrap();
    check(&t, "setattr");
    t.wstat(
        &u,
        f,
        Wstat {
            name: Some("g".into()),
            ..Default::default()
        },
    )
    .unwrap();
    check(&t, "rename");
    let rv = t.attr(root).unwrap().version;
    file(&mut t, &u, root, "h", 0o644);
    assert_ne!(t.attr(root).unwrap().version, rv, "directory change");
}

#[test]
fn append_only_writes_go_to_the_end() {
    let mut t = tree();
    let u = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    let mut spec = NewNode::new(NewKind::File, 0o644);
    spec.append = true;
    let f = t.create(&u, root, "log", spec).unwrap();
    t.write(&u, f, 0, b"one ", false).unwrap();
    t.write(&u, f, 0, b"two", false).unwrap();
    assert_eq!(t.read(f, 0, 100).unwrap(), b"one two");
    // An ordinary file appends only when asked (O_APPEND).
    let g = file(&mut t, &u, root, "g", 0o644);
    t.write(&u, g, 0, b"abc", false).unwrap();
    t.write(&u, g, 0, b"X", false).unwrap();
    t.write(&u, g, 0, b"Y", true).unwrap();
    assert_eq!(t.read(g, 0, 100).unwrap(), b"XbcY");
}

#[test]
fn removing_a_full_directory_fails() {
    let mut t = tree();
    let u = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    let d = mkdir(&mut t, &u, root, "d", 0o755);
    let f = file(&mut t, &u, d, "f", 0o644);
    assert_eq!(t.remove(Some(&u), d), Err(Error::NotEmpty));
    assert_eq!(
        t.unlink(&u, root, "d", UnlinkKind::Dir),
        Err(Error::NotEmpty)
    );
    assert_eq!(
        t.unlink(&u, root, "d", UnlinkKind::NonDir),
        Err(Error::IsDir)
    );
    assert_eq!(t.unlink(&u, d, "f", UnlinkKind::Dir), Err(Error::NotDir));
    t.remove(Some(&u), f).unwrap();
    t.remove(Some(&u), d).unwrap();
    assert!(names(&t, root).is_empty());
    assert_eq!(t.remove(Some(&u), root), Err(Error::NotPermitted));
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

#[test]
fn removed_file_lives_while_referenced_then_frees_its_memory() {
    let mut t = tree();
    let u = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    let before = t.statfs().used;
    let f = file(&mut t, &u, root, "f", 0o644);
    t.incref(f).unwrap();
    t.write(&u, f, 0, &[9; 5000], false).unwrap();
    t.unlink(&u, root, "f", UnlinkKind::NonDir).unwrap();
    assert!(t.exists(f));
    assert_eq!(t.read(f, 4999, 10).unwrap(), vec![9]);
    assert_eq!(t.attr(f).unwrap().nlink, 0);
    t.decref(f);
    assert!(!t.exists(f));
    assert_eq!(t.statfs().used, before);
}

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
fn directory_cursor_is_stable_while_the_directory_changes() {
    let mut t = tree();
    let u = t.cred_for_name("glenda").unwrap();
    let root = t.root();
    for n in ["a", "b", "c", "d"] {
        file(&mut t, &u, root, n, 0o644);
    }
    // Read two entries, remember the cursor.
    let first: Vec<(u64, String)> = t
        .dir_entries(root, 0)
        .unwrap()
        .take(2)
        .map(|e| (e.seq, e.name.to_owned()))
        .collect();
    assert_eq!(first[0].0, FIRST_SEQ);
    let cursor = first[1].0;
    // Remove one already read, one not yet read, add one.
    t.unlink(&u, root, "a", UnlinkKind::NonDir).unwrap();
    t.unlink(&u, root, "c", UnlinkKind::NonDir).unwrap();
    file(&mut t, &u, root, "e", 0o644);
    let rest: Vec<String> = t
        .dir_entries(root, cursor)
        .unwrap()
        .map(|e| e.name.to_owned())
        .collect();
    assert_eq!(rest, vec!["d", "e"], "no entry twice, none skipped");
    // A re-created name gets a new, larger sequence number.
    file(&mut t, &u, root, "a", 0o644);
    let last = t.dir_entries(root, 0).unwrap().last().unwrap();
    assert_eq!(last.name, "a");
}

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

#[test]
fn rename_rules() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let root = t.root();
    let a = mkdir(&mut t, &u, root, "a", 0o755);
    let b = mkdir(&mut t, &u, a, "b", 0o755);
    let f = file(&mut t, &u, root, "f", 0o644);
    let g = file(&mut t, &u, root, "g", 0o644);
    assert_eq!(t.rename(&u, root, "a", b, "x"), Err(Error::Invalid));
    assert_eq!(t.rename(&u, root, "f", a, "b"), Err(Error::IsDir));
    assert_eq!(t.rename(&u, a, "b", root, "f"), Err(Error::NotDir));
    // A file replaces a file; the replaced one is gone.
    t.rename(&u, root, "f", root, "g").unwrap();
    assert!(!t.exists(g));
    assert_eq!(t.lookup(&u, root, "g"), Ok(f));
    // A directory moves, and its ".." follows.
    t.rename(&u, a, "b", root, "b2").unwrap();
    assert_eq!(t.lookup(&u, b, ".."), Ok(root));
    assert_eq!(t.attr(a).unwrap().nlink, 2);
    assert_eq!(t.attr(root).unwrap().nlink, 4);
    // A directory replaces an empty directory only.
    let c = mkdir(&mut t, &u, root, "c", 0o755);
    file(&mut t, &u, c, "inside", 0o644);
    assert_eq!(t.rename(&u, root, "a", root, "c"), Err(Error::NotEmpty));
    t.rename(&u, root, "b2", root, "a").unwrap();
    assert!(!t.exists(a));
}

#[test]
fn hard_links_share_the_node() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let root = t.root();
    let f = file(&mut t, &u, root, "f", 0o644);
    t.write(&u, f, 0, b"data", false).unwrap();
    t.link(&u, root, "h", f).unwrap();
    assert_eq!(t.attr(f).unwrap().nlink, 2);
    t.unlink(&u, root, "f", UnlinkKind::NonDir).unwrap();
    assert_eq!(t.lookup(&u, root, "h"), Ok(f));
    assert_eq!(t.read(f, 0, 10).unwrap(), b"data");
    let d = mkdir(&mut t, &u, root, "d", 0o755);
    assert_eq!(t.link(&u, root, "d2", d), Err(Error::NotPermitted));
    // Removing by node takes the remaining name.
    t.remove(Some(&u), f).unwrap();
    assert!(!t.exists(f));
}

#[test]
fn created_in_a_removed_directory_fails() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let root = t.root();
    let d = mkdir(&mut t, &u, root, "d", 0o755);
    t.incref(d).unwrap();
    t.unlink(&u, root, "d", UnlinkKind::Dir).unwrap();
    assert_eq!(
        t.create(&u, d, "x", NewNode::new(NewKind::File, 0o644)),
        Err(Error::NotFound)
    );
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

#[test]
fn writes_past_the_largest_file_fail() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let root = t.root();
    let f = file(&mut t, &u, root, "f", 0o644);
    assert_eq!(
        t.write(&u, f, u64::MAX - 1, b"xy", false),
        Err(Error::FileTooBig)
    );
    assert_eq!(
        t.write(&u, f, MAX_FILE_SIZE, b"x", false),
        Err(Error::FileTooBig)
    );
}

// ---- pages lent for mappings ---------------------------------------------------------

const PAGE: u64 = PAGE_SIZE as u64;

/// A file `name` of `pages` full pages, page `i` filled with byte `i + 1`.
fn dense_file(t: &mut Tree, who: &Cred, name: &str, pages: u64) -> NodeId {
    let root = t.root();
    let f = file(t, who, root, name, 0o755);
    for i in 0..pages {
        t.write(who, f, i * PAGE, &[i as u8 + 1; PAGE_SIZE], false)
            .unwrap();
    }
    f
}

fn addr(p: NonNull<Page>) -> usize {
    p.as_ptr() as usize
}

#[test]
fn lent_windows_are_contiguous_and_counted() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let f = dense_file(&mut t, &u, "prog", 6);
    let used = t.statfs().used;
    let text = t.lend_pages(f, 0, 4).unwrap();
    assert_eq!(addr(text) % PAGE_SIZE, 0);
    let data = t.lend_pages(f, 3, 3).unwrap();
    assert_eq!(addr(data), addr(text) + 3 * PAGE_SIZE, "one run holds both");
    assert_eq!(t.lent_pages(), 7);
    assert_eq!(t.page_loans(f, 3), Ok(2));
    assert_eq!(t.statfs().used, used, "moving pages together costs nothing");
    for i in 0..6 {
        let (at, first) = t
            .with_page(f, i, |p| p.map(|p| (p as *const Page as usize, p.0[0])))
            .unwrap()
            .expect("a page");
        assert_eq!(at, addr(text) + i as usize * PAGE_SIZE);
        assert_eq!(first, i as u8 + 1);
    }
    assert_eq!(t.return_pages(f, 0, 4), Ok(0));
    assert_eq!(t.return_pages(f, 3, 3), Ok(0));
    assert_eq!(t.return_pages(f, 3, 3), Ok(3), "given back twice");
    assert_eq!(t.lent_pages(), 0);
    assert_eq!(t.statfs().used, used);
}

#[test]
fn lending_refuses_what_it_cannot_lend() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let root = t.root();
    let d = mkdir(&mut t, &u, root, "d", 0o755);
    let f = dense_file(&mut t, &u, "f", 1);
    assert_eq!(t.lend_pages(d, 0, 1), Err(Error::IsDir));
    assert_eq!(t.lend_pages(f, 1, 1), Err(Error::PastEnd));
    assert_eq!(t.lend_pages(f, 0, 0), Err(Error::PastEnd));
    assert_eq!(t.lend_pages(f, u64::MAX, 2), Err(Error::PastEnd));
    assert_eq!(t.lend_pages(999, 0, 1), Err(Error::NotFound));
    // A page lent alone where it was pins it; a window around it cannot move it.
    t.write(&u, f, 2 * PAGE, b"x", false).unwrap();
    t.lend_pages(f, 0, 1).unwrap();
    assert_eq!(t.lend_pages(f, 0, 3), Err(Error::Busy));
    assert_eq!(t.lent_pages(), 1);
}

#[test]
fn lending_a_hole_fills_it_without_touching_times_or_version() {
    let limit = 64 * PAGE;
    let mut t = tree_with_limit(limit);
    let u = t.cred_for_uid(1000, None);
    let root = t.root();
    let f = file(&mut t, &u, root, "sparse", 0o644);
    let grow = SetAttrs {
        size: Some(3 * PAGE),
        ..Default::default()
    };
    t.setattr(&u, f, grow).unwrap();
    let before = t.attr(f).unwrap();
    let used = t.statfs().used;
    let p = t.lend_pages(f, 1, 2).unwrap();
    let after = t.attr(f).unwrap();
    assert_eq!(
        after.blocks,
        2 * PAGE / 512,
        "two pages now hold the window"
    );
    assert_eq!(
        (after.size, after.version, after.mtime, after.ctime),
        (before.size, before.version, before.mtime, before.ctime)
    );
    assert_eq!(t.statfs().used, used + 2 * PAGE);
    assert_eq!(t.read(f, 0, usize::MAX).unwrap(), vec![0; 3 * PAGE_SIZE]);
    assert_eq!(
        t.with_page(f, 2, |p| p.map(|p| p as *const Page as usize))
            .unwrap(),
        Some(addr(p) + PAGE_SIZE)
    );
    // A hole that does not fit is refused, and nothing is lent or taken.
    let big = t
        .create(&u, root, "big", NewNode::new(NewKind::File, 0o644))
        .unwrap();
    let huge = SetAttrs {
        size: Some(limit),
        ..Default::default()
    };
    t.setattr(&u, big, huge).unwrap();
    let used = t.statfs().used;
    assert_eq!(t.lend_pages(big, 0, 64), Err(Error::NoSpace));
    assert_eq!((t.statfs().used, t.lent_pages()), (used, 2));
}

#[test]
fn truncation_past_lent_pages_fails_in_every_form() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let p9 = t.cred_for_name("glenda").unwrap();
    let f = dense_file(&mut t, &u, "text", 4);
    t.setattr(
        &u,
        f,
        SetAttrs {
            perm: Some(0o777),
            ..Default::default()
        },
    )
    .unwrap();
    t.lend_pages(f, 2, 1).unwrap();
    let v = t.attr(f).unwrap().version;
    let shrink = |size| SetAttrs {
        size: Some(size),
        ..Default::default()
    };
    // 9P2000.L Tsetattr, Redox ftruncate.
    assert_eq!(t.setattr(&u, f, shrink(2 * PAGE)), Err(Error::TextBusy));
    // 9P2000 Twstat length.
    let w = Wstat {
        length: Some(0),
        ..Default::default()
    };
    assert_eq!(t.wstat(&p9, f, w), Err(Error::TextBusy));
    // Topen/Tlopen with truncation, Redox O_TRUNC.
    let trunc = OpenMode {
        write: true,
        truncate: true,
        ..Default::default()
    };
    assert_eq!(t.open(&u, f, trunc, true), Err(Error::TextBusy));
    let a = t.attr(f).unwrap();
    assert_eq!((a.size, a.version), (4 * PAGE, v), "nothing changed");
    assert_eq!(Error::TextBusy.ename(), "file in use");
    assert_eq!(Error::TextBusy.errno(), ninep::errno::ETXTBSY);
    // Shrinking that keeps the lent page is fine, and so is growing.
    t.setattr(&u, f, shrink(2 * PAGE + 1)).unwrap();
    t.setattr(&u, f, shrink(8 * PAGE)).unwrap();
    assert_eq!(t.return_pages(f, 2, 1), Ok(0));
    t.open(&u, f, trunc, true).unwrap();
    assert_eq!(t.attr(f).unwrap().size, 0);
}

#[test]
fn a_removed_file_lives_until_its_lent_pages_come_back() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let root = t.root();
    let before = t.statfs().used;
    let f = dense_file(&mut t, &u, "prog", 3);
    let p = t.lend_pages(f, 0, 3).unwrap();
    t.unlink(&u, root, "prog", UnlinkKind::NonDir).unwrap();
    assert!(t.exists(f), "no name and no reference, but mapped");
    // SAFETY: `p` is the first of three pages of `f` that the tree lent and has not had
    // back, so they are allocated and in place; nothing else uses the tree meanwhile.
    let mapped = unsafe { std::slice::from_raw_parts(p.as_ptr() as *const u8, 3 * PAGE_SIZE) };
    assert_eq!((mapped[0], mapped[2 * PAGE_SIZE]), (1, 3));
    assert_eq!(t.return_pages(f, 0, 2), Ok(0));
    assert!(t.exists(f), "one page still lent");
    assert_eq!(t.return_pages(f, 2, 1), Ok(0));
    assert!(!t.exists(f));
    assert_eq!(t.statfs().used, before, "every byte given back");
    assert_eq!(t.lent_pages(), 0);
}

#[test]
fn vacant_slots_of_a_lent_run_are_counted_until_it_is_free() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let f = dense_file(&mut t, &u, "f", 4);
    let used = t.statfs().used;
    t.lend_pages(f, 0, 1).unwrap();
    let shrink = |size| SetAttrs {
        size: Some(size),
        ..Default::default()
    };
    // Pages 1..4 leave the file but stay allocated in the run that page 0 pins.
    t.setattr(&u, f, shrink(PAGE)).unwrap();
    assert_eq!(t.attr(f).unwrap().blocks, PAGE / 512);
    assert_eq!(t.statfs().used, used, "still held");
    assert_eq!(t.return_pages(f, 0, 1), Ok(0));
    assert_eq!(t.statfs().used, used - 3 * PAGE, "freed with the last loan");
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

mod concurrent;
mod handles;
mod posix;
