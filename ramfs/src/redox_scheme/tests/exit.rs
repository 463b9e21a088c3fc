//! The exit rule: the scheme ends when the root is closed and nothing is left, lent
//! pages alone keep it.

use super::*;

#[test]
fn exits_when_the_root_is_closed_and_nothing_is_left() {
    let mut rig = Rig::new();
    rig.file(ALICE, "prog", 0o755, &[1u8; 100]);
    let id = rig.open(ALICE, "prog", O_RDONLY).unwrap();
    let read = MapFlags::PROT_READ | MapFlags::MAP_PRIVATE;
    rig.call(rig.req.mmap_prep(ALICE, id, 0, 100, read))
        .unwrap();
    assert!(!rig.handler.may_exit(), "still registered");
    let root = rig.root;
    rig.close(root);
    assert!(!rig.handler.may_exit(), "a handle and a mapping are left");
    assert_eq!(
        rig.open(ALICE, "prog", O_RDONLY),
        Err(EBADF),
        "the root is gone"
    );
    // The kernel unmaps first, then closes the description the mapping held.
    assert_eq!(
        rig.call(rig.req.munmap(ALICE, id, 0, 100, MunmapFlags::empty())),
        Ok(0)
    );
    assert!(!rig.handler.may_exit(), "the handle is still open");
    rig.close(id);
    assert_eq!(rig.handler.open_handles(), 0);
    assert!(rig.handler.may_exit());
}

#[test]
fn lent_pages_alone_keep_the_daemon() {
    let mut rig = Rig::new();
    rig.file(ALICE, "f", 0o644, b"x");
    let id = rig.open(ALICE, "f", O_RDONLY).unwrap();
    let read = MapFlags::PROT_READ | MapFlags::MAP_PRIVATE;
    rig.call(rig.req.mmap_prep(ALICE, id, 0, 1, read)).unwrap();
    let root = rig.root;
    rig.close(root);
    // A close before the unmap does not happen on Redox (the mapping holds the
    // description), but the rule does not rely on that.
    rig.close(id);
    assert!(!rig.handler.may_exit(), "a page is still lent");
}

#[test]
fn closing_handles_before_the_root_does_not_end_the_scheme() {
    let mut rig = Rig::new();
    let id = rig.open(ALICE, "f", O_CREAT | O_RDWR | 0o644).unwrap();
    rig.close(id);
    assert!(!rig.handler.may_exit());
    rig.close(id);
    assert!(!rig.handler.may_exit(), "a repeated close changes nothing");
    let root = rig.root;
    rig.close(root);
    assert!(rig.handler.may_exit());
}
