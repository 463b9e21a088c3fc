//! End-to-end tests of the 9P front end in process: byte streams in memory, and
//! connections over socket pairs served by threads, several at once on one tree.
//! One topic a module (version and attach, 9P2000, framing, 9P2000.L, memory, several
//! connections, flushing through a buffered writer, reply order, POSIX cases, data
//! runs); this module holds their helpers.

use std::io::{Read, Write};
use std::sync::Arc;

use ninep::{
    decode, dm, encode, errno, lflags, lock, om, qt, Dialect, Dirent, Fcall, LockReq, Msg, SetAttr,
    Stat, AT_REMOVEDIR, NOFID, NOTAG,
};

use super::{ConnectionEnd, FramingError, Server, ServerConfig};
use crate::fs::{Clock, Config, Fs};

fn server_with(max_fids: usize) -> Arc<Server> {
    server_with_config(ServerConfig {
        max_fids,
        trace: false,
        ..ServerConfig::default()
    })
}

/// A fresh tree of 64 MiB owned by adm, its clock stopped.
fn fresh_fs() -> Fs {
    Fs::new(Config {
        memory_limit: 64 << 20,
        owner: "adm".into(),
        clock: Clock::Fixed(1_700_000_000),
    })
}

fn server_with_config(config: ServerConfig) -> Arc<Server> {
    Arc::new(Server::new(Arc::new(fresh_fs()), config))
}

fn server() -> Arc<Server> {
    server_with(100)
}

/// A server of a fresh tree with a small memory limit, for the accounting tests.
fn server_with_memory(limit: u64) -> Arc<Server> {
    let fs = Arc::new(Fs::new(Config {
        memory_limit: limit,
        owner: "adm".into(),
        clock: Clock::Fixed(0),
    }));
    Arc::new(Server::new(fs, ServerConfig::default()))
}

fn used(s: &Server) -> u64 {
    s.fs().lock().statfs().used
}

fn bytes_of(msgs: &[Fcall]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        encode(m, &mut out).expect("encode request");
    }
    out
}

fn replies_of(mut buf: &[u8]) -> Vec<Fcall> {
    let mut out = Vec::new();
    while let Some(size) = ninep::peek_size(buf) {
        let (m, rest) = buf.split_at(size as usize);
        out.push(decode(m, Dialect::L).expect("decode reply"));
        buf = rest;
    }
    out
}

/// Serves a whole input stream in memory; returns the replies and why it ended.
fn serve_bytes(server: &Server, input: &[u8]) -> (Vec<Fcall>, ConnectionEnd) {
    let mut output = Vec::new();
    let end = server.serve(input, &mut output, "test");
    (replies_of(&output), end)
}

/// Numbers requests with tags 1, 2, … (Tversion gets NOTAG).
fn tagged(msgs: Vec<Msg>) -> Vec<Fcall> {
    msgs.into_iter()
        .enumerate()
        .map(|(i, msg)| Fcall {
            tag: if matches!(msg, Msg::Tversion { .. }) {
                NOTAG
            } else {
                i as u16
            },
            msg,
        })
        .collect()
}

/// Version (9P2000.L, msize MAX_MSIZE), attach, and "f" created read-write as fid 1.
fn open_f_at_max_msize() -> Vec<Fcall> {
    tagged(vec![
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
    ])
}

fn tversion(v: &str) -> Msg {
    Msg::Tversion {
        msize: 8192,
        version: v.into(),
    }
}

fn tattach(fid: u32, uname: &str, n_uname: Option<u32>) -> Msg {
    Msg::Tattach {
        fid,
        afid: NOFID,
        uname: uname.into(),
        aname: String::new(),
        n_uname,
    }
}

fn twalk(fid: u32, newfid: u32, names: &[&str]) -> Msg {
    Msg::Twalk {
        fid,
        newfid,
        wnames: names.iter().map(|s| s.to_string()).collect(),
    }
}

fn rerror(m: &Msg) -> &str {
    match m {
        Msg::Rerror { ename } => ename,
        other => panic!("expected Rerror, got {other:?}"),
    }
}

fn rlerror(m: &Msg) -> u32 {
    match m {
        Msg::Rlerror { ecode } => *ecode,
        other => panic!("expected Rlerror, got {other:?}"),
    }
}

/// Decodes an Rreaddir payload into (name, cookie) pairs.
fn dirents(m: &Msg) -> Vec<(String, u64)> {
    let Msg::Rreaddir { data } = m else {
        panic!("expected Rreaddir, got {m:?}")
    };
    let mut out = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let (d, used) = Dirent::decode(rest).expect("dirent");
        out.push((d.name, d.offset));
        rest = &rest[used..];
    }
    out
}

/// A client connection over a socket pair, served by its own thread.
#[cfg(unix)]
struct Conn {
    stream: std::os::unix::net::UnixStream,
    dialect: Dialect,
    next_tag: u16,
    thread: Option<std::thread::JoinHandle<ConnectionEnd>>,
}

#[cfg(unix)]
impl Conn {
    fn open(server: &Arc<Server>, version: &str) -> Conn {
        let (mine, theirs) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        mine.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let srv = Arc::clone(server);
        let thread = std::thread::spawn(move || {
            let reader = theirs.try_clone().expect("clone");
            srv.serve(reader, theirs, "pair")
        });
        let dialect = if version == "9P2000.L" {
            Dialect::L
        } else {
            Dialect::P2000
        };
        let mut c = Conn {
            stream: mine,
            dialect,
            next_tag: 0,
            thread: Some(thread),
        };
        let r = c.rpc(tversion(version));
        assert!(matches!(r, Msg::Rversion { .. }), "{r:?}");
        c
    }

    fn send(&mut self, msg: Msg) -> u16 {
        let tag = if matches!(msg, Msg::Tversion { .. }) {
            NOTAG
        } else {
            self.next_tag += 1;
            self.next_tag
        };
        let mut buf = Vec::new();
        encode(&Fcall { tag, msg }, &mut buf).expect("encode");
        self.stream.write_all(&buf).expect("write");
        tag
    }

    fn recv(&mut self) -> Fcall {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).expect("read size");
        let n = u32::from_le_bytes(size) as usize;
        let mut buf = size.to_vec();
        buf.resize(n, 0);
        self.stream.read_exact(&mut buf[4..]).expect("read body");
        decode(&buf, self.dialect).expect("decode reply")
    }

    fn rpc(&mut self, msg: Msg) -> Msg {
        let tag = self.send(msg);
        let r = self.recv();
        assert_eq!(r.tag, tag);
        r.msg
    }

    fn close(mut self) -> ConnectionEnd {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        self.thread
            .take()
            .expect("thread")
            .join()
            .expect("server thread")
    }
}

mod connections;
mod flushing;
mod framing;
mod linux;
mod memory;
mod order;
mod plan9;
mod polling;
mod posix;
mod runs;
mod version;
