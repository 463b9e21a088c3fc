//! The driver against real servers: diod (9P2000.L, unix socket) and our ramfs
//! (`ramfs --stdio`, both dialects). Each test skips with a note when its server is
//! not there.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::watchdog;
use mnt::host::{StdPlatform, StreamTransport};
use mnt::ninep::{dm, Dialect};
use mnt::{AttachArgs, Chan, Interrupt, MntError, Mount, MountOptions, OpenMode, Transport};

fn intr() -> Interrupt {
    Interrupt::new()
}

fn mount(t: Box<dyn Transport>, dialect: Dialect, msize: u32, aname: &str) -> (Mount, Chan) {
    let opts = MountOptions { msize, dialect };
    let m = Mount::version(t, StdPlatform::shared(), &opts, &intr()).expect("version");
    assert_eq!(m.dialect(), dialect);
    let args = AttachArgs {
        uname: "root".into(),
        aname: aname.into(),
        n_uname: 0,
    };
    let root = m.attach(&args, &intr()).expect("attach");
    (m, root)
}

/// Creates `name` in `dir` (a channel on a directory) and returns the open channel.
fn create(dir: &Chan, name: &str, perm: u32, mode: OpenMode) -> Chan {
    let mut c = dir.walk(&[], &intr()).expect("clone");
    c.create(name, perm, mode, &intr())
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    c
}

fn open(dir: &Chan, path: &[&str], mode: OpenMode) -> Chan {
    let mut c = dir
        .walk(path, &intr())
        .unwrap_or_else(|e| panic!("walk {path:?}: {e}"));
    c.open(mode, &intr())
        .unwrap_or_else(|e| panic!("open {path:?}: {e}"));
    c
}

fn read_all(c: &Chan) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = c.read(out.len() as u64, &mut buf, &intr()).expect("read");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn dir_names(root: &Chan) -> Vec<String> {
    let d = open(root, &[], OpenMode::READ);
    let mut names = Vec::new();
    let mut off = 0;
    loop {
        let (entries, next) = d.read_dir(off, &intr()).expect("read_dir");
        if entries.is_empty() {
            return names;
        }
        names.extend(entries.into_iter().map(|e| e.name));
        off = next;
    }
}

