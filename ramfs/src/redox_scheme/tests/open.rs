//! openat: create, O_EXCL, O_TRUNC, O_DIRECTORY, O_STAT, bad names and flags, symbolic
//! links followed or opened.

use super::*;

#[test]
fn create_write_read_and_size() {
    let mut rig = Rig::new();
    let id = rig.open(ALICE, "f", O_CREAT | O_RDWR | 0o644).unwrap();
    assert_eq!(rig.write(ALICE, id, b"hello, ", 0), Ok(7));
    assert_eq!(rig.write(ALICE, id, b"world", 7), Ok(5));
    assert_eq!(rig.read(ALICE, id, 0, 100).unwrap(), b"hello, world");
    assert_eq!(rig.read(ALICE, id, 7, 3).unwrap(), b"wor");
    assert_eq!(rig.read(ALICE, id, 50, 3).unwrap(), b"");
    assert_eq!(rig.call(rig.req.fsize(ALICE, id)), Ok(12));
    let st = rig.fstat(ALICE, id).unwrap();
    assert_eq!(st.st_mode, MODE_FILE | 0o644);
    assert_eq!((st.st_uid, st.st_gid), (1000, 1000));
}

#[test]
fn o_excl_refuses_an_existing_name_and_o_creat_alone_opens_it() {
    let mut rig = Rig::new();
    rig.file(ALICE, "f", 0o644, b"data");
    assert_eq!(
        rig.open(ALICE, "f", O_CREAT | O_EXCL | O_RDWR | 0o644),
        Err(EEXIST)
    );
    let id = rig.open(ALICE, "f", O_CREAT | O_RDWR | 0o600).unwrap();
    assert_eq!(rig.read(ALICE, id, 0, 10).unwrap(), b"data");
    assert_eq!(
        rig.fstat(ALICE, id).unwrap().st_mode,
        MODE_FILE | 0o644,
        "mode kept"
    );
    assert_eq!(
        rig.open(ALICE, "", O_CREAT | O_EXCL | O_DIRECTORY | O_RDONLY),
        Err(EEXIST)
    );
}

#[test]
fn o_trunc_empties_only_when_writing() {
    let mut rig = Rig::new();
    rig.file(ALICE, "f", 0o644, b"0123456789");
    let r = rig.open(ALICE, "f", O_RDONLY | O_TRUNC).unwrap();
    assert_eq!(rig.call(rig.req.fsize(ALICE, r)), Ok(10));
    let w = rig.open(ALICE, "f", O_WRONLY | O_TRUNC).unwrap();
    assert_eq!(rig.call(rig.req.fsize(ALICE, w)), Ok(0));
}

#[test]
fn directories_need_o_directory_and_files_refuse_it() {
    let mut rig = Rig::new();
    rig.mkdir(ALICE, "d", 0o755);
    rig.file(ALICE, "d/f", 0o644, b"");
    assert_eq!(rig.open(ALICE, "d", O_RDONLY), Err(EISDIR));
    assert_eq!(rig.open(ALICE, "d", O_DIRECTORY | O_RDWR), Err(EISDIR));
    assert_eq!(rig.open(ALICE, "d/f", O_DIRECTORY | O_RDONLY), Err(ENOTDIR));
    assert_eq!(rig.open(ALICE, "d/f/g", O_RDONLY), Err(ENOTDIR));
    let st = rig.open(ALICE, "d", O_STAT).unwrap();
    assert_eq!(rig.fstat(ALICE, st).unwrap().st_mode & MODE_TYPE, MODE_DIR);
    let d = rig.open(ALICE, "d", O_DIRECTORY | O_RDONLY).unwrap();
    assert_eq!(rig.names(ALICE, d), ["f"]);
    // openat relative to a directory handle, and not to a file handle.
    let f = rig.open(ALICE, "d/f", O_RDONLY).unwrap();
    let sqe = rig.req.openat(ALICE, d, "f", O_RDONLY, 0);
    assert!(matches!(rig.send(sqe), Answer::Opened { .. }));
    let sqe = rig.req.openat(ALICE, f, "x", O_RDONLY, 0);
    assert_eq!(rig.send(sqe), Answer::Regular(Err(ENOTDIR)));
    let sqe = rig.req.openat(ALICE, 999, "f", O_RDONLY, 0);
    assert_eq!(rig.send(sqe), Answer::Regular(Err(EBADF)));
}

#[test]
fn o_stat_opens_whatever_the_bits_and_gives_no_data() {
    let mut rig = Rig::new();
    rig.file(ROOT, "secret", 0o000, b"x");
    assert_eq!(rig.open(ALICE, "secret", O_RDONLY), Err(EACCES));
    let id = rig.open(ALICE, "secret", O_STAT | O_RDONLY).unwrap();
    assert_eq!(rig.fstat(ALICE, id).unwrap().st_size, 1);
    assert_eq!(rig.read(ALICE, id, 0, 1), Err(EBADF));
    assert_eq!(rig.write(ALICE, id, b"y", 0), Err(EBADF));
    assert_eq!(rig.open(ALICE, "x", O_CREAT | O_STAT), Err(EINVAL));
}

#[test]
fn missing_names_and_bad_flags() {
    let mut rig = Rig::new();
    assert_eq!(rig.open(ALICE, "nope", O_RDONLY), Err(ENOENT));
    assert_eq!(
        rig.open(ALICE, "no/such/dir", O_CREAT | O_RDWR | 0o644),
        Err(ENOENT)
    );
    let bad = O_CREAT | O_DIRECTORY | MODE_FILE as usize | 0o644;
    assert_eq!(rig.open(ALICE, "x", bad), Err(EINVAL));
}

#[test]
fn symbolic_links_are_followed_or_opened_as_asked() {
    let mut rig = Rig::new();
    rig.file(ALICE, "target", 0o644, b"through the link");
    {
        let mut tree = rig.fs.lock();
        let cred = tree.cred_for_uid(1000, Some(1000));
        let root = tree.root();
        let link = NewNode::new(NewKind::Symlink("target".into()), 0o777);
        tree.create(&cred, root, "link", link).unwrap();
    }
    let id = rig.open(ALICE, "link", O_RDONLY).unwrap();
    assert_eq!(rig.read(ALICE, id, 0, 100).unwrap(), b"through the link");
    assert_eq!(rig.open(ALICE, "link", O_RDONLY | O_NOFOLLOW), Err(ELOOP));
    let l = rig
        .open(ALICE, "link", O_RDONLY | O_SYMLINK | O_NOFOLLOW)
        .unwrap();
    assert_eq!(rig.read(ALICE, l, 0, 100).unwrap(), b"target");
    assert_eq!(
        rig.fstat(ALICE, l).unwrap().st_mode & MODE_TYPE,
        MODE_SYMLINK
    );
}
