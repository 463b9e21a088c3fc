//! A client we did not write: the Linux kernel's v9fs, in a QEMU guest, against
//! `ramfs --listen unix:SOCK --single`, once with `version=9p2000` and once with
//! `version=9p2000.L`.
//!
//! `tests/v9fs/run-guest.sh` boots Debian's kernel under QEMU (TCG) with a busybox
//! initramfs, mounts the socket through QEMU user networking, runs
//! `tests/v9fs/workload.sh` (mkdir, create, write and read back, ls -l, rename, rm,
//! truncate, chmod, symlinks, a static binary copied onto the mount and run from it,
//! locks, and `fsx.c`, a seeded random read/write/truncate run checked against a model
//! and a local copy; in 9P2000.L also `tests/v9fs/posix.sh`, the POSIX cases pjdfstest
//! found, by root and by two users through `su`) and unmounts. Each step prints one
//! OK/FAIL line. Then ramfs, which serves that single connection, must exit 0 within a
//! deadline. A third run mounts 9P2000.L with `cache=loose` and runs only posix.sh:
//! there the kernel itself asks to clear set-id bits before another user's write.
//!
//! The first run installs qemu-system-x86, busybox-static, cpio and gcc if missing and
//! keeps the kernel under `$RAMFS_V9FS_CACHE` (default /tmp/ramfs-v9fs-cache). When the
//! machine cannot run it (no qemu and no way to install it, no kernel package), the test
//! fails if `CI` is set and is skipped with a note otherwise. `RAMFS_FSX_SEED` and
//! `RAMFS_FSX_OPS` (default 300) repeat or lengthen the fsx run.
//!
//! The test also prints which 9P message types the kernel sent, counted from ramfs's
//! `--trace` log.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bound on one guest run (boot, workload, power-off; about 30 s under TCG here).
const GUEST_LIMIT: Duration = Duration::from_secs(400);
/// Bound on ramfs's exit once the guest is gone.
const EXIT_LIMIT: Duration = Duration::from_secs(30);
/// run-guest.sh's "this machine cannot run the test" status.
const CANNOT_RUN: i32 = 77;

/// One QEMU at a time: the machine has few cores, and the guests run under emulation.
static ONE_GUEST: Mutex<()> = Mutex::new(());

/// The message names ramfs's `--trace` log shows for requests (`<-N tag T Tname …`).
fn request_counts(log: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in log.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(tag_at) = words.iter().position(|w| *w == "tag") else {
            continue;
        };
        if !words
            .get(tag_at.wrapping_sub(1))
            .is_some_and(|w| w.starts_with("<-"))
        {
            continue;
        }
        if let Some(name) = words.get(tag_at + 2) {
            let name: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if name.starts_with('T') && name.len() > 1 {
                *counts.entry(name).or_insert(0) += 1;
            }
        }
    }
    counts
}

fn fsx_seed() -> u64 {
    match std::env::var("RAMFS_FSX_SEED") {
        Ok(s) => s.parse().expect("RAMFS_FSX_SEED is a number"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() ^ u64::from(d.subsec_nanos()))
            .unwrap_or(1),
    }
}

/// How the guest mounts and what it runs.
struct Guest<'a> {
    version: &'a str,
    /// Extra mount options (`-o`).
    options: Option<&'a str>,
    /// Only posix.sh's steps (`-p`).
    posix_only: bool,
}

fn run_dialect(version: &str) {
    run_guest(Guest {
        version,
        options: None,
        posix_only: false,
    });
}

