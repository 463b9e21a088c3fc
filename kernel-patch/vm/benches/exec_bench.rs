//! Exec with a warm image cache (text and data pages shared from the cache) against exec
//! that copies every PT_LOAD segment into fresh frames (what Redox's loader does today),
//! on one real ELF binary; and attach throughput on the hit path with 1 and 2 threads.
//!
//! `cargo bench -p vm --bench exec_bench`. The ELF is `$VM_BENCH_ELF`, else this bench
//! binary itself (a cargo-built binary of several MiB). Results are printed and written to
//! `$VM_BENCH_OUT` (default: `vm-exec-bench.txt` in the system's temporary directory).
//! Timings are for comparison side by side in one run, never assertions.

use std::fmt::Write as _;
use std::thread;
use std::time::{Duration, Instant};

use vm::testkit::{FakeFile, HeapFrames};
use vm::{Access, Config, FileIdentity, FrameAllocator, LoadSegment, Vm, PAGE_SIZE};

const PAGE: u64 = PAGE_SIZE as u64;
const ROUNDS: u32 = 20;

/// What one way of exec cost over all rounds.
#[derive(Default, Clone, Copy)]
struct Cost {
    time: Duration,
    frames: u64,
    bytes_copied: u64,
}

fn pages_of(load: &LoadSegment) -> u64 {
    let start = load.vaddr / PAGE * PAGE;
    (load.vaddr + load.mem_len).div_ceil(PAGE) - start / PAGE
}

/// Redox's loader today: a fresh frame for every page of every PT_LOAD, filled with pread.
fn exec_by_copying(file: &FakeFile, loads: &[LoadSegment], frames: &HeapFrames) -> Cost {
    let handle = file.open();
    let before = file.counts().bytes_read;
    let start = Instant::now();
    let mut cost = Cost::default();
    for _ in 0..ROUNDS {
        let mut mapped = Vec::new();
        for load in loads {
            let base = load.vaddr / PAGE * PAGE;
            for page in 0..pages_of(load) {
                let frame = frames.allocate().expect("frame");
                cost.frames += 1;
                let page_va = base + page * PAGE;
                frames.with_frame_mut(frame, &mut |bytes| {
                    bytes.fill(0);
                    // The part of the file range that falls in this page.
                    let from = page_va.max(load.vaddr);
                    let to = (page_va + PAGE).min(load.vaddr + load.file_len);
                    if from < to {
                        let at = (from - page_va) as usize;
                        let len = (to - from) as usize;
                        let offset = load.file_offset + (from - load.vaddr);
                        let mut done = 0;
                        while done < len {
                            let n = handle
                                .read_at(offset + done as u64, &mut bytes[at + done..at + len])
                                .expect("read");
                            if n == 0 {
                                break;
                            }
                            done += n;
                        }
                    }
                });
                mapped.push(frame);
            }
        }
        for frame in mapped {
            frames.free(frame);
        }
    }
    cost.time = start.elapsed();
    cost.bytes_copied = file.counts().bytes_read - before;
    handle.close();
    cost
}

/// Exec through the image cache, touching every page (`write_data`: also write every data
/// page, so copy-on-write copies them).
fn exec_warm(
    vm: &Vm,
    frames: &HeapFrames,
    file: &FakeFile,
    loads: &[LoadSegment],
    write_data: bool,
) -> Cost {
    let pages_before = vm.statistics().pages_allocated;
    let read_before = file.counts().bytes_read;
    let copies_before = frames.stats().copies;
    let start = Instant::now();
    for _ in 0..ROUNDS {
        let segments = vm.exec(file.open(), loads).expect("exec");
        for (segment, load) in segments.iter().zip(loads) {
            let access = if write_data && load.writable {
                Access::Write
            } else {
                Access::Read
            };
            for addr in (segment.base()..segment.end()).step_by(PAGE_SIZE) {
                segment.fault(addr, access).expect("fault");
            }
        }
    }
    Cost {
        time: start.elapsed(),
        frames: vm.statistics().pages_allocated - pages_before,
        bytes_copied: (file.counts().bytes_read - read_before)
            + (frames.stats().copies - copies_before) * PAGE,
    }
}

