//! Permissions: the caller's against the mode bits, handles limited to what they were
//! opened for, calls without credentials judged as the opener.

use super::*;

#[test]
fn open_and_create_follow_the_permission_bits_of_the_caller() {
    let mut rig = Rig::new();
    rig.mkdir(ALICE, "home", 0o755);
    rig.file(ALICE, "home/private", 0o600, b"mine");
    rig.file(ALICE, "home/public", 0o644, b"ours");
    assert_eq!(rig.open(BOB, "home/private", O_RDONLY), Err(EACCES));
    assert!(rig.open(BOB, "home/public", O_RDONLY).is_ok());
    assert_eq!(rig.open(BOB, "home/public", O_WRONLY), Err(EACCES));
    assert_eq!(
        rig.open(BOB, "home/new", O_CREAT | O_RDWR | 0o644),
        Err(EACCES)
    );
    assert!(
        rig.open(ROOT, "home/private", O_RDWR).is_ok(),
        "root reads anything"
    );
    // No search permission on the way.
    rig.mkdir(ALICE, "closed", 0o700);
    rig.file(ALICE, "closed/f", 0o666, b"");
    assert_eq!(rig.open(BOB, "closed/f", O_RDONLY), Err(EACCES));
    // The creator may use the file it made whatever mode it gave it.
    let id = rig.open(BOB, "mine", O_CREAT | O_RDWR | 0o444).unwrap();
    assert_eq!(rig.write(BOB, id, b"ok", 0), Ok(2));
}

#[test]
fn handles_only_do_what_they_were_opened_for() {
    let mut rig = Rig::new();
    rig.file(ALICE, "f", 0o666, b"abc");
    let r = rig.open(ALICE, "f", O_RDONLY).unwrap();
    let w = rig.open(ALICE, "f", O_WRONLY).unwrap();
    assert_eq!(rig.write(ALICE, r, b"x", 0), Err(EBADF));
    assert_eq!(rig.read(ALICE, w, 0, 1), Err(EBADF));
    assert_eq!(rig.call(rig.req.ftruncate(ALICE, r, 0)), Err(EINVAL));
    assert_eq!(rig.call(rig.req.fsync(ALICE, 12345)), Err(EBADF));
}

#[test]
fn calls_without_credentials_are_judged_as_the_opener() {
    // relibc sends fchmod, ftruncate and futimens as StdFsCall, whose requests carry no
    // uid/gid: redox-scheme reports uid 0 for them. They must not act as root.
    let mut rig = Rig::new();
    rig.file(ALICE, "f", 0o666, b"abc");
    let bob = rig.open(BOB, "f", O_RDWR).unwrap();
    let sqe = rig
        .req
        .std_fs_call(BOB, bob, StdFsCallKind::Fchmod, &mut [], 0o777, 0);
    assert_eq!(rig.call(sqe), Err(EPERM));
    let alice = rig.open(ALICE, "f", O_RDWR).unwrap();
    let sqe = rig
        .req
        .std_fs_call(ALICE, alice, StdFsCallKind::Fchmod, &mut [], 0o640, 0);
    assert_eq!(rig.call(sqe), Ok(0));
    assert_eq!(rig.fstat(ALICE, alice).unwrap().st_mode, MODE_FILE | 0o640);
    let mut times = [
        TimeSpec {
            tv_sec: 5,
            tv_nsec: 0,
        },
        TimeSpec {
            tv_sec: 6,
            tv_nsec: 0,
        },
    ];
    let payload = as_payload(&mut times);
    let sqe = rig
        .req
        .std_fs_call(BOB, bob, StdFsCallKind::Futimens, payload, 0, 0);
    assert_eq!(rig.call(sqe), Err(EPERM));
}
