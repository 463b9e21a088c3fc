//! `unmount-lifecycle`: mount and unmount real `ramfs --stdio` servers in the hosted kernel
//! with open files, cached mounts, busy binaries and many mounts at once; kill a server
//! mid-request, interrupt reads, and hold requests a server never answers; each as a named
//! case. After each case the kernel's invariant checker runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use clap::Parser;
use hosted::inject::{Direction, FlushPolicy, Hold};
use hosted::mnt::ninep::mtype;
use hosted::mnt::OpenMode;
use hosted::vm::{Access, PAGE_SIZE};
use hosted::{ForkFlags, Kernel, KernelConfig, KernelError, MountFlags, NamespaceShare, Pid};
use regress::failure::Context;
use regress::{
    ensure, init_logging, settle_and_check, write_new_file, Case, CommonArgs, Failure, Inputs,
    Program, Ramfs, Runner,
};

/// Mount/unmount lifecycles, dead and silent servers, and interrupted requests in the
/// hosted kernel. Prints one line per case, then `N passed, M failed`; exits 1 if any case
/// failed.
///
/// Built for x86_64-unknown-redox the tool runs the cases that can exist there against
/// the real Redox kernel and `ramfs-9p --scheme NAME` (and names the others); that build
/// is only type-checked (this host cannot build relibc), it has not run on Redox.
#[derive(Debug, Parser)]
#[command(name = "unmount-lifecycle", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    /// The static ELF64 executable the busy-binary cases run [default: one built with
    /// `gcc -static`, else a static /bin/busybox].
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,

    /// Mount/unmount cycles of the cycling cases.
    #[arg(long, value_name = "N", default_value_t = 10)]
    cycles: usize,

    /// Servers mounted at once in the many-mounts case.
    #[arg(long, value_name = "N", default_value_t = 32)]
    mounts: usize,

    /// Show the servers' own logs on standard error.
    #[arg(long)]
    server_log: bool,
}

struct Env {
    ramfs: PathBuf,
    program: Program,
    deadline: Duration,
    cycles: usize,
    mounts: usize,
    server_log: bool,
}

impl Env {
    fn kernel(&self) -> Result<Kernel, Failure> {
        Kernel::new(KernelConfig::default()).context("make a kernel")
    }

    fn server(&self) -> Result<Ramfs, Failure> {
        Ramfs::start(&self.ramfs, self.server_log)
    }
}

