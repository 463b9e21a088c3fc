//! `exec-bench`: a cold and a warm exec of the same binary from a real `ramfs --stdio` in
//! the hosted kernel, side by side: 9P messages sent, bytes read from the server, pages and
//! host frames allocated, and time. Each exec is followed by a touch of every text and
//! data page, as the program would. And a file read twice on a cached mount (`MCACHE`):
//! Treads, bytes from the server and time of the first and the second read (the goal: the
//! second sends no Tread).
//!
//! Prints two tables with ratios (medians over the rounds) and writes them, with bar
//! drawings, to a file. Timings are reported, never judged; the tool fails only if a read
//! or a page is wrong.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use hosted::mnt::OpenMode;
use hosted::vm::PAGE_SIZE;
use hosted::{ForkFlags, Kernel, KernelConfig, MountFlags, MountInfo, Pid};
use regress::failure::Context;
use regress::{ensure, init_logging, write_new_file, CommonArgs, Failure, Inputs, Program, Ramfs};

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

const EXEC_METRICS: [Metric; 6] = [
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
fn exec_round(ramfs: &std::path::Path, program: &Program) -> Result<(Cost, Cost), Failure> {
    let kernel = Kernel::new(KernelConfig::default()).context("make a kernel")?;
    let init = kernel.spawn();
    let mut server = Ramfs::start(ramfs, false)?;
    let mount = server.mount(&kernel, init, "/n/ram", MountFlags::REPLACE)?;
    write_new_file(&kernel, init, "/n/ram/prog", &program.bytes)?;
    let cold = exec_once(&kernel, init, &mount, program)?;
    let warm = exec_once(&kernel, init, &mount, program)?;
    Ok((cold, warm))
}

/// The file read twice on a cached mount.
const CACHED_FILE_BYTES: usize = 256 * 1024;

/// The rows of the cached-mount table (`messages` counts the open's stat and the clunk).
const READ_METRICS: [Metric; 4] = [
    ("9P messages sent", |c| c.messages),
    ("Treads sent", |c| c.treads),
    ("bytes read from the server", |c| c.bytes_read),
    ("time (µs)", |c| c.micros),
];

/// Opens `path`, reads it to its end with 8 KiB reads (as `cat` would), checks the bytes
/// and closes it; the cost measured around it all.
fn read_once(
    kernel: &Kernel,
    init: Pid,
    mount: &MountInfo,
    path: &str,
    contents: &[u8],
) -> Result<Cost, Failure> {
    let (messages_before, treads_before, bytes_before) = messages(mount);
    let started = Instant::now();
    let fd = kernel.open(init, path, OpenMode::READ).context("open")?;
    let mut data = Vec::with_capacity(contents.len());
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let n = kernel.read(init, fd, &mut buf).context("read")?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    kernel.close(init, fd).context("close")?;
    let micros = started.elapsed().as_micros() as u64;
    ensure!(data == contents, "the cached mount read wrong bytes");
    let (messages_after, treads_after, bytes_after) = messages(mount);
    Ok(Cost {
        messages: messages_after - messages_before,
        treads: treads_after - treads_before,
        bytes_read: bytes_after - bytes_before,
        micros,
        ..Cost::default()
    })
}

/// One round on a cached mount: a file written through the mount, the cache emptied (so
/// that the first read goes to the server), then read twice, each time opened anew.
fn cached_round(ramfs: &std::path::Path) -> Result<(Cost, Cost), Failure> {
    let kernel = Kernel::new(KernelConfig::default()).context("make a kernel")?;
    ensure!(kernel.has_mount_cache(), "the kernel has no mount cache");
    let init = kernel.spawn();
    let mut server = Ramfs::start(ramfs, false)?;
    let mount = server.mount(&kernel, init, "/n/ram", MountFlags::CACHE)?;
    let contents: Vec<u8> = (0..CACHED_FILE_BYTES).map(|i| (i % 253) as u8).collect();
    write_new_file(&kernel, init, "/n/ram/file", &contents)?;
    kernel.reclaim(usize::MAX);
    ensure!(
        kernel.statistics().vm.mcache_pages == 0,
        "the mount cache kept pages through a full reclaim"
    );
    let first = read_once(&kernel, init, &mount, "/n/ram/file", &contents)?;
    let hits_before = kernel.statistics().vm.mcache_hits;
    let second = read_once(&kernel, init, &mount, "/n/ram/file", &contents)?;
    ensure!(
        kernel.statistics().vm.mcache_hits > hits_before,
        "the second read had no mount-cache hit"
    );
    Ok((first, second))
}

/// One table: a row a metric, the medians of `a` and `b`, their ratio, and bars.
fn render_table(
    title: &str,
    heads: (&str, &str),
    metrics: &[Metric],
    a: &[Cost],
    b: &[Cost],
    drawing: &mut String,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let ratio_head = format!("{}/{}", heads.0, heads.1);
    let _ = writeln!(
        out,
        "{:<28} {:>12} {:>12} {:>13}",
        "", heads.0, heads.1, ratio_head
    );
    for (name, metric) in metrics {
        let first = median(a.iter().map(metric).collect());
        let second = median(b.iter().map(metric).collect());
        let _ = writeln!(
            out,
            "{name:<28} {first:>12} {second:>12} {:>13}",
            ratio(first, second, heads.0)
        );
        let _ = writeln!(
            drawing,
            "{name}\n  {:<6} |{}\n  {:<6} |{}",
            heads.0,
            bar(first, first.max(second)),
            heads.1,
            bar(second, first.max(second))
        );
    }
    out
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// `a / b`, or what it means when `b` is 0 (`a_name` names the side `a` is).
fn ratio(a: u64, b: u64, a_name: &str) -> String {
    if b == 0 {
        if a == 0 {
            "1.0".to_string()
        } else {
            format!("{a_name} only")
        }
    } else {
        format!("{:.1}", a as f64 / b as f64)
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

pub fn main() -> ExitCode {
    init_logging("error");
    let cli = Cli::parse();
    let Inputs { ramfs, program } =
        match Inputs::choose("exec-bench", &cli.common, cli.binary.as_deref()) {
            Ok(inputs) => inputs,
            Err(status) => return status,
        };
    let pages = program.pages().len();
    eprintln!(
        "exec-bench: {} ({} bytes, {pages} file pages touched an exec), {} rounds",
        program.origin,
        program.bytes.len(),
        cli.rounds.max(1)
    );
    let rounds = cli.rounds.max(1);
    let mut colds = Vec::new();
    let mut warms = Vec::new();
    let mut firsts = Vec::new();
    let mut seconds = Vec::new();
    for n in 0..rounds {
        let result =
            exec_round(&ramfs, &program).and_then(|exec| Ok((exec, cached_round(&ramfs)?)));
        match result {
            Ok(((cold, warm), (first, second))) => {
                eprintln!(
                    "  round {n}: exec cold {} µs, warm {} µs; cached-mount read first {} µs \
                     ({} Treads), second {} µs ({} Treads)",
                    cold.micros,
                    warm.micros,
                    first.micros,
                    first.treads,
                    second.micros,
                    second.treads
                );
                colds.push(cold);
                warms.push(warm);
                firsts.push(first);
                seconds.push(second);
            }
            Err(failure) => {
                eprintln!("exec-bench: round {n}: {failure}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut drawing = String::new();
    let mut table = render_table(
        &format!(
            "exec of {} ({} bytes, {pages} text and data pages touched), medians of {rounds} rounds",
            program.origin,
            program.bytes.len(),
        ),
        ("cold", "warm"),
        &EXEC_METRICS,
        &colds,
        &warms,
        &mut drawing,
    );
    table.push('\n');
    table.push_str(&render_table(
        &format!(
            "cached mount (MCACHE): a {} KiB file read twice in 8 KiB reads, each after its own \
             open, the cache empty before the first; medians of {rounds} rounds",
            CACHED_FILE_BYTES / 1024
        ),
        ("first", "second"),
        &READ_METRICS,
        &firsts,
        &seconds,
        &mut drawing,
    ));
    let second_treads = median(seconds.iter().map(|c| c.treads).collect());
    let _ = writeln!(
        table,
        "goal: the second read sends no Tread: {}",
        if second_treads == 0 {
            "met".to_string()
        } else {
            format!("not met ({second_treads} Treads)")
        }
    );
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
        assert_eq!(ratio(10, 4, "cold"), "2.5");
        assert_eq!(ratio(10, 0, "first"), "first only");
        assert_eq!(ratio(0, 0, "cold"), "1.0");
        assert_eq!(bar(20, 40).len(), 20);
    }
}
