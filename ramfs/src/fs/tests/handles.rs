//! Writes through a [`FileHandle`] (an open fid's, no tree lock): the node's permission
//! bits and `DMAPPEND` flag as the tree last stored them in the data cell decide the
//! set-id rule and where an append goes, a write that must take set-id bits away is
//! handed back for the exclusive lock, a node that is gone takes no write (nor memory),
//! and a write goes through while a metadata change elsewhere holds the tree.

use std::sync::mpsc;
use std::thread;

use super::*;

#[test]
fn a_write_through_a_handle_changes_data_size_and_stamps() {
    let fs = shared_fs(64 * MIB);
    let who = fs.lock().cred_for_uid(1000, None);
    let root = fs.lock().root();
    let f = file(&mut fs.lock(), &who, root, "f", 0o644);
    let h = fs.lock_shared().file_handle(f).unwrap();
    let before = fs.lock().attr(f).unwrap();
    let used = fs.lock().statfs().used;
    assert_eq!(h.write(&who, 4090, b"0123456789", false), Ok(Some(10)));
    let after = fs.lock().attr(f).unwrap();
    assert_eq!(after.size, 4100);
    assert_ne!(after.version, before.version);
    assert_eq!(fs.lock().read(f, 4090, 10).unwrap(), b"0123456789");
    assert_eq!(fs.lock().statfs().used, used + 2 * PAGE_SIZE as u64);
    // Past the limit: nothing changes.
    let huge = vec![1u8; 65 * MIB as usize];
    assert_eq!(h.write(&who, 0, &huge, false), Err(Error::NoSpace));
    assert_eq!(fs.lock().attr(f).unwrap().size, 4100);
}

/// A set-id bit set after the handle was made reaches it: another user's write through
/// it is handed back (`None`, nothing written) and, through `Fs::write`, takes the bit
/// away as a write under the tree lock does. Root's write keeps it, through the handle.
#[test]
fn a_write_that_would_clear_setid_is_handed_to_the_exclusive_lock() {
    let fs = shared_fs(64 * MIB);
    let owner = fs.lock().cred_for_uid(1000, None);
    let other = fs.lock().cred_for_uid(1001, None);
    let root_user = fs.lock().cred_for_uid(0, None);
    let root = fs.lock().root();
    let f = file(&mut fs.lock(), &owner, root, "prog", 0o777);
    let h = fs.lock_shared().file_handle(f).unwrap();
    assert_eq!(
        h.write(&other, 0, b"a", false),
        Ok(Some(1)),
        "no set-id bit yet"
    );
    let set = SetAttrs {
        perm: Some(0o4777),
        ..Default::default()
    };
    fs.lock().setattr(&owner, f, set).unwrap();
    assert_eq!(h.write(&root_user, 0, b"b", false), Ok(Some(1)));
    assert_eq!(fs.lock().attr(f).unwrap().perm, 0o4777);
    assert_eq!(h.write(&other, 0, b"c", false), Ok(None));
    assert_eq!(fs.lock().read(f, 0, 1).unwrap(), b"b", "nothing written");
    assert_eq!(fs.write(&other, f, 0, b"c", false), Ok(1));
    assert_eq!(fs.lock().attr(f).unwrap().perm, 0o777, "the bit went");
    assert_eq!(
        h.write(&other, 0, b"d", false),
        Ok(Some(1)),
        "and the handle knows"
    );
}

/// `DMAPPEND` set by a wstat after the handle was made sends its writes to the end.
#[test]
fn dmappend_set_later_sends_handle_writes_to_the_end() {
    let fs = shared_fs(64 * MIB);
    let who = fs.lock().cred_for_name("glenda").unwrap();
    let root = fs.lock().root();
    let f = file(&mut fs.lock(), &who, root, "log", 0o666);
    let h = fs.lock_shared().file_handle(f).unwrap();
    assert_eq!(h.write(&who, 0, b"one", false), Ok(Some(3)));
    let w = Wstat {
        mode: Some(WstatMode {
            is_dir: false,
            perm: 0o666,
            append: true,
            excl: false,
            tmp: false,
        }),
        ..Default::default()
    };
    fs.lock().wstat(&who, f, w).unwrap();
    assert_eq!(h.write(&who, 0, b"two", false), Ok(Some(3)));
    assert_eq!(fs.lock().read(f, 0, 16).unwrap(), b"onetwo");
}

