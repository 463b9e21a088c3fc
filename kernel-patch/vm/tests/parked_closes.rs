//! vm never closes a channel on a fault's path: the close is parked, and runs where the
//! kernel says it may (`Vm::run_parked_closes`, or a CPU's own `Vm::run_parked_closes_on`).
//!
//! The path: a fault needs a page, the pool is empty, so the fault reclaims; reclaim takes
//! its short reference to an image whose last segment another thread drops meanwhile, so
//! reclaim's own put finds `ref == pgref` and lets the channel go, on the faulting thread,
//! under the kernel's process segment lock (modelled here by a mutex the faulting thread
//! holds around the fault). A `close` there may block on the server with that lock held.
//!
//! The files record whether their close ran while a fault was in progress on the closing
//! thread; the race itself is counted by vm (`Statistics::reclaim_channel_drops`, only
//! the faulting thread reclaims), and the test goes on until it happened.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use common::*;
use vm::testkit::FakeFile;
use vm::{Access, Config, FaultError, FileError, FileIdentity, ImageFile, SegmentKind};

/// Faults after which the test gives up waiting for the race.
const MAX_FAULTS: u64 = 2_000_000;
/// Reclaim passes that let a channel go after which the race has been seen enough.
const WANTED_RACES: u64 = 3;

thread_local! {
    /// Set while this thread is inside a fault, holding its "process segment lock".
    static IN_FAULT: Cell<bool> = const { Cell::new(false) };
}

/// A handle whose close notes whether it ran inside a fault.
struct WatchedFile {
    inner: Box<dyn ImageFile>,
    closes: Arc<AtomicU64>,
    closes_in_fault: Arc<AtomicU64>,
}

impl ImageFile for WatchedFile {
    fn identity(&self) -> FileIdentity {
        self.inner.identity()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        self.inner.read_at(offset, buf)
    }

    fn length(&self) -> Result<u64, FileError> {
        self.inner.length()
    }

    fn close(self: Box<Self>) {
        if IN_FAULT.with(Cell::get) {
            self.closes_in_fault.fetch_add(1, Ordering::SeqCst);
        }
        self.closes.fetch_add(1, Ordering::SeqCst);
        self.inner.close();
    }
}

#[test]
fn a_fault_that_reclaims_parks_the_channel_it_lets_go_of() {
    // Large tables, so the exec thread's attach never frees an idle image and its put never
    // trims: the only reclaim passes are the faulting thread's.
    let world = world(Config {
        max_pages: 8,
        max_images: 64,
        max_idle_images: 64,
        reclaim_batch: 4,
        max_free_pages: 0,
    });
    let programs: Vec<Program> = (0..2)
        .map(|path| program(ident(1, 40 + path, 0), PAGE, PAGE, PAGE))
        .collect();
    let files: Vec<FakeFile> = programs.iter().map(|p| p.file.clone()).collect();
    let closes = Arc::new(AtomicU64::new(0));
    let closes_in_fault = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    // Every page of the pool, held by a zero-fill segment of one more page than the pool:
    // each fault on its last page finds the pool empty and reclaims.
    let pages = u64::from(world.vm.config().max_pages);
    let bss = world
        .vm
        .zero_segment(SegmentKind::Bss, STACK_VA, (pages + 1) * PAGE)
        .expect("bss");
    for page in 0..pages {
        bss.fault(STACK_VA + page * PAGE, Access::Write)
            .expect("a page of the pool");
    }

    let faulter = {
        let (vm, stop) = (world.vm.clone(), stop.clone());
        let segment_lock = Mutex::new(());
        thread::spawn(move || {
            let mut faults = 0u64;
            while faults < MAX_FAULTS && vm.statistics().reclaim_channel_drops < WANTED_RACES {
                {
                    let _held = segment_lock.lock().unwrap();
                    IN_FAULT.with(|flag| flag.set(true));
                    let result = bss.fault(STACK_VA + pages * PAGE, Access::Write);
                    IN_FAULT.with(|flag| flag.set(false));
                    assert_eq!(result, Err(FaultError::NoMemory));
                }
                // The kernel's safe point: no lock of its own held.
                vm.run_parked_closes();
                faults += 1;
            }
            stop.store(true, Ordering::SeqCst);
            faults
        })
    };
    let execer = {
        let (vm, stop) = (world.vm.clone(), stop.clone());
        let (closes, closes_in_fault) = (closes.clone(), closes_in_fault.clone());
        thread::spawn(move || {
            let mut round = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let program = &programs[round % programs.len()];
                let file = WatchedFile {
                    inner: program.file.open(),
                    closes: closes.clone(),
                    closes_in_fault: closes_in_fault.clone(),
                };
                // No fault here: these images never get a page, so only the faulting
                // thread ever reclaims, and they are never idle.
                drop(vm.exec(Box::new(file), &program.loads).expect("exec"));
                vm.run_parked_closes();
                round += 1;
            }
            round
        })
    };
    let faults = faulter.join().expect("faulting thread");
    let execs = execer.join().expect("exec thread");
    let stats = world.vm.statistics();
    eprintln!(
        "faults={faults} execs={execs} reclaim_channel_drops={} closes={} closes in a fault={}",
        stats.reclaim_channel_drops,
        closes.load(Ordering::SeqCst),
        closes_in_fault.load(Ordering::SeqCst),
    );
    assert!(
        stats.reclaim_channel_drops > 0,
        "the race never happened: no fault's reclaim let a channel go"
    );
    assert_eq!(
        closes_in_fault.load(Ordering::SeqCst),
        0,
        "a channel was closed inside a fault, under the kernel's lock"
    );
    world.vm.run_parked_closes();
    assert_eq!(world.vm.parked_closes(), 0);
    assert_eq!(closes.load(Ordering::SeqCst), execs as u64);
    for file in &files {
        let counts = file.counts();
        assert_eq!(counts.open_handles(), 0, "{counts:?}");
        assert_eq!(counts.unclosed_drops, 0, "{counts:?}");
    }
}

