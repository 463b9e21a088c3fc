//! Channels and the transport: clunks (waited, queued, botched, flushed), fid reuse
//! and abandonment, and the last channel closing the connection.

mod common;

use std::thread;
use std::time::Duration;

use common::*;
use mnt::ninep::Msg;
use mnt::{Chan, Interrupt, MntError};

/// Walks `root` to a new channel, the fake server agreeing; returns it.
fn walk(root: &Chan, fake: &Fake, name: &str) -> Chan {
    thread::scope(|s| {
        let h = s.spawn(|| root.walk(&[name], &Interrupt::new()));
        fake.ack_walk();
        h.join().unwrap().expect("walk")
    })
}

#[test]
fn last_channel_closes_the_transport() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let a = walk(&root, &fake, "a");
    let root_fid = root.fid();
    drop(root);
    // A queued clunk: sent at once, nobody waits for its reply.
    assert_eq!(fake.ack_clunk(), root_fid);
    assert!(!m.is_closed(), "a channel is still open");
    let a_fid = a.fid();
    drop(a);
    let before_eof = fake.until_eof();
    assert!(
        matches!(before_eof.as_slice(), [f] if f.msg == Msg::Tclunk { fid: a_fid }),
        "{before_eof:?}"
    );
    assert!(m.is_closed());
    assert_eq!(m.stats().clunks_queued, 2);
}

#[test]
fn explicit_clunk_waits_and_frees_the_fid() {
    let _w = watchdog(Duration::from_secs(60));
    let (_m, root, fake) = start_p2000();
    let a = walk(&root, &fake, "a");
    let fid = a.fid();
    thread::scope(|s| {
        let h = s.spawn(|| a.clunk(&Interrupt::new()));
        assert_eq!(fake.ack_clunk(), fid);
        h.join().unwrap().expect("clunk");
    });
    // The server forgot it: the number comes back.
    thread::scope(|s| {
        let h = s.spawn(|| root.walk(&["b"], &Interrupt::new()));
        let (_, newfid, _) = fake.ack_walk();
        assert_eq!(newfid, fid);
        h.join().unwrap().expect("walk");
    });
}

#[test]
fn queued_clunk_frees_the_fid_once_its_reply_is_read() {
    let _w = watchdog(Duration::from_secs(60));
    let (_m, root, fake) = start_p2000();
    let a = walk(&root, &fake, "a");
    let fid = a.fid();
    drop(a);
    assert_eq!(fake.ack_clunk(), fid);
    // The next caller reads the Rclunk (it comes first) before its own reply.
    thread::scope(|s| {
        let h = s.spawn(|| root.stat(&Interrupt::new()));
        let f = fake.recv();
        fake.reply(
            f.tag,
            Msg::Rstat {
                stat: file_stat("/", 0),
            },
        );
        h.join().unwrap().expect("stat");
    });
    let b = walk(&root, &fake, "b");
    assert_eq!(b.fid(), fid);
}

/// Every fid the client uses from now on, over `n` walk-and-clunk rounds.
fn fids_of_next_walks(root: &Chan, fake: &Fake, n: usize) -> Vec<u32> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let c = walk(root, fake, "x");
        seen.push(c.fid());
        thread::scope(|s| {
            let h = s.spawn(|| c.clunk(&Interrupt::new()));
            fake.ack_clunk();
            h.join().unwrap().expect("clunk");
        });
    }
    seen
}

#[test]
fn flushed_clunk_abandons_the_fid() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let a = walk(&root, &fake, "a");
    let fid = a.fid();
    let intr = Interrupt::new();
    thread::scope(|s| {
        let h = s.spawn(|| a.clunk(&intr));
        let c = fake.recv();
        assert_eq!(c.msg, Msg::Tclunk { fid });
        intr.post();
        let f = fake.recv();
        assert_eq!(f.msg, Msg::Tflush { oldtag: c.tag });
        fake.reply(f.tag, Msg::Rflush);
        assert_eq!(h.join().unwrap(), Err(MntError::Interrupted));
    });
    assert_eq!(m.stats().fids_abandoned, 1);
    let later = fids_of_next_walks(&root, &fake, 20);
    assert!(
        !later.contains(&fid),
        "abandoned fid {fid} reused: {later:?}"
    );
    // Clean clunks do give their fids back, so the check above could fail.
    assert!(later.windows(2).any(|w| w[0] == w[1]), "{later:?}");
}

#[test]
fn botched_clunk_abandons_the_fid() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let a = walk(&root, &fake, "a");
    let fid = a.fid();
    thread::scope(|s| {
        let h = s.spawn(|| a.clunk(&Interrupt::new()));
        let c = fake.recv();
        fake.reply(
            c.tag,
            Msg::Rerror {
                ename: "unknown fid".into(),
            },
        );
        assert_eq!(
            h.join().unwrap(),
            Err(MntError::Server("unknown fid".into()))
        );
    });
    assert_eq!(m.stats().fids_abandoned, 1);
    let later = fids_of_next_walks(&root, &fake, 10);
    assert!(
        !later.contains(&fid),
        "abandoned fid {fid} reused: {later:?}"
    );
}

#[test]
fn clunk_whose_reply_beats_the_flush_frees_the_fid() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let a = walk(&root, &fake, "a");
    let fid = a.fid();
    let intr = Interrupt::new();
    thread::scope(|s| {
        let h = s.spawn(|| a.clunk(&intr));
        let c = fake.recv();
        intr.post();
        let f = fake.recv();
        fake.reply(c.tag, Msg::Rclunk);
        fake.reply(f.tag, Msg::Rflush);
        assert_eq!(h.join().unwrap(), Ok(()));
    });
    assert_eq!(m.stats().fids_abandoned, 0);
    let b = walk(&root, &fake, "b");
    assert_eq!(b.fid(), fid);
}

#[test]
fn remove_sends_tremove_and_ends_the_channel() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let a = walk(&root, &fake, "a");
    let fid = a.fid();
    thread::scope(|s| {
        let h = s.spawn(|| a.remove(&Interrupt::new()));
        let r = fake.recv();
        assert_eq!(r.msg, Msg::Tremove { fid });
        fake.reply(r.tag, Msg::Rremove);
        h.join().unwrap().expect("remove");
    });
    drop(root);
    // Only the root's queued clunk, then end of file: the removed channel sends
    // nothing more.
    assert_eq!(fake.until_eof().len(), 1);
    assert!(m.is_closed());
}

#[test]
fn a_mount_handle_does_not_keep_the_connection_open() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let m2 = m.clone();
    drop(root);
    fake.ack_clunk();
    assert!(fake.until_eof().is_empty());
    assert!(m2.is_closed());
    // A closed mount cannot attach again.
    assert_eq!(
        m.attach(&args(), &Interrupt::new()).unwrap_err(),
        MntError::Hungup
    );
}

#[test]
fn dotl_attach_fid_goes_with_the_last_channel() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start(mnt::ninep::Dialect::L, 8192, 8192);
    let a = walk(&root, &fake, "a");
    let a_fid = a.fid();
    drop(root);
    fake.ack_clunk();
    assert!(!m.is_closed());
    drop(a);
    let clunked: Vec<_> = fake.until_eof().into_iter().map(|f| f.msg).collect();
    // The channel's own fid, then the attach's (fid 0), then end of file.
    assert_eq!(
        clunked,
        [Msg::Tclunk { fid: a_fid }, Msg::Tclunk { fid: 0 }]
    );
    assert!(m.is_closed());
}
