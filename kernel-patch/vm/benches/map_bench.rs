//! Mappings: what the object-based reverse map costs in memory against the 2002 rmap
//! scheme's two pointers per mapped page-table entry, and what a truncate of a file mapped
//! by many address spaces costs (time, and the pages it touches), to 0 and to half.
//!
//! `cargo bench -p vm --bench map_bench` runs it in full (a 1 GiB mapping, a 256 MiB file
//! mapped by 8 address spaces: about 1.5 GiB of fake frames and file bytes at the peak).
//! Without `--bench` (as `cargo test --benches` runs it) it runs the same steps on sizes a
//! 64th as large, so a debug build's test run stays short. Numbers are printed side by side
//! in one run, never asserted as timings: the machine may be shared. The counts (records,
//! entries, pages) are checked, as they do not depend on the machine.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vm::testkit::{FakeFile, HeapFrames};
use vm::{
    Access, AddressSpace, Config, FileIdentity, Frame, MapSpec, MappingRef, SpaceRef, Vm, PAGE_SIZE,
};

const PAGE: u64 = PAGE_SIZE as u64;
/// Where every bench mapping starts in its address space.
const BASE: u64 = 0x4000_0000;
/// The 2002 rmap scheme (Rik van Riel's `pte_chain`s): a pointer to the page-table entry
/// and a pointer to the next link, per mapped entry, on a 64-bit machine.
const PTE_CHAIN_BYTES: u64 = 16;
/// Truncates timed of each kind (the best is printed).
const RUNS: usize = 3;

/// An address space that keeps one slot a page of one range and counts what vm does to it.
struct CountingSpace {
    id: u64,
    state: Mutex<SpaceState>,
}

#[derive(Default)]
struct SpaceState {
    /// Whether the page at `BASE + i * PAGE` has a translation.
    mapped: Vec<bool>,
    /// Translations present now.
    present: u64,
    /// `invalidate` calls, pages they covered, and translations they removed.
    invalidations: u64,
    invalidated_pages: u64,
    cleared: u64,
}

impl CountingSpace {
    fn new(id: u64, pages: u64) -> Arc<Self> {
        Arc::new(Self {
            id,
            state: Mutex::new(SpaceState {
                mapped: vec![false; pages as usize],
                ..SpaceState::default()
            }),
        })
    }

    fn reset_counts(&self) {
        let mut state = self.state.lock().unwrap();
        state.invalidations = 0;
        state.invalidated_pages = 0;
        state.cleared = 0;
    }
}

impl AddressSpace for CountingSpace {
    fn id(&self) -> u64 {
        self.id
    }

    fn map(&self, addr: u64, _frame: Frame, _writable: bool) {
        let mut state = self.state.lock().unwrap();
        let slot = ((addr - BASE) / PAGE) as usize;
        if !state.mapped[slot] {
            state.mapped[slot] = true;
            state.present += 1;
        }
    }

    fn invalidate(&self, addr: u64, len: u64) {
        let mut state = self.state.lock().unwrap();
        state.invalidations += 1;
        state.invalidated_pages += len / PAGE;
        let first = ((addr.max(BASE) - BASE) / PAGE) as usize;
        let end = (((addr + len).max(BASE) - BASE) / PAGE) as usize;
        let end = end.min(state.mapped.len());
        let mut cleared = 0;
        for slot in state.mapped[first.min(end)..end].iter_mut() {
            if *slot {
                *slot = false;
                cleared += 1;
            }
        }
        state.present -= cleared;
        state.cleared += cleared;
    }
}

fn identity(path: u64) -> FileIdentity {
    FileIdentity {
        dev_type: u32::from(b'M'),
        dev: 1,
        qid_path: path,
        version: 1,
    }
}

/// A vm with room for `pages` pages (and some for its page tables).
fn vm_for(pages: u64) -> (Vm, HeapFrames) {
    let capacity = u32::try_from(pages + pages / 64 + 1024).expect("bench size");
    let frames = HeapFrames::new(capacity);
    let vm = Vm::new(
        frames.allocator(),
        Config {
            max_pages: capacity,
            ..Config::default()
        },
    )
    .expect("vm");
    (vm, frames)
}

/// A file of `pages` pages whose bytes are each page's index (cheap to make in debug).
fn file(path: u64, pages: u64) -> FakeFile {
    let mut data = vec![0u8; (pages * PAGE) as usize];
    for (number, page) in data.chunks_mut(PAGE_SIZE).enumerate() {
        page.fill(number as u8);
    }
    FakeFile::new(identity(path), data)
}

fn shared_read_only(pages: u64) -> MapSpec {
    MapSpec {
        base: BASE,
        len: pages * PAGE,
        offset: 0,
        shared: true,
        writable: false,
    }
}

/// Read-faults in every page of `map`.
fn fault_in(map: &MappingRef, pages: u64) {
    for page in 0..pages {
        map.fault(BASE + page * PAGE, Access::Read).expect("fault");
    }
}

/// One row of the reverse-map table.
struct RmapRow {
    mappings: u64,
    pages_each: u64,
    records: u64,
    object_bytes: u64,
    chain_bytes: u64,
}

