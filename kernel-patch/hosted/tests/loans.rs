//! The users of page loans, against a real ramfs: `write_user` of at least a page from a
//! mapping lends the pages into a pipe (a snapshot: stores after the write copy, the
//! reader gets the bytes from before) or to the mount driver for a 9P write (sent from the
//! frames, no copy into a message). Every page is stamped with its index; the checker
//! runs after each test (no lent page writable in any MMU, no lent frame written).

mod common;

use std::thread;

use common::*;
use hosted::mnt::OpenMode;
use hosted::vm::PAGE_SIZE;
use hosted::{ForkFlags, Kernel, MapRequest, Pid, Prot, LEND_THRESHOLD};

const PAGE: u64 = PAGE_SIZE as u64;

/// The byte at `offset` of a buffer in generation `generation`: each page's bytes name the
/// page (and change along it), so a page out of place or of another generation shows.
fn stamp(offset: u64, generation: u8) -> u8 {
    let page = offset / PAGE;
    (page as u8)
        .wrapping_mul(29)
        .wrapping_add((page >> 8) as u8)
        .wrapping_add((offset % PAGE / 512) as u8)
        .wrapping_add(generation.wrapping_mul(83))
        | 1
}

fn stamped(from: u64, len: u64, generation: u8) -> Vec<u8> {
    (from..from + len).map(|at| stamp(at, generation)).collect()
}

type Setup = TwoMounts;

fn setup(file_len: u64) -> Setup {
    two_mounts(&stamped(0, file_len, 0))
}

fn map(kernel: &Kernel, pid: Pid, fd: Option<usize>, len: u64, shared: bool) -> u64 {
    kernel
        .mmap(
            pid,
            MapRequest {
                fd,
                offset: 0,
                len,
                shared,
                prot: Prot::READ_WRITE,
                addr: None,
            },
        )
        .expect("mmap")
}

fn load(kernel: &Kernel, pid: Pid, addr: u64, len: u64) -> Vec<u8> {
    let mut buf = vec![0; len as usize];
    kernel.read_memory(pid, addr, &mut buf).expect("load");
    buf
}

/// Reads exactly `len` bytes from the pipe `fd`.
fn drain(kernel: &Kernel, pid: Pid, fd: usize, len: u64) -> Vec<u8> {
    let mut out = vec![0u8; len as usize];
    let mut done = 0;
    while done < out.len() {
        let n = kernel.read(pid, fd, &mut out[done..]).expect("read");
        assert!(n > 0, "end of file after {done} bytes");
        done += n;
    }
    out
}

fn file_bytes(kernel: &Kernel, pid: Pid, path: &str) -> Vec<u8> {
    let fd = kernel.open(pid, path, OpenMode::READ).expect("open");
    let bytes = read_to_end(kernel, pid, fd);
    kernel.close(pid, fd).expect("close");
    bytes
}

#[test]
fn a_mapped_file_written_to_a_pipe_is_read_as_it_was_at_the_write() {
    let setup = setup(8 * PAGE);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let base = map(kernel, pid, Some(fd), 8 * PAGE, true);
    let (rfd, wfd) = kernel.pipe(pid).unwrap();
    let before = kernel.statistics();
    assert_eq!(
        kernel.write_user(pid, wfd, base + PAGE, 4 * PAGE as usize),
        Ok(4 * PAGE as usize)
    );
    let after = kernel.statistics();
    assert_eq!(after.user_bytes_lent - before.user_bytes_lent, 4 * PAGE);
    assert_eq!(
        after.user_bytes_copied, before.user_bytes_copied,
        "nothing copied"
    );
    assert_eq!(after.vm.pages_lent, 4);
    assert_eq!(kernel.pipe_buffered(pid, rfd), Ok((4 * PAGE as usize, 1)));
    check(kernel);
    // The buffer is overwritten before anyone reads the pipe: each store breaks a loan.
    kernel
        .write_memory(pid, base + PAGE, &stamped(PAGE, 4 * PAGE, 1))
        .unwrap();
    assert_eq!(kernel.statistics().vm.loan_breaks, 4);
    check(kernel);
    // A reader that took part of the chunk leaves it lent; the one that ends it returns it.
    let mut got = drain(kernel, pid, rfd, PAGE + 10);
    assert_eq!(kernel.statistics().vm.pages_lent, 4);
    got.extend(drain(kernel, pid, rfd, 3 * PAGE - 10));
    assert_eq!(got, stamped(PAGE, 4 * PAGE, 0));
    let stats = kernel.statistics().vm;
    assert_eq!((stats.pages_lent, stats.orphan_pages), (0, 0));
    // The mapping and `read` have the new bytes.
    assert_eq!(
        load(kernel, pid, base + PAGE, 4 * PAGE),
        stamped(PAGE, 4 * PAGE, 1)
    );
    let mut buf = vec![0; 4 * PAGE_SIZE];
    kernel.pread(pid, fd, &mut buf, PAGE).unwrap();
    assert_eq!(buf, stamped(PAGE, 4 * PAGE, 1));
    check(kernel);
}

