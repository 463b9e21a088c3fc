//! RPC multiplexing, tags, flushes and interruption, against the fake server.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use mnt::ninep::{mtype, Msg};
use mnt::{BrokenReason, Interrupt, MntError, TransportError};

#[test]
fn many_threads_one_mount_each_gets_its_own_reply() {
    let _w = watchdog(Duration::from_secs(120));
    let (m, root, fake) = start_p2000();
    let file = Arc::new(open_file(&root, &fake, 0));
    const THREADS: u64 = 16;
    const EACH: u64 = 40;
    thread::scope(|s| {
        let mut clients = Vec::new();
        for t in 0..THREADS {
            let file = file.clone();
            clients.push(s.spawn(move || {
                let intr = Interrupt::new();
                for i in 0..EACH {
                    let off = t * 1000 + i;
                    let mut buf = [0u8; 8];
                    let n = file.read(off, &mut buf, &intr).expect("read");
                    assert_eq!(n, 8);
                    assert_eq!(
                        u64::from_le_bytes(buf),
                        off,
                        "thread {t} got another's reply"
                    );
                }
            }));
        }
        // The server answers whatever is in flight in reverse order once nothing more
        // comes for a moment, and checks that no two requests in flight share a tag.
        let mut pending: BTreeMap<u16, u64> = BTreeMap::new();
        let mut answered = 0;
        let mut max_in_flight = 0;
        while answered < THREADS * EACH {
            match fake.try_recv(Duration::from_millis(3)) {
                Got::Msg(f) => {
                    let Msg::Tread { offset, count, .. } = f.msg else {
                        panic!("expected Tread, got {f:?}");
                    };
                    assert_eq!(count, 8);
                    assert!(
                        pending.insert(f.tag, offset).is_none(),
                        "tag {} used twice while in flight",
                        f.tag
                    );
                    max_in_flight = max_in_flight.max(pending.len());
                }
                Got::Timeout => {
                    for (tag, off) in std::mem::take(&mut pending).into_iter().rev() {
                        fake.reply(
                            tag,
                            Msg::Rread {
                                data: off.to_le_bytes().to_vec(),
                            },
                        );
                        answered += 1;
                    }
                }
                Got::Eof => panic!("unexpected end of file"),
            }
        }
        for c in clients {
            c.join().expect("client");
        }
        assert!(
            max_in_flight > 1,
            "the test never had two requests in flight"
        );
    });
    let st = m.stats();
    assert_eq!(st.treads(), THREADS * EACH);
    assert_eq!(st.bytes_read, THREADS * EACH * 8);
    assert_eq!(st.in_flight, 0);
    assert_eq!(st.flushes, 0);
}

/// Starts a read of `file` in a scoped thread and returns the tag the server saw.
macro_rules! pending_read {
    ($s:expr, $file:expr, $intr:expr, $fake:expr) => {{
        let h = $s.spawn(|| {
            let mut buf = [0u8; 16];
            $file.read(0, &mut buf, &$intr).map(|n| buf[..n].to_vec())
        });
        let r = $fake.recv();
        assert!(
            matches!(r.msg, Msg::Tread { .. }),
            "expected Tread, got {r:?}"
        );
        (h, r.tag)
    }};
}

#[test]
fn interrupted_request_is_flushed() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let file = open_file(&root, &fake, 0);
    let intr = Interrupt::new();
    thread::scope(|s| {
        let (h, tag) = pending_read!(s, file, intr, fake);
        intr.post();
        let f = fake.recv();
        assert_eq!(f.msg, Msg::Tflush { oldtag: tag });
        assert_ne!(f.tag, tag);
        fake.reply(f.tag, Msg::Rflush);
        assert_eq!(h.join().unwrap(), Err(MntError::Interrupted));
    });
    let st = m.stats();
    assert_eq!(st.flushes, 1);
    assert_eq!(st.in_flight, 0);
    assert!(m.broken().is_none());
}

