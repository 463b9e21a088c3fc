//! A client we did not write: py9p (the Python 9P module of PyPI's `p9fs`) against
//! `ramfs --listen`, in 9P2000 and 9P2000.L, over a unix socket and over TCP.
//!
//! Each `tests/py9p/test_*.py` gets a fresh server and must exit 0. Without python3 or
//! py9p the test fails when the environment variable `CI` is set and is skipped with a
//! note otherwise (`pip install p9fs` provides py9p).

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Bound on one Python script (it needs about a second).
const SCRIPT_LIMIT: Duration = Duration::from_secs(120);
/// Bound on the server's start and on its exit after SIGTERM.
const SERVER_LIMIT: Duration = Duration::from_secs(20);

/// Where the server listens.
enum Transport {
    Unix,
    Tcp,
}

fn py9p_available() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import py9p.py9p"])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "python3 cannot import py9p (pip install p9fs): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn scripts() -> Vec<PathBuf> {
    let dir = common::crate_dir().join("tests/py9p");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("test_") && name.ends_with(".py")
        })
        .collect();
    v.sort();
    v
}

/// A TCP port that was free a moment ago (the server binds it next).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

/// Starts a server, runs one script against it, stops the server; returns the
/// script's output or why it failed.
fn run_script(script: &Path, transport: &Transport) -> Result<String, String> {
    let scratch = common::ScratchDir::new("py9p");
    let sock = scratch.path().join("9p.sock");
    let address = match transport {
        Transport::Unix => format!("unix:{}", sock.display()),
        Transport::Tcp => format!("tcp:127.0.0.1:{}", free_port()),
    };
    let log = scratch.path().join("ramfs.log");
    let mut server = Command::new(common::ramfs_bin());
    server.args(["--listen", &address, "--owner", "test"]);
    if let Transport::Unix = transport {
        // The scripts attach as several users (root, test, glenda): let them, whoever
        // runs the test (tests/attach.rs tests the rule itself).
        server.arg("--trust-attach-names");
    }
    let server = server
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .map_err(|e| format!("starting ramfs: {e}"))?;
    let mut server = common::Reaped(server);
    let server_log = || std::fs::read_to_string(&log).unwrap_or_default();
    if let Transport::Unix = transport {
        if !common::wait_for_path(&sock, SERVER_LIMIT) {
            return Err(format!(
                "ramfs did not create {}\n{}",
                sock.display(),
                server_log()
            ));
        }
    } else if !wait_for_tcp(&address, SERVER_LIMIT) {
        return Err(format!(
            "ramfs did not listen on {address}\n{}",
            server_log()
        ));
    }

    let out_path = scratch.path().join("script.out");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(&address)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("output file"))
        .stderr(Stdio::from(
            std::fs::File::options()
                .append(true)
                .open(&out_path)
                .expect("output file"),
        ))
        .spawn()
        .map_err(|e| format!("starting python3: {e}"))?;
    let status = common::wait_with_deadline(&mut child, SCRIPT_LIMIT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();

    common::terminate(&server.0);
    let server_status = common::wait_with_deadline(&mut server.0, SERVER_LIMIT);
    match (status, server_status) {
        (None, _) => Err(format!("timed out after {SCRIPT_LIMIT:?}\n{output}")),
        (Some(s), _) if !s.success() => Err(format!(
            "exited with {s}\n{output}\n--- ramfs log ---\n{}",
            server_log()
        )),
        (_, None) => Err(format!("ramfs did not exit after SIGTERM\n{output}")),
        (_, Some(s)) if !s.success() => {
            Err(format!("ramfs exited with {s} after SIGTERM\n{output}"))
        }
        _ => Ok(output),
    }
}

fn wait_for_tcp(address: &str, limit: Duration) -> bool {
    let hostport = address.trim_start_matches("tcp:");
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(hostport).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn run_all(transport: Transport, label: &str) {
    if let Err(why) = py9p_available() {
        common::unavailable(&why);
        return;
    }
    let scripts = scripts();
    assert!(!scripts.is_empty(), "no tests/py9p/test_*.py");
    let mut failures = Vec::new();
    for script in &scripts {
        let name = script.file_name().unwrap().to_string_lossy().into_owned();
        match run_script(script, &transport) {
            Ok(out) => eprintln!("PASS {name} over {label}\n{out}"),
            Err(why) => {
                eprintln!("FAIL {name} over {label}: {why}");
                failures.push(name);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "py9p scripts failed over {label}: {failures:?}"
    );
}

#[test]
fn py9p_over_unix_socket() {
    run_all(Transport::Unix, "a unix socket");
}

#[test]
fn py9p_over_tcp() {
    run_all(Transport::Tcp, "TCP");
}
