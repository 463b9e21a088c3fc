//! The raw baseline answers every request the bench's workloads send, in both dialects
//! and with 8 connections at once, with replies the bench's client accepts; and
//! `ninep-bench raw-server` serves it as a process the bench can start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ninep::{Dialect, MAX_MSIZE};
use tools::bench::addr::Addr;
use tools::bench::matrix::{self, DEFAULT_CONNECTIONS, DEFAULT_DEPTHS, DEFAULT_MSIZES};
use tools::bench::pipeline::Limit;
use tools::bench::raw::Listener;
use tools::bench::runner;
use tools::bench::session::{Settings, Target};

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
