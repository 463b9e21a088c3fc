//! loom models of the lock protocols. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p vm --features loom --test loom --release`
//! (`.ci/loom`).
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

mod loom_loans;
mod map_common;

use loom::thread;
use vm::check::check_invariants;
use vm::testkit::{pattern_byte, FakeFile, HeapFrames};
use vm::{
    Access, CachedFile, Config, FaultError, FileError, FileIdentity, ImageFile, LoadSegment,
    MountCacheConfig, OpenKind, Vm, PAGE_SIZE,
};

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

#[test]
fn attach_vs_put_vs_reclaim() {
    model("attach_vs_put_vs_reclaim", || {
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
    });
}

#[test]
fn attach_vs_last_put() {
    model("attach_vs_last_put", || {
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
        vm.run_parked_closes();
        assert_eq!(file.counts().open_handles(), 1);
        drop(second);
        finish(vm, frames, file);
    });
}

#[test]
fn putseg_vs_attach_of_the_same_text() {
    model("putseg_vs_attach_of_the_same_text", || {
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
    });
}

fn mcache_setup() -> (Vm, HeapFrames) {
    let frames = HeapFrames::new(8);
    let vm = Vm::with_mount_cache(
        frames.allocator(),
        Config {
            max_pages: 4,
            max_images: 2,
            max_idle_images: 2,
            reclaim_batch: 1,
            max_free_pages: 4,
        },
        MountCacheConfig {
            max_file_bytes: 2 * PAGE_SIZE as u64,
            max_bytes: 2 * PAGE_SIZE as u64,
            max_files: 2,
        },
    )
    .unwrap();
    (vm, frames)
}

fn data_file(vers: u64) -> FileIdentity {
    FileIdentity {
        dev_type: 1,
        dev: 2,
        qid_path: 30,
        version: vers,
    }
}

/// A file on a fake server: its version and contents, changed atomically.
type Server = loom::sync::Arc<loom::sync::Mutex<(u64, Vec<u8>)>>;

/// Reads `len` bytes at 0 the kernel's way: the cache, then the server, then a fill.
fn read_through(file: &CachedFile, server: &Server, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let hit = file.read(0, &mut buf);
    let data = server.lock().unwrap().1.clone();
    buf[hit.len..].copy_from_slice(&data[hit.len..len]);
    file.fill(hit.ticket, hit.len as u64, &data[hit.len..len]);
    buf
}

/// Whatever `file`'s cache answers is the server's current contents.
fn assert_cache_matches(file: &CachedFile, server: &Server) {
    let data = server.lock().unwrap().1.clone();
    let mut buf = vec![0u8; data.len()];
    let hit = file.read(0, &mut buf);
    assert_eq!(
        &buf[..hit.len],
        &data[..hit.len],
        "a stale byte in the cache"
    );
}

fn mcache_finish(vm: Vm, frames: HeapFrames) {
    if let Err(violation) = check_invariants(&vm, Some(&[])) {
        panic!("{violation}");
    }
    drop(vm);
    assert_eq!(frames.stats().outstanding(), 0);
}

#[test]
fn fill_vs_a_new_version_at_open() {
    model("fill_vs_a_new_version_at_open", || {
        let (vm, frames) = mcache_setup();
        let server: Server = loom::sync::Arc::new(loom::sync::Mutex::new((0, vec![1u8; 64])));
        let cache = vm.mount_cache();
        let file = cache.open(data_file(0), 64, OpenKind::Existing, false);
        let reader = {
            let server = server.clone();
            thread::spawn(move || {
                read_through(&file, &server, 64);
            })
        };
        // Another client writes the file; then an open of ours sees its new version.
        *server.lock().unwrap() = (1, vec![2u8; 64]);
        let reopened = cache.open(data_file(1), 64, OpenKind::Existing, false);
        reader.join().unwrap();
        assert_cache_matches(&reopened, &server);
        drop((reopened, cache));
        mcache_finish(vm, frames);
    });
}

