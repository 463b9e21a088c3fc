//! The pipelined client against a small fake server that answers each batch of requests
//! in reverse order: replies must be matched to their requests by tag, every operation
//! must be counted once, and the data counts must add up.

use std::io::{BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ninep::{Attr, Dialect, Fcall, Msg, Qid};
use tools::bench::addr::Addr;
use tools::bench::client::Conn;
use tools::bench::pipeline::{self, Limit};
use tools::bench::workload::{fids, SeqRead, SeqWrite, Stat, WalkOpenClunk};

const MSIZE: u32 = 8192 + 24;

/// Reads one message, or `None` at the end of the stream.
fn read_msg(r: &mut BufReader<UnixStream>) -> Option<Fcall> {
    let mut size = [0u8; 4];
    r.read_exact(&mut size).ok()?;
    let len = u32::from_le_bytes(size) as usize;
    let mut buf = vec![0u8; len];
    buf[..4].copy_from_slice(&size);
    r.read_exact(&mut buf[4..]).ok()?;
    Some(ninep::decode(&buf, Dialect::L).expect("the client sent a bad message"))
}

fn answer(msg: Msg) -> Msg {
    match msg {
        Msg::Tversion { msize, version } => Msg::Rversion {
            msize: msize.min(MSIZE),
            version,
        },
        Msg::Tattach { .. } => Msg::Rattach {
            qid: Qid::default(),
        },
        Msg::Twalk { wnames, .. } => Msg::Rwalk {
            wqids: vec![Qid::default(); wnames.len()],
        },
        Msg::Tlopen { .. } => Msg::Rlopen {
            qid: Qid::default(),
            iounit: 0,
        },
        Msg::Tgetattr { .. } => Msg::Rgetattr {
            attr: Attr::default(),
        },
        Msg::Tread { count, .. } => Msg::Rread {
            data: vec![0x5a; count as usize],
        },
        Msg::Twrite { data, .. } => Msg::Rwrite {
            count: data.len() as u32,
        },
        Msg::Tclunk { .. } => Msg::Rclunk,
        other => panic!("the fake server does not do {}", other.name()),
    }
}

/// Serves one connection: reads whatever requests have arrived, then answers them
/// last first. Counts replies sent out of request order in `reordered`.
fn serve(stream: UnixStream, reordered: Arc<AtomicUsize>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let mut pending: Vec<Fcall> = Vec::new();
    loop {
        let Some(fc) = read_msg(&mut reader) else {
            return;
        };
        pending.push(fc);
        if !reader.buffer().is_empty() {
            continue; // more of this batch is already here
        }
        if pending.len() > 1 {
            reordered.fetch_add(1, Ordering::Relaxed);
        }
        let mut out = Vec::new();
        for fc in pending.drain(..).rev() {
            let reply = Fcall {
                tag: fc.tag,
                msg: answer(fc.msg),
            };
            ninep::encode(&reply, &mut out).unwrap();
        }
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}

fn fake_server() -> (Addr, Arc<AtomicUsize>) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "ninep-bench-fake-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let reordered = Arc::new(AtomicUsize::new(0));
    let counter = reordered.clone();
    thread::spawn(move || {
        // One connection per test; the thread ends when the client hangs up.
        if let Ok((stream, _)) = listener.accept() {
            serve(stream, counter);
        }
    });
    (Addr::Unix(PathBuf::from(&path)), reordered)
}

fn session() -> (Conn, Arc<AtomicUsize>) {
    let (addr, reordered) = fake_server();
    let mut conn = Conn::connect(&addr, Duration::from_secs(10)).unwrap();
    if let Addr::Unix(p) = &addr {
        let _ = std::fs::remove_file(p);
    }
    assert_eq!(conn.version(1 << 20, Dialect::L).unwrap(), MSIZE);
    conn.attach(fids::ROOT, "bench", 0, "").unwrap();
    (conn, reordered)
}

#[test]
fn reads_in_flight_are_matched_by_tag_and_counted_once() {
    let (mut conn, reordered) = session();
    let chunk = MSIZE - ninep::IOHDRSZ;
    let mut op = SeqRead::new(fids::STREAM, chunk, 64 * u64::from(chunk), 16);
    let m = pipeline::run(&mut conn, &mut op, 16, Limit::Ops(500)).unwrap();
    assert_eq!(m.ops, 500);
    assert_eq!(m.bytes, 500 * u64::from(chunk));
    assert!(
        reordered.load(Ordering::Relaxed) > 0,
        "the fake server never answered out of order"
    );
}

#[test]
fn writes_in_flight_are_matched_by_tag_and_counted_once() {
    let (mut conn, _) = session();
    let chunk = 3000;
    // A pass is 10 chunks and a short one of 1000 bytes: 11 writes, 31 000 bytes.
    let mut op = SeqWrite::new(fids::STREAM, chunk, 31_000, 16);
    let m = pipeline::run(&mut conn, &mut op, 16, Limit::Ops(33)).unwrap();
    assert_eq!(m.ops, 33);
    assert_eq!(m.bytes, 3 * 31_000);
}

#[test]
fn multi_step_operations_complete_in_every_slot() {
    let (mut conn, _) = session();
    let mut op = WalkOpenClunk::new(Dialect::L, "target", 7);
    let m = pipeline::run(&mut conn, &mut op, 7, Limit::Ops(100)).unwrap();
    assert_eq!((m.ops, m.bytes), (100, 0));
    let mut op = Stat::new(Dialect::L);
    let m = pipeline::run(&mut conn, &mut op, 3, Limit::Ops(10)).unwrap();
    assert_eq!(m.ops, 10);
    // The connection is quiet afterwards: a plain request gets its own answer.
    let reply = conn.rpc(Msg::Tclunk { fid: 99 }).unwrap();
    assert!(matches!(reply.into_msg("Tclunk").unwrap(), Msg::Rclunk));
}

#[test]
fn a_timed_run_measures_a_positive_window() {
    let (mut conn, _) = session();
    let mut op = Stat::new(Dialect::L);
    let limit = Limit::Time {
        warmup: Duration::from_millis(5),
        measure: Duration::from_millis(30),
    };
    let m = pipeline::run(&mut conn, &mut op, 4, limit).unwrap();
    assert!(m.ops > 0);
    assert!(m.elapsed >= Duration::from_millis(30));
}
