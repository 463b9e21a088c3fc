//! The image table in shards: the least-recently-used orders that span shards (idle images
//! for reclaim and the idle limit, mount-cache files for eviction) are the orders of all
//! files, not of each shard, and the limits hold across shards.

mod common;

use common::*;
use vm::{Config, FileIdentity, MountCacheConfig, OpenKind, Vm, VmError};

/// `count` identities on mount `dev`, from path `from` on, each in another shard than the
/// one before, so that an order over them crosses shards at every step.
fn alternating(dev: u64, from: u64, count: usize) -> Vec<FileIdentity> {
    let mut identities: Vec<FileIdentity> = Vec::new();
    let mut path = from;
    while identities.len() < count {
        let identity = ident(dev, path, 0);
        let shard = Vm::table_shard(&identity);
        if identities
            .last()
            .is_none_or(|last| Vm::table_shard(last) != shard)
        {
            identities.push(identity);
        }
        path += 1;
    }
    identities
}

/// Runs `program`: exec, read every page, exit.
fn run(world: &World, program: &Program) {
    let process = exec(world, program);
    verify_process(world, &process);
}

#[test]
fn reclaim_takes_idle_images_in_the_order_they_became_idle_across_shards() {
    let world = world(small_config());
    let programs: Vec<Program> = alternating(1, 100, 6)
        .into_iter()
        .map(|identity| program(identity, PAGE, PAGE, 0))
        .collect();
    // Idle in the order 3, 1, 5, 0, 4, 2: each image has one cached text page and one data
    // page (the data page is cached too: it was read from the file).
    let order = [3, 1, 5, 0, 4, 2];
    for n in order {
        run(&world, &programs[n]);
    }
    check(&world, &[]);
    let pages_each = world.vm.statistics().cached_pages / 6;
    assert!(pages_each > 0);
    for (gone, n) in order.iter().enumerate() {
        assert_eq!(world.vm.reclaim(pages_each as usize), pages_each as usize);
        let identity = programs[*n].file.identity();
        assert!(
            world.vm.image_status(&identity).is_none(),
            "image {n} (idle {gone}th) goes {gone}th"
        );
        for later in &order[gone + 1..] {
            assert!(world
                .vm
                .image_status(&programs[*later].file.identity())
                .is_some());
        }
        check(&world, &[]);
    }
}

#[test]
fn the_idle_limit_and_the_table_limit_hold_across_shards() {
    let world = world(Config {
        max_images: 4,
        max_idle_images: 2,
        ..small_config()
    });
    let programs: Vec<Program> = alternating(1, 200, 6)
        .into_iter()
        .map(|identity| program(identity, PAGE, PAGE, 0))
        .collect();
    for program in &programs {
        run(&world, program);
        let stats = world.vm.statistics();
        assert!(stats.images_idle <= 2);
    }
    // The last two are the idle ones left.
    for (n, program) in programs.iter().enumerate() {
        let kept = world.vm.image_status(&program.file.identity()).is_some();
        assert_eq!(kept, n >= 4, "image {n}");
    }
    // Four active images fill the table, whatever their shards.
    let active: Vec<_> = programs[..4]
        .iter()
        .map(|program| world.vm.attach(program.file.open()).expect("attach"))
        .collect();
    assert_eq!(world.vm.statistics().images_active, 4);
    assert_eq!(
        world.vm.attach(programs[4].file.open()).err(),
        Some(VmError::ImageTableFull)
    );
    // (`None`: the holders are image references, not segments.)
    vm::check::check_invariants(&world.vm, None).expect("invariants");
    drop(active);
    world.vm.run_parked_closes();
    check(&world, &[]);
}

#[test]
fn too_many_files_evict_the_least_recently_used_file_of_all_shards() {
    let world = mc_world(
        small_config(),
        MountCacheConfig {
            max_files: 3,
            max_file_bytes: 8 * PAGE,
            max_bytes: 64 * PAGE,
        },
    );
    let data = patterned_bytes(3, PAGE as usize);
    let identities = alternating(7, 300, 6);
    let open = |identity: FileIdentity| {
        world
            .vm
            .mount_cache()
            .open(identity, PAGE, OpenKind::Existing, false)
    };
    let files: Vec<_> = identities[..3]
        .iter()
        .map(|identity| {
            let file = open(*identity);
            read_through(&file, &data, 0, data.len());
            file
        })
        .collect();
    // Use the first file again: the second is now the least recently used.
    assert_eq!(read_through(&files[0], &data, 0, data.len()).1, data.len());
    let fourth = open(identities[3]);
    assert!(fourth.is_cached());
    assert!(files[0].is_cached() && !files[1].is_cached() && files[2].is_cached());
    // Then the third, then the first.
    let fifth = open(identities[4]);
    assert!(fifth.is_cached() && !files[2].is_cached() && files[0].is_cached());
    let sixth = open(identities[5]);
    assert!(sixth.is_cached() && !files[0].is_cached());
    assert_eq!(world.vm.statistics().mcache_files, 3);
    check(&world, &[]);
}

#[test]
fn mount_cache_reclaim_takes_the_least_recently_used_files_pages_across_shards() {
    let world = mc_world(
        small_config(),
        MountCacheConfig {
            max_files: 8,
            max_file_bytes: 8 * PAGE,
            max_bytes: 64 * PAGE,
        },
    );
    let data = patterned_bytes(5, 2 * PAGE as usize);
    let files: Vec<_> = alternating(7, 400, 4)
        .into_iter()
        .map(|identity| {
            let file = world
                .vm
                .mount_cache()
                .open(identity, 2 * PAGE, OpenKind::Existing, false);
            read_through(&file, &data, 0, data.len());
            file
        })
        .collect();
    // Used again in the order 2, 0: the order is now 1, 3, 2, 0.
    for n in [2, 0] {
        assert_eq!(read_through(&files[n], &data, 0, data.len()).1, data.len());
    }
    let cached = |n: usize| {
        let mut buf = vec![0; data.len()];
        files[n].read(0, &mut buf).len
    };
    // Three pages: file 1's two and one of file 3's.
    assert_eq!(world.vm.mount_cache().reclaim(3), 3);
    assert_eq!(cached(1), 0);
    assert!(cached(3) < data.len());
    assert_eq!((cached(2), cached(0)), (data.len(), data.len()));
    check(&world, &[]);
}