#[test]
fn a_loan_from_one_shared_view_and_a_store_through_another() {
    let setup = setup(4 * PAGE);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let one = map(kernel, pid, Some(fd), 4 * PAGE, true);
    let two = map(kernel, pid, Some(fd), 4 * PAGE, true);
    // Both views map the file's pages.
    assert_eq!(load(kernel, pid, two, 4 * PAGE), stamped(0, 4 * PAGE, 0));
    let (rfd, wfd) = kernel.pipe(pid).unwrap();
    kernel.write_user(pid, wfd, one, 2 * PAGE as usize).unwrap();
    assert_eq!(kernel.statistics().vm.pages_lent, 2);
    kernel
        .write_memory(pid, two, &stamped(0, 2 * PAGE, 1))
        .unwrap();
    check(kernel);
    assert_eq!(drain(kernel, pid, rfd, 2 * PAGE), stamped(0, 2 * PAGE, 0));
    // Both views and `read` show the store.
    assert_eq!(load(kernel, pid, one, 2 * PAGE), stamped(0, 2 * PAGE, 1));
    assert_eq!(load(kernel, pid, two, 2 * PAGE), stamped(0, 2 * PAGE, 1));
    let mut buf = vec![0; 2 * PAGE_SIZE];
    kernel.pread(pid, fd, &mut buf, 0).unwrap();
    assert_eq!(buf, stamped(0, 2 * PAGE, 1));
    // And it reaches the server at msync.
    kernel.msync(pid, two, 4 * PAGE).unwrap();
    assert_eq!(
        file_bytes(kernel, pid, "/n/b/file")[..2 * PAGE_SIZE],
        stamped(0, 2 * PAGE, 1)
    );
    check(kernel);
}

#[test]
fn a_private_page_lent_before_fork_and_written_by_the_child() {
    let setup = setup(PAGE);
    let (kernel, parent) = (&setup.kernel, setup.init);
    let base = map(kernel, parent, None, 2 * PAGE, false);
    kernel
        .write_memory(parent, base, &stamped(0, 2 * PAGE, 1))
        .unwrap();
    let (rfd, wfd) = kernel.pipe(parent).unwrap();
    kernel
        .write_user(parent, wfd, base, 2 * PAGE as usize)
        .unwrap();
    assert_eq!(kernel.statistics().vm.pages_lent, 2);
    let child = kernel.fork(parent, ForkFlags::default()).unwrap();
    kernel
        .write_memory(child, base, &stamped(0, 2 * PAGE, 2))
        .unwrap();
    check(kernel);
    // The child has its bytes, the parent its own, the pipe the ones of the write.
    assert_eq!(load(kernel, child, base, 2 * PAGE), stamped(0, 2 * PAGE, 2));
    assert_eq!(
        load(kernel, parent, base, 2 * PAGE),
        stamped(0, 2 * PAGE, 1)
    );
    assert_eq!(drain(kernel, child, rfd, 2 * PAGE), stamped(0, 2 * PAGE, 1));
    // The parent's store after the loans are back needs no break.
    let breaks = kernel.statistics().vm.loan_breaks;
    kernel.write_memory(parent, base, &[9]).unwrap();
    assert_eq!(kernel.statistics().vm.loan_breaks, breaks);
    check(kernel);
}

#[test]
fn a_lent_file_page_truncated_away_is_an_orphan_until_the_read() {
    let setup = setup(4 * PAGE);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let base = map(kernel, pid, Some(fd), 4 * PAGE, true);
    let (rfd, wfd) = kernel.pipe(pid).unwrap();
    kernel
        .write_user(pid, wfd, base, 2 * PAGE as usize)
        .unwrap();
    kernel.ftruncate(pid, fd, 0).unwrap();
    let stats = kernel.statistics();
    assert_eq!((stats.vm.orphan_pages, stats.vm.pages_lent), (2, 2));
    check(kernel);
    // Pages that went free: on vm's free list, or their frames back to the kernel.
    let gone = |stats: &hosted::vm::Statistics| u64::from(stats.free_pages) + stats.frames_released;
    let before = gone(&kernel.statistics().vm);
    assert_eq!(drain(kernel, pid, rfd, 2 * PAGE), stamped(0, 2 * PAGE, 0));
    let stats = kernel.statistics();
    assert_eq!((stats.vm.orphan_pages, stats.vm.pages_lent), (0, 0));
    // The orphans' frames went at the read, and not before.
    assert_eq!(gone(&stats.vm) - before, 2, "{stats}");
    check(kernel);
}

