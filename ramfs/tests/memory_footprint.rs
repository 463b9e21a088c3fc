//! The ramfs process holds about what its tree's memory account says: a file's pages
//! cost a page each, not the 8 KiB a page aligned to its size costs in glibc's malloc
//! (the global allocator, `src/main.rs`). The binary serves a unix socket; the test
//! writes 48 MiB through 9P, in Twrites of 64 KiB (whose data is read into page
//! buffers) and of 8 KiB (copied into pages), and reads the server's resident size
//! from /proc before and after. Linux only (/proc).
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{call, ramfs_bin, Reaped, ScratchDir};
use ninep::{lflags, Msg, NOFID, NOTAG};

/// Resident bytes of process `pid`.
fn resident(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

#[test]
fn a_file_s_pages_cost_the_process_about_a_page_each() {
    let dir = ScratchDir::new("footprint");
    let sock = dir.path().join("s");
    let child = Command::new(ramfs_bin())
        .arg("--listen")
        .arg(format!("unix:{}", sock.display()))
        .args(["--max-memory", "256M"])
        .stderr(Stdio::null())
        .spawn()
        .expect("start ramfs");
    let server = Reaped(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut s = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("connect: {e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let version = Msg::Tversion {
        msize: 1 << 17,
        version: "9P2000.L".into(),
    };
    assert!(matches!(call(&mut s, NOTAG, version), Msg::Rversion { .. }));
    let attach = Msg::Tattach {
        fid: 0,
        afid: NOFID,
        uname: "root".into(),
        aname: String::new(),
        n_uname: Some(0),
    };
    assert!(matches!(call(&mut s, 1, attach), Msg::Rattach { .. }));
    let mut files = Vec::new();
    for (fid, name) in [(1, "big"), (2, "small")] {
        let walk = Msg::Twalk {
            fid: 0,
            newfid: fid,
            wnames: vec![],
        };
        assert!(matches!(call(&mut s, 2, walk), Msg::Rwalk { .. }));
        let create = Msg::Tlcreate {
            fid,
            name: name.into(),
            flags: lflags::RDWR,
            mode: 0o644,
            gid: 0,
        };
        assert!(matches!(call(&mut s, 3, create), Msg::Rlcreate { .. }));
        files.push(fid);
    }
    let before = resident(server.0.id());
    // 32 MiB in 64 KiB writes, 16 MiB in 8 KiB writes; no byte repeated a page long.
    let chunk: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let mut written = 0u64;
    for (fid, size, total) in [(1, 65536usize, 32u64 << 20), (2, 8192, 16 << 20)] {
        let mut offset = 0u64;
        while offset < total {
            let data = chunk[..size].to_vec();
            let write = Msg::Twrite { fid, offset, data };
            assert_eq!(call(&mut s, 4, write), Msg::Rwrite { count: size as u32 });
            offset += size as u64;
        }
        written += total;
    }
    let grown = resident(server.0.id()).saturating_sub(before);
    // The pages, their runs' map entries and reference counts, and allocator slack:
    // well under 1.25 times the data (glibc's malloc took 2 times).
    assert!(
        grown < written + written / 4,
        "{written} bytes written, the server grew {grown} bytes"
    );
    assert!(
        grown > written / 2,
        "the data is in the server: grew {grown}"
    );
}
