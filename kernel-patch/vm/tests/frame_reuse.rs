//! vm asks the kernel before it reuses a frame from its free list
//! (`FrameAllocator::in_use_elsewhere`): a frame the kernel still holds (a page table entry
//! whose shootdown is queued, a borrow) is let go, never given other contents, and a fresh
//! frame is bound instead. The fake kernel here counts its own references to frames, as
//! Redox's `PageInfo` does: `free` drops vm's, and a frame goes back to the heap when the
//! last holder lets go.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use vm::check::check_invariants;
use vm::testkit::HeapFrames;
use vm::{Access, AllocError, Config, Frame, FrameAllocator, SegmentKind, Vm, PAGE_SIZE};

const STACK_VA: u64 = 0x7000_0000;
const PAGE: u64 = PAGE_SIZE as u64;

#[derive(Default)]
struct Holds {
    /// Frames the kernel holds apart from vm.
    kernel: HashSet<u64>,
    /// Frames vm let go of while the kernel still held them: freed at the kernel's release.
    released_by_vm: HashSet<u64>,
}

/// Heap frames with a kernel's reference counts: vm's reference, plus the kernel's own
/// holds.
#[derive(Clone)]
struct CountedFrames {
    heap: HeapFrames,
    holds: Arc<Mutex<Holds>>,
    /// Whether `in_use_elsewhere` says what the kernel holds (false: the trait's default).
    answers: bool,
}

impl CountedFrames {
    fn new(capacity: u32, answers: bool) -> Self {
        Self {
            // The zero page's frame is the allocator's (as Redox's is), so the counts
            // below are the pool's frames alone.
            heap: HeapFrames::with_zero_frame(capacity),
            holds: Arc::default(),
            answers,
        }
    }

    /// The kernel takes a reference of its own to `frame`.
    fn hold(&self, frame: Frame) {
        assert!(self.holds.lock().unwrap().kernel.insert(frame.0));
    }

    /// The kernel drops its reference; the frame is freed if vm let go of it meanwhile.
    fn unhold(&self, frame: Frame) {
        let mut holds = self.holds.lock().unwrap();
        assert!(holds.kernel.remove(&frame.0));
        if holds.released_by_vm.remove(&frame.0) {
            drop(holds);
            self.heap.free(frame);
        }
    }

    fn released_by_vm(&self, frame: Frame) -> bool {
        self.holds.lock().unwrap().released_by_vm.contains(&frame.0)
    }
}

impl FrameAllocator for CountedFrames {
    fn allocate(&self) -> Result<Frame, AllocError> {
        self.heap.allocate()
    }

    fn free(&self, frame: Frame) {
        let mut holds = self.holds.lock().unwrap();
        if holds.kernel.contains(&frame.0) {
            assert!(
                holds.released_by_vm.insert(frame.0),
                "vm freed a frame twice"
            );
        } else {
            drop(holds);
            self.heap.free(frame);
        }
    }

    fn zero_frame(&self) -> Option<Frame> {
        self.heap.zero_frame()
    }

    fn in_use_elsewhere(&self, frame: Frame) -> bool {
        self.answers && self.holds.lock().unwrap().kernel.contains(&frame.0)
    }

    fn zero(&self, frame: Frame) {
        self.heap.zero(frame);
    }

    fn copy(&self, from: Frame, to: Frame) {
        self.heap.copy(from, to);
    }

    fn with_frame_mut(&self, frame: Frame, f: &mut dyn FnMut(&mut [u8; PAGE_SIZE])) {
        self.heap.with_frame_mut(frame, f);
    }

    fn with_frame(&self, frame: Frame, f: &mut dyn FnMut(&[u8; PAGE_SIZE])) {
        self.heap.with_frame(frame, f);
    }
}

fn config() -> Config {
    Config {
        max_pages: 8,
        max_images: 4,
        max_idle_images: 4,
        reclaim_batch: 4,
        // Freed pages keep their frames: the free list is where reuse happens.
        max_free_pages: 8,
    }
}

fn check(vm: &Vm) {
    if let Err(violation) = check_invariants(vm, None) {
        panic!("{violation}");
    }
}

