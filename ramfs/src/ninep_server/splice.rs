//! Sending large Rreads by reference on Linux: the file's pages go into the unix
//! socket without being copied, and the client's `read` is the only copy of the data.
//!
//! **How.** A [`SplicingSocket`] owns the connection's socket and a pipe. An [`Output`]
//! that holds pages goes into the pipe with `vmsplice` (the pipe refers to our memory
//! instead of copying it) and from the pipe into the socket with `splice`, which moves
//! those references into the socket's buffers. A write of the writev path copies every
//! byte into the socket; measured with 8 connections at 16 requests each and 64 KiB to
//! 1 MiB replies, the splice path sent 1.4 to 1.5 times the bytes a second.
//!
//! **What the kernel refers to never changes.** The kernel reads our memory when the
//! client reads, and nothing tells us when the last reference is gone: the client can
//! splice the bytes on from its socket into a pipe of its own (Go's `io.Copy` from a
//! unix socket to TCP does), which takes references to the same physical pages and
//! leaves the socket's accounting as if they were read. So nothing sent by reference is
//! written again or freed while our mapping still has its physical pages:
//! - the file's runs are *exported* first ([`crate::fs::SharedPages::export`]): a
//!   later write copies them, and their memory is dropped from our mapping
//!   (`MADV_DONTNEED`) before the allocator has it back;
//! - the output's bytes (the replies' headers, and what was copied into them) are
//!   copied into an [`ExportArena`], whose pages are dropped the same way before it is
//!   filled again.
//!
//! Whoever refers to the old physical pages keeps the bytes the Rread saw; our next use
//! of that memory faults in fresh pages. Nothing has to wait for the client, and a
//! connection that ends before its client read keeps nothing. The rule is one of bytes,
//! not of whole pages: a pipe or socket buffer shows only its own offset and length of a
//! page, so the rest of a page may still be written (the arena fills a page on after
//! part of it was sent; `static` data may share pages with other objects). Where
//! `MADV_DONTNEED` of one page cannot work, a heap on hugetlb pages, nothing is sent by
//! reference ([`SplicingSocket::new`] refuses).
//!
//! **Order.** Every byte written to the socket goes through this type, so plain writes
//! (replies without held pages) and spliced ones leave in order, and the pipe is empty
//! whenever a call returns without error. `splice` into a socket whose client went
//! away raises `SIGPIPE`, which Rust programs ignore from the start (an embedder that
//! does not would die of it).

