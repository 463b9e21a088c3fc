//! `exec-from-ramfs`: runs a real static ELF binary from a real `ramfs --stdio` in the
//! hosted kernel and checks exec, the image cache and the server's lifetime, each as a
//! named case.
//!
//! Every case starts its own kernel and ramfs, copies the program in through the kernel's
//! file calls, and executes it; the "process" does not run the instructions: the tool
//! touches its pages through the fault path and compares them with the file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};

use clap::Parser;
use hosted::inject::Direction;
use hosted::mnt::ninep::{dm, mtype};
use hosted::mnt::OpenMode;
use hosted::vm::{SegmentKind, PAGE_SIZE};
use hosted::{ForkFlags, Kernel, KernelConfig, KernelError, MountFlags, NamespaceShare, Pid};
use regress::binary::ProgramPage;
use regress::failure::Context;
use regress::{
    ensure, init_logging, settle_and_check, write_new_file, Case, CommonArgs, Failure, Inputs,
    Program, Ramfs, Runner,
};

const MOUNT: &str = "/n/ram";
const PROGRAM: &str = "/n/ram/bin/prog";

/// Executes a static binary from ramfs in the hosted kernel and checks the image cache and
/// the server's lifetime. Prints one line per case, then `N passed, M failed`; exits 1 if
/// any case failed.
///
/// Built for x86_64-unknown-redox the tool runs its cases against the real Redox kernel
/// and `ramfs-9p --scheme NAME` instead; that build is only type-checked (this host
/// cannot build relibc), it has not run on Redox.
#[derive(Debug, Parser)]
#[command(name = "exec-from-ramfs", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    /// The static ELF64 executable to run [default: one built with `gcc -static`, else a
    /// static /bin/busybox].
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,

    /// Processes that exec the binary at once in the concurrency case.
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,

    /// Restore the behaviour before the 2014 fix: an image keeps its channel until its
    /// last page is uncached. The tool must then report the ramfs that never exits.
    #[arg(long)]
    legacy_image_channel: bool,

    /// Show ramfs's own log on standard error.
    #[arg(long)]
    server_log: bool,
}

/// What every case needs.
struct Env {
    ramfs: PathBuf,
    program: Program,
    deadline: std::time::Duration,
    legacy: bool,
    server_log: bool,
    concurrency: usize,
}

/// A kernel with one process, ramfs mounted at [`MOUNT`] and the program at [`PROGRAM`].
/// The kernel goes first when it is dropped, so the server sees its channels closed before
/// it is killed.
struct Setup {
    kernel: Kernel,
    init: Pid,
    server: Ramfs,
}

impl Env {
    fn kernel(&self) -> Result<Kernel, Failure> {
        Kernel::new(KernelConfig {
            legacy_image_channel: self.legacy,
            ..KernelConfig::default()
        })
        .context("make a kernel")
    }

    fn start_server(&self) -> Result<Ramfs, Failure> {
        Ramfs::start(&self.ramfs, self.server_log)
    }

    /// Mounts `server` at [`MOUNT`] in `init`'s namespace and writes `bytes` at [`PROGRAM`].
    fn install(
        &self,
        kernel: &Kernel,
        init: Pid,
        server: &mut Ramfs,
        bytes: &[u8],
    ) -> Result<(), Failure> {
        server.mount(kernel, init, MOUNT, MountFlags::REPLACE)?;
        let dir = kernel
            .create(init, "/n/ram/bin", dm::DIR | 0o755, OpenMode::READ)
            .context("mkdir /n/ram/bin")?;
        kernel.close(init, dir).context("close /n/ram/bin")?;
        write_new_file(kernel, init, PROGRAM, bytes)
    }

    fn setup(&self) -> Result<Setup, Failure> {
        let kernel = self.kernel()?;
        let init = kernel.spawn();
        let mut server = self.start_server()?;
        self.install(&kernel, init, &mut server, &self.program.bytes)?;
        Ok(Setup {
            kernel,
            init,
            server,
        })
    }
}

/// A new process (sharing `init`'s namespace) running the program.
fn run_program(kernel: &Kernel, init: Pid) -> Result<(Pid, hosted::ExecInfo), Failure> {
    let pid = kernel.fork(init, ForkFlags::default()).context("fork")?;
    let info = kernel
        .exec(pid, PROGRAM, &["prog", "-x"])
        .context(format!("exec {PROGRAM}"))?;
    Ok((pid, info))
}

