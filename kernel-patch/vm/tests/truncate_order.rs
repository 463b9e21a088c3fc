//! The kernel tells vm of a truncate before the server truncates (so that no write-back
//! lands at the server past the new size, loom model 17): a page read from the server in
//! between holds the old bytes past the new size, and must read as zeros there.

mod map_common;

use map_common::{mmu, stamp, ServerFile, PAGE};
use vm::check::check_invariants;
use vm::testkit::HeapFrames;
use vm::{Access, Config, MapSpec, SpaceRef, Vm, PAGE_SIZE};

#[test]
fn a_page_read_between_vm_and_the_server_truncating_reads_zeros_past_the_size() {
    let frames = HeapFrames::new(32);
    let vm = Vm::new(
        frames.allocator(),
        Config {
            max_pages: 16,
            ..Config::default()
        },
    )
    .expect("vm");
    let file = ServerFile::stamped(9, 2 * PAGE_SIZE);
    let space = mmu(1);
    let object = vm.file_object(file.open()).unwrap();
    let map = object
        .map(
            space.clone() as SpaceRef,
            MapSpec {
                base: 0x10000,
                len: 2 * PAGE,
                offset: 0,
                shared: true,
                writable: true,
            },
        )
        .unwrap();
    let size = PAGE + 100;
    vm.truncate_mapped(&file.identity, size).unwrap();
    // The server still has both whole pages: the fault reads the old bytes.
    let last = map.fault(0x10000 + PAGE, Access::Read).unwrap();
    let bytes = frames.read(last.frame);
    assert!(bytes[..100].iter().all(|&byte| byte == stamp(1, 0)));
    assert!(
        bytes[100..].iter().all(|&byte| byte == 0),
        "the old bytes past the new size show"
    );
    file.data.lock().unwrap().truncate(size as usize);
    assert_eq!(
        map.fault(0x10000 + 2 * PAGE - 1, Access::Read)
            .map(|m| m.frame),
        Ok(last.frame)
    );
    check_invariants(&vm, Some(&[])).expect("invariants");
    drop((map, object));
}
