//! The connection loop over a reader that spins before it sleeps (`wait`): requests that
//! arrive while it spins and after it has gone to sleep are answered alike, and end of
//! file, errors and Tflush keep their meaning.

use std::io;
use std::rc::Rc;
use std::time::Duration;

use super::*;
use crate::ninep_server::wait::tests::{Arrival, FakeClock, Taken, Timeline};
use crate::ninep_server::{AttachRule, Polling, Spinners};

fn message(tag: u16, msg: Msg) -> Vec<u8> {
    bytes_of(&[Fcall { tag, msg }])
}

fn getattr(fid: u32) -> Msg {
    Msg::Tgetattr {
        fid,
        request_mask: ninep::getattr::BASIC,
    }
}

/// Serves `script` through a polling reader (window 100 µs, fake time); returns the
/// replies, how the connection ended and how each arrival was taken.
fn serve_timeline(script: Vec<(Duration, Arrival)>) -> (Vec<Fcall>, ConnectionEnd, Vec<Taken>) {
    let s = server();
    let clock = FakeClock::default();
    let timeline = Timeline::new(&clock, script);
    let taken = Rc::clone(&timeline.taken);
    let reader = Polling::with_clock(
        timeline,
        Duration::from_micros(100),
        Arc::new(Spinners::new(1)),
        clock,
    );
    let mut output = Vec::new();
    let end = s.serve_peer(reader, &mut output, "timeline", AttachRule::BelieveNames);
    let taken = taken.borrow().clone();
    (replies_of(&output), end, taken)
}

#[test]
fn requests_found_spinning_and_sleeping_are_answered_in_order() {
    let us = Duration::from_micros;
    let (r, end, taken) = serve_timeline(vec![
        (
            Duration::ZERO,
            Arrival::Bytes(message(NOTAG, tversion("9P2000.L"))),
        ),
        // During the window.
        (
            us(30),
            Arrival::Bytes(message(1, tattach(0, "glenda", Some(1)))),
        ),
        // Long after it.
        (us(5_000), Arrival::Bytes(message(2, getattr(0)))),
        // A request and the Tflush naming it, together, during the window.
        (
            us(40),
            Arrival::Bytes(
                [
                    message(3, getattr(0)),
                    message(4, Msg::Tflush { oldtag: 3 }),
                ]
                .concat(),
            ),
        ),
        // The client closes while the server spins.
        (us(20), Arrival::Eof),
    ]);
    assert!(matches!(end, ConnectionEnd::Eof), "{end:?}");
    assert_eq!(
        taken,
        [Taken::Tried, Taken::Tried, Taken::Slept, Taken::Tried],
        "the requests came both ways (EOF is not counted)"
    );
    let tags: Vec<u16> = r.iter().map(|f| f.tag).collect();
    assert_eq!(tags, [NOTAG, 1, 2, 3, 4]);
    assert!(matches!(r[0].msg, Msg::Rversion { .. }));
    assert!(matches!(r[1].msg, Msg::Rattach { .. }), "{:?}", r[1].msg);
    assert!(matches!(r[2].msg, Msg::Rgetattr { .. }), "{:?}", r[2].msg);
    assert!(matches!(r[3].msg, Msg::Rgetattr { .. }), "{:?}", r[3].msg);
    assert_eq!(
        r[4].msg,
        Msg::Rflush,
        "after the reply of the request it names"
    );
}

#[test]
fn a_message_cut_across_a_spin_and_a_sleep_is_put_together() {
    let us = Duration::from_micros;
    let attach = message(1, tattach(0, "glenda", Some(1)));
    let (head, tail) = attach.split_at(9);
    let (r, end, taken) = serve_timeline(vec![
        (
            Duration::ZERO,
            Arrival::Bytes(message(NOTAG, tversion("9P2000.L"))),
        ),
        (us(10), Arrival::Bytes(head.to_vec())),
        (us(900), Arrival::Bytes(tail.to_vec())),
        (us(900), Arrival::Eof),
    ]);
    assert!(matches!(end, ConnectionEnd::Eof), "{end:?}");
    assert_eq!(taken, [Taken::Tried, Taken::Tried, Taken::Slept]);
    assert_eq!(r.len(), 2);
    assert!(matches!(r[1].msg, Msg::Rattach { .. }), "{:?}", r[1].msg);
}

#[test]
fn an_error_while_spinning_ends_the_connection_with_it() {
    let us = Duration::from_micros;
    let (r, end, taken) = serve_timeline(vec![
        (
            Duration::ZERO,
            Arrival::Bytes(message(NOTAG, tversion("9P2000.L"))),
        ),
        (us(25), Arrival::Error(io::ErrorKind::PermissionDenied)),
    ]);
    assert!(
        matches!(&end, ConnectionEnd::Io(e) if e.kind() == io::ErrorKind::PermissionDenied),
        "{end:?}"
    );
    assert_eq!(taken, [Taken::Tried, Taken::Tried]);
    assert_eq!(r.len(), 1, "the version was answered first");
}

#[test]
fn a_reset_while_spinning_is_the_client_gone() {
    let us = Duration::from_micros;
    let (_, end, _) = serve_timeline(vec![
        (
            Duration::ZERO,
            Arrival::Bytes(message(NOTAG, tversion("9P2000.L"))),
        ),
        (us(25), Arrival::Error(io::ErrorKind::ConnectionReset)),
    ]);
    assert!(matches!(end, ConnectionEnd::Eof), "{end:?}");
}

/// A real socket, read through [`Server::polling`] as `ramfs --listen` does: a client
/// that sends one request at a time, then a pipelined pair, then closes.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_polling_connection_over_a_unix_socket() {
    use std::os::unix::net::UnixStream;
    let s = server();
    let (mut client, theirs) = UnixStream::pair().expect("socketpair");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let srv = Arc::clone(&s);
    let thread = std::thread::spawn(move || {
        let reader = srv.polling(theirs.try_clone().expect("clone"));
        srv.serve_peer(reader, theirs, "pair", AttachRule::BelieveNames)
    });
    let mut rpc = |bytes: Vec<u8>, replies: usize| -> Vec<Fcall> {
        client.write_all(&bytes).expect("write");
        (0..replies)
            .map(|_| {
                let mut size = [0u8; 4];
                client.read_exact(&mut size).expect("read size");
                let mut buf = size.to_vec();
                buf.resize(u32::from_le_bytes(size) as usize, 0);
                client.read_exact(&mut buf[4..]).expect("read body");
                decode(&buf, Dialect::L).expect("decode")
            })
            .collect()
    };
    let r = rpc(message(NOTAG, tversion("9P2000.L")), 1);
    assert!(matches!(r[0].msg, Msg::Rversion { .. }));
    let r = rpc(message(1, tattach(0, "glenda", Some(1))), 1);
    assert!(matches!(r[0].msg, Msg::Rattach { .. }), "{:?}", r[0].msg);
    for tag in 2..200 {
        let r = rpc(message(tag, getattr(0)), 1);
        assert_eq!(r[0].tag, tag);
        assert!(matches!(r[0].msg, Msg::Rgetattr { .. }), "{:?}", r[0].msg);
    }
    let both = [
        message(300, getattr(0)),
        message(301, Msg::Tflush { oldtag: 300 }),
    ]
    .concat();
    let r = rpc(both, 2);
    assert_eq!((r[0].tag, r[1].tag), (300, 301));
    assert_eq!(r[1].msg, Msg::Rflush);
    drop(client);
    let end = thread.join().expect("server thread");
    assert!(matches!(end, ConnectionEnd::Eof), "{end:?}");
}
