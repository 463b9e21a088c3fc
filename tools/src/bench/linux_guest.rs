//! The Linux-client figure: Linux's v9fs in a QEMU guest against ramfs, once per set of
//! mount options, to rank the options.
//!
//! The guest runs under software emulation (TCG), where one 9P round trip costs it
//! milliseconds, so these figures say which mount options serve a Linux client best
//! (msize, cache mode) and nothing about servers: servers are compared with this
//! program's own client (`compare`). Each case starts a fresh `ramfs --single` on its
//! own socket, boots the guest with `ramfs/tests/v9fs/run-guest.sh -r MIB` (its
//! `throughput.sh`: a 1 MiB-block write and read, a 4 KiB-block read, create+stat+remove
//! of small files), reads the guest's `RAMFS-RATE` lines and requires ramfs to exit 0
//! once the guest has unmounted.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tracing::info;

use super::servers::Scratch;

/// What one guest run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuestRates {
    /// Sequential write, 1 MiB blocks, then `sync`, MiB/s.
    pub write_1m: f64,
    /// Sequential read, 1 MiB blocks, page cache dropped first, MiB/s.
    pub read_1m: f64,
    /// Sequential read, 4 KiB blocks, page cache dropped first, MiB/s.
    pub read_4k: f64,
    /// Files created, stated and removed per second.
    pub create_stat_remove: f64,
}

/// Why a case has no figures.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("ramfs did not listen on {0} in time")]
    NoSocket(PathBuf),
    #[error("the guest run failed (run-guest.sh exit {status}); last lines:\n{tail}")]
    Guest { status: i32, tail: String },
    #[error("the guest printed no {0} rate")]
    MissingRate(&'static str),
    #[error("the guest printed a rate that is no number: {0:?}")]
    BadRate(String),
    #[error("ramfs did not exit 0 after the guest unmounted: {0}")]
    ServerExit(String),
}

/// The rate names `throughput.sh` prints, in [`GuestRates`] order.
const RATE_NAMES: [&str; 4] = ["write-1M", "read-1M", "read-4k", "create-stat-remove"];

/// Reads the `RAMFS-RATE NAME VALUE UNIT` lines of a guest's console.
pub fn parse_rates(console: &str) -> Result<GuestRates, GuestError> {
    let mut found = [None; 4];
    for line in console.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("RAMFS-RATE") {
            continue;
        }
        let (Some(name), Some(value)) = (words.next(), words.next()) else {
            return Err(GuestError::BadRate(line.to_string()));
        };
        let Some(slot) = RATE_NAMES.iter().position(|n| *n == name) else {
            continue;
        };
        let value: f64 = value
            .parse()
            .map_err(|_| GuestError::BadRate(line.to_string()))?;
        if !value.is_finite() || value <= 0.0 {
            return Err(GuestError::BadRate(line.to_string()));
        }
        found[slot] = Some(value);
    }
    let get = |i: usize| found[i].ok_or(GuestError::MissingRate(RATE_NAMES[i]));
    Ok(GuestRates {
        write_1m: get(0)?,
        read_1m: get(1)?,
        read_4k: get(2)?,
        create_stat_remove: get(3)?,
    })
}

/// What every case of a ranking shares.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// The ramfs binary.
    pub ramfs: &'a Path,
    /// `ramfs/tests/v9fs/run-guest.sh`.
    pub script: &'a Path,
    /// `9p2000` or `9p2000.L`.
    pub version: &'a str,
    /// MiB written and read.
    pub mib: u32,
    /// Bound on one guest run.
    pub timeout: Duration,
}

/// One guest run: a plan and one set of mount options (`msize=…,cache=…`, empty for the
/// kernel's defaults).
#[derive(Debug, Clone)]
pub struct GuestCase<'a> {
    pub plan: &'a Plan<'a>,
    pub options: &'a str,
}

/// Kills a child that is still running when dropped (an early return).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

impl GuestCase<'_> {
    /// Starts ramfs, runs the guest against it, and returns what the guest measured.
    pub fn run(&self, scratch: &Scratch, label: &str) -> Result<GuestRates, GuestError> {
        let socket = scratch.path().join(format!("guest-{label}.sock"));
        let log = scratch.path().join(format!("guest-{label}.log"));
        let log_file = std::fs::File::create(&log).map_err(|source| GuestError::Io {
            what: "ramfs's log",
            source,
        })?;
        let plan = self.plan;
        let server = Command::new(plan.ramfs)
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .arg("--single")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|source| GuestError::Io {
                what: "starting ramfs",
                source,
            })?;
        let mut server = Reaped(server);
        let start = Instant::now();
        while !socket.exists() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(GuestError::NoSocket(socket));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut guest = Command::new("bash");
        guest
            .arg(plan.script)
            .args(["-v", plan.version, "-r", &plan.mib.to_string()])
            .args(["-T", &plan.timeout.as_secs().max(1).to_string()]);
        if !self.options.is_empty() {
            guest.args(["-o", self.options]);
        }
        let out = guest
            .arg(format!("unix:{}", socket.display()))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|source| GuestError::Io {
                what: "running the guest",
                source,
            })?;
        let console = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let tail: Vec<&str> = console.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(GuestError::Guest {
                status: out.status.code().unwrap_or(-1),
                tail: tail.join("\n"),
            });
        }
        let rates = parse_rates(&console)?;
        let exit_by = Instant::now() + Duration::from_secs(30);
        loop {
            match server.0.try_wait() {
                Ok(Some(status)) if status.success() => break,
                Ok(Some(status)) => return Err(GuestError::ServerExit(status.to_string())),
                Ok(None) if Instant::now() > exit_by => {
                    return Err(GuestError::ServerExit("still running after 30 s".into()))
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(source) => {
                    return Err(GuestError::Io {
                        what: "waiting for ramfs",
                        source,
                    })
                }
            }
        }
        info!(options = self.options, ?rates, "guest case measured");
        Ok(rates)
    }
}

