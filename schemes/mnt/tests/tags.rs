//! Tags under exhaustion: a tag whose request the server may still answer is never
//! given to another request, and tags held by queued clunks never wedge the mount.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use common::*;
use mnt::host::{pipe, PipeTransport, StdRendez};
use mnt::ninep::{Dialect, Fcall, Msg};
use mnt::{Chan, Interrupt, MntError, Mount, Platform, Rendez, Transport, TransportError};

/// Every tag there is (0 ..= 0xfffe; 0xffff is `NOTAG`).
const NTAGS: usize = 0xffff;

/// Serves in a thread: answers walks (with no qids: clones), answers clunks if
/// `answer_clunks` (else leaves them unanswered), and hands every other request to
/// the test through the returned channel. Ends at the client's end of file.
fn serve(fake: Arc<Fake>, answer_clunks: bool) -> (Receiver<Fcall>, Receiver<u32>) {
    let (others, rx) = mpsc::channel();
    let (clunks, clunk_rx) = mpsc::channel();
    thread::spawn(move || loop {
        let f = match fake.try_recv(DEADLINE * 10) {
            Got::Msg(f) => f,
            Got::Eof | Got::Timeout => return,
        };
        match f.msg {
            Msg::Twalk { .. } => fake.reply(f.tag, Msg::Rwalk { wqids: vec![] }),
            Msg::Tclunk { fid } => {
                if answer_clunks {
                    fake.reply(f.tag, Msg::Rclunk);
                }
                if clunks.send(fid).is_err() {
                    return;
                }
            }
            _ => {
                if others.send(f).is_err() {
                    return;
                }
            }
        }
    });
    (rx, clunk_rx)
}

/// The next request handed over by [`serve`], within the deadline.
fn next(rx: &Receiver<Fcall>) -> Fcall {
    rx.recv_timeout(DEADLINE)
        .expect("a request from the client")
}

/// `n` clones of `root` (each a walk the server answers).
fn clones(root: &Chan, n: usize) -> Vec<Chan> {
    let intr = Interrupt::new();
    (0..n)
        .map(|_| root.walk(&[], &intr).expect("clone"))
        .collect()
}

/// Waits for the next request while `caller` runs; `None` once it has returned
/// without sending one.
fn request_or_return(
    rx: &Receiver<Fcall>,
    caller: &thread::ScopedJoinHandle<'_, impl Sized>,
) -> Option<Fcall> {
    let end = Instant::now() + DEADLINE;
    loop {
        match rx.recv_timeout(Duration::from_millis(5)) {
            Ok(f) => return Some(f),
            Err(RecvTimeoutError::Timeout) if caller.is_finished() => {
                // It may have sent one just before returning.
                return rx.try_recv().ok();
            }
            Err(RecvTimeoutError::Timeout) => {
                assert!(Instant::now() < end, "neither a request nor a return");
            }
            Err(RecvTimeoutError::Disconnected) => panic!("server gone"),
        }
    }
}

fn read(file: &Chan, intr: &Interrupt) -> Result<Vec<u8>, MntError> {
    let mut buf = [0u8; 16];
    file.read(0, &mut buf, intr).map(|n| buf[..n].to_vec())
}

/// The reviewer's case: all tags but one are held by queued clunks the server leaves
/// unanswered; a read is interrupted; the server answers it late. That answer must
/// reach no later request.
#[test]
fn late_reply_of_an_interrupted_request_reaches_no_other_request() {
    let _w = watchdog(Duration::from_secs(600));
    let (m, root, fake) = start_p2000();
    let file = open_file(&root, &fake, 0);
    let fake = Arc::new(fake);
    let (rx, _clunks) = serve(fake.clone(), false);
    drop(clones(&root, NTAGS - 1));
    let intr = Interrupt::new();
    thread::scope(|s| {
        let x = s.spawn(|| read(&file, &intr));
        let xr = next(&rx);
        assert!(matches!(xr.msg, Msg::Tread { .. }), "{xr:?}");
        intr.post();
        // With a tag to spare the client tells the server; without, it must not
        // give the tag back while the server may answer.
        let flush = request_or_return(&rx, &x);
        fake.reply(
            xr.tag,
            Msg::Rread {
                data: b"STALE".to_vec(),
            },
        );
        if let Some(f) = &flush {
            assert_eq!(f.msg, Msg::Tflush { oldtag: xr.tag });
            fake.reply(f.tag, Msg::Rflush);
        }
        let got = x.join().unwrap();
        assert!(
            got == Ok(b"STALE".to_vec()) || got == Err(MntError::Interrupted),
            "{got:?}"
        );
        let y = s.spawn(|| read(&file, &Interrupt::new()));
        let yr = next(&rx);
        assert!(matches!(yr.msg, Msg::Tread { .. }), "{yr:?}");
        fake.reply(
            yr.tag,
            Msg::Rread {
                data: b"fresh".to_vec(),
            },
        );
        assert_eq!(y.join().unwrap(), Ok(b"fresh".to_vec()));
    });
    assert!(m.broken().is_none(), "{:?}", m.broken());
}

