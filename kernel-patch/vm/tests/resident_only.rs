//! `SegmentRef::fault_resident_only`: the fault a kernel takes in a usercopy under one of its
//! own locks. It maps what needs no file server (a page the segment has, an image page
//! another segment loaded, zero fill) and refuses, with `FaultError::WouldBlock` and
//! nothing changed, what would need a read or a wait for another fault's read.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use vm::testkit::FakeFile;
use vm::{
    Access, FaultError, FileError, FileIdentity, ImageFile, Mapping, SegmentKind, Vm, PAGE_SIZE,
};

/// A stalled read gives up after this long (a test that failed to release it must not hang).
const STALL_LIMIT: Duration = Duration::from_secs(60);

fn check(vm: &Vm) {
    if let Err(violation) = vm::check::check_invariants(vm, None) {
        panic!("{violation}");
    }
}

#[test]
fn a_page_nobody_loaded_is_refused_without_a_read() {
    let w = world(small_config());
    let prog = program(ident(1, 1, 1), 2 * PAGE, 2 * PAGE, PAGE);
    let p = exec(&w, &prog);
    let frames_before = w.frames.stats().outstanding();

    assert_eq!(
        p.text().fault_resident_only(TEXT_VA, Access::Read),
        Err(FaultError::WouldBlock)
    );
    // A data write needs a spare page for its copy first: it is given back.
    assert_eq!(
        p.data().fault_resident_only(DATA_VA, Access::Write),
        Err(FaultError::WouldBlock)
    );
    assert!(matches!(
        p.text()
            .fault_held_resident_only(TEXT_VA + PAGE, Access::Read),
        Err(FaultError::WouldBlock)
    ));
    assert_eq!(
        prog.file.counts().reads,
        0,
        "a resident-only fault read the file"
    );
    let stats = w.vm.statistics();
    assert_eq!(stats.faults_would_block, 3);
    assert_eq!(
        stats.cached_pages, 0,
        "nothing was cached or marked loading"
    );
    assert_eq!(stats.page_loads, 0);
    assert_eq!(p.text().resident(TEXT_VA), None, "nothing was mapped");
    assert_eq!(p.data().resident(DATA_VA), None);
    check(&w.vm);
    assert!(
        w.frames.stats().outstanding() <= frames_before + 1,
        "at most the refused write's spare page stays on the free list"
    );

    // Once an ordinary fault has loaded the page, the resident-only fault maps it.
    let loaded = p.text().fault(TEXT_VA, Access::Read).expect("fault");
    assert_eq!(prog.file.counts().reads, 1);
    assert_eq!(
        p.text().fault_resident_only(TEXT_VA, Access::Read),
        Ok(loaded)
    );
    assert_eq!(prog.file.counts().reads, 1);
    check(&w.vm);
}

#[test]
fn a_page_another_process_loaded_is_mapped_without_a_read() {
    let w = world(small_config());
    let prog = program(ident(1, 2, 1), PAGE, 2 * PAGE, 0);
    let loader = exec(&w, &prog);
    let text = loader.text().fault(TEXT_VA, Access::Read).expect("text");
    loader.data().fault(DATA_VA, Access::Read).expect("data");
    let reads = prog.file.counts().reads;
    assert_eq!(reads, 2);

    let other = exec(&w, &prog);
    assert_eq!(
        other.text().fault_resident_only(TEXT_VA, Access::Read),
        Ok(text),
        "the cached text page is shared"
    );
    // A write to data copies the cached page into a private one.
    let copy = other
        .data()
        .fault_resident_only(DATA_VA, Access::Write)
        .expect("data write");
    assert!(copy.writable);
    let load = &prog.loads[1];
    assert_eq!(
        w.frames.read(copy.frame),
        expected_page(&prog.file, load, DATA_VA)
    );
    // The data page nobody loaded is still refused.
    assert_eq!(
        other
            .data()
            .fault_resident_only(DATA_VA + PAGE, Access::Read),
        Err(FaultError::WouldBlock)
    );
    assert_eq!(prog.file.counts().reads, reads, "no page was read again");
    assert_eq!(w.vm.statistics().faults_would_block, 1);
    check(&w.vm);
}

