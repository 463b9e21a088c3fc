//! `Vm::forget_device`: what is cached of a device that can never be seen again goes at
//! once (idle images, their pages, mount-cache files), other devices keep theirs, and
//! pages a live segment maps stay until unmapped.

mod common;

use common::*;
use vm::{Access, MountCacheConfig, OpenKind};

const DEV_TYPE: u32 = b'M' as u32;

fn fworld() -> World {
    mc_world(small_config(), MountCacheConfig::default())
}

/// A program of device `dev` executed and exited, every page faulted first: an idle image.
fn idle_image(world: &World, dev: u64, path: u64) -> Program {
    let program = program(ident(dev, path, 0), 2 * PAGE, PAGE + 100, PAGE);
    let process = exec(world, &program);
    fault_all(process.text(), Access::Read);
    fault_all(process.data(), Access::Read);
    drop(process);
    program
}

/// A data file of device `dev` opened and read through the mount cache.
fn cached_file(world: &World, dev: u64, path: u64) {
    let data = patterned_bytes(path, 2 * PAGE as usize);
    let file = world.vm.mount_cache().open(
        ident(dev, path, 0),
        data.len() as u64,
        OpenKind::Existing,
        false,
    );
    assert_eq!(read_through(&file, &data, 0, data.len()).0, data);
}

#[test]
fn forgetting_a_device_frees_its_idle_images_and_mount_cache_files_only() {
    let world = fworld();
    idle_image(&world, 5, 1);
    cached_file(&world, 5, 100);
    let kept = idle_image(&world, 6, 1);
    cached_file(&world, 6, 100);
    let before = world.vm.statistics();
    assert_eq!((before.images_idle, before.mcache_files), (2, 2));
    let freed = world.vm.forget_device(DEV_TYPE, 5);
    let after = world.vm.statistics();
    assert_eq!((after.images_idle, after.mcache_files), (1, 1));
    assert_eq!(after.mcache_pages, before.mcache_pages / 2);
    assert_eq!(
        freed as u64,
        (before.cached_pages - after.cached_pages) + (before.mcache_pages - after.mcache_pages),
        "every page it freed was a cached page of device 5"
    );
    assert!(after.idle_pages > 0 && after.idle_pages < before.idle_pages);
    check(&world, &[]);
    // Forgetting again finds nothing; another device type of the same number is another
    // device.
    assert_eq!(world.vm.forget_device(DEV_TYPE, 5), 0);
    assert_eq!(world.vm.forget_device(u32::from(b'X'), 6), 0);
    assert_eq!(world.vm.statistics().images_idle, 1);
    // Device 6's image is still hit.
    let process = exec(&world, &kept);
    assert_eq!(world.vm.statistics().attach_hits, 1);
    verify_process(&world, &process);
    check(&world, &process.refs());
}

#[test]
fn pages_a_live_segment_maps_stay_until_unmapped() {
    let world = fworld();
    let program = program(ident(5, 2, 0), 2 * PAGE, 2 * PAGE + 100, 0);
    let process = exec(&world, &program);
    // A text page mapped by the (shared) text segment.
    let text = process.text();
    text.fault(text.base(), Access::Read).expect("fault");
    // Another process read its whole data (private segments) and exited: those image
    // pages sit at ref 0 in an image still in use.
    let other = exec(&world, &program);
    fault_all(other.data(), Access::Read);
    drop(other);
    let before = world.vm.statistics();
    assert_eq!(before.images_active, 1);
    let freed = world.vm.forget_device(DEV_TYPE, 5);
    let after = world.vm.statistics();
    assert!(freed >= 2, "the unmapped data pages went ({freed})");
    assert_eq!(after.images_active, 1, "the image in use stays");
    assert!(
        text.resident(text.base()).is_some(),
        "the mapped page stayed"
    );
    check(&world, &process.refs());
    // The process still reads every page of its file (faulted in again from the file).
    verify_process(&world, &process);
    check(&world, &process.refs());
    drop(process);
    assert_eq!(world.vm.statistics().images_idle, 1);
    world.vm.forget_device(DEV_TYPE, 5);
    let last = world.vm.statistics();
    assert_eq!((last.images_idle, last.cached_pages), (0, 0));
    check(&world, &[]);
}
