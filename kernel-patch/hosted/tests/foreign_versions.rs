//! A 9P2000.L server whose `qid.version` is the file's whole-second mtime and whose
//! `data_version` is 0 (crosvm's p9, run as tools/p9-peer): a same-length rewrite within
//! one second by another client leaves `qid.version` as it was, and must still be seen by
//! the next open of a cached mount and by the next exec.
//!
//! "Within one second" is made exact rather than raced: the other client (the test,
//! writing the exported directory directly) sets the rewritten file's mtime to the same
//! second as before, another nanosecond, and the test checks that the server's
//! `qid.version` indeed did not move.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use hosted::mnt::ninep::Dialect;
use hosted::mnt::{MountOptions, OpenMode};
use hosted::vm::PAGE_SIZE;
use hosted::{ForkFlags, Kernel, MountFlags, MountSpec, Pid};

/// A second well in the past, so that no write of the test lands in it by itself.
const SECOND: u64 = 1_600_000_000;

/// Writes `bytes` to `path` on the host and sets its mtime to `SECOND` and `nanos`.
fn write_at(path: &Path, bytes: &[u8], nanos: u32) {
    std::fs::write(path, bytes).expect("write the exported file");
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open the exported file");
    file.set_modified(UNIX_EPOCH + Duration::new(SECOND, nanos))
        .expect("set the mtime");
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    assert_eq!(mtime, UNIX_EPOCH + Duration::new(SECOND, nanos));
    assert!(mtime < SystemTime::now());
}

fn mount_p9(kernel: &Kernel, pid: Pid, peer: &P9Peer) {
    let spec = MountSpec {
        options: MountOptions {
            dialect: Dialect::L,
            ..MountOptions::default()
        },
        ..MountSpec::default()
    };
    let info = kernel
        .mount_with(
            pid,
            peer.connect(),
            "/n/p9",
            MountFlags::REPLACE | MountFlags::CACHE,
            &spec,
        )
        .expect("mount p9-peer");
    assert_eq!(info.mount.dialect(), Dialect::L);
}

fn read_file(kernel: &Kernel, pid: Pid, path: &str) -> Vec<u8> {
    let fd = kernel.open(pid, path, OpenMode::READ).unwrap();
    let bytes = read_to_end(kernel, pid, fd);
    kernel.close(pid, fd).unwrap();
    bytes
}

#[test]
fn a_same_second_same_length_rewrite_is_seen_by_the_next_open() {
    let peer = P9Peer::start();
    let host = peer.host_path("f");
    write_at(&host, b"first contents", 100_000_000);
    let kernel = kernel();
    let pid = kernel.spawn();
    mount_p9(&kernel, pid, &peer);
    assert_eq!(read_file(&kernel, pid, "/n/p9/f"), b"first contents");
    let before = kernel.stat(pid, "/n/p9/f").unwrap();

    write_at(&host, b"other contents", 200_000_000);
    let after = kernel.stat(pid, "/n/p9/f").unwrap();
    assert_eq!(
        (after.qid.version, after.length),
        (before.qid.version, before.length),
        "the server's version moved: this server does not show the problem"
    );
    assert_eq!(read_file(&kernel, pid, "/n/p9/f"), b"other contents");
    check(&kernel);
}

#[test]
fn a_same_second_same_length_rewrite_is_seen_by_the_next_exec() {
    let binary = static_binary();
    let text = program_pages(binary)
        .into_iter()
        .filter(|page| !page.writable)
        .nth(1)
        .expect("a second text page");
    // The same program with one text page changed, past the headers.
    let mut changed = binary.to_vec();
    let at = usize::try_from(text.file_offset).unwrap() + PAGE_SIZE / 2;
    for byte in &mut changed[at..at + 16] {
        *byte ^= 0xff;
    }
    let changed_text = program_pages(&changed)
        .into_iter()
        .find(|page| page.addr == text.addr)
        .unwrap();
    assert!(changed_text.bytes != text.bytes);

    let peer = P9Peer::start();
    let host = peer.host_path("prog");
    write_at(&host, binary, 100_000_000);
    let kernel = kernel();
    let init = kernel.spawn();
    mount_p9(&kernel, init, &peer);
    let first = kernel.fork(init, ForkFlags::default()).unwrap();
    let old = kernel.exec(first, "/n/p9/prog", &["prog"]).unwrap();
    let mut got = vec![0u8; PAGE_SIZE];
    kernel.read_memory(first, text.addr, &mut got).unwrap();
    assert!(got == text.bytes);
    let before = kernel.stat(init, "/n/p9/prog").unwrap();

    // Rewritten while the first process still runs the old program (its image is live).
    write_at(&host, &changed, 200_000_000);
    let after = kernel.stat(init, "/n/p9/prog").unwrap();
    assert_eq!(
        (after.qid.version, after.length),
        (before.qid.version, before.length),
        "the server's version moved: this server does not show the problem"
    );
    let second = kernel.fork(init, ForkFlags::default()).unwrap();
    let new = kernel.exec(second, "/n/p9/prog", &["prog"]).unwrap();
    assert_ne!(
        new.identity, old.identity,
        "the rewritten file kept its identity"
    );
    kernel.read_memory(second, text.addr, &mut got).unwrap();
    assert!(got == changed_text.bytes, "the next exec maps the old text");
    // The first process keeps the program it ran.
    kernel.read_memory(first, text.addr, &mut got).unwrap();
    assert!(got == text.bytes);
    kernel.exit(first, "").unwrap();
    kernel.exit(second, "").unwrap();
    check(&kernel);
}
