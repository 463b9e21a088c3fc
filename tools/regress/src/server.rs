//! A real `ramfs --stdio`, started as a child process, behind a recording interposer.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hosted::inject::{interpose, Wire};
use hosted::mnt::host::{ChildProcess, StreamTransport};
use hosted::mnt::Transport;
use hosted::{Kernel, MountFlags, MountInfo, Pid};

use crate::ensure;

/// How long a dropped server may take to exit on its own before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(1);
use crate::failure::{Context, Failure};

/// One ramfs process serving one client on its stdin and stdout. Dropping it gives the
/// process a moment to exit on its own (its client may just have gone), then kills it.
pub struct Ramfs {
    child: ChildProcess,
    wire: Wire,
    transport: Option<Box<dyn Transport>>,
}

impl Ramfs {
    /// Starts `binary --stdio`; its standard error goes to ours when `show_log` is set.
    pub fn start(binary: &Path, show_log: bool) -> Result<Ramfs, Failure> {
        let mut command = Command::new(binary);
        command.arg("--stdio");
        if !show_log {
            command.stderr(Stdio::null());
        }
        let (stream, child) =
            StreamTransport::child(&mut command).context(format!("start {}", binary.display()))?;
        let (interposer, wire) = interpose(Box::new(stream)).context("start the interposer")?;
        Ok(Ramfs {
            child,
            wire,
            transport: Some(Box::new(interposer)),
        })
    }

    /// The recording interposer between the kernel and this server.
    pub fn wire(&self) -> &Wire {
        &self.wire
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Mounts this server at `path` in `pid`'s namespace (once).
    pub fn mount(
        &mut self,
        kernel: &Kernel,
        pid: Pid,
        path: &str,
        flags: MountFlags,
    ) -> Result<MountInfo, Failure> {
        let transport = self
            .transport
            .take()
            .ok_or_else(|| Failure::Expectation("server mounted twice".to_string()))?;
        kernel
            .mount(pid, transport, path, flags)
            .context(format!("mount ramfs on {path}"))
    }

    /// Whether the process still runs.
    pub fn running(&self) -> Result<bool, Failure> {
        Ok(self
            .child
            .wait_timeout(Duration::ZERO)
            .context("look at ramfs")?
            .is_none())
    }

    /// Fails unless the process still runs; `why` says why it should.
    pub fn expect_running(&self, why: &str) -> Result<(), Failure> {
        let status = self
            .child
            .wait_timeout(Duration::ZERO)
            .context("look at ramfs")?;
        ensure!(
            status.is_none(),
            "ramfs (pid {}) exited ({}) although {why}",
            self.pid(),
            status.map_or_else(String::new, |s| s.to_string())
        );
        Ok(())
    }

    /// Fails unless the process exits with status 0 within `deadline`; `when` says what
    /// should have made it exit, `holders` what may still hold it (for the message).
    pub fn expect_exit_zero(
        &self,
        deadline: Duration,
        when: &str,
        holders: impl FnOnce() -> String,
    ) -> Result<(), Failure> {
        match self
            .child
            .wait_timeout(deadline)
            .context("wait for ramfs")?
        {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(Failure::Expectation(format!(
                "ramfs exited with {status} {when}, not 0"
            ))),
            None => Err(Failure::Expectation(format!(
                "ramfs (pid {}) still running {:?} {when}: something still holds a channel \
                 to it ({})",
                self.pid(),
                deadline,
                holders()
            ))),
        }
    }

    /// Kills the process (a server crash) and reaps it.
    pub fn kill(&self) -> Result<(), Failure> {
        self.child.kill().context("kill ramfs")
    }
}

impl Drop for Ramfs {
    fn drop(&mut self) {
        // Closing our end lets a server whose channels are all gone see end of file.
        drop(self.transport.take());
        if let Ok(None) = self.child.wait_timeout(EXIT_GRACE) {
            log::debug!("killing ramfs {}", self.child.id());
        }
        // ChildProcess kills and reaps it if it still runs.
    }
}
