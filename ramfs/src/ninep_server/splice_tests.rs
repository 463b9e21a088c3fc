//! Tests of `splice.rs` over real socket pairs: outputs with and without pages arrive
//! whole and in order through a socket that fills, the pages stay as the read saw them
//! until the client has read them and are let go of then, and a client that goes away
//! is an error that keeps nothing; a connection that ends unread keeps the pages until
//! its client has read them or has gone away.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use super::*;
use crate::fs::{FileData, SharedPages};
use crate::ninep_server::output::tests::{file, fill};

fn pair() -> (SplicingSocket, UnixStream) {
    let (ours, client) = UnixStream::pair().expect("socket pair");
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    (SplicingSocket::new(ours).expect("pipe"), client)
}

#[test]
fn outputs_with_and_without_pages_arrive_whole_and_in_order() {
    let (mut socket, mut client) = pair();
    let (f, _) = file(5);
    // 6 MiB of replies, far more than the socket holds, so the writer waits for a
    // client that reads only after a pause; then plain replies between them.
    let mut want = Vec::new();
    let total: usize = 3;
    let expected_len = {
        let mut probe = Output::default();
        fill(&mut probe, &f, 200).len() * total + 5 * total
    };
    let reading = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        let mut got = vec![0u8; expected_len];
        client.read_exact(&mut got).expect("every byte");
        (got, client)
    });
    let mut waits = 0;
    for i in 0..total {
        let mut out = Output::default();
        want.extend(fill(&mut out, &f, 200));
        assert!(out.holds_pages());
        socket
            .send_output(&mut out, || waits += 1)
            .expect("spliced");
        assert!(out.is_empty());
        let mut plain = Output::default();
        plain.bytes.extend_from_slice(&[i as u8; 5]);
        want.extend_from_slice(&[i as u8; 5]);
        socket.send_output(&mut plain, || ()).expect("copied");
    }
    let (got, _client) = reading.join().expect("reader");
    assert_eq!(got.len(), want.len());
    assert!(got == want, "every byte in order");
    assert!(
        waits > 0,
        "the socket filled and the writer waited for the client"
    );
    assert_eq!(socket.sent, want.len() as u64, "every byte counted");
}

#[test]
fn pages_stay_as_the_read_saw_them_until_the_client_has_read_them() {
    let (mut socket, mut client) = pair();
    let (mut f, old) = file(4);
    let mut out = Output::default();
    f.read_pieces(0, usize::MAX, |piece| match piece {
        crate::fs::Piece::Pages(pages) => out.push_pages(pages),
        crate::fs::Piece::Bytes(b) => out.bytes.extend_from_slice(b),
    });
    assert!(out.holds_pages());
    socket.send_output(&mut out, || ()).expect("sent");
    // Sent, not read: the socket refers to the pages, which are kept.
    assert_eq!(socket.release_read().expect("outq"), 4);
    // A write meanwhile replaces the kept pages instead of changing them.
    f.write(0, &vec![0xee; old.len()]);
    assert_eq!(
        f.replaced_while_held(),
        4,
        "the write copied the kept pages"
    );
    let mut got = vec![0u8; old.len()];
    client.read_exact(&mut got).expect("read");
    assert!(got == old, "the client read the bytes the read saw");
    // Read: let go of.
    assert_eq!(socket.release_read().expect("outq"), 0);
    assert!(socket.free.len() == 1, "the buffers are kept for reuse");
}

#[test]
fn a_client_that_goes_away_unread_lets_the_pages_go() {
    let (mut socket, client) = pair();
    let (f, _) = file(3);
    let mut out = Output::default();
    fill(&mut out, &f, 2);
    socket.send_output(&mut out, || ()).expect("sent");
    assert_eq!(socket.release_read().expect("outq"), 6);
    // Its unread bytes go with it.
    drop(client);
    assert_eq!(socket.release_read().expect("outq"), 0);
    let mut out = Output::default();
    fill(&mut out, &f, 1);
    let e = socket.send_output(&mut out, || ()).expect_err("gone");
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    assert!(out.is_empty());
    assert_eq!(
        socket.retained_pages(),
        0,
        "the pipe let go of what it took, and the client is gone"
    );
    assert_eq!(socket.in_pipe, 0);
}

/// Pages of `f` (4 of them) sent by reference and not read, the socket dropped, and a
/// clone of those pages to watch their holders by: the file, the clone, and what the
/// ended connection keeps.
fn ended_unread() -> (UnixStream, FileData, SharedPages, Vec<u8>) {
    let (mut socket, client) = pair();
    let (f, old) = file(4);
    let mut probe = None;
    let mut out = Output::default();
    f.read_pieces(0, usize::MAX, |piece| match piece {
        crate::fs::Piece::Pages(pages) => {
            probe = Some(pages.clone());
            out.push_pages(pages);
        }
        crate::fs::Piece::Bytes(b) => out.bytes.extend_from_slice(b),
    });
    let probe = probe.expect("the read held the pages");
    socket.send_output(&mut out, || ()).expect("sent");
    let started = Instant::now();
    drop(socket);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the end does not wait for the client"
    );
    (client, f, probe, old)
}

/// Waits until `pages` has `holders` holders, or 10 s.
fn holders_become(pages: &SharedPages, holders: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pages.holders() != holders && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    pages.holders() == holders
}

#[test]
fn a_connection_ended_unread_keeps_the_pages_until_its_client_has_read_them() {
    let (mut client, _file, probe, old) = ended_unread();
    // The file, the probe, the ended connection.
    thread::sleep(Duration::from_millis(50));
    assert_eq!(probe.holders(), 3, "kept while the client has not read");
    let e = client
        .write_all(b"more")
        .expect_err("the connection is over");
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    let mut got = Vec::new();
    client.read_to_end(&mut got).expect("read, then the end");
    assert!(
        got == old,
        "the client read the bytes the read saw, then the end"
    );
    assert!(
        holders_become(&probe, 2),
        "let go of once read: {} holders",
        probe.holders()
    );
}

#[test]
fn a_connection_ended_unread_lets_the_pages_go_when_its_client_goes_away() {
    let (client, _file, probe, _) = ended_unread();
    thread::sleep(Duration::from_millis(50));
    assert_eq!(probe.holders(), 3, "kept while the client is there");
    drop(client);
    assert!(
        holders_become(&probe, 2),
        "let go of once the client is gone: {} holders",
        probe.holders()
    );
}