#[test]
fn reply_before_rflush_wins() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let file = open_file(&root, &fake, 0);
    let intr = Interrupt::new();
    thread::scope(|s| {
        let (h, tag) = pending_read!(s, file, intr, fake);
        intr.post();
        let f = fake.recv();
        assert_eq!(f.msg, Msg::Tflush { oldtag: tag });
        fake.reply(
            tag,
            Msg::Rread {
                data: b"won".to_vec(),
            },
        );
        fake.reply(f.tag, Msg::Rflush);
        assert_eq!(h.join().unwrap(), Ok(b"won".to_vec()));
    });
    assert_eq!(m.stats().in_flight, 0);
    assert!(m.broken().is_none());
}

#[test]
fn repeated_flushes_carry_the_original_tag() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let file = open_file(&root, &fake, 0);
    let intr = Interrupt::new();
    thread::scope(|s| {
        let (h, tag) = pending_read!(s, file, intr, fake);
        intr.post();
        let f1 = fake.recv();
        assert_eq!(f1.msg, Msg::Tflush { oldtag: tag });
        intr.post();
        let f2 = fake.recv();
        assert_eq!(
            f2.msg,
            Msg::Tflush { oldtag: tag },
            "second flush names the original"
        );
        assert!(tag != f1.tag && tag != f2.tag && f1.tag != f2.tag);
        fake.reply(f1.tag, Msg::Rflush);
        fake.reply(f2.tag, Msg::Rflush);
        assert_eq!(h.join().unwrap(), Err(MntError::Interrupted));
    });
    let st = m.stats();
    assert_eq!(st.flushes, 2);
    assert_eq!(st.in_flight, 0);
    assert!(m.broken().is_none());
}

#[test]
fn tags_of_a_flush_chain_are_not_reused_until_it_settles() {
    let _w = watchdog(Duration::from_secs(60));
    let (_m, root, fake) = start_p2000();
    let file = Arc::new(open_file(&root, &fake, 0));
    let intr = Interrupt::new();
    thread::scope(|s| {
        let (h, tag) = pending_read!(s, file, intr, fake);
        intr.post();
        let f = fake.recv();
        // The original's reply arrives first; its tag must stay reserved while the
        // Tflush naming it is unanswered.
        fake.reply(tag, Msg::Rread { data: vec![1] });
        let others: Vec<_> = (0..50)
            .map(|_| {
                let file = file.clone();
                s.spawn(move || file.stat(&Interrupt::new()))
            })
            .collect();
        for _ in 0..50 {
            let r = fake.recv();
            assert_ne!(r.tag, tag, "tag reused while a Tflush names it");
            assert_ne!(r.tag, f.tag);
            fake.reply(
                r.tag,
                Msg::Rstat {
                    stat: file_stat("f", 1),
                },
            );
        }
        for o in others {
            o.join().unwrap().expect("stat");
        }
        fake.reply(f.tag, Msg::Rflush);
        assert_eq!(h.join().unwrap(), Ok(vec![1]));
    });
}

#[test]
fn a_request_never_answered_stalls_only_its_caller() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let file = open_file(&root, &fake, 0);
    let stuck_intr = Interrupt::new();
    thread::scope(|s| {
        // Started first, with nobody else waiting: this caller is the reader.
        let (stuck, stuck_tag) = pending_read!(s, file, stuck_intr, fake);
        let others: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let intr = Interrupt::new();
                    for _ in 0..10 {
                        file.stat(&intr).expect("stat");
                    }
                })
            })
            .collect();
        for _ in 0..40 {
            let r = fake.recv();
            assert!(matches!(r.msg, Msg::Tstat { .. }), "got {r:?}");
            fake.reply(
                r.tag,
                Msg::Rstat {
                    stat: file_stat("f", 0),
                },
            );
        }
        for o in others {
            o.join().expect("other callers complete");
        }
        // Its reply was never sent, so it cannot have returned.
        assert!(!stuck.is_finished());
        assert_eq!(m.stats().in_flight, 1);
        stuck_intr.post();
        let f = fake.recv();
        assert_eq!(f.msg, Msg::Tflush { oldtag: stuck_tag });
        fake.reply(f.tag, Msg::Rflush);
        assert_eq!(stuck.join().unwrap(), Err(MntError::Interrupted));
    });
}

#[test]
fn interrupt_before_send_sends_nothing() {
    let (m, root, fake) = start_p2000();
    let file = open_file(&root, &fake, 0);
    let intr = Interrupt::new();
    intr.post();
    let mut buf = [0u8; 4];
    assert_eq!(file.read(0, &mut buf, &intr), Err(MntError::Interrupted));
    assert_eq!(m.stats().sent(mtype::TREAD), 0);
    assert!(!intr.is_pending(), "the post was consumed");
}

