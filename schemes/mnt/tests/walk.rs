//! Walks: split into Twalks of at most 16 names, partial walks, clones.

mod common;

use std::thread;
use std::time::Duration;

use common::*;
use mnt::ninep::{Msg, Qid};
use mnt::{Interrupt, MntError};

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("d{i}")).collect()
}

#[test]
fn long_walk_goes_out_in_sixteens() {
    let _w = watchdog(Duration::from_secs(60));
    let (_m, root, fake) = start_p2000();
    let all = names(40);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    thread::scope(|s| {
        let h = s.spawn(|| root.walk(&refs, &Interrupt::new()));
        let (fid0, newfid, w0) = fake.ack_walk();
        assert_eq!(fid0, root.fid());
        assert_ne!(newfid, root.fid());
        assert_eq!(w0, all[..16]);
        let (fid1, newfid1, w1) = fake.ack_walk();
        assert_eq!(
            (fid1, newfid1),
            (newfid, newfid),
            "later steps walk the new fid"
        );
        assert_eq!(w1, all[16..32]);
        let (fid2, newfid2, w2) = fake.ack_walk();
        assert_eq!((fid2, newfid2), (newfid, newfid));
        assert_eq!(w2, all[32..]);
        let c = h.join().unwrap().expect("walk");
        assert_eq!(c.fid(), newfid);
        assert_eq!(c.name(), "d39");
        // ack_walk numbers qids 1000.. within each step: the last of the 8.
        assert_eq!(c.qid().path, 1007);
    });
}

#[test]
fn sixteen_names_is_one_twalk() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let all = names(16);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    thread::scope(|s| {
        let h = s.spawn(|| root.walk(&refs, &Interrupt::new()));
        let (_, _, w) = fake.ack_walk();
        assert_eq!(w.len(), 16);
        h.join().unwrap().expect("walk");
    });
    assert_eq!(m.stats().sent(mnt::ninep::mtype::TWALK), 1);
}

#[test]
fn empty_walk_clones() {
    let _w = watchdog(Duration::from_secs(60));
    let (_m, root, fake) = start_p2000();
    thread::scope(|s| {
        let h = s.spawn(|| root.walk(&[], &Interrupt::new()));
        let (fid, newfid, w) = fake.ack_walk();
        assert!(w.is_empty());
        assert_eq!(fid, root.fid());
        let c = h.join().unwrap().expect("clone");
        assert_eq!(c.fid(), newfid);
        assert_eq!(c.qid(), root.qid());
    });
}

#[test]
fn partial_first_step_frees_the_new_fid() {
    let _w = watchdog(Duration::from_secs(60));
    let (_m, root, fake) = start_p2000();
    let all = names(5);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let failed_newfid = thread::scope(|s| {
        let h = s.spawn(|| root.walk(&refs, &Interrupt::new()));
        let f = fake.recv();
        let Msg::Twalk { newfid, .. } = f.msg else {
            panic!("{f:?}")
        };
        fake.reply(
            f.tag,
            Msg::Rwalk {
                wqids: vec![Qid::default(); 2],
            },
        );
        assert_eq!(
            h.join().unwrap().unwrap_err(),
            MntError::WalkIncomplete { walked: 2 }
        );
        newfid
    });
    // The server never made the fid: no clunk, and the number is free again.
    thread::scope(|s| {
        let h = s.spawn(|| root.walk(&["x"], &Interrupt::new()));
        let (_, newfid, _) = fake.ack_walk();
        assert_eq!(newfid, failed_newfid);
        h.join().unwrap().expect("walk");
    });
}

#[test]
fn partial_later_step_clunks_the_new_fid() {
    let _w = watchdog(Duration::from_secs(60));
    let (_m, root, fake) = start_p2000();
    let all = names(20);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    thread::scope(|s| {
        let h = s.spawn(|| root.walk(&refs, &Interrupt::new()));
        let (_, newfid, _) = fake.ack_walk();
        let f = fake.recv();
        fake.reply(
            f.tag,
            Msg::Rwalk {
                wqids: vec![Qid::default(); 1],
            },
        );
        // The new fid exists (at d15): its clunk is queued.
        assert_eq!(fake.ack_clunk(), newfid);
        assert_eq!(
            h.join().unwrap().unwrap_err(),
            MntError::WalkIncomplete { walked: 17 }
        );
    });
}

#[test]
fn walk_error_reply_is_the_servers_string() {
    let _w = watchdog(Duration::from_secs(60));
    let (_m, root, fake) = start_p2000();
    thread::scope(|s| {
        let h = s.spawn(|| root.walk(&["nope"], &Interrupt::new()));
        let f = fake.recv();
        fake.reply(
            f.tag,
            Msg::Rerror {
                ename: "file does not exist".into(),
            },
        );
        assert_eq!(
            h.join().unwrap().unwrap_err(),
            MntError::Server("file does not exist".into())
        );
    });
}
