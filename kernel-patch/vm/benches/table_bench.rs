//! The image table under load: attach and put on the hit path with 1 and 2 threads (the
//! same executable on both, and a different one on each), each thread a CPU of its own
//! draining its own park queue, beside the same with every drain running every queue and
//! without the closes; and the cost of attach, put,
//! reclaim and the mount cache's choices with few and with many cached images and files
//! (it must not grow with their number).
//!
//! `cargo bench -p vm --bench table_bench`. Timings are printed for comparison side by side
//! in one run, never asserted: the machine may be shared. `VM_TABLE_BENCH_ITERS` scales the
//! hit-path loop (default 200,000 attaches a thread).

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

/// The hit-path table for one way of running the closes: 1 thread, 2 threads on one
/// executable, 2 on different ones, measured one after the other, and the ratios.
fn hit_table(name: &str, iters: u64, closes: Closes) {
    let (one, one_total) = hit_rates(1, true, iters, closes);
    let (same, same_total) = hit_rates(2, true, iters, closes);
    let (diff, diff_total) = hit_rates(2, false, iters, closes);
    println!("{name}");
    for (row, rates, total) in [
        ("  1 thread", &one, one_total),
        ("  2 threads, same executable", &same, same_total),
        ("  2 threads, different ones", &diff, diff_total),
    ] {
        let second = rates
            .get(1)
            .map_or("-".to_string(), |rate| rate.to_string());
        println!("{row:<32} {:>12} {second:>12} {total:>12}", rates[0]);
    }
    println!(
        "  ratio total 2/1: same {} (goal >= 1.0), different {} (goal >= 1.8)",
        ratio(same_total, one_total),
        ratio(diff_total, one_total)
    );
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
    println!("attach+put hit path, {iters} a thread (attaches/s)");
    println!(
        "{:<32} {:>12} {:>12} {:>12}",
        "", "thread 0", "thread 1", "total"
    );
    hit_table(
        "attach_on(cpu), run_parked_closes_on(cpu) every 256 (a kernel saying its CPU)",
        iters,
        Closes::PerCpu,
    );
    hit_table(
        "attach, run_parked_closes every 256 (every CPU drains every queue)",
        iters,
        Closes::Shared,
    );
    hit_table("attach_on(cpu), no closes in the loop", iters, Closes::None);

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