#[test]
fn two_writes_in_flight_at_once() {
    model("two_writes_in_flight_at_once", || {
        let (vm, frames) = mcache_setup();
        let server: Server = loom::sync::Arc::new(loom::sync::Mutex::new((0, vec![0u8; 16])));
        let file = loom::sync::Arc::new(vm.mount_cache().open(
            data_file(0),
            16,
            OpenKind::Existing,
            false,
        ));
        read_through(&file, &server, 16);
        let write = |file: &CachedFile, server: &Server, byte: u8| {
            let pending = file.begin_write();
            {
                let mut server = server.lock().unwrap();
                server.0 += 1;
                server.1[..4].fill(byte);
            }
            pending.done(0, &[byte; 4]);
        };
        let writer = {
            let (file, server) = (file.clone(), server.clone());
            thread::spawn(move || write(&file, &server, b'A'))
        };
        write(&file, &server, b'B');
        writer.join().unwrap();
        assert_cache_matches(&file, &server);
        drop(file);
        mcache_finish(vm, frames);
    });
}

/// Our write through a handle while the file's entry is forgotten, and a second open makes
/// and fills a new one: whichever way they interleave, the entry the second handle reads
/// never answers bytes from before the write once it is done (the write reaches the new
/// entry, or its end wipes it).
#[test]
fn a_write_vs_its_entry_forgotten_and_refilled() {
    model("a_write_vs_its_entry_forgotten_and_refilled", || {
        let (vm, frames) = mcache_setup();
        let server: Server = loom::sync::Arc::new(loom::sync::Mutex::new((0, vec![0u8; 16])));
        let cache = vm.mount_cache();
        let first = cache.open(data_file(0), 16, OpenKind::Existing, false);
        let writer = {
            let server = server.clone();
            thread::spawn(move || {
                let pending = first.begin_write();
                {
                    let mut server = server.lock().unwrap();
                    server.0 += 1;
                    server.1[..4].fill(b'A');
                }
                pending.done(0, b"AAAA");
            })
        };
        cache.forget(data_file(0));
        let vers = server.lock().unwrap().0;
        let second = cache.open(data_file(vers), 16, OpenKind::Existing, false);
        read_through(&second, &server, 16);
        writer.join().unwrap();
        assert_cache_matches(&second, &server);
        drop((second, cache));
        mcache_finish(vm, frames);
    });
}

#[test]
fn exec_vs_a_cached_open_of_the_same_version() {
    model("exec_vs_a_cached_open_of_the_same_version", || {
        let (vm, frames, file, loads) = setup();
        let opener = {
            let (vm, file) = (vm.clone(), file.clone());
            thread::spawn(move || {
                let cached = vm.mount_cache().open(
                    file.identity(),
                    PAGE_SIZE as u64,
                    OpenKind::Existing,
                    false,
                );
                let mut buf = vec![0u8; 32];
                let hit = cached.read(0, &mut buf);
                cached.fill(hit.ticket, 0, &file.data()[..32]);
                cached
            })
        };
        let segments = vm.exec(file.open(), &loads).unwrap();
        let cached = opener.join().unwrap();
        // Whichever came first, the executable image and the mount cache never both hold
        // the file (the checker's DoubleCached), and a cached open lost its entry to exec
        // or came after it uncached.
        assert!(!cached.is_cached());
        drop(cached);
        let live: Vec<&vm::SegmentRef> = segments.iter().collect();
        if let Err(violation) = check_invariants(&vm, Some(&live)) {
            panic!("{violation}");
        }
        assert_eq!(vm.statistics().mcache_files, 0);
        drop(segments);
        finish(vm, frames, file);
    });
}

#[test]
fn fill_vs_reclaim() {
    model("fill_vs_reclaim", || {
        let (vm, frames) = mcache_setup();
        let server: Server =
            loom::sync::Arc::new(loom::sync::Mutex::new((0, vec![3u8; 2 * PAGE_SIZE])));
        let file = vm.mount_cache().open(
            data_file(0),
            2 * PAGE_SIZE as u64,
            OpenKind::Existing,
            false,
        );
        let reclaimer = {
            let vm = vm.clone();
            thread::spawn(move || {
                vm.reclaim(1);
            })
        };
        let bytes = read_through(&file, &server, 2 * PAGE_SIZE);
        assert!(bytes.iter().all(|byte| *byte == 3));
        reclaimer.join().unwrap();
        assert_cache_matches(&file, &server);
        drop(file);
        mcache_finish(vm, frames);
    });
}

