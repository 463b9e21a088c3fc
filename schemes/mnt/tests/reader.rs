//! The reader role is never lost: a caller woken to take it that leaves instead
//! passes it on, whatever the platform's `wakeup` says about a thread already woken.

mod common;

use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use common::*;
use mnt::host::pipe;
use mnt::ninep::{self, Dialect, Msg};
use mnt::{Chan, Interrupt, MntError, Mount, MountOptions, OpenMode, Platform, Rendez};

/// How long a woken thread takes to run again.
const LINGER: Duration = Duration::from_millis(200);

/// A rendezvous whose woken sleeper takes a while to run again and counts as asleep
/// meanwhile, as a thread that has been woken but not yet scheduled does (a second
/// `wakeup` then says a sleeper was there, though it wakes nobody new). `sleep`
/// re-checks its condition after the delay, so no wakeup is lost.
#[derive(Default)]
struct SlowRendez {
    sleeping: Mutex<bool>,
    cv: Condvar,
}

impl SlowRendez {
    fn lock(&self) -> MutexGuard<'_, bool> {
        self.sleeping.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Rendez for SlowRendez {
    fn sleep(&self, ready: &dyn Fn() -> bool) {
        let mut g = self.lock();
        while !ready() {
            *g = true;
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            drop(g);
            thread::sleep(LINGER);
            g = self.lock();
            *g = false;
        }
    }

    fn wakeup(&self) -> bool {
        let g = self.lock();
        self.cv.notify_all();
        *g
    }
}

struct SlowPlatform;

impl Platform for SlowPlatform {
    fn rendez(&self) -> Arc<dyn Rendez> {
        Arc::new(SlowRendez::default())
    }
}

/// A 9P2000 mount on `platform`, its root and an open file, against the fake server.
fn mount_on(platform: Arc<dyn Platform>) -> (Mount, Chan, Chan, Fake) {
    let (t, srv) = pipe();
    let fake = Fake {
        srv,
        dialect: Dialect::P2000,
    };
    let server = thread::spawn(move || {
        let v = fake.recv();
        let Msg::Tversion { msize, version } = v.msg else {
            panic!("expected Tversion, got {v:?}");
        };
        fake.reply(ninep::NOTAG, Msg::Rversion { msize, version });
        let a = fake.recv();
        fake.reply(a.tag, Msg::Rattach { qid: ROOT });
        let w = fake.recv();
        fake.reply(w.tag, Msg::Rwalk { wqids: vec![FILE] });
        let o = fake.recv();
        fake.reply(
            o.tag,
            Msg::Ropen {
                qid: FILE,
                iounit: 0,
            },
        );
        fake
    });
    let intr = Interrupt::new();
    let opts = MountOptions {
        msize: 8192,
        dialect: Dialect::P2000,
    };
    let m = Mount::version(Box::new(t), platform, &opts, &intr).expect("version");
    let root = m.attach(&args(), &intr).expect("attach");
    let mut file = root.walk(&["f"], &intr).expect("walk");
    file.open(OpenMode::READ, &intr).expect("open");
    let fake = server.join().expect("handshake");
    (m, root, file, fake)
}

type Reply = mpsc::Receiver<Result<Vec<u8>, MntError>>;

/// Starts a read in a thread of its own (not scoped: a caller stuck by the bug must
/// not keep the test from failing); returns its result channel and its tag.
fn start_read(file: &Arc<Chan>, intr: &Arc<Interrupt>, fake: &Fake) -> (Reply, u16) {
    let (tx, rx) = mpsc::channel();
    let (file, intr) = (file.clone(), intr.clone());
    thread::spawn(move || {
        let mut buf = [0u8; 16];
        let r = file.read(0, &mut buf, &intr).map(|n| buf[..n].to_vec());
        let _ = tx.send(r);
    });
    let r = fake.recv();
    assert!(
        matches!(r.msg, Msg::Tread { .. }),
        "expected Tread, got {r:?}"
    );
    (rx, r.tag)
}

/// R reads for everyone; A and B sleep. A is interrupted and flushes. The `Rflush`
/// and R's reply come together: R wakes A (done now), then gives up the role, and
/// `wakeup` on A, not yet running, may still say "asleep". If the role went to A,
/// which leaves without reading, B's reply would never be read. `nap` lets A fall
/// asleep again before the replies come.
fn woken_reader_leaves(platform: Arc<dyn Platform>, nap: Duration) {
    let (m, _root, file, fake) = mount_on(platform);
    let file = Arc::new(file);
    let intrs: [Arc<Interrupt>; 3] = Default::default();
    let (r, tr) = start_read(&file, &intrs[0], &fake);
    let (a, ta) = start_read(&file, &intrs[1], &fake);
    let (b, tb) = start_read(&file, &intrs[2], &fake);
    intrs[1].post();
    let f = fake.recv();
    assert_eq!(f.msg, Msg::Tflush { oldtag: ta });
    thread::sleep(nap);
    fake.reply(f.tag, Msg::Rflush);
    fake.reply(
        tr,
        Msg::Rread {
            data: b"r".to_vec(),
        },
    );
    assert_eq!(r.recv_timeout(DEADLINE), Ok(Ok(b"r".to_vec())));
    assert_eq!(a.recv_timeout(DEADLINE), Ok(Err(MntError::Interrupted)));
    fake.reply(
        tb,
        Msg::Rread {
            data: b"b".to_vec(),
        },
    );
    assert_eq!(
        b.recv_timeout(DEADLINE),
        Ok(Ok(b"b".to_vec())),
        "nobody read B's reply"
    );
    assert_eq!(m.stats().in_flight, 0);
}

/// With a platform whose woken threads are slow to run again: the window is wide.
#[test]
fn a_caller_woken_for_the_reader_role_that_leaves_passes_it_on() {
    let _w = watchdog(Duration::from_secs(120));
    woken_reader_leaves(Arc::new(SlowPlatform), LINGER * 2);
}

/// The same with the host platform, many times (before the fix, the first round
/// hung on this machine).
#[test]
fn the_reader_role_survives_host_wakeups() {
    let _w = watchdog(Duration::from_secs(300));
    for _ in 0..50 {
        woken_reader_leaves(mnt::host::StdPlatform::shared(), Duration::from_millis(5));
    }
}
