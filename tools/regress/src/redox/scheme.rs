//! A real `ramfs-9p --scheme NAME` whose root capability this tool holds, as init would.
//!
//! The daemon's handover (ramfs `redox_scheme::daemon`): with `INIT_NOTIFY=FD` naming a
//! pipe, it sends its root capability fd through that pipe (`call_wo` with
//! `CallFlags::FD`, which moves the fd) instead of registering the scheme. The tool
//! receives it with `call_ro` and `CallFlags::FD` and keeps it out of every namespace:
//! the namespace manager never lets a registered scheme go, while closing this fd is
//! Redox's unmount (the daemon's `on_close(root)`). Files are opened relative to it
//! (`openat(root, "prog")`, i.e. `NAME:/prog`).

use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use libredox::flag;
use syscall::flag::CallFlags;

use crate::ensure;
use crate::failure::{Context, Failure};

/// The environment variable of the handover (ramfs `redox_scheme::daemon::INIT_NOTIFY`).
const INIT_NOTIFY: &str = "INIT_NOTIFY";

/// How long a dropped server may take to exit on its own before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// How often a wait looks at the child.
const POLL: Duration = Duration::from_millis(10);

/// One `ramfs-9p --scheme NAME` and, until [`close_root`](Self::close_root), its root.
pub struct SchemeRamfs {
    child: Child,
    root: Option<usize>,
    name: String,
}

/// A pipe whose ends close on exec (the write end is opened up for the daemon only).
fn pipe() -> Result<(usize, usize), Failure> {
    let mut fds: [libc::c_int; 2] = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error()).context("make the INIT_NOTIFY pipe");
    }
    Ok((fds[0] as usize, fds[1] as usize))
}

/// Keeps `fd` out of every program this tool starts: a child holding a copy of the root
/// would keep the scheme mounted after the tool closed it.
fn close_on_exec(fd: usize) -> Result<(), Failure> {
    // SAFETY: fcntl on a descriptor number; no memory is passed.
    if unsafe { libc::fcntl(fd as libc::c_int, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error()).context("mark the root close-on-exec");
    }
    Ok(())
}