/// Faults one page of the text, checking its bytes.
fn fault_text(frames: &HeapFrames, file: &FakeFile, text: &vm::SegmentRef) {
    let mapping = text.fault(TEXT, Access::Read).unwrap();
    let bytes = frames.read(mapping.frame);
    let identity = file.identity();
    assert!(bytes
        .iter()
        .enumerate()
        .all(|(offset, byte)| *byte == pattern_byte(&identity, offset as u64)));
}

#[test]
fn two_faults_on_one_uncached_page_read_it_once() {
    model("two_faults_on_one_uncached_page_read_it_once", || {
        let (vm, frames, file, loads) = setup();
        // Two processes of the file: two handles on one shared text segment.
        let first = vm.exec(file.open(), &loads).unwrap();
        let second = vm.exec(file.open(), &loads).unwrap();
        let faulter = {
            let (frames, file) = (frames.clone(), file.clone());
            thread::spawn(move || {
                fault_text(&frames, &file, &second[0]);
                second
            })
        };
        fault_text(&frames, &file, &first[0]);
        let second = faulter.join().unwrap();
        // One of them loaded the page; the other found it loading and waited, or found it.
        assert_eq!(file.counts().reads, 1, "the page was read twice");
        assert_eq!(vm.statistics().page_loads, 1);
        let live: Vec<&vm::SegmentRef> = first.iter().chain(second.iter()).collect();
        if let Err(violation) = check_invariants(&vm, Some(&live)) {
            panic!("{violation}");
        }
        drop((first, second));
        finish(vm, frames, file);
    });
}

#[test]
fn a_failed_load_wakes_the_fault_waiting_for_it() {
    model("a_failed_load_wakes_the_fault_waiting_for_it", || {
        let (vm, frames, file, loads) = setup();
        file.fail_reads(true);
        let first = vm.exec(file.open(), &loads).unwrap();
        let second = vm.exec(file.open(), &loads).unwrap();
        let faulter = thread::spawn(move || {
            let result = second[0].fault(TEXT, Access::Read);
            (result, second)
        });
        let mine = first[0].fault(TEXT, Access::Read);
        let (theirs, second) = faulter.join().unwrap();
        // Neither may wait forever or map a page the failed read left: each fault loads
        // in its turn, and fails.
        let failed = Err(FaultError::Io(FileError::Io));
        assert_eq!((mine, theirs), (failed, failed));
        assert_eq!(file.counts().reads, 2);
        let live: Vec<&vm::SegmentRef> = first.iter().chain(second.iter()).collect();
        let report = match check_invariants(&vm, Some(&live)) {
            Ok(report) => report,
            Err(violation) => panic!("{violation}"),
        };
        assert_eq!(report.cached_pages, 0);
        drop((first, second));
        finish(vm, frames, file);
    });
}

/// A handle whose close re-enters vm, as a kernel's close that allocates (and so reclaims)
/// may: it looks at the image (table and image lock) and reclaims (reclaim lock). Closed
/// under any of vm's locks, it waits for that lock on the thread holding it.
struct ReenteringFile {
    inner: Box<dyn ImageFile>,
    vm: Vm,
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
        let _ = self.vm.image_status(&self.inner.identity());
        self.vm.reclaim(1);
        let Self { inner, vm } = *self;
        drop(vm);
        inner.close();
    }
}

#[test]
fn last_segment_dropped_while_reclaim_holds_the_image() {
    model("last_segment_dropped_while_reclaim_holds_the_image", || {
        let (vm, frames, file, loads) = setup();
        let handle = ReenteringFile {
            inner: file.open(),
            vm: vm.clone(),
        };
        let segments = vm.exec(Box::new(handle), &loads).unwrap();
        fault_text(&frames, &file, &segments[0]);
        // The image is in use, not idle: reclaim reaches it in its pass over every image,
        // with a short reference of its own.
        let reclaimer = {
            let vm = vm.clone();
            thread::spawn(move || {
                vm.reclaim(1);
                // A kernel's safe point after reclaiming: the re-entering close may run here.
                vm.run_parked_closes();
            })
        };
        drop(segments);
        vm.run_parked_closes();
        reclaimer.join().unwrap();
        finish(vm, frames, file);
    });
}

