//! The scheme handler, driven by kernel-shaped requests through redox-scheme's own
//! decoding ([`super::test_requests`]): every supported call, the permission rules,
//! `mmap_prep` alignment and stability, and the exit rule.

use std::sync::Arc;

use ::redox_scheme::scheme::{SchemeState, SchemeSync};
use syscall::error::{
    EACCES, EBADF, EBUSY, EEXIST, EINVAL, EISDIR, ELOOP, ENOENT, ENOSPC, ENOTDIR, ENOTEMPTY, ENXIO,
    EPERM, ETXTBSY,
};
use syscall::flag::{
    EventFlags, MapFlags, MunmapFlags, StdFsCallKind, AT_REMOVEDIR, F_GETFL, F_SETFL, MODE_DIR,
    MODE_FILE, MODE_SYMLINK, MODE_TYPE, O_APPEND, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW,
    O_RDONLY, O_RDWR, O_STAT, O_SYMLINK, O_TRUNC, O_WRONLY,
};
use syscall::{Stat, StatVfs, TimeSpec};

use super::handler::{SchemeHandler, UTIME_NOW, UTIME_OMIT};
use super::test_requests::{as_payload, dirents, dispatch, Answer, Caller, Requests, Sqe};
use crate::fs::{Clock, Config, Fs, NewKind, NewNode, PAGE_SIZE};

const ROOT: Caller = Caller::ROOT;
const ALICE: Caller = Caller::user(1000);
const BOB: Caller = Caller::user(1001);
const MEMORY: u64 = 4 << 20;
const EPOCH: u64 = 1_000_000;

/// A handler over a fresh tree, with its root handle issued as registration does.
struct Rig {
    fs: Arc<Fs>,
    handler: SchemeHandler,
    state: SchemeState,
    req: Requests,
    root: usize,
}

impl Rig {
    fn new() -> Rig {
        let fs = Arc::new(Fs::new(Config {
            memory_limit: MEMORY,
            owner: "root".into(),
            clock: Clock::Fixed(EPOCH),
        }));
        let mut handler = SchemeHandler::new(Arc::clone(&fs), "ramfs");
        let root = handler.scheme_root().expect("root handle");
        Rig {
            fs,
            handler,
            state: SchemeState::new(),
            req: Requests::default(),
            root,
        }
    }

    fn send(&mut self, sqe: Sqe<'_>) -> Answer {
        dispatch(&mut self.handler, &mut self.state, sqe)
    }

    /// A regular answer's value or errno.
    fn call(&mut self, sqe: Sqe<'_>) -> Result<usize, i32> {
        match self.send(sqe) {
            Answer::Regular(r) => r,
            other => panic!("expected a regular answer, got {other:?}"),
        }
    }

    /// `openat` from the root handle: the new handle or the errno.
    fn open(&mut self, who: Caller, path: &str, flags: usize) -> Result<usize, i32> {
        let sqe = self.req.openat(who, self.root, path, flags, 0);
        match self.send(sqe) {
            Answer::Opened { id, flags } => {
                assert_eq!(flags, 1, "handles are positioned (NewFdFlags::POSITIONED)");
                Ok(id)
            }
            Answer::Regular(Err(errno)) => Err(errno),
            other => panic!("unexpected openat answer {other:?}"),
        }
    }

    fn write(&mut self, who: Caller, id: usize, data: &[u8], offset: u64) -> Result<usize, i32> {
        let sqe = self.req.write(who, id, data, offset, 0);
        self.call(sqe)
    }

    fn read(&mut self, who: Caller, id: usize, offset: u64, len: usize) -> Result<Vec<u8>, i32> {
        let mut buf = vec![0u8; len];
        let n = self.call(self.req.read(who, id, &mut buf, offset, 0))?;
        buf.truncate(n);
        Ok(buf)
    }

    fn fstat(&mut self, who: Caller, id: usize) -> Result<Stat, i32> {
        let mut stat = Stat::default();
        self.call(self.req.fstat(who, id, &mut stat))?;
        Ok(stat)
    }

    fn close(&mut self, id: usize) {
        let sqe = self.req.close(id);
        assert_eq!(self.send(sqe), Answer::NoResponse);
    }

    /// A file made by `who` with `data`, closed again.
    fn file(&mut self, who: Caller, path: &str, perm: usize, data: &[u8]) {
        let id = self
            .open(who, path, O_CREAT | O_WRONLY | perm)
            .expect("create");
        assert_eq!(self.write(who, id, data, 0), Ok(data.len()));
        self.close(id);
    }

