//! The image table under load: attach and put on the hit path with 1 and 2 threads (the
//! same executable on both, and a different one on each), each thread a CPU of its own
//! draining its own park queue, beside the same with every drain running every queue and
//! without the closes; and the cost of attach, put,
//! reclaim and the mount cache's choices with few and with many cached images and files
//! (it must not grow with their number).
//!
//! `cargo bench -p vm --bench table_bench`. Timings are printed for comparison side by side
//! in one run, never asserted: the machine may be shared. `VM_TABLE_BENCH_ITERS` scales the
//! hit-path loop (default 200,000 attaches a thread), `VM_TABLE_BENCH_ROUNDS` its rounds
//! (default 5; medians are printed).

use std::thread;
use std::time::{Duration, Instant};

use vm::testkit::{FakeFile, HeapFrames};
use vm::{
    Access, AllocError, AllocSite, Config, FileIdentity, Frame, FrameAllocator, LoadSegment,
    MountCacheConfig, OpenKind, Vm, PAGE_SIZE,
};

const PAGE: u64 = PAGE_SIZE as u64;
const TEXT_VA: u64 = 0x10_0000;
/// Attaches between two runs of the parked closes, as a kernel runs them on its way out of
/// system calls (an attach that finds a channel parks the file it was given).
const CLOSE_EVERY: u64 = 256;

/// The test kit's frames without its fault injection: `HeapFrames` counts every admitted
/// allocation in one shared atomic and looks at a shared lock, which a kernel's allocator
/// does not, and which would make every attach of every thread share a cache line here.
struct KernelFrames(Box<dyn FrameAllocator>);

impl FrameAllocator for KernelFrames {
    fn allocate(&self) -> Result<Frame, AllocError> {
        self.0.allocate()
    }

    fn free(&self, frame: Frame) {
        self.0.free(frame);
    }

    fn in_use_elsewhere(&self, frame: Frame) -> bool {
        self.0.in_use_elsewhere(frame)
    }

    fn zero(&self, frame: Frame) {
        self.0.zero(frame);
    }

    fn copy(&self, from: Frame, to: Frame) {
        self.0.copy(from, to);
    }

    fn with_frame_mut(&self, frame: Frame, f: &mut dyn FnMut(&mut [u8; PAGE_SIZE])) {
        self.0.with_frame_mut(frame, f);
    }

    fn with_frame(&self, frame: Frame, f: &mut dyn FnMut(&[u8; PAGE_SIZE])) {
        self.0.with_frame(frame, f);
    }

    fn admit_allocation(&self, _site: AllocSite) -> Result<(), AllocError> {
        Ok(())
    }

    fn zero_frame(&self) -> Option<Frame> {
        self.0.zero_frame()
    }
}

fn kernel_frames(capacity: u32) -> Box<dyn FrameAllocator> {
    let frames = HeapFrames::new(capacity);
    let allocator = frames.allocator();
    // The handle only keeps the fault-injection controls, which the bench does not use.
    drop(frames);
    Box::new(KernelFrames(allocator))
}

fn ident(dev: u64, path: u64) -> FileIdentity {
    FileIdentity {
        dev_type: u32::from(b'M'),
        dev,
        qid_path: path,
        version: 0,
    }
}

fn one_page_text() -> [LoadSegment; 1] {
    [LoadSegment {
        vaddr: TEXT_VA,
        mem_len: PAGE,
        file_offset: 0,
        file_len: PAGE,
        writable: false,
    }]
}

/// `a / b` with three decimals, in integers.
fn ratio(a: u128, b: u128) -> String {
    if b == 0 {
        return "inf".into();
    }
    let thousandths = a * 1000 / b;
    format!("{}.{:03}", thousandths / 1000, thousandths % 1000)
}

fn per_second(ops: u64, time: Duration) -> u128 {
    u128::from(ops) * 1_000_000_000 / time.as_nanos().max(1)
}

fn nanos_per(time: Duration, ops: u64) -> u128 {
    time.as_nanos() / u128::from(ops.max(1))
}

