//! Lent against copied writes from process memory, side by side in one run, against a real
//! ramfs:
//!
//! 1. **A 1 MiB mapped region written to a ramfs file** (`write_user`), by a kernel that
//!    lends (the default threshold) and one that copies (`lend_threshold: usize::MAX`),
//!    alternating: bytes copied a write (into the kernel and into 9P messages), bytes
//!    lent, throughput; and the honest cost of the loans: MMU invalidations each write's
//!    loan needed (the translations the first loan write-protected; on a multiprocessor
//!    each is a TLB shootdown), and the write faults the program then takes to store into
//!    its buffer again, against the bytes of copy the loan saved.
//! 2. **The threshold**: writes of 4, 8, 16 and 64 KiB to a pipe (and read back into a
//!    kernel buffer), lent against copied, where no server hides the difference: the time a
//!    write costs either way, and the ratio.
//!
//! 3. **The 2003 case**: an untouched 64 KiB anonymous buffer written to a pipe 10,000
//!    times (and read back), lent (the zero page: no frame) against copied (the loads
//!    read the zero page too, then copy 64 KiB): frames allocated and time.
//!
//! `cargo bench -p hosted --bench loan_bench` runs it in full; without `--bench` (as
//! `cargo test --benches` runs it) it runs a few rounds only. Times are printed, never
//! asserted (the machine is shared), and each is the median of its samples (a write, or
//! a batch of pipe rounds) times their count; the byte counts are checked, as they do not depend
//! on the machine.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::ListeningServer;
use hosted::mnt::OpenMode;
use hosted::vm::PAGE_SIZE;
use hosted::{Kernel, KernelConfig, MapRequest, MountFlags, Pid, Prot};

const MIB: usize = 1 << 20;

/// Times of repeated runs of one thing. What is reported is the median, times the count:
/// a neighbour's burst on the shared machine moves a few samples, not the median.
#[derive(Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn push(&mut self, time: Duration) {
        self.0.push(time);
    }

    /// The median sample times the number of samples.
    fn typical(&self) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted
            .get(sorted.len() / 2)
            .map_or(Duration::ZERO, |median| *median * sorted.len() as u32)
    }
}

/// One kernel of the comparison, with its process, its buffer and its file.
struct Side {
    kernel: Kernel,
    pid: Pid,
    /// A 1 MiB private anonymous mapping, stamped.
    buf: u64,
    out: usize,
    mount: hosted::mnt::Mount,
}

/// What one side measured over its rounds.
#[derive(Default)]
struct Tally {
    time: Samples,
    /// Time the program spent refilling its buffer (a store a page) before each write.
    refill_time: Samples,
    writes: u64,
    copied: u64,
    lent: u64,
    invalidations: u64,
    loans: u64,
    refill_faults: u64,
}

fn side(server: &ListeningServer, lend_threshold: usize, name: &str) -> Side {
    let kernel = Kernel::new(KernelConfig {
        lend_threshold,
        ..KernelConfig::default()
    })
    .expect("kernel");
    let pid = kernel.spawn();
    kernel
        .mount(pid, server.connect(), "/n", MountFlags::REPLACE)
        .expect("mount");
    let buf = kernel
        .mmap(
            pid,
            MapRequest {
                fd: None,
                offset: 0,
                len: MIB as u64,
                shared: false,
                prot: Prot::READ_WRITE,
                addr: None,
            },
        )
        .expect("mmap");
    let stamp: Vec<u8> = (0..MIB).map(|at| (at / PAGE_SIZE) as u8 | 1).collect();
    kernel.write_memory(pid, buf, &stamp).expect("stamp");
    let out = kernel
        .create(pid, &format!("/n/{name}"), 0o644, OpenMode::WRITE)
        .expect("create");
    let mount = kernel.mounts(pid).expect("mounts")[0].mount.clone();
    Side {
        kernel,
        pid,
        buf,
        out,
        mount,
    }
}

