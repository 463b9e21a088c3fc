//! Transports over byte streams: unix sockets, TCP, a child's stdin/stdout.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ninep::{HEADER_LEN, MAX_MSIZE};

use super::inbox::{Bound, Inbox};
use crate::error::TransportError;
use crate::rendez::Interrupt;
use crate::transport::Transport;

type Shutter = Box<dyn Fn() + Send + Sync>;

/// How much a stream transport reads ahead of its receivers: beyond this the
/// background thread stops reading the stream, so a server that sends what nobody
/// asked for (or answers while nobody waits) blocks on its writes instead of growing
/// our memory. Replies of requests in flight are received as they come, so a bound
/// of a few dozen messages costs a working server nothing.
const READ_AHEAD: Bound = Bound {
    msgs: 64,
    bytes: 4 << 20,
};

/// A [`Transport`] over a byte stream.
///
/// A background thread reads the stream and frames it into whole messages (it
/// refuses a size field below 7 or above 1 MiB: the framing is then lost), holding at
/// most 64 messages or 4 MiB (plus one message) that nobody has received yet.
/// Writers take turns on the write half; that lock belongs to the wire and is the
/// only lock held while writing.
pub struct StreamTransport {
    writer: Mutex<Option<Box<dyn Write + Send>>>,
    inbox: Arc<Inbox>,
    /// Unblocks a reader or writer stuck in the operating system (socket shutdown).
    shutter: Option<Shutter>,
}

impl StreamTransport {
    /// A transport over `reader` and `writer`, the two halves of one connection.
    /// `shutter`, if given, must make blocked reads and writes on them return (e.g.
    /// `shutdown(2)`) without touching the writer; without one, closing drops the
    /// write half, which waits for a send in progress to finish.
    pub fn new(
        reader: impl Read + Send + 'static,
        writer: impl Write + Send + 'static,
        shutter: Option<Shutter>,
    ) -> io::Result<StreamTransport> {
        let inbox = Arc::new(Inbox::bounded(READ_AHEAD));
        let frames = inbox.clone();
        std::thread::Builder::new()
            .name("mnt-stream-reader".into())
            .spawn(move || read_frames(reader, &frames))?;
        Ok(StreamTransport {
            writer: Mutex::new(Some(Box::new(writer))),
            inbox,
            shutter,
        })
    }

    /// Connects to a 9P server listening on the unix socket at `path`.
    pub fn unix(path: impl AsRef<Path>) -> io::Result<StreamTransport> {
        let s = UnixStream::connect(path)?;
        let (r, w, shut) = (s.try_clone()?, s.try_clone()?, s);
        Self::new(
            r,
            w,
            Some(Box::new(move || {
                // Already shut down or disconnected: nothing more to do.
                let _ = shut.shutdown(Shutdown::Both);
            })),
        )
    }

    /// Connects to a 9P server over TCP (meant for loopback).
    pub fn tcp(addr: impl ToSocketAddrs) -> io::Result<StreamTransport> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        let (r, w, shut) = (s.try_clone()?, s.try_clone()?, s);
        Self::new(
            r,
            w,
            Some(Box::new(move || {
                let _ = shut.shutdown(Shutdown::Both);
            })),
        )
    }

    /// Starts `cmd` as a 9P server speaking on its stdin and stdout (stderr is
    /// inherited). Closing the transport shuts the connection down: the child reads
    /// end of file.
    ///
    /// The child's stdin and stdout are one end of a unix socket pair, not pipes: a
    /// socket can be shut down while a writer is blocked on it, which is how `close`
    /// makes a blocked `send` return without waiting for it (a pipe's write end can
    /// only be closed by dropping it, and the blocked writer holds it).
    pub fn child(cmd: &mut Command) -> io::Result<(StreamTransport, ChildProcess)> {
        let (ours, theirs) = UnixStream::pair()?;
        let stdin = Stdio::from(OwnedFd::from(theirs.try_clone()?));
        let stdout = Stdio::from(OwnedFd::from(theirs));
        let spawned = cmd.stdin(stdin).stdout(stdout).spawn();
        // The command keeps what it was given for another spawn: take the child's end
        // back from it, or we would never read end of file when the child exits.
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let child = spawned?;
        let proc = ChildProcess {
            id: child.id(),
            child: Mutex::new(child),
        };
        let (r, w, shut) = (ours.try_clone()?, ours.try_clone()?, ours);
        let transport = Self::new(
            r,
            w,
            Some(Box::new(move || {
                let _ = shut.shutdown(Shutdown::Both);
            })),
        )?;
        Ok((transport, proc))
    }

    fn writer(&self) -> MutexGuard<'_, Option<Box<dyn Write + Send>>> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The framing loop of the background thread.
