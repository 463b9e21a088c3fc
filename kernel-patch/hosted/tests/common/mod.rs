//! Shared by the integration tests: a real `ramfs --stdio` behind a recording interposer,
//! a real static ELF binary, and helpers to copy files in and compare pages.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use hosted::inject::{interpose, Wire};
use hosted::mnt::host::{ChildProcess, StreamTransport};
use hosted::mnt::{OpenMode, Transport};
use hosted::{Kernel, KernelConfig, MountFlags, MountInfo, Pid};

/// How long a test waits for something that should happen at once (a server exiting, a
/// queued close); only a failure ever waits this long.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The target directory and profile directory of this test executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // <target>/<profile>/deps/<test>
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable in <target>/<profile>/deps")
        .to_path_buf()
}

/// The `ramfs` binary of this target directory (or `$RAMFS_BIN`), built first if it is
/// missing.
pub fn ramfs() -> PathBuf {
    static RAMFS: OnceLock<PathBuf> = OnceLock::new();
    RAMFS
        .get_or_init(|| match std::env::var_os("RAMFS_BIN") {
            Some(path) => PathBuf::from(path),
            None => hosted_testing::ramfs_in(&profile_dir()).unwrap_or_else(|e| panic!("{e}")),
        })
        .clone()
}

/// The `p9-peer` binary of this target directory (or `$P9_PEER_BIN`), built first if it is
/// missing.
pub fn p9_peer() -> PathBuf {
    static P9_PEER: OnceLock<PathBuf> = OnceLock::new();
    P9_PEER
        .get_or_init(|| match std::env::var_os("P9_PEER_BIN") {
            Some(path) => PathBuf::from(path),
            None => hosted_testing::p9_peer_in(&profile_dir()).unwrap_or_else(|e| panic!("{e}")),
        })
        .clone()
}

/// A static ELF64 test program ([`hosted_testing::TEST_PROGRAM_SOURCE`]), compiled once per
/// test run: a page-spanning initialised table (data), a larger zeroed one (bss), and
/// libc's text.
pub fn static_binary() -> &'static [u8] {
    static BINARY: OnceLock<Vec<u8>> = OnceLock::new();
    BINARY.get_or_init(|| {
        hosted_testing::build_test_program().unwrap_or_else(|e| panic!("test program: {e}"))
    })
}

/// A running `ramfs --stdio` and the interposer in front of it.
pub struct Server {
    pub child: ChildProcess,
    pub wire: Wire,
    transport: Option<Box<dyn Transport>>,
}

impl Server {
    pub fn start() -> Server {
        // RAMFS_LOG=1 shows the server's log.
        let mut command = Command::new(ramfs());
        command.arg("--stdio");
        if std::env::var_os("RAMFS_LOG").is_none() {
            command.stderr(Stdio::null());
        }
        let (stream, child) = StreamTransport::child(&mut command).expect("start ramfs");
        let (interposer, wire) = interpose(Box::new(stream)).expect("interpose");
        Server {
            child,
            wire,
            transport: Some(Box::new(interposer)),
        }
    }

    /// The transport to mount (once).
    pub fn transport(&mut self) -> Box<dyn Transport> {
        self.transport.take().expect("transport already mounted")
    }

    /// Mounts the server at `path` in `pid`'s namespace.
    pub fn mount(&mut self, kernel: &Kernel, pid: Pid, path: &str) -> MountInfo {
        kernel
            .mount(pid, self.transport(), path, MountFlags::REPLACE)
            .expect("mount ramfs")
    }

    /// Whether the server exits with status 0 within `timeout`.
    pub fn exits_cleanly(&self, timeout: Duration) -> bool {
        match self.child.wait_timeout(timeout) {
            Ok(Some(status)) => status.success(),
            _ => false,
        }
    }

    /// Whether the server is still running.
    pub fn running(&self) -> bool {
        matches!(self.child.wait_timeout(Duration::ZERO), Ok(None))
    }
}

/// A kernel with the default configuration.
pub fn kernel() -> Kernel {
    Kernel::new(KernelConfig::default()).expect("kernel")
}

/// Writes `bytes` to a new file at `path` (mode 0755).
pub fn copy_in(kernel: &Kernel, pid: Pid, path: &str, bytes: &[u8]) {
    let fd = kernel
        .create(pid, path, 0o755, OpenMode::WRITE)
        .expect("create");
    let mut done = 0;
    while done < bytes.len() {
        let n = kernel.write(pid, fd, &bytes[done..]).expect("write");
        assert!(n > 0, "short write");
        done += n;
    }
    kernel.close(pid, fd).expect("close");
}

