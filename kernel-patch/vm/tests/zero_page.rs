//! The zero page: a read of untouched zero-fill memory (bss, stack, a data segment's pages
//! wholly past its file bytes) maps one read-only frame of zeros and allocates nothing;
//! the first write allocates a private zeroed page in its place; fork copies such a
//! mapping without a page; a gibibyte read allocates no frame. The test kit's frame
//! allocator counts every frame vm takes, and the checker runs after each test.

mod common;

use common::*;
use vm::testkit::HeapFrames;
use vm::{Access, AllocSite, Config, FaultError, Frame, SegmentKind, SegmentRef, Vm, VmError};

const BSS_VA: u64 = 0x1000_0000;

fn config() -> Config {
    Config {
        max_pages: 32,
        ..small_config()
    }
}

/// Frames the allocator handed out so far (the zero page's, at creation, among them).
fn allocated(world: &World) -> u64 {
    world.frames.stats().allocated
}

fn all_zero(world: &World, frame: Frame) -> bool {
    world.frames.read(frame).iter().all(|&byte| byte == 0)
}

#[test]
fn a_read_fault_maps_the_zero_frame_and_allocates_nothing() {
    let world = world(config());
    let zero = world.vm.zero_frame();
    let bss = world
        .vm
        .zero_segment(SegmentKind::Bss, BSS_VA, 4 * PAGE)
        .unwrap();
    let stack = world
        .vm
        .zero_segment(SegmentKind::Stack, STACK_VA, 4 * PAGE)
        .unwrap();
    let (frames_before, pages_before) = (allocated(&world), world.vm.statistics().pages_allocated);
    for segment in [&bss, &stack] {
        for addr in [segment.base(), segment.base() + 3 * PAGE] {
            let mapping = segment.fault(addr, Access::Read).unwrap();
            assert_eq!(mapping.frame, zero, "{:?} at {addr:#x}", segment.kind());
            assert!(!mapping.writable, "the zero page is mapped read only");
            assert_eq!(segment.resident(addr), Some(zero));
            // A refault (another CPU's, a kernel that lost the entry) maps it again.
            assert_eq!(segment.fault(addr, Access::Read).unwrap(), mapping);
        }
    }
    assert!(all_zero(&world, zero));
    assert_eq!(allocated(&world), frames_before, "no frame");
    let stats = world.vm.statistics();
    assert_eq!(stats.pages_allocated, pages_before, "no page");
    assert_eq!((stats.zero_page_maps, stats.zero_page_entries), (4, 4));
    let report = check(&world, &[&bss, &stack]);
    assert_eq!(report.private_pages, 0);
    drop((bss, stack));
    assert_eq!(world.vm.statistics().zero_page_entries, 0);
    check(&world, &[]);
}

#[test]
fn a_data_segment_maps_it_only_wholly_past_its_file_bytes() {
    let world = world(config());
    // Data of a page and 20 bytes, then two pages and more of bss in the same segment.
    let program = program(ident(1, 10, 0), PAGE, PAGE + 20, 3 * PAGE);
    let process = exec(&world, &program);
    let data = process.data();
    let zero = world.vm.zero_frame();
    let frames: Vec<Frame> = fault_all(data, Access::Read);
    assert_ne!(frames[0], zero, "a page of file bytes");
    assert_ne!(frames[1], zero, "the partial last page is a private copy");
    assert!(frames[2..].iter().all(|&frame| frame == zero), "{frames:?}");
    verify_process(&world, &process);
    check(&world, &process.refs());
}