use std::io::{self, IoSlice, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use super::export_arena::ExportArena;
use super::output::{fill_interleaved, Output, Sharing};
use super::PollWrite;

/// When Rreads hold the file's pages when they go out by reference: from a page on,
/// and every piece of a page, since there is no copy of ours or of the kernel's to
/// weigh against holding them (`output::WRITEV_SHARING` is the writev path's), and a
/// copied byte would go through the arena, whose pages are faulted in afresh each time
/// it is filled. Measured with `ninep-bench run` side by side (5 rounds, 8 KiB reads):
/// Rreads from a page on against from 16 KiB, 1.02 at q1, 1.62 at q16, 1.18 with 8
/// connections at q16.
pub(super) const SPLICE_SHARING: Sharing = Sharing {
    read_min: 4096,
    piece_min: 1,
};

/// Pipe size asked for: 256 buffers, each a page or a piece of one.
const PIPE_SIZE: i32 = 1 << 20;

/// Most slices handed to one `vmsplice`: a pipe of [`PIPE_SIZE`] holds no more.
const SLICES: usize = PIPE_SIZE as usize / 4096;

/// A connected unix socket that sends replies holding file pages by reference (see
/// the module's notes); every write of the connection goes through it.
pub struct SplicingSocket {
    socket: UnixStream,
    /// The pipe's read end (blocking) and write end.
    pipe_read: OwnedFd,
    pipe_write: OwnedFd,
    /// Bytes in the pipe, not yet in the socket.
    in_pipe: usize,
    /// Where the bytes of outputs sent by reference are copied.
    arena: ExportArena,
    /// The pipe could not be emptied after the socket failed: nothing more is sent.
    broken: bool,
}

impl SplicingSocket {
    /// `socket` with a pipe of its own; fails if no pipe can be made, or if the heap
    /// may be on hugetlb pages (mimalloc's large or reserved OS pages, glibc's
    /// `malloc.hugetlb=2`).
    pub fn new(socket: UnixStream) -> io::Result<SplicingSocket> {
        if let Some(var) = huge_page_heap(|name| std::env::var(name).ok()) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{var} may put the heap on huge pages, where a sent page cannot be dropped from our mapping alone"),
            ));
        }
        let mut fds = [0; 2];
        // SAFETY: `fds` is a writable array of two descriptors, as pipe2 expects.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
        let (pipe_read, pipe_write) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A smaller pipe (the limit of /proc/sys/fs/pipe-max-size) only means more
        // rounds a reply.
        // SAFETY: F_SETPIPE_SZ on our pipe's descriptor with an integer argument.
        unsafe { libc::fcntl(pipe_write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
        Ok(SplicingSocket {
            socket,
            pipe_read,
            pipe_write,
            in_pipe: 0,
            arena: ExportArena::default(),
            broken: false,
        })
    }

    /// Writes `out` whole and empties it (also on error: the connection is ending): by
    /// reference if it holds pages, else copied. `asleep` is called before a wait for
    /// a full socket and its value kept while waiting.
    pub(super) fn send_output<G>(
        &mut self,
        out: &mut Output,
        mut asleep: impl FnMut() -> G,
    ) -> io::Result<()> {
        let result = if out.holds_pages() {
            self.splice_output(out, &mut asleep)
        } else {
            self.drain(&mut asleep)
                .and_then(|()| self.copy_all(&out.bytes, &mut asleep))
        };
        out.clear();
        result
    }

    /// Sends `bytes` with each of `inserts` placed before `bytes[at..]` (in order of
    /// their positions), by reference: `bytes` through the arena, the inserts as they
    /// are, which is why they are `static` (they never change). Waits while the socket
    /// is full.
    pub fn send_by_reference(
        &mut self,
        bytes: &[u8],
        inserts: &[(usize, &'static [u8])],
    ) -> io::Result<()> {
        let total = bytes.len() + inserts.iter().map(|(_, s)| s.len()).sum::<usize>();
        let mut arena = std::mem::take(&mut self.arena);
        let result = arena.copy_in(bytes).and_then(|staged| {
            let parts = || inserts.iter().map(|&(at, s)| (at, s));
            self.splice(
                total,
                |skip, slices| fill_interleaved(staged, parts(), skip, slices),
                &mut || (),
            )
        });
        self.arena = arena;
        result
    }

    /// Sends every byte of `out` through the pipe: its held runs exported, its bytes
    /// copied into the arena.
    fn splice_output<G>(&mut self, out: &Output, asleep: &mut impl FnMut() -> G) -> io::Result<()> {
        out.export_pages();
        let mut arena = std::mem::take(&mut self.arena);
        let result = arena.copy_in(&out.bytes).and_then(|staged| {
            self.splice(out.len(), |skip, s| out.fill_with(staged, skip, s), asleep)
        });
        self.arena = arena;
        result
    }

    /// Sends `total` bytes by reference, that `fill(skip, slices)` puts into `slices`
    /// from byte `skip` on (returning how many slices it filled).
    fn splice<'a, G>(
        &mut self,
        total: usize,
        fill: impl Fn(usize, &mut [IoSlice<'a>]) -> usize,
        asleep: &mut impl FnMut() -> G,
    ) -> io::Result<()> {
        let mut done = 0;
        self.drain(asleep)?;
        let mut slices = [IoSlice::new(&[]); SLICES];
        while done < total {
            let n = fill(done, &mut slices);
            done += self.vmsplice(&slices[..n])?;
            self.drain(asleep)?;
        }
        Ok(())
    }

    /// Puts `slices` (in order) into the empty pipe by reference; returns the bytes it
    /// took (at least one: an empty pipe takes something).
    fn vmsplice(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        loop {
            // SAFETY: `IoSlice` is ABI-compatible with `iovec` on unix, and the kernel
            // only reads the `slices.len()` iovecs, each borrowed for the call. The
            // references to their pages that the kernel keeps afterwards are sound
            // because that memory is exported runs, an arena's or `static` (see the
            // module's notes): none of it is written again while mapped to them.
            // SPLICE_F_NONBLOCK: a full pipe is an error, not a wait.
            let n = unsafe {
                libc::vmsplice(
                    self.pipe_write.as_raw_fd(),
                    slices.as_ptr().cast::<libc::iovec>(),
                    slices.len(),
                    libc::SPLICE_F_NONBLOCK,
                )
            };
            if n > 0 {
                // A count of bytes the slices hold, so it fits.
                self.in_pipe += n as usize;
                return Ok(n as usize);
            }
            let e = if n == 0 {
                io::ErrorKind::WriteZero.into()
            } else {
                io::Error::last_os_error()
            };
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Moves everything in the pipe into the socket, waiting while it is full.
    fn drain<G>(&mut self, asleep: &mut impl FnMut() -> G) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other("a splice pipe could not be emptied"));
        }
        while self.in_pipe > 0 {
            let _asleep = (!self.writable()).then(&mut *asleep);
            // SAFETY: both descriptors are ours and open; no offsets (a pipe and a
            // socket have none). The socket blocks until it takes something.
            let n = unsafe {
                libc::splice(
                    self.pipe_read.as_raw_fd(),
                    std::ptr::null_mut(),
                    self.socket.as_raw_fd(),
                    std::ptr::null_mut(),
                    self.in_pipe,
                    0,
                )
            };
            let e = match n {
                0 => io::ErrorKind::WriteZero.into(),
                n if n > 0 => {
                    self.in_pipe -= n as usize;
                    continue;
                }
                _ => io::Error::last_os_error(),
            };
            if e.kind() != io::ErrorKind::Interrupted {
                self.discard_pipe();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Empties the pipe after the socket failed, so that what it holds is not sent
    /// after later bytes. Read out (copied, once); if that fails the socket is broken
    /// for good.
    fn discard_pipe(&mut self) {
        let mut scratch = [0u8; 16 * 1024];
        while self.in_pipe > 0 {
            let want = self.in_pipe.min(scratch.len());
            // SAFETY: reads at most `want` bytes into `scratch`, which is writable for
            // that many; the pipe holds at least `in_pipe` bytes, so this never waits.
            let n = unsafe {
                libc::read(
                    self.pipe_read.as_raw_fd(),
                    scratch.as_mut_ptr().cast(),
                    want,
                )
            };
            if n > 0 {
                self.in_pipe -= n as usize;
            } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                tracing::error!("cannot empty a splice pipe: {}", io::Error::last_os_error());
                self.broken = true;
                break;
            }
        }
    }

    /// Writes all of `bytes` copied: tried without waiting first (the
    /// common case, and no `poll` for it), then waiting, asleep.
    fn copy_all<G>(&mut self, mut bytes: &[u8], asleep: &mut impl FnMut() -> G) -> io::Result<()> {
        let mut _asleep = None;
        while !bytes.is_empty() {
            let written = if _asleep.is_none() {
                self.socket.write_now_vectored(&[IoSlice::new(bytes)])
            } else {
                self.socket.write(bytes)
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => _asleep = Some(asleep()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// True if the socket takes bytes now without waiting.
    fn writable(&self) -> bool {
        let mut fd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        let n = unsafe { libc::poll(&mut fd, 1, 0) };
        n == 1 && fd.revents & libc::POLLOUT != 0
    }
}

/// The environment variable (looked up with `var`) that may put the heap on hugetlb
/// pages, if one is set: mimalloc's large or reserved huge OS pages, glibc's
/// `malloc.hugetlb=2`. There `MADV_DONTNEED` of a 4 KiB page of an exported run drops
/// nothing (the kernel rounds to the huge page), so the run's memory could be reused
/// while a client still refers to it. Transparent huge pages are not such a case: the
/// kernel splits them.
fn huge_page_heap(var: impl Fn(&str) -> Option<String>) -> Option<&'static str> {
    let on = |value: &str| !matches!(value.trim(), "" | "0" | "false" | "off" | "no");
    let mimalloc = [
        "MIMALLOC_ALLOW_LARGE_OS_PAGES",
        "MIMALLOC_LARGE_OS_PAGES",
        "MIMALLOC_RESERVE_HUGE_OS_PAGES",
        "MIMALLOC_RESERVE_HUGE_OS_PAGES_AT",
    ];
    let set = mimalloc
        .into_iter()
        .find(|name| var(name).is_some_and(|v| on(&v)));
    let glibc = || {
        var("GLIBC_TUNABLES")
            .is_some_and(|t| t.split(':').any(|kv| kv.trim() == "glibc.malloc.hugetlb=2"))
            .then_some("GLIBC_TUNABLES")
    };
    set.or_else(glibc)
}

impl Write for SplicingSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.drain(&mut || ())?;
        self.socket.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PollWrite for SplicingSocket {
    fn write_now_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.in_pipe > 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.socket.write_now_vectored(bufs)
    }

    fn splicing(&mut self) -> Option<&mut SplicingSocket> {
        Some(self)
    }
}

#[cfg(test)]
#[path = "splice_tests.rs"]
mod tests;
