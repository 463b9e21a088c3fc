//! Many threads, random interrupts, and a server that holds some replies until they
//! are flushed and sometimes answers a flushed request before its Rflush. Checks
//! tag uniqueness on the wire, every result, and that everything settles.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use mnt::ninep::Msg;
use mnt::{Interrupt, MntError};

/// xorshift64*: enough randomness for scheduling choices, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }
}

#[test]
fn random_interrupts_settle_cleanly() {
    let _w = watchdog(Duration::from_secs(240));
    const CLIENTS: usize = 8;
    const OPS: u64 = 150;
    let (m, root, fake) = start_p2000();
    let file = Arc::new(open_file(&root, &fake, 0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (mut ok, mut interrupted) = (0, 0);
    thread::scope(|s| {
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let file = file.clone();
            let finished = finished.clone();
            clients.push(s.spawn(move || {
                let intr = Arc::new(Interrupt::new());
                let stop = Arc::new(AtomicBool::new(false));
                // The "note poster": interrupts this client at random moments.
                let noter = {
                    let (intr, stop) = (intr.clone(), stop.clone());
                    thread::spawn(move || {
                        let mut rng = Rng(0x9e37_79b9 + c as u64);
                        while !stop.load(Ordering::Relaxed) {
                            thread::sleep(Duration::from_micros(rng.next() % 3000));
                            intr.post();
                        }
                    })
                };
                let (mut ok, mut interrupted) = (0, 0);
                for op in 0..OPS {
                    let off = c as u64 * 10_000 + op;
                    let mut buf = [0u8; 8];
                    match file.read(off, &mut buf, &intr) {
                        Ok(8) => {
                            assert_eq!(u64::from_le_bytes(buf), off);
                            ok += 1;
                        }
                        Err(MntError::Interrupted) => interrupted += 1,
                        other => panic!("client {c} op {op}: {other:?}"),
                    }
                }
                stop.store(true, Ordering::Relaxed);
                noter.join().expect("noter");
                finished.fetch_add(1, Ordering::SeqCst);
                (ok, interrupted)
            }));
        }

        let mut rng = Rng(42);
        // Tags the server has not answered yet, and the reads it holds back.
        let mut open_tags: BTreeSet<u16> = BTreeSet::new();
        let mut held: BTreeMap<u16, u64> = BTreeMap::new();
        let mut replied_first = 0;
        loop {
            let f = match fake.try_recv(Duration::from_millis(5)) {
                Got::Msg(f) => f,
                Got::Timeout if finished.load(Ordering::SeqCst) == CLIENTS => break,
                Got::Timeout => continue,
                Got::Eof => panic!("unexpected end of file"),
            };
            assert!(
                open_tags.insert(f.tag),
                "tag {} reused while in flight",
                f.tag
            );
            match f.msg {
                Msg::Tread { offset, .. } if rng.chance(2) => {
                    fake.reply(
                        f.tag,
                        Msg::Rread {
                            data: offset.to_le_bytes().to_vec(),
                        },
                    );
                    open_tags.remove(&f.tag);
                }
                Msg::Tread { offset, .. } => {
                    held.insert(f.tag, offset);
                }
                Msg::Tflush { oldtag } => {
                    if let Some(off) = held.remove(&oldtag) {
                        if rng.chance(2) {
                            // The reply beats the Rflush: the client must take it.
                            fake.reply(
                                oldtag,
                                Msg::Rread {
                                    data: off.to_le_bytes().to_vec(),
                                },
                            );
                            replied_first += 1;
                        }
                        open_tags.remove(&oldtag);
                    }
                    fake.reply(f.tag, Msg::Rflush);
                    open_tags.remove(&f.tag);
                }
                m => panic!("unexpected {m:?}"),
            }
        }
        assert!(held.is_empty(), "held reads never flushed: {held:?}");
        assert!(open_tags.is_empty(), "unanswered: {open_tags:?}");
        for c in clients {
            let (o, i) = c.join().expect("client");
            ok += o;
            interrupted += i;
        }
        eprintln!("ok {ok}, interrupted {interrupted}, replies before Rflush {replied_first}");
    });
    assert_eq!(ok + interrupted, CLIENTS as u64 * OPS);
    let st = m.stats();
    assert_eq!(st.in_flight, 0);
    assert!(m.broken().is_none());
    assert!(st.flushes > 0, "the test never flushed anything");
}