#[test]
fn hangup_fails_requests_in_flight_and_later() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let file = open_file(&root, &fake, 0);
    let intr = Interrupt::new();
    thread::scope(|s| {
        let (h, _tag) = pending_read!(s, file, intr, fake);
        m.hangup();
        assert_eq!(h.join().unwrap(), Err(MntError::Hungup));
    });
    assert!(fake.until_eof().is_empty());
    assert_eq!(file.stat(&intr), Err(MntError::Hungup));
}

#[test]
fn server_end_of_file_breaks_the_mount() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let file = open_file(&root, &fake, 0);
    let intr = Interrupt::new();
    thread::scope(|s| {
        let (h, _tag) = pending_read!(s, file, intr, fake);
        fake.srv.close();
        let want = MntError::Broken(BrokenReason::Transport(TransportError::Eof));
        assert_eq!(h.join().unwrap(), Err(want.clone()));
        assert_eq!(file.stat(&intr), Err(want));
    });
    assert!(m.broken().is_some());
}

#[test]
fn the_reader_hands_off_when_its_reply_comes() {
    let _w = watchdog(Duration::from_secs(60));
    let (_m, root, fake) = start_p2000();
    let file = open_file(&root, &fake, 0);
    let (ia, ib) = (Interrupt::new(), Interrupt::new());
    thread::scope(|s| {
        // a is sent first, with nobody waiting: it becomes the reader.
        let (a, ta) = pending_read!(s, file, ia, fake);
        let (b, tb) = pending_read!(s, file, ib, fake);
        fake.reply(
            ta,
            Msg::Rread {
                data: b"a".to_vec(),
            },
        );
        assert_eq!(a.join().unwrap(), Ok(b"a".to_vec()));
        // Nobody reads unless a leaves the role to b.
        fake.reply(
            tb,
            Msg::Rread {
                data: b"b".to_vec(),
            },
        );
        assert_eq!(b.join().unwrap(), Ok(b"b".to_vec()));
    });
}

#[test]
fn interrupting_either_the_reader_or_a_sleeper_flushes_only_it() {
    let _w = watchdog(Duration::from_secs(60));
    for victim in 0..2 {
        let (m, root, fake) = start_p2000();
        let file = open_file(&root, &fake, 0);
        let intrs = [Interrupt::new(), Interrupt::new()];
        thread::scope(|s| {
            let (a, ta) = pending_read!(s, file, intrs[0], fake);
            let (b, tb) = pending_read!(s, file, intrs[1], fake);
            let (tags, mut handles) = ([ta, tb], vec![Some(a), Some(b)]);
            intrs[victim].post();
            let f = fake.recv();
            assert_eq!(
                f.msg,
                Msg::Tflush {
                    oldtag: tags[victim]
                }
            );
            fake.reply(f.tag, Msg::Rflush);
            let hit = handles[victim].take().unwrap();
            assert_eq!(hit.join().unwrap(), Err(MntError::Interrupted));
            let other = 1 - victim;
            fake.reply(
                tags[other],
                Msg::Rread {
                    data: b"x".to_vec(),
                },
            );
            let spared = handles[other].take().unwrap();
            assert_eq!(spared.join().unwrap(), Ok(b"x".to_vec()));
        });
        assert_eq!(m.stats().in_flight, 0);
    }
}

