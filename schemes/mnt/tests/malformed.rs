//! Malformed replies fail the request, mark the mount broken and hang up; no panic.

mod common;

use std::thread;
use std::time::Duration;

use common::*;
use mnt::ninep::{self, mtype, Dialect, Fcall, Msg, Qid};
use mnt::{BadReply, BrokenReason, Chan, Interrupt, MntError, Mount};

/// Runs `op` on a fresh mount (msize 256) while the fake server answers its first
/// request with whatever `reply` makes of that request; returns the result and the
/// mount.
fn with_bad_reply<T: Send>(
    op: impl FnOnce(&Chan) -> Result<T, MntError> + Send,
    reply: impl FnOnce(&Fcall) -> Vec<u8>,
) -> (Result<T, MntError>, Mount, Fake) {
    let (m, root, fake) = start(Dialect::P2000, 256, 256);
    assert_eq!(m.msize(), 256);
    let r = thread::scope(|s| {
        let h = s.spawn(|| op(&root));
        let req = fake.recv();
        fake.raw(reply(&req));
        h.join().expect("no panic in the client")
    });
    // The mount hung up: the server sees end of file (after our root's clunk,
    // which is not even sent since the mount is broken).
    drop(root);
    assert!(fake.until_eof().is_empty());
    (r, m, fake)
}

fn encoded(tag: u16, msg: Msg) -> Vec<u8> {
    let mut b = Vec::new();
    ninep::encode(&Fcall { tag, msg }, &mut b).unwrap();
    b
}

fn stat(c: &Chan) -> Result<mnt::FileInfo, MntError> {
    c.stat(&Interrupt::new())
}

fn assert_broken(m: &Mount, r: &Result<impl std::fmt::Debug, MntError>, want: BadReply) {
    assert_eq!(m.broken(), Some(BrokenReason::BadReply(want.clone())));
    match r {
        Err(MntError::BadReply(b)) => assert_eq!(*b, want),
        Err(MntError::Broken(BrokenReason::BadReply(b))) => assert_eq!(*b, want),
        other => panic!("expected a bad-reply error, got {other:?}"),
    }
}

#[test]
fn reply_shorter_than_seven_bytes() {
    let _w = watchdog(Duration::from_secs(60));
    let (r, m, _f) = with_bad_reply(stat, |_| vec![5, 0, 0, 0, mtype::RSTAT]);
    assert_broken(&m, &r, BadReply::TooShort(5));
}

#[test]
fn size_field_below_seven() {
    let _w = watchdog(Duration::from_secs(60));
    let (r, m, _f) = with_bad_reply(stat, |req| {
        let mut b = encoded(req.tag, Msg::Rclunk);
        b[..4].copy_from_slice(&3u32.to_le_bytes());
        b
    });
    assert_broken(&m, &r, BadReply::TooShort(3));
}

#[test]
fn reply_longer_than_msize() {
    let _w = watchdog(Duration::from_secs(60));
    let (r, m, _f) = with_bad_reply(stat, |req| {
        let mut b = vec![0u8; 300];
        b[..4].copy_from_slice(&300u32.to_le_bytes());
        b[4] = mtype::RSTAT;
        b[5..7].copy_from_slice(&req.tag.to_le_bytes());
        b
    });
    // The culprit is known by its tag: it gets BadReply itself.
    assert_eq!(
        r,
        Err(MntError::BadReply(BadReply::TooLong {
            len: 300,
            msize: 256
        }))
    );
    assert!(m.broken().is_some());
}

#[test]
fn size_field_that_lies() {
    let _w = watchdog(Duration::from_secs(60));
    let (r, m, _f) = with_bad_reply(stat, |req| {
        let mut b = encoded(req.tag, Msg::Rclunk);
        b[..4].copy_from_slice(&20u32.to_le_bytes());
        b
    });
    assert_broken(
        &m,
        &r,
        BadReply::SizeMismatch {
            declared: 20,
            actual: 7,
        },
    );
}

#[test]
fn reply_of_the_wrong_type() {
    let _w = watchdog(Duration::from_secs(60));
    let (r, m, _f) = with_bad_reply(stat, |req| encoded(req.tag, Msg::Rwalk { wqids: vec![] }));
    assert_broken(
        &m,
        &r,
        BadReply::WrongType {
            sent: mtype::TSTAT,
            got: mtype::RWALK,
        },
    );
}

