//! mmap_prep: the file's own pages lent where they stay, alignment, range and access,
//! holes, multi-page runs, refusals, and truncation of lent pages.

use super::*;

/// Reads `len` bytes at an address `mmap_prep` returned, within the mapped window.
fn peek(addr: usize, len: usize) -> Vec<u8> {
    // SAFETY: `addr..addr + len` lies within one window of file pages that the handler
    // has lent and not had back (each caller reads only a window it mapped and has not
    // unmapped), so the tree keeps those pages allocated, side by side and in place;
    // nothing writes them during this read (the test is single-threaded and sends no
    // request meanwhile).
    unsafe { std::slice::from_raw_parts(addr as *const u8, len).to_vec() }
}

#[test]
fn mmap_prep_lends_the_files_own_page_where_it_stays() {
    let mut rig = Rig::new();
    rig.file(ALICE, "f", 0o644, b"page zero");
    let id = rig.open(ALICE, "f", O_RDWR).unwrap();
    let prot = MapFlags::PROT_READ | MapFlags::MAP_SHARED;
    let addr = rig
        .call(rig.req.mmap_prep(ALICE, id, 0, 100, prot))
        .unwrap();
    assert_eq!(addr % PAGE_SIZE, 0, "page-aligned, as the kernel demands");
    assert_eq!(peek(addr, 9), b"page zero");
    assert_eq!(rig.handler.lent_pages(), 1);
    // Writes through the scheme land in the very page that is mapped...
    assert_eq!(rig.write(ALICE, id, b"PAGE", 0), Ok(4));
    assert_eq!(peek(addr, 9), b"PAGE zero");
    // ...and growing the file elsewhere does not move it.
    assert_eq!(
        rig.write(ALICE, id, &[1u8; 3 * PAGE_SIZE], PAGE_SIZE as u64),
        Ok(3 * PAGE_SIZE)
    );
    let again = rig
        .call(rig.req.mmap_prep(ALICE, id, 0, PAGE_SIZE, prot))
        .unwrap();
    assert_eq!(again, addr);
    assert_eq!(
        rig.handler.lent_pages(),
        2,
        "two mappings of one page are two loans"
    );
    assert_eq!(peek(addr, 9), b"PAGE zero");
    let unmap = MunmapFlags::empty();
    assert_eq!(
        rig.call(rig.req.munmap(ALICE, id, 0, PAGE_SIZE, unmap)),
        Ok(0)
    );
    assert_eq!(rig.call(rig.req.munmap(ALICE, id, 0, 100, unmap)), Ok(0));
    assert_eq!(rig.handler.lent_pages(), 0);
    // A page never lent coming back is logged, not counted below zero.
    assert_eq!(
        rig.call(rig.req.munmap(ALICE, id, 0, PAGE_SIZE, unmap)),
        Ok(0)
    );
    assert_eq!(rig.handler.lent_pages(), 0);
}

#[test]
fn mmap_prep_checks_alignment_range_and_access() {
    let mut rig = Rig::new();
    rig.mkdir(ALICE, "d", 0o755);
    rig.file(ALICE, "f", 0o666, &[9u8; 10]);
    let r = rig.open(ALICE, "f", O_RDONLY).unwrap();
    let w = rig.open(ALICE, "f", O_WRONLY).unwrap();
    let d = rig.open(ALICE, "d", O_DIRECTORY | O_RDONLY).unwrap();
    let read = MapFlags::PROT_READ | MapFlags::MAP_PRIVATE;
    let shared_write = MapFlags::PROT_READ | MapFlags::PROT_WRITE | MapFlags::MAP_SHARED;
    let private_write = MapFlags::PROT_READ | MapFlags::PROT_WRITE | MapFlags::MAP_PRIVATE;
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, r, 100, 10, read)),
        Err(EINVAL)
    );
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, r, 0, 0, read)),
        Err(EINVAL)
    );
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, r, PAGE_SIZE as u64, 10, read)),
        Err(ENXIO)
    );
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, w, 0, 10, read)),
        Err(EACCES)
    );
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, r, 0, 10, shared_write)),
        Err(EACCES)
    );
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, d, 0, 10, read)),
        Err(EACCES)
    );
    assert_eq!(rig.handler.lent_pages(), 0, "nothing lent by a refusal");
    // Copy-on-write needs only read access.
    assert!(rig
        .call(rig.req.mmap_prep(ALICE, r, 0, 10, private_write))
        .is_ok());
    assert_eq!(rig.handler.lent_pages(), 1);
}

#[test]
fn a_hole_gets_a_page_when_it_is_mapped() {
    let mut rig = Rig::new();
    let id = rig.open(ALICE, "sparse", O_CREAT | O_RDWR | 0o644).unwrap();
    assert_eq!(
        rig.call(rig.req.ftruncate(ALICE, id, 2 * PAGE_SIZE as u64)),
        Ok(0)
    );
    assert_eq!(rig.fstat(ALICE, id).unwrap().st_blocks, 0, "all hole");
    let shared = MapFlags::PROT_READ | MapFlags::PROT_WRITE | MapFlags::MAP_SHARED;
    let off = PAGE_SIZE as u64;
    let addr = rig
        .call(rig.req.mmap_prep(ALICE, id, off, PAGE_SIZE, shared))
        .unwrap();
    assert_eq!(addr % PAGE_SIZE, 0);
    assert_eq!(peek(addr, PAGE_SIZE), vec![0u8; PAGE_SIZE]);
    let st = rig.fstat(ALICE, id).unwrap();
    assert_eq!(
        (st.st_size, st.st_blocks),
        (2 * PAGE_SIZE as u64, 8),
        "one page, same length"
    );
}