/// A handle that outlives its node (unlinked, no reference left: the tree destroyed it)
/// reads nothing and writes nothing, and charges nothing to the memory account.
#[test]
fn a_handle_of_a_node_that_is_gone_takes_no_write() {
    let fs = shared_fs(64 * MIB);
    let who = fs.lock().cred_for_uid(1000, None);
    let root = fs.lock().root();
    let f = file(&mut fs.lock(), &who, root, "f", 0o644);
    let h = fs.lock_shared().file_handle(f).unwrap();
    assert_eq!(h.write(&who, 0, &[5; 8192], false), Ok(Some(8192)));
    let used = fs.lock().statfs().used;
    fs.lock()
        .unlink(&who, root, "f", UnlinkKind::NonDir)
        .unwrap();
    let after = fs.lock().statfs().used;
    assert!(
        after < used - 2 * PAGE_SIZE as u64,
        "the pages left the account"
    );
    assert_eq!(h.read_with(0, 8192, |_| {}), 0);
    assert_eq!(h.write(&who, 0, &[6; 8192], false), Err(Error::NotFound));
    assert_eq!(fs.lock().statfs().used, after);
}

/// A create in one directory holds the exclusive tree lock (staged: the guard is kept)
/// while a write through a handle of a file in another directory finishes. A write
/// that takes the shared tree lock (`Fs::write`) waits for the create until the deadline.
#[test]
fn a_write_goes_through_while_a_metadata_change_elsewhere_holds_the_tree() {
    let fs = shared_fs(64 * MIB);
    let who = fs.lock().cred_for_uid(1000, None);
    let root = fs.lock().root();
    let (f, d) = {
        let mut t = fs.lock();
        let e = mkdir(&mut t, &who, root, "e", 0o777);
        (
            file(&mut t, &who, e, "f", 0o644),
            mkdir(&mut t, &who, root, "d", 0o777),
        )
    };
    let h = fs.lock_shared().file_handle(f).unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let mut t = fs.lock();
    file(&mut t, &who, d, "new", 0o644);
    let through = thread::scope(|s| {
        let (h, who) = (&h, &who);
        s.spawn(move || {
            let written = h.write(who, 0, &[9; 4096], false);
            let _ = done_tx.send(written);
        });
        let through = done_rx.recv_timeout(STEP_DEADLINE);
        // Lets a write stuck on the tree lock go, so the scope's join returns.
        drop(t);
        through
    });
    assert_eq!(
        through,
        Ok(Ok(Some(4096))),
        "the write waited for the create in another directory"
    );
    assert_eq!(fs.lock().read(f, 0, 4096).unwrap(), vec![9; 4096]);
}

/// A page buffer of `byte`s, and where its bytes are.
fn page_of_bytes(byte: u8) -> (PageBuf, usize) {
    let mut page = PageBuf::new();
    page.bytes_mut().fill(byte);
    let at = page.bytes().as_ptr() as usize;
    (page, at)
}

