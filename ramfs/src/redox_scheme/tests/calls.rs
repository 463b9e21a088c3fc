//! The other calls: fcntl, fevent, fsync and append, fpath, frename, and the memory
//! limit answered as an error.

use super::*;

#[test]
fn fcntl_fevent_fsync_and_append() {
    let mut rig = Rig::new();
    rig.file(ALICE, "f", 0o644, b"start");
    let id = rig.open(ALICE, "f", O_RDWR | O_APPEND).unwrap();
    assert_eq!(rig.call(rig.req.fcntl(ALICE, id, F_GETFL, 0)), Ok(0));
    assert_eq!(rig.call(rig.req.fcntl(ALICE, id, F_SETFL, O_APPEND)), Ok(0));
    assert_eq!(rig.call(rig.req.fcntl(ALICE, id, 99, 0)), Err(EINVAL));
    let both = EventFlags::EVENT_READ | EventFlags::EVENT_WRITE;
    assert_eq!(rig.call(rig.req.fevent(ALICE, id, both)), Ok(both.bits()));
    assert_eq!(rig.call(rig.req.fsync(ALICE, id)), Ok(0));
    let sqe = rig
        .req
        .std_fs_call(ALICE, id, StdFsCallKind::Fsync, &mut [], 0, 0);
    assert_eq!(rig.call(sqe), Ok(0));
    assert_eq!(
        rig.write(ALICE, id, b"+end", 0),
        Ok(4),
        "O_APPEND writes at the end"
    );
    assert_eq!(rig.read(ALICE, id, 0, 100).unwrap(), b"start+end");
    // F_SETFL may turn O_APPEND on later: it comes with each write's flags.
    let plain = rig.open(ALICE, "f", O_WRONLY).unwrap();
    let sqe = rig.req.write(ALICE, plain, b"!", 0, O_APPEND as u32);
    assert_eq!(rig.call(sqe), Ok(1));
    assert_eq!(rig.read(ALICE, id, 0, 100).unwrap(), b"start+end!");
}

#[test]
fn fpath_names_the_file_under_the_scheme() {
    let mut rig = Rig::new();
    rig.mkdir(ALICE, "d", 0o755);
    rig.file(ALICE, "d/f", 0o644, b"");
    let id = rig.open(ALICE, "d/f", O_RDONLY).unwrap();
    let mut buf = [0u8; 64];
    let n = rig.call(rig.req.fpath(ALICE, id, &mut buf)).unwrap();
    assert_eq!(&buf[..n], b"/scheme/ramfs/d/f");
    let mut short = [0u8; 8];
    assert_eq!(rig.call(rig.req.fpath(ALICE, id, &mut short)), Ok(8));
    assert_eq!(&short, b"/scheme/");
    let root = rig.root;
    let n = rig.call(rig.req.fpath(ALICE, root, &mut buf)).unwrap();
    assert_eq!(&buf[..n], b"/scheme/ramfs");
    assert_eq!(rig.call(rig.req.unlinkat(ALICE, root, "d/f", 0)), Ok(0));
    let n = rig.call(rig.req.fpath(ALICE, id, &mut buf)).unwrap();
    assert_eq!(
        &buf[..n],
        b"/scheme/ramfs/d/f",
        "an unlinked file keeps its last path"
    );
}

#[test]
fn frename_moves_and_replaces() {
    let mut rig = Rig::new();
    rig.mkdir(ALICE, "a", 0o755);
    rig.mkdir(ALICE, "b", 0o755);
    rig.file(ALICE, "a/f", 0o644, b"moved");
    rig.file(ALICE, "b/old", 0o644, b"replaced");
    let id = rig.open(ALICE, "a/f", O_RDONLY).unwrap();
    assert_eq!(rig.call(rig.req.frename(ALICE, id, "b/old")), Ok(0));
    assert_eq!(rig.open(ALICE, "a/f", O_RDONLY), Err(ENOENT));
    let again = rig.open(ALICE, "b/old", O_RDONLY).unwrap();
    assert_eq!(rig.read(ALICE, again, 0, 100).unwrap(), b"moved");
    let mut buf = [0u8; 64];
    let n = rig.call(rig.req.fpath(ALICE, id, &mut buf)).unwrap();
    assert_eq!(&buf[..n], b"/scheme/ramfs/b/old");
    // Bob opened it, but may not change Alice's directories.
    let bob = rig.open(BOB, "b/old", O_RDONLY).unwrap();
    assert_eq!(rig.call(rig.req.frename(BOB, bob, "b/new")), Err(EACCES));
    // The same through frenameat, as a standard call on two directory handles.
    let a = rig.open(ALICE, "a", O_DIRECTORY | O_RDONLY).unwrap();
    let b = rig.open(ALICE, "b", O_DIRECTORY | O_RDONLY).unwrap();
    let mut names = *b"old\0back";
    assert_eq!(
        rig.call(rig.req.std_frenameat(ALICE, b, a, &mut names, 0)),
        Ok(0)
    );
    assert!(rig.open(ALICE, "a/back", O_RDONLY).is_ok());
}

#[test]
fn the_memory_limit_is_an_error_not_a_crash() {
    let mut rig = Rig::new();
    let id = rig.open(ALICE, "big", O_CREAT | O_RDWR | 0o644).unwrap();
    let chunk = vec![7u8; 1 << 20];
    let mut written = 0u64;
    let err = loop {
        match rig.write(ALICE, id, &chunk, written) {
            Ok(n) => written += n as u64,
            Err(e) => break e,
        }
        assert!(written <= MEMORY, "the limit held");
    };
    assert_eq!(err, ENOSPC);
}
