//! Truncate's wait is bounded: while a truncate waits for the write-backs in flight of its
//! file, a write-back that starts then waits at the object's gate (counted in
//! `truncate_gate_waits`) instead of starting its write, so a steady stream of them cannot
//! keep the truncate waiting. Staged: write-back A is held inside its write, the truncate
//! waits for it, write-back B arrives and must wait until the truncate is done.

mod map_common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use map_common::{check, mmu, spec, stamp, store, world, ServerFile, PAGE};
use vm::{SpaceRef, PAGE_SIZE};

const DEADLINE: Duration = Duration::from_secs(20);

/// Waits until `done`, at most [`DEADLINE`]; returns whether it happened.
fn wait_until(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

#[test]
fn a_write_back_that_starts_while_a_truncate_waits_waits_for_the_truncate() {
    let world = world();
    let file = ServerFile::stamped(1, 4 * PAGE_SIZE);
    let space = mmu(1);
    let object = world.vm.file_object(file.open()).unwrap();
    let map = object
        .map(space.clone() as SpaceRef, spec(0x10000, 4, 0, true))
        .unwrap();
    store(&world, &map, 0x10000, stamp(0, 1)).unwrap();
    store(&world, &map, 0x10000 + PAGE, stamp(1, 1)).unwrap();
    let (started, started_seen) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    // Write-back A's write waits for the test (never past the deadline).
    *file.before_write.lock().unwrap() = Some(Box::new(move || {
        let _ = started.send(());
        let _ = released.recv_timeout(DEADLINE);
    }));
    std::thread::scope(|scope| {
        let a = scope.spawn(|| map.sync(0x10000, PAGE));
        started_seen
            .recv_timeout(DEADLINE)
            .expect("write-back A never wrote");
        let truncate = scope.spawn(|| world.vm.truncate_mapped(&file.identity, 2 * PAGE));
        // The size is published with the gate closed, in one hold of the object lock.
        assert!(wait_until(|| object.size() == 2 * PAGE), "no truncate");
        let b = scope.spawn(|| map.sync(0x10000 + PAGE, PAGE));
        let gated = wait_until(|| world.vm.statistics().truncate_gate_waits == 1);
        let b_wrote_early = file.bytes(PAGE, 1)[0] == stamp(1, 1);
        let truncate_waiting = !truncate.is_finished();
        let _ = release.send(());
        assert_eq!(a.join().unwrap(), Ok(1));
        assert!(truncate.join().unwrap().is_ok());
        assert_eq!(b.join().unwrap(), Ok(1));
        assert!(gated, "write-back B never waited at the gate");
        assert!(
            !b_wrote_early,
            "write-back B wrote while the truncate waited"
        );
        assert!(
            truncate_waiting,
            "the truncate did not wait for write-back A"
        );
    });
    assert_eq!(file.bytes(0, 8), vec![stamp(0, 1); 8]);
    assert_eq!(file.bytes(PAGE, 8), vec![stamp(1, 1); 8]);
    assert_eq!(world.vm.statistics().truncate_gate_waits, 1);
    check(&world, &[&space]);
}
