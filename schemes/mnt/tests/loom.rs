//! loom models of the mount driver's lock protocols. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p mnt --test loom --release` (`.ci/loom`).
//!
//! Under `--cfg loom` the driver's locks and atomics are loom's (`src/sync.rs`) and a
//! mount has four tags, one kept for flushes. Each model runs the real `Mount` and
//! `Chan` code over a scripted transport (it answers the handshake itself and hands
//! the rest to a server thread of the model) and a loom rendezvous:
//!
//! 1. the reader hand-off: three callers, one reading for all; a reader whose reply
//!    came hands the role on, and a waiter woken to take it that leaves instead
//!    passes it on (without either, loom finds a caller asleep with nobody reading);
//! 2. tag exhaustion: a caller's flush chain holds every tag a request may take; a
//!    second caller waits for a tag, reading meanwhile; the tags the first frees by
//!    settling its chain must reach it even when it sleeps in `recv` (without the
//!    mux's wake-up of its reader, loom finds it asleep for ever);
//! 3. flush settling: a reply that beats its `Rflush` wins, the note stays posted,
//!    every tag comes back (without the re-post, the note is lost).
//!
//! Each model counts the interleavings it explored and asserts there was more than one.
#![cfg(loom)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use loom::sync::{Condvar, Mutex};
use loom::thread;
use mnt::ninep::{self, Dialect, Fcall, Msg, Qid};
use mnt::{
    AttachArgs, Chan, Interrupt, MntError, Mount, MountOptions, OpenMode, Platform, Rendez,
    Transport, TransportError,
};

/// Runs `model` under loom, with at most `preemptions` preemptions a run (enough
/// for every defect these models were written for; more takes many minutes on a
/// shared machine). Returns how many interleavings it explored.
fn explore(preemptions: usize, model: impl Fn() + Sync + Send + 'static) -> usize {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    builder.check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        model();
    });
    let n = runs.load(Ordering::Relaxed);
    eprintln!("explored {n} interleavings");
    n
}

/// Plan 9's sleep and wakeup on loom's lock and condition variable. `wakeup`
/// reports a sleeper even when the thread was already woken (the loosest reading of
/// the contract), so the mux must pass on a reader role offered to a caller that
/// leaves instead.
#[derive(Default)]
struct LoomRendez {
    asleep: Mutex<bool>,
    cv: Condvar,
}

impl Rendez for LoomRendez {
    fn sleep(&self, ready: &dyn Fn() -> bool) {
        let mut asleep = self.asleep.lock().unwrap();
        while !ready() {
            *asleep = true;
            asleep = self.cv.wait(asleep).unwrap();
        }
        *asleep = false;
    }

    fn wakeup(&self) -> bool {
        let _asleep = self.asleep.lock().unwrap();
        self.cv.notify_one();
        true
    }
}

struct LoomPlatform;

impl Platform for LoomPlatform {
    fn rendez(&self) -> Arc<dyn Rendez> {
        Arc::new(LoomRendez::default())
    }
}

const MSIZE: u32 = 8192;
const FILE: Qid = Qid {
    ty: 0,
    version: 0,
    path: 2,
};

/// Both directions of the connection. The handshake (version, attach, walk, open,
/// clunk) is answered by the transport's `send` itself; the other requests go to
/// the model's server thread.
struct Wire {
    to_server: Mutex<VecDeque<Fcall>>,
    server_cv: Condvar,
    to_client: Mutex<VecDeque<Vec<u8>>>,
    client_rendez: Arc<LoomRendez>,
}

impl Wire {
    fn new() -> Arc<Wire> {
        Arc::new(Wire {
            to_server: Mutex::new(VecDeque::new()),
            server_cv: Condvar::new(),
            to_client: Mutex::new(VecDeque::new()),
            client_rendez: Arc::new(LoomRendez::default()),
        })
    }

    fn reply(&self, tag: u16, msg: Msg) {
        let mut bytes = Vec::new();
        ninep::encode(&Fcall { tag, msg }, &mut bytes).expect("encodable reply");
        self.to_client.lock().unwrap().push_back(bytes);
        self.client_rendez.wakeup();
    }

    /// The next request for the server thread.
    fn next(&self) -> Fcall {
        let mut q = self.to_server.lock().unwrap();
        loop {
            if let Some(f) = q.pop_front() {
                return f;
            }
            q = self.server_cv.wait(q).unwrap();
        }
    }
}

