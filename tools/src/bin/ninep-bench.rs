//! `ninep-bench`: measure 9P servers side by side and print the ratios.
//!
//! ```text
//! ninep-bench compare                      # start ramfs, raw, diod, p9-peer, unpfs; measure all
//! ninep-bench compare --quick              # a smoke run of a few seconds
//! ninep-bench run --server a=unix:/tmp/a.sock --server b=tcp:127.0.0.1:564
//! ninep-bench raw-server --listen unix:/tmp/raw.sock   # the raw baseline, alone
//! ninep-bench linux                        # Linux's v9fs in QEMU: rank mount options
//! ```
//!
//! Exit status: 0 when every server was measured in every cell, 1 when a server could
//! not be started or reached or a cell failed, 2 for a usage error.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use ninep::Dialect;
use tools::bench::addr::Addr;
use tools::bench::matrix;
use tools::bench::pipeline::Limit;
use tools::bench::raw::Listener;
use tools::bench::report::{Report, Skipped};
use tools::bench::servers::{self, Scratch, ServerCommand, Servers};
use tools::bench::session::{Settings, Target};
use tools::bench::workload::Workload;
use tools::bench::{chart, linux_guest, runner, signals};
use tracing::{info, warn};

/// A 9P client load generator: operations per second and MB/s of 9P servers, measured
/// side by side, with the ratio of the first server to each of the others.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Measure servers that are already running; ratios are the first server over each
    /// of the others.
    Run {
        /// A server: NAME=ADDR[,aname=A][,dialect=9P2000|9P2000.L][,uid=N][,uname=U][,baseline],
        /// ADDR being unix:PATH or tcp:HOST:PORT; `baseline` marks a raw-server. Give it
        /// once per server.
        #[arg(long = "server", value_name = "SPEC", required = true, value_parser = parse_server)]
        servers: Vec<Target>,
        #[command(flatten)]
        common: Common,
    },
    /// Start ramfs, the raw baseline (this program's raw-server), diod, the p9-peer and
    /// unpfs, each on its own socket, and measure them all (ratios are ramfs/server).
    Compare {
        /// The ramfs binary [default: `ramfs` next to this program].
        #[arg(long, value_name = "PATH")]
        ramfs: Option<PathBuf>,
        /// The diod binary [default: `diod` on $PATH or in /usr/sbin].
        #[arg(long, value_name = "PATH")]
        diod: Option<PathBuf>,
        /// The p9-peer binary [default: `p9-peer` next to this program].
        #[arg(long, value_name = "PATH")]
        p9_peer: Option<PathBuf>,
        /// The unpfs binary [default: `unpfs` on $PATH or in ~/.cargo/bin].
        #[arg(long, value_name = "PATH")]
        unpfs: Option<PathBuf>,
        /// Leave a server out (may be given more than once).
        #[arg(long, value_name = "SERVER")]
        without: Vec<ServerKind>,
        /// ramfs's memory limit.
        #[arg(long, value_name = "BYTES", default_value_t = 2 << 30)]
        ramfs_max_memory: u64,
        /// How long a server may take to start listening.
        #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
        start_timeout: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Serve 9P as the raw baseline that `compare` measures as `raw`: every request is
    /// answered at once with a well-formed reply of a file server's size, and no file
    /// system work is done. Runs until killed.
    RawServer {
        /// Where to listen: unix:PATH or tcp:HOST:PORT.
        #[arg(long, value_name = "ADDR")]
        listen: Addr,
        /// The largest msize agreed to.
        #[arg(long, value_name = "BYTES", default_value_t = ninep::MAX_MSIZE,
              value_parser = clap::value_parser!(u32).range(i64::from(ninep::MIN_MSIZE)..=i64::from(ninep::MAX_MSIZE)))]
        max_msize: u32,
    },
    /// Linux's v9fs client in a QEMU guest (software emulation) against ramfs, once per
    /// set of mount options: a figure that ranks mount options, not servers.
    Linux {
        /// The ramfs binary [default: `ramfs` next to this program].
        #[arg(long, value_name = "PATH")]
        ramfs: Option<PathBuf>,
        /// ramfs's guest runner [default: this source tree's ramfs/tests/v9fs/run-guest.sh].
        #[arg(long, value_name = "PATH")]
        guest_script: Option<PathBuf>,
        /// A set of mount options, e.g. `msize=1048576,cache=loose` (repeat for each set;
        /// the first is the reference of the scores) [default: five msize and cache sets].
        #[arg(long = "options", value_name = "OPTS")]
        option_sets: Vec<String>,
        /// MiB the guest writes and reads.
        #[arg(long, value_name = "MIB", default_value_t = 16,
              value_parser = clap::value_parser!(u32).range(1..=1024))]
        mib: u32,
        /// The 9P version the guest mounts.
        #[arg(long, default_value = "9p2000.L", value_parser = ["9p2000", "9p2000.L"])]
        version: String,
        /// Bound on each guest run, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 300,
              value_parser = clap::value_parser!(u64).range(10..=3600))]
        timeout: u64,
        /// Where to write linux-guest.md.
        #[arg(long, value_name = "DIR", default_value = "bench-results")]
        out: PathBuf,
    },
}