/// The same workout for every server: files, data larger than msize, stat, truncate,
/// rename, directories, a walk deeper than 16, directory reads, many threads, remove,
/// and the last channel closing the connection.
fn exercise(m: &Mount, root: Chan) {
    let w = create(&root, "hello", 0o644, OpenMode::RDWR);
    assert_eq!(w.write(0, b"hello, world", &intr()).expect("write"), 12);

    let r = open(&root, &["hello"], OpenMode::READ);
    assert_eq!(read_all(&r), b"hello, world");
    let info = r.stat(&intr()).expect("stat");
    assert_eq!((info.length, info.name.as_str()), (12, "hello"));
    assert!(!info.is_dir());
    assert_eq!(info.qid.path, r.qid().path);

    // Data much larger than msize goes out in iounit pieces.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let treads_before = m.stats().treads();
    assert_eq!(w.write(0, &big, &intr()).expect("big write"), big.len());
    assert_eq!(read_all(&r), big);
    let reads = m.stats().treads() - treads_before;
    assert!(
        reads as usize >= big.len() / r.iounit() as usize,
        "{reads} Treads"
    );

    // Truncate, then rename.
    assert_eq!(w.write(0, b"hello, world", &intr()).expect("write"), 12);
    let mut t = root.walk(&["hello"], &intr()).expect("walk");
    t.wstat(&mnt::Changes::truncate(5), &intr())
        .expect("truncate");
    assert_eq!(t.stat(&intr()).expect("stat").length, 5);
    assert_eq!(read_all(&r), b"hello");
    t.wstat(&mnt::Changes::rename("bye"), &intr())
        .expect("rename");
    assert_eq!(t.name(), "bye");
    assert!(root.walk(&["hello"], &intr()).is_err(), "old name gone");
    drop(root.walk(&["bye"], &intr()).expect("new name there"));

    // Directories, and a walk deeper than one Twalk can carry.
    let sub = create(&root, "sub", dm::DIR | 0o755, OpenMode::READ);
    assert!(sub.qid().ty & mnt::ninep::qt::DIR != 0);
    let mut path: Vec<String> = Vec::new();
    let mut here = root.walk(&["sub"], &intr()).expect("walk sub");
    for i in 0..20 {
        let name = format!("n{i}");
        drop(create(&here, &name, dm::DIR | 0o755, OpenMode::READ));
        here = here.walk(&[&name], &intr()).expect("walk down");
        path.push(name);
    }
    let mut deep: Vec<&str> = vec!["sub"];
    deep.extend(path.iter().map(String::as_str));
    let walks_before = m.stats().sent(mnt::ninep::mtype::TWALK);
    let bottom = root.walk(&deep, &intr()).expect("deep walk");
    assert_eq!(
        m.stats().sent(mnt::ninep::mtype::TWALK) - walks_before,
        2,
        "21 names: 16 + 5"
    );
    assert_eq!(bottom.qid(), here.qid());

    let mut names = dir_names(&root);
    names.sort();
    assert_eq!(names, ["bye", "sub"]);

    // Many threads on one mount, on shared and on their own channels.
    let shared = Arc::new(open(&root, &["bye"], OpenMode::READ));
    thread::scope(|s| {
        for i in 0..8 {
            let shared = shared.clone();
            let root = &root;
            s.spawn(move || {
                let own = open(root, &["bye"], OpenMode::READ);
                for _ in 0..25 {
                    let c = if i % 2 == 0 { &*shared } else { &own };
                    let mut buf = [0u8; 16];
                    let n = c.read(0, &mut buf, &intr()).expect("read");
                    assert_eq!(&buf[..n], b"hello");
                    c.stat(&intr()).expect("stat");
                }
            });
        }
    });
    assert!(m.broken().is_none());

    // Remove.
    let victim = root.walk(&["bye"], &intr()).expect("walk");
    victim.remove(&intr()).expect("remove");
    assert!(matches!(
        root.walk(&["bye"], &intr()),
        Err(MntError::WalkIncomplete { .. } | MntError::Server(_) | MntError::Errno(_))
    ));

    // Every channel gone: the connection closes.
    drop((w, r, t, sub, here, bottom, shared));
    assert!(!m.is_closed());
    drop(root);
    assert!(m.is_closed());
    let st = m.stats();
    assert_eq!(st.in_flight, 0);
    assert!(st.clunks_queued > 0);
}

/// Kills and reaps a server process when the test ends, however it ends.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
}

#[test]
fn diod_over_a_unix_socket() {
    let Some(diod) = on_path("diod") else {
        eprintln!("SKIP: diod is not installed (apt-get install diod)");
        return;
    };
    let _w = watchdog(Duration::from_secs(300));
    let scratch = tempfile::tempdir().expect("tempdir");
    let export = scratch.path().join("export");
    std::fs::create_dir(&export).expect("export dir");
    let sock = scratch.path().join("diod.sock");
    let child = Command::new(diod)
        .args(["--foreground", "--no-auth", "--config-file", "/dev/null"])
        .args(["--logdest", "stderr", "--listen"])
        .arg(&sock)
        .arg("--export")
        .arg(&export)
        .stdin(Stdio::null())
        .spawn()
        .expect("start diod");
    let _reaper = Reaper(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "diod never made its socket");
        thread::sleep(Duration::from_millis(10));
    }
    let t = StreamTransport::unix(&sock).expect("connect");
    let (m, root) = mount(Box::new(t), Dialect::L, 8192 + 24, export.to_str().unwrap());
    exercise(&m, root);
    // What the server did is visible on the host.
    assert!(export.join("sub/n0/n1").is_dir());
    assert!(!export.join("bye").exists());
}