#[test]
fn an_anonymous_page_lent_outlives_its_owner() {
    let setup = setup(PAGE);
    let (kernel, init) = (&setup.kernel, setup.init);
    let (rfd, wfd) = kernel.pipe(init).unwrap();
    let owner = kernel.fork(init, ForkFlags::default()).unwrap();
    let base = map(kernel, owner, None, 3 * PAGE, false);
    kernel
        .write_memory(owner, base, &stamped(0, 3 * PAGE, 4))
        .unwrap();
    kernel
        .write_user(owner, wfd, base, 3 * PAGE as usize)
        .unwrap();
    kernel.exit(owner, "").unwrap();
    kernel.wait(init).unwrap();
    assert_eq!(kernel.statistics().vm.orphan_pages, 3);
    check(kernel);
    assert_eq!(drain(kernel, init, rfd, 3 * PAGE), stamped(0, 3 * PAGE, 4));
    let stats = kernel.statistics().vm;
    assert_eq!((stats.orphan_pages, stats.pages_lent), (0, 0));
    check(kernel);
}

#[test]
fn sixteen_untouched_pages_lend_the_zero_page_and_allocate_nothing() {
    let setup = setup(PAGE);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let base = map(kernel, pid, None, 16 * PAGE, false);
    let (rfd, wfd) = kernel.pipe(pid).unwrap();
    let before = kernel.statistics();
    assert_eq!(
        kernel.write_user(pid, wfd, base, 16 * PAGE_SIZE),
        Ok(16 * PAGE_SIZE)
    );
    assert_eq!(
        drain(kernel, pid, rfd, 16 * PAGE),
        vec![0u8; 16 * PAGE_SIZE]
    );
    let after = kernel.statistics();
    assert_eq!(after.frames.allocated, before.frames.allocated, "no frame");
    assert_eq!(after.vm.zero_page_loans - before.vm.zero_page_loans, 16);
    assert_eq!(after.user_bytes_lent - before.user_bytes_lent, 16 * PAGE);
    check(kernel);
}

#[test]
fn a_kibibyte_is_copied_not_lent() {
    let setup = setup(PAGE);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let base = map(kernel, pid, None, PAGE, false);
    kernel
        .write_memory(pid, base, &stamped(0, 1024, 3))
        .unwrap();
    let (rfd, wfd) = kernel.pipe(pid).unwrap();
    let before = kernel.statistics();
    const { assert!(1024 < LEND_THRESHOLD) };
    assert_eq!(kernel.write_user(pid, wfd, base, 1024), Ok(1024));
    let after = kernel.statistics();
    assert_eq!(after.user_bytes_copied - before.user_bytes_copied, 1024);
    assert_eq!(after.user_bytes_lent, before.user_bytes_lent);
    assert_eq!(after.vm.loans, before.vm.loans);
    assert_eq!(kernel.pipe_buffered(pid, rfd), Ok((1024, 0)));
    assert_eq!(drain(kernel, pid, rfd, 1024), stamped(0, 1024, 3));
    check(kernel);
}

#[test]
fn a_mapped_region_written_to_a_file_is_lent_to_the_mount_driver() {
    let setup = setup(PAGE);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let len = 256 * PAGE;
    let base = map(kernel, pid, None, len, false);
    kernel.write_memory(pid, base, &stamped(0, len, 5)).unwrap();
    let out = kernel
        .create(pid, "/n/a/out", 0o644, OpenMode::WRITE)
        .unwrap();
    let mount = kernel
        .mounts(pid)
        .unwrap()
        .into_iter()
        .find(|m| m.path == "/n/a")
        .unwrap();
    let before = mount.mount.stats();
    // Unaligned at both ends: the first and last pages are lent in part.
    let (from, n) = (base + 100, len as usize - 300);
    assert_eq!(kernel.write_user(pid, out, from, n), Ok(n));
    let after = mount.mount.stats();
    assert_eq!(after.write_bytes_lent - before.write_bytes_lent, n as u64);
    assert_eq!(after.write_bytes_copied, before.write_bytes_copied);
    assert_eq!(kernel.statistics().vm.pages_lent, 0, "the loans are back");
    kernel.close(pid, out).unwrap();
    assert_eq!(
        file_bytes(kernel, pid, "/n/b/out"),
        stamped(100, n as u64, 5)
    );
    check(kernel);
}

