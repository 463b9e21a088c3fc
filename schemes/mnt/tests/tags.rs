//! Tags under exhaustion: a tag whose request the server may still answer is never
//! given to another request, and tags held by queued clunks never wedge the mount.

mod common;

use std::collections::BTreeSet;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use mnt::ninep::{Fcall, Msg};
use mnt::{Chan, Interrupt, MntError, Mount};

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