#[test]
fn a_write_after_a_read_allocates_one_page_in_its_place() {
    let world = world(config());
    let zero = world.vm.zero_frame();
    let bss = world
        .vm
        .zero_segment(SegmentKind::Bss, BSS_VA, 2 * PAGE)
        .unwrap();
    let read = bss.fault(BSS_VA, Access::Read).unwrap();
    assert_eq!(read.frame, zero);
    assert!(all_zero(&world, read.frame), "zeros before the write");
    let before = allocated(&world);
    let pages_before = world.vm.statistics().pages_allocated;
    let write = bss.fault(BSS_VA, Access::Write).unwrap();
    assert_ne!(write.frame, zero, "a private page replaces the zero page");
    assert!(write.writable);
    assert_eq!(bss.resident(BSS_VA), Some(write.frame), "the entry changed");
    assert!(
        all_zero(&world, write.frame),
        "the private page starts as zeros"
    );
    assert_eq!(allocated(&world) - before, 1, "one frame");
    assert_eq!(world.vm.statistics().pages_allocated - pages_before, 1);
    world.frames.write(write.frame, 8, b"written");
    let again = bss.fault(BSS_VA, Access::Read).unwrap();
    assert_eq!(again.frame, write.frame);
    assert!(again.writable, "private, at ref 1");
    assert_eq!(&world.frames.read(again.frame)[8..15], b"written");
    assert!(all_zero(&world, zero), "the zero page is untouched");
    // The other page still reads the zero page.
    assert_eq!(bss.fault(BSS_VA + PAGE, Access::Read).unwrap().frame, zero);
    let stats = world.vm.statistics();
    assert_eq!(
        (
            stats.zero_page_maps,
            stats.zero_page_breaks,
            stats.zero_page_entries
        ),
        (2, 1, 1)
    );
    check(&world, &[&bss]);
}

#[test]
fn a_first_write_never_maps_the_zero_page() {
    let world = world(config());
    let stack = world
        .vm
        .zero_segment(SegmentKind::Stack, STACK_VA, PAGE)
        .unwrap();
    let write = stack.fault(STACK_VA, Access::Write).unwrap();
    assert_ne!(write.frame, world.vm.zero_frame());
    assert!(write.writable && all_zero(&world, write.frame));
    let stats = world.vm.statistics();
    assert_eq!((stats.zero_page_maps, stats.zero_page_entries), (0, 0));
    check(&world, &[&stack]);
}

#[test]
fn fork_shares_the_zero_page_mapping() {
    let world = world(config());
    let zero = world.vm.zero_frame();
    let parent = world
        .vm
        .zero_segment(SegmentKind::Bss, BSS_VA, 2 * PAGE)
        .unwrap();
    parent.fault(BSS_VA, Access::Read).unwrap();
    let written = parent.fault(BSS_VA + PAGE, Access::Write).unwrap().frame;
    world.frames.write(written, 0, b"parent");
    let (before, copies) = (allocated(&world), world.frames.stats().copies);
    let pages_before = world.vm.statistics().pages_allocated;
    let child = parent.fork().unwrap();
    assert_eq!(
        child.resident(BSS_VA),
        Some(zero),
        "the entry is copied as it is"
    );
    assert_eq!(world.vm.statistics().zero_page_entries, 2);
    let read = child.fault(BSS_VA, Access::Read).unwrap();
    assert_eq!((read.frame, read.writable), (zero, false));
    assert_eq!(
        allocated(&world),
        before,
        "fork and the child's read: no frame"
    );
    assert_eq!(world.frames.stats().copies, copies, "no copy");
    assert_eq!(world.vm.statistics().pages_allocated, pages_before);
    check(&world, &[&parent, &child]);
    // The child's write gives the child a page; the parent keeps the zero page.
    let child_write = child.fault(BSS_VA, Access::Write).unwrap();
    assert_ne!(child_write.frame, zero);
    world.frames.write(child_write.frame, 0, b"child");
    assert_eq!(parent.resident(BSS_VA), Some(zero));
    assert!(all_zero(&world, zero));
    let parent_read = parent.fault(BSS_VA, Access::Read).unwrap();
    assert_eq!(parent_read.frame, zero);
    assert_eq!(world.frames.stats().copies, copies, "zeroed, not copied");
    check(&world, &[&parent, &child]);
    drop(parent);
    assert_eq!(world.vm.statistics().zero_page_entries, 0);
    check(&world, &[&child]);
}

#[test]
fn a_gibibyte_of_untouched_bss_reads_without_a_frame() {
    const GIB: u64 = 1 << 30;
    let world = world(config());
    let zero = world.vm.zero_frame();
    let bss: SegmentRef = world
        .vm
        .zero_segment(SegmentKind::Bss, BSS_VA, GIB)
        .unwrap();
    let before = allocated(&world);
    for addr in (BSS_VA..BSS_VA + GIB).step_by(PAGE as usize) {
        let mapping = bss.fault(addr, Access::Read).unwrap();
        assert_eq!(mapping.frame, zero);
    }
    assert_eq!(
        allocated(&world),
        before,
        "no frame for a gibibyte of reads"
    );
    assert!(all_zero(&world, zero));
    let stats = world.vm.statistics();
    assert_eq!(stats.zero_page_entries, GIB / PAGE);
    assert!(stats.pool_pages <= 1, "a pool of 32 pages was enough");
    check(&world, &[&bss]);
    drop(bss);
    assert_eq!(world.vm.statistics().zero_page_entries, 0);
    check(&world, &[]);
}

