//! loom models of the lock protocols. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p vm --features loom --test loom --release`
//! (`.ci/loom`).
//!
//! The models live in modules by subject: the image cache and its table in `loom_images/`
//! (1 to 3, 8 to 11, 16, 26 to 28), the mount cache in `loom_mount_cache/` (4 to 7), file
//! mappings in `loom_mappings/` (12 to 15, 17 to 19), page loans in `loom_loans/` (20 to
//! 25). This file holds the helpers they share.
//!
//! 1. attach vs put vs reclaim of an idle image (9front's 2025 image locking);
//! 2. attach vs the last put of an image (put's re-check under the table lock);
//! 3. putseg vs a new attach of the same text segment (9front's A/B/A race of June 2025);
//! 4. mount cache: a fill vs a wipe by an open that sees a new version (fill tickets);
//! 5. mount cache: two of our writes to one file in flight at once (write conflicts);
//! 6. mount cache: exec of a file vs a cached open of the same version (no double caching);
//! 7. mount cache: a fill vs reclaim (the page count and the chains agree);
//! 8. two faults on one uncached page: one reads it, the other waits (one read);
//! 9. a failed page load wakes the fault waiting for it, which loads (and fails) in turn.
//! 10. the last segment of a program goes away while reclaim holds its short reference:
//!     reclaim's put drops the channel and parks it; the kernel's safe points close it with
//!     no vm lock held (the file's close re-enters vm, so a close under a lock is a
//!     deadlock loom reports).
//! 11. two attaches of one file while the image table is full of an idle image of another
//!     file: each reclaims, and searches again after reclaiming, so both get the one image
//!     (without the second search, the attach whose reclaim found nothing left to free
//!     reports a full table that holds the very image it wants).
//! 12. frames go back to the kernel (a segment's last drop trims the free pool) while a
//!     fault on another segment takes a free page or binds a new frame to an unbound entry.
//! 13. the kernel's held fault (`fault_held`) vs another thread's copy on write of the same
//!     page and the page's last other mapper going: the page held is never free (without
//!     the hold under the segment lock, it reaches the free list while held).
//! 14. a store racing a write-back of its page: the write-back write-protects the page
//!     (`AddressSpace::invalidate`) as it cleans it, so the store either is in the copy it
//!     sends or faults and marks the page dirty again; the last store reaches the server.
//! 15. a fault racing a truncate of its file: the fault checks the size under the object
//!     lock truncate publishes it under, and truncate cleans each mapping under its lock
//!     after publishing, so no translation past the new end survives.
//! 16. the sharded table: an attach of an idle image in one shard vs an attach of a file in
//!     another shard into a full table, whose reclaim takes the idle image across shards:
//!     exactly one of them gets an image (never two images past `max_images`, never an image
//!     unlinked while its attach holds it: put's re-check runs under the idle image's own
//!     shard's lock, where the other attach takes its reference).
//! 17. a store racing a migration of its page (`Vm::migrate`): the migration invalidates
//!     the page's translation under its mapping's lock before it copies and exchanges the
//!     frames, so the store lands in the old frame before the copy or faults and lands in
//!     the new one; never in the old frame after the copy (lost, in a frame gone back to
//!     the kernel).
//! 18. an unmap writing back a dirty shared page vs a truncate of its file to 0 (vm told
//!     first, then the server): truncate waits for the write-backs in flight, so none lands
//!     at the server past the new size; no translation is left, no frame leaks.
//! 19. a fault that looked a private page up (a fork child's read of the page it shares
//!     with its parent) racing a migration of that page: the migration holds every
//!     mapping's lock from reading their entries to the exchange, so the fault maps the
//!     old frame before the migration invalidates it or the new one after; never the old
//!     frame after the exchange (a translation of a frame gone back to the kernel).
//!
//! Page loans (`loom_loans/`, `mapping/loan.rs`):
//!
//! 20. a lend of a page mapped writable (dirty shared, or private) vs a CPU's stores and a
//!     read fault between them: the first loan write-protects the page and a fault maps a
//!     lent page read only, so each store after the lend breaks the loan by copying and the
//!     loan's bytes never change (two models: shared, private).
//! 21. a lend vs the owner letting go of the page (MADV_DONTNEED): the loan gets the page,
//!     which becomes an orphan and stays off the free list, or the zero page.
//! 22. the last loan returned vs the owner's last reference going (an exit): the page is
//!     freed once, never left an orphan without loans (both decide under the free-list
//!     lock; returning a loan takes no owner's lock at all).
//! 23. a store breaking a loan of a shared page vs the other mapping of the page going:
//!     whoever puts the old page last sees it unowned and frees it (to the orphans).
//! 24. a lend vs a migration of the page: the move is before the lend, or refused
//!     (`Unmovable::Lent`); the loan's frame never changes.
//! 25. two stores to a lent shared page through its two mappings at once: one breaks the
//!     loan, the other's fault sees under the object lock that its entry's page left the
//!     object and takes the copy (one break, one page in both mappings).
//! 26. a text fault of an exec of an idle image vs a migration of the image's one cached
//!     page (at ref 0, so movable): the fault takes its reference and reads the frame under
//!     the image lock the migration checks ref 0 and exchanges under, so the fault maps the
//!     new frame, or the old one and the migration refuses (`SegmentMapped`); never the old
//!     frame after the exchange (a frame gone back to the kernel).
//!
//! Park queues (`channel.rs`):
//!
//! 27. two CPUs attach and put one file at once, each then running only its own CPU's
//!     drain (`run_parked_closes_on`): every file is closed with no drain of all. The file
//!     an attach found a channel for parks on its own CPU; the channel's file, made on one
//!     CPU and let go of by the last put on either, parks in the shared queue every CPU's
//!     drain runs (without the move there, the last put on the other CPU leaves it in a
//!     queue whose CPU has drained already; without the shared queue in each drain, it is
//!     never closed).
//! 28. an attach on a CPU that finds the image in its slot of last attached images (no
//!     table lock) vs the image's last put on another thread: the reference is taken under
//!     the image lock only while the image has its channel, so the attach gets the table's
//!     image, active, or finds the channel gone and makes a new image through the table
//!     (without the check it takes a reference to an image that was unlinked or made idle,
//!     and holds an image with no channel that the table does not know).
//!
//! Each model checks the invariants afterwards, that the pages read are the file's, that
//! every file handle is closed once everything is dropped, and that every frame comes back.
#![cfg(loom)]