/// Reads each page through `pid`'s faults and compares it with `pages`.
fn compare_pages(kernel: &Kernel, pid: Pid, pages: &[ProgramPage]) -> Result<(), Failure> {
    let mut got = vec![0u8; PAGE_SIZE];
    for page in pages {
        kernel
            .read_memory(pid, page.addr, &mut got)
            .context(format!("read page {:#x}", page.addr))?;
        if let Some(at) = got.iter().zip(&page.bytes).position(|(a, b)| a != b) {
            return Err(Failure::Expectation(format!(
                "{} page at {:#x} (file offset {:#x}) differs from the file at byte {at}: \
                 {:#04x}, file {:#04x}",
                if page.writable { "data" } else { "text" },
                page.addr,
                page.file_offset,
                got[at],
                page.bytes[at]
            )));
        }
    }
    Ok(())
}

/// What may still hold a server, for failure messages.
fn holders(kernel: &Kernel) -> String {
    let stats = kernel.statistics();
    format!(
        "{} channels live, {} pinned by legacy mode, {} clunks queued, {} active images, {} \
         processes",
        stats.chans_live,
        stats.legacy_pins,
        stats.closes_pending,
        stats.vm.images_active,
        stats.processes
    )
}

fn exit(kernel: &Kernel, pid: Pid) -> Result<(), Failure> {
    kernel.exit(pid, "").context(format!("exit {pid}"))
}

// ---- the cases ----

/// Every text and data page the process touches equals the file's bytes; data takes writes
/// privately, text refuses them, bss is zero.
fn pages_equal_file(env: &Env) -> Result<(), Failure> {
    let setup = env.setup()?;
    let (kernel, init) = (&setup.kernel, setup.init);
    let (pid, info) = run_program(kernel, init)?;
    let pages = env.program.pages();
    compare_pages(kernel, pid, &pages)?;
    let data: Vec<&ProgramPage> = pages.iter().filter(|p| p.writable).collect();
    for page in &data {
        kernel
            .write_memory(pid, page.addr, b"written!")
            .context(format!("write data page {:#x}", page.addr))?;
        let mut back = [0u8; 8];
        kernel
            .read_memory(pid, page.addr, &mut back)
            .context("read back")?;
        ensure!(
            &back == b"written!",
            "data page {:#x} lost a write",
            page.addr
        );
    }
    let text = pages.iter().find(|p| !p.writable).map_or(0, |p| p.addr);
    ensure!(
        matches!(
            kernel.write_memory(pid, text, b"x"),
            Err(KernelError::ReadOnly(_))
        ),
        "a write to text at {text:#x} was not refused"
    );
    if let Some(bss) = info.segments.iter().find(|s| s.kind == SegmentKind::Bss) {
        let mut zeros = vec![0xffu8; PAGE_SIZE];
        kernel
            .read_memory(pid, bss.base, &mut zeros)
            .context("read bss")?;
        ensure!(
            zeros.iter().all(|&b| b == 0),
            "bss at {:#x} is not zero",
            bss.base
        );
    }
    // Another process of the same file sees the file, not the first one's writes.
    let (other, _) = run_program(kernel, init)?;
    compare_pages(kernel, other, &pages)?;
    eprintln!(
        "    {} text and {} data pages compared, in two processes",
        pages.len() - data.len(),
        data.len()
    );
    exit(kernel, pid)?;
    exit(kernel, other)?;
    settle_and_check(kernel, env.deadline)?;
    Ok(())
}

/// A second exec of the same file sends no Tread for text pages already cached.
fn warm_exec_reads_no_cached_text(env: &Env) -> Result<(), Failure> {
    let setup = env.setup()?;
    let (kernel, init, server) = (&setup.kernel, setup.init, &setup.server);
    let text = env.program.text_pages();
    let (first, _) = run_program(kernel, init)?;
    compare_pages(kernel, first, &text)?;
    exit(kernel, first)?;

    let before = kernel.statistics();
    let mark = server.wire().mark();
    let (second, _) = run_program(kernel, init)?;
    compare_pages(kernel, second, &text)?;
    let after = kernel.statistics();
    let events = server.wire().events_since(mark);
    let headers = env.program.header_reads();
    let mut header_treads = 0;
    let mut text_treads = Vec::new();
    for event in events
        .iter()
        .filter(|e| e.direction == Direction::ToServer && e.mtype == mtype::TREAD)
    {
        let (offset, count) = (event.offset.unwrap_or(0), event.count.unwrap_or(0));
        if headers.contains(&(offset, count)) {
            header_treads += 1;
        } else if text.iter().any(|page| {
            offset < page.file_offset + PAGE_SIZE as u64
                && page.file_offset < offset + u64::from(count)
        }) {
            text_treads.push(offset);
        }
    }
    let sent = events
        .iter()
        .filter(|e| e.direction == Direction::ToServer)
        .count();
    eprintln!(
        "    second exec and {} text pages: {sent} messages, {header_treads} header Treads, {} \
         text-page Treads",
        text.len(),
        text_treads.len()
    );
    ensure!(
        text_treads.is_empty(),
        "the second exec sent {} Treads for cached text pages (file offsets {:#x?})",
        text_treads.len(),
        &text_treads[..text_treads.len().min(8)]
    );
    ensure!(
        after.image_reads == before.image_reads,
        "the image read {} pages again",
        after.image_reads - before.image_reads
    );
    ensure!(
        after.vm.attach_hits == before.vm.attach_hits + 1,
        "the second exec did not find the image in the cache"
    );
    exit(kernel, second)?;
    settle_and_check(kernel, env.deadline)?;
    Ok(())
}

