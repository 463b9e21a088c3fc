//! Runs of data requests (`ninep_server/run.rs`): a large run is answered on two
//! threads at once (staged with the run's hook), a small one on the connection's
//! thread, conflicting requests never share a run, and through the whole server a
//! pipelined read, write, read and flush of one file come back as if answered one by
//! one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::Duration;

use super::*;
use crate::fs::{Cred, FileHandle, NewKind, NewNode, NodeId};
use crate::ninep_server::output::{Output, Plain};
use crate::ninep_server::run::{Context, Job, Run, PARALLEL_MIN_BYTES};

fn context(fs: &Fs) -> Context<'_> {
    Context {
        fs,
        dialect: Dialect::L,
        trace: None,
        sharing: crate::ninep_server::output::WRITEV_SHARING,
    }
}

/// Long enough for any step on a loaded machine; only a serial run waits this long.
const STEP_DEADLINE: Duration = Duration::from_secs(20);

fn fs_with_file(len: usize) -> (Fs, NodeId, Cred) {
    let fs = fresh_fs();
    let (f, who) = {
        let mut t = fs.lock();
        let who = t.cred_for_uid(1000, None);
        let root = t.root();
        let f = t
            .create(&who, root, "f", NewNode::new(NewKind::File, 0o666))
            .unwrap();
        t.write(&who, f, 0, &vec![5; len], false).unwrap();
        (f, who)
    };
    (fs, f, who)
}

/// The handle an open fid of `node` has.
fn handle(fs: &Fs, node: NodeId) -> FileHandle {
    fs.lock_shared().file_handle(node).expect("a regular file")
}

/// A read of `file`'s data, said to be of `node` (the run's conflicts go by node).
fn read(file: &FileHandle, tag: u16, node: NodeId, offset: u64, count: usize) -> Job {
    Job::Read {
        tag,
        node,
        file: file.clone(),
        offset,
        count,
    }
}

