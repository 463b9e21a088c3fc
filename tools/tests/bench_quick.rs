//! `ninep-bench compare --quick` against a ramfs it starts, the raw baseline (and diod,
//! when installed): every figure, those of 8 connections at once among them, must come
//! out with a positive number on every server, the exit status must be 0, and the
//! results must parse. No timing is judged. And SIGTERM sent to the
//! bench alone in the middle of a `compare` ends the servers it started.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tools::bench::matrix::{self, DEFAULT_CONNECTIONS, DEFAULT_DEPTHS, DEFAULT_MSIZES};
use tools::bench::report::Report;
use tools::bench::servers;

/// Longest the quick run may take before the test kills it and fails.
const RUN_LIMIT: Duration = Duration::from_secs(180);
/// Longest building ramfs may take when it is not built yet.
const BUILD_LIMIT: Duration = Duration::from_secs(600);
/// Longest the servers may take to start, and the bench and its servers to end after
/// SIGTERM.
const SIGNAL_LIMIT: Duration = Duration::from_secs(30);

fn bench_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ninep-bench"))
}

/// Runs `cmd` to completion within `limit`, killing it if it overruns; returns its
/// exit status, stdout and stderr.
fn run_bounded(cmd: &mut Command, limit: Duration) -> (Option<i32>, String, String) {
    let out_dir = tempdir("out");
    let stdout_path = out_dir.join("stdout");
    let stderr_path = out_dir.join("stderr");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() >= deadline {
            // The bench's servers would outlive a killed bench: end them first, by pid.
            for pid in children_of(child.id()) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
            let _ = child.kill();
            let _ = child.wait();
            // And the scratch directory it would have removed (see `Scratch::new`).
            let _ = std::fs::remove_dir_all(format!("/dev/shm/ninep-bench-{}", child.id()));
            panic!(
                "{cmd:?} ran longer than {limit:?}; stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&out_dir);
    (status, stdout, stderr)
}

/// The pids whose parent is `pid`, from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces.
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| {
                    let after = &s[s.rfind(')')? + 1..];
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

fn tempdir(what: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ninep-bench-test-{}-{what}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The ramfs binary next to ninep-bench, built with the same profile if it is not there
/// yet (as under `cargo test -p tools`, which builds only this package's binaries).
fn ramfs_exe() -> PathBuf {
    let dir = bench_exe().parent().unwrap().to_path_buf();
    let ramfs = dir.join("ramfs");
    if ramfs.is_file() {
        return ramfs;
    }
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "ramfs", "--bin", "ramfs"]);
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    // The same target directory as this test's, so the binary lands next to the bench.
    if let Some(target) = dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let (status, _, stderr) = run_bounded(&mut cmd, BUILD_LIMIT);
    assert_eq!(status, Some(0), "building ramfs failed:\n{stderr}");
    assert!(
        ramfs.is_file(),
        "cargo built ramfs but not at {}",
        ramfs.display()
    );
    ramfs
}

/// The figure's row of the text table: the cells after the figure name, split at the
/// two-space column gaps.
fn row_cells<'a>(table: &'a str, figure: &str) -> Vec<&'a str> {
    let line = table
        .lines()
        .find(|l| l.starts_with(figure) && l[figure.len()..].starts_with("  "))
        .unwrap_or_else(|| panic!("no row {figure:?} in:\n{table}"));
    line[figure.len()..]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn quick_compare_reports_every_figure_on_every_server() {
    let ramfs = ramfs_exe();
    let diod = servers::on_path("diod");
    let out = tempdir("results");

    let mut cmd = Command::new(bench_exe());
    cmd.arg("compare")
        .arg("--quick")
        .arg("--ramfs")
        .arg(&ramfs)
        .arg("--out")
        .arg(&out)
        .args(["--without", "p9", "--without", "unpfs"]);
    if diod.is_none() {
        cmd.args(["--without", "diod"]);
    }
    let (status, stdout, stderr) = run_bounded(&mut cmd, RUN_LIMIT);
    assert_eq!(status, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");

    let mut expect_servers = vec!["ramfs", "raw"];
    if diod.is_some() {
        expect_servers.push("diod");
    }
    expect_servers.push("ramfs-9p2000");

    // The printed table: a header naming each server and each ratio, then a row per
    // figure with a positive value for each server and a positive ratio for each peer.
    let header = stdout.lines().next().unwrap_or_default();
    for s in &expect_servers {
        assert!(header.contains(s), "header lacks {s}: {header}");
    }
    for peer in &expect_servers[1..] {
        assert!(header.contains(&format!("ramfs/{peer}")), "{header}");
    }
    let cells = matrix::cells(&DEFAULT_MSIZES, &DEFAULT_DEPTHS, &DEFAULT_CONNECTIONS);
    assert!(cells.iter().any(|c| c.connections == 8));
    for cell in &cells {
        let figure = cell.figure();
        let row = row_cells(&stdout, &figure);
        // unit, then value (and ratio after the first server) per server
        let numbers = &row[1..];
        assert_eq!(
            numbers.len(),
            2 * expect_servers.len() - 1,
            "{figure}: {row:?}"
        );
        for n in numbers {
            let v: f64 = n
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap_or_else(|_| panic!("{figure}: {n:?} is not a number in {row:?}"));
            assert!(v > 0.0, "{figure}: {n} in {row:?}");
        }
    }

    // The results file parses, and holds the same figures with positive values.
    let json = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    let report: Report = serde_json::from_str(&json).expect("results.json parses");
    assert!(report.all_ok(), "{json}");
    let names: Vec<&str> = report.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, expect_servers);
    let baselines: Vec<&str> = report
        .servers
        .iter()
        .filter(|s| s.baseline)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(baselines, ["raw"]);
    assert!(stdout.contains("ramfs/raw is the fraction"), "{stdout}");
    assert_eq!(report.figures.len(), cells.len());
    for (row, cell) in report.figures.iter().zip(&cells) {
        assert_eq!(row.figure, cell.figure());
        assert_eq!(row.connections, cell.connections);
        for r in &row.results {
            assert!(r.value.is_some_and(|v| v > 0.0), "{}: {r:?}", row.figure);
            assert!(r.ops > 0, "{}: {r:?}", row.figure);
        }
        assert!(row.ratios.iter().all(|r| r.ratio.is_some_and(|v| v > 0.0)));
    }
    for file in ["results.csv", "results.md", "chart.svg"] {
        let len = std::fs::metadata(out.join(file))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 0, "{file} missing or empty");
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + cells.len() * expect_servers.len());
    let _ = std::fs::remove_dir_all(&out);
}

