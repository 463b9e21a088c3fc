//! loom models of the lock protocols. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p vm --test loom --release`.
//!
//! 1. attach vs put vs reclaim of an idle image (9front's 2025 image locking);
//! 2. attach vs the last put of an image (put's re-check under the table lock);
//! 3. putseg vs a new attach of the same text segment (9front's A/B/A race of June 2025).
//!
//! Each model checks the invariants afterwards, that the pages read are the file's, that
//! every file handle is closed once everything is dropped, and that every frame comes back.
#![cfg(loom)]

use loom::thread;
use vm::check::check_invariants;
use vm::testkit::{pattern_byte, FakeFile, HeapFrames};
use vm::{Access, Config, FileIdentity, LoadSegment, Vm, PAGE_SIZE};

const TEXT: u64 = 0x40_0000;

/// Explored interleavings, printed per model so a run shows it explored more than one.
static EXPLORED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.max_branches = 1_000_000;
    builder
}

fn explored() -> usize {
    EXPLORED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}

fn setup() -> (Vm, HeapFrames, FakeFile, Vec<LoadSegment>) {
    let frames = HeapFrames::new(8);
    let vm = Vm::new(
        frames.allocator(),
        Config {
            max_pages: 4,
            max_images: 2,
            max_idle_images: 2,
            reclaim_batch: 1,
        },
    )
    .unwrap();
    let identity = FileIdentity {
        dev_type: 1,
        dev: 1,
        qid_path: 7,
        qid_vers: 0,
    };
    let file = FakeFile::patterned(identity, PAGE_SIZE);
    let loads = vec![LoadSegment {
        vaddr: TEXT,
        mem_len: PAGE_SIZE as u64,
        file_offset: 0,
        file_len: PAGE_SIZE as u64,
        writable: false,
    }];
    (vm, frames, file, loads)
}

/// Execs the file and reads its one text page, checking the bytes.
fn exec_and_read(
    vm: &Vm,
    frames: &HeapFrames,
    file: &FakeFile,
    loads: &[LoadSegment],
) -> Vec<vm::SegmentRef> {
    let segments = vm.exec(file.open(), loads).unwrap();
    let mapping = segments[0].fault(TEXT, Access::Read).unwrap();
    let bytes = frames.read(mapping.frame);
    let identity = file.identity();
    assert!(bytes
        .iter()
        .enumerate()
        .all(|(offset, byte)| *byte == pattern_byte(&identity, offset as u64)));
    segments
}

fn finish(vm: Vm, frames: HeapFrames, file: FakeFile) {
    if let Err(violation) = check_invariants(&vm, Some(&[])) {
        panic!("{violation}");
    }
    let stats = vm.statistics();
    assert_eq!(stats.images_active, 0);
    let counts = file.counts();
    assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
    drop(vm);
    assert_eq!(frames.stats().outstanding(), 0);
}

#[test]
fn attach_vs_put_vs_reclaim() {
    builder().check(|| {
        let (vm, frames, file, loads) = setup();
        // An idle image with one cached page.
        drop(exec_and_read(&vm, &frames, &file, &loads));
        let runner = {
            let (vm, frames, file, loads) =
                (vm.clone(), frames.clone(), file.clone(), loads.clone());
            thread::spawn(move || drop(exec_and_read(&vm, &frames, &file, &loads)))
        };
        let reclaimer = {
            let vm = vm.clone();
            thread::spawn(move || {
                vm.reclaim(1);
            })
        };
        runner.join().unwrap();
        reclaimer.join().unwrap();
        finish(vm, frames, file);
        explored();
    });
    println!(
        "explored {} interleavings",
        EXPLORED.swap(0, std::sync::atomic::Ordering::Relaxed)
    );
}

#[test]
fn attach_vs_last_put() {
    builder().check(|| {
        let (vm, frames, file, _loads) = setup();
        let first = vm.attach(file.open()).unwrap();
        let attacher = {
            let (vm, file) = (vm.clone(), file.clone());
            thread::spawn(move || vm.attach(file.open()).unwrap())
        };
        drop(first);
        let second = attacher.join().unwrap();
        // Whichever way it went, there is exactly one image, active, with its channel.
        // (`None`: the holders are image references, not segments.)
        let report = check_invariants(&vm, None).unwrap();
        assert_eq!((report.images, report.open_channels), (1, 1));
        assert_eq!(file.counts().open_handles(), 1);
        drop(second);
        finish(vm, frames, file);
        explored();
    });
    println!(
        "explored {} interleavings",
        EXPLORED.swap(0, std::sync::atomic::Ordering::Relaxed)
    );
}

#[test]
fn putseg_vs_attach_of_the_same_text() {
    builder().check(|| {
        let (vm, frames, file, loads) = setup();
        let old = exec_and_read(&vm, &frames, &file, &loads);
        let execer = {
            let (vm, frames, file, loads) =
                (vm.clone(), frames.clone(), file.clone(), loads.clone());
            thread::spawn(move || exec_and_read(&vm, &frames, &file, &loads))
        };
        drop(old);
        let new = execer.join().unwrap();
        // The new process's text is alive and accounted for, whether it reused the old
        // segment or made its own.
        let live: Vec<&vm::SegmentRef> = new.iter().collect();
        if let Err(violation) = check_invariants(&vm, Some(&live)) {
            panic!("{violation}");
        }
        assert!(new[0].resident(TEXT).is_some());
        drop(new);
        finish(vm, frames, file);
        explored();
    });
    println!(
        "explored {} interleavings",
        EXPLORED.swap(0, std::sync::atomic::Ordering::Relaxed)
    );
}
