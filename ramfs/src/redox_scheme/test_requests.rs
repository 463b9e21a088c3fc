//! Test support: requests built the way the Redox kernel builds them, answered through
//! `redox-scheme`'s own decoding (`Request::kind`, `CallRequest::handle_sync`).
//!
//! Each builder returns a [`Sqe`] laid out as the kernel lays it out (kernel
//! `src/scheme/user.rs`, 2026-08): buffers travel as raw pointers in `args`, the caller's
//! uid and gid in `args[5]` for regular opcodes, and the call's metadata in
//! `args[3..6]` for `StdFsCall`, which therefore carries no credentials. The borrow
//! in [`Sqe`] keeps each buffer alive until the request has been answered.

use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::size_of;

use ::redox_scheme::scheme::{SchemeState, SchemeSync};
use ::redox_scheme::{Request, RequestKind};
use syscall::dirent::{DirentHeader, DirentIter};
use syscall::flag::{EventFlags, MapFlags, MunmapFlags, StdFsCallKind};
use syscall::schemev2::{Cqe, CqeOpcode, Opcode, SqeFlags};
use syscall::{Stat, StatVfs, TimeSpec};

/// Who makes a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Caller {
    /// The superuser.
    pub const ROOT: Caller = Caller {
        pid: 1,
        uid: 0,
        gid: 0,
    };

    /// An ordinary user whose group has the same number.
    pub const fn user(uid: u32) -> Caller {
        Caller {
            pid: 100 + uid,
            uid,
            gid: uid,
        }
    }
}

/// A kernel request whose buffers are borrowed for `'a`.
#[derive(Debug, Clone, Copy)]
pub struct Sqe<'a> {
    raw: syscall::schemev2::Sqe,
    buffers: PhantomData<&'a mut [u8]>,
}

/// What the scheme answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A regular response, decoded: `Ok(value)` or `Err(errno)`.
    Regular(Result<usize, i32>),
    /// An `openat`/`dup` response for one of our own handles, with its `NewFdFlags` bits.
    Opened { id: usize, flags: u8 },
    /// A close message, which has no response.
    NoResponse,
}

/// Hands `sqe` to `scheme` exactly as a daemon's request loop does and decodes the
/// completion. Checks that the completion carries the request's tag.
pub fn dispatch<S: SchemeSync>(scheme: &mut S, state: &mut SchemeState, sqe: Sqe<'_>) -> Answer {
    let tag = sqe.raw.tag;
    let opcode = sqe.raw.opcode;
    // SAFETY: `Request` is `#[repr(transparent)]` over `Sqe` (redox-scheme 0.12
    // lib.rs), so every `Sqe` is a valid `Request`; the buffers its args point to are
    // borrowed by `sqe` and outlive this call.
    let request: Request = unsafe { std::mem::transmute(sqe.raw) };
    let response = match request.kind() {
        RequestKind::Call(call) => call.handle_sync(scheme, state),
        RequestKind::OnClose { id } => {
            scheme.on_close(id);
            return Answer::NoResponse;
        }
        _ => panic!("test built a request of opcode {opcode} that is not a call or a close"),
    };
    // SAFETY: `Response` is `#[repr(transparent)]` over `Cqe` and has no `Drop`
    // (redox-scheme 0.12 lib.rs); reading it as the `Cqe` the kernel would read is
    // what `Socket::write_response` does with its bytes.
    let cqe: Cqe = unsafe { std::mem::transmute(response) };
    assert_eq!(cqe.tag, tag, "the response answers another request");
    assert_eq!(
        cqe.flags,
        CqeOpcode::RespondRegular as u8,
        "only regular responses are expected from a file system"
    );
    let result = syscall::Error::demux(cqe.result as usize).map_err(|e| e.errno);
    if opcode == Opcode::OpenAt as u8 || opcode == Opcode::Dup as u8 {
        if let Ok(id) = result {
            return Answer::Opened {
                id,
                flags: cqe.extra_raw[0],
            };
        }
    }
    Answer::Regular(result)
}