/// One round: the program refills the first byte of every page of its buffer (as it
/// would before writing it again), then writes the whole buffer at offset 0.
fn round(side: &Side, tally: &mut Tally) {
    let (kernel, pid) = (&side.kernel, side.pid);
    let faults = kernel.statistics().faults;
    let start = Instant::now();
    for page in 0..(MIB / PAGE_SIZE) as u64 {
        kernel
            .write_memory(pid, side.buf + page * PAGE_SIZE as u64, &[page as u8 | 1])
            .expect("refill");
    }
    tally.refill_time.push(start.elapsed());
    tally.refill_faults += kernel.statistics().faults - faults;
    let (stats, wire) = (kernel.statistics(), side.mount.stats());
    kernel.seek(pid, side.out, 0).expect("seek");
    let start = Instant::now();
    let n = kernel
        .write_user(pid, side.out, side.buf, MIB)
        .expect("write_user");
    tally.time.push(start.elapsed());
    assert_eq!(n, MIB);
    let (after, wire_after) = (kernel.statistics(), side.mount.stats());
    tally.writes += 1;
    tally.copied += (after.user_bytes_copied - stats.user_bytes_copied)
        + (wire_after.write_bytes_copied - wire.write_bytes_copied);
    tally.lent += wire_after.write_bytes_lent - wire.write_bytes_lent;
    tally.invalidations += after.vm.loan_invalidations - stats.vm.loan_invalidations;
    tally.loans += after.vm.loans - stats.vm.loans;
}

fn mib_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / MIB as f64 / time.as_secs_f64().max(1e-9)
}

fn file_writes(rounds: u64) {
    let server = ListeningServer::start();
    let lent = side(&server, hosted::LEND_THRESHOLD, "lent");
    let copied = side(&server, usize::MAX, "copied");
    let (mut lt, mut ct) = (Tally::default(), Tally::default());
    // A warm-up round each, uncounted (the server's pages, the mapping's first faults).
    round(&lent, &mut Tally::default());
    round(&copied, &mut Tally::default());
    for _ in 0..rounds {
        round(&lent, &mut lt);
        round(&copied, &mut ct);
    }
    assert_eq!(lt.copied, 0, "a lent write copies nothing");
    assert_eq!(lt.lent, lt.writes * MIB as u64);
    assert_eq!(ct.lent, 0);
    assert_eq!(
        ct.copied,
        2 * ct.writes * MIB as u64,
        "into the kernel, into messages"
    );
    println!("1 MiB mapped region written to a ramfs file, {rounds} writes each, alternating:");
    println!(
        "{:>8} {:>13} {:>11} {:>9} {:>16} {:>16} {:>10}",
        "",
        "copied/write",
        "lent/write",
        "MiB/s",
        "invalidations/w",
        "refill faults/w",
        "refill µs"
    );
    for (name, t) in [("lent", &lt), ("copied", &ct)] {
        println!(
            "{:>8} {:>13} {:>11} {:>9.1} {:>16.1} {:>16.1} {:>10.1}",
            name,
            t.copied / t.writes,
            t.lent / t.writes,
            mib_per_s(t.writes * MIB as u64, t.time.typical()),
            t.invalidations as f64 / t.writes as f64,
            t.refill_faults as f64 / t.writes as f64,
            t.refill_time.typical().as_secs_f64() * 1e6 / t.writes as f64,
        );
    }
    let whole = |t: &Tally| {
        mib_per_s(
            t.writes * MIB as u64,
            t.time.typical() + t.refill_time.typical(),
        )
    };
    println!(
        "write throughput lent/copied: {:.2}x; with the refill: {:.2}x. Each loan \
         invalidated {:.1} translations and cost {:.1} more write faults to refill, to save \
         {} bytes of copy",
        mib_per_s(lt.writes * MIB as u64, lt.time.typical())
            / mib_per_s(ct.writes * MIB as u64, ct.time.typical()),
        whole(&lt) / whole(&ct),
        lt.invalidations as f64 / lt.loans.max(1) as f64,
        (lt.refill_faults as f64 - ct.refill_faults as f64) / lt.writes as f64,
        (ct.copied - lt.copied) / lt.writes,
    );
}

/// A kernel writing `len` bytes from a stamped mapping to a pipe and reading them back.
struct PipeSide {
    kernel: Kernel,
    pid: Pid,
    buf: u64,
    fds: (usize, usize),
    back: Vec<u8>,
    /// The time of each batch of rounds.
    time: Samples,
}

fn pipe_side(lend_threshold: usize, len: usize) -> PipeSide {
    pipe_side_of(lend_threshold, len, true)
}