fn read_frames(mut r: impl Read, inbox: &Inbox) {
    loop {
        let mut size = [0u8; 4];
        match read_full(&mut r, &mut size) {
            Ok(true) => {}
            Ok(false) => return inbox.finish(TransportError::Eof),
            Err(e) => return inbox.finish(io_error(&e)),
        }
        let n = u32::from_le_bytes(size);
        if (n as usize) < HEADER_LEN || n > MAX_MSIZE {
            log::warn!("mnt: stream message size {n}: framing lost");
            return inbox.finish(TransportError::FrameSize(n));
        }
        let mut msg = vec![0u8; n as usize];
        msg[..4].copy_from_slice(&size);
        match read_full(&mut r, &mut msg[4..]) {
            Ok(true) => {}
            // End of file inside a message.
            Ok(false) => return inbox.finish(TransportError::Eof),
            Err(e) => return inbox.finish(io_error(&e)),
        }
        if inbox.push_when_room(msg).is_err() {
            // Closed by our side: nobody will read.
            return;
        }
    }
}

/// Fills `buf`; `Ok(false)` at end of file (before or inside `buf`).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Writes every byte of `parts` with vectored writes (the standard library's
/// `write_all_vectored` is not stable).
fn write_all_parts(w: &mut dyn Write, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts
        .iter()
        .filter(|part| !part.is_empty())
        .map(|part| IoSlice::new(part))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match w.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn io_error(e: &io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset => TransportError::Eof,
        _ => TransportError::Io(e.raw_os_error()),
    }
}

impl Transport for StreamTransport {
    fn send(&self, msg: &[u8]) -> Result<(), TransportError> {
        let mut w = self.writer();
        let Some(w) = w.as_mut() else {
            return Err(TransportError::Closed);
        };
        w.write_all(msg)
            .and_then(|()| w.flush())
            .map_err(|e| io_error(&e))
    }

    /// The parts go out with vectored writes (one `writev` each, as many as the socket
    /// needs), holding the write half throughout, so they are one message on the wire
    /// and no byte of them is copied here. A message is at most 1 MiB, so a `Twrite` of
    /// lent pages is at most 258 parts (header, 256 pages, a partial one), well within
    /// the 1024 slices a `writev` takes (`IOV_MAX`).
    fn send_parts(&self, parts: &[&[u8]]) -> Result<(), TransportError> {
        let mut w = self.writer();
        let Some(w) = w.as_mut() else {
            return Err(TransportError::Closed);
        };
        write_all_parts(w, parts)
            .and_then(|()| w.flush())
            .map_err(|e| io_error(&e))
    }

    fn recv(&self, intr: &Interrupt) -> Result<Vec<u8>, TransportError> {
        self.inbox.recv(intr)
    }

    fn close(&self) {
        if let Some(shut) = &self.shutter {
            shut();
        }
        // Dropping the write half is what a pipe's reader sees as end of file.
        self.writer().take();
        self.inbox.abort(TransportError::Closed);
    }
}

impl Drop for StreamTransport {
    fn drop(&mut self) {
        self.close();
    }
}

/// A server started by [`StreamTransport::child`]. Dropping it kills the process if
/// it is still running, so keep it as long as the mount.
pub struct ChildProcess {
    id: u32,
    child: Mutex<Child>,
}

impl ChildProcess {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.id
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `timeout` for the process to exit; `None` if it still runs.
    pub fn wait_timeout(&self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child().try_wait()? {
                return Ok(Some(st));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the process and reaps it.
    pub fn kill(&self) -> io::Result<()> {
        let mut c = self.child();
        if c.try_wait()?.is_none() {
            c.kill()?;
        }
        c.wait().map(|_| ())
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Err(e) = self.kill() {
            log::warn!("mnt: could not kill server process {}: {e}", self.id);
        }
    }
}