#[test]
fn parked_files_are_closed_only_when_the_kernel_says_so() {
    let world = world(small_config());
    let program = program(ident(1, 50, 0), PAGE, PAGE, PAGE);
    let process = exec(&world, &program);
    // The handle exec opened is the image's channel; a second attach's handle is let go
    // at once (the image has a channel), and parked.
    let image = world.vm.attach(program.file.open()).expect("attach");
    assert_eq!(world.vm.parked_closes(), 1);
    assert_eq!(program.file.counts().open_handles(), 2);
    drop(image);
    drop(process);
    // Every user is gone: the image is idle and let its channel go; nothing closed yet.
    assert_eq!(world.vm.parked_closes(), 2);
    assert_eq!(world.vm.statistics().parked_closes, 2);
    assert_eq!(program.file.counts().open_handles(), 2);
    assert_eq!(world.vm.run_parked_closes(), 2);
    assert_eq!(program.file.counts().open_handles(), 0);
    assert_eq!(world.vm.run_parked_closes(), 0);
}

#[test]
fn files_still_parked_are_closed_when_the_vm_goes() {
    let world = world(small_config());
    let program = program(ident(1, 51, 0), PAGE, PAGE, PAGE);
    drop(exec(&world, &program));
    assert_eq!(world.vm.parked_closes(), 1);
    drop(world);
    let counts = program.file.counts();
    assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
}

/// CPU numbers of the per-CPU tests: two CPUs with queues of their own.
const CPU_A: usize = 0;
const CPU_B: usize = 1;

#[test]
fn a_file_parked_on_a_cpu_is_closed_by_its_own_cpus_drain_and_not_by_another_cpus() {
    let world = world(small_config());
    let program = program(ident(1, 52, 0), PAGE, PAGE, PAGE);
    // On CPU A the image gets its channel (the first attach's file).
    let held = world
        .vm
        .attach_on(CPU_A, program.file.open())
        .expect("attach");
    assert_eq!(world.vm.parked_closes(), 0);
    // On CPU B the image has a channel already: the file handed over parks on B.
    drop(
        world
            .vm
            .attach_on(CPU_B, program.file.open())
            .expect("attach"),
    );
    assert_eq!(world.vm.parked_closes(), 1);
    assert_eq!(world.vm.parked_closes_on(CPU_A), 0);
    assert_eq!(world.vm.parked_closes_on(CPU_B), 1);
    // A's drain does not touch B's queue.
    assert_eq!(world.vm.run_parked_closes_on(CPU_A), 0);
    assert_eq!(program.file.counts().open_handles(), 2);
    // B's does.
    assert_eq!(world.vm.run_parked_closes_on(CPU_B), 1);
    assert_eq!(program.file.counts().open_handles(), 1);
    // A CPU number past the queues shares the queue of its number modulo their count.
    let far = CPU_B + vm::Vm::PARK_CPU_QUEUES;
    drop(
        world
            .vm
            .attach_on(far, program.file.open())
            .expect("attach"),
    );
    assert_eq!(world.vm.parked_closes_on(CPU_B), 1);
    assert_eq!(world.vm.run_parked_closes_on(CPU_A), 0);
    assert_eq!(world.vm.run_parked_closes_on(CPU_B), 1);
    // The drain of everything closes a file parked on a CPU too.
    drop(
        world
            .vm
            .attach_on(CPU_B, program.file.open())
            .expect("attach"),
    );
    assert_eq!(world.vm.parked_closes_on(CPU_B), 1);
    assert_eq!(world.vm.run_parked_closes(), 1);
    assert_eq!(program.file.counts().open_handles(), 1);
    // The channel's file, let go of on B although A attached it, parks where every CPU's
    // drain looks: A's next drain (or B's) closes it.
    drop(held);
    assert_eq!(world.vm.parked_closes_on(CPU_A), 1);
    assert_eq!(world.vm.parked_closes_on(CPU_B), 1);
    assert_eq!(world.vm.run_parked_closes_on(CPU_A), 1);
    assert_eq!(world.vm.parked_closes(), 0);
    let counts = program.file.counts();
    assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
}

#[test]
fn exec_on_a_cpu_parks_there_and_the_vm_going_closes_what_a_cpu_left_parked() {
    let world = world(small_config());
    let program = program(ident(1, 53, 0), PAGE, PAGE, PAGE);
    let first = world
        .vm
        .exec_on(CPU_A, program.file.open(), &program.loads)
        .expect("exec");
    let second = world
        .vm
        .exec_on(CPU_B, program.file.open(), &program.loads)
        .expect("exec");
    // The second exec's file parked on B, the channel is the first's.
    assert_eq!(world.vm.parked_closes_on(CPU_A), 0);
    assert_eq!(world.vm.parked_closes_on(CPU_B), 1);
    drop((first, second));
    // The image went idle: its channel's file joined the shared queue.
    assert_eq!(world.vm.parked_closes_on(CPU_A), 1);
    assert_eq!(world.vm.parked_closes(), 2);
    assert_eq!(program.file.counts().open_handles(), 2);
    // No drain at all: the last handle of the vm closes both.
    drop(world);
    let counts = program.file.counts();
    assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
}