mod loom_images;
mod loom_loans;
mod loom_mappings;
mod loom_mount_cache;
mod map_common;

use vm::check::check_invariants;
use vm::testkit::{pattern_byte, FakeFile, HeapFrames};
use vm::{Access, Config, FileIdentity, LoadSegment, Vm, PAGE_SIZE};

const TEXT: u64 = 0x40_0000;

fn builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.max_branches = 1_000_000;
    builder
}

/// Runs `body` under loom as the model `name`, counting the interleavings it explored with
/// a counter of its own (tests run in parallel, so a shared one would mix models), and
/// fails when loom explored only one: a model that never interleaves proves nothing.
fn model(name: &str, body: impl Fn() + Send + Sync + 'static) {
    let explored = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = explored.clone();
    builder().check(move || {
        body();
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let explored = explored.load(std::sync::atomic::Ordering::Relaxed);
    println!("{name}: explored {explored} interleavings");
    assert!(
        explored > 1,
        "{name}: loom explored {explored} interleaving(s); the model has no race"
    );
}

/// A vm of 4 pages and 2 images over 8 frames: small enough that loom's models reach
/// reclaim and a full table in a few steps.
fn small_vm() -> (Vm, HeapFrames) {
    small_vm_of(2)
}

/// The same with room for `images` images (all of them may be idle).
fn small_vm_of(images: u32) -> (Vm, HeapFrames) {
    let frames = HeapFrames::new(8);
    let vm = Vm::new(
        frames.allocator(),
        Config {
            max_pages: 4,
            max_images: images,
            max_idle_images: images,
            reclaim_batch: 1,
            max_free_pages: 4,
        },
    )
    .unwrap();
    (vm, frames)
}

fn setup() -> (Vm, HeapFrames, FakeFile, Vec<LoadSegment>) {
    let (vm, frames) = small_vm();
    let identity = FileIdentity {
        dev_type: 1,
        dev: 1,
        qid_path: 7,
        version: 0,
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
    // The kernel's safe point: the files vm let go of are closed here, not before.
    vm.run_parked_closes();
    let stats = vm.statistics();
    assert_eq!(stats.images_active, 0);
    let counts = file.counts();
    assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
    drop(vm);
    assert_eq!(frames.stats().outstanding(), 0);
}

/// The one page of the MMU of models 14, 17, 19 and the loan models: its translation, under a loom lock.
#[derive(Default)]
struct OnePageMmu {
    entry: loom::sync::Mutex<Option<(vm::Frame, bool)>>,
}

impl vm::AddressSpace for OnePageMmu {
    fn id(&self) -> u64 {
        1
    }
    fn map(&self, _addr: u64, frame: vm::Frame, writable: bool) {
        *self.entry.lock().unwrap() = Some((frame, writable));
    }
    fn invalidate(&self, _addr: u64, _len: u64) {
        *self.entry.lock().unwrap() = None;
    }
}

/// A CPU's store: through a writable translation under the MMU's lock (a shootdown waits
/// for a store in flight), else a write fault and again.
fn cpu_store(space: &OnePageMmu, map: &vm::MappingRef, frames: &HeapFrames, byte: u8) {
    loop {
        {
            let entry = space.entry.lock().unwrap();
            if let Some((frame, true)) = *entry {
                frames.write(frame, 0, &[byte]);
                return;
            }
        }
        map.fault(map.base(), Access::Write).unwrap();
    }
}