impl SchemeRamfs {
    /// Starts `binary --scheme name` with `INIT_NOTIFY` and takes the root it hands over;
    /// its standard error goes to ours when `show_log` is set.
    pub fn start(binary: &Path, name: &str, show_log: bool) -> Result<SchemeRamfs, Failure> {
        let (read, write) = pipe()?;
        let mut command = Command::new(binary);
        command
            .args(["--scheme", name])
            .env(INIT_NOTIFY, write.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if !show_log {
            command.stderr(Stdio::null());
        }
        // SAFETY: the closure only calls fcntl, which is async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                // The daemon, and only it, inherits the write end.
                if libc::fcntl(write as libc::c_int, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let spawned = command.spawn();
        // Ours closes either way, so that a daemon that dies first ends our read.
        let _ = libredox::call::close(write);
        let child = match spawned {
            Ok(child) => child,
            Err(error) => {
                let _ = libredox::call::close(read);
                return Err(error).context(format!("start {}", binary.display()));
            }
        };
        let mut server = SchemeRamfs {
            child,
            root: None,
            name: name.to_string(),
        };
        let mut fd = [0u8; size_of::<usize>()];
        let received = libredox::call::call_ro(read, &mut fd, CallFlags::FD, &[]);
        let _ = libredox::call::close(read);
        let count = received.context(format!("receive the root of {name} over {INIT_NOTIFY}"))?;
        ensure!(
            count > 0,
            "ramfs-9p (pid {}) closed {INIT_NOTIFY} without handing over its root",
            server.pid()
        );
        let root = usize::from_ne_bytes(fd);
        server.root = Some(root);
        close_on_exec(root)?;
        Ok(server)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The scheme's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn root(&self) -> Result<usize, Failure> {
        self.root
            .ok_or_else(|| Failure::Expectation(format!("the root of {} is closed", self.name)))
    }

    /// Opens `path` (relative to the scheme's root: `NAME:/path`) with `flags` (libredox's
    /// `O_*`, the creation mode in the low 16 bits); the fd closes on exec.
    pub fn open(&self, path: &str, flags: i32) -> Result<usize, Failure> {
        libredox::call::openat(self.root()?, path, flags | flag::O_CLOEXEC, 0)
            .context(format!("open {}:/{path}", self.name))
    }

    /// Creates `path` (mode 0755) and writes `bytes` to it, however many writes it takes.
    pub fn write_new_file(&self, path: &str, bytes: &[u8]) -> Result<(), Failure> {
        let fd = self.open(path, flag::O_WRONLY | flag::O_CREAT | flag::O_TRUNC | 0o755)?;
        let mut done = 0;
        let written = loop {
            if done == bytes.len() {
                break Ok(());
            }
            match libredox::call::write(fd, &bytes[done..]) {
                Ok(0) => {
                    break Err(Failure::Expectation(format!(
                        "ramfs-9p took no bytes of {path} at {done}"
                    )))
                }
                Ok(n) => done += n,
                Err(error) => break Err(error).context(format!("write {path}")),
            }
        };
        let closed = libredox::call::close(fd).context(format!("close {path}"));
        written.and(closed)
    }

    /// Closes the root: Redox's unmount. Open files and mappings keep the daemon.
    pub fn close_root(&mut self) -> Result<(), Failure> {
        let root = self.root()?;
        self.root = None;
        libredox::call::close(root).context(format!("close the root of {}", self.name))
    }

    /// The exit status if the process has exited.
    fn status(&mut self) -> Result<Option<std::process::ExitStatus>, Failure> {
        self.child.try_wait().context("look at ramfs-9p")
    }

    /// Fails unless the process still runs; `why` says why it should.
    pub fn expect_running(&mut self, why: &str) -> Result<(), Failure> {
        let status = self.status()?;
        ensure!(
            status.is_none(),
            "ramfs-9p (pid {}) exited ({}) although {why}",
            self.pid(),
            status.map_or_else(String::new, |s| s.to_string())
        );
        Ok(())
    }

    /// Whether the process still runs, after waiting at most `wait` for it to exit.
    pub fn still_running_after(&mut self, wait: Duration) -> Result<bool, Failure> {
        let started = Instant::now();
        loop {
            if self.status()?.is_some() {
                return Ok(false);
            }
            if started.elapsed() >= wait {
                return Ok(true);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Fails unless the process exits with status 0 within `deadline`; `when` says what
    /// should have made it exit.
    pub fn expect_exit_zero(&mut self, deadline: Duration, when: &str) -> Result<(), Failure> {
        let started = Instant::now();
        loop {
            match self.status()? {
                Some(status) if status.success() => return Ok(()),
                Some(status) => {
                    return Err(Failure::Expectation(format!(
                        "ramfs-9p exited with {status} {when}, not 0"
                    )))
                }
                None if started.elapsed() >= deadline => {
                    return Err(Failure::Expectation(format!(
                        "ramfs-9p (pid {}) still running {deadline:?} {when}: a handle or a \
                         mapping of {} is still open{}",
                        self.pid(),
                        self.name,
                        if self.root.is_some() {
                            " (and the tool still holds its root)"
                        } else {
                            ""
                        }
                    )))
                }
                None => std::thread::sleep(POLL),
            }
        }
    }
}

impl Drop for SchemeRamfs {
    fn drop(&mut self) {
        // Closing the root lets a daemon with nothing else open exit on its own.
        if let Some(root) = self.root.take() {
            let _ = libredox::call::close(root);
        }
        if let Ok(true) = self.still_running_after(EXIT_GRACE) {
            log::debug!("killing ramfs-9p {}", self.child.id());
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
