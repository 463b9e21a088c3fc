//! `exec-from-ramfs` on Redox: the hosted cases' questions asked of the real kernel and a
//! real `ramfs-9p --scheme NAME` whose root the tool holds (as init would, over
//! `INIT_NOTIFY`). The program is this tool's own executable, copied to `NAME:/prog` and
//! run from there. Cases that need the hosted kernel's insight (frames, image counts,
//! identities) cannot exist here; the tool prints them as `n/a` with the reason.
//!
//! Nothing of this has run: this host cannot build relibc, so the Redox build is only
//! type-checked (`.ci/redox-check redox`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use libredox::flag;
use regress::redox::{run_as_program_if_asked, ImageCache, Mode, Running, SchemeRamfs};
use regress::tool::USAGE_ERROR;
use regress::{init_logging, Absent, Case, CommonArgs, Failure, Runner};

/// The program's file in the scheme (`NAME:/prog`).
const PROGRAM: &str = "prog";

/// Runs this tool's own (static) executable from a real `ramfs-9p --scheme NAME` on the
/// real Redox kernel: twice (reporting whether the kernel's image cache served the second
/// run, never failing when the kernel is unpatched), then closes the root and requires
/// ramfs-9p to exit 0; and closes the root while the program still runs. Prints one line
/// per case (`ok`, `FAIL`, or `n/a` for a hosted case that cannot exist on Redox), then
/// `N passed, M failed`; exits 0 only if every case passed, 1 if one failed, 2 for a usage
/// problem. Built here only as a type-check: this has not run on Redox.
#[derive(Debug, Parser)]
#[command(name = "exec-from-ramfs", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    /// The scheme name each case's ramfs-9p serves (the case's number is appended).
    #[arg(long, value_name = "NAME", default_value = "regress-exec")]
    scheme: String,

    /// Show ramfs-9p's own log on standard error.
    #[arg(long)]
    server_log: bool,
}

/// What every case needs.
struct Env {
    ramfs: PathBuf,
    program: Vec<u8>,
    scheme: String,
    deadline: Duration,
    server_log: bool,
}