/// Whether the process `pid` is running: it exists and is not a zombie.
fn alive(pid: u32) -> bool {
    // /proc/PID/stat: "pid (comm) state ..."; comm may hold spaces.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat[stat.rfind(')')? + 1..].split_whitespace().next()?;
            Some(!matches!(state, "Z" | "X"))
        })
        .unwrap_or(false)
}

/// A bench under test and the servers it said it started: whatever is still running when
/// this is dropped (the test failed) is killed, and the bench's scratch directory removed.
struct Bench {
    child: Child,
    servers: Vec<u32>,
}

impl Bench {
    /// The scratch directory the bench makes (see `Scratch::new`).
    fn scratch(&self) -> PathBuf {
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("ninep-bench-{}", self.child.id()))
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        for &pid in self.servers.iter().filter(|&&pid| alive(pid)) {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(self.scratch());
    }
}

/// Waits up to `limit` for `done`.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_to_the_bench_alone_ends_the_servers_it_started() {
    let ramfs = ramfs_exe();
    let out = tempdir("signal");
    let mut cmd = Command::new(bench_exe());
    // A minute a cell: the servers are up and being measured when the signal comes.
    cmd.args([
        "compare",
        "--rounds",
        "1",
        "--seconds",
        "60",
        "--warmup",
        "0",
    ])
    .arg("--ramfs")
    .arg(&ramfs)
    .arg("--out")
    .arg(&out)
    .args(["--without", "p9", "--without", "unpfs"]);
    if servers::on_path("diod").is_none() {
        cmd.args(["--without", "diod"]);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ninep-bench");
    let mut bench = Bench {
        child,
        servers: Vec::new(),
    };
    let stderr = bench.child.stderr.take().expect("piped stderr");
    let (line_tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });

    // "NAME is listening (pid N)" for each server, then "measuring ...".
    let deadline = Instant::now() + SIGNAL_LIMIT;
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("the bench never started measuring; stderr:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
        if let Some(pid) = line
            .strip_suffix(')')
            .and_then(|l| l.rsplit_once(" is listening (pid "))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        {
            bench.servers.push(pid);
        }
        if line.starts_with("measuring ") {
            break;
        }
    }
    assert!(!bench.servers.is_empty(), "no server pids in:\n{seen}");
    assert!(
        bench.servers.iter().all(|&pid| alive(pid)),
        "a server is not running before the signal:\n{seen}"
    );

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(bench.child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
    let mut ended = None;
    assert!(
        eventually(SIGNAL_LIMIT, || {
            ended = bench.child.try_wait().expect("wait for the bench");
            ended.is_some()
        }),
        "the bench did not end within {SIGNAL_LIMIT:?} of SIGTERM"
    );
    // It still ends by the signal, as it did before it handled it.
    assert_eq!(ended.and_then(|s| s.signal()), Some(15), "{ended:?}");
    let servers = bench.servers.clone();
    assert!(
        eventually(SIGNAL_LIMIT, || servers.iter().all(|&pid| !alive(pid))),
        "servers still running {SIGNAL_LIMIT:?} after SIGTERM: {:?}",
        servers
            .iter()
            .filter(|&&pid| alive(pid))
            .collect::<Vec<_>>()
    );
    let scratch = bench.scratch();
    assert!(
        !scratch.exists(),
        "the bench left its scratch directory {}",
        scratch.display()
    );
    let _ = std::fs::remove_dir_all(&out);
}