/// Reads the whole file open at `fd` from offset 0.
fn read_all(kernel: &Kernel, pid: Pid, fd: usize, len: usize) -> Result<Vec<u8>, Failure> {
    let mut data = vec![0u8; len + 1];
    let mut done = 0;
    loop {
        let n = kernel
            .pread(pid, fd, &mut data[done..], done as u64)
            .context("read")?;
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

fn holders(kernel: &Kernel) -> String {
    let stats = kernel.statistics();
    format!(
        "{} channels live, {} clunks queued, {} active images",
        stats.chans_live, stats.closes_pending, stats.vm.images_active
    )
}

/// Fails unless every channel is gone and the checker passes.
fn nothing_left(kernel: &Kernel, deadline: Duration) -> Result<(), Failure> {
    let report = settle_and_check(kernel, deadline)?;
    ensure!(
        report.live_channels == 0,
        "{} channels still live after everything was closed",
        report.live_channels
    );
    Ok(())
}

/// Reads `pages` of `pid` and compares them with the program's file.
fn compare_pages(
    kernel: &Kernel,
    pid: Pid,
    pages: &[regress::binary::ProgramPage],
) -> Result<(), Failure> {
    let mut got = vec![0u8; PAGE_SIZE];
    for page in pages {
        kernel
            .read_memory(pid, page.addr, &mut got)
            .context(format!("read page {:#x}", page.addr))?;
        ensure!(
            got == page.bytes,
            "page at {:#x} differs from the file",
            page.addr
        );
    }
    Ok(())
}

// ---- the cases ----

/// Mount/unmount cycles with an open file: the file keeps its server, its close lets the
/// server exit 0. On a cached mount (`flags` with [`MountFlags::CACHE`]) the cache is
/// emptied before the first read, which fills it; the second read, and the read after the
/// unmount, must then be answered from it without a Tread.
fn open_file_cycles(env: &Env, flags: MountFlags) -> Result<(), Failure> {
    let kernel = env.kernel()?;
    let init = kernel.spawn();
    let cached = flags.contains(MountFlags::CACHE);
    let contents: Vec<u8> = (0..3 * PAGE_SIZE + 100).map(|i| (i % 251) as u8).collect();
    for cycle in 0..env.cycles {
        let mut server = env.server()?;
        let mount = server.mount(&kernel, init, "/n/ram", flags)?;
        write_new_file(&kernel, init, "/n/ram/file", &contents)?;
        if cached {
            // The written pages are cached too: drop them, so the first read fills.
            kernel.reclaim(usize::MAX);
        }
        let fd = kernel
            .open(init, "/n/ram/file", OpenMode::READ)
            .context("open")?;
        for read in 0..2 {
            let treads = mount.mount.stats().treads();
            ensure!(
                read_all(&kernel, init, fd, contents.len())? == contents,
                "cycle {cycle}: the file read back wrong"
            );
            let sent = mount.mount.stats().treads() - treads;
            ensure!(
                !cached || read == 0 || sent == 0,
                "cycle {cycle}: the second read of a cached file sent {sent} Treads"
            );
        }
        kernel.unmount(init, "/n/ram").context("unmount")?;
        ensure!(
            kernel.wait_closes(env.deadline),
            "queued closes never settled"
        );
        server.expect_running("a file of it is still open")?;
        let treads = mount.mount.stats().treads();
        ensure!(
            read_all(&kernel, init, fd, contents.len())? == contents,
            "cycle {cycle}: the open file read wrong after unmount"
        );
        ensure!(
            !cached || mount.mount.stats().treads() == treads,
            "cycle {cycle}: the cached file went to the server after unmount"
        );
        kernel.close(init, fd).context("close")?;
        server.expect_exit_zero(
            env.deadline,
            &format!("after cycle {cycle}'s last close"),
            || holders(&kernel),
        )?;
        nothing_left(&kernel, env.deadline)?;
        let files = kernel.statistics().vm.mcache_files;
        ensure!(
            files == 0,
            "cycle {cycle}: {files} mount-cache files of the mount stayed after its last channel went"
        );
    }
    let vm = kernel.statistics().vm;
    if cached {
        ensure!(
            vm.mcache_hits > 0,
            "no mount-cache hit in {} cycles ({} misses)",
            env.cycles,
            vm.mcache_misses
        );
        eprintln!(
            "    {} cycles; mount cache: {} hits, {} misses, {} wipes",
            env.cycles, vm.mcache_hits, vm.mcache_misses, vm.mcache_wipes
        );
    } else {
        ensure!(
            vm.mcache_hits == 0 && vm.mcache_files == 0,
            "a mount without the cache flag used the mount cache"
        );
        eprintln!("    {} cycles", env.cycles);
    }
    Ok(())
}

fn open_files(env: &Env) -> Result<(), Failure> {
    open_file_cycles(env, MountFlags::REPLACE)
}

fn cached_mounts(env: &Env) -> Result<(), Failure> {
    open_file_cycles(env, MountFlags::CACHE)
}

/// A busy binary: unmounted under a running program and its forked child, the server
/// stays until both exit, then exits 0.
fn busy_binary(env: &Env) -> Result<(), Failure> {
    let kernel = env.kernel()?;
    let init = kernel.spawn();
    let mut server = env.server()?;
    server.mount(&kernel, init, "/n/ram", MountFlags::REPLACE)?;
    write_new_file(&kernel, init, "/n/ram/prog", &env.program.bytes)?;
    let parent = kernel.fork(init, ForkFlags::default()).context("fork")?;
    kernel
        .exec(parent, "/n/ram/prog", &["prog"])
        .context("exec")?;
    let pages = env.program.pages();
    let (early, late) = pages.split_at(pages.len() / 3);
    compare_pages(&kernel, parent, early)?;
    let child = kernel.fork(parent, ForkFlags::default()).context("fork")?;
    kernel.unmount(init, "/n/ram").context("unmount")?;
    ensure!(
        kernel.wait_closes(env.deadline),
        "queued closes never settled"
    );
    server.expect_running("a program still runs from it")?;
    // Other servers come and go at the same place meanwhile.
    for cycle in 0..env.cycles {
        let mut other = env.server()?;
        other.mount(&kernel, init, "/n/ram", MountFlags::REPLACE)?;
        ensure!(
            matches!(kernel.stat(init, "/n/ram/prog"), Err(KernelError::Mount(_))),
            "cycle {cycle}: the new server has the old program"
        );
        kernel
            .unmount(init, "/n/ram")
            .context("unmount the other")?;
        other.expect_exit_zero(env.deadline, "after its unmount", || holders(&kernel))?;
    }
    compare_pages(&kernel, child, late)?;
    kernel.exit(parent, "").context("exit")?;
    ensure!(
        kernel.wait_closes(env.deadline),
        "queued closes never settled"
    );
    server.expect_running("the forked child still runs the program")?;
    compare_pages(&kernel, child, early)?;
    kernel.exit(child, "").context("exit")?;
    server.expect_exit_zero(
        env.deadline,
        "after the last process of the binary exited",
        || holders(&kernel),
    )?;
    nothing_left(&kernel, env.deadline)
}

/// Many servers mounted at once, each with a file; each unmount lets just its server go.
fn many_mounts(env: &Env) -> Result<(), Failure> {
    let kernel = env.kernel()?;
    let init = kernel.spawn();
    let mut servers = Vec::new();
    for i in 0..env.mounts {
        let mut server = env.server()?;
        server.mount(&kernel, init, &format!("/n/r{i}"), MountFlags::REPLACE)?;
        write_new_file(
            &kernel,
            init,
            &format!("/n/r{i}/id"),
            format!("server {i}").as_bytes(),
        )?;
        servers.push(server);
    }
    ensure!(
        kernel.mounts(init).context("mounts")?.len() == env.mounts,
        "not every mount is in the namespace"
    );
    // A second process sees them all through its copy of the namespace.
    let reader = kernel
        .fork(
            init,
            ForkFlags {
                namespace: NamespaceShare::Copy,
            },
        )
        .context("fork")?;
    for i in 0..env.mounts {
        let fd = kernel
            .open(reader, &format!("/n/r{i}/id"), OpenMode::READ)
            .context("open")?;
        let want = format!("server {i}").into_bytes();
        ensure!(
            read_all(&kernel, reader, fd, want.len())? == want,
            "mount {i} mixed up"
        );
        kernel.close(reader, fd).context("close")?;
    }
    kernel.exit(reader, "").context("exit")?;
    // Unmount in a shuffled order; each server goes, the others stay.
    let mut order: Vec<usize> = (0..env.mounts).collect();
    order.sort_by_key(|i| (i * 7919) % env.mounts.max(1));
    for (done, &i) in order.iter().enumerate() {
        kernel
            .unmount(init, &format!("/n/r{i}"))
            .context("unmount")?;
        servers[i].expect_exit_zero(env.deadline, "after its unmount", || holders(&kernel))?;
        if let Some(&next) = order.get(done + 1) {
            servers[next].expect_running("it is still mounted")?;
        }
    }
    eprintln!(
        "    {} servers mounted at once, each exited 0 at its unmount",
        env.mounts
    );
    nothing_left(&kernel, env.deadline)
}

/// The server killed mid-request: a read and a page fault in flight fail with errors,
/// later calls fail, nothing leaks, the checker passes.
fn server_killed(env: &Env) -> Result<(), Failure> {
    let kernel = env.kernel()?;
    let init = kernel.spawn();
    let mut server = env.server()?;
    let info = server.mount(&kernel, init, "/n/ram", MountFlags::REPLACE)?;
    write_new_file(&kernel, init, "/n/ram/prog", &env.program.bytes)?;
    let runner = kernel.fork(init, ForkFlags::default()).context("fork")?;
    kernel
        .exec(runner, "/n/ram/prog", &["prog"])
        .context("exec")?;
    let text = env.program.text_pages();
    compare_pages(&kernel, runner, &text[..1])?;
    let reader = kernel.fork(init, ForkFlags::default()).context("fork")?;
    let fd = kernel
        .open(reader, "/n/ram/prog", OpenMode::READ)
        .context("open")?;
    // The server receives neither request; then it dies with both in flight.
    server.wire().hold(Hold {
        mtype: mtype::TREAD,
        count: 2,
        flush: FlushPolicy::Ignore,
    });
    let (done, results) = mpsc::channel();
    {
        let (kernel, done) = (kernel.clone(), done.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let _ = done.send(("read", kernel.read(reader, fd, &mut buf).map(|_| ())));
        });
    }
    let addr = text.last().map_or(0, |page| page.addr);
    {
        let kernel = kernel.clone();
        std::thread::spawn(move || {
            let _ = done.send((
                "fault",
                kernel.touch(runner, addr, Access::Read).map(|_| ()),
            ));
        });
    }
    ensure!(
        server.wire().wait_held(2, env.deadline),
        "the read and the fault never reached the wire"
    );
    server.kill()?;
    for _ in 0..2 {
        let (what, result) = results
            .recv_timeout(env.deadline)
            .map_err(|_| Failure::Expectation("a call in flight never returned".into()))?;
        ensure!(
            result.is_err(),
            "the {what} in flight succeeded on a dead server"
        );
        eprintln!(
            "    in-flight {what}: {}",
            result.err().map_or_else(String::new, |e| e.to_string())
        );
    }
    ensure!(
        kernel.stat(init, "/n/ram/prog").is_err(),
        "a call to the dead server succeeded"
    );
    ensure!(
        info.mount.stats().in_flight == 0,
        "requests still in flight on the dead mount"
    );
    for pid in [runner, reader] {
        kernel.exit(pid, "").context("exit")?;
    }
    kernel.unmount(init, "/n/ram").context("unmount")?;
    nothing_left(&kernel, env.deadline)?;
    kernel.reclaim(usize::MAX);
    let stats = kernel.statistics();
    ensure!(
        stats.vm.cached_pages == 0 && stats.vm.free_pages == stats.vm.pool_pages,
        "pages leaked: {} cached, {} of {} free",
        stats.vm.cached_pages,
        stats.vm.free_pages,
        stats.vm.pool_pages
    );
    ensure!(
        stats.frames.in_use() == u64::from(stats.vm.pool_pages),
        "frames leaked: {} in use, vm holds {}",
        stats.frames.in_use(),
        stats.vm.pool_pages
    );
    Ok(())
}

/// A note during a read: Tflush goes out, the read fails interrupted, the file reads on.
/// The same for a page fault's read.
fn interrupted_reads(env: &Env) -> Result<(), Failure> {
    let kernel = env.kernel()?;
    let init = kernel.spawn();
    let mut server = env.server()?;
    let info = server.mount(&kernel, init, "/n/ram", MountFlags::REPLACE)?;
    write_new_file(&kernel, init, "/n/ram/prog", &env.program.bytes)?;
    let fd = kernel
        .open(init, "/n/ram/prog", OpenMode::READ)
        .context("open")?;
    let runner = kernel.fork(init, ForkFlags::default()).context("fork")?;
    kernel
        .exec(runner, "/n/ram/prog", &["prog"])
        .context("exec")?;
    let text = env.program.text_pages();
    for (what, pid) in [("read", init), ("page fault", runner)] {
        let mark = server.wire().mark();
        server.wire().hold(Hold {
            mtype: mtype::TREAD,
            count: 1,
            flush: FlushPolicy::Answer,
        });
        let (done, result) = mpsc::channel();
        let worker = kernel.clone();
        let addr = text[0].addr;
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let result = match what {
                "read" => worker.pread(pid, fd, &mut buf, 0).map(|_| ()),
                _ => worker.touch(pid, addr, Access::Read).map(|_| ()),
            };
            let _ = done.send(result);
        });
        ensure!(
            server.wire().wait_held(1, env.deadline),
            "the {what} never reached the wire"
        );
        kernel.interrupt(pid).context("interrupt")?;
        let result = result
            .recv_timeout(env.deadline)
            .map_err(|_| Failure::Expectation(format!("the interrupted {what} never returned")))?;
        match result {
            Err(err) if err.is_interrupted() => {}
            other => {
                return Err(Failure::Expectation(format!(
                    "the interrupted {what} returned {other:?}"
                )))
            }
        }
        let events = server.wire().events_since(mark);
        let held = events
            .iter()
            .find(|e| e.mtype == mtype::TREAD)
            .map(|e| e.tag);
        ensure!(
            events.iter().any(|e| e.direction == Direction::ToServer
                && e.mtype == mtype::TFLUSH
                && e.oldtag == held),
            "no Tflush for the {what}'s Tread"
        );
    }
    ensure!(
        info.mount.stats().flushes == 2,
        "{} flushes sent",
        info.mount.stats().flushes
    );
    // Both go on as if nothing happened.
    ensure!(
        read_all(&kernel, init, fd, env.program.bytes.len())? == env.program.bytes,
        "the file read wrong after the interrupt"
    );
    compare_pages(&kernel, runner, &text)?;
    settle_and_check(&kernel, env.deadline)?;
    kernel.exit(runner, "").context("exit")?;
    kernel.close(init, fd).context("close")?;
    kernel.unmount(init, "/n/ram").context("unmount")?;
    server.expect_exit_zero(env.deadline, "after its unmount", || holders(&kernel))?;
    nothing_left(&kernel, env.deadline)
}

