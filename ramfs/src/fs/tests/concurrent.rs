//! The split tree lock under real threads: a staged race that shows reads of one file
//! and writes to another going on while a read is inside the tree, and a stress run of
//! reads, writes, truncations, creations, removals and walks over many files, after
//! which a checker recounts the tree's memory, link counts and sizes.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc;
use std::sync::Barrier;
use std::thread;

use super::*;

fn user(fs: &Fs) -> Cred {
    fs.lock().cred_for_uid(1000, None)
}

/// A read of file A holds its data lock (it waits inside its callback) while another
/// thread reads A and writes B: both finish before the first read lets go. With one
/// tree mutex, the second thread waits for the first read and the deadline passes.
#[test]
fn a_read_in_progress_lets_other_reads_of_its_file_and_writes_to_others_through() {
    let fs = shared_fs(64 * MIB);
    let who = user(&fs);
    let root = fs.lock().root();
    let (a, b) = {
        let mut t = fs.lock();
        let a = file(&mut t, &who, root, "a", 0o666);
        let b = file(&mut t, &who, root, "b", 0o666);
        t.write(&who, a, 0, &[7; 8192], false).unwrap();
        (a, b)
    };
    let (fs, who) = (&fs, &who);
    let (inside_tx, inside_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    let overtaken = thread::scope(|s| {
        s.spawn(move || {
            let tree = fs.lock_shared();
            let mut first = true;
            tree.read_with(a, 0, 8192, |_| {
                if first {
                    first = false;
                    inside_tx.send(()).unwrap();
                    // Held until the other thread is through, or the deadline.
                    let _ = release_rx.recv_timeout(STEP_DEADLINE);
                }
            })
            .unwrap();
        });
        inside_rx
            .recv_timeout(STEP_DEADLINE)
            .expect("the first read began");
        s.spawn(move || {
            let mut got = Vec::new();
            fs.lock_shared()
                .read_with(a, 0, 8192, |bytes| got.extend_from_slice(bytes))
                .unwrap();
            assert_eq!(got, vec![7; 8192]);
            assert_eq!(fs.write(who, b, 0, &[9; 4096], false), Ok(4096));
            done_tx.send(()).unwrap();
        });
        let overtaken = done_rx.recv_timeout(STEP_DEADLINE).is_ok();
        // Unblocks the first read whatever happened, so the scope's joins return.
        let _ = release_tx.send(());
        overtaken
    });
    assert!(
        overtaken,
        "the second read and the write waited for the first read to finish"
    );
    assert_eq!(fs.lock().read(b, 0, 4096).unwrap(), vec![9; 4096]);
}

/// A read through an open fid's handle waits inside its callback (holding the file's
/// data lock) while another thread creates a file in another directory, renames it and
/// sets its attributes under the exclusive tree lock: all of that finishes before the
/// read lets go. A read that held the tree's shared lock (as `Tree::read_with` does)
/// keeps the create waiting until the deadline.
#[test]
fn a_read_in_progress_does_not_hold_up_metadata_changes_elsewhere() {
    let fs = shared_fs(64 * MIB);
    let who = user(&fs);
    let root = fs.lock().root();
    let (a, d) = {
        let mut t = fs.lock();
        let e = mkdir(&mut t, &who, root, "e", 0o777);
        let a = file(&mut t, &who, e, "a", 0o666);
        t.write(&who, a, 0, &[7; 8192], false).unwrap();
        (a, mkdir(&mut t, &who, root, "d", 0o777))
    };
    let handle = fs.lock_shared().file_handle(a).expect("a regular file");
    let (fs, who, handle) = (&fs, &who, &handle);
    let (inside_tx, inside_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    let (through, read) = thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut got = Vec::new();
            let mut first = true;
            handle.read_with(0, 8192, |bytes| {
                if first {
                    first = false;
                    inside_tx.send(()).unwrap();
                    // Held until the other thread is through, or the deadline.
                    let _ = release_rx.recv_timeout(STEP_DEADLINE);
                }
                got.extend_from_slice(bytes);
            });
            got
        });
        inside_rx
            .recv_timeout(STEP_DEADLINE)
            .expect("the read began");
        s.spawn(move || {
            let mut t = fs.lock();
            let n = file(&mut t, who, d, "new", 0o600);
            t.rename(who, d, "new", d, "newer").unwrap();
            let set = SetAttrs {
                perm: Some(0o640),
                ..Default::default()
            };
            t.setattr(who, n, set).unwrap();
            drop(t);
            done_tx.send(()).unwrap();
        });
        let through = done_rx.recv_timeout(STEP_DEADLINE).is_ok();
        // Unblocks the read whatever happened, so the scope's joins return.
        let _ = release_tx.send(());
        (through, reader.join().unwrap())
    });
    assert!(
        through,
        "the create in another directory waited for a read of a file"
    );
    assert_eq!(read, vec![7; 8192]);
}

