//! Pages lent for mappings: contiguous counted windows, what cannot be lent, holes
//! filled, truncation refused past lent pages, removed files and vacant slots kept until
//! the loans come back.

use super::*;

const PAGE: u64 = PAGE_SIZE as u64;

/// A file `name` of `pages` full pages, page `i` filled with byte `i + 1`.
fn dense_file(t: &mut Tree, who: &Cred, name: &str, pages: u64) -> NodeId {
    let root = t.root();
    let f = file(t, who, root, name, 0o755);
    for i in 0..pages {
        t.write(who, f, i * PAGE, &[i as u8 + 1; PAGE_SIZE], false)
            .unwrap();
    }
    f
}

fn addr(p: NonNull<Page>) -> usize {
    p.as_ptr() as usize
}

#[test]
fn lent_windows_are_contiguous_and_counted() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let f = dense_file(&mut t, &u, "prog", 6);
    let used = t.statfs().used;
    let text = t.lend_pages(f, 0, 4).unwrap();
    assert_eq!(addr(text) % PAGE_SIZE, 0);
    let data = t.lend_pages(f, 3, 3).unwrap();
    assert_eq!(addr(data), addr(text) + 3 * PAGE_SIZE, "one run holds both");
    assert_eq!(t.lent_pages(), 7);
    assert_eq!(t.page_loans(f, 3), Ok(2));
    assert_eq!(t.statfs().used, used, "moving pages together costs nothing");
    for i in 0..6 {
        let (at, first) = t
            .with_page(f, i, |p| p.map(|p| (p as *const Page as usize, p.0[0])))
            .unwrap()
            .expect("a page");
        assert_eq!(at, addr(text) + i as usize * PAGE_SIZE);
        assert_eq!(first, i as u8 + 1);
    }
    assert_eq!(t.return_pages(f, 0, 4), Ok(0));
    assert_eq!(t.return_pages(f, 3, 3), Ok(0));
    assert_eq!(t.return_pages(f, 3, 3), Ok(3), "given back twice");
    assert_eq!(t.lent_pages(), 0);
    assert_eq!(t.statfs().used, used);
}

#[test]
fn lending_refuses_what_it_cannot_lend() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let root = t.root();
    let d = mkdir(&mut t, &u, root, "d", 0o755);
    let f = dense_file(&mut t, &u, "f", 1);
    assert_eq!(t.lend_pages(d, 0, 1), Err(Error::IsDir));
    assert_eq!(t.lend_pages(f, 1, 1), Err(Error::PastEnd));
    assert_eq!(t.lend_pages(f, 0, 0), Err(Error::PastEnd));
    assert_eq!(t.lend_pages(f, u64::MAX, 2), Err(Error::PastEnd));
    assert_eq!(t.lend_pages(999, 0, 1), Err(Error::NotFound));
    // A page lent alone where it was pins it; a window around it cannot move it.
    t.write(&u, f, 2 * PAGE, b"x", false).unwrap();
    t.lend_pages(f, 0, 1).unwrap();
    assert_eq!(t.lend_pages(f, 0, 3), Err(Error::Busy));
    assert_eq!(t.lent_pages(), 1);
}

#[test]
fn lending_a_hole_fills_it_without_touching_times_or_version() {
    let limit = 64 * PAGE;
    let mut t = tree_with_limit(limit);
    let u = t.cred_for_uid(1000, None);
    let root = t.root();
    let f = file(&mut t, &u, root, "sparse", 0o644);
    let grow = SetAttrs {
        size: Some(3 * PAGE),
        ..Default::default()
    };
    t.setattr(&u, f, grow).unwrap();
    let before = t.attr(f).unwrap();
    let used = t.statfs().used;
    let p = t.lend_pages(f, 1, 2).unwrap();
    let after = t.attr(f).unwrap();
    assert_eq!(
        after.blocks,
        2 * PAGE / 512,
        "two pages now hold the window"
    );
    assert_eq!(
        (after.size, after.version, after.mtime, after.ctime),
        (before.size, before.version, before.mtime, before.ctime)
    );
    assert_eq!(t.statfs().used, used + 2 * PAGE);
    assert_eq!(t.read(f, 0, usize::MAX).unwrap(), vec![0; 3 * PAGE_SIZE]);
    assert_eq!(
        t.with_page(f, 2, |p| p.map(|p| p as *const Page as usize))
            .unwrap(),
        Some(addr(p) + PAGE_SIZE)
    );
    // A hole that does not fit is refused, and nothing is lent or taken.
    let big = t
        .create(&u, root, "big", NewNode::new(NewKind::File, 0o644))
        .unwrap();
    let huge = SetAttrs {
        size: Some(limit),
        ..Default::default()
    };
    t.setattr(&u, big, huge).unwrap();
    let used = t.statfs().used;
    assert_eq!(t.lend_pages(big, 0, 64), Err(Error::NoSpace));
    assert_eq!((t.statfs().used, t.lent_pages()), (used, 2));
}

