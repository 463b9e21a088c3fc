//! Starting and stopping the servers that `compare` measures: ramfs and its peers, each
//! on its own unix socket, exporting its own directory, all inside one scratch directory
//! on tmpfs so that no peer pays for a disk that ramfs does not have.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use ninep::Dialect;
use tracing::{debug, warn};

use super::addr::Addr;
use super::session::Target;

/// A directory that holds the servers' sockets and exports; removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Makes `ninep-bench-<pid>` under /dev/shm (tmpfs), or the temporary directory when
    /// there is no /dev/shm.
    pub fn new() -> io::Result<Scratch> {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("ninep-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch { dir })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Makes (empty) the directory `name` inside the scratch directory.
    fn export_dir(&self, name: &str) -> io::Result<PathBuf> {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            warn!("could not remove {}: {e}", self.dir.display());
        }
    }
}

/// How to start one server and where it will listen.
#[derive(Debug, Clone)]
pub struct ServerCommand {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The unix socket that appears when the server is ready.
    pub socket: PathBuf,
    /// How to reach and attach to it.
    pub target: Target,
}

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("{name}: {what}: {source}")]
    Io {
        name: String,
        what: String,
        source: io::Error,
    },
    #[error("{name} exited ({status}) before it listened; its log ends with:\n{log}")]
    Exited {
        name: String,
        status: ExitStatus,
        log: String,
    },
    #[error("{name} did not listen on {socket} within {waited:?}")]
    NotListening {
        name: String,
        socket: String,
        waited: Duration,
    },
    #[error("{name}: not started: the servers are being stopped")]
    Stopped { name: String },
}

/// A started server; killed and reaped when dropped.
#[derive(Debug)]
struct Running {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Running {
    /// The exit status, if the server has died since it started.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The servers are ours and hold nothing worth a graceful shutdown: their files
        // are in the scratch directory, which goes next.
        if let Err(e) = self.child.kill() {
            debug!("{}: kill: {e}", self.name);
        }
        let _ = self.child.wait();
    }
}

/// The servers `compare` started, each killed and reaped by [`stop`](Servers::stop) or
/// when this is dropped. A [`Stopper`] ends them from elsewhere (the thread that handles
/// SIGINT and SIGTERM), at any moment: a server is among them from its spawn on, and none
/// is started once they are stopped.
#[derive(Debug, Default)]
pub struct Servers {
    shared: Arc<Mutex<Started>>,
}

#[derive(Debug, Default)]
struct Started {
    running: Vec<Running>,
    stopped: bool,
}

/// Stops the [`Servers`] it was taken from; clones stop the same servers.
#[derive(Clone, Debug)]
pub struct Stopper {
    shared: Arc<Mutex<Started>>,
}

/// A server that died while it was being measured.
#[derive(Debug)]
pub struct Died {
    /// Its name.
    pub name: String,
    /// How it ended.
    pub status: ExitStatus,
    /// The end of its log.
    pub log_tail: String,
}

