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

/// One process's mappings: a shared file mapping and private anonymous memory, a store in
/// each, a fork (the child stores too), an msync; the process exits.
fn map_and_store(kernel: &hosted::Kernel, pid: hosted::Pid) -> Result<(), KernelError> {
    use hosted::mnt::OpenMode;
    use hosted::{MapRequest, Prot};
    let fd = kernel.open(pid, "/n/ram/data", OpenMode::RDWR)?;
    let request = |fd, shared| MapRequest {
        fd,
        offset: 0,
        len: 2 * hosted::vm::PAGE_SIZE as u64,
        shared,
        prot: Prot::READ_WRITE,
        addr: None,
    };
    let file = kernel.mmap(pid, request(Some(fd), true))?;
    kernel.write_memory(pid, file, &[1])?;
    let anon = kernel.mmap(pid, request(None, false))?;
    kernel.write_memory(pid, anon, &[2])?;
    let child = kernel.fork(pid, ForkFlags::default())?;
    let stored = kernel
        .write_memory(child, anon, &[3])
        .and_then(|()| kernel.write_memory(child, file, &[4]));
    kernel.exit(child, "")?;
    stored?;
    kernel.msync(pid, file, 2 * hosted::vm::PAGE_SIZE as u64)
}

#[test]
fn mappings_fail_cleanly_at_every_allocation() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(
        &kernel,
        init,
        "/n/ram/data",
        &[9; 2 * hosted::vm::PAGE_SIZE],
    );
    let frames = kernel.frames();
    let mut failures = 0;
    for nth in 0..10_000 {
        let pid = kernel.fork(init, ForkFlags::default()).unwrap();
        frames.fail_nth_allocation(nth);
        let result = map_and_store(&kernel, pid);
        let fired = !frames.failure_pending();
        frames.never_fail();
        kernel.exit(pid, "").unwrap();
        check(&kernel);
        match result {
            Ok(()) if !fired => break,
            // A refused allocation vm could do without.
            Ok(()) => {}
            Err(err) => {
                assert!(fired, "failed without a refused allocation: {err}");
                assert!(out_of_memory(&err), "allocation {nth}: {err}");
                failures += 1;
            }
        }
    }
    eprintln!("mappings failed cleanly at each of {failures} allocations");
    assert!(failures >= 5, "only {failures} allocations");
    assert_eq!(kernel.statistics().vm.mappings, 0);
    kernel.unmount(init, "/n/ram").unwrap();
    assert!(
        server.exits_cleanly(DEADLINE),
        "a failed mapping leaked a channel"
    );
    assert_eq!(check(&kernel).live_channels, 0);
}