/// A scheme name used by no other case of this run.
fn scheme_name(base: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{base}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Env {
    /// A ramfs-9p holding the program at `NAME:/prog`.
    fn setup(&self) -> Result<SchemeRamfs, Failure> {
        let server = SchemeRamfs::start(&self.ramfs, &scheme_name(&self.scheme), self.server_log)?;
        server.write_new_file(PROGRAM, &self.program)?;
        Ok(server)
    }

    /// Runs the program from the scheme in `mode`; the fd is closed once exec has it.
    fn run(&self, server: &SchemeRamfs, mode: Mode) -> Result<Running, Failure> {
        let fd = server.open(PROGRAM, flag::O_RDONLY)?;
        let running = Running::start(fd, mode);
        let _ = libredox::call::close(fd);
        running
    }

    /// Runs it to its end, which must be exit 0.
    fn run_to_end(&self, server: &SchemeRamfs) -> Result<(), Failure> {
        self.run(server, Mode::Exit)?
            .expect_exit_zero(self.deadline)
    }

    /// What the kernel says to MAP_IMAGE on the program's file.
    fn probe(&self, server: &SchemeRamfs) -> Result<ImageCache, Failure> {
        let fd = server.open(PROGRAM, flag::O_RDONLY)?;
        let found = ImageCache::probe(fd);
        let _ = libredox::call::close(fd);
        Ok(found)
    }
}

// ---- the cases ----

/// The program copied into the scheme runs from it and exits 0, twice; the tool reports
/// whether the second run could be served by the kernel's image cache.
fn warm_exec(env: &Env) -> Result<(), Failure> {
    let mut server = env.setup()?;
    env.run_to_end(&server)?;
    env.run_to_end(&server)?;
    let found = env.probe(&server)?;
    eprintln!(
        "    two runs from {}:/{PROGRAM} exited 0; {}",
        server.name(),
        found.describe()
    );
    server.close_root()?;
    server.expect_exit_zero(env.deadline, "after the runs and the root's close")
}

/// After the program exits and the root is closed, ramfs-9p exits 0 within the deadline:
/// nothing the kernel caches of the binary holds the daemon (the 2014 bug).
fn exits_after_exit_and_unmount(env: &Env) -> Result<(), Failure> {
    let mut server = env.setup()?;
    env.run_to_end(&server)?;
    server.expect_running("the tool still holds its root")?;
    server.close_root()?;
    server.expect_exit_zero(
        env.deadline,
        "after the program exited and the root was closed",
    )
}

/// Closing the root while a process runs the binary: with the image cache the kernel still
/// maps the binary from ramfs-9p, which must stay until the process exits and then exit 0;
/// an unpatched kernel copied the binary at exec, so nothing holds the daemon and its exit
/// at the root's close is right (reported, not failed).
fn busy_unmount(env: &Env) -> Result<(), Failure> {
    let mut server = env.setup()?;
    let found = env.probe(&server)?;
    let mut running = env.run(&server, Mode::Hold)?;
    server.close_root()?;
    // The daemon needs a moment to see the close; a daemon that stays that long is held.
    let held = server.still_running_after(env.deadline.min(Duration::from_secs(2)))?;
    regress::ensure!(
        running.running()?,
        "the program (pid {}) ended before it was let go",
        running.pid()
    );
    match (held, found) {
        (true, _) => eprintln!(
            "    ramfs-9p stayed while the program ran ({})",
            found.describe()
        ),
        (false, ImageCache::Present) => {
            return Err(Failure::Expectation(format!(
                "ramfs-9p exited while a process still ran its binary, although the kernel \
                 maps executables through its image cache ({})",
                found.describe()
            )))
        }
        (false, _) => eprintln!(
            "    ramfs-9p exited at the root's close while the program ran: {}; nothing held \
             it, which is right for a kernel that copies",
            found.describe()
        ),
    }
    running.release();
    running.expect_exit_zero(env.deadline)?;
    server.expect_exit_zero(env.deadline, "after the program exited")
}

const CASES: &[Case<Env>] = &[
    ("warm-exec: the program runs twice from NAME:/prog; reports whether the kernel's image cache served the second run (MAP_IMAGE), never failing on an unpatched kernel", warm_exec),
    ("busy-unmount: closing the root while the program runs leaves ramfs-9p running on a kernel that maps the binary; the program's exit lets it exit 0", busy_unmount),
    ("2014-bug: after the program exits and the root is closed, ramfs-9p exits 0", exits_after_exit_and_unmount),
];

const ABSENT: &[Absent] = &[
    ("pages-equal-file: every text and data page touched equals the file's bytes", "the tool cannot read another process's pages on Redox; a program that runs at all (warm-exec) ran the right bytes"),
    ("concurrent-execs: concurrent execs of one file share one image and its pages", "the kernel exposes neither its images nor which frames a process maps"),
    ("second-namespace: a namespace still holding the mount keeps ramfs until it lets go", "a scheme registered in a namespace is held by the namespace manager forever (it has no unregister), so ramfs-9p could never exit"),
    ("remount-same-qid: a new ramfs with a different file of the same qid runs the new bytes, never stale pages", "the program is this tool's own executable; a changed copy would not run, and the kernel exposes no image identity to compare"),
    ("changed-in-place: a file changed in place (new qid.vers) gets a new image", "as remount-same-qid: no runnable variant and no image count to read"),
];

pub fn main() -> ExitCode {
    if let Some(status) = run_as_program_if_asked() {
        return status;
    }
    init_logging("warn");
    let cli = Cli::parse();
    // Every hosted case is run here or printed as n/a: a list out of step is the tool's bug.
    if let Err(why) = regress::catalogue::covers(regress::catalogue::EXEC_FROM_RAMFS, CASES, ABSENT)
    {
        eprintln!("exec-from-ramfs: the Redox case list is out of step with the catalogue: {why}");
        return ExitCode::from(USAGE_ERROR);
    }
    let ramfs = match cli.common.ramfs_path() {
        Ok(path) => path,
        Err(why) => {
            eprintln!("exec-from-ramfs: {why}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let program = match std::env::current_exe().and_then(std::fs::read) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("exec-from-ramfs: cannot read this executable to run it: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    eprintln!(
        "exec-from-ramfs (Redox, real kernel): {} --scheme {}-…; program: this executable ({} bytes)",
        ramfs.display(),
        cli.scheme,
        program.len()
    );
    let env = Env {
        ramfs,
        program,
        scheme: cli.scheme,
        deadline: cli.common.deadline(),
        server_log: cli.server_log,
    };
    Runner::run_selected_with_absent(&cli.common, env, CASES, ABSENT)
}
