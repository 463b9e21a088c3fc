//! Options every tool takes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

/// The server's file name: on Redox our ramfs is installed as `ramfs-9p`, so that no
/// `ramfs NAME` of Redox's own services starts it (NOTES-redox-scheme.md §9).
const RAMFS_NAME: &str = if cfg!(target_os = "redox") {
    "ramfs-9p"
} else {
    "ramfs"
};

/// Where the recipe installs it on Redox.
const REDOX_INSTALLED: &str = "/usr/bin/ramfs-9p";

/// Where the server is, how long to wait.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// The ramfs binary [default: `ramfs` next to this tool's executable; on Redox
    /// `ramfs-9p` next to it, else /usr/bin/ramfs-9p].
    #[arg(long, value_name = "PATH")]
    pub ramfs: Option<PathBuf>,

    /// Seconds to wait for something that should happen at once (a server exiting, queued
    /// closes settling); only a failing case waits this long.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub deadline: u64,

    /// Seconds a whole case may take before it counts as failed.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub case_timeout: u64,

    /// Run only the cases whose names contain this.
    #[arg(long, value_name = "TEXT")]
    pub only: Option<String>,
}

impl CommonArgs {
    /// The ramfs binary to run.
    pub fn ramfs_path(&self) -> Result<PathBuf, String> {
        if let Some(path) = &self.ramfs {
            return Ok(path.clone());
        }
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let next_to = exe.with_file_name(RAMFS_NAME);
        if next_to.exists() {
            Ok(next_to)
        } else if cfg!(target_os = "redox") && Path::new(REDOX_INSTALLED).exists() {
            Ok(PathBuf::from(REDOX_INSTALLED))
        } else {
            Err(format!(
                "no ramfs at {} (build it with `cargo build -p ramfs`, or give --ramfs PATH)",
                next_to.display()
            ))
        }
    }

    /// [`deadline`](Self::deadline) as a duration.
    pub fn deadline(&self) -> Duration {
        Duration::from_secs(self.deadline)
    }

    /// [`case_timeout`](Self::case_timeout) as a duration.
    pub fn case_timeout(&self) -> Duration {
        Duration::from_secs(self.case_timeout)
    }

    /// Whether the case `name` is selected.
    pub fn selected(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|only| name.contains(only))
    }
}
