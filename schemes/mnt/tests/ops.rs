//! The dialect-neutral channel operations, as each dialect puts them on the wire.

mod common;

use std::thread;
use std::time::Duration;

use common::*;
use mnt::ninep::{self, dm, getattr, lflags, om, setattr, smode, Attr, Dialect, Dirent, Msg, Qid};
use mnt::{BadReply, BrokenReason, Chan, Changes, Interrupt, MntError, OpenMode};

fn dotl() -> (mnt::Mount, Chan, Fake) {
    start(Dialect::L, 8192 + ninep::IOHDRSZ, 1 << 20)
}

/// Runs `op` on `chan` in a thread while `serve` plays the server; returns the result.
fn serve<T: Send>(
    chan: &mut Chan,
    fake: &Fake,
    op: impl FnOnce(&mut Chan) -> T + Send,
    serve: impl FnOnce(&Fake),
) -> T {
    let _w = watchdog(Duration::from_secs(60));
    thread::scope(|s| {
        let h = s.spawn(|| op(chan));
        serve(fake);
        h.join().expect("client")
    })
}

const NEW: Qid = Qid {
    ty: 0,
    version: 0,
    path: 77,
};

#[test]
fn attach_carries_n_uname_only_in_dotl() {
    let (t, srv) = mnt::host::pipe();
    let fake = Fake {
        srv,
        dialect: Dialect::L,
    };
    let server = thread::spawn(move || {
        let v = fake.recv();
        fake.reply(
            ninep::NOTAG,
            Msg::Rversion {
                msize: 8192,
                version: "9P2000.L".into(),
            },
        );
        let _ = v;
        let a = fake.recv();
        assert_eq!(
            a.msg,
            Msg::Tattach {
                fid: 0,
                afid: ninep::NOFID,
                uname: "glenda".into(),
                aname: String::new(),
                n_uname: Some(1000),
            }
        );
        fake.reply(a.tag, Msg::Rattach { qid: ROOT });
        let (fid, newfid, names) = fake.ack_walk();
        assert_eq!((fid, newfid, names.len()), (0, 1, 0));
        fake
    });
    let opts = mnt::MountOptions {
        msize: 8192,
        dialect: Dialect::L,
    };
    let intr = Interrupt::new();
    let m =
        mnt::Mount::version(Box::new(t), mnt::host::StdPlatform::shared(), &opts, &intr).unwrap();
    let root = m.attach(&args(), &intr).unwrap();
    assert_eq!(root.qid(), ROOT);
    server.join().unwrap();
}

#[test]
fn p2000_open_create_stat_wstat() {
    let (_m, root, fake) = start_p2000();
    let mut dir = walk_to(&root, &fake);
    serve(
        &mut dir,
        &fake,
        |c| c.create("new", 0o644, OpenMode::RDWR.truncating(), &Interrupt::new()),
        |f| {
            let r = f.recv();
            let Msg::Tcreate {
                name, perm, mode, ..
            } = r.msg
            else {
                panic!("{r:?}")
            };
            assert_eq!(
                (name.as_str(), perm, mode),
                ("new", 0o644, om::RDWR | om::TRUNC)
            );
            f.reply(
                r.tag,
                Msg::Rcreate {
                    qid: NEW,
                    iounit: 100,
                },
            );
        },
    )
    .expect("create");
    assert_eq!(dir.qid(), NEW);
    assert_eq!(dir.iounit(), 100);
    assert_eq!(dir.name(), "new");
    let info = serve(
        &mut dir,
        &fake,
        |c| c.stat(&Interrupt::new()),
        |f| {
            let r = f.recv();
            assert!(matches!(r.msg, Msg::Tstat { .. }));
            f.reply(
                r.tag,
                Msg::Rstat {
                    stat: file_stat("new", 5),
                },
            );
        },
    )
    .expect("stat");
    assert_eq!(
        (info.length, info.mode, info.name.as_str()),
        (5, 0o644, "new")
    );
    serve(
        &mut dir,
        &fake,
        |c| c.wstat(&Changes::truncate(3), &Interrupt::new()),
        |f| {
            let r = f.recv();
            let Msg::Twstat { stat, .. } = r.msg else {
                panic!("{r:?}")
            };
            let mut want = ninep::Stat::dont_touch();
            want.length = 3;
            assert_eq!(stat, want, "only the length changes");
            f.reply(r.tag, Msg::Rwstat);
        },
    )
    .expect("wstat");
    let err = serve(
        &mut dir,
        &fake,
        |c| c.wstat(&Changes::rename("x"), &Interrupt::new()),
        |f| {
            let r = f.recv();
            f.reply(
                r.tag,
                Msg::Rerror {
                    ename: "permission denied".into(),
                },
            );
        },
    );
    assert_eq!(err, Err(MntError::Server("permission denied".into())));
    assert_eq!(dir.name(), "new", "a failed rename keeps the name");
}

