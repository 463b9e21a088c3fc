//! The stream transports themselves: closing never waits behind a blocked send (one
//! proved blocked, not assumed), and a server cannot make the client queue unbounded
//! input.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use common::*;
use mnt::host::StreamTransport;
use mnt::{Interrupt, Transport};

/// A message of `len` bytes (at least 7) as a stream transport frames it.
fn frame(len: usize, fill: u8) -> Vec<u8> {
    let mut b = vec![fill; len];
    b[..4].copy_from_slice(&u32::try_from(len).expect("frame size").to_le_bytes());
    b
}

/// The write half of a stream transport, telling the test when a write is under way.
struct WatchedWriter {
    inner: UnixStream,
    /// Writes entered and not returned.
    inside: Arc<AtomicUsize>,
}

impl Write for WatchedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inside.fetch_add(1, Ordering::SeqCst);
        let r = self.inner.write(buf);
        self.inside.fetch_sub(1, Ordering::SeqCst);
        r
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Fills the socket's send buffer (the peer never reads) until the kernel refuses
/// more; returns the bytes it took. Any later blocking write must wait.
fn fill(socket: &UnixStream) -> usize {
    let filler = socket.try_clone().expect("clone");
    filler.set_nonblocking(true).expect("non-blocking");
    let mut took = 0;
    loop {
        match (&filler).write(&[0u8; 64 * 1024]) {
            Ok(n) => took += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the socket: {e}"),
        }
    }
    // The flag belongs to the socket, which the transport shares: put it back.
    filler.set_nonblocking(false).expect("blocking");
    took
}

/// Whether thread `tid` of this process is asleep (in the kernel), per /proc.
fn asleep(tid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // "tid (comm) S ...": the state follows the command's closing parenthesis.
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('S'))
}

/// The transport contract: `close` returns promptly even while a `send` is blocked
/// (here on a server that never reads), and makes that send return. The send is
/// known to be blocked when close runs: the socket's buffer was full (the kernel
/// refused a non-blocking write) before it began, the writer is inside its write,
/// and its thread is asleep there.
#[test]
fn closing_a_stream_transport_does_not_wait_for_a_blocked_send() {
    let _w = watchdog(Duration::from_secs(120));
    // `theirs` is the server, which never reads.
    let (ours, theirs) = UnixStream::pair().expect("socket pair");
    assert!(fill(&ours) > 0, "nothing fitted in the socket buffer");
    let inside = Arc::new(AtomicUsize::new(0));
    let shut = ours.try_clone().expect("clone");
    let t = StreamTransport::new(
        ours.try_clone().expect("clone"),
        WatchedWriter {
            inner: ours,
            inside: inside.clone(),
        },
        Some(Box::new(move || {
            let _ = shut.shutdown(Shutdown::Both);
        })),
    )
    .expect("transport");
    let t = Arc::new(t);
    let (sent_tx, sent_rx) = mpsc::channel();
    let (tid_tx, tid_rx) = mpsc::channel();
    let sender = {
        let t = t.clone();
        thread::spawn(move || {
            let me = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
            let tid = me
                .file_name()
                .expect("a tid")
                .to_string_lossy()
                .into_owned();
            tid_tx.send(tid).expect("test alive");
            sent_tx.send(t.send(&frame(64, 0xab)))
        })
    };
    let tid = tid_rx.recv_timeout(DEADLINE).expect("the sender's tid");
    // A hang guard, not a timing: wait until the sender is asleep inside its write.
    let end = std::time::Instant::now() + DEADLINE;
    while !(inside.load(Ordering::SeqCst) == 1 && asleep(&tid)) {
        assert!(
            std::time::Instant::now() < end,
            "the send never blocked: inside {}, sent {:?}",
            inside.load(Ordering::SeqCst),
            sent_rx.try_recv()
        );
        thread::sleep(Duration::from_millis(1));
    }
    assert!(sent_rx.try_recv().is_err(), "the send returned");
    let (closed_tx, closed_rx) = mpsc::channel();
    let closer = {
        let t = t.clone();
        thread::spawn(move || {
            t.close();
            closed_tx.send(())
        })
    };
    let closed = closed_rx.recv_timeout(DEADLINE);
    // Dropping the server's end frees a close stuck behind the send, so nothing is
    // left over.
    drop(theirs);
    assert!(closed.is_ok(), "close waited for the blocked send");
    let sent = sent_rx
        .recv_timeout(DEADLINE)
        .expect("the blocked send returned");
    assert!(
        sent.is_err(),
        "a send cut short by close must fail: {sent:?}"
    );
    assert_eq!(inside.load(Ordering::SeqCst), 0);
    sender.join().expect("sender").ok();
    closer.join().expect("closer").ok();
}

/// A child process speaks on its stdin and stdout, and sees end of file when the
/// transport closes.
#[test]
fn a_child_transport_carries_messages_both_ways_and_closes() {
    let _w = watchdog(Duration::from_secs(120));
    // `cat` echoes every message back.
    let (t, child) = StreamTransport::child(&mut Command::new("cat")).expect("start cat");
    let intr = Interrupt::new();
    for (len, fill) in [(7, 1u8), (4096, 2), (200_000, 3)] {
        let msg = frame(len, fill);
        t.send(&msg).expect("send");
        assert_eq!(t.recv(&intr).expect("echo"), msg);
    }
    t.close();
    let status = child.wait_timeout(DEADLINE).expect("wait for cat");
    assert!(status.is_some(), "cat did not see end of file");
}

/// A server that sends and sends while nobody receives (unsolicited frames on an idle
/// mount) cannot make the client hold more than a bounded amount: the transport stops
/// reading the socket, so the server's writes block. Receiving makes room again.
#[test]
fn an_idle_stream_transport_holds_a_bounded_amount() {
    let _w = watchdog(Duration::from_secs(120));
    const FRAME: usize = 64 * 1024;
    const FRAMES: usize = 1024; // 64 MiB
    let (ours, mut theirs) = UnixStream::pair().expect("socket pair");
    let shut = ours.try_clone().expect("clone");
    let t = StreamTransport::new(
        ours.try_clone().expect("clone"),
        ours,
        Some(Box::new(move || {
            let _ = shut.shutdown(Shutdown::Both);
        })),
    )
    .expect("transport");
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let written = written.clone();
        thread::spawn(move || {
            for i in 0..FRAMES {
                if theirs.write_all(&frame(FRAME, i as u8)).is_err() {
                    return;
                }
                written.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // Wait until the server's writes stall (or all went through).
    let mut last = usize::MAX;
    loop {
        thread::sleep(Duration::from_millis(300));
        let now = written.load(Ordering::SeqCst);
        if now == last || now == FRAMES {
            break;
        }
        last = now;
    }
    let held = written.load(Ordering::SeqCst);
    assert!(
        held < FRAMES,
        "the client took all {} MiB without receiving any",
        (FRAMES * FRAME) >> 20
    );
    // Receiving makes room: everything arrives, whole and in order.
    let intr = Interrupt::new();
    for i in 0..FRAMES {
        assert_eq!(
            t.recv(&intr).expect("frame"),
            frame(FRAME, i as u8),
            "frame {i}"
        );
    }
    writer.join().expect("writer");
    t.close();
}
