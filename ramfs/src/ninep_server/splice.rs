//! Sending large Rreads by reference on Linux: the file's pages go into the unix
//! socket without being copied, and the client's `read` is the only copy of the data.
//!
//! **How.** A [`SplicingSocket`] owns the connection's socket and a pipe. An [`Output`]
//! that holds pages goes into the pipe with `vmsplice` (the pipe refers to our memory,
//! the reply's bytes and its pages, instead of copying it) and from the pipe into the
//! socket with `splice`, which moves those references into the socket's buffers
//! (Linux 6.5 and later: `MSG_SPLICE_PAGES`; before, the kernel copies at that step and
//! nothing else changes). A write of the writev path copies every byte into the
//! socket; measured with 8 connections at 16 requests each and 64 KiB to 1 MiB
//! replies, the splice path sent 1.4 to 1.5 times the bytes a second.
//!
//! **Retention.** The kernel reads our memory when the client reads the socket, which
//! may be long after `splice` returned. Until then the bytes must not change, and the
//! memory must not be freed (an allocation reusing it would show the client another
//! file's data). So the output's buffers (its bytes and its held pages, which are
//! [`crate::fs::SharedPages`] clones) are kept in `retained`, tagged with the socket
//! position their last byte went to, and let go of once the client has read past it.
//! While kept, the pages are shared, so a write to the file replaces them (copy on
//! write, `fs::pages`) and the client reads what the Rread saw.
//!
//! **How far the client has read.** `SIOCOUTQ` on a unix socket counts the memory the
//! socket's sent buffers still take: at least the bytes sent and not yet read (it also
//! counts each buffer's overhead), so `sent - outq` never overstates what was read.
//! Once every buffer is read it is zero.
//!
//! **Memory.** What is kept is bounded by the socket's send buffer (a few hundred KiB)
//! plus one output (its bound is `OUTPUT_FLUSH_AT`): a buffer is released as soon as
//! the client has read past it. When the connection ends with bytes still unread by a
//! client that is still there, the socket is shut down (the client reads what is left,
//! then the end) and goes to `lingering` with what it keeps, which lets go of each
//! buffer once the client has read it or has gone away: the memory is bounded by the
//! sockets of clients that are still there, as while their connections lasted.
//!
//! **Order.** Every byte written to the socket goes through this type, so plain writes
//! (replies without held pages) and spliced ones are counted alike in `sent`, and the
//! pipe is empty whenever a call returns without error.

use super::lingering::{self, Ended};
use super::output::{Output, Spent};
use super::PollWrite;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Rreads of at least this many bytes hold the file's pages when they go out by
/// reference: there is no copy of ours or of the kernel's to weigh against holding
/// them (`output::SHARE_MIN` is the threshold of the writev path). Measured with
/// `ninep-bench run` side by side (5 rounds, 8 KiB reads), a page against 16 KiB:
/// 1.02 at q1, 1.62 at q16, 1.18 with 8 connections at q16.
pub(super) const SHARE_MIN: usize = 4096;

/// Pipe size asked for: 256 buffers, each a page or a piece of one.
const PIPE_SIZE: i32 = 1 << 20;

/// Most slices handed to one `vmsplice`: a pipe of [`PIPE_SIZE`] holds no more.
const SLICES: usize = PIPE_SIZE as usize / 4096;

/// Spent buffers kept for reuse.
const FREE_KEPT: usize = 4;