/// Attaches per second on the hit path with `threads` threads (an image kept active), each
/// thread attaching as a CPU of its own (`attach_on`), so the files handed over park in
/// its own queue.
fn attach_rate(vm: &Vm, file: &FakeFile, threads: u32) -> (u64, Duration) {
    let _keep = vm.attach(file.open()).expect("attach");
    let per_thread = 20_000u64;
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|cpu| {
            let (vm, file) = (vm.clone(), file.clone());
            thread::spawn(move || {
                for _ in 0..per_thread {
                    drop(vm.attach_on(cpu as usize, file.open()).expect("attach"));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    (per_thread * u64::from(threads), start.elapsed())
}

/// `a / b` with three decimals, in integers.
fn ratio(a: u128, b: u128) -> String {
    if b == 0 {
        return "inf".into();
    }
    let thousandths = a * 1000 / b;
    format!("{}.{:03}", thousandths / 1000, thousandths % 1000)
}

fn main() {
    let path = std::env::var_os("VM_BENCH_ELF")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::current_exe().expect("own path"));
    let data = std::fs::read(&path).expect("read the ELF");
    assert!(data.len() >= 1 << 20, "{} is under 1 MiB", path.display());
    let loads = vm::elf::load_segments(&data).expect("ELF64 program headers");
    let identity = FileIdentity {
        dev_type: u32::from(b'M'),
        dev: 1,
        qid_path: 1,
        version: 0,
    };
    let file = FakeFile::new(identity, data.clone());
    let total_pages: u64 = loads.iter().map(pages_of).sum();

    let frames = HeapFrames::new((total_pages * 3 + 64) as u32);
    let config = Config {
        max_pages: (total_pages * 3 + 32) as u32,
        ..Config::default()
    };
    let vm = Vm::new(frames.allocator(), config).expect("vm");
    // Warm the cache once.
    exec_warm(&vm, &frames, &file, &loads, false);
    let warm_read = exec_warm(&vm, &frames, &file, &loads, false);
    let warm_write = exec_warm(&vm, &frames, &file, &loads, true);
    let copy_frames = HeapFrames::new(total_pages as u32 + 8);
    let copied = exec_by_copying(&file, &loads, &copy_frames);

    let (one, one_time) = attach_rate(&vm, &file, 1);
    let (two, two_time) = attach_rate(&vm, &file, 2);
    let one_rate = u128::from(one) * 1_000_000 / one_time.as_micros().max(1);
    let two_rate = u128::from(two) * 1_000_000 / two_time.as_micros().max(1);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "binary {} ({} bytes, {} PT_LOAD, {} pages)",
        path.display(),
        data.len(),
        loads.len(),
        total_pages
    );
    let _ = writeln!(out, "{ROUNDS} execs each, every page touched");
    let _ = writeln!(
        out,
        "{:<28} {:>12} {:>10} {:>14}",
        "exec", "time_us", "frames", "bytes_copied"
    );
    for (name, cost) in [
        ("copy every PT_LOAD (Redox)", copied),
        ("warm cache, read", warm_read),
        ("warm cache, data written", warm_write),
    ] {
        let _ = writeln!(
            out,
            "{:<28} {:>12} {:>10} {:>14}",
            name,
            cost.time.as_micros(),
            cost.frames,
            cost.bytes_copied
        );
    }
    let _ = writeln!(
        out,
        "ratio copy/warm-read: time {} frames {} bytes {}",
        ratio(copied.time.as_micros(), warm_read.time.as_micros()),
        ratio(u128::from(copied.frames), u128::from(warm_read.frames)),
        ratio(
            u128::from(copied.bytes_copied),
            u128::from(warm_read.bytes_copied)
        ),
    );
    let _ = writeln!(
        out,
        "ratio copy/warm-written: time {} frames {} bytes {}",
        ratio(copied.time.as_micros(), warm_write.time.as_micros()),
        ratio(u128::from(copied.frames), u128::from(warm_write.frames)),
        ratio(
            u128::from(copied.bytes_copied),
            u128::from(warm_write.bytes_copied)
        ),
    );
    let _ = writeln!(
        out,
        "attach hit path: 1 thread {one_rate}/s, 2 threads {two_rate}/s, ratio 2/1 {}",
        ratio(two_rate, one_rate)
    );
    let _ = writeln!(out, "{}", vm.statistics().to_string().replace('\n', "; "));
    print!("{out}");
    let target = std::env::var_os("VM_BENCH_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("vm-exec-bench.txt"));
    match std::fs::write(&target, &out) {
        Ok(()) => println!("results written to {}", target.display()),
        Err(err) => eprintln!("could not write {}: {err}", target.display()),
    }
}
