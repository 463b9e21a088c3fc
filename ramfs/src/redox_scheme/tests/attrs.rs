//! Attributes: fchmod, fchown, fstat and fstatvfs, ftruncate, futimens.

use super::*;

#[test]
fn fchmod_by_the_owner_only() {
    let mut rig = Rig::new();
    rig.file(ALICE, "f", 0o644, b"");
    let a = rig.open(ALICE, "f", O_RDONLY).unwrap();
    let b = rig.open(BOB, "f", O_RDONLY).unwrap();
    assert_eq!(rig.call(rig.req.fchmod(ALICE, a, 0o600)), Ok(0));
    assert_eq!(rig.fstat(ALICE, a).unwrap().st_mode, MODE_FILE | 0o600);
    assert_eq!(rig.call(rig.req.fchmod(BOB, b, 0o777)), Err(EPERM));
    // Type bits in the new mode are ignored, not applied.
    assert_eq!(rig.call(rig.req.fchmod(ALICE, a, MODE_DIR | 0o640)), Ok(0));
    assert_eq!(rig.fstat(ALICE, a).unwrap().st_mode, MODE_FILE | 0o640);
}

#[test]
fn fchown_changes_owner_for_root_and_group_for_the_owner() {
    let mut rig = Rig::new();
    rig.file(ALICE, "f", 0o644, b"");
    let a = rig.open(ALICE, "f", O_RDONLY).unwrap();
    let r = rig.open(ROOT, "f", O_RDONLY).unwrap();
    assert_eq!(
        rig.call(rig.req.fchown(ALICE, a, 1001, u32::MAX)),
        Err(EPERM)
    );
    assert_eq!(rig.call(rig.req.fchown(ALICE, a, u32::MAX, 1000)), Ok(0));
    assert_eq!(rig.call(rig.req.fchown(ALICE, a, u32::MAX, 7)), Err(EPERM));
    assert_eq!(rig.call(rig.req.fchown(ROOT, r, 1001, 7)), Ok(0));
    let st = rig.fstat(ROOT, r).unwrap();
    assert_eq!((st.st_uid, st.st_gid), (1001, 7));
}

#[test]
fn fstat_and_fstatvfs_both_ways() {
    let mut rig = Rig::new();
    rig.file(ALICE, "f", 0o640, &[1u8; 5000]);
    let id = rig.open(ALICE, "f", O_RDONLY).unwrap();
    let st = rig.fstat(ALICE, id).unwrap();
    assert_eq!(st.st_size, 5000);
    assert_eq!(st.st_blksize, 4096);
    assert_eq!(st.st_blocks, 16, "two 4 KiB pages in 512-byte blocks");
    assert_eq!(st.st_nlink, 1);
    assert_eq!((st.st_mtime, st.st_mtime_nsec), (EPOCH, 0));
    let mut st2 = Stat::default();
    let sqe = rig
        .req
        .std_fs_call(ALICE, id, StdFsCallKind::Fstat, as_payload(&mut st2), 0, 0);
    assert_eq!(rig.call(sqe), Ok(0));
    assert_eq!(
        (st2.st_ino, st2.st_size, st2.st_mode),
        (st.st_ino, 5000, st.st_mode)
    );

    let mut vfs = StatVfs::default();
    assert_eq!(rig.call(rig.req.fstatvfs(ALICE, id, &mut vfs)), Ok(0));
    assert_eq!(vfs.f_bsize, 4096);
    assert_eq!(vfs.f_blocks, MEMORY / 4096);
    assert!(vfs.f_bfree < vfs.f_blocks && vfs.f_bavail == vfs.f_bfree);
    let mut vfs2 = StatVfs::default();
    let sqe = rig.req.std_fs_call(
        ALICE,
        id,
        StdFsCallKind::Fstatvfs,
        as_payload(&mut vfs2),
        0,
        0,
    );
    assert_eq!(rig.call(sqe), Ok(0));
    assert_eq!(vfs2.f_bfree, vfs.f_bfree);
}

#[test]
fn ftruncate_grows_and_shrinks_files_only() {
    let mut rig = Rig::new();
    rig.mkdir(ALICE, "d", 0o755);
    rig.file(ALICE, "f", 0o644, b"0123456789");
    let id = rig.open(ALICE, "f", O_RDWR).unwrap();
    assert_eq!(rig.call(rig.req.ftruncate(ALICE, id, 4)), Ok(0));
    assert_eq!(rig.read(ALICE, id, 0, 100).unwrap(), b"0123");
    let sqe = rig
        .req
        .std_fs_call(ALICE, id, StdFsCallKind::Ftruncate, &mut [], 6, 0);
    assert_eq!(rig.call(sqe), Ok(0));
    assert_eq!(rig.read(ALICE, id, 0, 100).unwrap(), b"0123\0\0");
    let d = rig.open(ALICE, "d", O_DIRECTORY | O_RDONLY).unwrap();
    assert_eq!(rig.call(rig.req.ftruncate(ALICE, d, 0)), Err(EISDIR));
}

#[test]
fn ftruncate_of_a_file_created_read_write_with_mode_0() {
    // The open granted writing; the mode does not decide again (pjdfstest ftruncate/00).
    let mut rig = Rig::new();
    let id = rig.open(ALICE, "z", O_CREAT | O_RDWR).unwrap();
    assert_eq!(rig.call(rig.req.ftruncate(ALICE, id, 7)), Ok(0));
    assert_eq!(rig.read(ALICE, id, 0, 100).unwrap(), [0; 7]);
}

#[test]
fn futimens_sets_omits_and_takes_now() {
    let mut rig = Rig::new();
    rig.file(ALICE, "f", 0o666, b"");
    let a = rig.open(ALICE, "f", O_RDWR).unwrap();
    let t = |sec, nsec| TimeSpec {
        tv_sec: sec,
        tv_nsec: nsec,
    };
    let times = [t(10, 1), t(20, 2)];
    assert_eq!(rig.call(rig.req.futimens(ALICE, a, &times)), Ok(0));
    let st = rig.fstat(ALICE, a).unwrap();
    assert_eq!(
        (st.st_atime, st.st_atime_nsec, st.st_mtime, st.st_mtime_nsec),
        (10, 1, 20, 2)
    );
    let times = [t(0, UTIME_OMIT), t(30, 0)];
    assert_eq!(rig.call(rig.req.futimens(ALICE, a, &times)), Ok(0));
    let st = rig.fstat(ALICE, a).unwrap();
    assert_eq!((st.st_atime, st.st_mtime), (10, 30));
    // Another user with write access may set "now", not a time of their choosing.
    let b = rig.open(BOB, "f", O_RDWR).unwrap();
    let now = [t(0, UTIME_NOW), t(0, UTIME_NOW)];
    assert_eq!(rig.call(rig.req.futimens(BOB, b, &now)), Ok(0));
    assert_eq!(rig.fstat(BOB, b).unwrap().st_mtime, EPOCH);
    assert_eq!(
        rig.call(rig.req.futimens(BOB, b, &[t(1, 0), t(1, 0)])),
        Err(EPERM)
    );
    assert_eq!(
        rig.call(rig.req.futimens(ALICE, a, &[t(-1, 0), t(1, 0)])),
        Err(EINVAL)
    );
    assert_eq!(
        rig.call(rig.req.futimens(ALICE, a, &[t(1, 1_000_000_000), t(1, 0)])),
        Err(EINVAL)
    );
}