/// A request the server never answers (nor its flush) stalls only its caller: the same
/// mount, another mount, exits and unmounts go on; the caller returns when the server dies.
fn never_answers(env: &Env) -> Result<(), Failure> {
    let kernel = env.kernel()?;
    let init = kernel.spawn();
    let mut silent = env.server()?;
    silent.mount(&kernel, init, "/n/silent", MountFlags::REPLACE)?;
    let mut other = env.server()?;
    other.mount(&kernel, init, "/n/other", MountFlags::REPLACE)?;
    write_new_file(&kernel, init, "/n/silent/a", b"aaaa")?;
    write_new_file(&kernel, init, "/n/silent/prog", &env.program.bytes)?;
    let stuck = kernel.fork(init, ForkFlags::default()).context("fork")?;
    let fd = kernel
        .open(stuck, "/n/silent/a", OpenMode::READ)
        .context("open")?;
    silent.wire().hold(Hold {
        mtype: mtype::TREAD,
        count: 1,
        flush: FlushPolicy::Ignore,
    });
    let (done, result) = mpsc::channel();
    {
        let kernel = kernel.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4];
            let _ = done.send(kernel.read(stuck, fd, &mut buf));
        });
    }
    ensure!(
        silent.wire().wait_held(1, env.deadline),
        "the read never reached the wire"
    );
    // Everything else goes on: the same mount (files, an exec), another mount.
    write_new_file(&kernel, init, "/n/silent/b", b"bbbb")?;
    let fd_b = kernel
        .open(init, "/n/silent/b", OpenMode::READ)
        .context("open b")?;
    ensure!(read_all(&kernel, init, fd_b, 4)? == b"bbbb", "b read wrong");
    kernel.close(init, fd_b).context("close b")?;
    let runner = kernel.fork(init, ForkFlags::default()).context("fork")?;
    kernel
        .exec(runner, "/n/silent/prog", &["prog"])
        .context("exec")?;
    compare_pages(&kernel, runner, &env.program.text_pages())?;
    kernel.exit(runner, "").context("exit")?;
    write_new_file(&kernel, init, "/n/other/c", b"cc")?;
    ensure!(
        kernel.stat(init, "/n/other/c").context("stat")?.length == 2,
        "c has the wrong length"
    );
    kernel.unmount(init, "/n/other").context("unmount other")?;
    other.expect_exit_zero(env.deadline, "after its unmount", || holders(&kernel))?;
    // A flush the server ignores leaves the caller waiting, and only it.
    kernel.interrupt(stuck).context("interrupt")?;
    ensure!(
        result.recv_timeout(Duration::from_millis(200)).is_err(),
        "the read returned although the server never answered it nor its flush"
    );
    ensure!(
        kernel
            .stat(init, "/n/silent/a")
            .context("stat after the flush")?
            .length
            == 4,
        "stat through the silent mount failed"
    );
    // The server dies: the caller gets an error.
    silent.kill()?;
    let result = result
        .recv_timeout(env.deadline)
        .map_err(|_| Failure::Expectation("the stuck read outlived its server".into()))?;
    ensure!(result.is_err(), "the stuck read succeeded");
    kernel.exit(stuck, "").context("exit")?;
    kernel.unmount(init, "/n/silent").context("unmount")?;
    nothing_left(&kernel, env.deadline)
}

