//! Allocation failure through the knob: every allocation exec makes is refused in turn;
//! each time exec fails cleanly, the process keeps its old program, the checker passes,
//! and at the end nothing holds the server.

mod common;

use common::*;
use hosted::vm::{Access, FaultError, VmError};
use hosted::{ForkFlags, KernelConfig, KernelError};

fn out_of_memory(err: &KernelError) -> bool {
    matches!(
        err,
        KernelError::Vm(VmError::NoMemory)
            | KernelError::Fault {
                error: FaultError::NoMemory,
                ..
            }
    )
}

#[test]
fn exec_fails_cleanly_at_every_allocation() {
    let binary = static_binary();
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/old", binary);
    copy_in(&kernel, init, "/n/ram/new", binary);
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.exec(pid, "/n/ram/old", &["old"]).unwrap();
    let before = kernel.segments(pid).unwrap();

    let frames = kernel.frames();
    let mut failures = 0;
    for nth in 0..10_000 {
        frames.fail_nth_allocation(nth);
        let result = kernel.exec(pid, "/n/ram/new", &["new", "arg"]);
        let fired = !frames.failure_pending();
        frames.never_fail();
        match result {
            Ok(_) => {
                assert!(
                    !fired,
                    "exec succeeded although allocation {nth} was refused"
                );
                break;
            }
            Err(err) => {
                assert!(fired, "exec failed without a refused allocation: {err}");
                assert!(out_of_memory(&err), "allocation {nth}: {err}");
                assert_eq!(kernel.segments(pid).unwrap(), before, "allocation {nth}");
                check(&kernel);
                failures += 1;
            }
        }
    }
    eprintln!("exec failed cleanly at each of its {failures} allocations");
    assert!(failures >= 5, "only {failures} allocations in exec");
    assert!(
        kernel.segments(pid).unwrap() != before,
        "the last exec did not take"
    );

    // A fault refused once fails; the next one succeeds.
    let text = program_pages(binary)
        .into_iter()
        .find(|p| !p.writable)
        .unwrap();
    frames.fail_nth_allocation(0);
    let err = kernel.touch(pid, text.addr, Access::Read).unwrap_err();
    assert!(out_of_memory(&err), "{err}");
    kernel.touch(pid, text.addr, Access::Read).unwrap();
    check(&kernel);

    kernel.exit(pid, "").unwrap();
    kernel.unmount(init, "/n/ram").unwrap();
    assert!(
        server.exits_cleanly(DEADLINE),
        "a failed exec leaked a channel"
    );
    assert_eq!(check(&kernel).live_channels, 0);
}

#[test]
fn exec_fails_cleanly_when_host_memory_is_exhausted() {
    let binary = static_binary();
    let kernel = hosted::Kernel::new(KernelConfig::default()).unwrap();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/prog", binary);
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.frames().refuse_frames(true);
    let err = kernel.exec(pid, "/n/ram/prog", &["prog"]).unwrap_err();
    assert!(out_of_memory(&err), "{err}");
    assert!(kernel.segments(pid).unwrap().is_empty());
    check(&kernel);
    kernel.frames().never_fail();
    kernel.exec(pid, "/n/ram/prog", &["prog"]).unwrap();
    check(&kernel);
}
