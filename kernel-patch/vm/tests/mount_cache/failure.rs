//! Bad input and failed allocations: bad offsets and empty ranges, and allocation
//! failure at every site of a workload.

use super::*;

#[test]
fn bad_offsets_and_empty_ranges_do_not_panic() {
    let world = mworld();
    let file = open(&world, data_ident(22, 0), &[]);
    let ticket = file.read(u64::MAX - 3, &mut [0; 100]).ticket;
    assert!(file.fill(ticket, u64::MAX - 3, &[1; 100]) <= 3);
    assert_eq!(file.read(u64::MAX - 3, &mut [0; 100]).len, 3);
    assert_eq!(file.read(5, &mut []).len, 0);
    let ticket = file.read(0, &mut []).ticket;
    assert_eq!(file.fill(ticket, 0, &[]), 0);
    let pending = file.begin_write();
    pending.done(u64::MAX, &[1; 10]);
    check(&world, &[]);
}

/// Opens, reads, writes, evicts and execs through the mount cache, checking every byte
/// read against the server. Each step may cache less when an allocation fails, never
/// wrongly.
fn mount_cache_workload(world: &World, program: &Program, round: u64) {
    let cache = world.vm.mount_cache();
    let mut first = patterned_bytes(30, 3 * PAGE as usize);
    let a = open(world, data_ident(30, round), &first);
    assert_eq!(read_through(&a, &first, 0, first.len()).0, first);
    write_through(&a, &mut first, 3 * PAGE - 2, b"spills onto a new page");
    assert_eq!(read_through(&a, &first, 0, first.len()).0, first);
    let second = patterned_bytes(31, PAGE as usize);
    let b = open(world, data_ident(31, round), &second);
    assert_eq!(read_through(&b, &second, 0, second.len()).0, second);
    // A third file evicts the least recently used one (max_files is 2).
    let third = patterned_bytes(32, PAGE as usize);
    let c = cache.open(
        data_ident(32, round),
        third.len() as u64,
        OpenKind::Created,
        false,
    );
    assert_eq!(read_through(&c, &third, 0, third.len()).0, third);
    // The program's header read through the cache, then the program run.
    let contents = program.file.data().to_vec();
    let header = open(world, program.file.identity(), &contents);
    assert_eq!(read_through(&header, &contents, 0, 100).0, &contents[..100]);
    match world.vm.exec(program.file.open(), &program.loads) {
        Ok(segments) => {
            assert!(!header.is_cached());
            drop(segments);
        }
        Err(vm::VmError::NoMemory) => {}
        Err(err) => panic!("exec: {err}"),
    }
    assert_eq!(read_through(&a, &first, 0, first.len()).0, first);
}

#[test]
fn allocation_failure_at_every_site_leaves_the_invariants_intact() {
    let config = MountCacheConfig {
        max_files: 2,
        ..mc_config()
    };
    for nth in 0.. {
        assert!(nth < 1000, "the workload never stops allocating");
        let world = mc_world(small_config(), config);
        let frames = world.frames.clone();
        let program = program(ident(7, 80, 0), 2 * PAGE, PAGE, 0);
        let before = frames.stats().admitted;
        frames.fail_allocation(nth);
        mount_cache_workload(&world, &program, 0);
        frames.never_fail();
        let made = frames.stats().admitted - before;
        check(&world, &[]);
        // Nothing is broken for later: the workload again, and a file read twice hits.
        mount_cache_workload(&world, &program, 1);
        check(&world, &[]);
        let data = patterned_bytes(33, 2 * PAGE as usize);
        let file = open(&world, data_ident(33, 0), &data);
        read_through(&file, &data, 0, data.len());
        assert_eq!(
            read_through(&file, &data, 0, data.len()),
            (data.clone(), data.len()),
            "allocation {nth}"
        );
        drop(file);
        drop(world);
        assert_eq!(
            frames.stats().outstanding(),
            0,
            "allocation {nth}: frames leaked"
        );
        let counts = program.file.counts();
        assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
        if made <= nth {
            assert!(nth >= 10, "files, pages and exec's allocations: {nth}");
            break;
        }
    }
}
