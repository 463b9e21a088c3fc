//! The namespace: removing directories and referenced files, creating in a removed
//! directory, renames, hard links, and directory cursors while the directory changes.

use super::*;

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
