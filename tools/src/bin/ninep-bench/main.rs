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
//!
//! Here: the command line and what each command does; `compare` starts and stops the
//! servers it measures, `measure` runs the cells and writes the results.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use ninep::Dialect;
use tools::bench::addr::Addr;
use tools::bench::pipeline::Limit;
use tools::bench::raw::Listener;
use tools::bench::servers;
use tools::bench::session::{Settings, Target};
use tools::bench::workload::Workload;
use tools::bench::{linux_guest, signals};

use compare::compare;
use measure::{finish, measure};

mod compare;
mod measure;

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
