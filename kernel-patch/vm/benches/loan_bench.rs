//! Page loans: the 2003 case of NetBSD's `uvm_loan.c` (a process writing an untouched
//! 64 KiB buffer to a pipe or socket over and over), with vm lending the one zero page
//! against allocating and zeroing a page per lent page (what UVM did before its fix); and
//! the honest cost of a loan: the MMU invalidations it needed (on a multiprocessor, TLB
//! shootdowns) against the 64 KiB copy it saved.
//!
//! `cargo bench -p vm --bench loan_bench` runs 10,000 loans of each kind; without `--bench`
//! (`cargo test --benches`) a 100th of that. Numbers are printed side by side in one run,
//! never asserted as timings; the counts (frames, invalidations) are checked, as they do
//! not depend on the machine.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vm::testkit::HeapFrames;
use vm::{Access, AddressSpace, Config, Frame, MapSpec, SpaceRef, Vm, PAGE_SIZE};

const PAGE: u64 = PAGE_SIZE as u64;
const BASE: u64 = 0x4000_0000;
/// The buffer: 64 KiB.
const PAGES: u64 = 16;

/// An address space that counts the invalidations vm asks of it.
#[derive(Default)]
struct CountingSpace {
    invalidations: Mutex<u64>,
}

impl AddressSpace for CountingSpace {
    fn id(&self) -> u64 {
        1
    }
    fn map(&self, _addr: u64, _frame: Frame, _writable: bool) {}
    fn invalidate(&self, _addr: u64, _len: u64) {
        *self.invalidations.lock().unwrap() += 1;
    }
}

fn vm() -> (Vm, HeapFrames) {
    let frames = HeapFrames::new(256);
    let vm = Vm::new(
        frames.allocator(),
        Config {
            max_pages: 128,
            ..Config::default()
        },
    )
    .expect("vm");
    (vm, frames)
}

fn buffer_spec() -> MapSpec {
    MapSpec {
        base: BASE,
        len: PAGES * PAGE,
        offset: 0,
        shared: false,
        writable: true,
    }
}

/// One row: what `loans` loans of the buffer cost.
struct Row {
    name: &'static str,
    time: Duration,
    frames: u64,
    invalidations: u64,
    zero_pages: u64,
}

/// The untouched buffer lent `loans` times: every loan is of the zero page.
fn zero_page_loans(loans: u64) -> Row {
    let (vm, frames) = vm();
    let space = Arc::new(CountingSpace::default());
    let map = vm
        .map_private_anon(space.clone() as SpaceRef, buffer_spec())
        .expect("map");
    let before = (frames.stats().allocated, vm.statistics().pages_allocated);
    let mut zero_pages = 0;
    let start = Instant::now();
    for _ in 0..loans {
        let loan = map.lend(BASE, PAGES * PAGE).expect("lend");
        zero_pages += loan.zero_pages() as u64;
        loan.release();
    }
    let time = start.elapsed();
    let row = Row {
        name: "zero page",
        time,
        frames: vm.statistics().pages_allocated - before.1,
        invalidations: *space.invalidations.lock().unwrap(),
        zero_pages,
    };
    assert_eq!(row.frames, 0, "a loan of untouched memory allocated a page");
    assert_eq!(frames.stats().allocated, before.0, "or a frame");
    assert_eq!(row.zero_pages, loans * PAGES);
    row
}

/// Without the zero page: each loan of the untouched buffer allocates and zeroes its pages
/// (a fresh buffer faulted in for writing, lent, returned, let go of). The pool keeps
/// freed pages' frames for reuse: `frames` counts vm's page allocations
/// (`Statistics::pages_allocated`, as in every row), each a page taken and zeroed.
fn allocate_and_zero_loans(loans: u64) -> Row {
    let (vm, _frames) = vm();
    let space = Arc::new(CountingSpace::default());
    let before = vm.statistics().pages_allocated;
    let start = Instant::now();
    for _ in 0..loans {
        let map = vm
            .map_private_anon(space.clone() as SpaceRef, buffer_spec())
            .expect("map");
        for page in 0..PAGES {
            map.fault(BASE + page * PAGE, Access::Write).expect("fault");
        }
        let loan = map.lend(BASE, PAGES * PAGE).expect("lend");
        drop(map);
        loan.release();
    }
    let time = start.elapsed();
    Row {
        name: "allocate and zero",
        time,
        frames: vm.statistics().pages_allocated - before,
        invalidations: 0,
        zero_pages: 0,
    }
}

