//! `SegmentRef::fault_held`: the page a fault found stays held until the kernel drops the
//! guard, so a kernel that takes its own reference of the frame after the fault (Redox's
//! page table entries count `PageInfo` references) cannot see the frame freed or reused in
//! between; and `HeldMapping::current` tells it, under its own lock, whether the address
//! still maps that page and whether it may still be writable.

use vm::check::check_invariants;
use vm::testkit::HeapFrames;
use vm::{Access, Config, Mapping, SegmentKind, Vm, PAGE_SIZE};

const STACK_VA: u64 = 0x7000_0000;
const PAGE: u64 = PAGE_SIZE as u64;
const MARK: &[u8] = b"the kernel is about to map this";

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

/// The frame a fresh stack's first write gets (the segment is dropped again).
fn next_fresh_frame(vm: &Vm) -> vm::Frame {
    let stack = vm
        .zero_segment(SegmentKind::Stack, STACK_VA, PAGE)
        .expect("stack");
    stack.fault(STACK_VA, Access::Write).expect("fault").frame
}

#[test]
fn a_held_page_is_not_reused_until_the_guard_goes() {
    let frames = HeapFrames::new(config().max_pages + 8);
    let vm = Vm::new(frames.allocator(), config()).expect("vm");
    let parent = vm
        .zero_segment(SegmentKind::Stack, STACK_VA, PAGE)
        .expect("stack");
    let page = parent.fault(STACK_VA, Access::Write).expect("fault").frame;
    frames.write(page, 0, MARK);
    let child = parent.fork().expect("fork");

    // The kernel's fault: vm finds the page, shared with the child, and holds it.
    let held = parent
        .fault_held(STACK_VA, Access::Read)
        .expect("fault")
        .expect("nothing replaced the page");
    assert_eq!(
        held.mapping(),
        Mapping {
            frame: page,
            writable: false
        }
    );
    // Before the kernel maps it, another thread of the process writes: vm copies, the
    // parent's entry now maps the copy, and the child, the page's last mapper, goes.
    let copy = parent.fault(STACK_VA, Access::Write).expect("write").frame;
    assert_ne!(copy, page);
    drop(child);
    assert_eq!(held.current(), None, "the address maps the copy now");
    assert_eq!(vm.statistics().free_pages, 0, "the held page is not free");

    let fresh = next_fresh_frame(&vm);
    assert_ne!(fresh, page, "vm reused a frame the kernel was about to map");
    assert_eq!(
        &frames.read(page)[..MARK.len()],
        MARK,
        "its bytes are untouched"
    );
    assert_eq!(vm.statistics().free_pages, 1, "the fresh stack's page");

    // Once the guard goes, the page is free and its frame is reused: what the hold
    // prevented above.
    drop(held);
    assert_eq!(vm.statistics().free_pages, 2);
    let frames_now: Vec<_> = (0..2).map(|_| next_fresh_frame(&vm)).collect();
    assert!(
        frames_now.contains(&page),
        "the released page is reused: {frames_now:?}, {page:?}"
    );
    drop(parent);
    check(&vm);
}

#[test]
fn current_sees_a_fork_made_after_the_fault() {
    let frames = HeapFrames::new(config().max_pages + 8);
    let vm = Vm::new(frames.allocator(), config()).expect("vm");
    let parent = vm
        .zero_segment(SegmentKind::Stack, STACK_VA, PAGE)
        .expect("stack");
    let page = parent.fault(STACK_VA, Access::Write).expect("fault").frame;
    let held = parent
        .fault_held(STACK_VA, Access::Read)
        .expect("fault")
        .expect("held");
    let private = Mapping {
        frame: page,
        writable: true,
    };
    assert_eq!(
        held.mapping(),
        private,
        "a private page may be mapped writable"
    );
    assert_eq!(held.current(), Some(private));

    // A fork between the fault and the kernel's mapping shares the page: mapping it
    // writable now would let the parent write into the child's memory.
    let child = parent.fork().expect("fork");
    assert_eq!(
        held.current(),
        Some(Mapping {
            frame: page,
            writable: false
        })
    );
    drop(child);
    assert_eq!(held.current(), Some(private), "private again");
    drop(held);
    drop(parent);
    check(&vm);
}

#[test]
fn the_zero_page_is_held_without_a_count() {
    let frames = HeapFrames::with_zero_frame(config().max_pages);
    let vm = Vm::new(frames.allocator(), config()).expect("vm");
    let stack = vm
        .zero_segment(SegmentKind::Stack, STACK_VA, PAGE)
        .expect("stack");
    let held = stack
        .fault_held(STACK_VA, Access::Read)
        .expect("fault")
        .expect("held");
    let zero = Mapping {
        frame: vm.zero_frame(),
        writable: false,
    };
    assert_eq!(held.mapping(), zero);
    assert_eq!(held.current(), Some(zero));
    assert_eq!(frames.stats().outstanding(), 0, "no frame allocated");

    // A write breaks the zero page: the address maps a private page now.
    let private = stack.fault(STACK_VA, Access::Write).expect("write").frame;
    assert_ne!(private, vm.zero_frame());
    assert_eq!(held.current(), None);
    drop(held);
    drop(stack);
    check(&vm);
}
