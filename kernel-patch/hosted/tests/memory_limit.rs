//! A small memory limit: a second program's pages come from reclaiming the first one's
//! idle cached pages, and both read right.

mod common;

use common::*;
use hosted::vm::PAGE_SIZE;
use hosted::{ForkFlags, Kernel, KernelConfig};

#[test]
fn reclaim_makes_room_for_the_next_program() {
    let binary = static_binary();
    let kernel = Kernel::new(KernelConfig {
        memory_frames: 96,
        ..KernelConfig::default()
    })
    .unwrap();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/a", binary);
    copy_in(&kernel, init, "/n/ram/b", binary);
    let text: Vec<_> = program_pages(binary)
        .into_iter()
        .filter(|page| !page.writable)
        .take(60)
        .collect();

    for (path, expect_reclaim) in [("/n/ram/a", false), ("/n/ram/b", true)] {
        let pid = kernel.fork(init, ForkFlags::default()).unwrap();
        kernel.exec(pid, path, &["prog"]).unwrap();
        for page in &text {
            let mut got = vec![0u8; PAGE_SIZE];
            kernel.read_memory(pid, page.addr, &mut got).unwrap();
            assert!(got == page.bytes, "{path}: page at {:#x}", page.addr);
        }
        kernel.exit(pid, "").unwrap();
        let stats = kernel.statistics();
        assert_eq!(
            stats.vm.reclaimed_pages > 0,
            expect_reclaim,
            "{path}: {stats}"
        );
        assert!(stats.frames.peak <= 96);
        check(&kernel);
    }
}