#[test]
fn two_attaches_of_one_file_into_a_full_table() {
    model("two_attaches_of_one_file_into_a_full_table", || {
        let (vm, frames) = small_vm_of(1);
        let (_, _, wanted, loads) = setup();
        let idle = FakeFile::patterned(
            FileIdentity {
                dev_type: 1,
                dev: 1,
                qid_path: 8,
                version: 0,
            },
            PAGE_SIZE,
        );
        // The table's one slot: an idle image of another file, with a cached page.
        drop(exec_and_read(&vm, &frames, &idle, &loads));
        assert_eq!(vm.statistics().images_idle, 1);
        let attacher = {
            let (vm, wanted) = (vm.clone(), wanted.clone());
            thread::spawn(move || vm.attach(wanted.open()))
        };
        let mine = vm.attach(wanted.open());
        let theirs = attacher.join().unwrap();
        let (mine, theirs) = match (mine, theirs) {
            (Ok(mine), Ok(theirs)) => (mine, theirs),
            (mine, theirs) => panic!("an attach failed: {:?}, {:?}", mine.err(), theirs.err()),
        };
        let report = check_invariants(&vm, None).unwrap();
        assert_eq!((report.images, report.open_channels), (1, 1));
        assert!(vm.image_status(&idle.identity()).is_none());
        drop((mine, theirs));
        vm.run_parked_closes();
        finish(vm, frames, wanted);
        let counts = idle.counts();
        assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
    });
}

/// A file whose image goes in table shard `shard`, found by trying paths from `from` on.
fn file_in_shard(shard: usize, from: u64) -> FakeFile {
    let identity = (from..)
        .map(|qid_path| FileIdentity {
            dev_type: 1,
            dev: 1,
            qid_path,
            version: 0,
        })
        .find(|identity| Vm::table_shard(identity) == shard)
        .unwrap();
    FakeFile::patterned(identity, PAGE_SIZE)
}

#[test]
fn attach_vs_reclaim_across_shards_into_a_full_table() {
    model("attach_vs_reclaim_across_shards_into_a_full_table", || {
        assert!(Vm::TABLE_SHARDS >= 2);
        let (vm, frames) = small_vm_of(1);
        let (_, _, _, loads) = setup();
        let idle = file_in_shard(0, 1);
        let other = file_in_shard(1, 1);
        // The table's one slot: an idle image (shard 0) with a cached page.
        drop(exec_and_read(&vm, &frames, &idle, &loads));
        assert_eq!(vm.statistics().images_idle, 1);
        // An attach of a file of shard 1: the table is full, so it reclaims shard 0's idle
        // image, and searches again.
        let attacher = {
            let (vm, other) = (vm.clone(), other.clone());
            thread::spawn(move || vm.attach(other.open()))
        };
        let mine = vm.attach(idle.open());
        let theirs = attacher.join().unwrap();
        let (held, file) = match (mine, theirs) {
            (Ok(mine), Err(vm::VmError::ImageTableFull)) => (mine, &idle),
            (Err(vm::VmError::ImageTableFull), Ok(theirs)) => (theirs, &other),
            (mine, theirs) => panic!(
                "not exactly one image: {:?}, {:?}",
                mine.map(|held| held.identity()),
                theirs.map(|held| held.identity())
            ),
        };
        // The image held is the table's, active, with its channel.
        let status = vm
            .image_status(&file.identity())
            .expect("the held image is linked");
        assert!(status.has_channel && !status.idle);
        let report = check_invariants(&vm, None).unwrap();
        assert_eq!((report.images, report.open_channels), (1, 1));
        drop(held);
        vm.run_parked_closes();
        for file in [&idle, &other] {
            let counts = file.counts();
            assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
        }
        finish(vm, frames, idle);
    });
}

