//! The raw server (`ninep-bench raw-server`): the limit a 9P server could reach over
//! the bench's transport, measured in the same run as the real servers.
//!
//! It answers every request at once with a well-formed reply of the size a file server
//! would send ([`answer`]: an `Rread` of the count asked, an `Rwrite` of the count
//! given, an `Rwalk` of one qid a name, an `Rgetattr`, an `Rstat`...) and does no file
//! system work: no fid table, no tree, no file data. Its connection loop is the one a
//! good server has, ramfs's: read what the socket has, answer every whole message in
//! order, write the replies together when the input runs dry (or 2 MiB of them have
//! piled up). One thread serves each connection and the connections share nothing, so
//! it has no server-wide lock either. It waits for each request as ramfs does too
//! (`ramfs::ninep_server::Polling`: a short adaptive spin on the socket before it
//! sleeps), since with one request in flight how a server waits decides most of its
//! latency on a virtual machine.
//!
//! Replies are encoded by `ninep::encode`, except that `Rread` data is not copied into
//! the reply: its header is `ninep`'s encoding of an `Rread` with the count patched in,
//! and the data goes to the socket from one buffer of pattern bytes in the same
//! `writev` as the headers around it; on a unix socket on Linux, by reference instead
//! (`ramfs::ninep_server::SplicingSocket`: `vmsplice` and `splice`), as ramfs sends its
//! pages, so that the baseline stays the limit of the transport. `Tread` and `Twrite` are read from their fixed
//! headers (no copy of a `Twrite`'s data); every other request is decoded by
//! `ninep::decode`. A badly framed message ends the connection; a well-framed one that
//! does not decode is answered with an error on its tag, as ramfs does.

pub mod answer;

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::thread;

use ninep::{encode, mtype, peek_size, Fcall, Msg, HEADER_LEN, MAX_MSIZE, NOTAG};
#[cfg(target_os = "linux")]
use ramfs::ninep_server::SplicingSocket;
use ramfs::ninep_server::{Polling, Spinners, DEFAULT_POLL};
use std::os::unix::net::UnixStream;
use tracing::{debug, info};

use super::addr::Addr;
use super::workload::pattern;
use answer::{Answer, Session};

/// Bytes asked of the socket in one read, at least.
const READ_CHUNK: usize = 64 * 1024;
/// The input buffer: room for a whole largest message and many small ones, so the
/// unanswered tail moves to the front only now and then.
const INPUT_BUFFER: usize = 4 * MAX_MSIZE as usize;
/// Replies (headers and data) are written once this many bytes have piled up, so a
/// client pipelining large reads cannot make the server buffer them all (ramfs's
/// bound).
const OUTPUT_FLUSH_AT: usize = 2 * MAX_MSIZE as usize;
/// Slices of one `writev`; Linux takes at most 1024.
const MAX_SLICES: usize = 512;
/// Bytes of a `Tread`: size, type, tag, fid, offset, count.
const TREAD_LEN: usize = HEADER_LEN + 4 + 8 + 4;
/// Bytes of a `Twrite` before its data.
const TWRITE_HEADER_LEN: usize = TREAD_LEN;

/// Why `raw-server` could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: io::Error },
    #[error("{0} exists and is not a socket; not replacing it")]
    NotASocket(String),
    #[error("a server is already listening on {0}")]
    InUse(String),
    #[error("accepting a connection: {0}")]
    Accept(io::Error),
}

