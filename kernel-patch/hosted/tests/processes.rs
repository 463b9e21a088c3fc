//! fork, exit and wait; copy-on-write across fork; namespaces shared, copied or clean.

mod common;

use std::time::Duration;

use common::*;
use hosted::vm::SegmentKind;
use hosted::{ForkFlags, KernelError, NamespaceShare};

#[test]
fn wait_returns_each_child_once_with_its_status() {
    let kernel = kernel();
    let init = kernel.spawn();
    assert_eq!(kernel.wait(init), Err(KernelError::NoChildren));
    let children: Vec<_> = (0..3)
        .map(|_| kernel.fork(init, ForkFlags::default()).unwrap())
        .collect();
    assert_eq!(
        kernel.wait_timeout(init, Duration::from_millis(10)),
        Err(KernelError::TimedOut)
    );
    kernel.exit(children[1], "boom").unwrap();
    kernel.exit(children[0], "").unwrap();
    let first = kernel.wait(init).unwrap();
    assert_eq!((first.pid, first.status.as_str()), (children[1], "boom"));
    assert_eq!(kernel.wait(init).unwrap().pid, children[0]);
    // A grandchild whose parent exits first is nobody's to wait for.
    let grandchild = kernel.fork(children[2], ForkFlags::default()).unwrap();
    kernel.exit(children[2], "").unwrap();
    assert_eq!(kernel.wait(init).unwrap().pid, children[2]);
    assert_eq!(kernel.wait(init), Err(KernelError::NoChildren));
    kernel.exit(grandchild, "").unwrap();
    assert_eq!(
        kernel.exit(grandchild, ""),
        Err(KernelError::NoSuchProcess(grandchild))
    );
    assert_eq!(kernel.processes(), vec![init]);
    check(&kernel);
}

#[test]
fn a_blocked_wait_wakes_when_a_child_exits() {
    let kernel = kernel();
    let init = kernel.spawn();
    let child = kernel.fork(init, ForkFlags::default()).unwrap();
    let waiter = {
        let kernel = kernel.clone();
        std::thread::spawn(move || kernel.wait(init))
    };
    kernel.exit(child, "done").unwrap();
    let msg = waiter.join().unwrap().unwrap();
    assert_eq!((msg.pid, msg.status.as_str()), (child, "done"));
}

#[test]
fn fork_shares_text_and_copies_data_on_write() {
    let binary = static_binary();
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/prog", binary);
    let parent = kernel.fork(init, ForkFlags::default()).unwrap();
    let info = kernel.exec(parent, "/n/ram/prog", &["prog"]).unwrap();
    let data = info
        .segments
        .iter()
        .find(|s| s.kind == SegmentKind::Data)
        .unwrap();
    let bss = info
        .segments
        .iter()
        .find(|s| s.kind == SegmentKind::Bss)
        .unwrap();
    let text = info
        .segments
        .iter()
        .find(|s| s.kind == SegmentKind::Text)
        .unwrap();
    kernel.write_memory(parent, data.base, b"parent").unwrap();
    kernel.write_memory(parent, bss.base, b"bss").unwrap();

    let child = kernel.fork(parent, ForkFlags::default()).unwrap();
    assert!(kernel.same_segment(parent, child, text.base).unwrap());
    assert!(!kernel.same_segment(parent, child, data.base).unwrap());
    let mut got = [0u8; 6];
    kernel.read_memory(child, data.base, &mut got).unwrap();
    assert_eq!(&got, b"parent");
    // Both share the page until one writes; then each has its own.
    assert_eq!(
        kernel.resident(parent, data.base).unwrap(),
        kernel.resident(child, data.base).unwrap()
    );
    kernel.write_memory(child, data.base, b"child!").unwrap();
    kernel.write_memory(parent, bss.base, b"BSS").unwrap();
    kernel.read_memory(parent, data.base, &mut got).unwrap();
    assert_eq!(&got, b"parent");
    kernel.read_memory(child, data.base, &mut got).unwrap();
    assert_eq!(&got, b"child!");
    let mut small = [0u8; 3];
    kernel.read_memory(child, bss.base, &mut small).unwrap();
    assert_eq!(&small, b"bss");
    check(&kernel);
    kernel.exit(child, "").unwrap();
    kernel.exit(parent, "").unwrap();
    check(&kernel);
}

#[test]
fn namespaces_are_shared_copied_or_clean() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/file", b"hello");
    let shared = kernel.fork(init, ForkFlags::default()).unwrap();
    let copied = kernel
        .fork(
            init,
            ForkFlags {
                namespace: NamespaceShare::Copy,
            },
        )
        .unwrap();
    let clean = kernel
        .fork(
            init,
            ForkFlags {
                namespace: NamespaceShare::Clean,
            },
        )
        .unwrap();
    assert!(matches!(
        kernel.stat(clean, "/n/ram/file"),
        Err(KernelError::NotMounted(_))
    ));
    assert_eq!(kernel.stat(copied, "/n/ram/file").unwrap().length, 5);
    // An unmount in the shared namespace is seen by init; the copy keeps the mount, and
    // with it the server.
    kernel.unmount(shared, "/n/ram").unwrap();
    assert!(matches!(
        kernel.stat(init, "/n/ram/file"),
        Err(KernelError::NotMounted(_))
    ));
    assert!(kernel.wait_closes(DEADLINE));
    assert!(server.running());
    assert_eq!(kernel.stat(copied, "/n/ram/file").unwrap().length, 5);
    kernel.exit(copied, "").unwrap();
    assert!(
        server.exits_cleanly(DEADLINE),
        "the last namespace let go but ramfs runs"
    );
    check(&kernel);
}

#[test]
fn a_bad_stack_size_is_refused() {
    use hosted::{Kernel, KernelConfig};
    for stack_size in [0, 4095, !4095u64] {
        let config = KernelConfig {
            stack_size,
            ..KernelConfig::default()
        };
        assert!(matches!(
            Kernel::new(config),
            Err(KernelError::BadConfig(_))
        ));
    }
}