#[test]
fn reply_with_an_unknown_tag() {
    let _w = watchdog(Duration::from_secs(60));
    let (r, m, _f) = with_bad_reply(stat, |req| {
        encoded(
            req.tag.wrapping_add(100),
            Msg::Rstat {
                stat: file_stat("f", 0),
            },
        )
    });
    match (&r, m.broken()) {
        (Err(MntError::Broken(_)), Some(BrokenReason::BadReply(BadReply::UnknownTag(_)))) => {}
        other => panic!("expected broken by an unknown tag, got {other:?}"),
    }
}

#[test]
fn undecodable_reply() {
    let _w = watchdog(Duration::from_secs(60));
    let (r, m, _f) = with_bad_reply(stat, |req| {
        let mut b = vec![0u8; 10];
        b[..4].copy_from_slice(&10u32.to_le_bytes());
        b[4] = mtype::RSTAT;
        b[5..7].copy_from_slice(&req.tag.to_le_bytes());
        b
    });
    assert!(
        matches!(r, Err(MntError::BadReply(BadReply::Decode(_)))),
        "{r:?}"
    );
    assert!(m.broken().is_some());
}

#[test]
fn dotl_error_in_a_9p2000_session() {
    let _w = watchdog(Duration::from_secs(60));
    let (r, m, _f) = with_bad_reply(stat, |req| {
        let mut b = vec![0u8; 11];
        b[..4].copy_from_slice(&11u32.to_le_bytes());
        b[4] = mtype::RLERROR;
        b[5..7].copy_from_slice(&req.tag.to_le_bytes());
        b[7..11].copy_from_slice(&2u32.to_le_bytes());
        b
    });
    assert!(matches!(r, Err(MntError::BadReply(_))), "{r:?}");
    assert!(m.broken().is_some());
}

#[test]
fn read_reply_longer_than_asked() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start(Dialect::P2000, 8192, 8192);
    let file = open_file(&root, &fake, 0);
    let r = thread::scope(|s| {
        let h = s.spawn(|| {
            let mut buf = [0u8; 8];
            file.read(0, &mut buf, &Interrupt::new())
        });
        let req = fake.recv();
        fake.reply(req.tag, Msg::Rread { data: vec![0; 16] });
        h.join().unwrap()
    });
    assert_eq!(
        r,
        Err(MntError::BadReply(BadReply::Overlong { asked: 8, got: 16 }))
    );
    assert!(m.broken().is_some());
}

#[test]
fn walk_answered_with_too_many_qids() {
    let _w = watchdog(Duration::from_secs(60));
    let (r, m, _f) = with_bad_reply(
        |root| root.walk(&["a"], &Interrupt::new()).map(|c| c.qid()),
        |req| {
            let q = Qid::default();
            encoded(req.tag, Msg::Rwalk { wqids: vec![q, q] })
        },
    );
    assert_broken(&m, &r, BadReply::TooManyQids { names: 1, qids: 2 });
}

#[test]
fn a_broken_mount_sends_nothing_more() {
    let _w = watchdog(Duration::from_secs(60));
    let (r, m, _f) = with_bad_reply(stat, |_| vec![1, 2, 3]);
    assert!(r.is_err());
    let sent = m.stats().sent_by_type.iter().sum::<u64>();
    let attach = m.attach(&args(), &Interrupt::new());
    assert!(
        matches!(attach, Err(MntError::Hungup | MntError::Broken(_))),
        "{attach:?}"
    );
    assert_eq!(m.stats().sent_by_type.iter().sum::<u64>(), sent);
}

/// A 9P2000 directory read answered with more bytes than its count breaks the
/// mount, as a file read's does (it was decoded and listed before).
#[test]
fn directory_read_reply_longer_than_asked() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start(Dialect::P2000, 8192, 8192);
    let dir = open_file(&root, &fake, 16);
    let r = thread::scope(|s| {
        let h = s.spawn(|| dir.read_dir(0, &Interrupt::new()));
        let req = fake.recv();
        assert!(matches!(req.msg, Msg::Tread { count: 16, .. }), "{req:?}");
        let mut data = Vec::new();
        file_stat("a-name-longer-than-sixteen-bytes", 1)
            .encode(&mut data)
            .unwrap();
        let got = data.len();
        fake.reply(req.tag, Msg::Rread { data });
        (h.join().unwrap(), got)
    });
    let (r, got) = r;
    assert_eq!(
        r.map(|(entries, _)| entries.len()),
        Err(MntError::BadReply(BadReply::Overlong { asked: 16, got }))
    );
    assert!(m.broken().is_some());
}