/// One caller interrupted until no tag is left for another `Tflush`: it returns
/// without one, and the tags of its chain stay out of use until the server settles
/// them (the last `Rflush`), however late. A caller that needs a tag meanwhile reads
/// the replies that free them.
#[test]
fn a_chain_left_without_a_flush_keeps_its_tags_until_the_server_settles_it() {
    let _w = watchdog(Duration::from_secs(600));
    let (m, root, fake) = start_p2000();
    let file = open_file(&root, &fake, 0);
    let fake = Arc::new(fake);
    let (rx, _clunks) = serve(fake.clone(), true);
    let intr = Interrupt::new();
    thread::scope(|s| {
        let x = s.spawn(|| read(&file, &intr));
        let xr = next(&rx);
        let mut flush_tags = Vec::new();
        loop {
            intr.post();
            match request_or_return(&rx, &x) {
                Some(f) => {
                    assert_eq!(f.msg, Msg::Tflush { oldtag: xr.tag });
                    flush_tags.push(f.tag);
                }
                None => break,
            }
            assert!(flush_tags.len() < NTAGS, "more flushes than tags");
        }
        assert_eq!(x.join().unwrap(), Err(MntError::Interrupted));
        // Every tag went to the chain: none is free now.
        assert_eq!(flush_tags.len(), NTAGS - 1);
        let distinct: BTreeSet<u16> = flush_tags.iter().copied().chain([xr.tag]).collect();
        assert_eq!(distinct.len(), NTAGS);
        assert_eq!(m.stats().in_flight, NTAGS);
        // Y needs a tag: it waits, reading for everyone.
        let y = s.spawn(|| read(&file, &Interrupt::new()));
        // The original's late reply frees nothing: a Tflush naming it is unanswered.
        fake.reply(
            xr.tag,
            Msg::Rread {
                data: b"STALE".to_vec(),
            },
        );
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "a request went out with no tag free"
        );
        // The last Rflush settles the whole chain.
        fake.reply(*flush_tags.last().unwrap(), Msg::Rflush);
        let yr = next(&rx);
        assert!(matches!(yr.msg, Msg::Tread { .. }), "{yr:?}");
        fake.reply(
            yr.tag,
            Msg::Rread {
                data: b"fresh".to_vec(),
            },
        );
        assert_eq!(y.join().unwrap(), Ok(b"fresh".to_vec()));
    });
    assert!(m.broken().is_none(), "{:?}", m.broken());
    assert_eq!(m.stats().in_flight, 0);
}

/// More dropped channels than tags, their clunks answered but unread because nobody
/// waits: the next caller still gets a tag, and every fid is clunked in the end.
#[test]
fn queued_clunks_cannot_wedge_the_mount() {
    let _w = watchdog(Duration::from_secs(600));
    let (m, root, fake) = start_p2000();
    let file = open_file(&root, &fake, 0);
    let fake = Arc::new(fake);
    let (rx, clunk_rx) = serve(fake.clone(), true);
    let dropped = clones(&root, NTAGS + 100);
    let fids: BTreeSet<u32> = dropped.iter().map(Chan::fid).collect();
    drop(dropped);
    let stat = |m: &Mount| {
        thread::scope(|s| {
            let h = s.spawn(|| file.stat(&Interrupt::new()));
            let r = next(&rx);
            assert!(matches!(r.msg, Msg::Tstat { .. }), "{r:?}");
            fake.reply(
                r.tag,
                Msg::Rstat {
                    stat: file_stat("f", 0),
                },
            );
            h.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("stat: {e} ({:?})", m.stats()))
        })
    };
    stat(&m);
    // Clunks held back go out as callers come.
    let mut clunked = BTreeSet::new();
    for _ in 0..10_000 {
        while let Ok(fid) = clunk_rx.try_recv() {
            assert!(clunked.insert(fid), "fid {fid} clunked twice");
        }
        if clunked == fids {
            break;
        }
        stat(&m);
    }
    assert_eq!(clunked, fids, "every dropped channel's fid is clunked");
    assert!(m.broken().is_none());
}