/// Unmounting a server that never answers its Tclunk returns at once; the clunk waits in
/// the close queue, and settles when the server dies.
fn hung_unmount(env: &Env) -> Result<(), Failure> {
    let kernel = env.kernel()?;
    let init = kernel.spawn();
    let mut server = env.server()?;
    server.mount(&kernel, init, "/n/ram", MountFlags::REPLACE)?;
    server.wire().hold(Hold {
        mtype: mtype::TCLUNK,
        count: 1,
        flush: FlushPolicy::Ignore,
    });
    let (done, result) = mpsc::channel();
    {
        let kernel = kernel.clone();
        std::thread::spawn(move || {
            let _ = done.send(kernel.unmount(init, "/n/ram"));
        });
    }
    result
        .recv_timeout(env.deadline)
        .map_err(|_| Failure::Expectation("unmount waited for the server".into()))?
        .context("unmount")?;
    ensure!(
        server.wire().wait_held(1, env.deadline),
        "the Tclunk never reached the wire"
    );
    ensure!(
        kernel.statistics().closes_pending == 1,
        "the clunk is not in the close queue"
    );
    // Other mounts and processes carry on meanwhile.
    let mut other = env.server()?;
    other.mount(&kernel, init, "/n/other", MountFlags::REPLACE)?;
    write_new_file(&kernel, init, "/n/other/x", b"x")?;
    let child = kernel.fork(init, ForkFlags::default()).context("fork")?;
    kernel.exit(child, "").context("exit")?;
    kernel.wait(init).context("wait")?;
    server.kill()?;
    ensure!(
        kernel.wait_closes(env.deadline),
        "the clunk never settled after the server died"
    );
    kernel.unmount(init, "/n/other").context("unmount other")?;
    other.expect_exit_zero(env.deadline, "after its unmount", || holders(&kernel))?;
    nothing_left(&kernel, env.deadline)
}

