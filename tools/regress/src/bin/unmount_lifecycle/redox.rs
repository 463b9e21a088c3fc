//! `unmount-lifecycle` on Redox: the lifecycle cases that can exist against the real
//! kernel and a real `ramfs-9p --scheme NAME` whose root the tool holds (closing the root
//! is Redox's unmount). The others need the hosted kernel's mount driver (its cache, its
//! Tflush, a server that never answers) and are printed as `n/a` with the reason.
//!
//! Nothing of this has run: this host cannot build relibc, so the Redox build is only
//! type-checked (`.ci/redox-check redox`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use libredox::flag;
use regress::failure::Context;
use regress::redox::SchemeRamfs;
use regress::tool::USAGE_ERROR;
use regress::{ensure, init_logging, Absent, Case, CommonArgs, Failure, Runner};

/// Unmount lifecycles of a real `ramfs-9p --scheme NAME` on the real Redox kernel: the root
/// closed under an open file, cycle after cycle. Prints one line per case (`ok`, `FAIL`, or
/// `n/a` for a hosted case that cannot exist on Redox), then `N passed, M failed`; exits 0
/// only if every case passed, 1 if one failed, 2 for a usage problem. Built here only as a
/// type-check: this has not run on Redox.
#[derive(Debug, Parser)]
#[command(name = "unmount-lifecycle", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    /// The scheme name each cycle's ramfs-9p serves (a number is appended).
    #[arg(long, value_name = "NAME", default_value = "regress-unmount")]
    scheme: String,

    /// Unmount cycles of the cycling cases.
    #[arg(long, value_name = "N", default_value_t = 10)]
    cycles: usize,

    /// Show ramfs-9p's own log on standard error.
    #[arg(long)]
    server_log: bool,
}

struct Env {
    ramfs: PathBuf,
    scheme: String,
    deadline: Duration,
    cycles: usize,
    server_log: bool,
}

/// Reads the open file `fd` from its current offset to its end.
fn read_all(fd: usize, len: usize) -> Result<Vec<u8>, Failure> {
    let mut data = vec![0u8; len + 1];
    let mut done = 0;
    loop {
        let n = libredox::call::read(fd, &mut data[done..]).context("read")?;
        if n == 0 {
            break;
        }
        done += n;
        ensure!(
            done <= len,
            "the file is longer than the {len} bytes written"
        );
    }
    data.truncate(done);
    Ok(data)
}

/// Cycles of: a ramfs-9p, a file written and opened, the root closed (the daemon must
/// stay: the file is open), the file read back, its close (the daemon must exit 0).
fn open_files(env: &Env) -> Result<(), Failure> {
    let contents: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i % 251) as u8).collect();
    for cycle in 0..env.cycles {
        let name = format!("{}-{}-{cycle}", env.scheme, std::process::id());
        let mut server = SchemeRamfs::start(&env.ramfs, &name, env.server_log)?;
        server.write_new_file("file", &contents)?;
        let fd = server.open("file", flag::O_RDONLY)?;
        server.close_root()?;
        let held = server.still_running_after(env.deadline.min(Duration::from_secs(1)))?;
        let read = read_all(fd, contents.len());
        let closed = libredox::call::close(fd).context("close the file");
        ensure!(
            held,
            "cycle {cycle}: ramfs-9p exited at the root's close although a file was open"
        );
        ensure!(
            read? == contents,
            "cycle {cycle}: the open file read back wrong after the root's close"
        );
        closed?;
        server.expect_exit_zero(env.deadline, &format!("after cycle {cycle}'s last close"))?;
    }
    eprintln!("    {} cycles", env.cycles);
    Ok(())
}

/// Closing the root with nothing open lets ramfs-9p exit 0 at once, cycle after cycle.
fn root_only(env: &Env) -> Result<(), Failure> {
    for cycle in 0..env.cycles {
        let name = format!("{}-{}-root-{cycle}", env.scheme, std::process::id());
        let mut server = SchemeRamfs::start(&env.ramfs, &name, env.server_log)?;
        server.expect_running("the tool holds its root")?;
        server.close_root()?;
        server.expect_exit_zero(env.deadline, &format!("after cycle {cycle}'s root close"))?;
    }
    Ok(())
}

const CASES: &[Case<Env>] = &[
    ("open-files: root closed under an open file, cycle after cycle: the file keeps ramfs-9p, its close lets it exit 0", open_files),
    ("root-only: closing the root with nothing open lets ramfs-9p exit 0", root_only),
];

const ABSENT: &[Absent] = &[
    ("cached-mounts: the same cycles on MCACHE mounts; second reads and reads after unmount come from the mount cache, which forgets the mount's files when its last channel goes", "Redox has no mount cache: every read of a scheme file goes to its daemon"),
    ("busy-binary: unmount (and remount) under a running program and its child; ramfs exits 0 after both exit", "exec-from-ramfs's busy-unmount is that case on Redox; a scheme cannot be remounted under the same root"),
    ("many-mounts: many servers mounted at once; each unmount lets just its server exit 0", "left for later on Redox: each open-files cycle is one server"),
    ("server-killed: ramfs killed mid-request: the read and fault in flight fail, nothing leaks, the checker passes", "the tool cannot hold a request in flight at a scheme, and there is no checker of the real kernel to run"),
    ("interrupted-reads: a note during a read or a page read sends Tflush; the call fails interrupted and reading goes on", "there is no 9P between the kernel and a scheme, so no Tflush"),
    ("never-answers: a request never answered (nor its flush) stalls only its caller", "needs a daemon that withholds answers; ramfs-9p answers every request"),
    ("hung-unmount: unmounting a server that never answers Tclunk returns at once; the clunk stays queued", "closing a scheme's root sends a CloseMsg the daemon does not answer; there is no clunk to queue"),
];

pub fn main() -> ExitCode {
    init_logging("warn");
    let cli = Cli::parse();
    // Every hosted case is run here or printed as n/a: a list out of step is the tool's bug.
    if let Err(why) =
        regress::catalogue::covers(regress::catalogue::UNMOUNT_LIFECYCLE, CASES, ABSENT)
    {
        eprintln!(
            "unmount-lifecycle: the Redox case list is out of step with the catalogue: {why}"
        );
        return ExitCode::from(USAGE_ERROR);
    }
    let ramfs = match cli.common.ramfs_path() {
        Ok(path) => path,
        Err(why) => {
            eprintln!("unmount-lifecycle: {why}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    eprintln!(
        "unmount-lifecycle (Redox, real kernel): {} --scheme {}-…",
        ramfs.display(),
        cli.scheme
    );
    let env = Env {
        ramfs,
        scheme: cli.scheme,
        deadline: cli.common.deadline(),
        cycles: cli.cycles,
        server_log: cli.server_log,
    };
    Runner::run_selected_with_absent(&cli.common, env, CASES, ABSENT)
}