#[test]
fn frames_go_back_while_a_fault_allocates() {
    model("frames_go_back_while_a_fault_allocates", || {
        // The zero frame is the allocator's own, so `outstanding` counts the pool's alone.
        let frames = HeapFrames::with_zero_frame(8);
        let vm = Vm::new(
            frames.allocator(),
            Config {
                max_pages: 4,
                max_images: 2,
                max_idle_images: 2,
                reclaim_batch: 1,
                // Keep no free page: every freed frame goes back at once.
                max_free_pages: 0,
            },
        )
        .unwrap();
        const STACK: u64 = 0x7000_0000;
        let page = PAGE_SIZE as u64;
        let old = vm
            .zero_segment(vm::SegmentKind::Stack, STACK, 2 * page)
            .unwrap();
        old.fault(STACK, Access::Write).unwrap();
        old.fault(STACK + page, Access::Write).unwrap();
        let new = vm
            .zero_segment(vm::SegmentKind::Bss, STACK + 4 * page, page)
            .unwrap();
        let dropper = thread::spawn(move || drop(old));
        let mapping = new.fault(STACK + 4 * page, Access::Write).unwrap();
        assert!(frames.read(mapping.frame).iter().all(|byte| *byte == 0));
        dropper.join().unwrap();
        if let Err(violation) = check_invariants(&vm, Some(&[&new])) {
            panic!("{violation}");
        }
        // Only the new segment's page is still vm's.
        assert_eq!(frames.stats().outstanding(), 1);
        drop(new);
        assert_eq!(frames.stats().outstanding(), 0);
        drop(vm);
    });
}

#[test]
fn a_held_fault_vs_a_copy_on_write_and_the_last_mapper_going() {
    model(
        "a_held_fault_vs_a_copy_on_write_and_the_last_mapper_going",
        || {
            let (vm, frames) = small_vm_of(1);
            const STACK: u64 = 0x7000_0000;
            let parent = std::sync::Arc::new(
                vm.zero_segment(vm::SegmentKind::Stack, STACK, PAGE_SIZE as u64)
                    .unwrap(),
            );
            parent.fault(STACK, Access::Write).unwrap();
            // The page is shared with a child: a write copies it, and the child is then its
            // last mapper.
            let child = parent.fork().unwrap();
            let writer = {
                let parent = parent.clone();
                thread::spawn(move || {
                    parent.fault(STACK, Access::Write).unwrap();
                    drop(child);
                })
            };
            // The kernel's fault: the page it holds must stay off the free list until the guard
            // goes, whatever the writer did meanwhile.
            let held = parent.fault_held(STACK, Access::Read).unwrap();
            writer.join().unwrap();
            if let Err(violation) = check_invariants(&vm, None) {
                panic!("{violation}");
            }
            drop(held);
            if let Err(violation) = check_invariants(&vm, Some(&[&*parent])) {
                panic!("{violation}");
            }
            drop(parent);
            drop(vm);
            assert_eq!(frames.stats().outstanding(), 0);
        },
    );
}

/// The one page of the MMU of models 14 and 17: its translation, under a loom lock.
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

#[test]
fn a_store_vs_a_write_back_of_its_page() {
    model("a_store_vs_a_write_back_of_its_page", || {
        let (vm, frames) = small_vm();
        let file = map_common::ServerFile::stamped(3, PAGE_SIZE);
        let space = std::sync::Arc::new(OnePageMmu::default());
        let object = vm.file_object(file.open()).unwrap();
        let spec = vm::MapSpec {
            base: 0x10000,
            len: PAGE_SIZE as u64,
            offset: 0,
            shared: true,
            writable: true,
        };
        let map = loom::sync::Arc::new(object.map(space.clone(), spec).unwrap());
        // Dirty, with a writable translation.
        cpu_store(&space, &map, &frames, 0x11);
        let syncer = {
            let map = map.clone();
            thread::spawn(move || {
                map.sync(0x10000, PAGE_SIZE as u64).unwrap();
            })
        };
        cpu_store(&space, &map, &frames, 0x22);
        syncer.join().unwrap();
        // The last store is at the server, or its page is dirty again and goes now.
        map.sync(0x10000, PAGE_SIZE as u64).unwrap();
        assert_eq!(file.bytes(0, 1), vec![0x22]);
        if let Err(violation) = check_invariants(&vm, Some(&[])) {
            panic!("{violation}");
        }
        drop(map);
        drop(object);
        vm.run_parked_closes();
        drop(vm);
        assert_eq!(frames.stats().outstanding(), 0);
    });
}