/// A fresh channel on the root, walked to "d".
fn walk_to(root: &Chan, fake: &Fake) -> Chan {
    thread::scope(|s| {
        let h = s.spawn(|| root.walk(&["d"], &Interrupt::new()));
        fake.ack_walk();
        h.join().unwrap().expect("walk")
    })
}

#[test]
fn reads_and_writes_are_split_at_the_iounit() {
    let (m, root, fake) = start_p2000();
    let mut file = open_file(&root, &fake, 100);
    let mut buf = vec![0u8; 250];
    let n = serve(
        &mut file,
        &fake,
        |c| c.read(10, &mut buf, &Interrupt::new()),
        |f| {
            for (off, count, give) in [(10, 100, 100), (110, 100, 100), (210, 50, 20)] {
                let r = f.recv();
                assert_eq!(
                    r.msg,
                    Msg::Tread {
                        fid: r_fid(&r),
                        offset: off,
                        count
                    }
                );
                f.reply(
                    r.tag,
                    Msg::Rread {
                        data: vec![off as u8; give],
                    },
                );
            }
        },
    )
    .expect("read");
    assert_eq!(n, 220, "a short read ends the read");
    assert_eq!(buf[0], 10);
    assert_eq!(buf[219], 210);
    let data = vec![9u8; 150];
    let n = serve(
        &mut file,
        &fake,
        |c| c.write(0, &data, &Interrupt::new()),
        |f| {
            for (off, len) in [(0u64, 100usize), (100, 50)] {
                let r = f.recv();
                let Msg::Twrite { offset, data, .. } = r.msg else {
                    panic!("{r:?}")
                };
                assert_eq!((offset, data.len()), (off, len));
                f.reply(r.tag, Msg::Rwrite { count: len as u32 });
            }
        },
    )
    .expect("write");
    assert_eq!(n, 150);
    let st = m.stats();
    assert_eq!(st.treads(), 3);
    assert_eq!(st.bytes_read, 220);
    assert_eq!(st.bytes_written, 150);
}

fn r_fid(f: &ninep::Fcall) -> u32 {
    match f.msg {
        Msg::Tread { fid, .. } | Msg::Twrite { fid, .. } => fid,
        _ => panic!("{f:?}"),
    }
}

#[test]
fn io_on_an_unopened_channel_is_refused_locally() {
    let (m, root, _fake) = start_p2000();
    let mut buf = [0u8; 4];
    assert_eq!(
        root.read(0, &mut buf, &Interrupt::new()),
        Err(MntError::NotOpen)
    );
    assert_eq!(
        root.write(0, b"x", &Interrupt::new()),
        Err(MntError::NotOpen)
    );
    assert_eq!(m.stats().treads(), 0);
}

