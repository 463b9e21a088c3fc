//! Pipes: bytes in order through the bounded buffer, end of file when every writer is
//! gone, a broken pipe when every reader is, a note interrupting a read or a write that
//! blocked (counted: the call did sleep), fork sharing both ends, and `read_user` /
//! `write_user` between a pipe and process memory. The checker runs after each test.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use hosted::{ForkFlags, Kernel, KernelError, MapRequest, Pid, Prot, PIPE_CAPACITY};

/// Waits until `cond` holds, or fails the test at the deadline.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Posts a note to `pid` if the test fails while a thread of it may be blocked in a pipe
/// call, so that the call ends and the scope can join the thread (a failed test never
/// hangs).
struct UnblockOnPanic<'a>(&'a Kernel, Pid);

impl Drop for UnblockOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            let _ = self.0.interrupt(self.1);
        }
    }
}

/// Reads exactly `len` bytes from a pipe (several reads), failing at a premature end.
fn read_exactly(kernel: &Kernel, pid: Pid, fd: usize, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = kernel.read(pid, fd, &mut out[done..]).expect("read");
        assert!(n > 0, "end of file after {done} of {len} bytes");
        done += n;
    }
    out
}

fn anon(kernel: &Kernel, pid: Pid, len: u64) -> u64 {
    kernel
        .mmap(
            pid,
            MapRequest {
                fd: None,
                offset: 0,
                len,
                shared: false,
                prot: Prot::READ_WRITE,
                addr: None,
            },
        )
        .expect("mmap")
}

#[test]
fn bytes_pass_in_order_and_end_of_file_follows_the_last_writer() {
    let kernel = kernel();
    let pid = kernel.spawn();
    let (rfd, wfd) = kernel.pipe(pid).unwrap();
    assert_eq!((rfd, wfd), (0, 1));
    assert_eq!(kernel.write(pid, wfd, b"one ").unwrap(), 4);
    assert_eq!(kernel.write(pid, wfd, b"two").unwrap(), 3);
    assert_eq!(read_exactly(&kernel, pid, rfd, 7), b"one two");
    // The wrong end of each is refused.
    assert_eq!(kernel.write(pid, rfd, b"x"), Err(KernelError::BadFd(rfd)));
    assert_eq!(
        kernel.read(pid, wfd, &mut [0; 1]),
        Err(KernelError::BadFd(wfd))
    );
    assert_eq!(kernel.seek(pid, rfd, 0), Err(KernelError::IsPipe(rfd)));
    kernel.write(pid, wfd, b"last").unwrap();
    kernel.close(pid, wfd).unwrap();
    // What was written before the close still comes out, then end of file.
    assert_eq!(read_exactly(&kernel, pid, rfd, 4), b"last");
    assert_eq!(kernel.read(pid, rfd, &mut [0; 8]), Ok(0));
    assert_eq!(kernel.statistics().pipe_waits, 0, "nothing had to block");
    check(&kernel);
}

#[test]
fn a_write_with_every_reader_gone_is_a_broken_pipe() {
    let kernel = kernel();
    let pid = kernel.spawn();
    let (rfd, wfd) = kernel.pipe(pid).unwrap();
    kernel.write(pid, wfd, &[7; 100]).unwrap();
    kernel.close(pid, rfd).unwrap();
    assert_eq!(kernel.write(pid, wfd, b"x"), Err(KernelError::BrokenPipe));
    // A writer blocked on a full pipe is released by the last reader's exit.
    let child = kernel.fork(pid, ForkFlags::default()).unwrap();
    let (rfd, wfd) = kernel.pipe(child).unwrap();
    let reader = kernel.fork(child, ForkFlags::default()).unwrap();
    kernel.close(child, rfd).unwrap();
    thread::scope(|s| {
        let _unblock = UnblockOnPanic(&kernel, child);
        let writer = s.spawn(|| kernel.write(child, wfd, &vec![1u8; PIPE_CAPACITY + 10]));
        eventually("the writer to block", || {
            kernel.statistics().pipe_waits >= 1
        });
        kernel.exit(reader, "").unwrap();
        // It wrote the capacity before it blocked, and returns that count.
        assert_eq!(writer.join().unwrap(), Ok(PIPE_CAPACITY));
    });
    assert_eq!(kernel.write(child, wfd, b"x"), Err(KernelError::BrokenPipe));
    check(&kernel);
}

