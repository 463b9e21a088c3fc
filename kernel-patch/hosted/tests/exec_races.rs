//! An exec still loading when its process exits installs nothing in the dead process: the
//! program it built goes before the exec's safe point, so its image lets go of the channel
//! there and then, instead of when the last reference to the process drops after every
//! safe point (a channel nobody would close, and a server that never exits).

mod common;

use common::*;
use hosted::inject::{FlushPolicy, Hold};
use hosted::mnt::ninep::mtype;
use hosted::{ForkFlags, KernelError};

#[test]
fn an_exec_whose_process_exits_while_it_loads_leaves_no_channel_behind() {
    let kernel = kernel();
    let init = kernel.spawn();
    let mut server = Server::start();
    server.mount(&kernel, init, "/n/ram");
    copy_in(&kernel, init, "/n/ram/prog", static_binary());
    let pid = kernel.fork(init, ForkFlags::default()).unwrap();
    // The exec stops at its first Tread (the ELF headers), after its walk, open and stat.
    server.wire.hold(Hold {
        mtype: mtype::TREAD,
        count: 1,
        flush: FlushPolicy::Answer,
    });
    let exec = {
        let kernel = kernel.clone();
        std::thread::spawn(move || kernel.exec(pid, "/n/ram/prog", &["prog"]))
    };
    assert!(server.wire.wait_held(1, DEADLINE), "the exec never read");
    // The race: the process exits while its exec is loading.
    kernel.exit(pid, "").unwrap();
    assert_eq!(server.wire.release_held().unwrap(), 1);
    let result = exec.join().expect("exec thread");
    assert!(
        matches!(result, Err(KernelError::NoSuchProcess(p)) if p == pid),
        "exec into an exited process: {result:?}"
    );
    // The program's image gave its channel up at the exec's safe point: nothing parked.
    assert_eq!(kernel.vm().statistics().parked_closes, 0);
    check(&kernel);
    kernel.unmount(init, "/n/ram").unwrap();
    kernel.exit(init, "").unwrap();
    assert!(server.exits_cleanly(DEADLINE), "ramfs still running");
}