#[test]
fn zero_fill_and_resident_pages_need_no_file() {
    let w = world(small_config());
    let stack =
        w.vm.zero_segment(SegmentKind::Stack, STACK_VA, 2 * PAGE)
            .expect("stack");
    assert_eq!(
        stack.fault_resident_only(STACK_VA, Access::Read),
        Ok(Mapping {
            frame: w.vm.zero_frame(),
            writable: false
        })
    );
    let written = stack
        .fault_resident_only(STACK_VA, Access::Write)
        .expect("write");
    assert!(written.writable);
    assert_ne!(written.frame, w.vm.zero_frame());
    // A refault of the private page, and a copy on write after a fork.
    assert_eq!(
        stack.fault_resident_only(STACK_VA, Access::Write),
        Ok(written)
    );
    let child = stack.fork().expect("fork");
    let copied = child
        .fault_held_resident_only(STACK_VA, Access::Write)
        .expect("write")
        .expect("held");
    assert!(copied.mapping().writable);
    assert_ne!(copied.mapping().frame, written.frame);
    assert_eq!(copied.current(), Some(copied.mapping()));
    drop(copied);
    assert_eq!(w.vm.statistics().faults_would_block, 0);
    check(&w.vm);
}

/// Where a stalled read is: started, and whether the test let it go on.
#[derive(Default)]
struct Stall {
    reads_started: u32,
    released: bool,
}

#[derive(Default)]
struct Gate {
    state: Mutex<Stall>,
    changed: Condvar,
}

impl Gate {
    fn release(&self) {
        self.state.lock().expect("gate").released = true;
        self.changed.notify_all();
    }

    /// Waits until a read has started; false if none did within the limit.
    fn wait_for_read(&self) -> bool {
        let deadline = Instant::now() + STALL_LIMIT;
        let mut state = self.state.lock().expect("gate");
        while state.reads_started == 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .expect("gate")
                .0;
        }
        true
    }
}

/// Releases the stalled read however the test ends.
struct ReleaseOnDrop(Arc<Gate>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A file whose reads wait at the gate until the test releases them (or the limit passes:
/// then the read fails).
struct StalledFile {
    inner: Box<dyn ImageFile>,
    gate: Arc<Gate>,
}

impl ImageFile for StalledFile {
    fn identity(&self) -> FileIdentity {
        self.inner.identity()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        let deadline = Instant::now() + STALL_LIMIT;
        let mut state = self.gate.state.lock().expect("gate");
        state.reads_started += 1;
        self.gate.changed.notify_all();
        while !state.released {
            let now = Instant::now();
            if now >= deadline {
                return Err(FileError::Io);
            }
            state = self
                .gate
                .changed
                .wait_timeout(state, deadline - now)
                .expect("gate")
                .0;
        }
        drop(state);
        self.inner.read_at(offset, buf)
    }

    fn length(&self) -> Result<u64, FileError> {
        self.inner.length()
    }

    fn close(self: Box<Self>) {
        self.inner.close();
    }
}

/// The window the kernel's flag closes, staged: a fault is reading the page (its daemon has
/// not answered) when a usercopy under a lock faults on the same page. The resident-only
/// fault neither waits for that read nor starts its own.
#[test]
fn a_page_being_loaded_is_refused_without_waiting() {
    let w = world(small_config());
    let file = FakeFile::patterned(ident(1, 3, 1), PAGE_SIZE);
    let gate = Arc::new(Gate::default());
    let release = ReleaseOnDrop(gate.clone());
    let stalled = Box::new(StalledFile {
        inner: file.open(),
        gate: gate.clone(),
    });
    let loads = layout(PAGE, 0, 0);
    let mut segments = w.vm.exec(stalled, &loads[..1]).expect("exec");
    let text = segments.pop().expect("text");
    let other = text.share();

    let loader = thread::spawn(move || text.fault(TEXT_VA, Access::Read));
    assert!(gate.wait_for_read(), "the loading fault never read");

    assert_eq!(
        other.fault_resident_only(TEXT_VA, Access::Read),
        Err(FaultError::WouldBlock)
    );
    let stats = w.vm.statistics();
    assert_eq!(stats.page_load_waits, 0, "the resident-only fault waited");
    assert_eq!(stats.faults_would_block, 1);
    assert_eq!(gate.state.lock().expect("gate").reads_started, 1);

    drop(release);
    let loaded = loader.join().expect("loader").expect("load");
    assert_eq!(
        w.frames.read(loaded.frame),
        file.data()[..PAGE_SIZE].to_vec()
    );
    assert_eq!(
        other.fault_resident_only(TEXT_VA, Access::Read),
        Ok(loaded),
        "the page is resident now"
    );
    assert_eq!(file.counts().reads, 1);
    drop(other);
    check(&w.vm);
}