/// A [`PipeSide`] whose buffer is stamped, or left untouched (zero-fill memory).
fn pipe_side_of(lend_threshold: usize, len: usize, stamp: bool) -> PipeSide {
    let kernel = Kernel::new(KernelConfig {
        lend_threshold,
        ..KernelConfig::default()
    })
    .expect("kernel");
    let pid = kernel.spawn();
    let buf = kernel
        .mmap(
            pid,
            MapRequest {
                fd: None,
                offset: 0,
                len: len as u64,
                shared: false,
                prot: Prot::READ_WRITE,
                addr: None,
            },
        )
        .expect("mmap");
    if stamp {
        kernel
            .write_memory(pid, buf, &vec![7u8; len])
            .expect("stamp");
    }
    let fds = kernel.pipe(pid).expect("pipe");
    PipeSide {
        kernel,
        pid,
        buf,
        fds,
        back: vec![0u8; len],
        time: Samples::default(),
    }
}

impl PipeSide {
    /// `rounds` writes of the buffer, each read back at once into a kernel buffer.
    fn run(&mut self, rounds: u64) {
        let (len, (rfd, wfd)) = (self.back.len(), self.fds);
        let start = Instant::now();
        for _ in 0..rounds {
            assert_eq!(
                self.kernel.write_user(self.pid, wfd, self.buf, len),
                Ok(len)
            );
            let mut got = 0;
            while got < len {
                got += self
                    .kernel
                    .read(self.pid, rfd, &mut self.back[got..])
                    .expect("read");
            }
        }
        self.time.push(start.elapsed());
    }
}

fn threshold(rounds: u64) {
    println!("\nwrite_user of N bytes to a pipe and read back, {rounds} rounds each, alternating:");
    println!(
        "{:>8} {:>12} {:>12} {:>14}",
        "N", "lent µs/w", "copied µs/w", "lent/copied"
    );
    const BATCHES: u64 = 20;
    for len in [PAGE_SIZE, 2 * PAGE_SIZE, 4 * PAGE_SIZE, 16 * PAGE_SIZE] {
        let mut lent = pipe_side(hosted::LEND_THRESHOLD, len);
        let mut copied = pipe_side(usize::MAX, len);
        for _ in 0..BATCHES {
            lent.run(rounds / BATCHES);
            copied.run(rounds / BATCHES);
        }
        let done = rounds / BATCHES * BATCHES;
        assert_eq!(copied.kernel.statistics().user_bytes_lent, 0);
        assert_eq!(lent.kernel.statistics().user_bytes_lent, done * len as u64);
        let per = |d: Duration| d.as_secs_f64() * 1e6 / done as f64;
        println!(
            "{:>8} {:>12.2} {:>12.2} {:>14.2}",
            len,
            per(lent.time.typical()),
            per(copied.time.typical()),
            per(lent.time.typical()) / per(copied.time.typical())
        );
    }
}

fn untouched(rounds: u64) {
    println!("\nan untouched 64 KiB buffer written to a pipe {rounds} times, alternating:");
    println!("{:>8} {:>18} {:>10}", "", "frames allocated", "µs/write");
    const BATCHES: u64 = 20;
    let mut lent = pipe_side_of(hosted::LEND_THRESHOLD, 64 * 1024, false);
    let mut copied = pipe_side_of(usize::MAX, 64 * 1024, false);
    let frames = |side: &PipeSide| side.kernel.frames().stats().allocated;
    let (lent_before, copied_before) = (frames(&lent), frames(&copied));
    for _ in 0..BATCHES {
        lent.run(rounds / BATCHES);
        copied.run(rounds / BATCHES);
    }
    let done = rounds / BATCHES * BATCHES;
    let zero_loans = lent.kernel.statistics().vm.zero_page_loans;
    assert_eq!(zero_loans, done * 16, "every page lent was the zero page");
    for (name, side, before) in [
        ("lent", &lent, lent_before),
        ("copied", &copied, copied_before),
    ] {
        println!(
            "{:>8} {:>18} {:>10.2}",
            name,
            frames(side) - before,
            side.time.typical().as_secs_f64() * 1e6 / done as f64
        );
    }
    println!(
        "lent/copied time: {:.2}x ({} zero-page loans)",
        lent.time.typical().as_secs_f64() / copied.time.typical().as_secs_f64(),
        zero_loans
    );
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let (file_rounds, pipe_rounds, untouched_rounds) = if full {
        (100, 5000, 10_000)
    } else {
        (2, 20, 20)
    };
    file_writes(file_rounds);
    threshold(pipe_rounds);
    untouched(untouched_rounds);
}
