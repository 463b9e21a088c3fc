//! The zero page's rules (`zero.rs`): its frame holds zeros and is no page's of the pool
//! (so it is never on the free list nor in a chain, and never handed out to be written);
//! a segment maps it only at a page without file bytes; the count of entries mapping it is
//! the number the segments hold. That no mapping of it is writable is the kernel's rule
//! to check (vm returns it read only, and hosted's checker looks at every MMU entry).
//!
//! Lock order: as the checker's; `check_frame` takes only the frame allocator's borrow.

use super::Violation;
use crate::frame::PAGE_BYTES;
use crate::page::PageIndex;
use crate::segment::{Backing, Segment};
use crate::vm::Vm;

/// The frame holds zeros and no page of the pool has it.
pub(super) fn check_frame(vm: &Vm) -> Result<(), Violation> {
    let shared = &*vm.shared;
    let pool = &shared.pool;
    let zero = shared.zero.frame();
    for index in 0..pool.capacity() {
        let page = PageIndex(index);
        if pool.view(page).bound && pool.frame(page) == zero {
            return Err(Violation::ZeroFrameInPool { page: index });
        }
    }
    let mut written = None;
    shared.frames.with_frame(zero, &mut |bytes| {
        written = bytes.iter().position(|&byte| byte != 0);
    });
    match written {
        Some(offset) => Err(Violation::ZeroFrameWritten { offset }),
        None => Ok(()),
    }
}

/// `seg` maps the zero page at its page `number`: only right where no file byte is.
pub(super) fn check_entry(seg: &Segment, number: u64) -> Option<Violation> {
    match seg.geometry.backing(number) {
        Backing::Zero => None,
        Backing::File { .. } => Some(Violation::ZeroPageOverFile {
            addr: seg.geometry.base + number * PAGE_BYTES,
        }),
    }
}

/// The segments (all of them) hold `counted` entries of the zero page.
pub(super) fn check_entry_count(vm: &Vm, counted: u64) -> Result<(), Violation> {
    let (recorded, _, _) = vm.shared.zero.counts();
    if counted != recorded {
        return Err(Violation::ZeroEntryMismatch { counted, recorded });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Each rule broken by hand, and the checker naming it.

    use super::super::check_invariants;
    use super::*;
    use crate::segment::{Entry, SegmentRef};
    use crate::testkit::{FakeFile, HeapFrames};
    use crate::{
        Access, AllocError, AllocSite, Config, FileIdentity, Frame, FrameAllocator, LoadSegment,
        SegmentKind, PAGE_SIZE,
    };
    use alloc::boxed::Box;

    const BSS: u64 = 0x100_0000;

    fn vm_of(frames: Box<dyn FrameAllocator>) -> Vm {
        Vm::new(
            frames,
            Config {
                max_pages: 16,
                ..Config::default()
            },
        )
        .unwrap()
    }

    /// A bss of two pages whose first page a read mapped to the zero page.
    fn read_bss(vm: &Vm) -> SegmentRef {
        let bss = vm
            .zero_segment(SegmentKind::Bss, BSS, 2 * PAGE_BYTES)
            .unwrap();
        let mapping = bss.fault(BSS, Access::Read).unwrap();
        assert_eq!(mapping.frame, vm.zero_frame());
        bss
    }

    #[test]
    fn a_mapped_zero_page_passes() {
        let frames = HeapFrames::new(16);
        let vm = vm_of(frames.allocator());
        let bss = read_bss(&vm);
        check_invariants(&vm, Some(&[&bss])).unwrap();
    }

    #[test]
    fn catches_a_written_zero_frame() {
        let frames = HeapFrames::new(16);
        let vm = vm_of(frames.allocator());
        let _bss = read_bss(&vm);
        frames.write(vm.zero_frame(), 100, &[1]);
        assert_eq!(
            check_invariants(&vm, None),
            Err(Violation::ZeroFrameWritten { offset: 100 })
        );
    }

    /// A kernel whose zero frame is also one it hands out: frame 0, its first.
    struct Colliding(HeapFrames);

    impl FrameAllocator for Colliding {
        fn allocate(&self) -> Result<Frame, AllocError> {
            self.0.allocate()
        }
        fn free(&self, frame: Frame) {
            self.0.free(frame);
        }
        fn with_frame_mut(&self, frame: Frame, f: &mut dyn FnMut(&mut [u8; PAGE_SIZE])) {
            self.0.with_frame_mut(frame, f);
        }
        fn with_frame(&self, frame: Frame, f: &mut dyn FnMut(&[u8; PAGE_SIZE])) {
            self.0.with_frame(frame, f);
        }
        fn admit_allocation(&self, site: AllocSite) -> Result<(), AllocError> {
            self.0.admit_allocation(site)
        }
        fn zero_frame(&self) -> Option<Frame> {
            Some(Frame(0))
        }
    }

    #[test]
    fn catches_the_zero_frame_in_the_pool() {
        let vm = vm_of(Box::new(Colliding(HeapFrames::new(16))));
        let bss = vm.zero_segment(SegmentKind::Bss, BSS, PAGE_BYTES).unwrap();
        // A write allocates (and zeroes) the pool's first page, on frame 0.
        let mapping = bss.fault(BSS, Access::Write).unwrap();
        assert_eq!(mapping.frame, vm.zero_frame());
        assert!(matches!(
            check_invariants(&vm, None),
            Err(Violation::ZeroFrameInPool { .. })
        ));
    }

    #[test]
    fn catches_the_zero_page_over_file_bytes() {
        let frames = HeapFrames::new(16);
        let vm = vm_of(frames.allocator());
        let identity = FileIdentity {
            dev_type: 1,
            dev: 1,
            qid_path: 1,
            version: 0,
        };
        let file = FakeFile::patterned(identity, 2 * PAGE_SIZE);
        let loads = [LoadSegment {
            vaddr: 0x40_0000,
            mem_len: 2 * PAGE_BYTES,
            file_offset: 0,
            file_len: 2 * PAGE_BYTES,
            writable: true,
        }];
        let segments = vm.exec(file.open(), &loads).unwrap();
        let data = &segments[0];
        assert_eq!(data.kind(), SegmentKind::Data);
        {
            let mut table = data.seg.table.lock();
            table.ensure(1, &vm.shared).unwrap();
            table.set(1, Entry::Zero);
        }
        vm.shared.zero.entries_copied(1);
        assert_eq!(
            check_invariants(&vm, Some(&[data])),
            Err(Violation::ZeroPageOverFile {
                addr: 0x40_0000 + PAGE_BYTES
            })
        );
    }

    #[test]
    fn catches_an_entry_count_that_drifted() {
        let frames = HeapFrames::new(16);
        let vm = vm_of(frames.allocator());
        let bss = read_bss(&vm);
        vm.shared.zero.entries_copied(1);
        assert_eq!(
            check_invariants(&vm, Some(&[&bss])),
            Err(Violation::ZeroEntryMismatch {
                counted: 1,
                recorded: 2
            })
        );
        assert!(
            check_invariants(&vm, None).is_ok(),
            "counted only with every segment"
        );
        vm.shared.zero.entries_released(1);
    }
}
