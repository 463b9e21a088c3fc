//! Rreads sent from the file's pages (`ninep_server/output.rs`), through the real
//! connection loop over a unix socket pair:
//!
//! - a reply holding a file's pages while a write replaces them: the connection's
//!   writer is stopped at the Rread's write (a gate the test opens), a write to the
//!   same pages lands meanwhile; the reply sends the old bytes, the file has the new
//!   ones, the pages replaced are counted, and the memory in use is the file's pages
//!   alone, with the limit enforced as before (a write one page past it fails);
//! - reads of 1 MiB (less the header's room) from an unaligned offset spanning single-page runs, a merged run (a
//!   loan given back), a hole and the end of the file, copied and (on Linux) spliced;
//! - on Linux, a reply sent by reference (`ninep_server/splice.rs`) that the client has
//!   not read yet while a write replaces its pages: the client reads the old bytes.

mod common;

use std::io::{self, IoSlice, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ninep::{encode, Fcall, Msg, IOHDRSZ, MAX_MSIZE, NOFID, NOTAG};
use ramfs::error::Error;
use ramfs::fs::{Clock, Config, Cred, Fs, NewKind, NewNode, NodeId, PAGE_SIZE};
use ramfs::ninep_server::{ConnectionEnd, Server, ServerConfig};

/// Long enough for any step on a loaded machine; only a failing run waits this long.
const STEP_DEADLINE: Duration = Duration::from_secs(20);

const MIB: usize = 1 << 20;

/// The read that is held up: 16 pages.
const READ: usize = 16 * PAGE_SIZE;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / PAGE_SIZE) as u8 ^ seed)
        .collect()
}

/// A tree whose file "f" holds `data`, written a page at a time from the start.
fn tree_with_file(limit: u64, data: &[u8]) -> (Arc<Fs>, NodeId, Cred) {
    let fs = Arc::new(Fs::new(Config {
        memory_limit: limit,
        owner: "adm".into(),
        clock: Clock::Fixed(1_700_000_000),
    }));
    let (f, who) = {
        let mut t = fs.lock();
        let who = t.cred_for_uid(0, None);
        let root = t.root();
        let f = t
            .create(&who, root, "f", NewNode::new(NewKind::File, 0o666))
            .expect("create");
        (f, who)
    };
    fs.write(&who, f, 0, data, false).expect("write");
    (fs, f, who)
}

/// The connection's writer: forwards to the socket, except that the first write of at
/// least `gate_at` bytes first says so on `entered` and waits for `go` (or for the
/// test to drop its sender, when it failed, or for the deadline).
struct Gate {
    inner: UnixStream,
    gate_at: usize,
    entered: Sender<()>,
    go: Receiver<()>,
    passed: bool,
}