/// Ends process `pid` if its thread fails, so the other end of its pipe sees end of file
/// or a broken pipe and its thread fails too instead of waiting forever.
struct ExitOnPanic<'a>(&'a Kernel, Pid);

impl Drop for ExitOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            let _ = self.0.exit(self.1, "panic");
        }
    }
}

/// `tail -N FILE | cat > out`: "tail" maps FILE and writes its last N bytes to the pipe
/// (lent, from an unaligned start), "cat" reads the pipe into its memory and writes each
/// read to `out` (lent to the mount driver once a read is a page or more).
#[test]
fn tail_of_a_mapped_file_through_a_pipe_and_cat_into_a_file() {
    let size = 10 * 1024 * 1024 + 12_345;
    let setup = setup(size);
    let (kernel, init) = (&setup.kernel, setup.init);
    let tail_len = 3 * 1024 * 1024 + 777;
    let (rfd, wfd) = kernel.pipe(init).unwrap();
    let tail = kernel.fork(init, ForkFlags::default()).unwrap();
    let cat = kernel.fork(init, ForkFlags::default()).unwrap();
    kernel.close(init, rfd).unwrap();
    kernel.close(init, wfd).unwrap();
    kernel.close(tail, rfd).unwrap();
    kernel.close(cat, wfd).unwrap();
    let mount = kernel
        .mounts(init)
        .unwrap()
        .into_iter()
        .find(|m| m.path == "/n/a")
        .unwrap();
    let (before, wire_before) = (kernel.statistics(), mount.mount.stats());
    thread::scope(|s| {
        let tail_thread = s.spawn(|| {
            let _exit = ExitOnPanic(kernel, tail);
            let fd = kernel.open(tail, "/n/a/file", OpenMode::READ).unwrap();
            let base = kernel
                .mmap(
                    tail,
                    MapRequest {
                        fd: Some(fd),
                        offset: 0,
                        len: size,
                        shared: false,
                        prot: Prot::READ,
                        addr: None,
                    },
                )
                .unwrap();
            let mut done = 0;
            while done < tail_len {
                let at = base + size - tail_len + done;
                let n = kernel
                    .write_user(tail, wfd, at, (tail_len - done) as usize)
                    .unwrap();
                done += n as u64;
            }
            kernel.exit(tail, "").unwrap();
        });
        let cat_thread = s.spawn(|| {
            let _exit = ExitOnPanic(kernel, cat);
            let out = kernel
                .create(cat, "/n/a/out", 0o644, OpenMode::WRITE)
                .unwrap();
            let buf = map(kernel, cat, None, 64 * 1024, false);
            loop {
                let n = kernel.read_user(cat, rfd, buf, 64 * 1024).unwrap();
                if n == 0 {
                    break;
                }
                assert_eq!(kernel.write_user(cat, out, buf, n), Ok(n));
            }
            kernel.exit(cat, "").unwrap();
        });
        tail_thread.join().unwrap();
        cat_thread.join().unwrap();
    });
    assert_eq!(kernel.wait(init).unwrap().status, "");
    assert_eq!(kernel.wait(init).unwrap().status, "");
    let (after, wire) = (kernel.statistics(), mount.mount.stats());
    // cat's writes of a page or more went to the wire from its lent pages (a pipe read
    // is short only when the pipe held less, so most are 64 KiB), the rest copied.
    let cat_lent = wire.write_bytes_lent - wire_before.write_bytes_lent;
    let cat_copied = wire.write_bytes_copied - wire_before.write_bytes_copied;
    assert_eq!(cat_lent + cat_copied, tail_len);
    assert!(
        cat_lent >= tail_len / 2,
        "cat lent {cat_lent} of {tail_len}"
    );
    // tail lent all it wrote but a last piece shorter than a page.
    let tail_lent = after.user_bytes_lent - before.user_bytes_lent - cat_lent;
    assert!(
        tail_lent + PAGE > tail_len,
        "tail lent {tail_lent} of {tail_len}"
    );
    assert_eq!(after.vm.pages_lent, 0);
    let got = file_bytes(kernel, init, "/n/b/out");
    assert_eq!(got.len() as u64, tail_len);
    assert!(
        got == stamped(size - tail_len, tail_len, 0),
        "out differs from the tail"
    );
    check(kernel);
}

