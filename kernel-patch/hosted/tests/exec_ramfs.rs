//! exec through a real `ramfs --stdio`: pages equal the file, the image is shared and
//! cached, and the server exits when the program and the mount are gone.

mod common;

use common::*;
use hosted::mnt::ninep::mtype;
use hosted::vm::{Access, SegmentKind, PAGE_SIZE};
use hosted::{ForkFlags, KernelError};

const PROGRAM: &str = "/n/ram/prog";

#[test]
fn pages_equal_the_file_and_argv_is_on_the_stack() {
    let binary = static_binary();
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, PROGRAM, binary);
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    let info = kernel.exec(pid, PROGRAM, &["prog", "-v"]).unwrap();
    let kinds: Vec<SegmentKind> = info.segments.iter().map(|seg| seg.kind).collect();
    for kind in [
        SegmentKind::Text,
        SegmentKind::Data,
        SegmentKind::Bss,
        SegmentKind::Stack,
    ] {
        assert!(kinds.contains(&kind), "no {kind:?} segment in {kinds:?}");
    }

    for page in program_pages(binary) {
        let mut got = vec![0u8; PAGE_SIZE];
        kernel.read_memory(pid, page.addr, &mut got).unwrap();
        assert!(
            got == page.bytes,
            "page at {:#x} differs from the file",
            page.addr
        );
    }
    // bss reads as zeros; text refuses writes; data takes them privately.
    let bss = info
        .segments
        .iter()
        .find(|seg| seg.kind == SegmentKind::Bss)
        .unwrap();
    let mut zeros = vec![0xffu8; 64];
    kernel.read_memory(pid, bss.base, &mut zeros).unwrap();
    assert!(zeros.iter().all(|&b| b == 0));
    let text = info
        .segments
        .iter()
        .find(|seg| seg.kind == SegmentKind::Text)
        .unwrap();
    assert!(matches!(
        kernel.write_memory(pid, text.base, b"x"),
        Err(KernelError::ReadOnly(_))
    ));
    let data = info
        .segments
        .iter()
        .find(|seg| seg.kind == SegmentKind::Data)
        .unwrap();
    kernel.write_memory(pid, data.base, b"private").unwrap();

    // argc, argv[0], argv[1] as the stack pointer says.
    let mut words = [0u8; 24];
    kernel
        .read_memory(pid, info.stack_pointer, &mut words)
        .unwrap();
    let word = |i: usize| u64::from_le_bytes(words[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!(word(0), 2);
    let mut arg = [0u8; 3];
    kernel.read_memory(pid, word(2), &mut arg).unwrap();
    assert_eq!(&arg, b"-v\0");

    // A second process of the same file sees the file's bytes, not the first one's write.
    let other = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(other, PROGRAM, &["prog"]).unwrap();
    let first_data = program_pages(binary)
        .into_iter()
        .find(|p| p.writable)
        .unwrap();
    let mut got = vec![0u8; PAGE_SIZE];
    kernel
        .read_memory(other, first_data.addr, &mut got)
        .unwrap();
    assert!(
        got == first_data.bytes,
        "another process saw a private write"
    );
    check(&kernel);

    kernel.exit(pid, "").unwrap();
    kernel.exit(other, "").unwrap();
    check(&kernel);
}

#[test]
fn a_warm_exec_reads_no_text_page_and_shares_the_image() {
    let binary = static_binary();
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, PROGRAM, binary);
    let text_pages: Vec<u64> = program_pages(binary)
        .iter()
        .filter(|page| !page.writable)
        .map(|page| page.addr)
        .collect();

    let first = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(first, PROGRAM, &["prog"]).unwrap();
    for addr in &text_pages {
        kernel.touch(first, *addr, Access::Read).unwrap();
    }
    let cold = kernel.statistics();
    assert!(cold.image_reads >= text_pages.len() as u64);

    // A second process while the first runs: same text segment, same frames, no reads.
    let mark = server.wire.mark();
    let second = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(second, PROGRAM, &["prog"]).unwrap();
    for addr in &text_pages {
        let frame = kernel.touch(second, *addr, Access::Read).unwrap().frame;
        assert_eq!(Some(frame), kernel.resident(first, *addr).unwrap());
        assert!(kernel.same_segment(first, second, *addr).unwrap());
    }
    // And after both exit, a third exec of the idle image: still no page read.
    kernel.exit(first, "").unwrap();
    kernel.exit(second, "").unwrap();
    let third = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(third, PROGRAM, &["prog"]).unwrap();
    for addr in &text_pages {
        kernel.touch(third, *addr, Access::Read).unwrap();
    }
    let warm = kernel.statistics();
    assert_eq!(
        warm.image_reads, cold.image_reads,
        "a cached text page was read again"
    );
    let page_reads = server
        .wire
        .events_since(mark)
        .into_iter()
        .filter(|event| event.mtype == mtype::TREAD && event.count == Some(PAGE_SIZE as u32))
        .count();
    assert_eq!(
        page_reads, 0,
        "page-sized Treads on the wire for cached text"
    );
    assert_eq!(warm.vm.attach_misses, 1);
    assert_eq!(warm.vm.attach_hits, 2);
    kernel.exit(third, "").unwrap();
    check(&kernel);
}

