//! Legacy mode (the behaviour before the 2014 fix): the image keeps its channel until its
//! last page is uncached, so ramfs outlives the program and the mount.

mod common;

use std::time::Duration;

use common::*;
use hosted::vm::Access;
use hosted::{ForkFlags, Kernel, KernelConfig};

#[test]
fn the_cached_image_keeps_ramfs_until_reclaimed() {
    let binary = static_binary();
    let kernel = Kernel::new(KernelConfig {
        legacy_image_channel: true,
        ..KernelConfig::default()
    })
    .unwrap();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/prog", binary);
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    let info = kernel.exec(pid, "/n/ram/prog", &["prog"]).unwrap();
    let text = program_pages(binary)
        .into_iter()
        .find(|p| !p.writable)
        .unwrap();
    kernel.touch(pid, text.addr, Access::Read).unwrap();
    kernel.exit(pid, "").unwrap();
    kernel.unmount(init, "/n/ram").unwrap();
    assert!(kernel.wait_closes(DEADLINE));
    assert!(
        !server.exits_cleanly(Duration::from_millis(300)),
        "legacy mode let ramfs go"
    );
    let stats = kernel.statistics();
    assert_eq!(stats.legacy_pins, 1, "{stats}");
    // vm itself dropped the channel; the pin is the kernel's, held while vm has the image.
    assert_eq!(check(&kernel).vm.open_channels, 0);
    let status = kernel.vm().image_status(&info.identity).expect("the image");
    assert!(status.idle && !status.has_channel, "{status:?}");
    // The sweep looks without attaching.
    assert_eq!((stats.vm.attach_hits, stats.vm.attach_misses), (0, 1));

    kernel.reclaim(usize::MAX);
    assert_eq!(kernel.vm().image_status(&info.identity), None);
    assert!(server.exits_cleanly(DEADLINE), "the pin outlived the image");
    assert_eq!(kernel.statistics().legacy_pins, 0);
    assert_eq!(check(&kernel).live_channels, 0);
}