/// What a send by reference keeps until the client has read it.
pub(super) enum Kept {
    /// An output's buffers.
    Output(Spent),
    /// What a caller of [`SplicingSocket::send_kept`] handed over.
    Other(#[allow(dead_code)] /* held only to be dropped */ Box<dyn Send>),
}

impl Kept {
    /// File pages it holds.
    fn pages(&self) -> usize {
        match self {
            Kept::Output(spent) => spent.held_pages(),
            Kept::Other(_) => 0,
        }
    }
}

/// What was sent by reference and the client may not have read, oldest first, each
/// with the socket position after its last byte.
pub(super) type Retained = VecDeque<(u64, Kept)>;

/// File pages `retained` holds.
pub(super) fn pages_of(retained: &Retained) -> usize {
    retained.iter().map(|(_, kept)| kept.pages()).sum()
}

/// Takes out of `retained`, to `done`, what lies before socket position `read`.
pub(super) fn release_before(retained: &mut Retained, read: u64, mut done: impl FnMut(Kept)) {
    while retained.front().is_some_and(|(end, _)| *end <= read) {
        if let Some((_, kept)) = retained.pop_front() {
            done(kept);
        }
    }
}

/// A connected unix socket that sends replies holding file pages by reference (see
/// the module's notes); every write of the connection goes through it.
pub struct SplicingSocket {
    socket: UnixStream,
    /// The pipe's read end (blocking) and write end.
    pipe_read: OwnedFd,
    pipe_write: OwnedFd,
    /// Bytes in the pipe, not yet in the socket.
    in_pipe: usize,
    /// Bytes written to the socket since it was made.
    sent: u64,
    /// What was sent by reference and the client may not have read (positions are
    /// values of `sent`).
    retained: Retained,
    /// Emptied buffers, for the next outputs.
    free: Vec<Spent>,
}

impl SplicingSocket {
    /// `socket` with a pipe of its own; fails if no pipe can be made.
    pub fn new(socket: UnixStream) -> io::Result<SplicingSocket> {
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
            sent: 0,
            retained: VecDeque::new(),
            free: Vec::new(),
        })
    }

    /// Pages kept for bytes the client may not have read yet.
    pub fn retained_pages(&self) -> usize {
        pages_of(&self.retained)
    }

    /// Lets go of what the client has read, and reports the pages still kept.
    pub fn release_read(&mut self) -> io::Result<usize> {
        self.release()?;
        Ok(self.retained_pages())
    }

    /// Writes `out` whole and empties it: by reference if it holds pages, else copied.
    /// `asleep` is called before a wait for a full socket and its value kept while
    /// waiting.
    pub(super) fn send_output<G>(
        &mut self,
        out: &mut Output,
        mut asleep: impl FnMut() -> G,
    ) -> io::Result<()> {
        let result = self.release().and_then(|()| {
            if out.holds_pages() {
                self.splice_all(out, &mut asleep)
            } else {
                self.drain(&mut asleep)?;
                self.copy_all(&out.bytes, &mut asleep)
            }
        });
        out.clear();
        if result.is_err() {
            // What a client that went away did not read is gone with it.
            let _ = self.release();
        }
        result
    }

    /// Sends the bytes `parts` names in `keep`, in order, by reference, then keeps
    /// `keep` until the client has read them: the client reads them from this memory
    /// after this returns, so `parts` names bytes `keep` owns (they stay where they
    /// are while the box lives, and it does not change them) or bytes that never change
    /// (a `static`'s). Waits while the socket is full.
    pub fn send_kept<K: Send + 'static>(
        &mut self,
        keep: Box<K>,
        parts: impl for<'k> FnOnce(&'k K, &mut Vec<&'k [u8]>),
    ) -> io::Result<()> {
        let mut named = Vec::new();
        parts(&keep, &mut named);
        let total = named.iter().map(|p| p.len()).sum();
        let (done, result) = match self.release() {
            Ok(()) => self.splice(total, |skip, s| fill_from(&named, skip, s), &mut || ()),
            Err(e) => (0, Err(e)),
        };
        drop(named);
        if done > 0 {
            self.keep(Kept::Other(keep));
        }
        if result.is_err() {
            let _ = self.release();
        }
        result
    }

    /// Sends every byte of `out` through the pipe; then keeps its buffers (also after
    /// an error: some of it may be in the socket).
    fn splice_all<G>(
        &mut self,
        out: &mut Output,
        asleep: &mut impl FnMut() -> G,
    ) -> io::Result<()> {
        let (done, result) = self.splice(out.len(), |skip, s| out.fill(skip, s), asleep);
        if done > 0 {
            let mut spent = self.free.pop().unwrap_or_default();
            out.hand_over(&mut spent);
            self.keep(Kept::Output(spent));
        }
        result
    }

    /// Sends `total` bytes by reference, that `fill(skip, slices)` puts into `slices`
    /// from byte `skip` on (returning how many slices it filled); returns how many
    /// went into the pipe, and whether all got to the socket.
    fn splice<'a, G>(
        &mut self,
        total: usize,
        fill: impl Fn(usize, &mut [IoSlice<'a>]) -> usize,
        asleep: &mut impl FnMut() -> G,
    ) -> (usize, io::Result<()>) {
        let mut done = 0;
        let mut result = self.drain(asleep);
        let mut slices = [IoSlice::new(&[]); SLICES];
        while result.is_ok() && done < total {
            let n = fill(done, &mut slices);
            result = self.vmsplice(&slices[..n]).and_then(|k| {
                done += k;
                self.drain(asleep)
            });
        }
        (done, result)
    }

    /// Keeps `kept` until the client has read the last byte in the pipe.
    fn keep(&mut self, kept: Kept) {
        self.retained
            .push_back((self.sent + self.in_pipe as u64, kept));
    }

    /// Puts `slices` (in order) into the empty pipe by reference; returns the bytes it
    /// took (at least one: an empty pipe takes something).
    fn vmsplice(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        loop {
            // SAFETY: `IoSlice` is ABI-compatible with `iovec` on unix, and the kernel
            // only reads the `slices.len()` iovecs; each points at memory borrowed from
            // the output for the call, which `splice_all` keeps unchanged and allocated
            // afterwards until the client has read it (see the module's notes).
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
                    self.sent += n as u64;
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

    /// Empties the pipe after the socket failed: its buffers refer to our memory, and
    /// nothing will send them now. Read out (copied, once): a pipe has no other way to
    /// drop what it holds, short of closing it.
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
                break;
            }
        }
    }

    /// Writes all of `bytes` copied, counting them: tried without waiting first (the
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
                Ok(n) => {
                    self.sent += n as u64;
                    bytes = &bytes[n..];
                }
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

    /// Lets go of the outputs the client has read past.
    fn release(&mut self) -> io::Result<()> {
        if self.retained.is_empty() {
            return Ok(());
        }
        let read = read_of(&self.socket, self.sent)?;
        let free = &mut self.free;
        release_before(&mut self.retained, read, |kept| {
            if let Kept::Output(mut spent) = kept {
                spent.clear();
                if free.len() < FREE_KEPT {
                    free.push(spent);
                }
            }
        });
        Ok(())
    }
}