#[test]
fn dotl_open_create_mkdir_stat_setattr_rename() {
    let (_m, root, fake) = dotl();
    let mut dir = walk_to(&root, &fake);
    serve(
        &mut dir,
        &fake,
        |c| c.create("f", 0o640, OpenMode::WRITE, &Interrupt::new()),
        |f| {
            let r = f.recv();
            assert_eq!(
                r.msg,
                Msg::Tlcreate {
                    fid: dir_fid(&r),
                    name: "f".into(),
                    flags: lflags::WRONLY | lflags::CREAT | lflags::EXCL,
                    mode: 0o640,
                    gid: 1000,
                }
            );
            f.reply(
                r.tag,
                Msg::Rlcreate {
                    qid: NEW,
                    iounit: 0,
                },
            );
        },
    )
    .expect("lcreate");
    assert_eq!(dir.qid(), NEW);

    let mut d2 = walk_to(&root, &fake);
    let d2_fid = d2.fid();
    serve(
        &mut d2,
        &fake,
        |c| c.create("sub", dm::DIR | 0o755, OpenMode::READ, &Interrupt::new()),
        |f| {
            let r = f.recv();
            assert_eq!(
                r.msg,
                Msg::Tmkdir {
                    dfid: d2_fid,
                    name: "sub".into(),
                    mode: 0o755,
                    gid: 1000
                }
            );
            f.reply(r.tag, Msg::Rmkdir { qid: NEW });
            let w = f.recv();
            assert_eq!(
                w.msg,
                Msg::Twalk {
                    fid: d2_fid,
                    newfid: d2_fid,
                    wnames: vec!["sub".into()]
                }
            );
            f.reply(w.tag, Msg::Rwalk { wqids: vec![NEW] });
            let o = f.recv();
            assert_eq!(
                o.msg,
                Msg::Tlopen {
                    fid: d2_fid,
                    flags: lflags::RDONLY
                }
            );
            f.reply(
                o.tag,
                Msg::Rlopen {
                    qid: NEW,
                    iounit: 0,
                },
            );
        },
    )
    .expect("mkdir");
    assert_eq!(d2.name(), "sub");

    let info = serve(
        &mut dir,
        &fake,
        |c| c.stat(&Interrupt::new()),
        |f| {
            let r = f.recv();
            let Msg::Tgetattr { request_mask, .. } = r.msg else {
                panic!("{r:?}")
            };
            assert_eq!(request_mask, getattr::BASIC);
            let attr = Attr {
                valid: getattr::BASIC,
                qid: NEW,
                mode: smode::IFDIR | 0o750,
                size: 4096,
                mtime_sec: 99,
                ..Attr::default()
            };
            f.reply(r.tag, Msg::Rgetattr { attr });
        },
    )
    .expect("getattr");
    assert_eq!(info.mode, dm::DIR | 0o750);
    assert!(info.is_dir());
    assert_eq!(
        (info.length, info.mtime, info.name.as_str()),
        (4096, 99, "f")
    );

    serve(
        &mut dir,
        &fake,
        |c| {
            let ch = Changes {
                length: Some(0),
                name: Some("g".into()),
                ..Changes::default()
            };
            c.wstat(&ch, &Interrupt::new())
        },
        |f| {
            let r = f.recv();
            let Msg::Tsetattr { attr, .. } = r.msg else {
                panic!("{r:?}")
            };
            assert_eq!((attr.valid, attr.size), (setattr::SIZE, 0));
            f.reply(r.tag, Msg::Rsetattr);
            // The parent is walked to from the attach's own fid (0), along the path.
            let (from, parent, names) = f.ack_walk();
            assert_eq!((from, names.as_slice()), (0, ["d".to_string()].as_slice()));
            let rn = f.recv();
            let Msg::Trename { dfid, name, .. } = rn.msg else {
                panic!("{rn:?}")
            };
            assert_eq!((dfid, name.as_str()), (parent, "g"));
            f.reply(rn.tag, Msg::Rrename);
            // The parent channel is dropped: its clunk is queued.
            assert_eq!(f.ack_clunk(), parent);
        },
    )
    .expect("setattr and rename");
    assert_eq!(dir.name(), "g");

    let err = serve(
        &mut dir,
        &fake,
        |c| c.wstat(&Changes::truncate(1), &Interrupt::new()),
        |f| {
            let r = f.recv();
            f.reply(
                r.tag,
                Msg::Rlerror {
                    ecode: ninep::errno::EPERM,
                },
            );
        },
    );
    assert_eq!(err, Err(MntError::Errno(ninep::errno::EPERM)));
}

