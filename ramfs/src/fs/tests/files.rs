//! A file's data and qid: paths never reused, a truncating open, the version every
//! change bumps, append-only writes, the largest file.

use super::*;

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