struct WireEnd(Arc<Wire>);

impl Transport for WireEnd {
    fn send(&self, msg: &[u8]) -> Result<(), TransportError> {
        let f = ninep::decode(msg, Dialect::P2000).expect("the client sends well-formed messages");
        let wire = &self.0;
        match f.msg {
            Msg::Tversion { version, .. } => wire.reply(
                f.tag,
                Msg::Rversion {
                    msize: MSIZE,
                    version,
                },
            ),
            Msg::Tattach { .. } => wire.reply(
                f.tag,
                Msg::Rattach {
                    qid: Qid {
                        ty: ninep::qt::DIR,
                        version: 0,
                        path: 1,
                    },
                },
            ),
            Msg::Twalk { .. } => wire.reply(f.tag, Msg::Rwalk { wqids: vec![FILE] }),
            Msg::Topen { .. } => wire.reply(
                f.tag,
                Msg::Ropen {
                    qid: FILE,
                    iounit: 0,
                },
            ),
            Msg::Tclunk { .. } => wire.reply(f.tag, Msg::Rclunk),
            _ => {
                wire.to_server.lock().unwrap().push_back(f);
                wire.server_cv.notify_one();
            }
        }
        Ok(())
    }

    fn recv(&self, intr: &Interrupt) -> Result<Vec<u8>, TransportError> {
        let wire = &self.0;
        let rendez: Arc<dyn Rendez> = wire.client_rendez.clone();
        intr.sleep_on(&rendez, &|| !wire.to_client.lock().unwrap().is_empty());
        wire.to_client
            .lock()
            .unwrap()
            .pop_front()
            .ok_or(TransportError::Interrupted)
    }

    fn close(&self) {}
}

/// A mount over a fresh wire, and `n` open files (each its own fid). The root is
/// returned too: dropped, its queued clunk would hold a tag until someone reads.
fn mount(n: usize) -> (Arc<Wire>, Mount, Chan, Vec<Chan>) {
    let wire = Wire::new();
    let intr = Interrupt::new();
    let opts = MountOptions {
        msize: MSIZE,
        dialect: Dialect::P2000,
    };
    let m = Mount::version(
        Box::new(WireEnd(wire.clone())),
        Arc::new(LoomPlatform),
        &opts,
        &intr,
    )
    .expect("version");
    let args = AttachArgs {
        uname: "glenda".into(),
        aname: String::new(),
        n_uname: 1000,
    };
    let root = m.attach(&args, &intr).expect("attach");
    let files = (0..n)
        .map(|_| {
            let mut f = root.walk(&["f"], &intr).expect("walk");
            f.open(OpenMode::READ, &intr).expect("open");
            f
        })
        .collect();
    (wire, m, root, files)
}

fn read(file: &Chan, intr: &Interrupt) -> Result<Vec<u8>, MntError> {
    let mut buf = [0u8; 8];
    file.read(0, &mut buf, intr).map(|n| buf[..n].to_vec())
}

/// The data the server answers a read of `fid` with.
fn data_of(fid: u32) -> Vec<u8> {
    vec![u8::try_from(fid).unwrap_or(0xff); 3]
}