/// The servers `compare` knows how to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
enum ServerKind {
    Ramfs,
    /// The raw baseline: `ninep-bench raw-server`, no file system work.
    Raw,
    /// ramfs again, measured in 9P2000 instead of 9P2000.L (an extra column).
    #[value(name = "ramfs-9p2000")]
    Ramfs9p2000,
    Diod,
    P9,
    Unpfs,
}

/// Options of both commands.
#[derive(Debug, clap::Args)]
struct Common {
    /// Measured seconds per cell and round.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.3, conflicts_with_all = ["ops", "quick"])]
    seconds: f64,
    /// How many times to run each cell on every server; each figure is the median of
    /// its rounds.
    #[arg(long, value_name = "N", default_value_t = 5, conflicts_with = "quick",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Unmeasured seconds before each cell's measurement.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.1, conflicts_with_all = ["ops", "quick"])]
    warmup: f64,
    /// Run each cell for exactly this many operations instead of a time.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    ops: Option<u64>,
    /// A smoke run: one round of 0.1 s per cell, a 4 MiB stream file.
    #[arg(long)]
    quick: bool,
    /// Size of the file the streams read and write, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64, conflicts_with = "quick",
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    file_mib: u64,
    /// The msizes of the streams (suffix K or M for KiB, MiB).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_size,
          default_values = ["8K", "64K", "1M"])]
    msizes: Vec<u32>,
    /// Requests in flight on each connection.
    #[arg(long, value_name = "LIST", value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(1..=4096), default_values = ["1", "16"])]
    depths: Vec<u16>,
    /// Connections at once: 1 runs every depth; a larger number runs every workload
    /// on that many connections at once (each on its own files) at the deepest depth.
    #[arg(long, value_name = "LIST", value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(1..=64), default_values = ["1", "8"])]
    connections: Vec<u16>,
    /// Only these workloads (e.g. `read,stat`) [default: every workload]. For profiling
    /// one cell of a server.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// Where to write results.json, results.csv, results.md and chart.svg.
    #[arg(long, value_name = "DIR", default_value = "bench-results")]
    out: PathBuf,
    /// Seconds to wait for any reply before giving up on a server.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    stall: f64,
}

impl Common {
    fn settings(&self) -> Settings {
        let (limit, file_len) = if self.quick {
            (
                Limit::Time {
                    warmup: Duration::from_millis(20),
                    measure: Duration::from_millis(100),
                },
                4 << 20,
            )
        } else if let Some(n) = self.ops {
            (Limit::Ops(n), self.file_mib << 20)
        } else {
            (
                Limit::Time {
                    warmup: Duration::from_secs_f64(self.warmup),
                    measure: Duration::from_secs_f64(self.seconds),
                },
                self.file_mib << 20,
            )
        };
        Settings {
            limit,
            file_len,
            stall: Duration::from_secs_f64(self.stall),
            connections: self.connections.iter().copied().max().unwrap_or(1),
        }
    }

