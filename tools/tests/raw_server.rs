//! The raw baseline answers every request the bench's workloads send, in both dialects
//! and with 8 connections at once, with replies the bench's client accepts; the 8
//! connections of a cell each work on files of their own; and `ninep-bench raw-server`
//! serves it as a process the bench can start.

use std::collections::HashSet;
use std::io::{self, Read};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ninep::{mtype, Dialect, Msg, MAX_MSIZE};
use tools::bench::addr::Addr;
use tools::bench::matrix::{self, DEFAULT_CONNECTIONS, DEFAULT_DEPTHS, DEFAULT_MSIZES};
use tools::bench::pipeline::Limit;
use tools::bench::raw::{serve_conn, Listener};
use tools::bench::runner;
use tools::bench::session::{self, Settings, Target};
use tools::bench::workload::Workload;

/// Longest a bench run in these tests may take.
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn tempdir(what: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ninep-bench-raw-{}-{what}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn target(name: &str, addr: &Addr, dialect: Dialect) -> Target {
    Target {
        name: name.into(),
        addr: addr.clone(),
        dialect,
        aname: String::new(),
        uname: "bench".into(),
        n_uname: 1000,
        baseline: true,
    }
}

#[test]
fn every_workload_gets_answers_the_client_accepts_in_both_dialects_and_on_8_connections() {
    let dir = tempdir("lib");
    let addr = Addr::Unix(dir.join("raw.sock"));
    let listener = Listener::bind(&addr).unwrap();
    // The thread serves until the test process ends.
    thread::spawn(move || listener.serve(MAX_MSIZE));

    let targets = [
        target("raw", &addr, Dialect::L),
        target("raw-9p2000", &addr, Dialect::P2000),
    ];
    const OPS: u64 = 64;
    let settings = Settings {
        limit: Limit::Ops(OPS),
        file_len: 4 << 20,
        stall: Duration::from_secs(30),
        connections: 8,
    };
    let cells = matrix::cells(&DEFAULT_MSIZES, &DEFAULT_DEPTHS, &DEFAULT_CONNECTIONS);
    assert!(cells.iter().any(|c| c.connections == 8));
    let report = runner::run(&targets, &cells, &settings, 1, &mut |_| {});
    assert!(
        report.servers.iter().all(|s| s.error.is_none()),
        "{report:#?}"
    );
    for (row, cell) in report.figures.iter().zip(&cells) {
        assert_eq!(row.connections, cell.connections);
        for r in &row.results {
            assert_eq!(r.error, None, "{} on {}", row.figure, r.server);
            // Exactly the operations asked for, split among the connections of an x8.
            assert_eq!(r.ops, OPS, "{} on {}", row.figure, r.server);
            assert!(r.value.is_some_and(|v| v > 0.0), "{}: {r:?}", row.figure);
            if cell.workload.is_stream() {
                assert!(r.bytes > 0, "{}: {r:?}", row.figure);
                assert_eq!(r.msize, Some(cell.msize), "{}", row.figure);
            }
        }
    }
    assert!(report.all_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_raw_server_serves_over_tcp_too() {
    let listener = Listener::bind(&Addr::Tcp("127.0.0.1:0".into())).unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(
        matches!(&addr, Addr::Tcp(a) if !a.ends_with(":0")),
        "{addr}"
    );
    thread::spawn(move || listener.serve(MAX_MSIZE));
    let settings = Settings {
        limit: Limit::Ops(32),
        file_len: 1 << 20,
        stall: Duration::from_secs(30),
        connections: 2,
    };
    let cells = matrix::cells(&[64 << 10], &[4], &[1, 2]);
    let report = runner::run(
        &[target("raw", &addr, Dialect::L)],
        &cells,
        &settings,
        1,
        &mut |_| {},
    );
    assert!(report.all_ok(), "{report:#?}");
}

/// What a server read from one connection, and when: each read's moment and the
/// length of `bytes` after it.
#[derive(Default)]
struct Tapped {
    bytes: Vec<u8>,
    reads: Vec<(Instant, usize)>,
}

impl Tapped {
    /// When the first request of type `mtype` had been read whole.
    fn first_read_of(&self, mtype: u8) -> Option<Instant> {
        let mut at = 0;
        while let Some(size) = ninep::peek_size(&self.bytes[at..]) {
            let end = at + size as usize;
            if self.bytes[at + 4] == mtype {
                return self.reads.iter().find(|r| r.1 >= end).map(|r| r.0);
            }
            at = end;
        }
        None
    }

    fn last_read(&self) -> Option<Instant> {
        self.reads.last().map(|r| r.0)
    }
}

/// A request of `workload` that only its measurement sends, not its preparation.
fn measured_request(workload: Workload) -> u8 {
    match workload {
        Workload::WalkOpenClunk => mtype::TLOPEN,
        Workload::Stat => mtype::TGETATTR,
        Workload::CreateWriteRemove => mtype::TUNLINKAT,
        Workload::Read => mtype::TREAD,
        Workload::Write => mtype::TWRITE,
    }
}

/// A reader that keeps a copy of every byte it reads.
struct Tap<R> {
    inner: R,
    log: Arc<Mutex<Tapped>>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            let mut log = self.log.lock().unwrap();
            log.bytes.extend_from_slice(&buf[..n]);
            let len = log.bytes.len();
            log.reads.push((Instant::now(), len));
        }
        Ok(n)
    }
}

/// The file names a connection's requests named: walked to, created, unlinked.
fn names_used(mut bytes: &[u8], dir: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    while let Some(size) = ninep::peek_size(bytes) {
        let (msg, rest) = bytes.split_at(size as usize);
        bytes = rest;
        match ninep::decode(msg, Dialect::L).unwrap().msg {
            Msg::Twalk { wnames, .. } => names.extend(wnames),
            Msg::Tlcreate { name, .. } | Msg::Tunlinkat { name, .. } => {
                names.insert(name);
            }
            _ => {}
        }
    }
    names.remove(dir);
    names
}

#[test]
fn the_8_connections_of_a_cell_run_at_once_each_on_files_of_its_own() {
    let dir = tempdir("own");
    let path = dir.join("raw.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let logs: Arc<Mutex<Vec<Arc<Mutex<Tapped>>>>> = Arc::default();
    let accepted = logs.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let log = Arc::new(Mutex::new(Tapped::default()));
            accepted.lock().unwrap().push(log.clone());
            thread::spawn(move || {
                let tap = Tap {
                    inner: &stream,
                    log,
                };
                serve_conn(tap, &stream, MAX_MSIZE)
            });
        }
    });
    let t = target("raw", &Addr::Unix(path), Dialect::L);
    let settings = Settings {
        // Long enough that, run one after another, the connections could not overlap.
        limit: Limit::Time {
            warmup: Duration::ZERO,
            measure: Duration::from_millis(200),
        },
        file_len: 1 << 20,
        stall: Duration::from_secs(30),
        connections: 8,
    };
    let fixture = session::setup(&t, &settings).unwrap();
    assert_eq!(fixture.connections, 8);
    for cell in matrix::cells(&[64 << 10], &[16], &[8]) {
        let before = logs.lock().unwrap().len();
        session::run_cell(&t, &fixture, &cell, &settings).unwrap();
        // Every request was read before its reply went out, so the logs are whole.
        let logs = logs.lock().unwrap();
        assert_eq!(logs.len() - before, 8, "{}", cell.figure());
        let logs: Vec<_> = logs[before..].iter().map(|l| l.lock().unwrap()).collect();
        // At once: every connection was still sending after the last one began to
        // measure.
        let measured = measured_request(cell.workload);
        let began: Vec<Instant> = logs
            .iter()
            .map(|l| l.first_read_of(measured).expect("a measured request"))
            .collect();
        let last_to_begin = began.iter().max().unwrap();
        let first_to_end = logs.iter().filter_map(|l| l.last_read()).min().unwrap();
        assert!(
            *last_to_begin < first_to_end,
            "{}: one after another",
            cell.figure()
        );
        let used: Vec<HashSet<String>> = logs
            .iter()
            .map(|l| names_used(&l.bytes, &fixture.dir))
            .collect();
        for (i, a) in used.iter().enumerate() {
            assert!(
                !a.is_empty(),
                "{}: connection {i} named no file",
                cell.figure()
            );
            for b in &used[i + 1..] {
                assert!(a.is_disjoint(b), "{}: {a:?} and {b:?}", cell.figure());
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ninep-bench"))
}

/// A `raw-server` process, killed when dropped.
struct RawServer(Child);

impl Drop for RawServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_raw_server(socket: &Path) -> RawServer {
    let child = bench()
        .arg("raw-server")
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ninep-bench raw-server");
    let server = RawServer(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(Instant::now() < deadline, "raw-server never listened");
        thread::sleep(Duration::from_millis(20));
    }
    server
}

/// Runs `cmd` to its end within [`RUN_LIMIT`]; its exit code and stdout.
fn run_bounded(cmd: &mut Command) -> (Option<i32>, String, String) {
    let dir = tempdir("out");
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} ran longer than {RUN_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (status, out, err)
}

#[test]
fn the_raw_server_process_is_measured_like_any_server() {
    let dir = tempdir("bin");
    let socket = dir.join("raw.sock");
    let _server = start_raw_server(&socket);
    let out = dir.join("results");
    let (status, stdout, stderr) = run_bounded(
        bench()
            .arg("run")
            .args(["--ops", "40", "--file-mib", "4", "--msizes", "64K"])
            .args(["--connections", "1,8"])
            .arg("--server")
            .arg(format!("ref=unix:{}", socket.display()))
            .arg("--server")
            .arg(format!("raw=unix:{},baseline", socket.display()))
            .arg("--out")
            .arg(&out),
    );
    assert_eq!(status, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let header = stdout.lines().next().unwrap_or_default();
    assert!(header.contains("ref/raw"), "{stdout}");
    for figure in [
        "stat q16 x8",
        "read 64K q16 x8",
        "create+write+remove q16 x8",
    ] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(figure) && l[figure.len()..].starts_with("  "))
            .unwrap_or_else(|| panic!("no row {figure:?} in:\n{stdout}"));
        let numbers: Vec<f64> = row[figure.len()..]
            .split_whitespace()
            .skip(1) // the unit
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(numbers.len(), 3, "{row}");
        assert!(numbers.iter().all(|&v| v > 0.0), "{row}");
    }
    assert!(stdout.contains("raw: the raw baseline"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn raw_server_exits_1_when_it_cannot_listen_and_2_on_a_usage_error() {
    let dir = tempdir("exit");
    let file = dir.join("not-a-socket");
    std::fs::write(&file, b"x").unwrap();
    let (status, _, stderr) = run_bounded(
        bench()
            .arg("raw-server")
            .arg("--listen")
            .arg(format!("unix:{}", file.display())),
    );
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("not a socket"), "{stderr}");
    let (status, _, _) = run_bounded(bench().args(["raw-server", "--listen", "nowhere"]));
    assert_eq!(status, Some(2));
    let (status, _, _) = run_bounded(bench().args([
        "raw-server",
        "--listen",
        "unix:/tmp/x.sock",
        "--max-msize",
        "10",
    ]));
    assert_eq!(status, Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
