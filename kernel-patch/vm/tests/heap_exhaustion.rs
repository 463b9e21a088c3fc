//! The heap itself runs out: every heap allocation vm makes is fallible.
//!
//! `alloc_failure.rs` refuses allocations through `FrameAllocator::admit_allocation`, which
//! proves that each operation handles an error, but not that the allocation behind it can
//! fail without aborting (`Arc::new`, `Box::new` and `Vec::push` beyond capacity call the
//! allocation error handler, which aborts a kernel). Here the global allocator refuses the
//! `nth` heap allocation of the test thread, for every `n` until the operation makes no
//! more: each run must end in an out-of-memory error or in success, never in an abort (an
//! abort kills this test binary), and leave no frame and no file handle behind.
//!
//! The frame allocator and the file are the test's own and never touch the heap after
//! they are made, so every allocation counted is vm's. One test in this binary: the
//! failure knob is per thread, but one test keeps the counts easy to read.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use vm::check::check_invariants;
use vm::{
    Access, AddressSpace, AllocError, Config, FaultError, FileError, FileIdentity, Frame,
    FrameAllocator, ImageFile, LoadSegment, MapSpec, OpenKind, SegmentKind, SpaceRef, Vm, VmError,
    PAGE_SIZE,
};

const PAGE: u64 = PAGE_SIZE as u64;
const TEXT_VA: u64 = 0x40_0000;
const DATA_VA: u64 = 0x80_0000;
const STACK_VA: u64 = 0x7000_0000;

thread_local! {
    /// Heap allocations this thread may still make before one is refused; `None`: all.
    static ALLOWED: Cell<Option<u64>> = const { Cell::new(None) };
    /// Whether an allocation was refused since the knob was set.
    static REFUSED: Cell<bool> = const { Cell::new(false) };
}

/// The system allocator, refusing on the test thread when the knob says so.
struct Refusing;

impl Refusing {
    fn admit() -> bool {
        ALLOWED
            .try_with(|allowed| match allowed.get() {
                None => true,
                Some(0) => {
                    allowed.set(None);
                    let _ = REFUSED.try_with(|refused| refused.set(true));
                    false
                }
                Some(n) => {
                    allowed.set(Some(n - 1));
                    true
                }
            })
            .unwrap_or(true)
    }
}

// SAFETY: every call is passed on to `System` unchanged, or refused with a null pointer,
// which `GlobalAlloc` allows for `alloc` and `realloc`.
unsafe impl GlobalAlloc for Refusing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::admit() {
            return std::ptr::null_mut();
        }
        // SAFETY: our caller keeps `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc` or `realloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !Self::admit() {
            return std::ptr::null_mut();
        }
        // SAFETY: our caller keeps `realloc`'s contract, which we pass on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static HEAP: Refusing = Refusing;

/// Frames allocated up front; allocating and freeing one moves an index within a list
/// whose capacity is reserved, so the heap is never asked.
struct Frames {
    bytes: Vec<Mutex<[u8; PAGE_SIZE]>>,
    free: Mutex<Vec<u64>>,
    outstanding: AtomicU64,
}

impl Frames {
    fn new(count: u64) -> Arc<Self> {
        Arc::new(Self {
            bytes: (0..count).map(|_| Mutex::new([0; PAGE_SIZE])).collect(),
            free: Mutex::new((0..count).collect()),
            outstanding: AtomicU64::new(0),
        })
    }
}

struct FramesHandle(Arc<Frames>);

impl FrameAllocator for FramesHandle {
    fn allocate(&self) -> Result<Frame, AllocError> {
        let frame = self.0.free.lock().unwrap().pop().ok_or(AllocError)?;
        self.0.outstanding.fetch_add(1, Ordering::SeqCst);
        Ok(Frame(frame))
    }

    fn free(&self, frame: Frame) {
        self.0.free.lock().unwrap().push(frame.0);
        self.0.outstanding.fetch_sub(1, Ordering::SeqCst);
    }

    fn with_frame_mut(&self, frame: Frame, f: &mut dyn FnMut(&mut [u8; PAGE_SIZE])) {
        f(&mut self.0.bytes[frame.0 as usize].lock().unwrap());
    }

    fn with_frame(&self, frame: Frame, f: &mut dyn FnMut(&[u8; PAGE_SIZE])) {
        f(&self.0.bytes[frame.0 as usize].lock().unwrap());
    }
}

/// A file of `len` bytes of `byte`; counts its open handles.
struct File {
    len: u64,
    open: Arc<AtomicU64>,
}

impl File {
    fn open(open: &Arc<AtomicU64>) -> Box<dyn ImageFile> {
        open.fetch_add(1, Ordering::SeqCst);
        Box::new(File {
            len: 3 * PAGE,
            open: open.clone(),
        })
    }
}

