//! Who may attach, through the real binary: a unix-socket client that is not root may
//! attach only as its own uid (read from the socket's peer credentials), unless
//! `--trust-attach-names`; a TCP address other machines can reach is refused without
//! `--allow-remote`, with exit status 3.
//!
//! The unix-socket test needs a client that is not root. Run as root (as CI is), it
//! starts its Python client as uid 65534 (nobody); run as anyone else, the client is
//! that user.

#![cfg(unix)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);
const EPERM: u32 = 1;

/// The 9P2000.L client (`tests/attach/attach_client.py`).
const CLIENT_SCRIPT: &str = include_str!("attach/attach_client.py");

/// The exit status of a refused non-loopback listen, as `ramfs --help` documents.
const EXIT_REMOTE_REFUSED: i32 = 3;

#[test]
fn a_remote_tcp_address_without_allow_remote_exits_3() {
    for addr in ["tcp:0.0.0.0:0", "tcp:[::]:0"] {
        let scratch = common::ScratchDir::new("remote");
        let log = scratch.path().join("ramfs.log");
        let child = Command::new(common::ramfs_bin())
            .args(["--listen", addr])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("run ramfs");
        let mut child = common::Reaped(child);
        let status = common::wait_with_deadline(&mut child.0, LIMIT);
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(EXIT_REMOTE_REFUSED),
            "{addr}: {stderr}"
        );
        assert!(
            stderr.contains("--allow-remote") && stderr.contains("no authentication"),
            "{addr}: {stderr}"
        );
        assert!(!stderr.contains("listening on"), "{addr}: {stderr}");
    }
}

/// The uid of this process, without unsafe code: the owner of a file it creates.
fn my_uid(dir: &Path) -> u32 {
    let probe = dir.join("probe");
    std::fs::write(&probe, b"").expect("probe file");
    std::fs::metadata(&probe).expect("probe").uid()
}

/// Serves a unix socket (with `extra` arguments), attaches from a client that is not
/// root as uid 0 and as its own uid, and returns the client's lines and its uid.
fn attach_as_root_and_self(extra: &[&str]) -> Option<(Vec<String>, u32)> {
    let scratch = common::ScratchDir::new("attach");
    let sock = scratch.path().join("9p.sock");
    let as_root = my_uid(scratch.path()) == 0;
    let client_uid = if as_root {
        65534
    } else {
        my_uid(scratch.path())
    };
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod scratch");
    let log = scratch.path().join("ramfs.log");
    let server = Command::new(common::ramfs_bin())
        .args(["--listen", &format!("unix:{}", sock.display())])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start ramfs");
    let _server = common::Reaped(server);
    assert!(common::wait_for_path(&sock, LIMIT), "ramfs made no socket");
    // The client may be another user: let it connect.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).expect("chmod");

    // The script goes in as -c and the client starts in /, so it needs no access to
    // the source tree (which may be under a directory only root can enter).
    let mut client = Command::new("python3");
    client
        .args(["-c", CLIENT_SCRIPT])
        .arg(&sock)
        .args(["0", "self"])
        .current_dir("/");
    if as_root {
        client.uid(65534).gid(65534);
    }
    let out = match client.output() {
        Ok(out) => out,
        Err(e) => {
            common::unavailable(&format!("python3 cannot run: {e}"));
            return None;
        }
    };
    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "client: {}\n{}\nramfs:\n{server_log}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    Some((lines, client_uid))
}

#[test]
fn a_unix_client_that_is_not_root_attaches_only_as_itself() {
    let Some((lines, uid)) = attach_as_root_and_self(&[]) else {
        return;
    };
    assert_eq!(
        lines,
        [format!("0 refused {EPERM}"), format!("{uid} attached")]
    );
}

#[test]
fn trust_attach_names_believes_a_unix_client() {
    let Some((lines, uid)) = attach_as_root_and_self(&["--trust-attach-names"]) else {
        return;
    };
    assert_eq!(lines, ["0 attached".to_owned(), format!("{uid} attached")]);
}
