//! vm closes an image's channel with none of its locks held, the reclaim lock included.
//!
//! `ImageFile::close` may block, and in a kernel it may allocate, and so reclaim. The files
//! here do just that: their close looks at the image (table and image lock) and runs a
//! reclaim pass (reclaim lock) on the closing thread. vm's locks are spin locks, not
//! re-entrant, so a close called under any of them never returns. The race that once did
//! that: a program's last segment goes away while a reclaim pass holds its short reference
//! to the image, so reclaim's own put is the one that drops the channel. vm parks the file
//! now, and the threads close parked files at their safe points (`Vm::run_parked_closes`),
//! as a kernel does; the race is counted by vm (`Statistics::reclaim_channel_drops`) and
//! the test asserts that it happened.
//!
//! A close that never returns shows as a thread that stops making progress; the test waits
//! for progress, not for a duration of work, and fails when a thread has made none for a
//! long time (a reclaim pass over three small images takes microseconds).

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use vm::check::check_invariants;
use vm::testkit::FakeFile;
use vm::{Access, Config, FileError, FileIdentity, ImageFile, Vm, VmError};

/// Programs executed in turn: one more than the image table holds, so attach frees idle
/// images and the idle list is trimmed, besides the reclaimer's passes.
const PROGRAMS: u64 = 3;
/// Execs the exec thread runs at most.
const MAX_EXECS: u64 = 60_000;
/// Channels let go of by reclaim passes after which the race has been seen often enough.
const WANTED_RECLAIM_DROPS: u64 = 5;
/// A thread that makes no progress for this long is stuck in a close under a lock.
const STUCK_AFTER: Duration = Duration::from_secs(30);

thread_local! {
    /// Set on the reclaimer thread: counts closes that its reclaim passes made.
    static RECLAIMER: Cell<bool> = const { Cell::new(false) };
}

/// A handle to a [`FakeFile`] whose close re-enters vm the way a kernel's close may.
struct ReenteringFile {
    inner: Box<dyn ImageFile>,
    vm: Vm,
    closes_on_reclaimer: Arc<AtomicU64>,
}

impl ImageFile for ReenteringFile {
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
        // Table lock and image lock, then the reclaim lock: each spins for ever if this
        // thread holds it.
        let _ = self.vm.image_status(&self.inner.identity());
        self.vm.reclaim(1);
        if RECLAIMER.with(Cell::get) {
            self.closes_on_reclaimer.fetch_add(1, Ordering::SeqCst);
        }
        let Self { inner, vm, .. } = *self;
        // The handle held the vm; let it go before the file, as a channel would.
        drop(vm);
        inner.close();
    }
}

/// A thread's progress: a count that moves while it works, and whether it finished.
#[derive(Default)]
struct Progress {
    steps: AtomicU64,
    finished: AtomicBool,
}

/// Waits until every thread of `watched` has finished, failing when one of them has made
/// no progress for [`STUCK_AFTER`].
fn wait_for(watched: &[(&str, &Progress)]) {
    let mut seen: Vec<(u64, Instant)> = watched
        .iter()
        .map(|(_, progress)| (progress.steps.load(Ordering::SeqCst), Instant::now()))
        .collect();
    loop {
        let mut all_finished = true;
        for ((name, progress), (steps, since)) in watched.iter().zip(seen.iter_mut()) {
            if progress.finished.load(Ordering::SeqCst) {
                continue;
            }
            all_finished = false;
            let now = progress.steps.load(Ordering::SeqCst);
            if now != *steps {
                *steps = now;
                *since = Instant::now();
            }
            assert!(
                since.elapsed() < STUCK_AFTER,
                "the {name} thread made no progress for {STUCK_AFTER:?}: a close ran under one \
                 of vm's locks"
            );
        }
        if all_finished {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn channels_are_closed_with_no_vm_lock_held() {
    let world = world(Config {
        max_pages: 64,
        max_images: 2,
        max_idle_images: 1,
        reclaim_batch: 4,
        max_free_pages: 1,
    });
    let programs: Vec<Program> = (0..PROGRAMS)
        .map(|path| program(ident(1, 10 + path, 0), 2 * PAGE, PAGE, PAGE))
        .collect();
    let files: Vec<FakeFile> = programs.iter().map(|p| p.file.clone()).collect();
    let closes_on_reclaimer = Arc::new(AtomicU64::new(0));
    let exec_progress = Arc::new(Progress::default());
    let reclaim_progress = Arc::new(Progress::default());
    let stop = Arc::new(AtomicBool::new(false));

    let reclaimer = {
        let vm = world.vm.clone();
        let (progress, stop) = (reclaim_progress.clone(), stop.clone());
        thread::spawn(move || {
            RECLAIMER.with(|flag| flag.set(true));
            while !stop.load(Ordering::SeqCst) {
                vm.reclaim(usize::MAX);
                // The safe point: closes re-enter vm here, with no vm lock held.
                vm.run_parked_closes();
                progress.steps.fetch_add(1, Ordering::SeqCst);
            }
            progress.finished.store(true, Ordering::SeqCst);
        })
    };
    let executor = {
        let vm = world.vm.clone();
        let (progress, stop) = (exec_progress.clone(), stop.clone());
        let closes_on_reclaimer = closes_on_reclaimer.clone();
        thread::spawn(move || {
            let mut table_full = 0u64;
            for round in 0..MAX_EXECS {
                if vm.statistics().reclaim_channel_drops >= WANTED_RECLAIM_DROPS {
                    break;
                }
                let program = &programs[(round % PROGRAMS) as usize];
                let file = ReenteringFile {
                    inner: program.file.open(),
                    vm: vm.clone(),
                    closes_on_reclaimer: closes_on_reclaimer.clone(),
                };
                match vm.exec(Box::new(file), &program.loads) {
                    Ok(segments) => {
                        segments[0].fault(TEXT_VA, Access::Read).expect("text page");
                        drop(segments);
                    }
                    // The reclaimer may hold the short reference that keeps the only idle
                    // image from going away.
                    Err(VmError::ImageTableFull) => table_full += 1,
                    Err(err) => panic!("exec: {err}"),
                }
                vm.run_parked_closes();
                progress.steps.fetch_add(1, Ordering::SeqCst);
            }
            stop.store(true, Ordering::SeqCst);
            progress.finished.store(true, Ordering::SeqCst);
            table_full
        })
    };

    wait_for(&[("exec", &exec_progress), ("reclaimer", &reclaim_progress)]);
    let table_full = executor.join().expect("exec thread");
    reclaimer.join().expect("reclaimer thread");
    let reclaim_drops = world.vm.statistics().reclaim_channel_drops;
    eprintln!(
        "execs={} reclaim passes={} channels reclaim let go of={reclaim_drops} closes on the \
         reclaimer={} table full={}",
        exec_progress.steps.load(Ordering::SeqCst),
        reclaim_progress.steps.load(Ordering::SeqCst),
        closes_on_reclaimer.load(Ordering::SeqCst),
        table_full,
    );
    assert!(
        reclaim_drops > 0,
        "the race never happened: no reclaim pass let a channel go"
    );
    world.vm.run_parked_closes();

    if let Err(violation) = check_invariants(&world.vm, Some(&[])) {
        panic!("{violation}");
    }
    for file in &files {
        let counts = file.counts();
        assert_eq!(counts.open_handles(), 0, "{counts:?}");
        assert_eq!(counts.unclosed_drops, 0, "{counts:?}");
    }
}
