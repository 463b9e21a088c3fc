//! loom models of the image cache and its table: attach, put, reclaim, putseg, the
//! image's page loads, the sharded table, the park queues and the per-CPU last images
//! (models 1 to 3, 8 to 11, 16 and 26 to 28 of `loom.rs`).

use loom::thread;
use vm::check::check_invariants;
use vm::testkit::{pattern_byte, FakeFile, HeapFrames};
use vm::{Access, FaultError, FileError, FileIdentity, ImageFile, Vm, PAGE_SIZE};

use super::{exec_and_read, finish, model, setup, small_vm_of, TEXT};

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
        const { assert!(Vm::TABLE_SHARDS >= 2) };
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