/// Where the raw server listens.
pub enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    /// Listens on `addr`; a unix socket left behind by a server that is gone is
    /// replaced, a live one or any other file is not.
    pub fn bind(addr: &Addr) -> Result<Listener, ServeError> {
        let listen_err = |source| ServeError::Listen {
            addr: addr.to_string(),
            source,
        };
        match addr {
            Addr::Unix(path) => {
                remove_stale_socket(path)?;
                UnixListener::bind(path)
                    .map(Listener::Unix)
                    .map_err(listen_err)
            }
            Addr::Tcp(hostport) => TcpListener::bind(hostport.as_str())
                .map(Listener::Tcp)
                .map_err(listen_err),
        }
    }

    /// Where it listens (for `tcp:HOST:0`, the port the system chose).
    pub fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Listener::Unix(l) => {
                let addr = l.local_addr()?;
                let path = addr
                    .as_pathname()
                    .ok_or_else(|| io::Error::other("an unnamed unix socket"))?;
                Ok(Addr::Unix(path.to_path_buf()))
            }
            Listener::Tcp(l) => Ok(Addr::Tcp(l.local_addr()?.to_string())),
        }
    }

    /// Serves every connection on a thread of its own, until accepting fails 100
    /// times in a row (one failure, out of descriptors for a moment, is waited out).
    pub fn serve(self, max_msize: u32) -> ServeError {
        const FAILURES_IN_A_ROW: u32 = 100;
        let mut next = 0u64;
        let mut failures = 0;
        let spinners = Arc::new(Spinners::for_this_machine());
        loop {
            let accepted = match &self {
                Listener::Unix(l) => l.accept().map(|(s, _)| Conn::Unix(s)),
                Listener::Tcp(l) => l.accept().and_then(|(s, _)| {
                    s.set_nodelay(true)?;
                    Ok(Conn::Tcp(s))
                }),
            };
            let conn = match accepted {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    failures += 1;
                    if failures >= FAILURES_IN_A_ROW {
                        return ServeError::Accept(e);
                    }
                    info!("accept: {e}");
                    thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
            };
            failures = 0;
            next += 1;
            let id = next;
            let spinners = Arc::clone(&spinners);
            let spawned = thread::Builder::new()
                .name(format!("raw-{id}"))
                .spawn(move || {
                    // Waits for each request as ramfs does, spinning briefly before it
                    // sleeps, so that it stays the limit ramfs is measured against.
                    let end = match conn {
                        Conn::Unix(s) => match s.try_clone() {
                            Ok(r) => {
                                serve_unix(Polling::new(r, DEFAULT_POLL, spinners), s, max_msize)
                            }
                            Err(e) => ConnEnd::Io(e),
                        },
                        Conn::Tcp(s) => match s.try_clone() {
                            Ok(r) => {
                                serve_conn(Polling::new(r, DEFAULT_POLL, spinners), &s, max_msize)
                            }
                            Err(e) => ConnEnd::Io(e),
                        },
                    };
                    debug!("connection {id}: {end}");
                });
            if let Err(e) = spawned {
                // The connection is dropped (closed); the client sees it go.
                info!("connection {id}: no thread for it: {e}");
            }
        }
    }
}

enum Conn {
    Unix(std::os::unix::net::UnixStream),
    Tcp(std::net::TcpStream),
}

fn remove_stale_socket(path: &Path) -> Result<(), ServeError> {
    let shown = || path.display().to_string();
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(ServeError::NotASocket(shown()));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ServeError::InUse(shown()));
    }
    std::fs::remove_file(path).map_err(|source| ServeError::Listen {
        addr: format!("unix:{}", shown()),
        source,
    })
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnEnd {
    #[error("closed by the client")]
    Eof,
    #[error("message of {size} bytes outside 7..={msize}: connection closed")]
    BadSize { size: u32, msize: u32 },
    #[error("badly framed message: {0}")]
    Framing(ninep::DecodeError),
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// Serves one connection until the client goes or breaks the framing.
pub fn serve_conn<R: Read, W: Write>(reader: R, writer: W, max_msize: u32) -> ConnEnd {
    serve_sink(reader, Sink::Plain(writer), max_msize)
}

/// [`serve_conn`] on a unix socket: on Linux the `Rread` data goes out by reference
/// (`ramfs::ninep_server::SplicingSocket`), as ramfs's pages do, so the baseline stays
/// the limit of the transport.
fn serve_unix<R: Read>(reader: R, socket: UnixStream, max_msize: u32) -> ConnEnd {
    #[cfg(target_os = "linux")]
    match socket.try_clone().and_then(SplicingSocket::new) {
        Ok(spliced) => return serve_sink(reader, Sink::<UnixStream>::Spliced(spliced), max_msize),
        Err(e) => info!("replies are copied, not sent by reference: {e}"),
    }
    serve_sink(reader, Sink::Plain(socket), max_msize)
}

/// Where a connection's replies go: any writer, copied; or a socket that sends the
/// `Rread` data by reference.
enum Sink<W> {
    Plain(W),
    #[cfg(target_os = "linux")]
    Spliced(SplicingSocket),
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            #[cfg(target_os = "linux")]
            Sink::Spliced(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write_vectored(bufs),
            #[cfg(target_os = "linux")]
            Sink::Spliced(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            #[cfg(target_os = "linux")]
            Sink::Spliced(s) => s.flush(),
        }
    }
}

fn serve_sink<R: Read, W: Write>(mut reader: R, mut writer: Sink<W>, max_msize: u32) -> ConnEnd {
    let mut session = Session::new(max_msize);
    let mut out = Replies::new();
    let mut input = vec![0u8; INPUT_BUFFER];
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        // Answer every whole message there is.
        while let Some(size) = peek_size(&input[start..end]) {
            let msize = session.msize();
            if (size as usize) < HEADER_LEN || size > msize {
                let _ = out.write_to(&mut writer);
                return ConnEnd::BadSize { size, msize };
            }
            let Some(msg) = input[start..end].get(..size as usize) else {
                break;
            };
            if let Err(e) = answer_bytes(&mut session, msg, &mut out) {
                let _ = out.write_to(&mut writer);
                return ConnEnd::Framing(e);
            }
            start += size as usize;
            if out.len() >= OUTPUT_FLUSH_AT {
                if let Err(e) = out.write_to(&mut writer) {
                    return gone_or(e);
                }
            }
        }
        // The input ran dry: the replies go out together.
        if let Err(e) = out.write_to(&mut writer) {
            return gone_or(e);
        }
        if start == end {
            (start, end) = (0, 0);
        }
        let wanted = peek_size(&input[start..end]).map_or(0, |s| s as usize);
        let room = READ_CHUNK.max(wanted.saturating_sub(end - start));
        if input.len() - end < room {
            // Only the unanswered tail moves: less than one message.
            input.copy_within(start..end, 0);
            (start, end) = (0, end - start);
            if input.len() - end < room {
                input.resize(end + room, 0);
            }
        }
        match reader.read(&mut input[end..]) {
            Ok(0) => return ConnEnd::Eof,
            Ok(n) => end += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return gone_or(e),
        }
    }
}

