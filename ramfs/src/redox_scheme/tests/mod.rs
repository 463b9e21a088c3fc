//! The scheme handler, driven by kernel-shaped requests through redox-scheme's own
//! decoding ([`crate::redox_scheme::test_requests`]): every supported call, the
//! permission rules, `mmap_prep` alignment and stability, and the exit rule, one topic a
//! module. This module holds the rig they share.

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

use crate::fs::{Clock, Config, Fs, NewKind, NewNode, PAGE_SIZE};
use crate::redox_scheme::handler::{SchemeHandler, UTIME_NOW, UTIME_OMIT};
use crate::redox_scheme::test_requests::{
    as_payload, dirents, dispatch, Answer, Caller, Requests, Sqe,
};

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

mod attrs;
mod calls;
mod dirs;
mod exit;
mod mappings;
mod open;
mod perm;