/// A read or write of several messages cut short by an interrupt returns what was
/// done, and the interrupt stays posted, so the caller's next call reports it (as a
/// Plan 9 note interrupting a long read is still delivered to the process).
#[test]
fn an_interrupt_that_cuts_a_transfer_short_stays_posted() {
    let _w = watchdog(Duration::from_secs(60));
    for write in [false, true] {
        let (m, root, fake) = start_p2000();
        let file = open_file(&root, &fake, 4);
        let intr = Interrupt::new();
        let transfer = || {
            if write {
                file.write(0, b"abcdefgh", &intr)
            } else {
                file.read(0, &mut [0u8; 8], &intr)
            }
        };
        thread::scope(|s| {
            let h = s.spawn(transfer);
            let first = fake.recv();
            match first.msg {
                Msg::Tread { count: 4, .. } => fake.reply(
                    first.tag,
                    Msg::Rread {
                        data: b"abcd".to_vec(),
                    },
                ),
                Msg::Twrite { .. } => fake.reply(first.tag, Msg::Rwrite { count: 4 }),
                m => panic!("unexpected {m:?}"),
            }
            let second = fake.recv();
            intr.post();
            let f = fake.recv();
            assert_eq!(f.msg, Msg::Tflush { oldtag: second.tag });
            fake.reply(f.tag, Msg::Rflush);
            assert_eq!(h.join().unwrap(), Ok(4), "the part done is returned");
        });
        assert!(intr.is_pending(), "the interrupt was lost (write: {write})");
        let sent = m.stats().sent_by_type;
        assert_eq!(transfer(), Err(MntError::Interrupted));
        assert_eq!(
            m.stats().sent_by_type,
            sent,
            "nothing sent after the interrupt"
        );
        assert!(!intr.is_pending(), "reported once");
    }
}

/// A note during a message whose reply beats its `Rflush` stays posted even though
/// that message succeeded: a read or write of several messages stops after it, and
/// the next call is interrupted (in Plan 9 the note is pending whatever the rpc
/// did). Without it the transfer went on to its second message.
#[test]
fn a_note_whose_reply_beats_its_rflush_stays_posted() {
    let _w = watchdog(Duration::from_secs(60));
    for write in [false, true] {
        let (m, root, fake) = start_p2000();
        let file = open_file(&root, &fake, 4);
        let intr = Interrupt::new();
        let transfer = || {
            if write {
                file.write(0, b"abcdefgh", &intr)
            } else {
                file.read(0, &mut [0u8; 8], &intr)
            }
        };
        thread::scope(|s| {
            let h = s.spawn(transfer);
            let first = fake.recv();
            intr.post();
            let f = fake.recv();
            assert_eq!(f.msg, Msg::Tflush { oldtag: first.tag });
            match first.msg {
                Msg::Tread { count: 4, .. } => fake.reply(
                    first.tag,
                    Msg::Rread {
                        data: b"abcd".to_vec(),
                    },
                ),
                Msg::Twrite { .. } => fake.reply(first.tag, Msg::Rwrite { count: 4 }),
                m => panic!("unexpected {m:?}"),
            }
            fake.reply(f.tag, Msg::Rflush);
            // The transfer must end here, not send its second message (which this
            // server would never answer: the watchdog guards the wait).
            while !h.is_finished() {
                if let Got::Msg(f) = fake.try_recv(Duration::from_millis(5)) {
                    // Let the transfer end, so the failure is reported, not a hang.
                    m.hangup();
                    panic!("sent after the note (write: {write}): {f:?}");
                }
            }
            assert_eq!(h.join().unwrap(), Ok(4), "the first message's part");
        });
        assert!(intr.is_pending(), "the note was lost (write: {write})");
        let sent = m.stats().sent_by_type;
        assert_eq!(transfer(), Err(MntError::Interrupted));
        assert_eq!(m.stats().sent_by_type, sent, "nothing sent after the note");
        assert!(!intr.is_pending(), "reported once");
        assert!(m.broken().is_none());
    }
}

/// The same for a call of one message: its reply beat the `Rflush`, so it succeeds,
/// and the note is still there for the next call.
#[test]
fn a_single_rpc_whose_reply_beats_its_rflush_keeps_the_note() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let file = open_file(&root, &fake, 0);
    let intr = Interrupt::new();
    thread::scope(|s| {
        let h = s.spawn(|| file.stat(&intr));
        let t = fake.recv();
        assert!(matches!(t.msg, Msg::Tstat { .. }), "{t:?}");
        intr.post();
        let f = fake.recv();
        assert_eq!(f.msg, Msg::Tflush { oldtag: t.tag });
        fake.reply(
            t.tag,
            Msg::Rstat {
                stat: file_stat("f", 3),
            },
        );
        fake.reply(f.tag, Msg::Rflush);
        assert!(h.join().unwrap().is_ok(), "the reply won");
    });
    assert!(intr.is_pending(), "the note was lost");
    assert_eq!(file.stat(&intr).map(|_| ()), Err(MntError::Interrupted));
    assert!(m.broken().is_none());
}
