//! loom models of file mappings (`mapping/`): frames going back, held faults, write-back,
//! truncate and migration against faults and stores (models 12 to 15 and 17 to 19 of
//! `loom.rs`).

use loom::thread;
use vm::check::check_invariants;
use vm::testkit::HeapFrames;
use vm::{Access, Config, FaultError, FileError, FileIdentity, ImageFile, Vm, PAGE_SIZE};

use super::{cpu_store, map_common, model, small_vm, small_vm_of, OnePageMmu};

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