impl ImageFile for File {
    fn identity(&self) -> FileIdentity {
        FileIdentity {
            dev_type: 1,
            dev: 1,
            qid_path: 1,
            version: 0,
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        let n = self.len.saturating_sub(offset).min(buf.len() as u64) as usize;
        buf[..n].fill(0x5a);
        Ok(n)
    }

    fn length(&self) -> Result<u64, FileError> {
        Ok(self.len)
    }

    fn write_at(&self, _offset: u64, buf: &[u8]) -> Result<usize, FileError> {
        Ok(buf.len())
    }

    fn close(self: Box<Self>) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An address space whose translations go nowhere: it allocates nothing.
struct NoMmu;

impl AddressSpace for NoMmu {
    fn id(&self) -> u64 {
        1
    }
    fn map(&self, _addr: u64, _frame: Frame, _writable: bool) {}
    fn invalidate(&self, _addr: u64, _len: u64) {}
}

#[derive(Debug)]
enum Failed {
    Vm(VmError),
    Fault(FaultError),
    Move(vm::MigrateError),
    Lend(vm::LendError),
}

/// Makes a vm, attaches `first`, execs `second` (text, data and bss; its handle is let go
/// of at once, the image has one), faults a text page in (a load), writes a data page (a
/// copy) and a stack page (zero fill), forks data, fills a page of a mount-cache file,
/// maps `third` shared and private (a store in each, a fork of the private one and a
/// store in the child, a write-back, a migration and a vacate, a loan broken by a store)
/// and private anonymous memory (a loan that outlives it), and lets everything go. Everything it is given is boxed before, so all heap
/// allocations made in here are vm's.
fn everything(
    made: &mut Option<Vm>,
    frames: Box<dyn FrameAllocator>,
    first: Box<dyn ImageFile>,
    second: Box<dyn ImageFile>,
    third: Box<dyn ImageFile>,
    space: SpaceRef,
) -> Result<(), Failed> {
    let config = Config {
        max_pages: 16,
        max_images: 4,
        max_idle_images: 2,
        reclaim_batch: 4,
        max_free_pages: 2,
    };
    let vm = match Vm::new(frames, config) {
        Ok(vm) => vm,
        Err(err) => {
            // Not handed over.
            first.close();
            second.close();
            third.close();
            return Err(Failed::Vm(err));
        }
    };
    // A handle for the checker, after the knob is off (cloning allocates nothing).
    *made = Some(vm.clone());
    let image = match vm.attach(first) {
        Ok(image) => image,
        Err(err) => {
            second.close();
            third.close();
            return Err(Failed::Vm(err));
        }
    };
    let loads = [
        LoadSegment {
            vaddr: TEXT_VA,
            mem_len: 2 * PAGE,
            file_offset: 0,
            file_len: 2 * PAGE,
            writable: false,
        },
        LoadSegment {
            vaddr: DATA_VA,
            mem_len: 2 * PAGE,
            file_offset: 2 * PAGE,
            file_len: PAGE,
            writable: true,
        },
    ];
    let segments = match vm.exec(second, &loads) {
        Ok(segments) => segments,
        Err(err) => {
            third.close();
            return Err(Failed::Vm(err));
        }
    };
    let object = vm.file_object(third).map_err(Failed::Vm)?;
    let stack = vm
        .zero_segment(SegmentKind::Stack, STACK_VA, PAGE)
        .map_err(Failed::Vm)?;
    segments[0]
        .fault(TEXT_VA, Access::Read)
        .map_err(Failed::Fault)?;
    segments[1]
        .fault(DATA_VA, Access::Read)
        .map_err(Failed::Fault)?;
    segments[1]
        .fault(DATA_VA, Access::Write)
        .map_err(Failed::Fault)?;
    stack
        .fault(STACK_VA, Access::Write)
        .map_err(Failed::Fault)?;
    let child = segments[1].fork().map_err(Failed::Vm)?;
    child.fault(DATA_VA, Access::Write).map_err(Failed::Fault)?;
    // The mount cache: a file and a page of it; a refused allocation leaves it uncached.
    let cached = vm.mount_cache().open(
        FileIdentity {
            dev_type: 1,
            dev: 2,
            qid_path: 9,
            version: 0,
        },
        PAGE,
        OpenKind::Existing,
        false,
    );
    let mut buf = [0u8; 64];
    let hit = cached.read(0, &mut buf);
    let page = [7u8; PAGE_SIZE];
    cached.fill(hit.ticket, 0, &page);
    const MAP_VA: u64 = 0x1000_0000;
    let spec = |base: u64, shared: bool| MapSpec {
        base,
        len: 2 * PAGE,
        offset: 0,
        shared,
        writable: true,
    };
    let shared = object
        .map(space.clone(), spec(MAP_VA, true))
        .map_err(Failed::Vm)?;
    let object_frame = shared
        .fault(MAP_VA, Access::Write)
        .map_err(Failed::Fault)?
        .frame;
    let private = object
        .map(space.clone(), spec(MAP_VA + 4 * PAGE, false))
        .map_err(Failed::Vm)?;
    private
        .fault(MAP_VA + 4 * PAGE, Access::Write)
        .map_err(Failed::Fault)?;
    let forked = private.fork(space.clone()).map_err(Failed::Vm)?;
    forked
        .fault(MAP_VA + 4 * PAGE, Access::Write)
        .map_err(Failed::Fault)?;
    forked.mappers_at(MAP_VA + 4 * PAGE).map_err(Failed::Vm)?;
    // Moves: a private page shared after fork, and a range holding the object's page.
    let copy = forked
        .fault(MAP_VA + 4 * PAGE, Access::Read)
        .map_err(Failed::Fault)?
        .frame;
    vm.migrate(copy).map_err(Failed::Move)?;
    vm.vacate(object_frame.0..object_frame.0 + 1)
        .map_err(Failed::Move)?;
    shared.sync(MAP_VA, 2 * PAGE).map_err(Failed::Vm)?;
    // A loan of both pages (the second faulted in to be lent), broken by a store.
    let loan = shared.lend(MAP_VA, 2 * PAGE).map_err(Failed::Lend)?;
    shared
        .fault(MAP_VA + PAGE, Access::Write)
        .map_err(Failed::Fault)?;
    drop(loan);
    let anon = vm
        .map_private_anon(space, spec(MAP_VA + 8 * PAGE, false))
        .map_err(Failed::Vm)?;
    anon.fault(MAP_VA + 8 * PAGE, Access::Write)
        .map_err(Failed::Fault)?;
    // The written page and an untouched one (the zero page), lent.
    let loan = anon
        .lend(MAP_VA + 8 * PAGE, 2 * PAGE)
        .map_err(Failed::Lend)?;
    // The mapping goes first: its written page is an orphan until the loan returns.
    drop(anon);
    drop(loan);
    drop((forked, private, shared, object));
    drop((cached, image, child, stack, segments));
    vm.run_parked_closes();
    Ok(())
}

#[test]
fn every_heap_allocation_vm_makes_may_fail() {
    let frames = Frames::new(32);
    let open = Arc::new(AtomicU64::new(0));
    let mut refused_runs = 0;
    for nth in 0.. {
        assert!(nth < 10_000, "the operation never stops allocating");
        let handle: Box<dyn FrameAllocator> = Box::new(FramesHandle(frames.clone()));
        let (first, second, third) = (File::open(&open), File::open(&open), File::open(&open));
        let space: SpaceRef = Arc::new(NoMmu);
        REFUSED.with(|refused| refused.set(false));
        ALLOWED.with(|allowed| allowed.set(Some(nth)));
        let mut made = None;
        let result = everything(&mut made, handle, first, second, third, space);
        ALLOWED.with(|allowed| allowed.set(None));
        let refused = REFUSED.with(Cell::get);
        // The failed operation left the vm consistent; then it goes too.
        if let Some(vm) = made {
            if let Err(violation) = check_invariants(&vm, Some(&[])) {
                panic!("allocation {nth}: {violation}");
            }
            vm.run_parked_closes();
        }
        // Whatever happened, everything is let go of: every frame and every handle.
        assert_eq!(
            frames.outstanding.load(Ordering::SeqCst),
            0,
            "allocation {nth}: frames leaked"
        );
        assert_eq!(
            open.load(Ordering::SeqCst),
            0,
            "allocation {nth}: a handle leaked"
        );
        match result {
            Ok(()) if !refused => {
                eprintln!("{nth} heap allocations, {refused_runs} of them refused in turn");
                assert!(
                    nth > 10,
                    "vm made only {nth} heap allocations: is the knob working?"
                );
                return;
            }
            // A refused allocation vm could do without (a bounce buffer it did not need).
            Ok(()) => {}
            Err(
                Failed::Vm(VmError::NoMemory)
                | Failed::Fault(FaultError::NoMemory)
                | Failed::Move(vm::MigrateError {
                    reason: vm::Unmovable::NoMemory,
                    ..
                })
                | Failed::Lend(vm::LendError::NoMemory),
            ) => {
                assert!(
                    refused,
                    "allocation {nth}: out of memory, but nothing was refused"
                );
                refused_runs += 1;
            }
            Err(err) => panic!("allocation {nth}: {err:?}"),
        }
    }
}