fn diod_command(diod: &Path, export: &Path) -> Command {
    let mut c = Command::new(diod);
    c.args(["--foreground", "--no-auth", "--config-file", "/dev/null"])
        .args(["--logdest", "stderr", "--export"])
        .arg(export);
    c
}

#[test]
fn diod_over_tcp_on_loopback() {
    let Some(diod) = on_path("diod") else {
        eprintln!("SKIP: diod is not installed (apt-get install diod)");
        return;
    };
    let _w = watchdog(Duration::from_secs(300));
    let scratch = tempfile::tempdir().expect("tempdir");
    let export = scratch.path().to_path_buf();
    // A port the kernel just had free.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = diod_command(&diod, &export)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .spawn()
        .expect("start diod");
    let _reaper = Reaper(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let t = loop {
        match StreamTransport::tcp(("127.0.0.1", port)) {
            Ok(t) => break t,
            Err(e) => {
                assert!(Instant::now() < deadline, "diod never listened: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    };
    let (m, root) = mount(
        Box::new(t),
        Dialect::L,
        65536 + 24,
        export.to_str().unwrap(),
    );
    exercise(&m, root);
}

#[test]
fn diod_on_a_child_stdin_and_stdout() {
    let Some(diod) = on_path("diod") else {
        eprintln!("SKIP: diod is not installed (apt-get install diod)");
        return;
    };
    let _w = watchdog(Duration::from_secs(300));
    let scratch = tempfile::tempdir().expect("tempdir");
    let export = scratch.path().to_path_buf();
    let mut cmd = diod_command(&diod, &export);
    cmd.args(["--rfdno", "0", "--wfdno", "1"]);
    let (t, child) = StreamTransport::child(&mut cmd).expect("start diod");
    let (m, root) = mount(Box::new(t), Dialect::L, 8192 + 24, export.to_str().unwrap());
    exercise(&m, root);
    // The last channel closed the child's stdin: diod serves one connection on its
    // file descriptors and exits at end of file.
    let status = child
        .wait_timeout(Duration::from_secs(30))
        .expect("wait for diod");
    assert!(
        status.is_some(),
        "diod still runs after its only client left"
    );
}

/// The ramfs binary of this target directory, if it has been built and speaks stdio.
fn ramfs_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RAMFS_BIN") {
        return Some(PathBuf::from(p));
    }
    // CARGO_TARGET_TMPDIR is <target>/tmp; the binary is <target>/<profile>/ramfs.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()?
        .to_path_buf();
    let bin = ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join("ramfs"))
        .find(|p| p.exists())?;
    let help = Command::new(&bin).arg("--help").output().ok()?;
    String::from_utf8_lossy(&help.stdout)
        .contains("--stdio")
        .then_some(bin)
}

fn with_ramfs(dialect: Dialect) {
    let Some(bin) = ramfs_binary() else {
        eprintln!(
            "SKIP: no ramfs binary with --stdio in this target directory \
             (cargo build -p ramfs, or set RAMFS_BIN)"
        );
        return;
    };
    let _w = watchdog(Duration::from_secs(300));
    let (t, child) = StreamTransport::child(Command::new(bin).arg("--stdio")).expect("start ramfs");
    let (m, root) = mount(Box::new(t), dialect, 8192 + 24, "");
    exercise(&m, root);
    // The last channel closed the transport: ramfs sees end of file and exits.
    let status = child
        .wait_timeout(Duration::from_secs(30))
        .expect("wait for ramfs");
    assert!(
        status.is_some(),
        "ramfs still runs after its only client left"
    );
}

#[test]
fn ramfs_stdio_9p2000() {
    with_ramfs(Dialect::P2000);
}

#[test]
fn ramfs_stdio_9p2000_l() {
    with_ramfs(Dialect::L);
}
