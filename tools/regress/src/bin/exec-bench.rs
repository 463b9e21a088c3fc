//! `exec-bench`: a cold and a warm exec of the same binary from a real `ramfs --stdio` in
//! the hosted kernel, side by side: 9P messages sent, bytes read from the server, pages and
//! host frames allocated, and time. Each exec is followed by a touch of every text and
//! data page, as the program would. And, once the mount cache exists, the Treads of the
//! second read of a file on a cached mount (the goal is none).
//!
//! Prints a table with cold/warm ratios (medians over the rounds) and writes it, with a
//! bar drawing, to a file. Timings are reported, never judged.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use hosted::mnt::OpenMode;
use hosted::vm::PAGE_SIZE;
use hosted::{ForkFlags, Kernel, KernelConfig, MountFlags, MountInfo, Pid};
use regress::failure::Context;
use regress::{ensure, CommonArgs, Failure, Program, Ramfs};

/// Measures a cold and a warm exec of one binary from ramfs in the hosted kernel.
#[derive(Debug, Parser)]
#[command(name = "exec-bench", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    /// The static ELF64 executable [default: one built with `gcc -static`, else a static
    /// /bin/busybox].
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,

    /// Rounds (each with a fresh kernel and server); the table shows medians.
    #[arg(long, value_name = "N", default_value_t = 5)]
    rounds: usize,

    /// Where to write the results [default: exec-bench.txt in the target directory, next
    /// to the profile directory of this executable].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
}

/// What one exec (and the touch of every page) cost.
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    messages: u64,
    treads: u64,
    bytes_read: u64,
    pages: u64,
    frames: u64,
    micros: u64,
}

