//! Version negotiation: msize clipping, dialect fallback, refusals; mount ids.

mod common;

use std::thread;
use std::time::Duration;

use common::*;
use mnt::host::{pipe, StdPlatform};
use mnt::ninep::{self, Dialect, Msg};
use mnt::{AttachArgs, BadReply, Interrupt, MntError, Mount, MountOptions};

/// Starts a session asking for (`dialect`, `want`); the fake server checks the
/// Tversion it gets with `check` and answers with `answer`. Returns the result and
/// whether the server then saw end of file.
fn negotiate(
    dialect: Dialect,
    want: u32,
    check: impl FnOnce(u32, &str) + Send + 'static,
    answer: impl FnOnce(u32, String) -> (u16, Msg) + Send + 'static,
) -> (Result<Mount, MntError>, Fake) {
    let _w = watchdog(Duration::from_secs(60));
    let (t, srv) = pipe();
    let fake = Fake { srv, dialect };
    let server = thread::spawn(move || {
        let v = fake.recv();
        let Msg::Tversion { msize, version } = v.msg else {
            panic!("expected Tversion, got {v:?}");
        };
        check(msize, &version);
        let (tag, msg) = answer(msize, version);
        fake.reply(tag, msg);
        fake
    });
    let opts = MountOptions {
        msize: want,
        dialect,
    };
    let r = Mount::version(Box::new(t), StdPlatform::shared(), &opts, &Interrupt::new());
    (r, server.join().expect("fake server"))
}

fn rversion(msize: u32, version: &str) -> (u16, Msg) {
    (
        ninep::NOTAG,
        Msg::Rversion {
            msize,
            version: version.into(),
        },
    )
}

#[test]
fn msize_below_256_is_raised_to_256() {
    let (r, _f) = negotiate(
        Dialect::P2000,
        100,
        |m, _| assert_eq!(m, 256),
        |m, v| rversion(m, &v),
    );
    assert_eq!(r.unwrap().msize(), 256);
}

#[test]
fn msize_above_1mib_is_lowered_to_1mib() {
    let (r, _f) = negotiate(
        Dialect::P2000,
        4 << 20,
        |m, _| assert_eq!(m, 1 << 20),
        |_, v| rversion(8192, &v),
    );
    let m = r.unwrap();
    assert_eq!(m.msize(), 8192, "the server's smaller msize wins");
    assert_eq!(m.max_iounit(), 8192 - ninep::IOHDRSZ);
}

#[test]
fn server_cannot_raise_the_msize() {
    let (r, _f) = negotiate(Dialect::P2000, 4096, |_, _| {}, |_, v| rversion(65536, &v));
    assert_eq!(r.unwrap().msize(), 4096);
}

#[test]
fn server_msize_below_256_is_refused_and_hung_up() {
    let (r, f) = negotiate(Dialect::P2000, 4096, |_, _| {}, |_, v| rversion(100, &v));
    assert_eq!(
        r.unwrap_err(),
        MntError::BadReply(BadReply::MsizeTooSmall(100))
    );
    assert!(f.until_eof().is_empty());
}

#[test]
fn unknown_version_is_refused() {
    let (r, f) = negotiate(
        Dialect::P2000,
        4096,
        |_, v| assert_eq!(v, "9P2000"),
        |m, _| rversion(m, "unknown"),
    );
    assert_eq!(r.unwrap_err(), MntError::VersionRefused("unknown".into()));
    assert!(f.until_eof().is_empty());
}

#[test]
fn dotl_server_may_answer_9p2000() {
    let (r, _f) = negotiate(
        Dialect::L,
        4096,
        |_, v| assert_eq!(v, "9P2000.L"),
        |m, _| rversion(m, "9P2000"),
    );
    assert_eq!(r.unwrap().dialect(), Dialect::P2000);
}

#[test]
fn dotl_is_kept_when_offered() {
    let (r, _f) = negotiate(Dialect::L, 4096, |_, _| {}, |m, v| rversion(m, &v));
    assert_eq!(r.unwrap().dialect(), Dialect::L);
}

#[test]
fn rversion_with_a_tag_is_refused() {
    let (r, _f) = negotiate(
        Dialect::P2000,
        4096,
        |_, _| {},
        |m, v| {
            (
                7,
                Msg::Rversion {
                    msize: m,
                    version: v,
                },
            )
        },
    );
    assert_eq!(
        r.unwrap_err(),
        MntError::BadReply(BadReply::BadVersionReply)
    );
}

#[test]
fn mount_ids_are_never_reused() {
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (m, root, fake) = start_p2000();
        ids.push(m.id());
        assert_eq!(root.mount_id(), m.id());
        assert_eq!(root.file_key().dev, root.attach_id().get());
        assert_eq!(m.attach_ids(), vec![root.attach_id()]);
        drop(root);
        fake.until_eof();
    }
    assert!(ids.iter().all(|id| id.get() >= 1));
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

#[test]
fn same_qid_on_two_mounts_has_two_file_keys() {
    let (_m1, r1, _f1) = start_p2000();
    let (_m2, r2, _f2) = start_p2000();
    assert_eq!(r1.qid(), r2.qid());
    assert_ne!(r1.file_key(), r2.file_key());
}

/// Two anames of one session whose trees number their files alike (the same root qid, the
/// same qid path of a file): each attach keys its files by its own id.
#[test]
fn same_qid_in_two_attaches_of_one_session_has_two_file_keys() {
    let (m, r1, fake) = start_p2000();
    let second = thread::spawn(move || {
        let a = fake.recv();
        let Msg::Tattach { aname, .. } = &a.msg else {
            panic!("expected Tattach, got {a:?}");
        };
        assert_eq!(aname, "other");
        fake.reply(a.tag, Msg::Rattach { qid: ROOT });
        fake
    });
    let intr = Interrupt::new();
    let other = AttachArgs {
        aname: "other".into(),
        ..args()
    };
    let r2 = m.attach(&other, &intr).expect("second attach");
    let fake = second.join().expect("server");
    assert_eq!(r1.qid(), r2.qid());
    assert_eq!(r1.mount_id(), r2.mount_id());
    assert_ne!(r1.attach_id(), r2.attach_id());
    assert_ne!(r1.file_key(), r2.file_key());
    assert_eq!(m.attach_ids(), vec![r1.attach_id(), r2.attach_id()]);
    // A file walked to in each, with the same qid: still two keys.
    let f1 = open_file(&r1, &fake, 0);
    let f2 = open_file(&r2, &fake, 0);
    assert_eq!(f1.qid(), f2.qid());
    assert_ne!(f1.file_key(), f2.file_key());
    assert_eq!(f1.file_key().dev, r1.file_key().dev);
}

#[test]
fn mount_that_never_attached_closes_when_dropped() {
    let (r, f) = negotiate(Dialect::P2000, 4096, |_, _| {}, |m, v| rversion(m, &v));
    let m = r.unwrap();
    assert!(!m.is_closed());
    drop(m);
    assert!(f.until_eof().is_empty());
}