    fn mkdir(&mut self, who: Caller, path: &str, perm: usize) {
        let id = self
            .open(who, path, O_CREAT | O_DIRECTORY | O_EXCL | O_RDONLY | perm)
            .expect("mkdir");
        self.close(id);
    }

    fn names(&mut self, who: Caller, dir: usize) -> Vec<String> {
        let mut buf = vec![0u8; 4096];
        let n = self
            .call(self.req.getdents(who, dir, &mut buf, 0))
            .expect("getdents");
        dirents(&buf, n).into_iter().map(|e| e.0).collect()
    }
}

// ---- openat ---------------------------------------------------------------------

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

// ---- permissions ------------------------------------------------------------------

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

// ---- unlinkat ---------------------------------------------------------------------

#[test]
fn unlinkat_removes_files_and_empty_directories() {
    let mut rig = Rig::new();
    rig.mkdir(ALICE, "d", 0o755);
    rig.file(ALICE, "d/f", 0o644, b"still here");
    let open = rig.open(ALICE, "d/f", O_RDONLY).unwrap();
    let root = rig.root;
    assert_eq!(rig.call(rig.req.unlinkat(ALICE, root, "d", 0)), Err(EISDIR));
    assert_eq!(
        rig.call(rig.req.unlinkat(ALICE, root, "d", AT_REMOVEDIR)),
        Err(ENOTEMPTY)
    );
    assert_eq!(
        rig.call(rig.req.unlinkat(ALICE, root, "d/f", AT_REMOVEDIR)),
        Err(ENOTDIR)
    );
    assert_eq!(rig.call(rig.req.unlinkat(BOB, root, "d/f", 0)), Err(EACCES));
    assert_eq!(rig.call(rig.req.unlinkat(ALICE, root, "d/f", 0)), Ok(0));
    assert_eq!(rig.open(ALICE, "d/f", O_RDONLY), Err(ENOENT));
    // An unlinked file lives on while a handle holds it.
    assert_eq!(rig.read(ALICE, open, 0, 100).unwrap(), b"still here");
    assert_eq!(
        rig.call(rig.req.unlinkat(ALICE, root, "d", AT_REMOVEDIR)),
        Ok(0)
    );
    assert_eq!(
        rig.call(rig.req.unlinkat(ALICE, root, "d", AT_REMOVEDIR)),
        Err(ENOENT)
    );
    let nodes = rig.fs.lock().node_count();
    rig.close(open);
    assert_eq!(
        rig.fs.lock().node_count(),
        nodes - 1,
        "the last close frees it"
    );
}

// ---- getdents -----------------------------------------------------------------------

#[test]
fn getdents_lists_in_pages_and_resumes_at_the_opaque_offset() {
    let mut rig = Rig::new();
    rig.mkdir(ALICE, "d", 0o755);
    rig.mkdir(ALICE, "d/sub", 0o755);
    for name in ["a", "b", "c"] {
        rig.file(ALICE, &format!("d/{name}"), 0o644, b"");
    }
    let d = rig.open(ALICE, "d", O_DIRECTORY | O_RDONLY).unwrap();
    let mut all = vec![0u8; 4096];
    let n = rig.call(rig.req.getdents(ALICE, d, &mut all, 0)).unwrap();
    let entries = dirents(&all, n);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["sub", "a", "b", "c"]);
    assert_eq!(
        entries[0].3, 4,
        "sub is a directory (DirentKind::Directory)"
    );
    assert_eq!(entries[1].3, 8, "a is a regular file (DirentKind::Regular)");
    let sub = rig.open(ALICE, "d/sub", O_STAT).unwrap();
    assert_eq!(entries[0].1, rig.fstat(ALICE, sub).unwrap().st_ino);

    // A buffer for two records at a time: partial answers, resumed by the last opaque id.
    let mut seen = Vec::new();
    let mut opaque = 0;
    loop {
        let mut small = vec![0u8; 2 * 32];
        let n = rig
            .call(rig.req.std_getdents(ALICE, d, &mut small, opaque))
            .unwrap();
        if n == 0 {
            break;
        }
        let page = dirents(&small, n);
        assert!(page.len() <= 2);
        opaque = page.last().unwrap().2;
        seen.extend(page.into_iter().map(|e| e.0));
    }
    assert_eq!(seen, ["sub", "a", "b", "c"]);

    let mut tiny = vec![0u8; 8];
    assert_eq!(
        rig.call(rig.req.getdents(ALICE, d, &mut tiny, 0)),
        Err(EINVAL)
    );
    let f = rig.open(ALICE, "d/a", O_RDONLY).unwrap();
    assert_eq!(
        rig.call(rig.req.getdents(ALICE, f, &mut all, 0)),
        Err(ENOTDIR)
    );
}

