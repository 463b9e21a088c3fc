//! vm's zero page in a real exec through `ramfs --stdio`: a program's bss read before it
//! is written maps the zero frame read only and allocates no host frame; the first write
//! gets a private page and the MMU entry changes; fork shares the mapping; a gibibyte of
//! untouched stack reads with no host frame; a refused first write is an error. The
//! kernel's checker (every MMU entry against its segment, none mapping the zero frame
//! writable) runs after each step.

mod common;

use common::*;
use hosted::vm::{Access, FaultError, SegmentKind, PAGE_SIZE};
use hosted::SegmentInfo;
use hosted::{ForkFlags, Kernel, KernelConfig, KernelError, Pid};

const PROGRAM: &str = "/n/ram/prog";
const PAGE: u64 = PAGE_SIZE as u64;

/// A kernel with the test program on a mounted ramfs, and a process running it.
fn running(config: KernelConfig) -> (Kernel, Server, Pid, Vec<SegmentInfo>) {
    let kernel = Kernel::new(config).expect("kernel");
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, PROGRAM, static_binary());
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    let info = kernel.exec(pid, PROGRAM, &["prog"]).unwrap();
    check(&kernel);
    (kernel, server, pid, info.segments)
}

fn segment(segments: &[SegmentInfo], kind: SegmentKind) -> SegmentInfo {
    segments
        .iter()
        .find(|seg| seg.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} segment"))
        .clone()
}

/// Host frames handed out so far.
fn host_frames(kernel: &Kernel) -> u64 {
    kernel.frames().stats().allocated
}

#[test]
fn a_programs_bss_read_before_it_is_written_maps_the_zero_frame() {
    let (kernel, _server, pid, segments) = running(KernelConfig::default());
    let zero = kernel.vm().zero_frame();
    let bss = segment(&segments, SegmentKind::Bss);
    assert!(bss.writable);
    let before = host_frames(&kernel);
    let read = kernel.touch(pid, bss.base, Access::Read).unwrap();
    assert_eq!((read.frame, read.writable), (zero, false));
    // Every page of the program's 64 KiB of zeros.
    let mut bytes = vec![0xffu8; (bss.end - bss.base) as usize];
    kernel.read_memory(pid, bss.base, &mut bytes).unwrap();
    assert!(bytes.iter().all(|&byte| byte == 0));
    for addr in (bss.base..bss.end).step_by(PAGE_SIZE) {
        assert_eq!(kernel.resident(pid, addr).unwrap(), Some(zero));
    }
    assert_eq!(host_frames(&kernel), before, "no host frame for reads");
    check(&kernel);

    // The first write: a private page in the zero page's place, in the MMU too.
    kernel.write_memory(pid, bss.base + 8, b"written").unwrap();
    assert_eq!(host_frames(&kernel), before + 1, "one host frame");
    let write = kernel.touch(pid, bss.base, Access::Write).unwrap();
    assert_ne!(write.frame, zero);
    assert!(write.writable);
    assert_eq!(kernel.resident(pid, bss.base).unwrap(), Some(write.frame));
    let mut page = vec![0xffu8; PAGE_SIZE];
    kernel.read_memory(pid, bss.base, &mut page).unwrap();
    assert_eq!(&page[8..15], b"written");
    assert!(page[..8].iter().chain(&page[15..]).all(|&byte| byte == 0));
    // The rest still reads the zero page, whose bytes the write did not reach.
    assert_eq!(kernel.resident(pid, bss.base + PAGE).unwrap(), Some(zero));
    kernel.vm().frames().with_frame(zero, &mut |bytes| {
        assert!(bytes.iter().all(|&byte| byte == 0));
    });
    let stats = kernel.statistics().vm;
    assert_eq!(stats.zero_page_breaks, 1);
    assert_eq!(stats.zero_page_entries, (bss.end - bss.base) / PAGE - 1);
    check(&kernel);
}