/// A row of the table: its name and how to read it from a cost.
type Metric = (&'static str, fn(&Cost) -> u64);

const METRICS: [Metric; 6] = [
    ("9P messages sent", |c| c.messages),
    ("Treads sent", |c| c.treads),
    ("bytes read from the server", |c| c.bytes_read),
    ("pages allocated (vm)", |c| c.pages),
    ("host frames allocated", |c| c.frames),
    ("time (µs)", |c| c.micros),
];

fn messages(info: &MountInfo) -> (u64, u64, u64) {
    let stats = info.mount.stats();
    (
        stats.sent_by_type.iter().sum(),
        stats.treads(),
        stats.bytes_read,
    )
}

/// Fork, exec and touch every text and data page; the cost measured around it all.
fn exec_once(
    kernel: &Kernel,
    init: Pid,
    mount: &MountInfo,
    program: &Program,
) -> Result<Cost, Failure> {
    let pages = program.pages();
    let before_vm = kernel.statistics();
    let (messages_before, treads_before, bytes_before) = messages(mount);
    let started = Instant::now();
    let pid = kernel.fork(init, ForkFlags::default()).context("fork")?;
    kernel.exec(pid, "/n/ram/prog", &["prog"]).context("exec")?;
    let mut page = vec![0u8; PAGE_SIZE];
    for expected in &pages {
        kernel
            .read_memory(pid, expected.addr, &mut page)
            .context("touch")?;
        ensure!(
            page == expected.bytes,
            "page at {:#x} is wrong",
            expected.addr
        );
    }
    let micros = started.elapsed().as_micros() as u64;
    let after_vm = kernel.statistics();
    let (messages_after, treads_after, bytes_after) = messages(mount);
    kernel.exit(pid, "").context("exit")?;
    Ok(Cost {
        messages: messages_after - messages_before,
        treads: treads_after - treads_before,
        bytes_read: bytes_after - bytes_before,
        pages: after_vm.vm.pages_allocated - before_vm.vm.pages_allocated,
        frames: after_vm.frames.allocated - before_vm.frames.allocated,
        micros,
    })
}

/// One round: a fresh kernel and server, a cold exec, then a warm one.
fn round(ramfs: &std::path::Path, program: &Program) -> Result<(Cost, Cost), Failure> {
    let kernel = Kernel::new(KernelConfig::default()).context("make a kernel")?;
    let init = kernel.spawn();
    let mut server = Ramfs::start(ramfs, false)?;
    let mount = server.mount(&kernel, init, "/n/ram", MountFlags::REPLACE)?;
    write_file(&kernel, init, "/n/ram/prog", &program.bytes)?;
    let cold = exec_once(&kernel, init, &mount, program)?;
    let warm = exec_once(&kernel, init, &mount, program)?;
    Ok((cold, warm))
}

fn write_file(kernel: &Kernel, pid: Pid, path: &str, bytes: &[u8]) -> Result<(), Failure> {
    let fd = kernel
        .create(pid, path, 0o755, OpenMode::WRITE)
        .context(format!("create {path}"))?;
    let mut done = 0;
    while done < bytes.len() {
        let n = kernel.write(pid, fd, &bytes[done..]).context("write")?;
        ensure!(n > 0, "ramfs took no bytes");
        done += n;
    }
    kernel.close(pid, fd).context("close")
}

/// The Treads of the second read of a file on a cached mount, or `None` when the kernel
/// has no mount cache.
fn cached_second_read(ramfs: &std::path::Path) -> Result<Option<u64>, Failure> {
    let kernel = Kernel::new(KernelConfig::default()).context("make a kernel")?;
    if !kernel.has_mount_cache() {
        return Ok(None);
    }
    let init = kernel.spawn();
    let mut server = Ramfs::start(ramfs, false)?;
    let mount = server.mount(&kernel, init, "/n/ram", MountFlags::CACHE)?;
    let contents: Vec<u8> = (0..256 * 1024).map(|i| (i % 253) as u8).collect();
    write_file(&kernel, init, "/n/ram/file", &contents)?;
    let mut treads = Vec::new();
    for _ in 0..2 {
        let fd = kernel
            .open(init, "/n/ram/file", OpenMode::READ)
            .context("open")?;
        let before = mount.mount.stats().treads();
        let mut buf = vec![0u8; contents.len()];
        let mut done = 0;
        while done < buf.len() {
            let n = kernel.read(init, fd, &mut buf[done..]).context("read")?;
            ensure!(n > 0, "the file ended early");
            done += n;
        }
        ensure!(buf == contents, "the cached mount read wrong bytes");
        treads.push(mount.mount.stats().treads() - before);
        kernel.close(init, fd).context("close")?;
    }
    Ok(Some(treads[1]))
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn ratio(cold: u64, warm: u64) -> String {
    if warm == 0 {
        if cold == 0 {
            "1.0".to_string()
        } else {
            "cold only".to_string()
        }
    } else {
        format!("{:.1}", cold as f64 / warm as f64)
    }
}

fn bar(value: u64, scale: u64) -> String {
    let width = if scale == 0 {
        0
    } else {
        (value * 40).div_ceil(scale) as usize
    };
    "#".repeat(width.min(40))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("error"))
        .target(env_logger::Target::Stderr)
        .init();
    let cli = Cli::parse();
    let ramfs = match cli.common.ramfs_path() {
        Ok(path) => path,
        Err(why) => {
            eprintln!("exec-bench: {why}");
            return ExitCode::from(2);
        }
    };
    let program = match Program::choose(cli.binary.as_deref()) {
        Ok(program) => program,
        Err(why) => {
            eprintln!("exec-bench: {why}");
            return ExitCode::from(2);
        }
    };
    let pages = program.pages().len();
    eprintln!(
        "exec-bench: {} ({} bytes, {pages} file pages touched an exec), {} rounds",
        program.origin,
        program.bytes.len(),
        cli.rounds.max(1)
    );
    let mut colds = Vec::new();
    let mut warms = Vec::new();
    for n in 0..cli.rounds.max(1) {
        match round(&ramfs, &program) {
            Ok((cold, warm)) => {
                eprintln!(
                    "  round {n}: cold {} µs, warm {} µs",
                    cold.micros, warm.micros
                );
                colds.push(cold);
                warms.push(warm);
            }
            Err(failure) => {
                eprintln!("exec-bench: round {n}: {failure}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut table = String::new();
    let _ = writeln!(
        table,
        "exec of {} ({} bytes, {pages} text and data pages touched), medians of {} rounds",
        program.origin,
        program.bytes.len(),
        colds.len()
    );
    let _ = writeln!(
        table,
        "{:<28} {:>12} {:>12} {:>10}",
        "", "cold", "warm", "cold/warm"
    );
    let mut drawing = String::new();
    for (name, metric) in METRICS {
        let cold = median(colds.iter().map(metric).collect());
        let warm = median(warms.iter().map(metric).collect());
        let _ = writeln!(
            table,
            "{name:<28} {cold:>12} {warm:>12} {:>10}",
            ratio(cold, warm)
        );
        let _ = writeln!(
            drawing,
            "{name}\n  cold |{}\n  warm |{}",
            bar(cold, cold.max(warm)),
            bar(warm, cold.max(warm))
        );
    }
    match cached_second_read(&ramfs) {
        Ok(Some(treads)) => {
            let _ = writeln!(
                table,
                "cached mount, second read of a 256 KiB file: {treads} Treads (goal: 0)"
            );
        }
        Ok(None) => {
            let _ = writeln!(
                table,
                "cached mount, second read of a file: not built (the kernel has no mount cache yet)"
            );
        }
        Err(failure) => {
            eprintln!("exec-bench: cached mount: {failure}");
            return ExitCode::FAILURE;
        }
    }
    print!("{table}");
    let out = cli.out.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join("exec-bench.txt")))
            .unwrap_or_else(|| PathBuf::from("exec-bench.txt"))
    });
    match std::fs::write(&out, format!("{table}\n{drawing}")) {
        Ok(()) => {
            eprintln!("exec-bench: results written to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("exec-bench: cannot write {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ratios_and_medians() {
        assert_eq!(median(vec![5, 1, 3]), 3);
        assert_eq!(ratio(10, 4), "2.5");
        assert_eq!(ratio(10, 0), "cold only");
        assert_eq!(ratio(0, 0), "1.0");
        assert_eq!(bar(20, 40).len(), 20);
    }
}