// ---- attributes -----------------------------------------------------------------------

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

// ---- other calls -----------------------------------------------------------------------

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

// ---- mappings ----------------------------------------------------------------------------

/// Reads `len` bytes at an address `mmap_prep` returned, within the mapped window.
fn peek(addr: usize, len: usize) -> Vec<u8> {
    // SAFETY: `addr..addr + len` lies within one window of file pages that the handler
    // has lent and not had back (each caller reads only a window it mapped and has not
    // unmapped), so the tree keeps those pages allocated, side by side and in place;
    // nothing writes them during this read (the test is single-threaded and sends no
    // request meanwhile).
    unsafe { std::slice::from_raw_parts(addr as *const u8, len).to_vec() }
}

#[test]
fn mmap_prep_lends_the_files_own_page_where_it_stays() {
    let mut rig = Rig::new();
    rig.file(ALICE, "f", 0o644, b"page zero");
    let id = rig.open(ALICE, "f", O_RDWR).unwrap();
    let prot = MapFlags::PROT_READ | MapFlags::MAP_SHARED;
    let addr = rig
        .call(rig.req.mmap_prep(ALICE, id, 0, 100, prot))
        .unwrap();
    assert_eq!(addr % PAGE_SIZE, 0, "page-aligned, as the kernel demands");
    assert_eq!(peek(addr, 9), b"page zero");
    assert_eq!(rig.handler.lent_pages(), 1);
    // Writes through the scheme land in the very page that is mapped...
    assert_eq!(rig.write(ALICE, id, b"PAGE", 0), Ok(4));
    assert_eq!(peek(addr, 9), b"PAGE zero");
    // ...and growing the file elsewhere does not move it.
    assert_eq!(
        rig.write(ALICE, id, &[1u8; 3 * PAGE_SIZE], PAGE_SIZE as u64),
        Ok(3 * PAGE_SIZE)
    );
    let again = rig
        .call(rig.req.mmap_prep(ALICE, id, 0, PAGE_SIZE, prot))
        .unwrap();
    assert_eq!(again, addr);
    assert_eq!(
        rig.handler.lent_pages(),
        2,
        "two mappings of one page are two loans"
    );
    assert_eq!(peek(addr, 9), b"PAGE zero");
    let unmap = MunmapFlags::empty();
    assert_eq!(
        rig.call(rig.req.munmap(ALICE, id, 0, PAGE_SIZE, unmap)),
        Ok(0)
    );
    assert_eq!(rig.call(rig.req.munmap(ALICE, id, 0, 100, unmap)), Ok(0));
    assert_eq!(rig.handler.lent_pages(), 0);
    // A page never lent coming back is logged, not counted below zero.
    assert_eq!(
        rig.call(rig.req.munmap(ALICE, id, 0, PAGE_SIZE, unmap)),
        Ok(0)
    );
    assert_eq!(rig.handler.lent_pages(), 0);
}

#[test]
fn mmap_prep_checks_alignment_range_and_access() {
    let mut rig = Rig::new();
    rig.mkdir(ALICE, "d", 0o755);
    rig.file(ALICE, "f", 0o666, &[9u8; 10]);
    let r = rig.open(ALICE, "f", O_RDONLY).unwrap();
    let w = rig.open(ALICE, "f", O_WRONLY).unwrap();
    let d = rig.open(ALICE, "d", O_DIRECTORY | O_RDONLY).unwrap();
    let read = MapFlags::PROT_READ | MapFlags::MAP_PRIVATE;
    let shared_write = MapFlags::PROT_READ | MapFlags::PROT_WRITE | MapFlags::MAP_SHARED;
    let private_write = MapFlags::PROT_READ | MapFlags::PROT_WRITE | MapFlags::MAP_PRIVATE;
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, r, 100, 10, read)),
        Err(EINVAL)
    );
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, r, 0, 0, read)),
        Err(EINVAL)
    );
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, r, PAGE_SIZE as u64, 10, read)),
        Err(ENXIO)
    );
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, w, 0, 10, read)),
        Err(EACCES)
    );
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, r, 0, 10, shared_write)),
        Err(EACCES)
    );
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, d, 0, 10, read)),
        Err(EACCES)
    );
    assert_eq!(rig.handler.lent_pages(), 0, "nothing lent by a refusal");
    // Copy-on-write needs only read access.
    assert!(rig
        .call(rig.req.mmap_prep(ALICE, r, 0, 10, private_write))
        .is_ok());
    assert_eq!(rig.handler.lent_pages(), 1);
}