/// Model 15's MMU: a few pages' translations under a loom lock.
#[derive(Default)]
struct SmallMmu {
    entries: loom::sync::Mutex<std::collections::BTreeMap<u64, (vm::Frame, bool)>>,
}

impl vm::AddressSpace for SmallMmu {
    fn id(&self) -> u64 {
        1
    }
    fn map(&self, addr: u64, frame: vm::Frame, writable: bool) {
        self.entries.lock().unwrap().insert(addr, (frame, writable));
    }
    fn invalidate(&self, addr: u64, len: u64) {
        self.entries
            .lock()
            .unwrap()
            .retain(|at, _| *at < addr || *at >= addr + len);
    }
}

#[test]
fn a_fault_vs_a_truncate_of_its_file() {
    model("a_fault_vs_a_truncate_of_its_file", || {
        let page = PAGE_SIZE as u64;
        let (vm, frames) = small_vm();
        let file = map_common::ServerFile::stamped(4, 2 * PAGE_SIZE);
        let space = std::sync::Arc::new(SmallMmu::default());
        let object = vm.file_object(file.open()).unwrap();
        let spec = vm::MapSpec {
            base: 0x10000,
            len: 2 * page,
            offset: 0,
            shared: true,
            writable: true,
        };
        let map = loom::sync::Arc::new(object.map(space.clone(), spec).unwrap());
        let truncater = {
            let (vm, file) = (vm.clone(), file.clone());
            thread::spawn(move || {
                file.data.lock().unwrap().truncate(PAGE_SIZE);
                vm.truncate_mapped(&file.identity, page).unwrap();
            })
        };
        let fault = map.fault(0x10000 + page, Access::Read);
        truncater.join().unwrap();
        assert!(
            matches!(fault, Ok(_) | Err(FaultError::PastEnd)),
            "{fault:?}"
        );
        // Whichever came first, nothing maps the second page now, and it is a bus error.
        assert!(!space
            .entries
            .lock()
            .unwrap()
            .contains_key(&(0x10000 + page)));
        assert_eq!(
            map.fault(0x10000 + page, Access::Read),
            Err(FaultError::PastEnd)
        );
        if let Err(violation) = check_invariants(&vm, Some(&[])) {
            panic!("{violation}");
        }
        drop(map);
        drop(object);
        vm.run_parked_closes();
        drop(vm);
        assert_eq!(frames.stats().outstanding(), 0);
    });
}

#[test]
fn a_store_vs_a_migration_of_its_page() {
    model("a_store_vs_a_migration_of_its_page", || {
        let (vm, frames) = small_vm();
        let space = std::sync::Arc::new(OnePageMmu::default());
        let spec = vm::MapSpec {
            base: 0x10000,
            len: PAGE_SIZE as u64,
            offset: 0,
            shared: false,
            writable: true,
        };
        let map = vm.map_private_anon(space.clone(), spec).unwrap();
        // A private page with a writable translation.
        cpu_store(&space, &map, &frames, 0x11);
        let old = space.entry.lock().unwrap().expect("mapped").0;
        let migrator = {
            let vm = vm.clone();
            thread::spawn(move || vm.migrate(old))
        };
        cpu_store(&space, &map, &frames, 0x22);
        let new = migrator.join().unwrap().expect("the page moves");
        assert_ne!(new, old);
        // The store is in the page's frame now, and no translation names the old one.
        let now = map.fault(0x10000, Access::Read).unwrap().frame;
        assert_eq!(now, new);
        assert_eq!(
            frames.read(now)[0],
            0x22,
            "the store was lost in the old frame"
        );
        if let Err(violation) = check_invariants(&vm, Some(&[])) {
            panic!("{violation}");
        }
        assert_eq!(vm.statistics().migrations, 1);
        drop(map);
        drop(vm);
        assert_eq!(frames.stats().outstanding(), 0);
    });
}

/// Model 18's file at the server: its bytes under a loom lock, so that loom sees the
/// write-back's write and the kernel's truncate at the server touch the same thing and
/// explores both orders of them (behind a std lock they would look independent).
#[derive(Clone)]
struct LoomServerFile {
    identity: FileIdentity,
    data: loom::sync::Arc<loom::sync::Mutex<Vec<u8>>>,
}