/// Checks the whole kernel after the close queue settled.
pub fn check(kernel: &Kernel) -> hosted::KernelCheck {
    assert!(kernel.wait_closes(DEADLINE), "queued closes never settled");
    match kernel.check_invariants() {
        Ok(report) => report,
        Err(violation) => panic!("invariant violated: {violation}\n{}", kernel.statistics()),
    }
}

pub use hosted_testing::ProgramPage;

/// Every page of `file` that holds file bytes, with its expected contents
/// ([`hosted_testing::expected_pages`]).
pub fn program_pages(file: &[u8]) -> Vec<ProgramPage> {
    let loads = hosted::vm::elf::load_segments(file).expect("an ELF file");
    hosted_testing::expected_pages(file, &loads)
}

/// A `ramfs --listen unix:PATH`: one tree, any number of connections, so that two mounts
/// (two clients) see the same files. Killed when dropped.
pub struct ListeningServer {
    child: std::process::Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl ListeningServer {
    pub fn start() -> ListeningServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("ramfs.sock");
        let mut command = Command::new(ramfs());
        command
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            // The mounts attach as uid 1000 whoever runs the tests: only root's peer
            // credentials would allow that without this.
            .arg("--trust-attach-names")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if std::env::var_os("RAMFS_LOG").is_none() {
            command.stderr(Stdio::null());
        }
        let child = command.spawn().expect("start ramfs --listen");
        let server = ListeningServer {
            child,
            socket,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + DEADLINE;
        while !server.socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "ramfs never made its socket"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    /// A new connection to the server. ramfs binds its socket before it listens, so a
    /// connection right after the socket appeared may be refused: try again until the
    /// deadline (only a failure waits that long).
    pub fn connect(&self) -> Box<dyn Transport> {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            match StreamTransport::unix(&self.socket) {
                Ok(transport) => return Box::new(transport),
                Err(err)
                    if err.kind() == std::io::ErrorKind::ConnectionRefused
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(err) => panic!("connect to ramfs: {err}"),
            }
        }
    }
}

impl Drop for ListeningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the open file `fd` from its offset to its end.
pub fn read_to_end(kernel: &Kernel, pid: Pid, fd: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 24 * 1024];
    loop {
        let n = kernel.read(pid, fd, &mut buf).expect("read");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// A `p9-peer --listen unix:PATH --root DIR` (crosvm's 9P2000.L server) exporting a
/// temporary directory the test can also change directly, as another client would. Killed
/// when dropped.
pub struct P9Peer {
    child: std::process::Child,
    socket: PathBuf,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl P9Peer {
    pub fn start() -> P9Peer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("p9.sock");
        let root = dir.path().join("export");
        std::fs::create_dir(&root).expect("export directory");
        let mut command = Command::new(p9_peer());
        command
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .arg("--root")
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if std::env::var_os("RAMFS_LOG").is_none() {
            command.stderr(Stdio::null());
        }
        let child = command.spawn().expect("start p9-peer");
        let peer = P9Peer {
            child,
            socket,
            root,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + DEADLINE;
        while !peer.socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "p9-peer never made its socket"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        peer
    }

    /// A new connection to the server.
    pub fn connect(&self) -> Box<dyn Transport> {
        Box::new(StreamTransport::unix(&self.socket).expect("connect to p9-peer"))
    }

    /// The host path of the exported file `name`.
    pub fn host_path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

impl Drop for P9Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One ramfs tree mounted twice: `/n/a`, where a test works, holding `/n/a/file`, and
/// `/n/b`, which shares no page with `/n/a` and so shows the server's bytes.
pub struct TwoMounts {
    pub kernel: Kernel,
    pub init: Pid,
    _server: ListeningServer,
}

/// Mounts one new ramfs at `/n/a` and `/n/b` and writes `file` to `/n/a/file`.
pub fn two_mounts(file: &[u8]) -> TwoMounts {
    let kernel = kernel();
    let init = kernel.spawn();
    let server = ListeningServer::start();
    kernel
        .mount(init, server.connect(), "/n/a", MountFlags::REPLACE)
        .expect("mount a");
    kernel
        .mount(init, server.connect(), "/n/b", MountFlags::REPLACE)
        .expect("mount b");
    copy_in(&kernel, init, "/n/a/file", file);
    TwoMounts {
        kernel,
        init,
        _server: server,
    }
}
