//! Twrites whose data is read straight into page buffers that become the file's pages
//! (`ninep_server/input.rs`, `fs/data/gathered.rs`), through the real connection loop
//! over a unix socket pair, with the client's bytes arriving in pieces of a few
//! thousand bytes so that every phase of the vectored reads is cut somewhere:
//!
//! - aligned, unaligned and back-to-back Twrites, with Treads and a Tclunk between them:
//!   every reply is right, the file reads back what was written, its pages were taken
//!   from the received buffers (counted), and memory in use is the file's pages alone;
//! - Twrites the fast path does not take (a fid opened read-only, an unknown fid, a
//!   count above the iounit): the same error replies as when such a message arrives
//!   whole, and nothing written;
//! - past the memory limit, a gathered Twrite fails and changes nothing.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ninep::{encode, errno, lflags, Fcall, Msg, IOHDRSZ, NOFID, NOTAG};
use ramfs::fs::{Clock, Config, Fs, NewKind, NewNode, NodeId, PAGE_SIZE};
use ramfs::ninep_server::{ConnectionEnd, Server, ServerConfig};

const MSIZE: u32 = 1 << 20;
const DEADLINE: Duration = Duration::from_secs(20);

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 253) as u8 ^ (i / PAGE_SIZE) as u8 ^ seed)
        .collect()
}

/// A tree of `limit` bytes with an empty file "f".
fn tree(limit: u64) -> (Arc<Fs>, NodeId) {
    let fs = Arc::new(Fs::new(Config {
        memory_limit: limit,
        owner: "adm".into(),
        clock: Clock::Fixed(1_700_000_000),
    }));
    let f = {
        let mut t = fs.lock();
        let who = t.cred_for_uid(0, None);
        let root = t.root();
        t.create(&who, root, "f", NewNode::new(NewKind::File, 0o666))
            .expect("create")
    };
    (fs, f)
}

/// The client's end: requests go out in pieces of 1 to 6,000 bytes, each its own
/// write, so the server's reads find messages cut anywhere.
struct Client {
    stream: UnixStream,
    sent: usize,
}

impl Client {
    fn send_in_pieces(&mut self, bytes: &[u8]) {
        let mut at = 0;
        while at < bytes.len() {
            self.sent += 1;
            let n = (1 + (self.sent * 7919) % 6000).min(bytes.len() - at);
            self.stream.write_all(&bytes[at..at + n]).expect("send");
            if self.sent.is_multiple_of(7) {
                // Now and then the server catches up and finds the socket empty.
                thread::sleep(Duration::from_micros(200));
            }
            at += n;
        }
    }

    fn send(&mut self, requests: &[Fcall]) {
        let mut out = Vec::new();
        for fc in requests {
            encode(fc, &mut out).expect("encode");
        }
        self.send_in_pieces(&out);
    }

    fn receive(&mut self) -> Fcall {
        common::receive_reply(&mut self.stream)
    }

    fn call(&mut self, tag: u16, msg: Msg) -> Msg {
        common::call(&mut self.stream, tag, msg)
    }