/// How a hit-path thread attaches and runs the parked closes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Closes {
    /// `attach_on(cpu)` and `run_parked_closes_on(cpu)`, thread `i` as CPU `i`: a kernel
    /// that says its CPU.
    PerCpu,
    /// `attach` and `run_parked_closes`: every file in the shared queue, every run drains
    /// all queues (a kernel that does not say its CPU).
    Shared,
    /// `attach_on(cpu)` and no closes in the loop (one run after it): what attach and put
    /// cost apart from closing.
    None,
}

/// Attach+put rates on the hit path (every image kept active by one reference held here):
/// per thread, and in total. `same`: every thread attaches one file; else one file each.
/// Each thread runs the parked closes every [`CLOSE_EVERY`] attaches, as `closes` says,
/// and once more after the loop.
fn hit_rates(threads: u64, same: bool, iters: u64, closes: Closes) -> (Vec<u128>, u128) {
    let vm = Vm::new(kernel_frames(64), Config::default()).expect("vm");
    // One file, or one a thread, each in a shard of its own (as most pairs are).
    let mut paths: Vec<u64> = Vec::new();
    let mut path = 1;
    while paths.len() < threads as usize {
        let shard = Vm::table_shard(&ident(1, path));
        if same && !paths.is_empty() {
            paths.push(paths[0]);
        } else if paths
            .iter()
            .all(|p| Vm::table_shard(&ident(1, *p)) != shard)
        {
            paths.push(path);
        }
        path += 1;
    }
    let files: Vec<FakeFile> = paths
        .iter()
        .map(|path| FakeFile::new(ident(1, *path), vec![0; 64]))
        .collect();
    let _keep: Vec<_> = files
        .iter()
        .map(|file| vm.attach(file.open()).expect("attach"))
        .collect();
    let start = std::sync::Barrier::new(threads as usize);
    let per_thread: Vec<(u64, Duration)> = thread::scope(|scope| {
        let workers: Vec<_> = files
            .iter()
            .enumerate()
            .map(|(cpu, file)| {
                let (vm, start) = (&vm, &start);
                scope.spawn(move || {
                    start.wait();
                    let began = Instant::now();
                    for i in 0..iters {
                        let image = match closes {
                            Closes::Shared => vm.attach(file.open()),
                            Closes::PerCpu | Closes::None => vm.attach_on(cpu, file.open()),
                        };
                        drop(image.expect("attach"));
                        if i % CLOSE_EVERY == 0 {
                            match closes {
                                Closes::PerCpu => vm.run_parked_closes_on(cpu),
                                Closes::Shared => vm.run_parked_closes(),
                                Closes::None => 0,
                            };
                        }
                    }
                    (iters, began.elapsed())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("worker"))
            .collect()
    });
    vm.run_parked_closes();
    let rates: Vec<u128> = per_thread
        .iter()
        .map(|(ops, time)| per_second(*ops, *time))
        .collect();
    let total = rates.iter().sum();
    (rates, total)
}

/// One round of the hit path for one way of running the closes: totals of 1 thread, 2
/// threads on one executable, 2 on different ones, measured one after the other.
fn hit_round(iters: u64, closes: Closes) -> [u128; 3] {
    [
        hit_rates(1, true, iters, closes).1,
        hit_rates(2, true, iters, closes).1,
        hit_rates(2, false, iters, closes).1,
    ]
}

/// The median of `values` (sorted here).
fn median(values: &mut [u128]) -> u128 {
    values.sort_unstable();
    values[values.len() / 2]
}

/// The hit-path tables: `rounds` rounds, each running every way of closing in turn (so a
/// burst of load elsewhere hits all of them alike), then for each way the median totals
/// and the median and range of the round's ratios (2 threads / 1 thread, each ratio of
/// figures measured side by side in one round).
fn hit_tables(iters: u64, rounds: usize) {
    let ways = [
        (
            "attach_on(cpu), run_parked_closes_on(cpu) every 256 (a kernel saying its CPU)",
            Closes::PerCpu,
        ),
        (
            "attach, run_parked_closes every 256 (every drain runs every queue)",
            Closes::Shared,
        ),
        ("attach_on(cpu), no closes in the loop", Closes::None),
    ];
    let mut totals = vec![Vec::new(); ways.len()];
    for _ in 0..rounds {
        for (way, (_, closes)) in ways.iter().enumerate() {
            totals[way].push(hit_round(iters, *closes));
        }
    }
    println!(
        "attach+put hit path, {iters} a thread, {rounds} rounds (attaches/s in all, medians; \
         ratio 2 threads / 1 thread: median [min-max] of the rounds)"
    );
    println!(
        "{:<78} {:>9} {:>9} {:>9} {:>22} {:>22}",
        "", "1 thread", "2 same", "2 diff", "same/1 (goal >= 1.0)", "diff/1 (goal >= 1.8)"
    );
    for ((name, _), rounds) in ways.iter().zip(&totals) {
        let column = |i: usize| median(&mut rounds.iter().map(|r| r[i]).collect::<Vec<_>>());
        let ratios = |i: usize| {
            let mut thousandths: Vec<u128> =
                rounds.iter().map(|r| r[i] * 1000 / r[0].max(1)).collect();
            let mid = median(&mut thousandths);
            let show = |t: u128| format!("{}.{:03}", t / 1000, t % 1000);
            format!(
                "{} [{}-{}]",
                show(mid),
                show(thousandths[0]),
                show(thousandths[thousandths.len() - 1])
            )
        };
        println!(
            "{name:<78} {:>9} {:>9} {:>9} {:>22} {:>22}",
            column(0),
            column(1),
            column(2),
            ratios(1),
            ratios(2)
        );
    }
}

/// A vm holding `n` idle executable images (one cached page each) and `n` mount-cache files
/// (one cached page each), and the images' files.
struct Populated {
    vm: Vm,
    images: Vec<FakeFile>,
    next_path: u64,
}

impl Populated {
    fn new(n: u64) -> Self {
        let limit = (n + 64) as u32;
        let config = Config {
            max_pages: (4 * n + 4096) as u32,
            max_images: limit,
            max_idle_images: limit,
            reclaim_batch: 1,
            max_free_pages: (4 * n + 4096) as u32,
        };
        let mount_cache = MountCacheConfig {
            max_file_bytes: 8 << 20,
            max_bytes: (2 * n + 64) * PAGE,
            max_files: n as u32,
        };
        let vm = Vm::with_mount_cache(kernel_frames((4 * n + 4200) as u32), config, mount_cache)
            .expect("vm");
        let mut populated = Self {
            vm,
            images: Vec::new(),
            next_path: 1,
        };
        for _ in 0..n {
            let file = populated.new_idle_image();
            populated.images.push(file);
            populated.new_cached_file();
        }
        populated.vm.run_parked_closes();
        populated
    }

    /// Makes one more idle image: exec, fault its page in, exit.
    fn new_idle_image(&mut self) -> FakeFile {
        let file = FakeFile::new(ident(1, self.next_path), vec![7; PAGE as usize]);
        self.next_path += 1;
        self.make_idle(&file);
        file
    }

    fn make_idle(&self, file: &FakeFile) {
        let segments = self.vm.exec(file.open(), &one_page_text()).expect("exec");
        segments[0].fault(TEXT_VA, Access::Read).expect("fault");
        drop(segments);
    }

    /// Opens one more mount-cache file (on another device than the images) and caches a
    /// page of it.
    fn new_cached_file(&mut self) {
        let identity = ident(2, self.next_path);
        self.next_path += 1;
        let file = self
            .vm
            .mount_cache()
            .open(identity, PAGE, OpenKind::Existing, false);
        let mut buf = vec![0; PAGE as usize];
        let read = file.read(0, &mut buf);
        file.fill(read.ticket, 0, &vec![3; PAGE as usize]);
    }
}

/// Nanoseconds an operation with `n` cached images and files: attach+put of an idle image,
/// reclaim of one page (an idle image's, which frees it; refilled outside the timing),
/// a mount-cache open that evicts the least recently used file, and a mount-cache reclaim
/// of one page.
fn scaling(n: u64, ops: u64) -> [u128; 4] {
    let mut world = Populated::new(n);
    let vm = world.vm.clone();

    let began = Instant::now();
    for i in 0..ops {
        let file = &world.images[(i % n) as usize];
        drop(vm.attach(file.open()).expect("attach"));
        if i % CLOSE_EVERY == 0 {
            vm.run_parked_closes();
        }
    }
    let attach_put = began.elapsed();

    let mut reclaim = Duration::ZERO;
    for _ in 0..ops {
        let began = Instant::now();
        let freed = vm.reclaim(1);
        reclaim += began.elapsed();
        assert_eq!(freed, 1, "an idle image's page");
        let file = world.new_idle_image();
        world.images.push(file);
        vm.run_parked_closes();
    }

    let mut evict = Duration::ZERO;
    for _ in 0..ops {
        let identity = ident(2, world.next_path);
        world.next_path += 1;
        let began = Instant::now();
        let file = vm
            .mount_cache()
            .open(identity, PAGE, OpenKind::Existing, false);
        evict += began.elapsed();
        assert!(file.is_cached());
    }

    let mut mc_reclaim = Duration::ZERO;
    for _ in 0..ops {
        let began = Instant::now();
        let freed = vm.mount_cache().reclaim(1);
        mc_reclaim += began.elapsed();
        assert!(freed <= 1);
        world.new_cached_file();
    }
    [
        nanos_per(attach_put, ops),
        nanos_per(reclaim, ops),
        nanos_per(evict, ops),
        nanos_per(mc_reclaim, ops),
    ]
}

/// Nanoseconds a page to reclaim every page of one idle image of `pages` pages (its chains
/// `pages / 256` long): reclaim must not walk the chains again for each page it takes.
fn reclaim_pages_cost(pages: u64) -> u128 {
    let config = Config {
        max_pages: (pages + 64) as u32,
        max_free_pages: (pages + 64) as u32,
        ..Config::default()
    };
    let vm = Vm::new(kernel_frames((pages + 128) as u32), config).expect("vm");
    let file = FakeFile::new(ident(3, 1), vec![5; (pages * PAGE) as usize]);
    let text = [LoadSegment {
        vaddr: TEXT_VA,
        mem_len: pages * PAGE,
        file_offset: 0,
        file_len: pages * PAGE,
        writable: false,
    }];
    let segments = vm.exec(file.open(), &text).expect("exec");
    for page in 0..pages {
        segments[0]
            .fault(TEXT_VA + page * PAGE, Access::Read)
            .expect("fault");
    }
    drop(segments);
    vm.run_parked_closes();
    let began = Instant::now();
    let freed = vm.reclaim(pages as usize);
    let time = began.elapsed();
    assert_eq!(freed as u64, pages);
    nanos_per(time, pages)
}

fn main() {
    let iters = std::env::var("VM_TABLE_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000u64);
    let rounds = std::env::var("VM_TABLE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize)
        .max(1);
    hit_tables(iters, rounds);

    let ops = 2_000;
    let few = scaling(10, ops);
    let many = scaling(10_000, ops);
    println!("cost with n cached images and n mount-cache files (ns an operation, {ops} ops)");
    println!(
        "{:<36} {:>10} {:>10} {:>12}",
        "", "n=10", "n=10000", "10000/10"
    );
    for (i, name) in [
        "attach+put of an idle image",
        "reclaim(1) (frees an idle image)",
        "mount-cache open evicting the LRU",
        "mount-cache reclaim(1)",
    ]
    .iter()
    .enumerate()
    {
        println!(
            "{:<36} {:>10} {:>10} {:>12}",
            name,
            few[i],
            many[i],
            ratio(many[i], few[i])
        );
    }
    let (short, long) = (reclaim_pages_cost(256), reclaim_pages_cost(8192));
    println!("reclaim of all pages of one idle image (ns a page)");
    println!(
        "{:<36} {:>10} {:>10} {:>12}",
        "256 pages vs 8192 pages",
        short,
        long,
        ratio(long, short)
    );
}