/// The option sets `ninep-bench linux` ranks when none are given.
pub const DEFAULT_OPTION_SETS: [&str; 5] = [
    "msize=131072",
    "msize=524288",
    "msize=1048576",
    "msize=1048576,cache=loose",
    "msize=1048576,cache=mmap",
];

/// A markdown table of the cases, best first by the geometric mean of their four figures
/// relative to the first case (the first case is 1.00).
pub fn ranking(cases: &[(String, GuestRates)]) -> String {
    let mut out = String::new();
    let Some((_, base)) = cases.first() else {
        return out;
    };
    let score = |r: &GuestRates| {
        let parts = [
            r.write_1m / base.write_1m,
            r.read_1m / base.read_1m,
            r.read_4k / base.read_4k,
            r.create_stat_remove / base.create_stat_remove,
        ];
        (parts.iter().map(|p| p.ln()).sum::<f64>() / parts.len() as f64).exp()
    };
    let mut ranked: Vec<(&String, &GuestRates, f64)> =
        cases.iter().map(|(o, r)| (o, r, score(r))).collect();
    ranked.sort_by(|a, b| b.2.total_cmp(&a.2));
    let _ = writeln!(
        out,
        "| rank | mount options | write 1M MiB/s | read 1M MiB/s | read 4k MiB/s | create+stat+remove /s | score vs `{}` |",
        cases[0].0
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for (i, (options, r, s)) in ranked.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | `{}` | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
            i + 1,
            options,
            r.write_1m,
            r.read_1m,
            r.read_4k,
            r.create_stat_remove,
            s
        );
    }
    out
}

/// Runs one guest per option set, prints progress and the ranking, and writes it to
/// `out/linux-guest.md`. True when every case was measured.
pub fn rank_options(plan: &Plan<'_>, option_sets: &[String], out: &Path) -> bool {
    let scratch = match Scratch::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ninep-bench linux: cannot make a scratch directory: {e}");
            return false;
        }
    };
    let mut measured = Vec::new();
    let mut ok = true;
    for (i, options) in option_sets.iter().enumerate() {
        eprintln!(
            "ninep-bench linux: case {}/{}: {} {}",
            i + 1,
            option_sets.len(),
            plan.version,
            if options.is_empty() {
                "(defaults)"
            } else {
                options
            }
        );
        let case = GuestCase { plan, options };
        match case.run(&scratch, &i.to_string()) {
            Ok(rates) => measured.push((options.clone(), rates)),
            Err(e) => {
                eprintln!("ninep-bench linux: {options}: {e}");
                ok = false;
            }
        }
    }
    if measured.is_empty() {
        return false;
    }
    let mut report = format!(
        "# Linux v9fs (QEMU, software emulation) against ramfs, {} MiB, {}\n\n\
         These figures rank mount options; they say nothing about servers (one 9P round \
         trip costs the emulated guest milliseconds).\n\n",
        plan.mib, plan.version
    );
    report.push_str(&ranking(&measured));
    print!("{report}");
    if let Err(e) = std::fs::create_dir_all(out)
        .and_then(|_| std::fs::write(out.join("linux-guest.md"), &report))
    {
        eprintln!("ninep-bench linux: cannot write {}: {e}", out.display());
        ok = false;
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "RAMFS-GUEST up\nRAMFS-RATE write-1M 23.52 MiB/s\n\
        RAMFS-RATE read-1M 33.33 MiB/s\nnoise RAMFS-RATE read-1M 1 x\n\
        RAMFS-RATE read-4k 7.84 MiB/s\nRAMFS-RATE create-stat-remove 50.12 files/s\n\
        RAMFS-STEPS ok=4 fail=0\n";

    #[test]
    fn reads_the_four_rates() {
        let r = parse_rates(CONSOLE).unwrap();
        assert_eq!(r.write_1m, 23.52);
        assert_eq!(r.read_1m, 33.33);
        assert_eq!(r.read_4k, 7.84);
        assert_eq!(r.create_stat_remove, 50.12);
    }

    #[test]
    fn a_missing_or_broken_rate_is_an_error() {
        let without = CONSOLE.replace("RAMFS-RATE read-4k 7.84 MiB/s\n", "");
        assert!(matches!(
            parse_rates(&without),
            Err(GuestError::MissingRate("read-4k"))
        ));
        let broken = CONSOLE.replace("7.84", "fast");
        assert!(matches!(parse_rates(&broken), Err(GuestError::BadRate(_))));
        let zero = CONSOLE.replace("7.84", "0");
        assert!(matches!(parse_rates(&zero), Err(GuestError::BadRate(_))));
    }

    #[test]
    fn the_ranking_puts_the_best_set_first_and_scores_the_first_at_one() {
        let base = parse_rates(CONSOLE).unwrap();
        let twice = GuestRates {
            write_1m: base.write_1m * 2.0,
            read_1m: base.read_1m * 2.0,
            read_4k: base.read_4k * 2.0,
            create_stat_remove: base.create_stat_remove * 2.0,
        };
        let table = ranking(&[("a".into(), base), ("b".into(), twice)]);
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert!(rows[0].starts_with("| 1 | `b` |"), "{table}");
        assert!(rows[0].ends_with("| 2.00 |"), "{table}");
        assert!(rows[1].starts_with("| 2 | `a` |"), "{table}");
        assert!(rows[1].ends_with("| 1.00 |"), "{table}");
    }
}