/// The bytes of `parts` from byte `skip` on, as slices into `slices`; returns how
/// many were filled.
fn fill_from<'a>(parts: &[&'a [u8]], mut skip: usize, slices: &mut [IoSlice<'a>]) -> usize {
    let mut filled = 0;
    for part in parts {
        if skip >= part.len() {
            skip -= part.len();
            continue;
        }
        let Some(slot) = slices.get_mut(filled) else {
            break;
        };
        *slot = IoSlice::new(&part[skip..]);
        skip = 0;
        filled += 1;
    }
    filled
}

/// How far the client of `socket` has read, at least, when `sent` bytes were written:
/// `sent` less the memory of the buffers it has not read (see the module's notes).
pub(super) fn read_of(socket: &UnixStream, sent: u64) -> io::Result<u64> {
    Ok(sent.saturating_sub(outq(socket.as_raw_fd())?))
}

/// `ioctl(SIOCOUTQ)`: the memory the socket's unread sent buffers take. (`SIOCOUTQ` is
/// `TIOCOUTQ` in Linux's headers; the libc crate has only the latter.)
fn outq(fd: RawFd) -> io::Result<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int through the pointer, which points at `n`.
    if unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::try_from(n).unwrap_or(0))
}

impl Write for SplicingSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.drain(&mut || ())?;
        let n = self.socket.write_vectored(bufs)?;
        self.sent += n as u64;
        Ok(n)
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
        let n = self.socket.write_now_vectored(bufs)?;
        self.sent += n as u64;
        Ok(n)
    }

    fn splicing(&mut self) -> Option<&mut SplicingSocket> {
        Some(self)
    }
}

impl Drop for SplicingSocket {
    /// Hands what the client has not read yet, with the socket, to `lingering`.
    fn drop(&mut self) {
        if self.release().is_ok() && self.retained.is_empty() {
            return;
        }
        let retained = std::mem::take(&mut self.retained);
        match self.socket.try_clone() {
            Ok(socket) => lingering::keep(Ended::new(socket, self.sent, retained)),
            Err(e) => lingering::leak(retained, &e),
        }
    }
}

#[cfg(test)]
#[path = "splice_tests.rs"]
mod tests;
