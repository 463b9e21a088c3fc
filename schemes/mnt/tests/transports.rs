//! The stream transports themselves: closing never waits behind a blocked send, and
//! a server cannot make the client queue unbounded input.

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

/// The transport contract: `close` returns promptly even while a `send` is blocked
/// (here on a server that never reads), and makes that send return.
#[test]
fn closing_a_child_transport_does_not_wait_for_a_blocked_send() {
    let _w = watchdog(Duration::from_secs(120));
    let (t, child) = StreamTransport::child(Command::new("sleep").arg("600")).expect("start sleep");
    let t = Arc::new(t);
    let (sent_tx, sent_rx) = mpsc::channel();
    let sender = {
        let t = t.clone();
        // Far more than a pipe or socket buffer holds: blocks while nobody reads.
        thread::spawn(move || sent_tx.send(t.send(&frame(1 << 20, 0xab))))
    };
    // Give the send time to block. (If it has not yet, close comes first and the send
    // fails at once; the test still holds.)
    thread::sleep(Duration::from_millis(300));
    let (closed_tx, closed_rx) = mpsc::channel();
    let closer = {
        let t = t.clone();
        thread::spawn(move || {
            t.close();
            closed_tx.send(())
        })
    };
    let closed = closed_rx.recv_timeout(DEADLINE);
    let still_running = matches!(child.wait_timeout(Duration::ZERO), Ok(None));
    // Killing the server frees a close stuck behind the send, so nothing is left over.
    drop(child);
    assert!(closed.is_ok(), "close waited for the blocked send");
    assert!(still_running, "close returned only because the server died");
    let sent = sent_rx
        .recv_timeout(DEADLINE)
        .expect("the blocked send returned");
    assert!(
        sent.is_err(),
        "a send cut short by close must fail: {sent:?}"
    );
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