/// A truncation under the exclusive lock while a read through a handle is inside the
/// file's data: the read sees the file whole (the exclusive tree lock no longer means
/// nobody holds a data lock, so the truncation takes the data lock like everyone), and
/// after it the handle reads an empty file and the pages have left the account.
#[test]
fn a_truncation_meets_a_read_through_a_handle_whole() {
    let fs = shared_fs(64 * MIB);
    let who = user(&fs);
    let root = fs.lock().root();
    let a = {
        let mut t = fs.lock();
        let a = file(&mut t, &who, root, "a", 0o666);
        t.write(&who, a, 0, &[3; 3 * PAGE_SIZE], false).unwrap();
        a
    };
    let used = fs.lock().statfs().used;
    let handle = fs.lock_shared().file_handle(a).expect("a regular file");
    let (fs, who, handle) = (&fs, &who, &handle);
    let (inside_tx, inside_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let read = thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut got = Vec::new();
            let mut first = true;
            handle.read_with(0, 3 * PAGE_SIZE, |bytes| {
                if first {
                    first = false;
                    inside_tx.send(()).unwrap();
                    let _ = release_rx.recv_timeout(STEP_DEADLINE);
                }
                got.extend_from_slice(bytes);
            });
            got
        });
        inside_rx
            .recv_timeout(STEP_DEADLINE)
            .expect("the read began");
        let truncate = s.spawn(move || {
            let set = SetAttrs {
                size: Some(0),
                ..Default::default()
            };
            fs.lock().setattr(who, a, set).unwrap();
        });
        let _ = release_tx.send(());
        truncate.join().unwrap();
        reader.join().unwrap()
    });
    assert_eq!(read, vec![3; 3 * PAGE_SIZE], "the read saw the file whole");
    assert_eq!(
        handle.read_with(0, PAGE_SIZE, |_| {}),
        0,
        "then it is empty"
    );
    assert_eq!(fs.lock().statfs().used, used - 3 * PAGE_SIZE as u64);
}

/// A write by someone whose write takes a set-id bit away goes through the exclusive
/// lock, and the bit goes, as under one lock.
#[test]
fn a_write_that_clears_setid_takes_the_exclusive_path() {
    let fs = shared_fs(64 * MIB);
    let root = fs.lock().root();
    let owner = user(&fs);
    let other = fs.lock().cred_for_uid(1001, None);
    let f = {
        let mut t = fs.lock();
        let f = file(&mut t, &owner, root, "prog", 0o4777);
        assert!(t.write_changes_perm(&other, f));
        let superuser = t.cred_for_uid(0, None);
        assert!(
            !t.write_changes_perm(&superuser, f),
            "root's write keeps the bits"
        );
        f
    };
    assert_eq!(fs.write(&other, f, 0, b"x", false), Ok(1));
    assert_eq!(fs.lock().attr(f).unwrap().perm, 0o777);
    assert!(!fs.lock().write_changes_perm(&other, f));
}

/// Bytes of one stress slot: every write fills one whole slot with one byte value, and
/// sizes only ever change by whole slots, so a read of a slot sees one write or none.
const SLOT: usize = 16 * 1024;
const SLOTS: u64 = 8;
const FILES: usize = 12;
const THREADS: usize = 4;
const OPS: usize = if cfg!(debug_assertions) { 1500 } else { 6000 };