/// A client that reset the connection is gone, like one that closed it.
fn gone_or(e: io::Error) -> ConnEnd {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => ConnEnd::Eof,
        _ => ConnEnd::Io(e),
    }
}

/// Answers one whole, size-checked message into `out`; a framing error is returned,
/// every other problem answered.
fn answer_bytes(
    session: &mut Session,
    msg: &[u8],
    out: &mut Replies,
) -> Result<(), ninep::DecodeError> {
    let ty = msg[4];
    let tag = u16::from_le_bytes([msg[5], msg[6]]);
    let u32_at = |at: usize| u32::from_le_bytes([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]]);
    // The data path from the fixed headers; anything else about them (a wrong length)
    // goes to the decoder, which says what is wrong.
    if ty == mtype::TREAD && msg.len() == TREAD_LEN {
        let answer = session.read(u32_at(TREAD_LEN - 4));
        reply(session, out, tag, answer);
        return Ok(());
    }
    if ty == mtype::TWRITE
        && msg.len() >= TWRITE_HEADER_LEN
        && u32_at(TWRITE_HEADER_LEN - 4) as usize == msg.len() - TWRITE_HEADER_LEN
    {
        let answer = Answer::Msg(session.write(u32_at(TWRITE_HEADER_LEN - 4)));
        reply(session, out, tag, answer);
        return Ok(());
    }
    match ninep::decode(msg, session.decode_dialect()) {
        Ok(fc) => {
            let answer = session.answer(fc.msg);
            reply(session, out, fc.tag, answer);
            Ok(())
        }
        Err(e) if e.is_framing() => Err(e),
        Err(e) => {
            let answer = Answer::Msg(session.error(ninep::errno::EINVAL, "bad message"));
            reply(session, out, e.tag.unwrap_or(NOTAG), answer);
            Ok(())
        }
    }
}

/// Queues `answer` on `tag`. A reply past the msize (a 9P2000 stat naming a long user
/// name) or one that does not encode becomes an error, as in ramfs: never a reply the
/// client must refuse, never none.
fn reply(session: &Session, out: &mut Replies, tag: u16, answer: Answer) {
    let msg = match answer {
        Answer::Read(count) => return out.push_read(tag, count),
        Answer::Msg(msg) => msg,
    };
    let fc = Fcall { tag, msg };
    if ninep::encoded_len(&fc) <= session.msize() as usize && out.push_msg(&fc).is_ok() {
        return;
    }
    let error = Fcall {
        tag,
        msg: session.error(ninep::errno::EINVAL, "reply too long"),
    };
    // An error reply is a few bytes and always encodes.
    if let Err(e) = out.push_msg(&error) {
        debug!("error reply on tag {tag} does not encode: {e}");
    }
}

