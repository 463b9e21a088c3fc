//! A scriptable fake 9P server on the in-memory pipe, and test helpers.
#![allow(dead_code)]

use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use mnt::host::{pipe, PipeServer, ServerRecv, StdPlatform};
use mnt::ninep::{self, Dialect, Fcall, Msg, Qid};
use mnt::{AttachArgs, Chan, Interrupt, Mount, MountOptions, Platform, Transport};

/// How long a test waits for anything before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The root qid the fake server attaches to.
pub const ROOT: Qid = Qid {
    ty: ninep::qt::DIR,
    version: 0,
    path: 1,
};

/// Aborts the whole test process if the test has not finished by then, so a hung
/// client cannot hang the test run. Dropping the guard disarms it.
pub struct Watchdog(Option<mpsc::Sender<()>>);

pub fn watchdog(limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("test watchdog: still running after {limit:?}; aborting");
            std::process::exit(101);
        }
    });
    Watchdog(Some(tx))
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// The server end, speaking decoded messages.
pub struct Fake {
    pub srv: PipeServer,
    pub dialect: Dialect,
}

/// What the fake server got.
#[derive(Debug)]
pub enum Got {
    Msg(Fcall),
    Eof,
    Timeout,
}

impl Fake {
    /// The next request; fails the test on end of file or after [`DEADLINE`].
    pub fn recv(&self) -> Fcall {
        match self.try_recv(DEADLINE) {
            Got::Msg(f) => f,
            other => panic!("fake server expected a request, got {other:?}"),
        }
    }

    pub fn try_recv(&self, wait: Duration) -> Got {
        match self.srv.recv_timeout(wait) {
            ServerRecv::Msg(b) => Got::Msg(
                ninep::decode(&b, self.dialect).expect("the client sends well-formed messages"),
            ),
            ServerRecv::Eof => Got::Eof,
            ServerRecv::Timeout => Got::Timeout,
        }
    }

    /// Sends a reply.
    pub fn reply(&self, tag: u16, msg: Msg) {
        let mut b = Vec::new();
        ninep::encode(&Fcall { tag, msg }, &mut b).expect("encodable reply");
        self.srv.send(b);
    }

    /// Sends raw bytes as one message.
    pub fn raw(&self, bytes: Vec<u8>) {
        self.srv.send(bytes);
    }

    /// Waits (with the deadline) for end of file, answering nothing; returns the
    /// requests that came before it.
    pub fn until_eof(&self) -> Vec<Fcall> {
        let mut before = Vec::new();
        loop {
            match self.try_recv(DEADLINE) {
                Got::Msg(f) => before.push(f),
                Got::Eof => return before,
                Got::Timeout => panic!("no end of file; got {before:?}"),
            }
        }
    }

    /// Answers a clunk or remove request (fails the test on anything else).
    pub fn ack_clunk(&self) -> u32 {
        let f = self.recv();
        match f.msg {
            Msg::Tclunk { fid } => {
                self.reply(f.tag, Msg::Rclunk);
                fid
            }
            m => panic!("expected Tclunk, got {m:?}"),
        }
    }

    /// Answers the next walk fully with made-up qids; returns (fid, newfid, names).
    pub fn ack_walk(&self) -> (u32, u32, Vec<String>) {
        let f = self.recv();
        match f.msg {
            Msg::Twalk {
                fid,
                newfid,
                wnames,
            } => {
                let wqids = (0..wnames.len())
                    .map(|i| Qid {
                        ty: 0,
                        version: 0,
                        path: 1000 + i as u64,
                    })
                    .collect();
                self.reply(f.tag, Msg::Rwalk { wqids });
                (fid, newfid, wnames)
            }
            m => panic!("expected Twalk, got {m:?}"),
        }
    }
}

/// The attach arguments the tests use.
pub fn args() -> AttachArgs {
    AttachArgs {
        uname: "glenda".into(),
        aname: String::new(),
        n_uname: 1000,
    }
}