    fn check(&self) {
        for (name, v) in [
            ("--seconds", self.seconds),
            ("--warmup", self.warmup),
            ("--stall", self.stall),
        ] {
            if !(v.is_finite() && (0.0..1e6).contains(&v)) || (name != "--warmup" && v <= 0.0) {
                usage_error(&format!("{name} {v} is not a sensible number of seconds"));
            }
        }
        if self.msizes.is_empty() || self.depths.is_empty() || self.connections.is_empty() {
            usage_error("--msizes, --depths and --connections need at least one value each");
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // The raw server is measured, not measuring: a debug build of it is the bench's
    // business, and the bench warns.
    if cfg!(debug_assertions) && !matches!(cli.command, Cmd::RawServer { .. }) {
        eprintln!(
            "ninep-bench: this is a debug build; for figures worth comparing build the bench \
             and the servers with --release"
        );
    }
    let ok = match cli.command {
        Cmd::Run { servers, common } => {
            common.check();
            let mut names = HashSet::new();
            for s in &servers {
                if !names.insert(s.name.clone()) {
                    usage_error(&format!("server name {:?} given twice", s.name));
                }
            }
            let report = measure(&servers, &common, Vec::new());
            finish(&report, &common.out)
        }
        Cmd::RawServer { listen, max_msize } => return raw_server(&listen, max_msize),
        Cmd::Linux {
            ramfs,
            guest_script,
            option_sets,
            mib,
            version,
            timeout,
            out,
        } => {
            let Some(ramfs) = ramfs.or_else(|| servers::sibling_binary("ramfs")) else {
                usage_error("no ramfs next to this program: build it or give --ramfs");
            };
            let script = guest_script.unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../ramfs/tests/v9fs/run-guest.sh")
            });
            if !script.is_file() {
                usage_error(&format!("no guest runner at {}", script.display()));
            }
            let sets: Vec<String> = if option_sets.is_empty() {
                linux_guest::DEFAULT_OPTION_SETS.map(String::from).to_vec()
            } else {
                option_sets
            };
            let plan = linux_guest::Plan {
                ramfs: &ramfs,
                script: &script,
                version: &version,
                mib,
                timeout: Duration::from_secs(timeout),
            };
            linux_guest::rank_options(&plan, &sets, &out)
        }
        Cmd::Compare {
            ramfs,
            diod,
            p9_peer,
            unpfs,
            without,
            ramfs_max_memory,
            start_timeout,
            common,
        } => {
            common.check();
            if !(start_timeout.is_finite() && start_timeout > 0.0) {
                usage_error("--start-timeout must be a positive number of seconds");
            }
            let binaries = Binaries {
                ramfs,
                diod,
                p9_peer,
                unpfs,
            };
            compare(
                &binaries,
                &without,
                ramfs_max_memory,
                Duration::from_secs_f64(start_timeout),
                &common,
            )
        }
    };
    signals::let_termination_finish();
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Serves as the raw baseline until accepting fails (it is killed, normally).
fn raw_server(listen: &Addr, max_msize: u32) -> ExitCode {
    let listener = match Listener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ninep-bench raw-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("ninep-bench raw-server: listening on {listen}");
    let e = listener.serve(max_msize);
    eprintln!("ninep-bench raw-server: {e}");
    ExitCode::FAILURE
}

/// Exits with status 2 and clap's usage message.
fn usage_error(msg: &str) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::ValueValidation, msg)
        .exit()
}

/// The binaries given on the command line.
struct Binaries {
    ramfs: Option<PathBuf>,
    diod: Option<PathBuf>,
    p9_peer: Option<PathBuf>,
    unpfs: Option<PathBuf>,
}

/// A peer server `compare` may start, and where its binary is.
struct PeerSpec {
    kind: ServerKind,
    name: &'static str,
    /// From the command line.
    given: Option<PathBuf>,
    /// Where it was found when not given.
    found: Option<PathBuf>,
    /// How a person gets it.
    install: &'static str,
}