    /// Version, attach as root, fid 1 "f" opened read-write and fid 2 "f" read-only.
    fn open_f(&mut self) {
        let version = Msg::Tversion {
            msize: MSIZE,
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
        for (fid, flags) in [(1, lflags::RDWR), (2, lflags::RDONLY)] {
            let walk = Msg::Twalk {
                fid: 0,
                newfid: fid,
                wnames: vec!["f".into()],
            };
            assert!(matches!(self.call(2, walk), Msg::Rwalk { .. }));
            assert!(matches!(
                self.call(3, Msg::Tlopen { fid, flags }),
                Msg::Rlopen { .. }
            ));
        }
    }

    fn read_back(&mut self, offset: u64, count: u32) -> Vec<u8> {
        match self.call(
            9,
            Msg::Tread {
                fid: 1,
                offset,
                count,
            },
        ) {
            Msg::Rread { data } => data,
            other => panic!("Tread: {other:?}"),
        }
    }
}

fn connect(fs: &Arc<Fs>) -> (Client, JoinHandle<ConnectionEnd>) {
    let (ours, theirs) = UnixStream::pair().expect("socket pair");
    ours.set_read_timeout(Some(DEADLINE)).expect("read timeout");
    let server = Server::new(Arc::clone(fs), ServerConfig::default());
    let w = theirs.try_clone().expect("clone");
    let serving = thread::spawn(move || server.serve(theirs, w, "gathered_writes"));
    (
        Client {
            stream: ours,
            sent: 0,
        },
        serving,
    )
}

fn twrite(tag: u16, fid: u32, offset: u64, data: Vec<u8>) -> Fcall {
    Fcall {
        tag,
        msg: Msg::Twrite { fid, offset, data },
    }
}

fn taken(fs: &Fs, f: NodeId) -> u64 {
    fs.lock_shared()
        .file_handle(f)
        .expect("a regular file")
        .pages_taken()
}

fn used(fs: &Fs) -> u64 {
    fs.lock_shared().statfs().used
}

#[test]
fn twrites_read_into_pages_write_what_was_sent() {
    let (fs, f) = tree(64 << 20);
    let (mut c, serving) = connect(&fs);
    c.open_f();
    let used_empty = used(&fs);
    // (offset, length): aligned, unaligned at both ends, 1 MiB less the header's room,
    // and back-to-back 64 KiB writes.
    let mut writes = vec![
        (0u64, 64 * 1024),
        (3 * 65536 + 100, 100_000),
        (1 << 20, (MSIZE - IOHDRSZ) as usize),
    ];
    writes.extend((0..8).map(|i| ((4 << 20) + i * 65536, 64 * 1024)));
    let mut model = vec![0u8; 0];
    let mut requests = Vec::new();
    for (i, &(offset, len)) in writes.iter().enumerate() {
        let data = pattern(len, i as u8);
        let end = offset as usize + len;
        if model.len() < end {
            model.resize(end, 0);
        }
        model[offset as usize..end].copy_from_slice(&data);
        requests.push(twrite(10 + i as u16, 1, offset, data));
        if i == 1 {
            // Other requests between the Twrites.
            let read = Msg::Tread {
                fid: 1,
                offset: 0,
                count: 8192,
            };
            requests.push(Fcall {
                tag: 100,
                msg: read,
            });
        }
    }
    c.send(&requests);
    for (i, &(_, len)) in writes.iter().enumerate() {
        let reply = c.receive();
        if reply.tag == 100 {
            assert_eq!(
                reply.msg,
                Msg::Rread {
                    data: model[..8192].to_vec()
                }
            );
            let next = c.receive();
            assert_eq!(
                (next.tag, next.msg),
                (10 + i as u16, Msg::Rwrite { count: len as u32 })
            );
            continue;
        }
        assert_eq!(reply.tag, 10 + i as u16);
        assert_eq!(reply.msg, Msg::Rwrite { count: len as u32 });
    }
    for at in (0..model.len()).step_by(512 * 1024) {
        let count = (512 * 1024).min(model.len() - at);
        let got = c.read_back(at as u64, count as u32);
        assert!(got == model[at..at + count], "bytes at {at}");
    }
    // Every write but the first few (read whole before any of its data arrived in
    // pages) had most of its pages taken from the received buffers.
    let whole_pages: u64 = writes
        .iter()
        .map(|&(_, len)| (len / PAGE_SIZE) as u64)
        .sum();
    assert!(
        taken(&fs, f) > whole_pages / 2,
        "{} of {whole_pages} pages taken",
        taken(&fs, f)
    );
    let pages_used = (used(&fs) - used_empty) / PAGE_SIZE as u64;
    let data_pages = model
        .chunks(PAGE_SIZE)
        .enumerate()
        .filter(|(i, _)| {
            let (lo, hi) = ((i * PAGE_SIZE) as u64, ((i + 1) * PAGE_SIZE) as u64);
            writes.iter().any(|&(o, l)| o < hi && o + l as u64 > lo)
        })
        .count() as u64;
    assert_eq!(pages_used, data_pages, "memory in use is the file's pages");
    drop(c);
    assert!(matches!(serving.join().unwrap(), ConnectionEnd::Eof));
}

#[test]
fn twrites_the_fast_path_does_not_take_get_the_ordinary_errors() {
    let (fs, f) = tree(64 << 20);
    let (mut c, serving) = connect(&fs);
    c.open_f();
    let big = pattern(200 * 1024, 1);
    c.send(&[
        twrite(20, 2, 0, big.clone()),
        twrite(21, 77, 0, big.clone()),
        twrite(22, 1, 0, big.clone()),
    ]);
    assert_eq!(
        c.receive(),
        Fcall {
            tag: 20,
            msg: Msg::Rlerror {
                ecode: errno::EBADF
            }
        }
    );
    assert_eq!(
        c.receive(),
        Fcall {
            tag: 21,
            msg: Msg::Rlerror {
                ecode: errno::EBADF
            }
        }
    );
    assert_eq!(
        c.receive(),
        Fcall {
            tag: 22,
            msg: Msg::Rwrite {
                count: big.len() as u32
            }
        }
    );
    assert!(c.read_back(0, 200 * 1024) == big);
    assert!(taken(&fs, f) > 0);
    drop(c);
    assert!(matches!(serving.join().unwrap(), ConnectionEnd::Eof));
}

#[test]
fn a_gathered_twrite_past_the_memory_limit_changes_nothing() {
    let (fs, f) = tree(64 << 20);
    let (mut c, serving) = connect(&fs);
    c.open_f();
    let first = pattern(64 * 1024, 3);
    c.send(&[twrite(30, 1, 0, first.clone())]);
    assert_eq!(
        c.receive().msg,
        Msg::Rwrite {
            count: first.len() as u32
        }
    );
    // Leave room for fewer pages than the next write needs.
    let stats = fs.lock_shared().statfs();
    // Whole pages only, so that exactly 8 pages stay free.
    let free = (stats.limit - stats.used) / PAGE_SIZE as u64 * PAGE_SIZE as u64;
    let hog = free - 8 * PAGE_SIZE as u64;
    let hog_data = vec![7u8; hog as usize];
    let root = fs.lock().cred_for_uid(0, None);
    fs.write(&root, f, 1 << 30, &hog_data, false)
        .expect("fill the tree");
    let used_before = used(&fs);
    let second = pattern(64 * 1024, 4);
    c.send(&[twrite(31, 1, 512 * 1024, second)]);
    assert_eq!(
        c.receive().msg,
        Msg::Rlerror {
            ecode: errno::ENOSPC
        }
    );
    assert_eq!(used(&fs), used_before);
    assert!(c.read_back(0, 64 * 1024) == first);
    assert_eq!(c.read_back(512 * 1024, 4096), vec![0u8; 4096]);
    drop(c);
    assert!(matches!(serving.join().unwrap(), ConnectionEnd::Eof));
}