#[test]
fn ramfs_exits_when_the_program_and_the_mount_are_gone_and_the_image_stays() {
    let binary = static_binary();
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, PROGRAM, binary);
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(pid, PROGRAM, &["prog"]).unwrap();
    let text = program_pages(binary)
        .into_iter()
        .find(|p| !p.writable)
        .unwrap();
    kernel.touch(pid, text.addr, Access::Read).unwrap();

    // Unmounted while the program runs: the image's channel keeps the server.
    kernel.unmount(init, "/n/ram").unwrap();
    assert!(kernel.wait_closes(DEADLINE));
    assert!(
        server.running(),
        "ramfs left while a program still ran from it"
    );
    // The running program still faults pages in through its image.
    for page in program_pages(binary) {
        let mut got = vec![0u8; PAGE_SIZE];
        kernel.read_memory(pid, page.addr, &mut got).unwrap();
        assert!(got == page.bytes);
    }
    kernel.exit(pid, "").unwrap();
    assert!(server.exits_cleanly(DEADLINE), "ramfs did not exit 0");
    let report = check(&kernel);
    assert_eq!(report.vm.open_channels, 0);
    assert_eq!(report.live_channels, 0);
    // The mount's last channel went with the image's: its image was forgotten.
    let stats = kernel.statistics();
    assert!(
        stats.vm.images_idle == 0 && stats.vm.idle_pages == 0,
        "{stats}"
    );
}

#[test]
fn exec_works_over_9p2000_l_too() {
    use hosted::mnt::ninep::Dialect;
    use hosted::{MountFlags, MountSpec};
    let binary = static_binary();
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    let mut spec = MountSpec::default();
    spec.options.dialect = Dialect::L;
    let info = kernel
        .mount_with(
            init,
            server.transport(),
            "/n/ram",
            MountFlags::REPLACE,
            &spec,
        )
        .unwrap();
    assert_eq!(info.mount.dialect(), Dialect::L);
    copy_in(&kernel, init, PROGRAM, binary);
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(pid, PROGRAM, &["prog"]).unwrap();
    for page in program_pages(binary) {
        let mut got = vec![0u8; PAGE_SIZE];
        kernel.read_memory(pid, page.addr, &mut got).unwrap();
        assert!(
            got == page.bytes,
            "page at {:#x} differs from the file",
            page.addr
        );
    }
    kernel.exit(pid, "").unwrap();
    kernel.unmount(init, "/n/ram").unwrap();
    assert!(
        server.exits_cleanly(DEADLINE),
        "ramfs (9P2000.L) did not exit 0"
    );
    assert_eq!(check(&kernel).live_channels, 0);
}

#[test]
fn exec_stats_its_file_once() {
    let binary = static_binary();
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, PROGRAM, binary);
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    let mark = server.wire.mark();
    kernel.exec(pid, PROGRAM, &["prog"]).unwrap();
    // One stat gives both the version the image is keyed by and the length vm checks the
    // layout against: one reply, one moment of the file.
    let stats = server
        .wire
        .events_since(mark)
        .into_iter()
        .filter(|event| [mtype::TSTAT, mtype::TGETATTR].contains(&event.mtype))
        .count();
    assert_eq!(stats, 1);
    kernel.exit(pid, "").unwrap();
    check(&kernel);
}