/// Starts the servers, measures them, stops them; true when all went well.
fn compare(
    binaries: &Binaries,
    without: &[ServerKind],
    ramfs_max_memory: u64,
    start_timeout: Duration,
    common: &Common,
) -> bool {
    let wanted = |k: ServerKind| !without.contains(&k);
    let scratch = match Scratch::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ninep-bench: cannot make a scratch directory: {e}");
            return false;
        }
    };
    let logs = common.out.join("logs");
    if let Err(e) = std::fs::create_dir_all(&logs) {
        eprintln!("ninep-bench: cannot make {}: {e}", logs.display());
        return false;
    }

    let mut ok = true;
    let mut skipped = Vec::new();
    let mut commands: Vec<ServerCommand> = Vec::new();
    if wanted(ServerKind::Ramfs) {
        match binaries
            .ramfs
            .clone()
            .or_else(|| servers::sibling_binary("ramfs"))
        {
            Some(p) => commands.push(servers::ramfs(&p, &scratch, ramfs_max_memory)),
            None => {
                eprintln!(
                    "ninep-bench: no ramfs binary next to this program; build it \
                     (cargo build -p ramfs), pass --ramfs PATH, or --without ramfs"
                );
                ok = false;
            }
        }
    }
    if wanted(ServerKind::Raw) {
        // The raw baseline is this very program, so it is always there.
        match std::env::current_exe() {
            Ok(me) => commands.push(servers::raw(&me, &scratch)),
            Err(e) => {
                let reason = format!("cannot find this program to start it: {e}");
                eprintln!("ninep-bench: raw: {reason}; measuring without it");
                skipped.push(Skipped {
                    name: "raw".into(),
                    reason,
                });
            }
        }
    }
    let peers = [
        PeerSpec {
            kind: ServerKind::Diod,
            name: "diod",
            given: binaries.diod.clone(),
            found: servers::on_path("diod"),
            install: "apt-get install diod",
        },
        PeerSpec {
            kind: ServerKind::P9,
            name: "p9",
            given: binaries.p9_peer.clone(),
            found: servers::sibling_binary("p9-peer"),
            install: "cargo build -p p9-peer",
        },
        PeerSpec {
            kind: ServerKind::Unpfs,
            name: "unpfs",
            given: binaries.unpfs.clone(),
            found: servers::on_path("unpfs").or_else(|| servers::cargo_installed("unpfs")),
            install: "cargo install unpfs",
        },
    ];
    for peer in peers {
        let PeerSpec {
            kind,
            name,
            given,
            found,
            install,
        } = peer;
        if !wanted(kind) {
            continue;
        }
        let Some(program) = given.or(found) else {
            let reason = format!("not found (install it: {install})");
            eprintln!("ninep-bench: {name}: {reason}; measuring without it");
            skipped.push(Skipped {
                name: name.into(),
                reason,
            });
            continue;
        };
        let cmd = match kind {
            ServerKind::Diod => servers::diod(&program, &scratch),
            ServerKind::P9 => servers::p9(&program, &scratch),
            _ => servers::unpfs(&program, &scratch),
        };
        match cmd {
            Ok(c) => commands.push(c),
            Err(e) => {
                eprintln!("ninep-bench: {name}: cannot make its export directory: {e}");
                ok = false;
            }
        }
    }

    let running = Servers::default();
    stop_on_signals(&running, &scratch);
    let mut targets: Vec<Target> = Vec::new();
    for cmd in &commands {
        eprintln!("starting {} ({})", cmd.name, cmd.program.display());
        let log = logs.join(format!("{}.log", cmd.name));
        match running.start(cmd, &log, start_timeout) {
            Ok(pid) => {
                eprintln!("{} is listening (pid {pid})", cmd.name);
                targets.push(cmd.target.clone());
            }
            Err(e) => {
                eprintln!("ninep-bench: {e}");
                skipped.push(Skipped {
                    name: cmd.name.clone(),
                    reason: e.to_string(),
                });
                ok = false;
            }
        }
    }
    if wanted(ServerKind::Ramfs9p2000) {
        if let Some(ramfs) = targets.iter().find(|t| t.name == "ramfs") {
            targets.push(Target {
                name: "ramfs-9p2000".into(),
                dialect: Dialect::P2000,
                ..ramfs.clone()
            });
        }
    }
    if targets.is_empty() {
        eprintln!("ninep-bench: no server to measure");
        return false;
    }

    let report = measure(&targets, common, skipped);
    for died in running.died() {
        eprintln!(
            "ninep-bench: {} died during the run ({}); its log ends with:\n{}",
            died.name, died.status, died.log_tail
        );
        ok = false;
    }
    // Stop the servers before their scratch directory goes.
    running.stop();
    drop(scratch);
    finish(&report, &common.out) && ok
}

/// Has SIGINT or SIGTERM, sent to the bench alone, end `servers` and remove `scratch`
/// before the bench ends.
fn stop_on_signals(servers: &Servers, scratch: &Scratch) {
    let stopper = servers.stopper();
    let scratch_dir = scratch.path().to_path_buf();
    let installed = signals::cleanup_on_termination(move || {
        stopper.stop();
        match std::fs::remove_dir_all(&scratch_dir) {
            // Gone already when the signal comes after the run.
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                warn!("could not remove {}: {e}", scratch_dir.display())
            }
            _ => {}
        }
    });
    if let Err(e) = installed {
        warn!("no signal handling: a signal to the bench alone leaves its servers running: {e}");
    }
}