fn dir_fid(f: &ninep::Fcall) -> u32 {
    match f.msg {
        Msg::Tlcreate { fid, .. } => fid,
        _ => panic!("{f:?}"),
    }
}

#[test]
fn dotl_has_no_remove_on_close() {
    let (_m, root, fake) = dotl();
    let mut c = walk_to(&root, &fake);
    let mode = OpenMode {
        remove_on_close: true,
        ..OpenMode::READ
    };
    assert_eq!(c.open(mode, &Interrupt::new()), Err(MntError::Unsupported));
}

#[test]
fn directory_reads_in_both_dialects() {
    let (_m, root, fake) = start_p2000();
    let mut d = open_file(&root, &fake, 0);
    let (entries, next) = serve(
        &mut d,
        &fake,
        |c| c.read_dir(0, &Interrupt::new()),
        |f| {
            let r = f.recv();
            assert!(matches!(r.msg, Msg::Tread { offset: 0, .. }));
            let mut data = Vec::new();
            file_stat("a", 1).encode(&mut data).unwrap();
            file_stat("b", 2).encode(&mut data).unwrap();
            f.reply(r.tag, Msg::Rread { data });
        },
    )
    .expect("read_dir");
    let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(entries[1].info.as_ref().map(|i| i.length), Some(2));
    assert!(next > 0);

    let (_m, root, fake) = dotl();
    let mut d = open_file(&root, &fake, 0);
    let (entries, next) = serve(
        &mut d,
        &fake,
        |c| c.read_dir(0, &Interrupt::new()),
        |f| {
            let r = f.recv();
            assert!(matches!(r.msg, Msg::Treaddir { offset: 0, .. }));
            let mut data = Vec::new();
            for (i, n) in ["x", "y"].iter().enumerate() {
                let e = Dirent {
                    qid: NEW,
                    offset: 10 + i as u64,
                    ty: ninep::dt::REG,
                    name: (*n).into(),
                };
                e.encode(&mut data).unwrap();
            }
            f.reply(r.tag, Msg::Rreaddir { data });
        },
    )
    .expect("readdir");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].name, "y");
    assert_eq!(next, 11);
}

