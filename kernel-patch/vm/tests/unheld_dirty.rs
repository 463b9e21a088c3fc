//! The channel rule: a mapped file whose write-back failed keeps its dirty pages and its
//! channel with nobody holding it, until `Vm::write_back_dirty` writes them; a reopen in
//! between finds them; only a dead channel (`FileError::Gone`) drops them, counted.

mod map_common;

use map_common::{check, load, mmu, spec, stamp, store, world, ServerFile, PAGE};
use vm::{FileError, SpaceRef, VmError, PAGE_SIZE};

#[test]
fn a_failed_write_back_at_unmap_keeps_the_pages_until_write_back_dirty_succeeds() {
    let world = world();
    let file = ServerFile::stamped(1, 3 * PAGE_SIZE);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let map = object
        .map(space.clone() as SpaceRef, spec(0x10000, 3, 0, true))
        .unwrap();
    store(&world, &map, 0x10000, stamp(0, 1)).unwrap();
    store(&world, &map, 0x10000 + 2 * PAGE, stamp(2, 1)).unwrap();
    drop(object);
    *file.fail_writes.lock().unwrap() = true;
    assert_eq!(map.unmap(), Err(VmError::Io(FileError::Io)));
    // Nobody holds the object, and it keeps its pages and its channel; the unmap tried
    // once (its first page refused, the rest left for later).
    let stats = world.vm.statistics();
    assert_eq!(
        (stats.mappings, stats.dirty_pages, stats.dirty_pages_dropped),
        (0, 2, 0)
    );
    assert_eq!(stats.writeback_errors, 1, "the unmap's drop wrote again");
    check(&world, &[&space]);
    // Still refused: they stay for the next try.
    assert_eq!(world.vm.write_back_dirty(), Err(VmError::Io(FileError::Io)));
    assert_eq!(world.vm.statistics().dirty_pages, 2);
    check(&world, &[&space]);
    *file.fail_writes.lock().unwrap() = false;
    assert_eq!(world.vm.write_back_dirty(), Ok(2));
    assert_eq!(file.bytes(0, 8), vec![stamp(0, 1); 8]);
    assert_eq!(file.bytes(2 * PAGE, 8), vec![stamp(2, 1); 8]);
    assert_eq!(file.bytes(PAGE, 1), vec![stamp(1, 0)]);
    let stats = world.vm.statistics();
    assert_eq!((stats.dirty_pages, stats.dirty_pages_dropped), (0, 0));
    check(&world, &[&space]);
    // The clean object went: a reopen makes a new one, with nothing resident.
    let again = world.vm.file_object(file.open()).unwrap();
    assert_eq!(again.resident_pages(), 0);
    assert_eq!(world.vm.write_back_dirty(), Ok(0));
}

#[test]
fn a_reopen_before_the_write_back_finds_the_dirty_pages() {
    let world = world();
    let file = ServerFile::stamped(2, 2 * PAGE_SIZE);
    let space = mmu(1);
    let map = world
        .vm
        .file_object(file.open())
        .unwrap()
        .map(space.clone() as SpaceRef, spec(0x10000, 2, 0, true))
        .unwrap();
    store(&world, &map, 0x10000 + PAGE, stamp(1, 1)).unwrap();
    *file.fail_writes.lock().unwrap() = true;
    assert!(map.unmap().is_err());
    *file.fail_writes.lock().unwrap() = false;
    let object = world.vm.file_object(file.open()).unwrap();
    assert_eq!(object.dirty_pages(), 1);
    let map = object
        .map(space.clone() as SpaceRef, spec(0x40000, 2, 0, true))
        .unwrap();
    assert_eq!(load(&world, &map, 0x40000 + PAGE).unwrap(), stamp(1, 1));
    check(&world, &[&space]);
    // Held again: write_back_dirty leaves it to its mapping, whose unmap writes it.
    assert_eq!(world.vm.write_back_dirty(), Ok(0));
    assert_eq!(map.unmap(), Ok(1));
    assert_eq!(file.bytes(PAGE, 8), vec![stamp(1, 1); 8]);
    check(&world, &[&space]);
}

#[test]
fn a_dead_channel_drops_the_dirty_pages_and_counts_them() {
    let world = world();
    let file = ServerFile::stamped(3, 2 * PAGE_SIZE);
    let space = mmu(1);
    let map = world
        .vm
        .file_object(file.open())
        .unwrap()
        .map(space.clone() as SpaceRef, spec(0x10000, 2, 0, true))
        .unwrap();
    store(&world, &map, 0x10000, stamp(0, 1)).unwrap();
    store(&world, &map, 0x10000 + PAGE, stamp(1, 1)).unwrap();
    *file.fail_writes.lock().unwrap() = true;
    assert!(map.unmap().is_err());
    check(&world, &[&space]);
    *file.writes_gone.lock().unwrap() = true;
    assert_eq!(world.vm.write_back_dirty(), Ok(0));
    let stats = world.vm.statistics();
    assert_eq!((stats.dirty_pages, stats.dirty_pages_dropped), (0, 2));
    check(&world, &[&space]);
    let again = world.vm.file_object(file.open()).unwrap();
    assert_eq!(again.resident_pages(), 0, "the object went with its pages");
}

/// A file opened for reading only: its writes are refused (`ImageFile`'s defaults).
struct ReadOnly(ServerFile);

impl vm::ImageFile for ReadOnly {
    fn identity(&self) -> vm::FileIdentity {
        self.0.identity
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        vm::ImageFile::read_at(&self.0, offset, buf)
    }
    fn length(&self) -> Result<u64, FileError> {
        vm::ImageFile::length(&self.0)
    }
    fn close(self: Box<Self>) {}
}

#[test]
fn an_object_made_through_a_read_only_open_takes_the_channel_of_a_writable_one() {
    let world = world();
    let file = ServerFile::stamped(4, 2 * PAGE_SIZE);
    let space = mmu(1);
    let reader = world
        .vm
        .file_object(Box::new(ReadOnly(file.clone())))
        .unwrap();
    let map = reader
        .map(space.clone() as SpaceRef, spec(0x10000, 2, 0, true))
        .unwrap();
    store(&world, &map, 0x10000, stamp(0, 1)).unwrap();
    // Its channel cannot write: the page stays dirty (and the object with it).
    assert_eq!(
        map.sync(0x10000, 2 * PAGE),
        Err(VmError::Io(FileError::NotWritable))
    );
    // A writable open of the same file: the same object, which now writes through it.
    let writer = world.vm.file_object(file.open()).unwrap();
    assert_eq!(writer.dirty_pages(), 1, "the same object");
    let shared = writer
        .map(space.clone() as SpaceRef, spec(0x40000, 2, 0, true))
        .unwrap();
    store(&world, &shared, 0x40000 + PAGE, stamp(1, 1)).unwrap();
    assert_eq!(shared.unmap(), Ok(2));
    assert_eq!(file.bytes(0, 8), vec![stamp(0, 1); 8]);
    assert_eq!(file.bytes(PAGE, 8), vec![stamp(1, 1); 8]);
    // A read-only open after it leaves the writable channel in place.
    let again = world
        .vm
        .file_object(Box::new(ReadOnly(file.clone())))
        .unwrap();
    store(&world, &map, 0x10000, stamp(0, 2)).unwrap();
    assert_eq!(map.unmap(), Ok(1));
    assert_eq!(file.bytes(0, 8), vec![stamp(0, 2); 8]);
    check(&world, &[&space]);
    drop((reader, writer, again));
    check(&world, &[&space]);
}