#[test]
fn a_note_interrupts_a_blocked_read_and_a_blocked_write() {
    let kernel = kernel();
    let pid = kernel.spawn();
    let (rfd, wfd) = kernel.pipe(pid).unwrap();
    thread::scope(|s| {
        let _unblock = UnblockOnPanic(&kernel, pid);
        let reader = s.spawn(|| kernel.read(pid, rfd, &mut [0; 16]));
        eventually("the reader to block", || {
            kernel.statistics().pipe_waits >= 1
        });
        kernel.interrupt(pid).unwrap();
        let got = reader.join().unwrap();
        assert_eq!(got, Err(KernelError::Interrupted));
        assert!(got.unwrap_err().is_interrupted());
    });
    // The read consumed the note: the next call is not interrupted.
    kernel.write(pid, wfd, &vec![3u8; PIPE_CAPACITY]).unwrap();
    let waits = kernel.statistics().pipe_waits;
    thread::scope(|s| {
        let _unblock = UnblockOnPanic(&kernel, pid);
        let writer = s.spawn(|| kernel.write(pid, wfd, b"more"));
        eventually("the writer to block", || {
            kernel.statistics().pipe_waits > waits
        });
        kernel.interrupt(pid).unwrap();
        assert_eq!(writer.join().unwrap(), Err(KernelError::Interrupted));
    });
    // Nothing of the interrupted write went in.
    assert_eq!(
        read_exactly(&kernel, pid, rfd, PIPE_CAPACITY),
        vec![3u8; PIPE_CAPACITY]
    );
    kernel.close(pid, wfd).unwrap();
    assert_eq!(kernel.read(pid, rfd, &mut [0; 4]), Ok(0));
    check(&kernel);
}

#[test]
fn fork_shares_both_ends_and_end_of_file_waits_for_every_holder() {
    let kernel = kernel();
    let parent = kernel.spawn();
    let (rfd, wfd) = kernel.pipe(parent).unwrap();
    let child = kernel.fork(parent, ForkFlags::default()).unwrap();
    // The child writes through the shared end; the parent reads it.
    kernel.write(child, wfd, b"from the child").unwrap();
    assert_eq!(read_exactly(&kernel, parent, rfd, 14), b"from the child");
    // The parent's close leaves the child's write end open: no end of file yet, so a
    // read blocks until the child's exit closes the last holder.
    kernel.close(parent, wfd).unwrap();
    thread::scope(|s| {
        let _unblock = UnblockOnPanic(&kernel, parent);
        let reader = s.spawn(|| kernel.read(parent, rfd, &mut [0; 4]));
        eventually("the reader to block", || {
            kernel.statistics().pipe_waits >= 1
        });
        kernel.write(child, wfd, b"bye").unwrap();
        assert_eq!(reader.join().unwrap(), Ok(3));
    });
    thread::scope(|s| {
        let _unblock = UnblockOnPanic(&kernel, parent);
        let reader = s.spawn(|| kernel.read(parent, rfd, &mut [0; 4]));
        eventually("the reader to block again", || {
            kernel.statistics().pipe_waits >= 2
        });
        kernel.exit(child, "").unwrap();
        assert_eq!(
            reader.join().unwrap(),
            Ok(0),
            "end of file at the last writer"
        );
    });
    check(&kernel);
}

#[test]
fn read_user_and_write_user_move_process_memory_through_a_pipe() {
    let kernel = kernel();
    let pid = kernel.spawn();
    let (rfd, wfd) = kernel.pipe(pid).unwrap();
    let len = 3 * 4096 + 100;
    let src = anon(&kernel, pid, 4 * 4096);
    let dst = anon(&kernel, pid, 4 * 4096);
    let bytes: Vec<u8> = (0..len).map(|i| (i / 4096 * 31 + i % 7) as u8).collect();
    kernel.write_memory(pid, src + 50, &bytes).unwrap();
    assert_eq!(kernel.write_user(pid, wfd, src + 50, len), Ok(len));
    let mut got = 0;
    while got < len {
        let n = kernel
            .read_user(pid, rfd, dst + 9 + got as u64, len - got)
            .unwrap();
        assert!(n > 0);
        got += n;
    }
    let mut back = vec![0u8; len];
    kernel.read_memory(pid, dst + 9, &mut back).unwrap();
    assert_eq!(back, bytes);
    // Copied bytes (a kernel buffer's write) come out the same way.
    kernel.write(pid, wfd, b"copied").unwrap();
    assert_eq!(kernel.read_user(pid, rfd, dst + 4090, 64), Ok(6));
    let mut back = [0u8; 6];
    kernel.read_memory(pid, dst + 4090, &mut back).unwrap();
    assert_eq!(&back, b"copied");
    // A buffer outside every mapping is a fault, for either direction.
    assert!(matches!(
        kernel.write_user(pid, wfd, 0x1000, 10),
        Err(KernelError::Fault { .. })
    ));
    kernel.write(pid, wfd, b"abc").unwrap();
    assert!(matches!(
        kernel.read_user(pid, rfd, 0x1000, 3),
        Err(KernelError::Fault { .. })
    ));
    check(&kernel);
}