/// Replies waiting to be written: encoded messages in one buffer, and after some of
/// them (the `Rread` headers) a run of data bytes taken from [`Replies::data`].
struct Replies {
    bytes: Vec<u8>,
    /// `(end of a header in bytes, data bytes that follow it)`, in order.
    reads: Vec<(usize, usize)>,
    data_len: usize,
    /// What every `Rread` carries ([`read_data`]).
    data: &'static [u8],
}

/// The data of every `Rread`: pattern bytes (no client can take them more cheaply than
/// real data), made once for all connections, as a file server's pages are there
/// before a connection asks for them.
fn read_data() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| pattern(MAX_MSIZE as usize))
}

impl Replies {
    fn new() -> Replies {
        Replies {
            bytes: Vec::with_capacity(READ_CHUNK),
            reads: Vec::new(),
            data_len: 0,
            data: read_data(),
        }
    }

    /// Bytes waiting.
    fn len(&self) -> usize {
        self.bytes.len() + self.data_len
    }

    /// Queues a reply; one that does not encode leaves nothing behind.
    fn push_msg(&mut self, fc: &Fcall) -> Result<(), ninep::EncodeError> {
        encode(fc, &mut self.bytes)
    }

    /// Queues an `Rread` of `count` bytes on `tag`.
    fn push_read(&mut self, tag: u16, count: u32) {
        let count = (count as usize).min(self.data.len());
        push_rread_header(&mut self.bytes, tag, count);
        self.reads.push((self.bytes.len(), count));
        self.data_len += count;
    }

    /// Writes and forgets everything queued.
    fn write_to<W: Write>(&mut self, w: &mut Sink<W>) -> io::Result<()> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        if let (Sink::Spliced(socket), false) = (&mut *w, self.reads.is_empty()) {
            return self.splice_to(socket);
        }
        let mut slices = Vec::with_capacity(2 * self.reads.len() + 1);
        let mut from = 0;
        for &(header_end, count) in &self.reads {
            slices.push(IoSlice::new(&self.bytes[from..header_end]));
            slices.push(IoSlice::new(&self.data[..count]));
            from = header_end;
        }
        if from < self.bytes.len() {
            slices.push(IoSlice::new(&self.bytes[from..]));
        }
        let written = slices
            .chunks_mut(MAX_SLICES)
            .try_for_each(|group| write_all_vectored(w, group));
        self.bytes.clear();
        self.reads.clear();
        self.data_len = 0;
        written
    }
}

#[cfg(target_os = "linux")]
impl Replies {
    /// [`Replies::write_to`] by reference: the data is `static`, and the headers go
    /// through the socket's arena (memory never written again while sent).
    fn splice_to(&mut self, socket: &mut SplicingSocket) -> io::Result<()> {
        let data = self.data;
        let inserts: Vec<(usize, &'static [u8])> = self
            .reads
            .iter()
            .map(|&(header_end, count)| (header_end, &data[..count]))
            .collect();
        let sent = socket.send_by_reference(&self.bytes, &inserts);
        self.bytes.clear();
        self.reads.clear();
        self.data_len = 0;
        sent
    }
}

/// Appends the header of an `Rread` of `count` bytes: `ninep`'s encoding of an empty
/// `Rread` with the size and count made `count` larger.
fn push_rread_header(out: &mut Vec<u8>, tag: u16, count: usize) {
    let at = out.len();
    let empty = Fcall {
        tag,
        msg: Msg::Rread { data: Vec::new() },
    };
    // An empty Rread always encodes: 11 bytes.
    if encode(&empty, out).is_err() {
        return;
    }
    let header = &mut out[at..];
    let size = header.len() + count;
    // count <= MAX_MSIZE, so both fit 32 bits.
    header[0..4].copy_from_slice(&(size as u32).to_le_bytes());
    header[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&(count as u32).to_le_bytes());
}

/// Writes every byte of `slices`, in order, however the kernel splits the writes.
fn write_all_vectored(w: &mut impl Write, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match w.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    w.flush()
}

#[cfg(test)]
mod tests;
