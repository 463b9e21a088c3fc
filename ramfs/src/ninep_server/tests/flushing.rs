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