/// Concurrent execs of the same file share one image and its pages.
fn concurrent_execs_share(env: &Env) -> Result<(), Failure> {
    let setup = env.setup()?;
    let (kernel, init) = (&setup.kernel, setup.init);
    let text = Arc::new(env.program.text_pages());
    let count = env.concurrency.max(2);
    let pids: Vec<Pid> = (0..count)
        .map(|_| kernel.fork(init, ForkFlags::default()).context("fork"))
        .collect::<Result<_, _>>()?;
    let start = Arc::new(Barrier::new(count));
    let workers: Vec<_> = pids
        .iter()
        .map(|&pid| {
            let (kernel, start, text) = (kernel.clone(), start.clone(), text.clone());
            std::thread::spawn(move || -> Result<(), Failure> {
                start.wait();
                kernel
                    .exec(pid, PROGRAM, &["prog"])
                    .context(format!("exec in pid {pid}"))?;
                compare_pages(&kernel, pid, &text)
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| Failure::Panic("an exec thread panicked".to_string()))??;
    }
    let stats = kernel.statistics();
    ensure!(
        stats.vm.attach_misses == 1 && stats.vm.images_active == 1,
        "{} execs made {} images ({} active)",
        count,
        stats.vm.attach_misses,
        stats.vm.images_active
    );
    for page in text.iter() {
        let frame = kernel.resident(pids[0], page.addr).context("resident")?;
        for &pid in &pids[1..] {
            ensure!(
                kernel
                    .same_segment(pids[0], pid, page.addr)
                    .context("same segment")?,
                "pids {} and {pid} do not share the text segment at {:#x}",
                pids[0],
                page.addr
            );
            let other = kernel.resident(pid, page.addr).context("resident")?;
            ensure!(
                frame.is_some() && other == frame,
                "pids {} and {pid} map different frames at {:#x}",
                pids[0],
                page.addr
            );
        }
    }
    eprintln!(
        "    {count} processes share one image: {} text pages, {} page reads",
        text.len(),
        stats.image_reads
    );
    settle_and_check(kernel, env.deadline)?;
    for pid in pids {
        exit(kernel, pid)?;
    }
    settle_and_check(kernel, env.deadline)?;
    Ok(())
}

/// While a process still runs the binary, unmount leaves ramfs running; when the process
/// exits, ramfs exits 0 within the deadline.
fn unmount_while_running(env: &Env) -> Result<(), Failure> {
    let setup = env.setup()?;
    let (kernel, init, server) = (&setup.kernel, setup.init, &setup.server);
    let pages = env.program.pages();
    let (pid, _) = run_program(kernel, init)?;
    let (first, rest) = pages.split_at(pages.len() / 2);
    compare_pages(kernel, pid, first)?;
    kernel.unmount(init, MOUNT).context("unmount")?;
    ensure!(
        kernel.wait_closes(env.deadline),
        "queued closes never settled"
    );
    server.expect_running("a process still runs the binary")?;
    // The running program still faults pages in from the unmounted server.
    compare_pages(kernel, pid, rest)?;
    exit(kernel, pid)?;
    server.expect_exit_zero(env.deadline, "after the process exited", || holders(kernel))?;
    settle_and_check(kernel, env.deadline)?;
    Ok(())
}

/// After the process exits the image stays cached with no channel while the mount lives;
/// when the mount is gone ramfs exits 0 (the 2014 bug), and the image, which nothing can
/// hit again, is forgotten with the mount's last channel.
fn ramfs_exits_after_exit_and_unmount(env: &Env) -> Result<(), Failure> {
    let setup = env.setup()?;
    let (kernel, init, server) = (&setup.kernel, setup.init, &setup.server);
    let text = env.program.text_pages();
    let (pid, _) = run_program(kernel, init)?;
    compare_pages(kernel, pid, &text)?;
    exit(kernel, pid)?;
    let waited = kernel.wait(init).context("wait")?;
    ensure!(
        waited.pid == pid,
        "waited for {} instead of {pid}",
        waited.pid
    );
    let report = settle_and_check(kernel, env.deadline)?;
    let cached = kernel.statistics();
    ensure!(
        cached.vm.images_idle == 1 && cached.vm.idle_pages >= text.len() as u64,
        "the image did not stay cached while mounted: {} idle images, {} idle pages (touched {})",
        cached.vm.images_idle,
        cached.vm.idle_pages,
        text.len()
    );
    ensure!(
        report.vm.open_channels == 0,
        "the idle image still has a channel ({} image channels)",
        report.vm.open_channels
    );
    kernel.unmount(init, MOUNT).context("unmount")?;
    server.expect_exit_zero(
        env.deadline,
        "after the program exited and the mount was removed",
        || holders(kernel),
    )?;
    let report = settle_and_check(kernel, env.deadline)?;
    ensure!(
        report.vm.open_channels == 0 && report.live_channels == 0,
        "a channel is left ({} image channels, {} live channels)",
        report.vm.open_channels,
        report.live_channels
    );
    let stats = kernel.statistics();
    ensure!(
        stats.vm.images_idle == 0 && stats.vm.idle_pages == 0,
        "the image of the unmounted mount was not forgotten: {} idle images, {} idle pages",
        stats.vm.images_idle,
        stats.vm.idle_pages
    );
    eprintln!(
        "    ramfs exited 0; the idle image ({} pages, no channel) was forgotten when the mount's last channel went",
        cached.vm.idle_pages
    );
    Ok(())
}

/// A second namespace that still holds the mount keeps ramfs alive until it lets go.
fn second_namespace_keeps_ramfs(env: &Env) -> Result<(), Failure> {
    let setup = env.setup()?;
    let (kernel, init, server) = (&setup.kernel, setup.init, &setup.server);
    let other = kernel
        .fork(
            init,
            ForkFlags {
                namespace: NamespaceShare::Copy,
            },
        )
        .context("fork with a copied namespace")?;
    let (pid, _) = run_program(kernel, init)?;
    compare_pages(kernel, pid, &env.program.text_pages())?;
    exit(kernel, pid)?;
    kernel.unmount(init, MOUNT).context("unmount")?;
    ensure!(
        kernel.wait_closes(env.deadline),
        "queued closes never settled"
    );
    server.expect_running("a second namespace still holds the mount")?;
    let length = kernel
        .stat(other, PROGRAM)
        .context("stat through the second namespace")?
        .length;
    ensure!(
        length == env.program.bytes.len() as u64,
        "the second namespace sees a file of {length} bytes"
    );
    exit(kernel, other)?;
    server.expect_exit_zero(env.deadline, "after the second namespace let go", || {
        holders(kernel)
    })?;
    settle_and_check(kernel, env.deadline)?;
    Ok(())
}

/// Remount a new ramfs and write a different file at the same path so that its qid
/// matches the old one: exec runs the new bytes, never stale pages.
fn remount_same_qid_runs_new_bytes(env: &Env) -> Result<(), Failure> {
    let setup = env.setup()?;
    let (kernel, init, old_server) = (&setup.kernel, setup.init, &setup.server);
    let (pid, old) = run_program(kernel, init)?;
    compare_pages(kernel, pid, &env.program.pages())?;
    exit(kernel, pid)?;
    let old_qid = kernel.stat(init, PROGRAM).context("stat")?.qid;
    kernel.unmount(init, MOUNT).context("unmount")?;
    old_server.expect_exit_zero(env.deadline, "after the first mount was removed", || {
        holders(kernel)
    })?;

    let variant = env.program.variant();
    let mut new_server = env.start_server()?;
    env.install(kernel, init, &mut new_server, &variant)?;
    let new_qid = kernel.stat(init, PROGRAM).context("stat")?.qid;
    ensure!(
        (new_qid.path, new_qid.version) == (old_qid.path, old_qid.version),
        "cannot set the trap: the new file's qid {new_qid:?} differs from the old {old_qid:?}"
    );
    let (pid, new) = run_program(kernel, init)?;
    // Stale pages of the old file would show here first.
    compare_pages(kernel, pid, &env.program.pages_of(&variant))?;
    ensure!(
        new.identity.dev != old.identity.dev
            && (new.identity.qid_path, new.identity.version)
                == (old.identity.qid_path, old.identity.version),
        "identities {:?} and {:?}: the attach id (dev) should differ, the qid not",
        old.identity,
        new.identity
    );
    let stats = kernel.statistics();
    ensure!(
        stats.vm.attach_misses == 2,
        "{} images made for two different files",
        stats.vm.attach_misses
    );
    eprintln!(
        "    same qid {:#x}.{} on two mounts: the new bytes ran",
        new_qid.path, new_qid.version
    );
    exit(kernel, pid)?;
    settle_and_check(kernel, env.deadline)?;
    // The kernel goes before the server it still mounts.
    drop(setup);
    new_server.expect_exit_zero(env.deadline, "after the kernel went away", String::new)?;
    Ok(())
}

/// A file changed in place (new qid.vers) gets a new image.
fn changed_in_place_new_image(env: &Env) -> Result<(), Failure> {
    let setup = env.setup()?;
    let (kernel, init) = (&setup.kernel, setup.init);
    let (pid, before) = run_program(kernel, init)?;
    compare_pages(kernel, pid, &env.program.pages())?;
    exit(kernel, pid)?;
    let variant = env.program.variant();
    let fd = kernel
        .open(init, PROGRAM, OpenMode::RDWR)
        .context("open for writing")?;
    let mut done = 0;
    while done < variant.len() {
        let n = kernel
            .pwrite(init, fd, &variant[done..], done as u64)
            .context("write in place")?;
        ensure!(n > 0, "ramfs took no bytes at {done}");
        done += n;
    }
    kernel.close(init, fd).context("close")?;
    let (pid, after) = run_program(kernel, init)?;
    ensure!(
        after.identity.qid_path == before.identity.qid_path
            && after.identity.version != before.identity.version,
        "identities {:?} then {:?}: same file, new version expected",
        before.identity,
        after.identity
    );
    let stats = kernel.statistics();
    ensure!(
        stats.vm.attach_misses == 2,
        "the changed file did not get a new image ({} images made)",
        stats.vm.attach_misses
    );
    compare_pages(kernel, pid, &env.program.pages_of(&variant))?;
    exit(kernel, pid)?;
    settle_and_check(kernel, env.deadline)?;
    Ok(())
}

const CASES: &[Case<Env>] = &[
    ("pages-equal-file: every text and data page touched equals the file's bytes", pages_equal_file),
    ("warm-exec: a second exec sends no Tread for text pages already cached", warm_exec_reads_no_cached_text),
    ("concurrent-execs: concurrent execs of one file share one image and its pages", concurrent_execs_share),
    ("busy-unmount: unmount while the program runs leaves ramfs running; its exit lets ramfs exit 0", unmount_while_running),
    ("2014-bug: after the program exits the image stays cached without a channel; when the mount is gone, ramfs exits 0 and the image is forgotten", ramfs_exits_after_exit_and_unmount),
    ("second-namespace: a namespace still holding the mount keeps ramfs until it lets go", second_namespace_keeps_ramfs),
    ("remount-same-qid: a new ramfs with a different file of the same qid runs the new bytes, never stale pages", remount_same_qid_runs_new_bytes),
    ("changed-in-place: a file changed in place (new qid.vers) gets a new image", changed_in_place_new_image),
];

pub fn main() -> ExitCode {
    init_logging("warn");
    let cli = Cli::parse();
    let Inputs { ramfs, program } =
        match Inputs::choose("exec-from-ramfs", &cli.common, cli.binary.as_deref()) {
            Ok(inputs) => inputs,
            Err(status) => return status,
        };
    let pages = program.pages();
    eprintln!(
        "exec-from-ramfs: ramfs {}; program: {} ({} bytes, {} text and {} data pages){}",
        ramfs.display(),
        program.origin,
        program.bytes.len(),
        pages.iter().filter(|p| !p.writable).count(),
        pages.iter().filter(|p| p.writable).count(),
        if cli.legacy_image_channel {
            "; LEGACY image channels: the 2014 bug is back, cases must fail"
        } else {
            ""
        }
    );
    let env = Env {
        ramfs,
        program,
        deadline: cli.common.deadline(),
        legacy: cli.legacy_image_channel,
        server_log: cli.server_log,
        concurrency: cli.concurrency,
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
            regress::catalogue::EXEC_FROM_RAMFS
        );
    }
}