#[test]
fn a_hole_gets_a_page_when_it_is_mapped() {
    let mut rig = Rig::new();
    let id = rig.open(ALICE, "sparse", O_CREAT | O_RDWR | 0o644).unwrap();
    assert_eq!(
        rig.call(rig.req.ftruncate(ALICE, id, 2 * PAGE_SIZE as u64)),
        Ok(0)
    );
    assert_eq!(rig.fstat(ALICE, id).unwrap().st_blocks, 0, "all hole");
    let shared = MapFlags::PROT_READ | MapFlags::PROT_WRITE | MapFlags::MAP_SHARED;
    let off = PAGE_SIZE as u64;
    let addr = rig
        .call(rig.req.mmap_prep(ALICE, id, off, PAGE_SIZE, shared))
        .unwrap();
    assert_eq!(addr % PAGE_SIZE, 0);
    assert_eq!(peek(addr, PAGE_SIZE), vec![0u8; PAGE_SIZE]);
    let st = rig.fstat(ALICE, id).unwrap();
    assert_eq!(
        (st.st_size, st.st_blocks),
        (2 * PAGE_SIZE as u64, 8),
        "one page, same length"
    );
}

#[test]
fn a_multi_page_mapping_is_one_run_of_the_files_pages() {
    let mut rig = Rig::new();
    // An executable: text in pages 0..3, data in 2..5 sharing page 2 with the text.
    let image: Vec<u8> = (0..5 * PAGE_SIZE)
        .map(|i| (i / PAGE_SIZE) as u8 + 1)
        .collect();
    rig.file(ALICE, "prog", 0o755, &image);
    let id = rig.open(ALICE, "prog", O_RDWR).unwrap();
    let exec = MapFlags::PROT_READ | MapFlags::PROT_EXEC | MapFlags::MAP_PRIVATE;
    let text = rig
        .call(rig.req.mmap_prep(ALICE, id, 0, 3 * PAGE_SIZE, exec))
        .expect("one run for three pages");
    assert_eq!(text % PAGE_SIZE, 0);
    assert_eq!(peek(text, 3 * PAGE_SIZE), image[..3 * PAGE_SIZE]);
    let data_flags = MapFlags::PROT_READ | MapFlags::PROT_WRITE | MapFlags::MAP_PRIVATE;
    let data = rig
        .call(rig.req.mmap_prep(
            ALICE,
            id,
            2 * PAGE_SIZE as u64,
            2 * PAGE_SIZE + 1,
            data_flags,
        ))
        .expect("the data window lies in the same run");
    assert_eq!(data, text + 2 * PAGE_SIZE);
    assert_eq!(rig.handler.lent_pages(), 6);
    // The file grows and is written elsewhere: the mapped pages neither move nor change.
    assert_eq!(
        rig.write(ALICE, id, &[7u8; PAGE_SIZE], 9 * PAGE_SIZE as u64),
        Ok(PAGE_SIZE)
    );
    assert_eq!(peek(text, 3 * PAGE_SIZE), image[..3 * PAGE_SIZE]);
    // A write into a mapped page is seen through the mapping.
    assert_eq!(rig.write(ALICE, id, b"patched", PAGE_SIZE as u64), Ok(7));
    assert_eq!(peek(text + PAGE_SIZE, 7), b"patched");
    let unmap = MunmapFlags::empty();
    assert_eq!(
        rig.call(rig.req.munmap(ALICE, id, 0, 3 * PAGE_SIZE, unmap)),
        Ok(0)
    );
    assert_eq!(
        rig.call(
            rig.req
                .munmap(ALICE, id, 2 * PAGE_SIZE as u64, 2 * PAGE_SIZE + 1, unmap)
        ),
        Ok(0)
    );
    assert_eq!(rig.handler.lent_pages(), 0);
}

#[test]
fn a_mapping_that_would_move_a_mapped_page_is_refused_whole() {
    let mut rig = Rig::new();
    let id = rig.open(ALICE, "f", O_CREAT | O_RDWR | 0o644).unwrap();
    // Pages 0 and 2 hold data, page 1 is a hole: three runs of one page.
    assert_eq!(rig.write(ALICE, id, &[1u8; PAGE_SIZE], 0), Ok(PAGE_SIZE));
    assert_eq!(
        rig.write(ALICE, id, &[3u8; PAGE_SIZE], 2 * PAGE_SIZE as u64),
        Ok(PAGE_SIZE)
    );
    let read = MapFlags::PROT_READ | MapFlags::MAP_SHARED;
    rig.call(rig.req.mmap_prep(ALICE, id, 0, PAGE_SIZE, read))
        .expect("page 0 in place");
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, id, 0, 3 * PAGE_SIZE, read)),
        Err(EBUSY)
    );
    assert_eq!(rig.handler.lent_pages(), 1, "nothing more lent");
    let unmap = MunmapFlags::empty();
    assert_eq!(
        rig.call(rig.req.munmap(ALICE, id, 0, PAGE_SIZE, unmap)),
        Ok(0)
    );
    let all = rig
        .call(rig.req.mmap_prep(ALICE, id, 0, 3 * PAGE_SIZE, read))
        .expect("movable once unmapped");
    assert_eq!(peek(all, 1), [1]);
    assert_eq!(peek(all + PAGE_SIZE, PAGE_SIZE), vec![0u8; PAGE_SIZE]);
    assert_eq!(peek(all + 2 * PAGE_SIZE, 1), [3]);
}