/// A written buffer lent `loans` times, stored to between loans (`rewrite`) or not: the
/// first loan of a page mapped writable removes its translation; a store after the loan
/// returned maps it writable again, so the next loan must remove it again.
fn written_buffer_loans(loans: u64, rewrite: bool) -> (Row, u64) {
    let (vm, _frames) = vm();
    let space = Arc::new(CountingSpace::default());
    let map = vm
        .map_private_anon(space.clone() as SpaceRef, buffer_spec())
        .expect("map");
    for page in 0..PAGES {
        map.fault(BASE + page * PAGE, Access::Write).expect("fault");
    }
    let start_invalidations = *space.invalidations.lock().unwrap();
    let before = vm.statistics().pages_allocated;
    let start = Instant::now();
    for _ in 0..loans {
        let loan = map.lend(BASE, PAGES * PAGE).expect("lend");
        loan.release();
        if rewrite {
            for page in 0..PAGES {
                map.fault(BASE + page * PAGE, Access::Write).expect("store");
            }
        }
    }
    let time = start.elapsed();
    let invalidations = *space.invalidations.lock().unwrap() - start_invalidations;
    let lent = vm.statistics().loan_invalidations;
    assert_eq!(lent, invalidations, "every invalidation is a loan's");
    let expected = if rewrite { loans * PAGES } else { PAGES };
    assert_eq!(invalidations, expected);
    let row = Row {
        name: if rewrite {
            "written, stored to between loans"
        } else {
            "written once"
        },
        time,
        frames: vm.statistics().pages_allocated - before,
        invalidations,
        zero_pages: 0,
    };
    (row, vm.statistics().loan_breaks)
}

/// What the loan saves: copying the buffer's 16 pages out, `loans` times.
fn copies(loans: u64) -> Duration {
    let frames = HeapFrames::new(PAGES as u32);
    let allocator = frames.allocator();
    let pages: Vec<Frame> = (0..PAGES)
        .map(|_| allocator.allocate().expect("frame"))
        .collect();
    let mut out = vec![0u8; (PAGES * PAGE) as usize];
    let start = Instant::now();
    for _ in 0..loans {
        for (frame, chunk) in pages.iter().zip(out.chunks_mut(PAGE_SIZE)) {
            allocator.with_frame(*frame, &mut |bytes| chunk.copy_from_slice(bytes));
        }
        std::hint::black_box(&out);
    }
    let time = start.elapsed();
    for frame in pages {
        allocator.free(frame);
    }
    time
}

fn per_loan(time: Duration, loans: u64) -> String {
    format!("{:.2} µs", time.as_secs_f64() * 1e6 / loans as f64)
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let loans = if full { 10_000 } else { 100 };
    if !full {
        println!("quick run ({loans} loans); `cargo bench` runs 10,000");
    }
    let zero = zero_page_loans(loans);
    let allocated = allocate_and_zero_loans(loans);
    let (once, _) = written_buffer_loans(loans, false);
    let (rewritten, breaks) = written_buffer_loans(loans, true);
    assert_eq!(breaks, 0, "a store after the loan returned breaks nothing");
    let copy = copies(loans);
    println!();
    println!("{loans} loans of a 64 KiB buffer ({PAGES} pages):");
    println!();
    println!("| buffer, loan | time a loan | pages allocated | zero pages lent | invalidations | invalidations a loan |");
    println!("|---|---:|---:|---:|---:|---:|");
    for row in [&zero, &allocated, &once, &rewritten] {
        println!(
            "| {} | {} | {} | {} | {} | {:.2} |",
            row.name,
            per_loan(row.time, loans),
            row.frames,
            row.zero_pages,
            row.invalidations,
            row.invalidations as f64 / loans as f64
        );
    }
    println!(
        "| (the 64 KiB copy a loan saves) | {} | | | | |",
        per_loan(copy, loans)
    );
    println!();
    println!(
        "untouched buffer: the zero page is {:.1}x as fast as allocate-and-zero, and allocates {} frames against {}",
        allocated.time.as_secs_f64() / zero.time.as_secs_f64().max(1e-9),
        zero.frames,
        allocated.frames
    );
    println!(
        "a buffer stored to between loans: {:.2} invalidations a loan ({} pages), each a TLB shootdown on a multiprocessor, against one 64 KiB copy saved ({:.2}x the copy's time here, a single-address-space fake)",
        rewritten.invalidations as f64 / loans as f64,
        PAGES,
        rewritten.time.as_secs_f64() / copy.as_secs_f64().max(1e-9)
    );
}
