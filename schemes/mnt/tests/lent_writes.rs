//! Writes from borrowed slices (`Chan::write_parts`, what a kernel uses for pages lent to
//! it): each `Twrite`'s header is encoded alone and the caller's own slices follow it to
//! the transport, split at the iounit, never copied into a message buffer; a stream
//! transport writes them with vectored writes of those very slices.

mod common;

use std::io::{self, IoSlice, Write};
use std::ops::Range;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use mnt::host::{pipe, StdPlatform, StreamTransport};
use mnt::ninep::{Dialect, Msg};
use mnt::{Interrupt, Transport, TransportError};

/// Address ranges of the data parts (all but the header) of every `send_parts`.
type Seen = Arc<Mutex<Vec<Vec<Range<usize>>>>>;

/// A transport that notes where the data parts it is given live, then forwards.
struct Watching {
    inner: Box<dyn Transport>,
    seen: Seen,
}

fn span(part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize;
    start..start + part.len()
}

impl Transport for Watching {
    fn send(&self, msg: &[u8]) -> Result<(), TransportError> {
        self.inner.send(msg)
    }

    fn send_parts(&self, parts: &[&[u8]]) -> Result<(), TransportError> {
        let data = parts[1..].iter().map(|part| span(part)).collect();
        self.seen.lock().unwrap().push(data);
        self.inner.send_parts(parts)
    }

    fn recv(&self, intr: &Interrupt) -> Result<Vec<u8>, TransportError> {
        self.inner.recv(intr)
    }

    fn close(&self) {
        self.inner.close();
    }
}

fn within(inner: &Range<usize>, outer: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

#[test]
fn a_write_from_parts_sends_the_callers_slices_split_at_the_iounit() {
    let _w = watchdog(Duration::from_secs(60));
    let (t, srv) = pipe();
    let seen = Seen::default();
    let watching = Watching {
        inner: Box::new(t),
        seen: seen.clone(),
    };
    let (m, root, fake) = start_over(
        Box::new(watching),
        StdPlatform::shared(),
        srv,
        Dialect::P2000,
        8192 + mnt::ninep::IOHDRSZ,
        1 << 20,
    );
    let file = open_file(&root, &fake, 100);
    let a = vec![1u8; 30];
    let b: Vec<u8> = (0..130).map(|i| i as u8).collect();
    let c = vec![7u8; 45];
    let whole: Vec<u8> = [&a[..], &b[..], &c[..]].concat();
    let n = thread::scope(|s| {
        let h = s.spawn(|| file.write_parts(1000, &[&a, &b, &c], &Interrupt::new()));
        let mut got = Vec::new();
        for (offset, len) in [(1000u64, 100usize), (1100, 100), (1200, 5)] {
            let r = fake.recv();
            let Msg::Twrite {
                offset: at, data, ..
            } = r.msg
            else {
                panic!("{r:?}")
            };
            assert_eq!((at, data.len()), (offset, len));
            got.extend_from_slice(&data);
            fake.reply(r.tag, Msg::Rwrite { count: len as u32 });
        }
        assert_eq!(got, whole, "the bytes, in order, across the parts");
        h.join().expect("client")
    })
    .expect("write_parts");
    assert_eq!(n, 205);
    // Every data part handed to the transport is the caller's memory, not a copy.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "one send_parts a message");
    let owners = [span(&a), span(&b), span(&c)];
    for part in seen.iter().flatten() {
        assert!(
            owners.iter().any(|owner| within(part, owner)),
            "a part at {part:?} is none of the caller's slices"
        );
    }
    let lens: Vec<usize> = seen
        .iter()
        .map(|msg| msg.iter().map(ExactSizeIterator::len).sum())
        .collect();
    assert_eq!(lens, [100, 100, 5]);
    let st = m.stats();
    assert_eq!((st.write_bytes_lent, st.write_bytes_copied), (205, 0));
    assert_eq!(st.bytes_written, 205);
    // An ordinary write copies into the message, and says so.
    let n = thread::scope(|s| {
        let h = s.spawn(|| file.write(0, &c, &Interrupt::new()));
        let r = fake.recv();
        fake.reply(r.tag, Msg::Rwrite { count: 45 });
        h.join().expect("client")
    })
    .expect("write");
    assert_eq!(n, 45);
    let st = m.stats();
    assert_eq!((st.write_bytes_lent, st.write_bytes_copied), (205, 45));
    assert_eq!(seen.len(), 3, "a copied write sends one buffer");
}

/// A write half that records what each vectored write was given and takes at most
/// `chunk` bytes a call, so a message needs several calls.
struct Recording {
    log: Arc<Mutex<Recorded>>,
    chunk: usize,
}

#[derive(Default)]
struct Recorded {
    bytes: Vec<u8>,
    /// The address ranges of the slices of every `write_vectored` call.
    vectored: Vec<Vec<Range<usize>>>,
    plain_writes: usize,
}

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut log = self.log.lock().unwrap();
        log.plain_writes += 1;
        let n = buf.len().min(self.chunk);
        log.bytes.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut log = self.log.lock().unwrap();
        log.vectored.push(bufs.iter().map(|b| span(b)).collect());
        let mut left = self.chunk;
        let mut n = 0;
        for buf in bufs {
            let k = buf.len().min(left);
            log.bytes.extend_from_slice(&buf[..k]);
            n += k;
            left -= k;
            if left == 0 {
                break;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_stream_transport_sends_parts_with_vectored_writes_of_the_parts_themselves() {
    let _w = watchdog(Duration::from_secs(60));
    let (ours, _theirs) = UnixStream::pair().expect("socket pair");
    let log = Arc::new(Mutex::new(Recorded::default()));
    let writer = Recording {
        log: log.clone(),
        chunk: 1000,
    };
    let transport = StreamTransport::new(ours, writer, None).expect("transport");
    let head = vec![0xeeu8; 23];
    let pages: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 4096]).collect();
    let mut parts: Vec<&[u8]> = vec![&head];
    parts.extend(pages.iter().map(Vec::as_slice));
    transport.send_parts(&parts).expect("send_parts");
    let log = log.lock().unwrap();
    assert_eq!(log.bytes, parts.concat(), "the message, whole and in order");
    assert_eq!(log.plain_writes, 0, "nothing went through a plain write");
    assert!(
        log.vectored.len() >= 13,
        "1000 bytes a call: {} calls",
        log.vectored.len()
    );
    let owners: Vec<Range<usize>> = parts.iter().map(|part| span(part)).collect();
    for slice in log.vectored.iter().flatten() {
        assert!(
            owners.iter().any(|owner| within(slice, owner)),
            "a vectored write was given {slice:?}, not a part of the caller's"
        );
    }
}