/// `mappings` shared mappings (each in its own address space) of one file of `pages` pages,
/// every page faulted in through each.
fn rmap_memory(mappings: u64, pages: u64) -> RmapRow {
    let (vm, _frames) = vm_for(pages);
    let file = file(1, pages);
    let object = vm.file_object(file.open()).expect("object");
    let mut spaces = Vec::new();
    let mut maps = Vec::new();
    for id in 0..mappings {
        let space = CountingSpace::new(id, pages);
        let map = object
            .map(space.clone() as SpaceRef, shared_read_only(pages))
            .expect("map");
        fault_in(&map, pages);
        spaces.push(space);
        maps.push(map);
    }
    let entries: u64 = spaces
        .iter()
        .map(|space| space.state.lock().unwrap().present)
        .sum();
    assert_eq!(entries, mappings * pages, "every page faulted in");
    let stats = vm.statistics();
    assert_eq!(stats.rmap_records, mappings, "one record a mapping");
    RmapRow {
        mappings,
        pages_each: pages,
        records: stats.rmap_records,
        object_bytes: stats.rmap_bytes,
        chain_bytes: entries * PTE_CHAIN_BYTES,
    }
}

/// One row of the truncate table.
struct TruncateRow {
    to: &'static str,
    time: Duration,
    invalidations: u64,
    invalidated_pages: u64,
    cleared: u64,
    dropped: usize,
}

/// A file of `pages` pages mapped shared by `spaces` address spaces, every page faulted in
/// through each, truncated to `size`.
fn truncate(spaces: u64, pages: u64, size: u64, to: &'static str) -> TruncateRow {
    let (vm, _frames) = vm_for(pages);
    let file = file(2, pages);
    let object = vm.file_object(file.open()).expect("object");
    let mut all = Vec::new();
    let mut maps = Vec::new();
    for id in 0..spaces {
        let space = CountingSpace::new(id, pages);
        let map = object
            .map(space.clone() as SpaceRef, shared_read_only(pages))
            .expect("map");
        fault_in(&map, pages);
        space.reset_counts();
        all.push(space);
        maps.push(map);
    }
    let start = Instant::now();
    let dropped = vm
        .truncate_mapped(&file.identity(), size)
        .expect("truncate");
    let time = start.elapsed();
    let gone = pages - size.div_ceil(PAGE);
    assert_eq!(dropped as u64, gone, "every page past the size dropped");
    let mut row = TruncateRow {
        to,
        time,
        invalidations: 0,
        invalidated_pages: 0,
        cleared: 0,
        dropped,
    };
    for space in &all {
        let state = space.state.lock().unwrap();
        row.invalidations += state.invalidations;
        row.invalidated_pages += state.invalidated_pages;
        row.cleared += state.cleared;
        assert_eq!(
            state.present,
            pages - gone,
            "translations below the size stay"
        );
    }
    assert_eq!(
        row.cleared,
        spaces * gone,
        "every translation past the size went"
    );
    drop(maps);
    row
}

fn ratio(a: u64, b: u64) -> String {
    if b == 0 {
        return "-".into();
    }
    format!("{:.0}", a as f64 / b as f64)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let full = std::env::args().any(|arg| arg == "--bench");
    let scale = if full { 1 } else { 64 };
    let big = 262_144 / scale;
    let many = 1_000;
    // The pages each of the many mappings maps: a 1 MiB shared library, say.
    let small = 256 / scale.min(16);
    let file_pages = 65_536 / scale;
    let spaces = 8;
    if !full {
        println!("quick run (sizes / {scale}); `cargo bench` runs the full sizes");
    }

    let rows = [rmap_memory(1, big), rmap_memory(many, small)];
    println!();
    println!("| mappings | pages each | rmap records | object rmap bytes | 2002 pte_chain bytes | ratio |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {}x |",
            row.mappings,
            row.pages_each,
            row.records,
            row.object_bytes,
            row.chain_bytes,
            ratio(row.chain_bytes, row.object_bytes)
        );
    }

    let size = file_pages * PAGE;
    // Each truncate on a fresh setup, alternating, the best time of `RUNS` kept: one
    // truncate is a few milliseconds, where a neighbour's burst on the shared machine shows.
    let mut rows = [
        truncate(spaces, file_pages, 0, "0"),
        truncate(spaces, file_pages, size / 2, "half"),
    ];
    for _ in 1..RUNS {
        for (row, to) in rows.iter_mut().zip([0, size / 2]) {
            let again = truncate(spaces, file_pages, to, row.to);
            row.time = row.time.min(again.time);
        }
    }
    println!();
    println!(
        "truncate of a {} MiB file mapped by {spaces} address spaces, every page faulted in each (best of {RUNS})",
        size >> 20
    );
    println!();
    println!("| to | time | ns a page dropped | invalidate calls | pages invalidated | entries cleared | pages dropped |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {:.2?} | {} | {} | {} | {} | {} |",
            row.to,
            row.time,
            row.time.as_nanos() / row.dropped.max(1) as u128,
            row.invalidations,
            row.invalidated_pages,
            row.cleared,
            row.dropped
        );
    }
    let (zero, half) = (&rows[0], &rows[1]);
    println!(
        "time ratio to 0 / to half: {:.2} (pages dropped {} / {})",
        zero.time.as_secs_f64() / half.time.as_secs_f64().max(1e-9),
        zero.dropped,
        half.dropped
    );
}