/// A gathered write through a handle takes its pages as the file's and charges them;
/// one past the memory limit fails and changes nothing: not the size, not the bytes
/// (the pages it would have replaced are still the file's), not the account.
#[test]
fn a_gathered_write_through_a_handle_is_charged_and_refused_past_the_limit() {
    let fs = shared_fs(MIB);
    let who = fs.lock().cred_for_uid(1000, None);
    let root = fs.lock().root();
    let f = file(&mut fs.lock(), &who, root, "f", 0o644);
    let h = fs.lock_shared().file_handle(f).unwrap();
    let used = fs.lock().statfs().used;
    let (a, a_at) = page_of_bytes(1);
    let (b, b_at) = page_of_bytes(2);
    let mut data = Gathered {
        head: b"",
        pages: vec![a, b],
        tail: b"xyz",
    };
    let mut spare = Vec::new();
    let written = h.write_gathered(&who, 0, &mut data, false, &mut spare);
    assert_eq!(written, Ok(Some(2 * PAGE_SIZE as u32 + 3)));
    assert!(data.is_empty(), "the data was used up");
    assert!(spare.is_empty(), "nothing copied, nothing replaced");
    let addr = |i| h.data.read().page(i).map(|p| p.0.as_ptr() as usize);
    assert_eq!((addr(0), addr(1)), (Some(a_at), Some(b_at)));
    assert_eq!(fs.lock().statfs().used, used + 3 * PAGE_SIZE as u64);
    let before = fs.lock().read(f, 0, usize::MAX).unwrap();
    let used = fs.lock().statfs().used;

    // Over the three pages and on past the end: one page more than there is room for.
    let stats = fs.lock().statfs();
    let pages = (stats.limit - stats.used) / PAGE_SIZE as u64 + 4;
    let mut data = Gathered {
        head: b"",
        pages: (0..pages).map(|i| page_of_bytes(i as u8).0).collect(),
        tail: b"",
    };
    let mut spare = Vec::new();
    assert_eq!(
        h.write_gathered(&who, 0, &mut data, false, &mut spare),
        Err(Error::NoSpace)
    );
    assert!(spare.is_empty());
    assert_eq!(fs.lock().attr(f).unwrap().size, 2 * PAGE_SIZE as u64 + 3);
    assert_eq!(fs.lock().read(f, 0, usize::MAX).unwrap(), before);
    assert_eq!((addr(0), addr(1)), (Some(a_at), Some(b_at)));
    assert_eq!(fs.lock().statfs().used, used);
}

/// A gathered write that would take a set-id bit away is handed back (`None`) with its
/// data as it came, for the caller to write through the tree; the file is untouched.
#[test]
fn a_gathered_write_that_would_clear_setid_leaves_its_data_alone() {
    let fs = shared_fs(64 * MIB);
    let owner = fs.lock().cred_for_uid(1000, None);
    let other = fs.lock().cred_for_uid(1001, None);
    let root = fs.lock().root();
    let f = file(&mut fs.lock(), &owner, root, "prog", 0o777);
    let h = fs.lock_shared().file_handle(f).unwrap();
    assert_eq!(h.write(&owner, 0, b"old", false), Ok(Some(3)));
    let set = SetAttrs {
        perm: Some(0o4777),
        ..Default::default()
    };
    fs.lock().setattr(&owner, f, set).unwrap();
    let used = fs.lock().statfs().used;
    let (page, at) = page_of_bytes(7);
    let (head, tail) = (vec![1u8; 100], vec![2u8; 5]);
    let mut data = Gathered {
        head: &head,
        pages: vec![page],
        tail: &tail,
    };
    let mut spare = Vec::new();
    assert_eq!(
        h.write_gathered(&other, 0, &mut data, false, &mut spare),
        Ok(None)
    );
    assert_eq!(data.head, &head[..]);
    assert_eq!(data.tail, &tail[..]);
    assert_eq!(data.pages.len(), 1);
    assert_eq!(data.pages[0].bytes().as_ptr() as usize, at, "the same page");
    assert!(data.pages[0].bytes().iter().all(|&b| b == 7));
    assert!(spare.is_empty());
    assert_eq!(fs.lock().read(f, 0, usize::MAX).unwrap(), b"old");
    assert_eq!(fs.lock().attr(f).unwrap().perm, 0o4777);
    assert_eq!(fs.lock().statfs().used, used);
}