/// The tag of job 1 waits, inside its thread, for job 2 to begin: only a run answered
/// on two threads at once gets past that before the deadline.
#[test]
fn a_large_run_is_answered_on_two_threads_at_once() {
    let half = PARALLEL_MIN_BYTES;
    let (fs, f, _) = fs_with_file(2 * half);
    let h = handle(&fs, f);
    let (began_tx, began_rx) = mpsc::channel::<u16>();
    let began_rx = Mutex::new(began_rx);
    let overlapped = Arc::new(AtomicUsize::new(0));
    let mut run = Run::default();
    let seen = Arc::clone(&overlapped);
    let began_tx = Mutex::new(began_tx);
    run.hook = Some(Arc::new(move |tag| {
        if tag == 2 {
            let _ = began_tx.lock().unwrap().send(tag);
        } else if began_rx.lock().unwrap().recv_timeout(STEP_DEADLINE).is_ok() {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    }));
    run.push(read(&h, 1, f, 0, half));
    assert!(
        !run.conflicts(&read(&h, 2, f, half as u64, half)),
        "reads of one file"
    );
    run.push(read(&h, 2, f, half as u64, half));
    let (mut spare, mut output, mut written) = (Vec::new(), Output::default(), Plain(Vec::new()));
    run.answer(context(&fs), 2, &[], &mut spare, &mut output, &mut written)
        .unwrap();
    assert_eq!(
        overlapped.load(Ordering::SeqCst),
        1,
        "job 1 saw job 2 begin while it was still inside"
    );
    assert!(run.is_empty() && output.is_empty(), "all written");
    let replies = replies_of(&written.0);
    let mut tags: Vec<u16> = replies.iter().map(|r| r.tag).collect();
    tags.sort_unstable();
    assert_eq!(tags, [1, 2], "each job answered once");
    for r in &replies {
        assert_eq!(
            r.msg,
            Msg::Rread {
                data: vec![5; half]
            }
        );
    }
}

#[test]
fn a_small_run_stays_on_the_connections_thread() {
    let (fs, f, _) = fs_with_file(8192);
    let h = handle(&fs, f);
    let me = thread::current().id();
    let elsewhere = Arc::new(AtomicUsize::new(0));
    let mut run = Run::default();
    let counter = Arc::clone(&elsewhere);
    run.hook = Some(Arc::new(move |_| {
        if thread::current().id() != me {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }));
    run.push(read(&h, 1, f, 0, 4096));
    run.push(read(&h, 2, f, 4096, 4096));
    let (mut spare, mut output, mut written) = (Vec::new(), Output::default(), Plain(Vec::new()));
    run.answer(context(&fs), 4, &[], &mut spare, &mut output, &mut written)
        .unwrap();
    assert_eq!(elsewhere.load(Ordering::SeqCst), 0);
    assert!(written.0.is_empty(), "left in the batch's output");
    assert_eq!(replies_of(&output.bytes).len(), 2);
}

#[test]
fn a_write_never_shares_a_run_with_another_request_on_its_file() {
    let (fs, f, who) = fs_with_file(4096);
    let h = handle(&fs, f);
    let who = Arc::new(who);
    let write = |tag, node| Job::Write {
        tag,
        node,
        file: h.clone(),
        cred: Arc::clone(&who),
        offset: 0,
        data: 0..16,
        append: false,
    };
    let other = f + 1000;
    let mut run = Run::default();
    run.push(read(&h, 1, f, 0, 10));
    assert!(
        run.conflicts(&write(2, f)),
        "a write after a read of its file"
    );
    assert!(!run.conflicts(&write(2, other)), "a write of another file");
    run.push(write(2, other));
    assert!(
        run.conflicts(&read(&h, 3, other, 0, 10)),
        "a read after a write"
    );
    assert!(run.conflicts(&write(3, other)), "two writes of one file");
    assert!(
        !run.conflicts(&read(&h, 3, f, 0, 10)),
        "two reads of one file"
    );
}

/// A run holds at most MAX_JOBS requests and MAX_BYTES of data.
#[test]
fn a_run_is_bounded() {
    use crate::ninep_server::run::{MAX_BYTES, MAX_JOBS};
    let (fs, f, _) = fs_with_file(1);
    let h = handle(&fs, f);
    let mut run = Run::default();
    for tag in 0..MAX_JOBS as u16 {
        assert!(!run.conflicts(&read(&h, tag, 1, 0, 1)));
        run.push(read(&h, tag, 1, 0, 1));
    }
    assert!(run.conflicts(&read(&h, 999, 1, 0, 1)), "full by count");
    let run = Run::default();
    assert!(
        run.conflicts(&read(&h, 1, 1, 0, MAX_BYTES + 1)),
        "full by bytes"
    );
}

/// Through the server, on two data threads: eight reads large enough for a parallel
/// run, a flush of the first, then eight more reads, a write of the file they read
/// through another fid, and a read after it. The reads before the write see the old
/// bytes, the read after it the new, and the Rflush comes after the reply of the read
/// it names.
#[test]
fn pipelined_data_requests_are_answered_as_if_one_by_one() {
    const CHUNK: usize = 60 * 1024;
    let fs = Arc::new(fresh_fs());
    let server = Server::new(
        fs,
        ServerConfig {
            max_fids: 100,
            trace: false,
            data_threads: 2,
            ..ServerConfig::default()
        },
    );
    let mut msgs = vec![
        Msg::Tversion {
            msize: 128 * 1024,
            version: ninep::VERSION_9P2000L.into(),
        },
        tattach(0, "glenda", Some(1000)),
        twalk(0, 1, &[]),
        Msg::Tlcreate {
            fid: 1,
            name: "f".into(),
            flags: lflags::RDWR,
            mode: 0o644,
            gid: 1000,
        },
    ];
    for i in 0..8u64 {
        msgs.push(Msg::Twrite {
            fid: 1,
            offset: i * CHUNK as u64,
            data: vec![b'o'; CHUNK],
        });
    }
    let first_read = msgs.len() as u16;
    for i in 0..8u64 {
        msgs.push(Msg::Tread {
            fid: 1,
            offset: i * CHUNK as u64,
            count: CHUNK as u32,
        });
    }
    let flush = msgs.len() as u16;
    msgs.push(Msg::Tflush { oldtag: first_read });
    // The overwrite goes through another fid of the file: runs keep apart requests on
    // one file, not only on one fid.
    msgs.push(twalk(0, 2, &["f"]));
    msgs.push(Msg::Tlopen {
        fid: 2,
        flags: lflags::RDWR,
    });
    for i in 0..8u64 {
        msgs.push(Msg::Tread {
            fid: 1,
            offset: i * CHUNK as u64,
            count: CHUNK as u32,
        });
    }
    let write = msgs.len() as u16;
    msgs.push(Msg::Twrite {
        fid: 2,
        offset: 0,
        data: vec![b'n'; CHUNK],
    });
    let read_after = msgs.len() as u16;
    msgs.push(Msg::Tread {
        fid: 1,
        offset: 0,
        count: CHUNK as u32,
    });
    let (replies, end) = serve_bytes(&server, &bytes_of(&tagged(msgs)));
    assert!(matches!(end, ConnectionEnd::Eof), "{end:?}");
    let second_reads = write - 8;
    let at = |tag: u16| {
        replies
            .iter()
            .position(|r| r.tag == tag)
            .unwrap_or_else(|| panic!("no reply to tag {tag}"))
    };
    for tag in (first_read..first_read + 8).chain(second_reads..write) {
        assert_eq!(
            replies[at(tag)].msg,
            Msg::Rread {
                data: vec![b'o'; CHUNK]
            }
        );
    }
    assert_eq!(
        replies[at(write)].msg,
        Msg::Rwrite {
            count: CHUNK as u32
        }
    );
    assert_eq!(
        replies[at(read_after)].msg,
        Msg::Rread {
            data: vec![b'n'; CHUNK]
        }
    );
    assert!(
        at(read_after) > at(write),
        "the read after the write is answered after it"
    );
    assert_eq!(replies[at(flush)].msg, Msg::Rflush);
    assert!(
        at(flush) > at(first_read),
        "Rflush after the reply it flushes"
    );
}

/// A Tversion after a run of reads is answered after all of them (it clunks every fid
/// and must find nothing in flight).
#[test]
fn a_tversion_is_answered_after_the_run_before_it() {
    const CHUNK: usize = 60 * 1024;
    let server = server();
    let version = |msize| Msg::Tversion {
        msize,
        version: ninep::VERSION_9P2000L.into(),
    };
    let mut msgs = vec![
        version(128 * 1024),
        tattach(0, "glenda", Some(1000)),
        twalk(0, 1, &[]),
        Msg::Tlcreate {
            fid: 1,
            name: "f".into(),
            flags: lflags::RDWR,
            mode: 0o644,
            gid: 1000,
        },
        Msg::Twrite {
            fid: 1,
            offset: 0,
            data: vec![b'x'; CHUNK],
        },
    ];
    let first_read = msgs.len() as u16;
    for _ in 0..8 {
        msgs.push(Msg::Tread {
            fid: 1,
            offset: 0,
            count: CHUNK as u32,
        });
    }
    msgs.push(version(8192));
    let (replies, _) = serve_bytes(&server, &bytes_of(&tagged(msgs)));
    let last = replies.len() - 1;
    assert!(
        matches!(replies[last].msg, Msg::Rversion { .. }),
        "{:?}",
        replies[last]
    );
    let reads: Vec<u16> = replies[..last]
        .iter()
        .filter(|r| matches!(r.msg, Msg::Rread { .. }))
        .map(|r| r.tag)
        .collect();
    assert_eq!(reads, (first_read..first_read + 8).collect::<Vec<_>>());
}

/// A metadata change held mid-way (a file created in directory `d`, the tree's
/// exclusive lock still held) while a client reads and then writes a file in another
/// directory through the server: both are answered before the change lets go. They go
/// through the fid's handle of the file's data, which no metadata change holds; when a
/// read took the tree lock (shared) the reply waited for the create and the deadline
/// passed.
#[cfg(unix)]
#[test]
fn data_is_answered_while_a_metadata_change_elsewhere_holds_the_tree() {
    let s = server();
    let mut c = Conn::open(&s, "9P2000.L");
    assert!(matches!(
        c.rpc(tattach(0, "", Some(0))),
        Msg::Rattach { .. }
    ));
    c.rpc(Msg::Tmkdir {
        dfid: 0,
        name: "d".into(),
        mode: 0o755,
        gid: 0,
    });
    c.rpc(Msg::Tmkdir {
        dfid: 0,
        name: "e".into(),
        mode: 0o755,
        gid: 0,
    });
    c.rpc(twalk(0, 1, &["e"]));
    let r = c.rpc(Msg::Tlcreate {
        fid: 1,
        name: "f".into(),
        flags: lflags::RDWR,
        mode: 0o644,
        gid: 0,
    });
    assert!(matches!(r, Msg::Rlcreate { .. }), "{r:?}");
    let r = c.rpc(Msg::Twrite {
        fid: 1,
        offset: 0,
        data: vec![b'r'; 4000],
    });
    assert_eq!(r, Msg::Rwrite { count: 4000 });
    c.stream
        .set_read_timeout(Some(STEP_DEADLINE))
        .expect("timeout");

    let mut tree = s.fs().lock();
    let who = tree.cred_for_uid(0, None);
    let root = tree.root();
    let d = tree.lookup(&who, root, "d").expect("d");
    tree.create(&who, d, "new", NewNode::new(NewKind::File, 0o644))
        .expect("create in d");
    // The create is done, its exclusive lock still held: the read must not need it.
    let tag = c.send(Msg::Tread {
        fid: 1,
        offset: 0,
        count: 4000,
    });
    let reply = try_recv(&mut c.stream);
    let write_tag = c.send(Msg::Twrite {
        fid: 1,
        offset: 4000,
        data: vec![b'w'; 100],
    });
    let write_reply = try_recv(&mut c.stream);
    drop(tree);
    let reply = reply.expect("the read was answered while the tree was locked");
    assert_eq!(reply.tag, tag);
    assert_eq!(
        reply.msg,
        Msg::Rread {
            data: vec![b'r'; 4000]
        }
    );
    let write_reply = write_reply.expect("the write was answered while the tree was locked");
    assert_eq!(write_reply.tag, write_tag);
    assert_eq!(write_reply.msg, Msg::Rwrite { count: 100 });
}

/// One reply from `stream`, or `None` if none came before its read timeout.
#[cfg(unix)]
fn try_recv(stream: &mut std::os::unix::net::UnixStream) -> Option<Fcall> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut buf = size.to_vec();
    buf.resize(u32::from_le_bytes(size) as usize, 0);
    stream.read_exact(&mut buf[4..]).ok()?;
    decode(&buf, Dialect::L).ok()
}