#[test]
fn a_loan_refused_for_want_of_memory_copies_instead() {
    let setup = setup(4 * PAGE);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let base = map(kernel, pid, Some(fd), 4 * PAGE, true);
    // Every page resident first: the loan is then the only allocation vm announces.
    assert_eq!(load(kernel, pid, base, 4 * PAGE), stamped(0, 4 * PAGE, 0));
    let (rfd, wfd) = kernel.pipe(pid).unwrap();
    let before = kernel.statistics();
    kernel.frames().fail_nth_allocation(0);
    assert_eq!(
        kernel.write_user(pid, wfd, base, 4 * PAGE_SIZE),
        Ok(4 * PAGE_SIZE)
    );
    assert!(!kernel.frames().failure_pending(), "the loan was refused");
    let after = kernel.statistics();
    assert_eq!(after.vm.loans, before.vm.loans);
    assert_eq!(after.user_bytes_lent, before.user_bytes_lent);
    assert_eq!(after.user_bytes_copied - before.user_bytes_copied, 4 * PAGE);
    assert_eq!(after.vm.pages_lent, 0, "nothing stays lent");
    assert_eq!(drain(kernel, pid, rfd, 4 * PAGE), stamped(0, 4 * PAGE, 0));
    // The same to a file.
    let out = kernel
        .create(pid, "/n/a/out", 0o644, OpenMode::WRITE)
        .unwrap();
    kernel.frames().fail_nth_allocation(0);
    assert_eq!(
        kernel.write_user(pid, out, base, 4 * PAGE_SIZE),
        Ok(4 * PAGE_SIZE)
    );
    assert!(!kernel.frames().failure_pending());
    kernel.close(pid, out).unwrap();
    assert_eq!(file_bytes(kernel, pid, "/n/b/out"), stamped(0, 4 * PAGE, 0));
    check(kernel);
}

#[test]
fn a_shared_file_mapping_written_to_another_file_lends_the_objects_pages() {
    let setup = setup(64 * PAGE + 100);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let base = map(kernel, pid, Some(fd), 65 * PAGE, true);
    // A store first: the object's page 3 is dirty, lent with the store in it.
    kernel
        .write_memory(pid, base + 3 * PAGE, &[0xee; 10])
        .unwrap();
    let out = kernel
        .create(pid, "/n/a/copy", 0o644, OpenMode::WRITE)
        .unwrap();
    let len = 64 * PAGE_SIZE + 100;
    let before = kernel.statistics();
    assert_eq!(kernel.write_user(pid, out, base, len), Ok(len));
    let after = kernel.statistics();
    assert_eq!(after.user_bytes_lent - before.user_bytes_lent, len as u64);
    assert_eq!(after.vm.loans - before.vm.loans, 1);
    kernel.close(pid, out).unwrap();
    let mut want = stamped(0, len as u64, 0);
    want[3 * PAGE_SIZE..3 * PAGE_SIZE + 10].fill(0xee);
    assert!(
        file_bytes(kernel, pid, "/n/b/copy") == want,
        "the copy differs"
    );
    // The store is still the mapping's, and reaches the file at msync.
    kernel.msync(pid, base, 65 * PAGE).unwrap();
    assert!(file_bytes(kernel, pid, "/n/b/file") == want);
    check(kernel);
}

#[test]
fn loans_in_a_pipe_go_back_when_its_last_reader_leaves() {
    let setup = setup(16 * PAGE);
    let (kernel, pid) = (&setup.kernel, setup.init);
    let fd = kernel.open(pid, "/n/a/file", OpenMode::RDWR).unwrap();
    let base = map(kernel, pid, Some(fd), 16 * PAGE, true);
    let (rfd, wfd) = kernel.pipe(pid).unwrap();
    // Full: 16 pages lent in one chunk.
    assert_eq!(
        kernel.write_user(pid, wfd, base, 16 * PAGE_SIZE),
        Ok(16 * PAGE_SIZE)
    );
    assert_eq!(kernel.pipe_buffered(pid, rfd), Ok((16 * PAGE_SIZE, 1)));
    assert_eq!(kernel.statistics().vm.pages_lent, 16);
    // The file truncated away meanwhile: the pages are orphans, the pipe's alone.
    kernel.ftruncate(pid, fd, 0).unwrap();
    assert_eq!(kernel.statistics().vm.orphan_pages, 16);
    check(kernel);
    kernel.close(pid, rfd).unwrap();
    let stats = kernel.statistics().vm;
    assert_eq!((stats.pages_lent, stats.orphan_pages), (0, 0));
    assert_eq!(
        kernel.write_user(pid, wfd, base, 16 * PAGE_SIZE),
        Err(hosted::KernelError::BrokenPipe)
    );
    check(kernel);
}