fn run_guest(g: Guest<'_>) {
    let version = &match g.options {
        Some(o) => format!("{} -o {o}", g.version),
        None => g.version.to_owned(),
    };
    let _one = ONE_GUEST.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = common::ScratchDir::new("v9fs");
    let sock = scratch.path().join("9p.sock");
    let log_path = scratch.path().join("ramfs.log");
    let server = Command::new(common::ramfs_bin())
        .arg("--listen")
        .arg(format!("unix:{}", sock.display()))
        .args(["--single", "--trace", "--owner", "root"])
        // QEMU relays every guest user over its one connection, so the socket's peer
        // credentials are QEMU's, not the guest's: believe the guest's attach names.
        .arg("--trust-attach-names")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("starting ramfs");
    let mut server = common::Reaped(server);
    assert!(
        common::wait_for_path(&sock, EXIT_LIMIT),
        "ramfs did not create {}",
        sock.display()
    );

    let seed = fsx_seed();
    let ops = std::env::var("RAMFS_FSX_OPS").unwrap_or_else(|_| "300".into());
    if !g.posix_only {
        eprintln!("{version}: fsx seed {seed} ops {ops} (RAMFS_FSX_SEED={seed} repeats it)");
    }
    let script = common::crate_dir().join("tests/v9fs/run-guest.sh");
    let console_path = scratch.path().join("console.log");
    let console = std::fs::File::create(&console_path).expect("console file");
    let mut guest = Command::new("bash")
        .arg(&script)
        .args(["-v", g.version, "-s", &seed.to_string(), "-n", &ops])
        .args(g.options.map(|o| ["-o", o]).into_iter().flatten())
        .args(g.posix_only.then_some("-p"))
        .args(["-T", &(GUEST_LIMIT.as_secs() - 30).to_string()])
        .arg(format!("unix:{}", sock.display()))
        .stdin(Stdio::null())
        .stdout(console.try_clone().expect("console file"))
        .stderr(console)
        .spawn()
        .expect("starting bash");
    let status = common::wait_with_deadline(&mut guest, GUEST_LIMIT);
    if status.is_none() {
        let _ = guest.kill();
        let _ = guest.wait();
    }
    let console = std::fs::read_to_string(&console_path).unwrap_or_default();
    let Some(status) = status else {
        panic!("{version}: the guest run took more than {GUEST_LIMIT:?}\n{console}");
    };
    if status.code() == Some(CANNOT_RUN) {
        common::unavailable(&format!("{version}: {}", last_lines(&console, 5)));
        return;
    }

    // One line per step, then the fsx summary.
    for line in console.lines() {
        if let Some(step) = line.strip_prefix("RAMFS-STEP ") {
            eprintln!("{version}: {step}");
        } else if line.starts_with("fsx:")
            || line.starts_with("    ")
            || line.starts_with("RAMFS-STEPS")
        {
            eprintln!("{version}: {line}");
        }
    }

    // With --single, ramfs exits once the guest's connection is gone.
    let server_status = common::wait_with_deadline(&mut server.0, EXIT_LIMIT);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let counts = request_counts(&log);
    let listing: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    eprintln!(
        "{version}: requests the Linux client sent: {}",
        listing.join(", ")
    );

    let mut problems = Vec::new();
    if !status.success() {
        problems.push(format!(
            "guest run failed ({status}); console:\n{console}\n--- ramfs log (tail) ---\n{}",
            last_lines(&log, 40)
        ));
    }
    match server_status {
        None => problems.push(format!(
            "ramfs --single did not exit within {EXIT_LIMIT:?} after the guest was gone"
        )),
        Some(s) if !s.success() => {
            problems.push(format!("ramfs exited with {s}\n{}", last_lines(&log, 40)))
        }
        Some(_) => eprintln!("{version}: ramfs --single exited 0 after the guest was gone"),
    }
    if !counts.contains_key("Tattach") {
        problems.push("no Tattach in the trace log".into());
    }
    assert!(problems.is_empty(), "{version}: {}", problems.join("\n"));
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn linux_v9fs_9p2000() {
    run_dialect("9p2000");
}

#[test]
fn linux_v9fs_9p2000_l() {
    run_dialect("9p2000.L");
}

#[test]
fn linux_v9fs_9p2000_l_cache_loose_posix() {
    run_guest(Guest {
        version: "9p2000.L",
        options: Some("cache=loose"),
        posix_only: true,
    });
}

#[test]
fn trace_lines_are_counted() {
    let log = "\
2026-11-22T05:24:00.339953Z  INFO <-1 tag 65535 Tversion { msize: 8192, version: \"9P2000\" }
2026-11-22T05:24:00.340081Z  INFO ->1 tag 65535 Rversion { msize: 8192, version: \"9P2000\" }
2026-11-22T05:24:00.340081Z  INFO <-1 tag 3 Twrite fid 1 offset 0 count 5
2026-11-22T05:24:00.340081Z  INFO <-1 tag 4 Twrite fid 1 offset 5 count 5
2026-11-22T05:24:00.340771Z  INFO connection 1 from stdio: closed";
    let c = request_counts(log);
    assert_eq!(c.get("Tversion"), Some(&1));
    assert_eq!(c.get("Twrite"), Some(&2));
    assert_eq!(c.len(), 2);
}