#[test]
fn a_multi_page_mapping_is_one_run_of_the_files_pages() {
    let mut rig = Rig::new();
    // An executable: text in pages 0..3, data in 2..5 sharing page 2 with the text.
    let image: Vec<u8> = (0..5 * PAGE_SIZE)
        .map(|i| (i / PAGE_SIZE) as u8 + 1)
        .collect();
    rig.file(ALICE, "prog", 0o755, &image);
    let id = rig.open(ALICE, "prog", O_RDWR).unwrap();
    let exec = MapFlags::PROT_READ | MapFlags::PROT_EXEC | MapFlags::MAP_PRIVATE;
    let text = rig
        .call(rig.req.mmap_prep(ALICE, id, 0, 3 * PAGE_SIZE, exec))
        .expect("one run for three pages");
    assert_eq!(text % PAGE_SIZE, 0);
    assert_eq!(peek(text, 3 * PAGE_SIZE), image[..3 * PAGE_SIZE]);
    let data_flags = MapFlags::PROT_READ | MapFlags::PROT_WRITE | MapFlags::MAP_PRIVATE;
    let data = rig
        .call(rig.req.mmap_prep(
            ALICE,
            id,
            2 * PAGE_SIZE as u64,
            2 * PAGE_SIZE + 1,
            data_flags,
        ))
        .expect("the data window lies in the same run");
    assert_eq!(data, text + 2 * PAGE_SIZE);
    assert_eq!(rig.handler.lent_pages(), 6);
    // The file grows and is written elsewhere: the mapped pages neither move nor change.
    assert_eq!(
        rig.write(ALICE, id, &[7u8; PAGE_SIZE], 9 * PAGE_SIZE as u64),
        Ok(PAGE_SIZE)
    );
    assert_eq!(peek(text, 3 * PAGE_SIZE), image[..3 * PAGE_SIZE]);
    // A write into a mapped page is seen through the mapping.
    assert_eq!(rig.write(ALICE, id, b"patched", PAGE_SIZE as u64), Ok(7));
    assert_eq!(peek(text + PAGE_SIZE, 7), b"patched");
    let unmap = MunmapFlags::empty();
    assert_eq!(
        rig.call(rig.req.munmap(ALICE, id, 0, 3 * PAGE_SIZE, unmap)),
        Ok(0)
    );
    assert_eq!(
        rig.call(
            rig.req
                .munmap(ALICE, id, 2 * PAGE_SIZE as u64, 2 * PAGE_SIZE + 1, unmap)
        ),
        Ok(0)
    );
    assert_eq!(rig.handler.lent_pages(), 0);
}

#[test]
fn a_mapping_that_would_move_a_mapped_page_is_refused_whole() {
    let mut rig = Rig::new();
    let id = rig.open(ALICE, "f", O_CREAT | O_RDWR | 0o644).unwrap();
    // Pages 0 and 2 hold data, page 1 is a hole: three runs of one page.
    assert_eq!(rig.write(ALICE, id, &[1u8; PAGE_SIZE], 0), Ok(PAGE_SIZE));
    assert_eq!(
        rig.write(ALICE, id, &[3u8; PAGE_SIZE], 2 * PAGE_SIZE as u64),
        Ok(PAGE_SIZE)
    );
    let read = MapFlags::PROT_READ | MapFlags::MAP_SHARED;
    rig.call(rig.req.mmap_prep(ALICE, id, 0, PAGE_SIZE, read))
        .expect("page 0 in place");
    assert_eq!(
        rig.call(rig.req.mmap_prep(ALICE, id, 0, 3 * PAGE_SIZE, read)),
        Err(EBUSY)
    );
    assert_eq!(rig.handler.lent_pages(), 1, "nothing more lent");
    let unmap = MunmapFlags::empty();
    assert_eq!(
        rig.call(rig.req.munmap(ALICE, id, 0, PAGE_SIZE, unmap)),
        Ok(0)
    );
    let all = rig
        .call(rig.req.mmap_prep(ALICE, id, 0, 3 * PAGE_SIZE, read))
        .expect("movable once unmapped");
    assert_eq!(peek(all, 1), [1]);
    assert_eq!(peek(all + PAGE_SIZE, PAGE_SIZE), vec![0u8; PAGE_SIZE]);
    assert_eq!(peek(all + 2 * PAGE_SIZE, 1), [3]);
}

#[test]
fn lent_pages_are_not_truncated_away() {
    let mut rig = Rig::new();
    rig.file(ALICE, "text", 0o755, &[0x90u8; 2 * PAGE_SIZE]);
    let id = rig.open(ALICE, "text", O_RDWR).unwrap();
    let exec = MapFlags::PROT_READ | MapFlags::PROT_EXEC | MapFlags::MAP_PRIVATE;
    let off = PAGE_SIZE as u64;
    let addr = rig
        .call(rig.req.mmap_prep(ALICE, id, off, PAGE_SIZE, exec))
        .unwrap();
    assert_eq!(rig.call(rig.req.ftruncate(ALICE, id, 10)), Err(ETXTBSY));
    assert_eq!(rig.open(ALICE, "text", O_WRONLY | O_TRUNC), Err(ETXTBSY));
    // Shrinking that keeps the lent page is fine.
    assert_eq!(rig.call(rig.req.ftruncate(ALICE, id, off + 10)), Ok(0));
    assert_eq!(peek(addr, 10), [0x90u8; 10]);
    assert_eq!(
        rig.call(
            rig.req
                .munmap(ALICE, id, off, PAGE_SIZE, MunmapFlags::empty())
        ),
        Ok(0)
    );
    assert_eq!(rig.call(rig.req.ftruncate(ALICE, id, 0)), Ok(0));
}
