//! Replies reach the client before the server waits for more input, through a writer
//! that buffers until flushed (`--stdio`'s line-buffered stdout, a `BufWriter`).

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use super::*;
use crate::ninep_server::AttachRule;

/// A writer that keeps what it is given until it is flushed, as `Stdout` (line
/// buffered) or a `BufWriter` does; what was flushed is shared with the test.
struct Buffered {
    pending: Vec<u8>,
    delivered: Rc<RefCell<Vec<u8>>>,
}

impl Write for Buffered {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.delivered.borrow_mut().append(&mut self.pending);
        Ok(())
    }
}

/// Hands out `input` as asked; the read after it is all out (the server waiting for
/// more, where a real client would wait for its replies) notes what had been
/// delivered by then and ends the connection.
struct ThenNote {
    input: Option<Vec<u8>>,
    delivered: Rc<RefCell<Vec<u8>>>,
    seen: Rc<RefCell<Option<Vec<u8>>>>,
}

impl Read for ThenNote {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(input) = self.input.as_mut().filter(|i| !i.is_empty()) {
            let n = input.len().min(buf.len());
            buf[..n].copy_from_slice(&input[..n]);
            input.drain(..n);
            return Ok(n);
        }
        *self.seen.borrow_mut() = Some(self.delivered.borrow().clone());
        Ok(0)
    }
}

#[test]
fn replies_of_a_data_run_are_flushed_before_the_server_waits_for_more() {
    // The Treads are data jobs, answered in a run, last in the batch: their Rreads must
    // reach the client before the server sleeps in read, or a client of a buffered
    // writer (--stdio's line-buffered stdout) waits for it forever.
    // Eight Treads of 64 KiB on a server with data threads: a run big enough to be
    // answered in parallel, which writes its replies itself.
    let data = vec![7u8; 64 * 1024];
    let input = bytes_of(&tagged(
        vec![
            Msg::Tversion {
                msize: ninep::MAX_MSIZE,
                version: "9P2000.L".into(),
            },
            tattach(0, "glenda", Some(1)),
            twalk(0, 1, &[]),
            Msg::Tlcreate {
                fid: 1,
                name: "f".into(),
                flags: lflags::RDWR,
                mode: 0o640,
                gid: 0,
            },
            Msg::Twrite {
                fid: 1,
                offset: 0,
                data: data.clone(),
            },
        ]
        .into_iter()
        .chain((0..8).map(|_| Msg::Tread {
            fid: 1,
            offset: 0,
            count: 64 * 1024,
        }))
        .collect(),
    ));
    let delivered = Rc::default();
    let seen = Rc::default();
    let reader = ThenNote {
        input: Some(input),
        delivered: Rc::clone(&delivered),
        seen: Rc::clone(&seen),
    };
    let writer = Buffered {
        pending: Vec::new(),
        delivered: Rc::clone(&delivered),
    };
    let server = server_with_config(ServerConfig {
        data_threads: 2,
        ..ServerConfig::default()
    });
    let end = server.serve_peer(reader, writer, "buffered", AttachRule::BelieveNames);
    assert!(matches!(end, ConnectionEnd::Eof), "{end:?}");
    let seen = seen.borrow().clone().expect("the server read again");
    let replies = replies_of(&seen);
    let read = replies
        .iter()
        .filter(|f| matches!(&f.msg, Msg::Rread { data: d } if *d == data))
        .count();
    assert_eq!(read, 8, "every Rread was out when the server waited");
}

/// Hands out `pieces` one after another, each cut to the room a read gives (a vectored
/// read's buffers filled in order, as a socket's) and no read taking from two; the read after the last notes what
/// had been delivered by then (the server waiting for more) and ends the connection.
struct Staged {
    pieces: Vec<Vec<u8>>,
    delivered: Rc<RefCell<Vec<u8>>>,
    seen: Rc<RefCell<Option<Vec<u8>>>>,
}

impl Read for Staged {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.pieces.retain(|p| !p.is_empty());
        let Some(piece) = self.pieces.first_mut() else {
            *self.seen.borrow_mut() = Some(self.delivered.borrow().clone());
            return Ok(0);
        };
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        piece.drain(..n);
        Ok(n)
    }

    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        self.pieces.retain(|p| !p.is_empty());
        if self.pieces.is_empty() {
            return self.read(&mut []);
        }
        let piece = &mut self.pieces[0];
        let mut done = 0;
        for buf in bufs.iter_mut() {
            let n = buf.len().min(piece.len() - done);
            buf[..n].copy_from_slice(&piece[done..done + n]);
            done += n;
        }
        piece.drain(..done);
        Ok(done)
    }
}

/// Serves the setup (version with msize 1 MiB, attach, "f" created read-write as fid
/// 1) and then `pieces`; returns the replies out when the server waited after them.
fn delivered_when_waiting(pieces: Vec<Vec<u8>>) -> Vec<Fcall> {
    let setup = bytes_of(&open_f_at_max_msize());
    let delivered = Rc::default();
    let seen = Rc::default();
    let reader = Staged {
        pieces: [vec![setup], pieces].concat(),
        delivered: Rc::clone(&delivered),
        seen: Rc::clone(&seen),
    };
    let writer = Buffered {
        pending: Vec::new(),
        delivered: Rc::clone(&delivered),
    };
    let end = server().serve_peer(reader, writer, "staged", AttachRule::BelieveNames);
    assert!(matches!(end, ConnectionEnd::Eof), "{end:?}");
    let seen = seen.borrow().clone().expect("the server read again");
    replies_of(&seen)
}

fn twrite_bytes(tag: u16, offset: u64, len: usize) -> Vec<u8> {
    let data = vec![5u8; len];
    bytes_of(&[Fcall {
        tag,
        msg: Msg::Twrite {
            fid: 1,
            offset,
            data,
        },
    }])
}

#[test]
fn a_short_reply_is_not_held_back_by_a_twrite_begun_after_it() {
    // A small Twrite answered whole (an Rwrite of 11 bytes) and the header of a large
    // one: the large one's data may be slow to come, or come only once the client has
    // its earlier replies, so the Rwrite must be out before the server waits for it.
    let small = twrite_bytes(50, 0, 100);
    let large = twrite_bytes(51, 65536, 64 * 1024);
    let replies = delivered_when_waiting(vec![[&small[..], &large[..23]].concat()]);
    assert!(
        replies.iter().any(|f| f.tag == 50),
        "the Rwrite of tag 50 was out when the server waited: {replies:?}"
    );
}

#[test]
fn the_rwrite_of_a_gathered_twrite_waits_while_the_next_twrite_comes_in() {
    // The first Twrite's header, then its data with the next Twrite's header: the first
    // is read into pages, and its Rwrite waits (under DEFER_FLUSH_BELOW) for the second,
    // whose client is sending it, to go out with it.
    let first = twrite_bytes(60, 0, 64 * 1024);
    let second = twrite_bytes(61, 65536, 64 * 1024);
    let replies = delivered_when_waiting(vec![
        first[..23].to_vec(),
        [&first[23..], &second[..23]].concat(),
    ]);
    assert!(
        replies.iter().any(|f| f.tag == 3),
        "the setup's replies were out: {replies:?}"
    );
    assert!(
        !replies.iter().any(|f| f.tag == 60),
        "the Rwrite of tag 60 waited for the next one: {replies:?}"
    );
}