/// Version and attach against a fake server answering `server_msize`; returns the
/// mount, its root channel and the server.
pub fn start(dialect: Dialect, want_msize: u32, server_msize: u32) -> (Mount, Chan, Fake) {
    let (t, srv) = pipe();
    start_over(
        Box::new(t),
        StdPlatform::shared(),
        srv,
        dialect,
        want_msize,
        server_msize,
    )
}

/// [`start`] over a transport (made from the pipe's client end) and a platform of
/// the test's own.
pub fn start_over(
    t: Box<dyn Transport>,
    platform: Arc<dyn Platform>,
    srv: PipeServer,
    dialect: Dialect,
    want_msize: u32,
    server_msize: u32,
) -> (Mount, Chan, Fake) {
    let fake = Fake { srv, dialect };
    let server = thread::spawn(move || {
        let v = fake.recv();
        let Msg::Tversion { msize, version } = v.msg else {
            panic!("expected Tversion, got {v:?}");
        };
        assert_eq!(v.tag, ninep::NOTAG);
        assert_eq!(version, dialect.version_str());
        fake.reply(
            ninep::NOTAG,
            Msg::Rversion {
                msize: msize.min(server_msize),
                version,
            },
        );
        let a = fake.recv();
        assert!(
            matches!(a.msg, Msg::Tattach { .. }),
            "expected Tattach, got {a:?}"
        );
        fake.reply(a.tag, Msg::Rattach { qid: ROOT });
        if dialect == Dialect::L {
            // The caller's root is a clone of the attach's fid, which the mount keeps.
            let (fid, newfid, names) = fake.ack_walk();
            let Msg::Tattach { fid: afid, .. } = a.msg else {
                unreachable!()
            };
            assert_eq!(fid, afid);
            assert_ne!(newfid, afid);
            assert!(names.is_empty());
        }
        fake
    });
    let opts = MountOptions {
        msize: want_msize,
        dialect,
    };
    let intr = Interrupt::new();
    let m = Mount::version(t, platform, &opts, &intr).expect("version");
    let root = m.attach(&args(), &intr).expect("attach");
    let fake = server.join().expect("handshake");
    (m, root, fake)
}

/// A 9P2000 mount with a comfortable msize.
pub fn start_p2000() -> (Mount, Chan, Fake) {
    start(Dialect::P2000, 8192 + ninep::IOHDRSZ, 1 << 20)
}

/// Waits until `cond` holds, polling, or fails the test after [`DEADLINE`].
pub fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = std::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// The qid the fake server gives opened files.
pub const FILE: Qid = Qid {
    ty: 0,
    version: 3,
    path: 42,
};

/// Walks `root` to "f" and opens it read-write, the fake server answering with
/// `iounit`.
pub fn open_file(root: &Chan, fake: &Fake, iounit: u32) -> Chan {
    thread::scope(|s| {
        let h = s.spawn(|| {
            let intr = Interrupt::new();
            let mut c = root.walk(&["f"], &intr)?;
            c.open(mnt::OpenMode::RDWR, &intr)?;
            Ok::<Chan, mnt::MntError>(c)
        });
        let w = fake.recv();
        let Msg::Twalk { .. } = w.msg else {
            panic!("expected Twalk, got {w:?}")
        };
        fake.reply(w.tag, Msg::Rwalk { wqids: vec![FILE] });
        let o = fake.recv();
        match o.msg {
            Msg::Topen { .. } => fake.reply(o.tag, Msg::Ropen { qid: FILE, iounit }),
            Msg::Tlopen { .. } => fake.reply(o.tag, Msg::Rlopen { qid: FILE, iounit }),
            m => panic!("expected an open, got {m:?}"),
        }
        h.join().expect("client thread").expect("walk and open")
    })
}

/// A plausible 9P2000 stat of a file.
pub fn file_stat(name: &str, length: u64) -> ninep::Stat {
    ninep::Stat {
        ty: 0,
        dev: 0,
        qid: FILE,
        mode: 0o644,
        atime: 1,
        mtime: 2,
        length,
        name: name.into(),
        uid: "glenda".into(),
        gid: "glenda".into(),
        muid: "glenda".into(),
    }
}