/// xorshift64: a fixed, seedable sequence, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the stress threads saw, for the report and the checks after.
#[derive(Default)]
struct Seen {
    reads: AtomicUsize,
    /// Of the reads, those through a handle.
    handle_reads: AtomicUsize,
    /// Of the writes, those through a handle.
    handle_writes: AtomicUsize,
    writes: AtomicUsize,
    no_space: AtomicUsize,
    /// Most reads found inside one file's data at once (reported, not asserted: the
    /// scheduler decides; the staged test above proves the overlap).
    most_readers_at_once: AtomicUsize,
}

#[test]
fn many_threads_over_many_files_keep_the_tree_consistent() {
    // Tight enough that writes hit the limit: 12 files of up to 8 slots would need
    // 1.5 MiB.
    let fs = shared_fs(1024 * 1024);
    let who = user(&fs);
    let root = fs.lock().root();
    let (files, dirs) = {
        let mut t = fs.lock();
        let files: Vec<NodeId> = (0..FILES)
            .map(|i| file(&mut t, &who, root, &format!("f{i}"), 0o666))
            .collect();
        let dirs: Vec<NodeId> = (0..THREADS)
            .map(|i| mkdir(&mut t, &who, root, &format!("d{i}"), 0o777))
            .collect();
        (files, dirs)
    };
    // Half the reads and writes go through open fids' handles (no tree lock), as the 9P
    // server's do.
    let handles: Vec<FileHandle> = files
        .iter()
        .map(|&f| fs.lock_shared().file_handle(f).expect("a regular file"))
        .collect();
    let seen = Seen::default();
    let readers: Vec<AtomicUsize> = (0..FILES).map(|_| AtomicUsize::new(0)).collect();
    let start = Barrier::new(THREADS);
    thread::scope(|s| {
        for me in 0..THREADS {
            let (fs, who, files, handles, dirs, seen, readers, start) =
                (&fs, &who, &files, &handles, &dirs, &seen, &readers, &start);
            s.spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (me as u64 + 1));
                start.wait();
                for op in 0..OPS {
                    let i = rng.below(FILES as u64) as usize;
                    let (f, slot) = (files[i], rng.below(SLOTS));
                    let offset = slot * SLOT as u64;
                    match rng.below(10) {
                        0..=3 => {
                            let byte = 1 + rng.below(255) as u8;
                            let written = if rng.below(2) == 0 {
                                seen.handle_writes.fetch_add(1, Ordering::Relaxed);
                                match handles[i].write(who, offset, &[byte; SLOT], false) {
                                    Ok(Some(n)) => Ok(n),
                                    Ok(None) => panic!("no set-id bit to take away"),
                                    Err(e) => Err(e),
                                }
                            } else {
                                fs.write(who, f, offset, &[byte; SLOT], false)
                            };
                            match written {
                                Ok(n) => assert_eq!(n as usize, SLOT),
                                Err(Error::NoSpace) => {
                                    seen.no_space.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e) => panic!("write: {e:?}"),
                            }
                            seen.writes.fetch_add(1, Ordering::Relaxed);
                        }
                        4..=6 => {
                            let mut got = Vec::with_capacity(SLOT);
                            let mut entered = false;
                            let put = |bytes: &[u8]| {
                                if !entered {
                                    entered = true;
                                    let now = readers[i].fetch_add(1, Ordering::AcqRel) + 1;
                                    seen.most_readers_at_once.fetch_max(now, Ordering::Relaxed);
                                }
                                got.extend_from_slice(bytes);
                            };
                            if rng.below(2) == 0 {
                                handles[i].read_with(offset, SLOT, put);
                                seen.handle_reads.fetch_add(1, Ordering::Relaxed);
                            } else {
                                fs.lock_shared().read_with(f, offset, SLOT, put).unwrap();
                            }
                            if entered {
                                readers[i].fetch_sub(1, Ordering::AcqRel);
                            }
                            assert!(got.is_empty() || got.len() == SLOT, "a partial slot");
                            assert!(
                                got.iter().all(|&x| x == got[0]),
                                "a read saw two writes' bytes in one slot (a torn write)"
                            );
                            seen.reads.fetch_add(1, Ordering::Relaxed);
                        }
                        7 => {
                            let size = Some(rng.below(SLOTS + 1) * SLOT as u64);
                            let set = SetAttrs {
                                size,
                                ..Default::default()
                            };
                            fs.lock().setattr(who, f, set).unwrap();
                        }
                        8 => {
                            // Metadata churn in this thread's own directory.
                            let name = format!("t{op}");
                            let mut t = fs.lock();
                            match t.create(who, dirs[me], &name, NewNode::new(NewKind::File, 0o666))
                            {
                                Ok(n) => {
                                    if rng.below(2) == 0 {
                                        let _ = t.write(who, n, 0, b"tmp", false);
                                    }
                                    if rng.below(4) != 0 {
                                        t.unlink(who, dirs[me], &name, UnlinkKind::NonDir).unwrap();
                                    }
                                }
                                Err(Error::NoSpace) => {}
                                Err(e) => panic!("create: {e:?}"),
                            }
                        }
                        _ => {
                            // A walk to a new fid: lookup and reference under the
                            // shared lock, the reference dropped under the exclusive.
                            let n = {
                                let tree = fs.lock_shared();
                                let n = tree.lookup(who, root, &format!("f{i}")).unwrap();
                                tree.incref(n).unwrap();
                                n
                            };
                            fs.lock().decref(n);
                        }
                    }
                }
            });
        }
    });
    let mut t = fs.lock();
    check_tree(&mut t);
    for &f in &files {
        assert_eq!(
            t.node(f).unwrap().refs(),
            0,
            "every walk's reference dropped"
        );
        assert_eq!(t.attr(f).unwrap().size % SLOT as u64, 0);
    }
    eprintln!(
        "stress: {} reads ({} through handles), {} writes ({} through handles, {} out of space), at most {} readers in one file at once",
        seen.reads.load(Ordering::Relaxed),
        seen.handle_reads.load(Ordering::Relaxed),
        seen.writes.load(Ordering::Relaxed),
        seen.handle_writes.load(Ordering::Relaxed),
        seen.no_space.load(Ordering::Relaxed),
        seen.most_readers_at_once.load(Ordering::Relaxed),
    );
    assert!(seen.reads.load(Ordering::Relaxed) > 0 && seen.writes.load(Ordering::Relaxed) > 0);
    assert!(seen.handle_reads.load(Ordering::Relaxed) > 0);
    assert!(seen.handle_writes.load(Ordering::Relaxed) > 0);
}