#[test]
fn fork_shares_the_zero_page_mapping() {
    let (kernel, _server, parent, segments) = running(KernelConfig::default());
    let zero = kernel.vm().zero_frame();
    let bss = segment(&segments, SegmentKind::Bss);
    let mut bytes = [0xffu8; 16];
    kernel.read_memory(parent, bss.base, &mut bytes).unwrap();
    let before = host_frames(&kernel);
    let child = kernel.fork(parent, ForkFlags::default()).unwrap();
    assert_eq!(kernel.resident(child, bss.base).unwrap(), Some(zero));
    let read = kernel.touch(child, bss.base, Access::Read).unwrap();
    assert_eq!((read.frame, read.writable), (zero, false));
    assert_eq!(host_frames(&kernel), before, "fork and the child's read");
    check(&kernel);
    kernel.write_memory(child, bss.base, b"child").unwrap();
    assert_ne!(kernel.resident(child, bss.base).unwrap(), Some(zero));
    assert_eq!(kernel.resident(parent, bss.base).unwrap(), Some(zero));
    kernel.read_memory(parent, bss.base, &mut bytes).unwrap();
    assert_eq!(bytes, [0; 16], "the parent still reads zeros");
    check(&kernel);
}

#[test]
fn reading_a_gibibyte_of_untouched_stack_allocates_no_host_frame() {
    const GIB: u64 = 1 << 30;
    let (kernel, _server, pid, segments) = running(KernelConfig {
        stack_size: GIB,
        ..KernelConfig::default()
    });
    let stack = segment(&segments, SegmentKind::Stack);
    assert_eq!(stack.end - stack.base, GIB);
    let zero = kernel.vm().zero_frame();
    let before = host_frames(&kernel);
    let maps_before = kernel.statistics().vm.zero_page_maps;
    // Exec wrote the arguments at the top; everything below them is untouched.
    let written = (stack.base..stack.end)
        .step_by(PAGE_SIZE)
        .filter(|&addr| kernel.resident(pid, addr).unwrap().is_some())
        .count() as u64;
    assert!((1..=4).contains(&written), "{written} pages of arguments");
    let mut chunk = vec![0xffu8; 4 << 20];
    for at in (stack.base..stack.end).step_by(chunk.len()) {
        kernel.read_memory(pid, at, &mut chunk).unwrap();
        if at + (chunk.len() as u64) < stack.end - written * PAGE {
            // Page by page, so that the comparison is a `memcmp` even unoptimised.
            let zeros = [0u8; PAGE_SIZE];
            assert!(
                chunk.chunks_exact(PAGE_SIZE).all(|page| page == zeros),
                "zeros at {at:#x}"
            );
        }
    }
    assert_eq!(host_frames(&kernel), before, "no host frame for a gibibyte");
    let stats = kernel.statistics().vm;
    assert_eq!(stats.zero_page_maps - maps_before, GIB / PAGE - written);
    assert_eq!(
        kernel.resident(pid, stack.base).unwrap(),
        Some(zero),
        "the lowest page"
    );
    check(&kernel);
    kernel.exit(pid, "").unwrap();
    assert_eq!(
        kernel.statistics().vm.zero_page_entries,
        0,
        "the stack's entries went with it"
    );
    check(&kernel);
}

#[test]
fn a_refused_first_write_is_an_error_and_the_zero_page_stays() {
    let (kernel, _server, pid, segments) = running(KernelConfig::default());
    let zero = kernel.vm().zero_frame();
    let bss = segment(&segments, SegmentKind::Bss);
    let mut bytes = [0xffu8; 8];
    kernel.read_memory(pid, bss.base, &mut bytes).unwrap();
    // The write's page allocation is the next one vm asks for.
    kernel.frames().fail_nth_allocation(0);
    assert_eq!(
        kernel.write_memory(pid, bss.base, b"x"),
        Err(KernelError::Fault {
            addr: bss.base,
            error: FaultError::NoMemory
        })
    );
    assert!(!kernel.frames().failure_pending(), "the knob fired");
    kernel.frames().never_fail();
    assert_eq!(kernel.resident(pid, bss.base).unwrap(), Some(zero));
    kernel.read_memory(pid, bss.base, &mut bytes).unwrap();
    assert_eq!(bytes, [0; 8]);
    check(&kernel);
    kernel.write_memory(pid, bss.base, b"x").unwrap();
    assert_ne!(kernel.resident(pid, bss.base).unwrap(), Some(zero));
    check(&kernel);
}