/// A stack page is faulted, written through its mapping, and its segment dropped while the
/// kernel still holds the frame; a second stack faults a page. Returns the two frames.
fn reuse_after_a_held_frame(frames: &CountedFrames, vm: &Vm) -> (Frame, Frame) {
    let first = vm
        .zero_segment(SegmentKind::Stack, STACK_VA, PAGE)
        .expect("stack");
    let held = first.fault(STACK_VA, Access::Write).expect("fault").frame;
    frames.heap.write(held, 0, b"the kernel still maps this");
    frames.hold(held);
    drop(first);
    assert_eq!(
        vm.statistics().free_pages,
        1,
        "the page is free, its frame bound"
    );

    let second = vm
        .zero_segment(SegmentKind::Stack, STACK_VA, PAGE)
        .expect("stack");
    let fresh = second.fault(STACK_VA, Access::Write).expect("fault").frame;
    assert!(
        frames.heap.read(fresh).iter().all(|&b| b == 0),
        "a stack page is zero"
    );
    drop(second);
    (held, fresh)
}

#[test]
fn a_frame_the_kernel_still_holds_is_not_reused() {
    let frames = CountedFrames::new(config().max_pages + 8, true);
    let vm = Vm::new(Box::new(frames.clone()), config()).expect("vm");
    let (held, fresh) = reuse_after_a_held_frame(&frames, &vm);

    assert_ne!(fresh, held, "vm reused a frame the kernel still holds");
    assert_eq!(
        &frames.heap.read(held)[..26],
        b"the kernel still maps this",
        "the held frame's bytes are untouched"
    );
    // vm let go of the held frame (its reference dropped) instead of freeing or keeping it.
    assert!(frames.released_by_vm(held));
    let stats = vm.statistics();
    assert_eq!(stats.frames_in_use_elsewhere, 1);
    assert_eq!(
        (stats.free_pages, stats.pool_pages),
        (1, 1),
        "only the fresh frame is vm's"
    );
    check(&vm);
    // vm's one frame and the kernel's one.
    assert_eq!(frames.heap.stats().outstanding(), 2);
    frames.unhold(held);
    assert_eq!(frames.heap.stats().outstanding(), 1);
    drop(vm);
    assert_eq!(
        frames.heap.stats().outstanding(),
        0,
        "every frame came back"
    );
}

#[test]
fn free_frames_nobody_else_holds_are_reused() {
    // The same steps with a kernel that keeps no counts (the trait's default answer): vm
    // reuses the frame, which is what the test above shows it must not do when asked.
    let frames = CountedFrames::new(config().max_pages + 8, false);
    let vm = Vm::new(Box::new(frames.clone()), config()).expect("vm");
    let (held, fresh) = reuse_after_a_held_frame(&frames, &vm);
    assert_eq!(fresh, held, "the free list's frame is reused");
    assert_eq!(vm.statistics().frames_in_use_elsewhere, 0);
    check(&vm);
    frames.unhold(held);
    drop(vm);
    assert_eq!(frames.heap.stats().outstanding(), 0);
}

#[test]
fn every_held_free_frame_is_let_go_before_a_fresh_one_is_bound() {
    // Several free pages, all held: each is let go in turn, and the fault binds a fresh
    // frame to one of the entries they leave unbound.
    let frames = CountedFrames::new(config().max_pages + 8, true);
    let vm = Vm::new(Box::new(frames.clone()), config()).expect("vm");
    let first = vm
        .zero_segment(SegmentKind::Stack, STACK_VA, 4 * PAGE)
        .expect("stack");
    let held: Vec<Frame> = (0..4)
        .map(|page| {
            first
                .fault(STACK_VA + page * PAGE, Access::Write)
                .expect("fault")
                .frame
        })
        .collect();
    for &frame in &held {
        frames.hold(frame);
    }
    drop(first);
    assert_eq!(vm.statistics().free_pages, 4);

    let second = vm
        .zero_segment(SegmentKind::Stack, STACK_VA, PAGE)
        .expect("stack");
    let fresh = second.fault(STACK_VA, Access::Write).expect("fault").frame;
    assert!(!held.contains(&fresh));
    let stats = vm.statistics();
    assert_eq!(stats.frames_in_use_elsewhere, 4);
    assert_eq!((stats.free_pages, stats.pool_pages), (0, 1));
    check(&vm);
    drop(second);
    for &frame in &held {
        assert!(frames.released_by_vm(frame));
        frames.unhold(frame);
    }
    drop(vm);
    assert_eq!(frames.heap.stats().outstanding(), 0);
}