fn measure(targets: &[Target], common: &Common, skipped: Vec<Skipped>) -> Report {
    let settings = common.settings();
    let mut cells = matrix::cells(&common.msizes, &common.depths, &common.connections);
    matrix::keep_workloads(&mut cells, &common.workloads);
    eprintln!(
        "measuring {} figures on {} servers: {}",
        cells.len(),
        targets.len(),
        targets
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut progress = |line: &str| eprintln!("{line}");
    let rounds = if common.quick { 1 } else { common.rounds };
    let mut report = runner::run(targets, &cells, &settings, rounds, &mut progress);
    report.skipped = skipped;
    report
}

/// Prints the table and writes the results; true when every cell was measured.
fn finish(report: &Report, out: &Path) -> bool {
    print!("{}", report.text_table());
    let written = write_results(report, out);
    match &written {
        Ok(()) => eprintln!(
            "results in {}: results.json, results.csv, results.md, chart.svg",
            out.display()
        ),
        Err(e) => eprintln!(
            "ninep-bench: cannot write results to {}: {e}",
            out.display()
        ),
    }
    written.is_ok() && report.all_ok()
}

fn write_results(report: &Report, out: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(out.join("results.json"), json + "\n")?;
    std::fs::write(out.join("results.csv"), report.csv())?;
    std::fs::write(out.join("results.md"), report.markdown_table())?;
    std::fs::write(out.join("chart.svg"), chart::svg(report))?;
    info!("wrote results to {}", out.display());
    Ok(())
}

/// `8192`, `8K`, `64k`, `1M`.
fn parse_size(s: &str) -> Result<u32, String> {
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1u64 << 20),
        _ => (s, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 8192, 64K or 1M"))?;
    let bytes = n.saturating_mul(mult);
    if !(u64::from(ninep::MIN_MSIZE)..=u64::from(ninep::MAX_MSIZE)).contains(&bytes) {
        return Err(format!(
            "msize {bytes} is outside {}..={}",
            ninep::MIN_MSIZE,
            ninep::MAX_MSIZE
        ));
    }
    Ok(bytes as u32)
}

/// NAME=ADDR[,aname=A][,dialect=D][,uid=N][,uname=U][,baseline]
fn parse_server(s: &str) -> Result<Target, String> {
    let (name, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=ADDR"))?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "server name {name:?} must be letters, digits, '.', '_' or '-'"
        ));
    }
    let mut parts = rest.split(',');
    let addr: Addr = parts
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|e| format!("{e}"))?;
    let (uname, n_uname) = servers::attach_identity();
    let mut target = Target {
        name: name.to_owned(),
        addr,
        dialect: Dialect::L,
        aname: String::new(),
        uname,
        n_uname,
        baseline: false,
    };
    for opt in parts {
        if opt == "baseline" {
            target.baseline = true;
            continue;
        }
        let (key, value) = opt
            .split_once('=')
            .ok_or_else(|| format!("{opt:?} is not KEY=VALUE"))?;
        match key {
            "aname" => target.aname = value.to_owned(),
            "uname" => target.uname = value.to_owned(),
            "uid" => {
                target.n_uname = value
                    .parse()
                    .map_err(|_| format!("uid {value:?} is not a number"))?
            }
            "dialect" => {
                target.dialect = match value.to_ascii_uppercase().as_str() {
                    "9P2000.L" => Dialect::L,
                    "9P2000" => Dialect::P2000,
                    _ => return Err(format!("dialect {value:?} is not 9P2000 or 9P2000.L")),
                }
            }
            _ => return Err(format!("unknown server option {key:?}")),
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_suffixes_and_stay_in_range() {
        assert_eq!(parse_size("8K"), Ok(8192));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("65560"), Ok(65560));
        assert!(parse_size("2M").is_err());
        assert!(parse_size("12").is_err());
        assert!(parse_size("K").is_err());
    }

    #[test]
    fn server_specs_parse_with_options() {
        let t = parse_server("diod=unix:/tmp/d.sock,aname=/srv,dialect=9p2000,uid=7").unwrap();
        assert_eq!(t.name, "diod");
        assert_eq!(t.addr, Addr::Unix("/tmp/d.sock".into()));
        assert_eq!(t.aname, "/srv");
        assert_eq!(t.dialect, Dialect::P2000);
        assert_eq!(t.n_uname, 7);
        assert!(!t.baseline);
        assert!(
            parse_server("raw=unix:/tmp/r.sock,baseline")
                .unwrap()
                .baseline
        );
        assert!(parse_server("no-address").is_err());
        assert!(parse_server("a b=unix:/x").is_err());
        assert!(parse_server("a=unix:/x,color=red").is_err());
        assert!(parse_server("a=unix:/x,dialect=9P1").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