const CASES: &[Case<Env>] = &[
    ("open-files: mount/unmount cycles with an open file: the file keeps ramfs, its close lets it exit 0", open_files),
    ("cached-mounts: the same cycles on MCACHE mounts; second reads and reads after unmount come from the mount cache, which forgets the mount's files when its last channel goes", cached_mounts),
    ("busy-binary: unmount (and remount) under a running program and its child; ramfs exits 0 after both exit", busy_binary),
    ("many-mounts: many servers mounted at once; each unmount lets just its server exit 0", many_mounts),
    ("server-killed: ramfs killed mid-request: the read and fault in flight fail, nothing leaks, the checker passes", server_killed),
    ("interrupted-reads: a note during a read or a page read sends Tflush; the call fails interrupted and reading goes on", interrupted_reads),
    ("never-answers: a request never answered (nor its flush) stalls only its caller", never_answers),
    ("hung-unmount: unmounting a server that never answers Tclunk returns at once; the clunk stays queued", hung_unmount),
];

pub fn main() -> ExitCode {
    init_logging("error");
    let cli = Cli::parse();
    let Inputs { ramfs, program } =
        match Inputs::choose("unmount-lifecycle", &cli.common, cli.binary.as_deref()) {
            Ok(inputs) => inputs,
            Err(status) => return status,
        };
    eprintln!(
        "unmount-lifecycle: ramfs {}; program: {} ({} bytes)",
        ramfs.display(),
        program.origin,
        program.bytes.len()
    );
    let env = Env {
        ramfs,
        program,
        deadline: cli.common.deadline(),
        cycles: cli.cycles.max(1),
        mounts: cli.mounts.max(2),
        server_log: cli.server_log,
    };
    Runner::run_selected(&cli.common, env, CASES)
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
    fn cases_are_the_catalogue() {
        assert_eq!(
            regress::catalogue::short_names(CASES),
            regress::catalogue::UNMOUNT_LIFECYCLE
        );
    }
}