/// Model 1. Three callers read at once; the server answers in arrival order. Whoever reads
/// hands the role on when its own reply comes; every caller gets its own data.
#[test]
fn reader_hand_off() {
    let n = explore(1, || {
        let (wire, m, _root, files) = mount(3);
        let files: Vec<Arc<Chan>> = files.into_iter().map(Arc::new).collect();
        let server = {
            let wire = wire.clone();
            thread::spawn(move || {
                for _ in 0..3 {
                    let f = wire.next();
                    let Msg::Tread { fid, .. } = f.msg else {
                        panic!("unexpected {f:?}");
                    };
                    wire.reply(f.tag, Msg::Rread { data: data_of(fid) });
                }
            })
        };
        let callers: Vec<_> = files
            .iter()
            .map(|f| {
                let f = f.clone();
                thread::spawn(move || {
                    let got = read(&f, &Interrupt::new());
                    assert_eq!(got, Ok(data_of(f.fid())));
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
        server.join().unwrap();
        assert_eq!(m.stats().in_flight, 0);
    });
    assert!(n > 1, "one interleaving explored");
}

/// Model 2. X's read is interrupted twice; its chain (request and two flushes) holds every
/// tag a request may take. Y's read waits for a tag, reading meanwhile. Only X's
/// second `Rflush` is answered: X settles its chain, and Y, wherever it waits, gets a
/// tag, with no further message from the server before Y's request.
#[test]
fn tag_exhaustion() {
    let n = explore(2, || {
        let (wire, m, _root, files) = mount(2);
        let mut files = files.into_iter();
        let (x, y) = (files.next().unwrap(), files.next().unwrap());
        let (x_fid, y_fid) = (x.fid(), y.fid());
        let x_intr = Arc::new(Interrupt::new());
        let server = {
            let wire = wire.clone();
            let x_intr = x_intr.clone();
            thread::spawn(move || {
                let mut flushes = 0;
                let mut y_answered = false;
                while !(flushes == 2 && y_answered) {
                    let f = wire.next();
                    match f.msg {
                        Msg::Tread { fid, .. } if fid == x_fid => x_intr.post(),
                        Msg::Tread { fid, .. } if fid == y_fid => {
                            wire.reply(f.tag, Msg::Rread { data: data_of(fid) });
                            y_answered = true;
                        }
                        Msg::Tflush { .. } => {
                            flushes += 1;
                            if flushes == 1 {
                                x_intr.post();
                            } else {
                                wire.reply(f.tag, Msg::Rflush);
                            }
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            })
        };
        // Each thread hands its channel back, so that no clunk is queued before the
        // books are checked.
        let xt = {
            let x_intr = x_intr.clone();
            thread::spawn(move || (read(&x, &x_intr), x))
        };
        let yt = thread::spawn(move || (read(&y, &Interrupt::new()), y));
        let (x_got, _x) = xt.join().unwrap();
        let (y_got, _y) = yt.join().unwrap();
        server.join().unwrap();
        assert_eq!(x_got, Err(MntError::Interrupted));
        assert_eq!(y_got, Ok(data_of(y_fid)));
        assert_eq!(m.stats().in_flight, 0);
    });
    assert!(n > 1, "one interleaving explored");
}

/// Model 3. X's read is interrupted; the server answers the read, then the `Rflush`. The
/// reply wins, the note stays posted for X's next call, and every tag comes back
/// (Y's read, alongside, may be the one reading X's replies).
#[test]
fn flush_settling() {
    let n = explore(2, || {
        let (wire, m, _root, files) = mount(2);
        let mut files = files.into_iter();
        let (x, y) = (files.next().unwrap(), files.next().unwrap());
        let (x_fid, y_fid) = (x.fid(), y.fid());
        let x_intr = Arc::new(Interrupt::new());
        let server = {
            let wire = wire.clone();
            let x_intr = x_intr.clone();
            thread::spawn(move || {
                let mut x_tag = None;
                for _ in 0..3 {
                    let f = wire.next();
                    match f.msg {
                        Msg::Tread { fid, .. } if fid == x_fid => {
                            x_tag = Some(f.tag);
                            x_intr.post();
                        }
                        Msg::Tread { fid, .. } => {
                            wire.reply(f.tag, Msg::Rread { data: data_of(fid) })
                        }
                        Msg::Tflush { oldtag } => {
                            assert_eq!(Some(oldtag), x_tag);
                            wire.reply(
                                oldtag,
                                Msg::Rread {
                                    data: data_of(x_fid),
                                },
                            );
                            wire.reply(f.tag, Msg::Rflush);
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            })
        };
        let xt = {
            let x_intr = x_intr.clone();
            thread::spawn(move || {
                let got = read(&x, &x_intr);
                // The note stays posted: X's next call reports it, unsent.
                let next = read(&x, &x_intr);
                (got, next, x_intr.is_pending(), x)
            })
        };
        let yt = thread::spawn(move || (read(&y, &Interrupt::new()), y));
        let (x_got, x_next, still_pending, _x) = xt.join().unwrap();
        let (y_got, _y) = yt.join().unwrap();
        server.join().unwrap();
        assert_eq!(x_got, Ok(data_of(x_fid)), "the reply beat the Rflush");
        assert_eq!(x_next, Err(MntError::Interrupted), "the note was lost");
        assert!(!still_pending, "the note is reported once");
        assert_eq!(y_got, Ok(data_of(y_fid)));
        assert_eq!(m.stats().in_flight, 0);
    });
    assert!(n > 1, "one interleaving explored");
}