/// Recounts what the memory account, the link counts and the file sizes must be, from
/// the nodes themselves (no user names were registered, nothing is pending).
fn check_tree(t: &mut Tree) {
    let root = t.root();
    let mut expected = 0u64;
    let mut named: HashMap<NodeId, Vec<(NodeId, String)>> = HashMap::new();
    let ids: Vec<NodeId> = t.nodes.keys().copied().collect();
    for &id in &ids {
        let n = t.nodes.get_mut(&id).unwrap();
        if id != root {
            expected += NODE_COST + content_cost(&n.content);
        }
        expected += n
            .xattrs
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum::<u64>();
        expected += n.locks.memory_cost();
        match &mut n.content {
            Content::File(f) => {
                expected += f.read().held_pages() * PAGE_SIZE as u64;
            }
            Content::Dir(d) => {
                for (_, name, child) in d.after(0) {
                    expected += name.len() as u64;
                    named.entry(child).or_default().push((id, name.to_owned()));
                }
            }
            _ => {}
        }
    }
    for &id in &ids {
        let n = t.node(id).unwrap();
        let mut links = n.links.clone();
        let mut by_entries = named.remove(&id).unwrap_or_default();
        links.sort();
        by_entries.sort();
        assert_eq!(
            links, by_entries,
            "node {id}'s links and the entries naming it"
        );
        if let Content::Dir(d) = &n.content {
            let subdirs = d
                .after(0)
                .filter(|(_, _, c)| t.node(*c).is_ok_and(Node::is_dir))
                .count() as u64;
            assert_eq!(d.subdirs(), subdirs, "directory {id}'s subdirectory count");
        }
        if id != root && n.links.is_empty() {
            assert!(
                n.refs() > 0 || n.lent_pages() > 0,
                "node {id} is unnamed and unused"
            );
        }
    }
    assert!(named.is_empty(), "entries naming nodes that do not exist");
    assert_eq!(t.memory.used(), expected, "the memory account");
    assert!(t.memory.used() <= t.memory.limit());
}