impl ImageFile for LoomServerFile {
    fn identity(&self) -> FileIdentity {
        self.identity
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        let data = self.data.lock().unwrap();
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }
    fn length(&self) -> Result<u64, FileError> {
        Ok(self.data.lock().unwrap().len() as u64)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, FileError> {
        let mut data = self.data.lock().unwrap();
        let end = offset as usize + buf.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(buf);
        Ok(buf.len())
    }
    fn writable(&self) -> bool {
        true
    }
    fn close(self: Box<Self>) {}
}

#[test]
fn an_unmap_writing_back_vs_a_truncate_to_zero() {
    model("an_unmap_writing_back_vs_a_truncate_to_zero", || {
        let page = PAGE_SIZE as u64;
        let (vm, frames) = small_vm();
        let file = LoomServerFile {
            identity: FileIdentity {
                dev_type: 7,
                dev: 1,
                qid_path: 5,
                version: 1,
            },
            data: loom::sync::Arc::new(loom::sync::Mutex::new(vec![0x11; PAGE_SIZE])),
        };
        let space = std::sync::Arc::new(SmallMmu::default());
        let object = vm.file_object(Box::new(file.clone())).unwrap();
        let spec = vm::MapSpec {
            base: 0x10000,
            len: page,
            offset: 0,
            shared: true,
            writable: true,
        };
        let map = object.map(space.clone(), spec).unwrap();
        // A dirty page with a writable translation: the unmap writes it back.
        let stored = map.fault(0x10000, Access::Write).unwrap();
        frames.write(stored.frame, 0, &[0x33]);
        let truncater = {
            let (vm, file) = (vm.clone(), file.clone());
            thread::spawn(move || {
                // As the kernel truncates: vm first, then the server.
                vm.truncate_mapped(&file.identity, 0).unwrap();
                file.data.lock().unwrap().truncate(0);
            })
        };
        let unmapped = map.unmap();
        truncater.join().unwrap();
        let written = unmapped.unwrap();
        assert!(written <= 1, "{written}");
        // The write-back landed before the server's truncate (which cut it), or found the
        // page gone: either way the server's file stays empty.
        assert_eq!(
            file.data.lock().unwrap().len(),
            0,
            "a page written back past the new size"
        );
        assert!(
            space.entries.lock().unwrap().is_empty(),
            "a translation left"
        );
        if let Err(violation) = check_invariants(&vm, Some(&[])) {
            panic!("{violation}");
        }
        // A page the unmap still held as the truncate dropped pages (its record already
        // gone, its table not yet released) stays cached past the end, at ref 0, until the
        // object goes; then its frame comes back (checked below).
        assert!(object.resident_pages() <= 1);
        drop(object);
        vm.run_parked_closes();
        drop(vm);
        assert_eq!(frames.stats().outstanding(), 0, "a frame leaked");
    });
}

#[test]
fn a_fault_vs_a_migration_of_the_page_it_looked_up() {
    model("a_fault_vs_a_migration_of_the_page_it_looked_up", || {
        let (vm, frames) = small_vm();
        let (parent_space, child_space) = (
            std::sync::Arc::new(OnePageMmu::default()),
            std::sync::Arc::new(OnePageMmu::default()),
        );
        let spec = vm::MapSpec {
            base: 0x10000,
            len: PAGE_SIZE as u64,
            offset: 0,
            shared: false,
            writable: true,
        };
        let parent = vm.map_private_anon(parent_space.clone(), spec).unwrap();
        cpu_store(&parent_space, &parent, &frames, 0x11);
        let old = parent_space.entry.lock().unwrap().expect("mapped").0;
        // The child shares the page copy on write; it has no translation yet.
        let child = parent.fork(child_space.clone()).unwrap();
        let migrator = {
            let vm = vm.clone();
            thread::spawn(move || vm.migrate(old))
        };
        // The child's read fault looks the page up in its table and maps its frame.
        let seen = child.fault(0x10000, Access::Read).unwrap().frame;
        let moved = migrator.join().unwrap();
        // Before any other fault: what the child's MMU holds now.
        let left = *child_space.entry.lock().unwrap();
        let now = parent.fault(0x10000, Access::Read).unwrap().frame;
        assert_eq!(Ok(now), moved, "the page moves (nothing else holds it)");
        assert!(seen == old || seen == now, "{seen:?}");
        if let Some((frame, _)) = left {
            assert_eq!(
                frame, now,
                "a translation of the old frame survived the move"
            );
        }
        assert_eq!(frames.read(now)[0], 0x11);
        if let Err(violation) = check_invariants(&vm, Some(&[])) {
            panic!("{violation}");
        }
        drop(child);
        drop(parent);
        drop(vm);
        assert_eq!(frames.stats().outstanding(), 0, "a frame leaked");
    });
}

#[test]
fn a_text_fault_vs_a_migration_of_the_idle_images_page() {
    model(
        "a_text_fault_vs_a_migration_of_the_idle_images_page",
        || {
            let (vm, frames, file, loads) = setup();
            // The program runs once and exits: its image is idle, its page cached at ref 0.
            let old = {
                let segments = vm.exec(file.open(), &loads).unwrap();
                segments[0].fault(TEXT, Access::Read).unwrap().frame
            };
            let segments = vm.exec(file.open(), &loads).unwrap();
            let migrator = {
                let vm = vm.clone();
                thread::spawn(move || vm.migrate(old))
            };
            let seen = segments[0].fault(TEXT, Access::Read).unwrap().frame;
            let moved = migrator.join().unwrap();
            let now = segments[0].fault(TEXT, Access::Read).unwrap().frame;
            match moved {
                Ok(new) => assert_eq!(new, now),
                Err(err) => {
                    assert_eq!(err.reason, vm::Unmovable::SegmentMapped);
                    assert_eq!(now, old);
                }
            }
            assert_eq!(seen, now, "the fault mapped a frame the page left");
            let identity = file.identity();
            assert!(frames
                .read(now)
                .iter()
                .enumerate()
                .all(|(offset, byte)| *byte == pattern_byte(&identity, offset as u64)));
            let live: Vec<&vm::SegmentRef> = segments.iter().collect();
            if let Err(violation) = check_invariants(&vm, Some(&live)) {
                panic!("{violation}");
            }
            drop(segments);
            finish(vm, frames, file);
        },
    );
}

#[test]
fn two_cpus_attach_one_file_and_each_drains_only_its_own_queue() {
    model(
        "two_cpus_attach_one_file_and_each_drains_only_its_own_queue",
        || {
            let (vm, frames, file, _loads) = setup();
            let cpu = |cpu: usize| {
                let (vm, file) = (vm.clone(), file.clone());
                thread::spawn(move || {
                    drop(vm.attach_on(cpu, file.open()).unwrap());
                    // This CPU's safe point: its own queue and the shared one.
                    vm.run_parked_closes_on(cpu);
                })
            };
            let (first, second) = (cpu(0), cpu(1));
            first.join().unwrap();
            second.join().unwrap();
            // No drain of all: what each CPU parked, its own drain closed.
            assert_eq!(vm.parked_closes(), 0, "a file left parked");
            let counts = file.counts();
            assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
            finish(vm, frames, file);
        },
    );
}

#[test]
fn an_attach_through_its_cpus_last_image_vs_the_last_put() {
    model(
        "an_attach_through_its_cpus_last_image_vs_the_last_put",
        || {
            let (vm, frames, file, _loads) = setup();
            // CPU 0's slot now holds the image.
            let first = vm.attach_on(0, file.open()).unwrap();
            let attacher = {
                let (vm, file) = (vm.clone(), file.clone());
                thread::spawn(move || vm.attach_on(0, file.open()).unwrap())
            };
            drop(first);
            let second = attacher.join().unwrap();
            // Whichever way it went, the image held is the table's one image, active, with its
            // channel.
            let status = vm
                .image_status(&file.identity())
                .expect("the held image is linked");
            assert!(status.has_channel && !status.idle && status.refs == 1);
            let report = check_invariants(&vm, None).unwrap();
            assert_eq!((report.images, report.open_channels), (1, 1));
            drop(second);
            vm.run_parked_closes();
            finish(vm, frames, file);
        },
    );
}