/// What the threads of a mount do, as a staged transport and platform see it, and
/// the holds the test puts on them.
#[derive(Default)]
struct Stage {
    state: Mutex<Scene>,
    changed: Condvar,
}

#[derive(Default)]
struct Scene {
    /// How often each thread has entered `recv`.
    recv_entries: HashMap<ThreadId, usize>,
    /// Who is inside `recv` now.
    in_recv: Option<ThreadId>,
    /// Sends wait while this is set; `sends_held` of them wait now.
    hold_sends: bool,
    sends_held: usize,
    /// This thread, woken from a sleep, waits while this is set; `wakes_held` of its
    /// wake-ups wait now.
    hold_wakes_of: Option<ThreadId>,
    wakes_held: usize,
    /// The threads inside a rendezvous sleep now (entered, not yet woken).
    asleep: HashMap<ThreadId, usize>,
}

impl Stage {
    fn lock(&self) -> MutexGuard<'_, Scene> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, f: impl FnOnce(&mut Scene)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    /// Waits (within the deadline) until `cond` holds.
    fn wait_for(&self, what: &str, cond: impl Fn(&Scene) -> bool) {
        let end = Instant::now() + DEADLINE;
        let mut g = self.lock();
        while !cond(&g) {
            let left = end.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "never happened: {what}");
            g = self.changed.wait_timeout(g, left).unwrap().0;
        }
    }

    /// Waits while `held(scene)`, counted in the scene by `count`.
    fn hold(&self, held: impl Fn(&Scene) -> bool, count: impl Fn(&mut Scene) -> &mut usize) {
        let mut g = self.lock();
        if !held(&g) {
            return;
        }
        *count(&mut g) += 1;
        self.changed.notify_all();
        while held(&g) {
            g = self.changed.wait(g).unwrap();
        }
        *count(&mut g) -= 1;
        self.changed.notify_all();
    }
}

/// The pipe's client end, watched and held by a [`Stage`].
struct StagedTransport {
    inner: PipeTransport,
    stage: Arc<Stage>,
}

impl Transport for StagedTransport {
    fn send(&self, msg: &[u8]) -> Result<(), TransportError> {
        self.stage.hold(|s| s.hold_sends, |s| &mut s.sends_held);
        self.inner.send(msg)
    }

    fn recv(&self, intr: &Interrupt) -> Result<Vec<u8>, TransportError> {
        let me = thread::current().id();
        self.stage.set(|s| {
            *s.recv_entries.entry(me).or_default() += 1;
            s.in_recv = Some(me);
        });
        let got = self.inner.recv(intr);
        self.stage.set(|s| s.in_recv = None);
        got
    }

    fn close(&self) {
        self.inner.close();
    }
}

/// Rendezvous points that know which thread made them (the one that sleeps there).
struct StagedPlatform(Arc<Stage>);

impl Platform for StagedPlatform {
    fn rendez(&self) -> Arc<dyn Rendez> {
        Arc::new(StagedRendez {
            inner: StdRendez::new(),
            owner: thread::current().id(),
            stage: self.0.clone(),
        })
    }
}

struct StagedRendez {
    inner: StdRendez,
    owner: ThreadId,
    stage: Arc<Stage>,
}

impl Rendez for StagedRendez {
    fn sleep(&self, ready: &dyn Fn() -> bool) {
        let me = self.owner;
        self.stage.set(|s| *s.asleep.entry(me).or_default() += 1);
        self.inner.sleep(ready);
        self.stage.set(|s| *s.asleep.entry(me).or_default() -= 1);
        self.stage
            .hold(|s| s.hold_wakes_of == Some(me), |s| &mut s.wakes_held);
    }

    fn wakeup(&self) -> bool {
        self.inner.wakeup()
    }
}

