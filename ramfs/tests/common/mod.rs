//! Helpers shared by ramfs's integration tests: the server binary, bounded waits for it
//! to exit, and what to do when the machine lacks a foreign client.
#![allow(dead_code)] // Each test crate uses a different subset.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// The ramfs binary Cargo built for these tests.
pub fn ramfs_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ramfs")
}

/// The directory of the ramfs crate (where `tests/` lives).
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Waits up to `limit` for `child` to exit; `None` if it is still running.
pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for pid {}: {e}", child.id()),
        }
    }
}

/// A child process that is killed and reaped when dropped, so a failing test never
/// leaves a server running.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM to a child (ramfs exits 0 on it), without unsafe code: through kill(1).
pub fn terminate(child: &Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// Called when this machine cannot run a foreign-client test. Under CI (env `CI` set)
/// that is a failure; elsewhere the test is skipped with a note.
pub fn unavailable(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but this test cannot run: {what}");
    }
    eprintln!("SKIPPED (set CI=1 to make this a failure): {what}");
}

/// A fresh private directory for sockets and scratch files, removed when dropped.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(label: &str) -> ScratchDir {
        let base = std::env::temp_dir();
        for n in 0..1000u32 {
            let p = base.join(format!("ramfs-{label}-{}-{n}", std::process::id()));
            if std::fs::create_dir(&p).is_ok() {
                return ScratchDir(p);
            }
        }
        panic!("cannot create a scratch directory under {}", base.display());
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits up to `limit` for a unix socket (or any file) to appear at `path`.
pub fn wait_for_path(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Reads one 9P2000.L reply from `s`.
pub fn receive_reply(s: &mut impl std::io::Read) -> ninep::Fcall {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("reply size");
    let mut msg = size.to_vec();
    msg.resize(u32::from_le_bytes(size) as usize, 0);
    s.read_exact(&mut msg[4..]).expect("reply");
    ninep::decode(&msg, ninep::Dialect::L).expect("decode reply")
}

/// Sends one request whole and reads its reply, which must carry its tag.
pub fn call(
    s: &mut (impl std::io::Read + std::io::Write),
    tag: u16,
    msg: ninep::Msg,
) -> ninep::Msg {
    let mut out = Vec::new();
    ninep::encode(&ninep::Fcall { tag, msg }, &mut out).expect("encode");
    s.write_all(&out).expect("send");
    let reply = receive_reply(s);
    assert_eq!(reply.tag, tag);
    reply.msg
}