impl Gate {
    fn wait_if_large(&mut self, len: usize) {
        if !self.passed && len >= self.gate_at {
            self.passed = true;
            let _ = self.entered.send(());
            match self.go.recv_timeout(STEP_DEADLINE) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) | Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

impl Write for Gate {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.wait_if_large(buf.len());
        self.inner.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.wait_if_large(bufs.iter().map(|b| b.len()).sum());
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The client's end of one connection, in 9P2000.L.
struct Client {
    stream: UnixStream,
}

impl Client {
    fn send(&mut self, tag: u16, msg: Msg) {
        let mut out = Vec::new();
        encode(&Fcall { tag, msg }, &mut out).expect("encode");
        self.stream.write_all(&out).expect("send");
    }

    fn receive(&mut self) -> Fcall {
        common::receive_reply(&mut self.stream)
    }

    fn call(&mut self, tag: u16, msg: Msg) -> Msg {
        common::call(&mut self.stream, tag, msg)
    }

    /// Version, attach as root and open "f" for reading as fid 1; returns the iounit.
    fn open_f(&mut self, msize: u32) -> u32 {
        let version = Msg::Tversion {
            msize,
            version: "9P2000.L".into(),
        };
        assert!(matches!(self.call(NOTAG, version), Msg::Rversion { .. }));
        let attach = Msg::Tattach {
            fid: 0,
            afid: NOFID,
            uname: "root".into(),
            aname: String::new(),
            n_uname: Some(0),
        };
        assert!(matches!(self.call(1, attach), Msg::Rattach { .. }));
        let walk = Msg::Twalk {
            fid: 0,
            newfid: 1,
            wnames: vec!["f".into()],
        };
        assert!(matches!(self.call(2, walk), Msg::Rwalk { .. }));
        match self.call(3, Msg::Tlopen { fid: 1, flags: 0 }) {
            Msg::Rlopen { iounit, .. } => iounit,
            other => panic!("Tlopen: {other:?}"),
        }
    }
}

/// Serves one connection of `fs` on a thread, its replies through `writer(socket)`.
fn connect<W: Write + Send + 'static>(
    fs: &Arc<Fs>,
    writer: impl FnOnce(UnixStream) -> W,
) -> (Client, JoinHandle<ConnectionEnd>) {
    let (ours, theirs) = UnixStream::pair().expect("socket pair");
    // A reply that never comes fails the test instead of hanging it.
    ours.set_read_timeout(Some(STEP_DEADLINE))
        .expect("read timeout");
    let server = Server::new(Arc::clone(fs), ServerConfig::default());
    let w = writer(theirs.try_clone().expect("clone"));
    let serving = thread::spawn(move || server.serve(theirs, w, "held_pages"));
    (Client { stream: ours }, serving)
}

/// Serves one connection of `fs` as `ramfs --listen unix:` does on Linux: polled, its
/// replies through a [`SplicingSocket`].
#[cfg(target_os = "linux")]
fn connect_spliced(fs: &Arc<Fs>) -> (Client, JoinHandle<ConnectionEnd>) {
    use ramfs::ninep_server::{AttachRule, SplicingSocket};
    let (ours, theirs) = UnixStream::pair().expect("socket pair");
    ours.set_read_timeout(Some(STEP_DEADLINE))
        .expect("read timeout");
    let server = Server::new(Arc::clone(fs), ServerConfig::default());
    let serving = thread::spawn(move || {
        let reader = server.polling(theirs.try_clone().expect("clone"));
        let writer = server.polling_writer(SplicingSocket::new(theirs).expect("pipe"));
        server.serve_polled(reader, writer, "spliced", AttachRule::BelieveNames)
    });
    (Client { stream: ours }, serving)
}

/// Bytes waiting to be read on `s` (`FIONREAD`).
#[cfg(target_os = "linux")]
fn unread(s: &UnixStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at `n`; the
    // descriptor is borrowed from `s` for the call.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD: {}", io::Error::last_os_error());
    n as usize
}

/// Asks for the first `len` bytes of fid 1 and waits until the whole Rread
/// (size[4] type[1] tag[2] count[4] data) is in the socket, sent and unread.
#[cfg(target_os = "linux")]
fn read_unread(client: &mut Client, tag: u16, len: usize) {
    client.send(
        tag,
        Msg::Tread {
            fid: 1,
            offset: 0,
            count: len as u32,
        },
    );
    let deadline = std::time::Instant::now() + STEP_DEADLINE;
    while unread(&client.stream) < 11 + len {
        assert!(std::time::Instant::now() < deadline, "the Rread never came");
        thread::sleep(Duration::from_millis(1));
    }
}

fn replaced(fs: &Fs, f: NodeId) -> u64 {
    fs.lock_shared()
        .file_handle(f)
        .expect("a regular file")
        .replaced_while_held()
}

fn used(fs: &Fs) -> u64 {
    fs.lock_shared().statfs().used
}

#[test]
fn a_write_while_a_reply_holds_the_pages_replaces_them_and_the_reply_sends_the_old_bytes() {
    let old = pattern(READ, 1);
    // The memory in use with the file, measured on a twin tree, leaves room for one
    // more page and no more.
    let full = used(&tree_with_file(1 << 30, &old).0);
    let limit = full + PAGE_SIZE as u64;
    let (fs, f, who) = tree_with_file(limit, &old);
    assert_eq!(used(&fs), full);

    let (entered_tx, entered) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    let (mut client, serving) = connect(&fs, |inner| Gate {
        inner,
        gate_at: READ,
        entered: entered_tx,
        go: go_rx,
        passed: false,
    });
    assert!(client.open_f(256 * 1024) as usize >= READ);
    client.send(
        4,
        Msg::Tread {
            fid: 1,
            offset: 0,
            count: READ as u32,
        },
    );
    entered
        .recv_timeout(STEP_DEADLINE)
        .expect("the Rread reached the writer");

    // The reply is built and unsent: it holds the 16 pages. Write them all anew.
    let new = pattern(READ, 2);
    assert_eq!(fs.write(&who, f, 0, &new, false), Ok(READ as u32));
    assert_eq!(replaced(&fs, f), 16, "each held page replaced once");
    assert_eq!(
        used(&fs),
        full,
        "the replaced pages are the reply's: the file is charged its own pages once"
    );
    // The limit is where it was: one page more fits, a second does not.
    let end = READ as u64;
    assert_eq!(
        fs.write(&who, f, end, &[7; 2 * PAGE_SIZE], false),
        Err(Error::NoSpace)
    );
    assert_eq!(
        fs.write(&who, f, end, &[7; PAGE_SIZE], false),
        Ok(PAGE_SIZE as u32)
    );
    assert_eq!(used(&fs), limit);

    go.send(()).expect("the writer waits");
    let reply = client.receive();
    assert_eq!(reply.tag, 4);
    assert!(
        reply.msg == Msg::Rread { data: old },
        "the reply sent the bytes the read saw"
    );
    let read = client.call(
        5,
        Msg::Tread {
            fid: 1,
            offset: 0,
            count: READ as u32,
        },
    );
    assert!(read == Msg::Rread { data: new }, "the file has the write");
    assert_eq!(
        replaced(&fs, f),
        16,
        "nothing replaced with no reply holding it"
    );
    assert_eq!(used(&fs), limit);
    drop(client);
    assert!(matches!(serving.join(), Ok(ConnectionEnd::Eof)));
}

#[cfg(target_os = "linux")]
#[test]
fn a_write_before_the_client_reads_a_spliced_reply_replaces_its_pages() {
    let old = pattern(READ, 4);
    let (fs, f, who) = tree_with_file(1 << 30, &old);
    let (mut client, serving) = connect_spliced(&fs);
    assert!(client.open_f(256 * 1024) as usize >= READ);
    // 16 pages, then two (a spliced Rread holds a page or more; copied, 16 KiB).
    let mut replaced_before = 0;
    for (tag, len, seed) in [(4u16, READ, 5u8), (6, 2 * PAGE_SIZE, 6)] {
        let old = fs_read(&mut client, tag, len);
        read_unread(&mut client, tag, len);
        let new = pattern(len, seed);
        assert_eq!(fs.write(&who, f, 0, &new, false), Ok(len as u32));
        assert_eq!(
            replaced(&fs, f) - replaced_before,
            (len / PAGE_SIZE) as u64,
            "the socket still referred to the pages: each replaced, not changed"
        );
        replaced_before = replaced(&fs, f);
        let reply = client.receive();
        assert!(
            reply.msg == Msg::Rread { data: old },
            "the client read the bytes the read saw ({len} bytes)"
        );
        assert!(
            fs_read(&mut client, tag + 1, len) == new,
            "the file has the write"
        );
    }
    drop(client);
    assert!(matches!(serving.join(), Ok(ConnectionEnd::Eof)));
}

#[cfg(target_os = "linux")]
#[test]
fn a_connection_that_ends_before_its_client_reads_a_spliced_reply_still_sends_the_old_bytes() {
    let old = pattern(READ, 7);
    let (fs, f, who) = tree_with_file(1 << 30, &old);
    let (mut client, serving) = connect_spliced(&fs);
    assert!(client.open_f(256 * 1024) as usize >= READ);
    read_unread(&mut client, 4, READ);
    // The client says no more, and the connection ends with the Rread unread.
    client
        .stream
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    assert!(matches!(serving.join(), Ok(ConnectionEnd::Eof)));
    assert_eq!(
        fs.write(&who, f, 0, &pattern(READ, 8), false),
        Ok(READ as u32)
    );
    assert_eq!(
        replaced(&fs, f),
        (READ / PAGE_SIZE) as u64,
        "the ended connection's socket still refers to the pages: each replaced"
    );
    let reply = client.receive();
    assert!(
        reply.msg == Msg::Rread { data: old },
        "the client read the bytes the read saw"
    );
    let mut rest = Vec::new();
    client.stream.read_to_end(&mut rest).expect("the end");
    assert!(rest.is_empty(), "then the end of the connection");
}

/// The first `len` bytes of fid 1, read whole.
#[cfg(target_os = "linux")]
fn fs_read(client: &mut Client, tag: u16, len: usize) -> Vec<u8> {
    let read = Msg::Tread {
        fid: 1,
        offset: 0,
        count: len as u32,
    };
    match client.call(tag, read) {
        Msg::Rread { data } => data,
        other => panic!("Tread: {other:?}"),
    }
}

#[test]
fn a_read_of_1_mib_spans_single_page_runs_a_merged_run_a_hole_and_the_end() {
    // 300 pages written page by page; pages 40..120 merged into one run by a loan
    // (given back); a hole at pages 200..210; the file ends 100 bytes into page 300.
    let mut want = pattern(300 * PAGE_SIZE + 100, 3);
    want[200 * PAGE_SIZE..210 * PAGE_SIZE].fill(0);
    let (fs, f, who) = tree_with_file(1 << 30, &want[..200 * PAGE_SIZE]);
    fs.write(
        &who,
        f,
        210 * PAGE_SIZE as u64,
        &want[210 * PAGE_SIZE..],
        false,
    )
    .expect("write after the hole");
    {
        let mut t = fs.lock();
        t.lend_pages(f, 40, 80).expect("lent");
        assert_eq!(t.return_pages(f, 40, 80), Ok(0));
    }
    let (client, serving) = connect(&fs, |socket| socket);
    read_1_mib_pieces(client, serving, &want);
    #[cfg(target_os = "linux")]
    {
        let (client, serving) = connect_spliced(&fs);
        read_1_mib_pieces(client, serving, &want);
    }
}

/// The reads of the test above, of a file holding `want`.
fn read_1_mib_pieces(mut client: Client, serving: JoinHandle<ConnectionEnd>, want: &[u8]) {
    // The largest msize: the iounit is 1 MiB less the header's room.
    let count = client.open_f(MAX_MSIZE) as usize;
    assert_eq!(count, MIB - IOHDRSZ as usize);
    for (tag, offset) in [(4u16, 100usize), (5, 0), (6, 40 * PAGE_SIZE)] {
        let got = client.call(
            tag,
            Msg::Tread {
                fid: 1,
                offset: offset as u64,
                count: count as u32,
            },
        );
        let end = (offset + count).min(want.len());
        assert!(
            got == Msg::Rread {
                data: want[offset..end].to_vec()
            },
            "read at {offset}"
        );
    }
    // The tail: less than a page left.
    let got = client.call(
        7,
        Msg::Tread {
            fid: 1,
            offset: 300 * PAGE_SIZE as u64,
            count: count as u32,
        },
    );
    assert!(
        got == Msg::Rread {
            data: want[300 * PAGE_SIZE..].to_vec()
        }
    );
    drop(client);
    assert!(matches!(serving.join(), Ok(ConnectionEnd::Eof)));
}