/// Plays a 9P2000.L server for `read_dir(0)` on `d`: answers each `Treaddir` with the
/// entries `batch` makes of its offset, until the client returns, hangs up, or has
/// asked `limit` times (then it is interrupted, and the test fails). Returns the
/// client's result and the number of `Treaddir`s.
fn read_dir_against(
    d: &Chan,
    fake: &Fake,
    limit: usize,
    batch: impl Fn(u64) -> Vec<(&'static str, u64)>,
) -> (Result<(Vec<mnt::DirEntry>, u64), MntError>, usize) {
    let _w = watchdog(Duration::from_secs(60));
    let intr = Interrupt::new();
    let mut asked = 0;
    let r = thread::scope(|s| {
        let h = s.spawn(|| d.read_dir(0, &intr));
        let end = std::time::Instant::now() + DEADLINE;
        loop {
            let f = match fake.try_recv(Duration::from_millis(10)) {
                Got::Msg(f) => f,
                Got::Eof => break,
                Got::Timeout if h.is_finished() => break,
                Got::Timeout => {
                    assert!(std::time::Instant::now() < end, "the client hangs");
                    continue;
                }
            };
            match f.msg {
                Msg::Treaddir { offset, .. } if asked < limit => {
                    asked += 1;
                    let mut data = Vec::new();
                    for (name, offset) in batch(offset) {
                        let e = Dirent {
                            qid: NEW,
                            offset,
                            ty: ninep::dt::DIR,
                            name: name.into(),
                        };
                        e.encode(&mut data).unwrap();
                    }
                    fake.reply(f.tag, Msg::Rreaddir { data });
                }
                Msg::Treaddir { .. } => {
                    asked += 1;
                    intr.post();
                }
                Msg::Tflush { .. } => {
                    fake.reply(f.tag, Msg::Rflush);
                    break;
                }
                m => panic!("unexpected {m:?}"),
            }
        }
        h.join().expect("client")
    });
    (r, asked)
}

#[test]
fn dotl_read_dir_skips_dot_batches_until_real_entries() {
    let (m, root, fake) = dotl();
    let d = open_file(&root, &fake, 0);
    // ".", then "..", then the entries: three batches, all legitimate.
    let (r, asked) = read_dir_against(&d, &fake, 10, |offset| match offset {
        0 => vec![(".", 1)],
        1 => vec![("..", 2)],
        _ => vec![("a", 3), ("b", 4)],
    });
    let (entries, next) = r.expect("read_dir");
    let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!((next, asked), (4, 3));
    assert!(m.broken().is_none());
}

#[test]
fn dotl_read_dir_whose_cookie_does_not_move_breaks_the_mount() {
    let (m, root, fake) = dotl();
    let d = open_file(&root, &fake, 0);
    // Always "." at the offset asked: asking again would get the same answer.
    let (r, asked) = read_dir_against(&d, &fake, 10, |offset| vec![(".", offset)]);
    assert!(asked < 10, "read_dir kept asking: {asked} Treaddirs");
    let want = BadReply::DirNoProgress { offset: 0 };
    assert_eq!(r, Err(MntError::BadReply(want.clone())));
    assert_eq!(m.broken(), Some(BrokenReason::BadReply(want)));
}

#[test]
fn dotl_read_dir_listing_dot_again_breaks_the_mount() {
    let (m, root, fake) = dotl();
    let d = open_file(&root, &fake, 0);
    // The cookie moves, but the server lists "." over and over.
    let (r, asked) = read_dir_against(&d, &fake, 10, |offset| vec![(".", offset + 1)]);
    assert!(asked < 10, "read_dir kept asking: {asked} Treaddirs");
    let want = BadReply::DirNoProgress { offset: 1 };
    assert_eq!(r, Err(MntError::BadReply(want.clone())));
    assert_eq!(m.broken(), Some(BrokenReason::BadReply(want)));
}

/// A read or write whose end would pass the largest offset fails, unsent, instead
/// of computing a later message's offset with an overflow (which panicked, in a
/// debug build, once the first message was answered). One that ends at it is sent.
#[test]
fn a_transfer_past_the_largest_offset_is_refused() {
    let _w = watchdog(Duration::from_secs(60));
    let (m, root, fake) = start_p2000();
    let file = open_file(&root, &fake, 4);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let intr = Interrupt::new();
    let asked = thread::scope(|s| {
        // Answers every read and write in full, and counts them.
        let server = s.spawn(|| {
            let mut asked = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let Got::Msg(f) = fake.try_recv(Duration::from_millis(5)) else {
                    continue;
                };
                match f.msg {
                    Msg::Tread { offset, count, .. } => {
                        asked.push(offset);
                        let data = vec![7; count as usize];
                        fake.reply(f.tag, Msg::Rread { data });
                    }
                    Msg::Twrite { offset, data, .. } => {
                        asked.push(offset);
                        let count = data.len() as u32;
                        fake.reply(f.tag, Msg::Rwrite { count });
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            asked
        });
        let near = u64::MAX - 3;
        let (file, intr) = (&file, &intr);
        let read = s.spawn(move || file.read(near, &mut [0u8; 8], intr)).join();
        let write = s.spawn(move || file.write(near, b"abcdefgh", intr)).join();
        let edge = s
            .spawn(|| file.read(u64::MAX - 4, &mut [0u8; 4], intr))
            .join();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let overflow = MntError::OffsetOverflow {
            offset: near,
            len: 8,
        };
        assert_eq!(read.expect("read panicked"), Err(overflow.clone()));
        assert_eq!(write.expect("write panicked"), Err(overflow));
        assert_eq!(
            edge.expect("read panicked"),
            Ok(4),
            "a read ending at the end"
        );
        server.join().unwrap()
    });
    assert_eq!(
        asked,
        [u64::MAX - 4],
        "only the read that ends at the end is sent"
    );
    assert!(m.broken().is_none());
}