#[test]
fn truncation_past_lent_pages_fails_in_every_form() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let p9 = t.cred_for_name("glenda").unwrap();
    let f = dense_file(&mut t, &u, "text", 4);
    t.setattr(
        &u,
        f,
        SetAttrs {
            perm: Some(0o777),
            ..Default::default()
        },
    )
    .unwrap();
    t.lend_pages(f, 2, 1).unwrap();
    let v = t.attr(f).unwrap().version;
    let shrink = |size| SetAttrs {
        size: Some(size),
        ..Default::default()
    };
    // 9P2000.L Tsetattr, Redox ftruncate.
    assert_eq!(t.setattr(&u, f, shrink(2 * PAGE)), Err(Error::TextBusy));
    // 9P2000 Twstat length.
    let w = Wstat {
        length: Some(0),
        ..Default::default()
    };
    assert_eq!(t.wstat(&p9, f, w), Err(Error::TextBusy));
    // Topen/Tlopen with truncation, Redox O_TRUNC.
    let trunc = OpenMode {
        write: true,
        truncate: true,
        ..Default::default()
    };
    assert_eq!(t.open(&u, f, trunc, true), Err(Error::TextBusy));
    let a = t.attr(f).unwrap();
    assert_eq!((a.size, a.version), (4 * PAGE, v), "nothing changed");
    assert_eq!(Error::TextBusy.ename(), "file in use");
    assert_eq!(Error::TextBusy.errno(), ninep::errno::ETXTBSY);
    // Shrinking that keeps the lent page is fine, and so is growing.
    t.setattr(&u, f, shrink(2 * PAGE + 1)).unwrap();
    t.setattr(&u, f, shrink(8 * PAGE)).unwrap();
    assert_eq!(t.return_pages(f, 2, 1), Ok(0));
    t.open(&u, f, trunc, true).unwrap();
    assert_eq!(t.attr(f).unwrap().size, 0);
}

#[test]
fn a_removed_file_lives_until_its_lent_pages_come_back() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let root = t.root();
    let before = t.statfs().used;
    let f = dense_file(&mut t, &u, "prog", 3);
    let p = t.lend_pages(f, 0, 3).unwrap();
    t.unlink(&u, root, "prog", UnlinkKind::NonDir).unwrap();
    assert!(t.exists(f), "no name and no reference, but mapped");
    // SAFETY: `p` is the first of three pages of `f` that the tree lent and has not had
    // back, so they are allocated and in place; nothing else uses the tree meanwhile.
    let mapped = unsafe { std::slice::from_raw_parts(p.as_ptr() as *const u8, 3 * PAGE_SIZE) };
    assert_eq!((mapped[0], mapped[2 * PAGE_SIZE]), (1, 3));
    assert_eq!(t.return_pages(f, 0, 2), Ok(0));
    assert!(t.exists(f), "one page still lent");
    assert_eq!(t.return_pages(f, 2, 1), Ok(0));
    assert!(!t.exists(f));
    assert_eq!(t.statfs().used, before, "every byte given back");
    assert_eq!(t.lent_pages(), 0);
}

#[test]
fn vacant_slots_of_a_lent_run_are_counted_until_it_is_free() {
    let mut t = tree();
    let u = t.cred_for_uid(1000, None);
    let f = dense_file(&mut t, &u, "f", 4);
    let used = t.statfs().used;
    t.lend_pages(f, 0, 1).unwrap();
    let shrink = |size| SetAttrs {
        size: Some(size),
        ..Default::default()
    };
    // Pages 1..4 leave the file but stay allocated in the run that page 0 pins.
    t.setattr(&u, f, shrink(PAGE)).unwrap();
    assert_eq!(t.attr(f).unwrap().blocks, PAGE / 512);
    assert_eq!(t.statfs().used, used, "still held");
    assert_eq!(t.return_pages(f, 0, 1), Ok(0));
    assert_eq!(t.statfs().used, used - 3 * PAGE, "freed with the last loan");
}