/// Hangs the mount up when dropped by a panic, so that threads waiting on it return.
struct HangupOnPanic<'a>(&'a Mount);

impl Drop for HangupOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.hangup();
        }
    }
}

/// The reviewer's case: a long flush chain of X has left no tag for requests; Y,
/// waiting for a tag, holds the reader role and reads X's last `Rflush`; X then
/// settles its chain (freeing 65,000 tags) after Y went back into `recv`, and the
/// server sends nothing more. Y must still get a tag: the mux wakes its reader out of
/// `recv`. (Before, Y slept in `recv` for ever.)
#[test]
fn a_tag_waiter_reading_is_woken_when_a_settle_frees_tags() {
    let _w = watchdog(Duration::from_secs(600));
    let stage = Arc::new(Stage::default());
    let (t, srv) = pipe();
    let transport = StagedTransport {
        inner: t,
        stage: stage.clone(),
    };
    let platform = Arc::new(StagedPlatform(stage.clone()));
    let (m, root, fake) = start_over(
        Box::new(transport),
        platform,
        srv,
        Dialect::P2000,
        8192 + mnt::ninep::IOHDRSZ,
        1 << 20,
    );
    let file = open_file(&root, &fake, 0);
    let fake = Arc::new(fake);
    let (rx, _clunks) = serve(fake.clone(), true);
    let intr = Interrupt::new();
    thread::scope(|s| {
        // A failed step must not leave the readers waiting for ever (the scope joins them).
        let _hangup = HangupOnPanic(&m);
        let x = s.spawn(|| read(&file, &intr));
        let xr = next(&rx);
        // Flush X until requests have no tag left (the rest are flushes' only).
        let chain = NTAGS - 64;
        for _ in 1..chain {
            intr.post();
            let f = next(&rx);
            assert_eq!(f.msg, Msg::Tflush { oldtag: xr.tag });
        }
        assert_eq!(m.stats().in_flight, chain);
        // Y finds no tag and waits, while X reads.
        let y = s.spawn(|| read(&file, &Interrupt::new()));
        let y_id = y.thread().id();
        // X's next flush is held on its way out: X gave the reader role up, and Y,
        // waiting for a tag, takes it.
        stage.set(|s| s.hold_sends = true);
        intr.post();
        stage.wait_for("X's flush held and Y reading", |s| {
            s.sends_held == 1 && s.in_recv == Some(y_id)
        });
        assert_eq!(m.stats().in_flight, chain + 1, "Y's request has no tag");
        // X will be held when its last Rflush wakes it, until Y is back in recv.
        let x_id = x.thread().id();
        stage.set(|s| {
            s.hold_wakes_of = Some(x_id);
            s.hold_sends = false;
        });
        let last = next(&rx);
        assert_eq!(last.msg, Msg::Tflush { oldtag: xr.tag });
        // The Rflush must find X asleep: one that came before X went to wait would be
        // seen by X with no sleep, and no wake-up would be held.
        stage.wait_for("X asleep for its last Rflush", |s| {
            s.asleep.get(&x_id).copied().unwrap_or(0) > 0
        });
        let entries = stage.lock().recv_entries[&y_id];
        fake.reply(last.tag, Msg::Rflush);
        stage.wait_for("X woken and held, Y back in recv", |s| {
            s.wakes_held == 1 && s.recv_entries[&y_id] > entries && s.in_recv == Some(y_id)
        });
        // Now X settles its chain; the server sends nothing more.
        stage.set(|s| s.hold_wakes_of = None);
        assert_eq!(x.join().unwrap(), Err(MntError::Interrupted));
        let Ok(yr) = rx.recv_timeout(DEADLINE) else {
            // Let Y out of recv so the failure is reported, not a hang.
            m.hangup();
            panic!("Y still waits for a tag: {:?}", m.stats());
        };
        assert!(matches!(yr.msg, Msg::Tread { .. }), "{yr:?}");
        fake.reply(
            yr.tag,
            Msg::Rread {
                data: b"fresh".to_vec(),
            },
        );
        assert_eq!(y.join().unwrap(), Ok(b"fresh".to_vec()));
    });
    assert!(m.broken().is_none(), "{:?}", m.broken());
    assert_eq!(m.stats().in_flight, 0);
}