#[test]
fn a_read_needs_no_memory_and_a_refused_first_write_is_an_error() {
    let world = world(config());
    let zero = world.vm.zero_frame();
    let bss = world
        .vm
        .zero_segment(SegmentKind::Bss, BSS_VA, 2 * PAGE)
        .unwrap();
    // Every page of the pool is taken: a read of zero fill still works.
    let hog = world
        .vm
        .zero_segment(
            SegmentKind::Stack,
            STACK_VA,
            u64::from(config().max_pages) * PAGE,
        )
        .unwrap();
    fault_all(&hog, Access::Write);
    assert_eq!(bss.fault(BSS_VA, Access::Read).unwrap().frame, zero);
    assert_eq!(
        bss.fault(BSS_VA, Access::Write),
        Err(FaultError::NoMemory),
        "no page for the write"
    );
    assert_eq!(bss.resident(BSS_VA), Some(zero), "the zero page stays");
    check(&world, &[&bss, &hog]);
    drop(hog);
    // A refused page allocation fails the write the same way.
    world.frames.fail_site(AllocSite::Page);
    assert_eq!(bss.fault(BSS_VA, Access::Write), Err(FaultError::NoMemory));
    assert_eq!(bss.resident(BSS_VA), Some(zero));
    check(&world, &[&bss]);
    let write = bss.fault(BSS_VA, Access::Write).expect("the retry");
    assert_ne!(write.frame, zero);
    check(&world, &[&bss]);
}

#[test]
fn vm_allocates_its_zero_frame_at_creation_and_frees_it_at_the_end() {
    let frames = HeapFrames::new(4);
    let vm = Vm::new(frames.allocator(), config()).unwrap();
    let stats = frames.stats();
    assert_eq!((stats.allocated, stats.zeroes), (1, 1), "one frame, zeroed");
    assert_eq!(vm.statistics().pool_pages, 0, "not a page of the pool");
    vm::check::check_invariants(&vm, Some(&[])).unwrap();
    drop(vm);
    assert_eq!(frames.stats().outstanding(), 0);

    // No frame for it: no vm.
    let frames = HeapFrames::new(0);
    assert!(matches!(
        Vm::new(frames.allocator(), config()),
        Err(VmError::NoMemory)
    ));
    let frames = HeapFrames::new(4);
    frames.fail_site(AllocSite::ZeroPage);
    assert!(matches!(
        Vm::new(frames.allocator(), config()),
        Err(VmError::NoMemory)
    ));
    assert_eq!(frames.stats().allocated, 0);
}

#[test]
fn a_kernel_zero_frame_is_used_and_never_freed() {
    let frames = HeapFrames::with_zero_frame(4);
    let vm = Vm::new(frames.allocator(), config()).unwrap();
    assert_eq!(
        vm.zero_frame(),
        Frame(4),
        "the kernel's, past its four frames"
    );
    assert_eq!(frames.stats().allocated, 0, "vm allocated none");
    let bss = vm
        .zero_segment(SegmentKind::Bss, BSS_VA, 64 * PAGE)
        .unwrap();
    for addr in (BSS_VA..BSS_VA + 64 * PAGE).step_by(PAGE as usize) {
        assert_eq!(bss.fault(addr, Access::Read).unwrap().frame, Frame(4));
    }
    assert_eq!(frames.stats().allocated, 0);
    vm::check::check_invariants(&vm, Some(&[&bss])).unwrap();
    // All four frames are still the pool's to use.
    for addr in (BSS_VA..BSS_VA + 4 * PAGE).step_by(PAGE as usize) {
        bss.fault(addr, Access::Write).unwrap();
    }
    assert_eq!(
        bss.fault(BSS_VA + 4 * PAGE, Access::Write),
        Err(FaultError::NoMemory)
    );
    vm::check::check_invariants(&vm, Some(&[&bss])).unwrap();
    drop(bss);
    drop(vm);
    let stats = frames.stats();
    assert_eq!((stats.outstanding(), stats.zero_frame_frees), (0, 0));
}