#[test]
fn lent_pages_are_not_truncated_away() {
    let mut rig = Rig::new();
    rig.file(ALICE, "text", 0o755, &[0x90u8; 2 * PAGE_SIZE]);
    let id = rig.open(ALICE, "text", O_RDWR).unwrap();
    let exec = MapFlags::PROT_READ | MapFlags::PROT_EXEC | MapFlags::MAP_PRIVATE;
    let off = PAGE_SIZE as u64;
    let addr = rig
        .call(rig.req.mmap_prep(ALICE, id, off, PAGE_SIZE, exec))
        .unwrap();
    assert_eq!(rig.call(rig.req.ftruncate(ALICE, id, 10)), Err(ETXTBSY));
    assert_eq!(rig.open(ALICE, "text", O_WRONLY | O_TRUNC), Err(ETXTBSY));
    // Shrinking that keeps the lent page is fine.
    assert_eq!(rig.call(rig.req.ftruncate(ALICE, id, off + 10)), Ok(0));
    assert_eq!(peek(addr, 10), [0x90u8; 10]);
    assert_eq!(
        rig.call(
            rig.req
                .munmap(ALICE, id, off, PAGE_SIZE, MunmapFlags::empty())
        ),
        Ok(0)
    );
    assert_eq!(rig.call(rig.req.ftruncate(ALICE, id, 0)), Ok(0));
}

// ---- the exit rule -----------------------------------------------------------------------

#[test]
fn exits_when_the_root_is_closed_and_nothing_is_left() {
    let mut rig = Rig::new();
    rig.file(ALICE, "prog", 0o755, &[1u8; 100]);
    let id = rig.open(ALICE, "prog", O_RDONLY).unwrap();
    let read = MapFlags::PROT_READ | MapFlags::MAP_PRIVATE;
    rig.call(rig.req.mmap_prep(ALICE, id, 0, 100, read))
        .unwrap();
    assert!(!rig.handler.may_exit(), "still registered");
    let root = rig.root;
    rig.close(root);
    assert!(!rig.handler.may_exit(), "a handle and a mapping are left");
    assert_eq!(
        rig.open(ALICE, "prog", O_RDONLY),
        Err(EBADF),
        "the root is gone"
    );
    // The kernel unmaps first, then closes the description the mapping held.
    assert_eq!(
        rig.call(rig.req.munmap(ALICE, id, 0, 100, MunmapFlags::empty())),
        Ok(0)
    );
    assert!(!rig.handler.may_exit(), "the handle is still open");
    rig.close(id);
    assert_eq!(rig.handler.open_handles(), 0);
    assert!(rig.handler.may_exit());
}

#[test]
fn lent_pages_alone_keep_the_daemon() {
    let mut rig = Rig::new();
    rig.file(ALICE, "f", 0o644, b"x");
    let id = rig.open(ALICE, "f", O_RDONLY).unwrap();
    let read = MapFlags::PROT_READ | MapFlags::MAP_PRIVATE;
    rig.call(rig.req.mmap_prep(ALICE, id, 0, 1, read)).unwrap();
    let root = rig.root;
    rig.close(root);
    // A close before the unmap does not happen on Redox (the mapping holds the
    // description), but the rule does not rely on that.
    rig.close(id);
    assert!(!rig.handler.may_exit(), "a page is still lent");
}

#[test]
fn closing_handles_before_the_root_does_not_end_the_scheme() {
    let mut rig = Rig::new();
    let id = rig.open(ALICE, "f", O_CREAT | O_RDWR | 0o644).unwrap();
    rig.close(id);
    assert!(!rig.handler.may_exit());
    rig.close(id);
    assert!(!rig.handler.may_exit(), "a repeated close changes nothing");
    let root = rig.root;
    rig.close(root);
    assert!(rig.handler.may_exit());
}