fn lock(shared: &Mutex<Started>) -> MutexGuard<'_, Started> {
    // A panic elsewhere leaves the list as it was: still right to kill from.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Servers {
    /// Starts `cmd` with its output in `log`, and waits up to `wait` for its socket to
    /// accept a connection; gives the server's pid. A server that fails to start is
    /// killed and reaped at once.
    pub fn start(
        &self,
        cmd: &ServerCommand,
        log: &Path,
        wait: Duration,
    ) -> Result<u32, SpawnError> {
        let io_err = |what: String| {
            let name = cmd.name.clone();
            move |source| SpawnError::Io { name, what, source }
        };
        let out = File::create(log).map_err(io_err(format!("create {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(io_err(format!("open {}", log.display())))?;
        debug!("starting {}: {:?} {:?}", cmd.name, cmd.program, cmd.args);
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        end_with_parent(&mut command);
        let pid = {
            // Spawned under the lock, so a stop either comes first (and nothing starts)
            // or finds the server in the list.
            let mut started = lock(&self.shared);
            if started.stopped {
                return Err(SpawnError::Stopped {
                    name: cmd.name.clone(),
                });
            }
            let child = command
                .spawn()
                .map_err(io_err(format!("start {}", cmd.program.display())))?;
            let pid = child.id();
            started.running.push(Running {
                name: cmd.name.clone(),
                child,
                log: log.to_path_buf(),
            });
            pid
        };
        let deadline = Instant::now() + wait;
        loop {
            match self.exit_status(pid) {
                None => {
                    return Err(SpawnError::Stopped {
                        name: cmd.name.clone(),
                    })
                }
                Some(Some(status)) => {
                    drop(self.remove(pid));
                    return Err(SpawnError::Exited {
                        name: cmd.name.clone(),
                        status,
                        log: log_tail(log),
                    });
                }
                Some(None) => {}
            }
            if UnixStream::connect(&cmd.socket).is_ok() {
                return Ok(pid);
            }
            if Instant::now() >= deadline {
                drop(self.remove(pid));
                return Err(SpawnError::NotListening {
                    name: cmd.name.clone(),
                    socket: cmd.socket.display().to_string(),
                    waited: wait,
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `None` when the server `pid` is not among these (they were stopped); else its exit
    /// status if it has died.
    fn exit_status(&self, pid: u32) -> Option<Option<ExitStatus>> {
        let mut started = lock(&self.shared);
        let running = started.running.iter_mut().find(|r| r.child.id() == pid)?;
        Some(running.exited())
    }

    /// Takes the server `pid` out of the list; dropping it kills and reaps it.
    fn remove(&self, pid: u32) -> Option<Running> {
        let mut started = lock(&self.shared);
        let at = started.running.iter().position(|r| r.child.id() == pid)?;
        Some(started.running.remove(at))
    }

    /// The servers that have died since they started.
    pub fn died(&self) -> Vec<Died> {
        lock(&self.shared)
            .running
            .iter_mut()
            .filter_map(|r| {
                let status = r.exited()?;
                Some(Died {
                    name: r.name.clone(),
                    status,
                    log_tail: log_tail(&r.log),
                })
            })
            .collect()
    }

    /// A handle that stops these servers from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            shared: self.shared.clone(),
        }
    }

    /// Kills and reaps every server; none starts after this.
    pub fn stop(&self) {
        self.stopper().stop();
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Stopper {
    /// Kills and reaps every server of its [`Servers`]; none starts after this.
    pub fn stop(&self) {
        let running = {
            let mut started = lock(&self.shared);
            started.stopped = true;
            std::mem::take(&mut started.running)
        };
        // Dropping each kills and reaps it, with the lock released.
        drop(running);
    }
}

/// On Linux, has the kernel kill the server when the bench dies, however it dies (even by
/// SIGKILL, which no handler sees). The signal comes when the thread that spawned the
/// server ends: `compare` starts its servers from the main thread.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn end_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let bench = std::process::id();
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: prctl and getppid are plain system calls that
    // neither allocate nor lock, and `io::Error::from_raw_os_error` does not allocate.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The bench died before the prctl: no signal will come, so do not run.
            if libc::getppid() as u32 != bench {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Elsewhere the servers end with the bench only through [`Servers`].
#[cfg(not(target_os = "linux"))]
fn end_with_parent(_command: &mut Command) {}

/// The last lines of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    const TAIL: u64 = 2000;
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(TAIL)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).trim_end().to_owned()
}

/// Who the benchmark attaches as: the user running it, so that files it creates on a
/// server started by the same user are its own.
pub fn attach_identity() -> (String, u32) {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| if uid == 0 { "root" } else { "nobody" }.to_owned());
    (name, uid)
}

fn target(name: &str, socket: &Path, dialect: Dialect, aname: String) -> Target {
    let (uname, n_uname) = attach_identity();
    Target {
        name: name.to_owned(),
        addr: Addr::Unix(socket.to_path_buf()),
        dialect,
        aname,
        uname,
        n_uname,
        baseline: false,
    }
}

/// The raw baseline on `<scratch>/raw.sock`: `program` (this bench) as `raw-server`.
pub fn raw(program: &Path, scratch: &Scratch) -> ServerCommand {
    let socket = scratch.path().join("raw.sock");
    ServerCommand {
        name: "raw".into(),
        program: program.to_path_buf(),
        args: vec![
            "raw-server".into(),
            "--listen".into(),
            format!("unix:{}", socket.display()).into(),
        ],
        target: Target {
            baseline: true,
            ..target("raw", &socket, Dialect::L, String::new())
        },
        socket,
    }
}

/// ramfs on `<scratch>/ramfs.sock`, measured in 9P2000.L.
pub fn ramfs(program: &Path, scratch: &Scratch, max_memory: u64) -> ServerCommand {
    let socket = scratch.path().join("ramfs.sock");
    ServerCommand {
        name: "ramfs".into(),
        program: program.to_path_buf(),
        args: vec![
            "--listen".into(),
            format!("unix:{}", socket.display()).into(),
            "--max-memory".into(),
            max_memory.to_string().into(),
        ],
        target: target("ramfs", &socket, Dialect::L, String::new()),
        socket,
    }
}

/// diod in the foreground without authentication, exporting a fresh directory (tmpfs).
/// `-c /dev/null` keeps the host's diod.conf out of the measurement.
pub fn diod(program: &Path, scratch: &Scratch) -> io::Result<ServerCommand> {
    let socket = scratch.path().join("diod.sock");
    let export = scratch.export_dir("diod-export")?;
    Ok(ServerCommand {
        name: "diod".into(),
        program: program.to_path_buf(),
        args: vec![
            "--foreground".into(),
            "--no-auth".into(),
            "--config-file".into(),
            "/dev/null".into(),
            "--logdest".into(),
            "stderr".into(),
            "--listen".into(),
            socket.clone().into(),
            "--export".into(),
            export.clone().into(),
        ],
        // diod serves the export whose path is the attach name.
        target: target("diod", &socket, Dialect::L, export.display().to_string()),
        socket,
    })
}

/// The p9-peer binary (crosvm's p9 crate) exporting a fresh directory.
pub fn p9(program: &Path, scratch: &Scratch) -> io::Result<ServerCommand> {
    let socket = scratch.path().join("p9.sock");
    let export = scratch.export_dir("p9-export")?;
    Ok(ServerCommand {
        name: "p9".into(),
        program: program.to_path_buf(),
        args: vec![
            "--listen".into(),
            format!("unix:{}", socket.display()).into(),
            "--root".into(),
            export.into(),
        ],
        target: target("p9", &socket, Dialect::L, String::new()),
        socket,
    })
}

/// unpfs (rs9p's example server) exporting a fresh directory.
pub fn unpfs(program: &Path, scratch: &Scratch) -> io::Result<ServerCommand> {
    let base = scratch.path().join("unpfs.sock");
    let export = scratch.export_dir("unpfs-export")?;
    // unpfs takes `unix!PATH!PORT` and binds the socket at "PATH:PORT".
    let socket = PathBuf::from(format!("{}:0", base.display()));
    Ok(ServerCommand {
        name: "unpfs".into(),
        program: program.to_path_buf(),
        args: vec![format!("unix!{}!0", base.display()).into(), export.into()],
        target: target("unpfs", &socket, Dialect::L, String::new()),
        socket,
    })
}

/// `name` in the directory of the running executable, or of its parent when the
/// executable is a test in `target/<profile>/deps`.
pub fn sibling_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let found = [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    found
}

/// `name` on `$PATH`, or in /usr/sbin or /sbin (where Debian puts diod, and which a
/// user's `$PATH` may lack).
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `name` where `cargo install` puts binaries: `$CARGO_HOME/bin` or `~/.cargo/bin`.
pub fn cargo_installed(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    Some(home.join("bin").join(name)).filter(|p| p.is_file())
}