/// Request builders, one per opcode, numbering requests with increasing tags.
/// Builders take `&self` (the tag counter is a `Cell`) so that a request can be built
/// in the argument list of a call that borrows its owner mutably.
#[derive(Debug, Default)]
pub struct Requests {
    next_tag: Cell<u32>,
}

impl Requests {
    fn call<'a>(&self, caller: Caller, opcode: Opcode, mut args: [u64; 6]) -> Sqe<'a> {
        let tag = self.next_tag.get() + 1;
        self.next_tag.set(tag);
        args[5] = u64::from(caller.uid) | (u64::from(caller.gid) << 32);
        Sqe {
            raw: syscall::schemev2::Sqe {
                opcode: opcode as u8,
                sqe_flags: SqeFlags::empty(),
                _rsvd: 0,
                tag,
                args,
                caller: u64::from(caller.pid),
            },
            buffers: PhantomData,
        }
    }

    /// `openat(dir, path, flags, fcntl_flags)`; `flags` carries the mode in its low 16 bits.
    pub fn openat<'a>(
        &self,
        caller: Caller,
        dir: usize,
        path: &'a str,
        flags: usize,
        fcntl_flags: u32,
    ) -> Sqe<'a> {
        let (ptr, len) = (path.as_ptr() as u64, path.len() as u64);
        let args = [
            dir as u64,
            ptr,
            len,
            flags as u64,
            u64::from(fcntl_flags),
            0,
        ];
        self.call(caller, Opcode::OpenAt, args)
    }

    /// `unlinkat(dir, path, flags)` as the namespace manager forwards it.
    pub fn unlinkat<'a>(&self, caller: Caller, dir: usize, path: &'a str, flags: usize) -> Sqe<'a> {
        let args = [
            dir as u64,
            path.as_ptr() as u64,
            path.len() as u64,
            flags as u64,
            0,
            0,
        ];
        self.call(caller, Opcode::UnlinkAt, args)
    }

    pub fn read<'a>(
        &self,
        caller: Caller,
        id: usize,
        buf: &'a mut [u8],
        offset: u64,
        fcntl_flags: u32,
    ) -> Sqe<'a> {
        let args = [
            id as u64,
            buf.as_mut_ptr() as u64,
            buf.len() as u64,
            offset,
            u64::from(fcntl_flags),
            0,
        ];
        self.call(caller, Opcode::Read, args)
    }

    pub fn write<'a>(
        &self,
        caller: Caller,
        id: usize,
        buf: &'a [u8],
        offset: u64,
        fcntl_flags: u32,
    ) -> Sqe<'a> {
        let args = [
            id as u64,
            buf.as_ptr() as u64,
            buf.len() as u64,
            offset,
            u64::from(fcntl_flags),
            0,
        ];
        self.call(caller, Opcode::Write, args)
    }

    pub fn fsize<'a>(&self, caller: Caller, id: usize) -> Sqe<'a> {
        self.call(caller, Opcode::Fsize, [id as u64, 0, 0, 0, 0, 0])
    }

    /// `fchmod` through its own opcode (with the caller's credentials).
    pub fn fchmod<'a>(&self, caller: Caller, id: usize, mode: u16) -> Sqe<'a> {
        self.call(
            caller,
            Opcode::Fchmod,
            [id as u64, u64::from(mode), 0, 0, 0, 0],
        )
    }

    /// `fchown` as relibc sends it (`syscall::fchown`, with the caller's credentials).
    pub fn fchown<'a>(&self, caller: Caller, id: usize, uid: u32, gid: u32) -> Sqe<'a> {
        self.call(
            caller,
            Opcode::Fchown,
            [id as u64, u64::from(uid), u64::from(gid), 0, 0, 0],
        )
    }

    pub fn fcntl<'a>(&self, caller: Caller, id: usize, cmd: usize, arg: usize) -> Sqe<'a> {
        self.call(
            caller,
            Opcode::Fcntl,
            [id as u64, cmd as u64, arg as u64, 0, 0, 0],
        )
    }

    pub fn fevent<'a>(&self, caller: Caller, id: usize, flags: EventFlags) -> Sqe<'a> {
        self.call(
            caller,
            Opcode::Fevent,
            [id as u64, flags.bits() as u64, 0, 0, 0, 0],
        )
    }

    pub fn fpath<'a>(&self, caller: Caller, id: usize, buf: &'a mut [u8]) -> Sqe<'a> {
        let args = [
            id as u64,
            buf.as_mut_ptr() as u64,
            buf.len() as u64,
            0,
            0,
            0,
        ];
        self.call(caller, Opcode::Fpath, args)
    }

    /// `frename(id, path)`: `path` is the new name relative to the scheme's root.
    pub fn frename<'a>(&self, caller: Caller, id: usize, path: &'a str) -> Sqe<'a> {
        let args = [id as u64, path.as_ptr() as u64, path.len() as u64, 0, 0, 0];
        self.call(caller, Opcode::Frename, args)
    }

    /// `fstat` through its own opcode.
    pub fn fstat<'a>(&self, caller: Caller, id: usize, stat: &'a mut Stat) -> Sqe<'a> {
        let args = [
            id as u64,
            stat as *mut Stat as u64,
            size_of::<Stat>() as u64,
            0,
            0,
            0,
        ];
        self.call(caller, Opcode::Fstat, args)
    }

    /// `fstatvfs` through its own opcode.
    pub fn fstatvfs<'a>(&self, caller: Caller, id: usize, stat: &'a mut StatVfs) -> Sqe<'a> {
        let args = [
            id as u64,
            stat as *mut StatVfs as u64,
            size_of::<StatVfs>() as u64,
            0,
            0,
            0,
        ];
        self.call(caller, Opcode::Fstatvfs, args)
    }

    pub fn fsync<'a>(&self, caller: Caller, id: usize) -> Sqe<'a> {
        self.call(caller, Opcode::Fsync, [id as u64, 0, 0, 0, 0, 0])
    }

    /// `ftruncate` through its own opcode.
    pub fn ftruncate<'a>(&self, caller: Caller, id: usize, len: u64) -> Sqe<'a> {
        self.call(caller, Opcode::Ftruncate, [id as u64, len, 0, 0, 0, 0])
    }

    /// `futimens` through its own opcode: `[atime, mtime]`.
    pub fn futimens<'a>(&self, caller: Caller, id: usize, times: &'a [TimeSpec; 2]) -> Sqe<'a> {
        let args = [
            id as u64,
            times.as_ptr() as u64,
            size_of::<[TimeSpec; 2]>() as u64,
            0,
            0,
            0,
        ];
        self.call(caller, Opcode::Futimens, args)
    }

    /// `getdents` through its own opcode, with the header size relibc uses.
    pub fn getdents<'a>(
        &self,
        caller: Caller,
        id: usize,
        buf: &'a mut [u8],
        opaque: u64,
    ) -> Sqe<'a> {
        let header = size_of::<DirentHeader>() as u64;
        let args = [
            id as u64,
            buf.as_mut_ptr() as u64,
            buf.len() as u64,
            header,
            opaque,
            0,
        ];
        self.call(caller, Opcode::Getdents, args)
    }

    /// `mmap_prep(id, offset, len, flags)` as `fmap_inner` sends it.
    pub fn mmap_prep<'a>(
        &self,
        caller: Caller,
        id: usize,
        offset: u64,
        len: usize,
        flags: MapFlags,
    ) -> Sqe<'a> {
        let args = [id as u64, len as u64, flags.bits() as u64, offset, 0, 0];
        self.call(caller, Opcode::MmapPrep, args)
    }

    /// `munmap(id, offset, len, flags)` as `UnmapResult::unmap` sends it.
    pub fn munmap<'a>(
        &self,
        caller: Caller,
        id: usize,
        offset: u64,
        len: usize,
        flags: MunmapFlags,
    ) -> Sqe<'a> {
        let args = [id as u64, len as u64, flags.bits() as u64, offset, 0, 0];
        self.call(caller, Opcode::Munmap, args)
    }

    /// A standard file system call as relibc makes it for fchmod, getdents, fstat,
    /// fstatvfs, fsync, ftruncate and futimens: metadata `[kind, arg1, arg2]` in
    /// `args[3..6]`, so no credentials reach the scheme (the `caller` only sets the pid).
    pub fn std_fs_call<'a>(
        &self,
        caller: Caller,
        id: usize,
        kind: StdFsCallKind,
        payload: &'a mut [u8],
        arg1: u64,
        arg2: u64,
    ) -> Sqe<'a> {
        let mut sqe = self.call(caller, Opcode::StdFsCall, [0; 6]);
        sqe.raw.args = [
            id as u64,
            payload.as_mut_ptr() as u64,
            payload.len() as u64,
            kind as u64,
            arg1,
            arg2,
        ];
        sqe
    }

    /// `getdents` as relibc makes it: a standard file system call (no credentials)
    /// with `arg1` = the opaque offset and `arg2` = the header size.
    pub fn std_getdents<'a>(
        &self,
        caller: Caller,
        id: usize,
        buf: &'a mut [u8],
        opaque: u64,
    ) -> Sqe<'a> {
        let header = size_of::<DirentHeader>() as u64;
        self.std_fs_call(caller, id, StdFsCallKind::Getdents, buf, opaque, header)
    }

    /// `frenameat` as a standard file system call on two handles (`MULTIPLE_IDS`):
    /// the kernel puts the second handle in `args[5]` and the flags in `arg1`.
    pub fn std_frenameat<'a>(
        &self,
        caller: Caller,
        old_dir: usize,
        new_dir: usize,
        old_nul_new: &'a mut [u8],
        flags: u64,
    ) -> Sqe<'a> {
        let mut sqe = self.call(caller, Opcode::StdFsCall, [0; 6]);
        sqe.raw.sqe_flags = SqeFlags::MULTIPLE_IDS;
        sqe.raw.args = [
            old_dir as u64,
            old_nul_new.as_mut_ptr() as u64,
            old_nul_new.len() as u64,
            StdFsCallKind::Frenameat as u64,
            flags,
            new_dir as u64,
        ];
        sqe
    }

    /// The kernel's note that the last reference to handle `id` is gone.
    pub fn close<'a>(&self, id: usize) -> Sqe<'a> {
        Sqe {
            raw: syscall::schemev2::Sqe {
                opcode: Opcode::CloseMsg as u8,
                args: [id as u64, 0, 0, 0, 0, 0],
                ..Default::default()
            },
            buffers: PhantomData,
        }
    }
}

/// The `(name, inode, next_opaque_id, kind)` of each entry in the first `len` bytes of
/// a getdents buffer.
pub fn dirents(buf: &[u8], len: usize) -> Vec<(String, u64, u64, u8)> {
    DirentIter::new(&buf[..len])
        .map(|entry| {
            let (header, name) = entry.expect("the scheme wrote a well-formed entry");
            // Records are padded to 8 bytes with NULs after the name's own NUL.
            let name = name.split(|&b| b == 0).next().unwrap_or_default();
            let name = String::from_utf8(name.to_vec()).expect("entry names are UTF-8");
            (
                name,
                { header.inode },
                { header.next_opaque_id },
                header.kind,
            )
        })
        .collect()
}

/// A `StdFsCall` payload holding a `T`, as relibc passes fstat/fstatvfs buffers.
pub fn as_payload<T>(value: &mut T) -> &mut [u8] {
    // SAFETY: `value` is a live, exclusively borrowed `T`; its bytes are viewed as a
    // byte slice of exactly its size for as long as that borrow, and the scheme writes
    // a whole `T` into it (Stat and StatVfs are plain old data).
    unsafe { std::slice::from_raw_parts_mut((value as *mut T).cast::<u8>(), size_of::<T>()) }
}
