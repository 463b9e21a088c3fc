//! Directories: unlinkat of files and empty directories, getdents in pages resumed at
//! the opaque offset.

use super::*;

#[test]
fn unlinkat_removes_files_and_empty_directories() {
    let mut rig = Rig::new();
    rig.mkdir(ALICE, "d", 0o755);
    rig.file(ALICE, "d/f", 0o644, b"still here");
    let open = rig.open(ALICE, "d/f", O_RDONLY).unwrap();
    let root = rig.root;
    assert_eq!(rig.call(rig.req.unlinkat(ALICE, root, "d", 0)), Err(EISDIR));
    assert_eq!(
        rig.call(rig.req.unlinkat(ALICE, root, "d", AT_REMOVEDIR)),
        Err(ENOTEMPTY)
    );
    assert_eq!(
        rig.call(rig.req.unlinkat(ALICE, root, "d/f", AT_REMOVEDIR)),
        Err(ENOTDIR)
    );
    assert_eq!(rig.call(rig.req.unlinkat(BOB, root, "d/f", 0)), Err(EACCES));
    assert_eq!(rig.call(rig.req.unlinkat(ALICE, root, "d/f", 0)), Ok(0));
    assert_eq!(rig.open(ALICE, "d/f", O_RDONLY), Err(ENOENT));
    // An unlinked file lives on while a handle holds it.
    assert_eq!(rig.read(ALICE, open, 0, 100).unwrap(), b"still here");
    assert_eq!(
        rig.call(rig.req.unlinkat(ALICE, root, "d", AT_REMOVEDIR)),
        Ok(0)
    );
    assert_eq!(
        rig.call(rig.req.unlinkat(ALICE, root, "d", AT_REMOVEDIR)),
        Err(ENOENT)
    );
    let nodes = rig.fs.lock().node_count();
    rig.close(open);
    assert_eq!(
        rig.fs.lock().node_count(),
        nodes - 1,
        "the last close frees it"
    );
}

#[test]
fn getdents_lists_in_pages_and_resumes_at_the_opaque_offset() {
    let mut rig = Rig::new();
    rig.mkdir(ALICE, "d", 0o755);
    rig.mkdir(ALICE, "d/sub", 0o755);
    for name in ["a", "b", "c"] {
        rig.file(ALICE, &format!("d/{name}"), 0o644, b"");
    }
    let d = rig.open(ALICE, "d", O_DIRECTORY | O_RDONLY).unwrap();
    let mut all = vec![0u8; 4096];
    let n = rig.call(rig.req.getdents(ALICE, d, &mut all, 0)).unwrap();
    let entries = dirents(&all, n);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["sub", "a", "b", "c"]);
    assert_eq!(
        entries[0].3, 4,
        "sub is a directory (DirentKind::Directory)"
    );
    assert_eq!(entries[1].3, 8, "a is a regular file (DirentKind::Regular)");
    let sub = rig.open(ALICE, "d/sub", O_STAT).unwrap();
    assert_eq!(entries[0].1, rig.fstat(ALICE, sub).unwrap().st_ino);

    // A buffer for two records at a time: partial answers, resumed by the last opaque id.
    let mut seen = Vec::new();
    let mut opaque = 0;
    loop {
        let mut small = vec![0u8; 2 * 32];
        let n = rig
            .call(rig.req.std_getdents(ALICE, d, &mut small, opaque))
            .unwrap();
        if n == 0 {
            break;
        }
        let page = dirents(&small, n);
        assert!(page.len() <= 2);
        opaque = page.last().unwrap().2;
        seen.extend(page.into_iter().map(|e| e.0));
    }
    assert_eq!(seen, ["sub", "a", "b", "c"]);

    let mut tiny = vec![0u8; 8];
    assert_eq!(
        rig.call(rig.req.getdents(ALICE, d, &mut tiny, 0)),
        Err(EINVAL)
    );
    let f = rig.open(ALICE, "d/a", O_RDONLY).unwrap();
    assert_eq!(
        rig.call(rig.req.getdents(ALICE, f, &mut all, 0)),
        Err(ENOTDIR)
    );
}
