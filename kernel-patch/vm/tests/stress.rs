//! Stress: threads exec, fault, fork and exit while another reclaims, all at once, with
//! memory tight enough that faults reclaim too. Every page read is compared with its file;
//! at the end the invariant checker walks everything and every frame and handle is back.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use common::*;
use vm::check::check_invariants;
use vm::{Access, Config, FaultError, SegmentKind, VmError};

/// A small deterministic generator, one per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORKERS: u64 = 4;
const ROUNDS: u64 = 300;

#[test]
fn exec_fault_fork_exit_and_reclaim_at_once() {
    let config = Config {
        max_pages: 40,
        max_images: 6,
        max_idle_images: 3,
        reclaim_batch: 8,
    };
    let world = Arc::new(world(config));
    let programs: Arc<Vec<Program>> = Arc::new(
        (0..8)
            .map(|n| {
                program(
                    ident(1 + n % 2, 100 + n / 2, (n % 3) as u32),
                    (2 + n % 3) * PAGE + 33 * n,
                    PAGE + 17 * n,
                    PAGE,
                )
            })
            .collect(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));

    let reclaimer = {
        let world = world.clone();
        let done = done.clone();
        thread::spawn(move || {
            let mut rng = Rng(0x5eed);
            let mut passes = 0u64;
            while !done.load(Ordering::Acquire) {
                // Reclaim now and then, so the cache also fills and faults reclaim too.
                if rng.below(64) == 0 {
                    world.vm.reclaim(1 + rng.below(16) as usize);
                    passes += 1;
                }
                thread::yield_now();
            }
            passes
        })
    };

    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let world = world.clone();
            let programs = programs.clone();
            let refused = refused.clone();
            thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9 + worker * 7919);
                for _ in 0..ROUNDS {
                    let program = &programs[rng.below(programs.len() as u64) as usize];
                    let segments = match world.vm.exec(program.file.open(), &program.loads) {
                        Ok(segments) => segments,
                        Err(VmError::ImageTableFull | VmError::NoMemory) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Err(err) => panic!("exec: {err}"),
                    };
                    let mut children = Vec::new();
                    // Pages this process wrote read back its own bytes, not the file's.
                    let mut written = std::collections::HashSet::new();
                    for _ in 0..6 {
                        let index = rng.below(segments.len() as u64) as usize;
                        let (segment, load) = (&segments[index], &program.loads[index]);
                        let pages = (segment.end() - segment.base()) / PAGE;
                        let addr = segment.base() + rng.below(pages) * PAGE;
                        let write = segment.kind() == SegmentKind::Data && rng.below(3) == 0;
                        let access = if write { Access::Write } else { Access::Read };
                        match segment.fault(addr, access) {
                            Ok(mapping) if !write => {
                                if !written.contains(&addr) {
                                    assert_page_eq(
                                        &world.frames.read(mapping.frame),
                                        &expected_page(&program.file, load, addr),
                                        &format!("page {addr:#x} of {:?}", program.file.identity()),
                                    );
                                }
                            }
                            Ok(mapping) => {
                                world.frames.write(mapping.frame, 0, &worker.to_le_bytes());
                                written.insert(addr);
                            }
                            Err(FaultError::NoMemory) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(err) => panic!("fault: {err}"),
                        }
                        if rng.below(8) == 0 {
                            if let Ok(child) = segment.fork() {
                                children.push(child);
                            }
                        }
                    }
                    drop(children);
                    drop(segments);
                }
            })
        })
        .collect();

    for worker in workers {
        worker.join().expect("worker");
    }
    done.store(true, Ordering::Release);
    let passes = reclaimer.join().expect("reclaimer");
    assert!(passes > 0);

    let report = match check_invariants(&world.vm, Some(&[])) {
        Ok(report) => report,
        Err(violation) => panic!("{violation}"),
    };
    assert_eq!(report.open_channels, 0);
    assert_eq!(report.private_pages, 0);
    let stats = world.vm.statistics();
    assert_eq!(stats.images_active, 0);
    assert!(stats.attach_hits > 0, "{stats:?}");
    println!("{stats:?}, refused {}", refused.load(Ordering::Relaxed));
    for program in programs.iter() {
        let counts = program.file.counts();
        assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
    }
    let frames = world.frames.clone();
    drop(world);
    assert_eq!(frames.stats().outstanding(), 0);
}
