//! Concurrent execs of one file from ramfs: every page of the file is read from the server
//! once, however many processes fault it at the same moment.

mod common;

use std::collections::BTreeSet;

use common::*;
use hosted::vm::{elf, PAGE_SIZE};
use hosted::ForkFlags;

/// The file offsets of the pages `program_pages` lists.
fn file_pages(binary: &[u8]) -> BTreeSet<u64> {
    let page = PAGE_SIZE as u64;
    let mut offsets = BTreeSet::new();
    for load in elf::load_segments(binary).unwrap() {
        if load.file_len == 0 {
            continue;
        }
        let lead = load.vaddr % page;
        let first = load.file_offset - lead;
        let end = load.file_offset + load.file_len;
        let mut offset = first;
        while offset < end {
            offsets.insert(offset);
            offset += page;
        }
    }
    offsets
}

#[test]
fn four_concurrent_execs_read_each_page_once() {
    let binary = static_binary();
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let mount = server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/prog", binary);
    let pids: Vec<_> = (0..4)
        .map(|_| {
            let pid = kernel.fork(init, ForkFlags::default()).unwrap();
            kernel.exec(pid, "/n/ram/prog", &["prog"]).unwrap();
            pid
        })
        .collect();
    let pages = program_pages(binary);
    let treads = mount.mount.stats().treads();
    std::thread::scope(|scope| {
        for (n, pid) in pids.iter().enumerate() {
            let (kernel, pages) = (&kernel, &pages);
            scope.spawn(move || {
                // Each from another place, so that they run into each other's loads.
                let start = n * pages.len() / 4;
                let mut got = vec![0u8; PAGE_SIZE];
                for page in pages[start..].iter().chain(&pages[..start]) {
                    kernel.read_memory(*pid, page.addr, &mut got).unwrap();
                    assert!(got == page.bytes, "page at {:#x} is wrong", page.addr);
                }
            });
        }
    });
    let distinct = file_pages(binary).len() as u64;
    let stats = kernel.statistics();
    assert_eq!(
        stats.vm.page_loads, distinct,
        "{} page loads for {distinct} file pages ({} waits)",
        stats.vm.page_loads, stats.vm.page_load_waits
    );
    // At most one Tread more for a page that ends the file short (the read at its end).
    let sent = mount.mount.stats().treads() - treads;
    assert!(sent <= distinct + 1, "{sent} Treads for {distinct} pages");
    for pid in pids {
        kernel.exit(pid, "").unwrap();
    }
    check(&kernel);
}
