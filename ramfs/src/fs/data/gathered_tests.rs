//! Tests of `FileData::write_gathered`: a gathered write leaves the file as a plain
//! `write` of the same bytes would (bytes, length, page counts), its received pages
//! become the file's pages where they can, and every buffer it does not keep (a copied
//! page, a page it replaced that no reply held) comes back in `spare` and nowhere else.

use std::collections::HashSet;

use super::super::{Piece, SharedPages};
use super::*;

/// The file's bytes as a plain vector, written and truncated as the file is.
#[derive(Default)]
struct Model(Vec<u8>);

impl Model {
    fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset as usize + data.len();
        if self.0.len() < end {
            self.0.resize(end, 0);
        }
        self.0[offset as usize..end].copy_from_slice(data);
    }
}

/// A page buffer filled with `seed`, `seed + 1`, ….
fn page_buf(seed: u8) -> PageBuf {
    let mut page = PageBuf::new();
    for (i, b) in page.bytes_mut().iter_mut().enumerate() {
        *b = seed.wrapping_add(i as u8);
    }
    page
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed ^ (i as u8).wrapping_mul(3)).collect()
}

fn buf_addr(page: &PageBuf) -> usize {
    page.bytes().as_ptr() as usize
}

/// Where the file keeps page `index`, if it holds data.
fn page_addr(f: &FileData, index: u64) -> Option<usize> {
    f.page(index).map(|p| p.0.as_ptr() as usize)
}

fn counts(f: &FileData) -> (u64, u64, u64) {
    (f.size(), f.allocated_pages(), f.held_pages())
}

/// The whole runs a read of `offset..offset + count` hands out, kept as a reply keeps
/// them, and the bytes the read saw.
fn hold(f: &FileData, offset: u64, count: usize) -> (Vec<SharedPages>, Vec<u8>) {
    let mut held = Vec::new();
    let mut seen = Vec::new();
    f.read_pieces(
        offset,
        count,
        crate::fs::PIECE_SHARE_MIN,
        |piece| match piece {
            Piece::Bytes(b) => seen.extend_from_slice(b),
            Piece::Pages(pages) => {
                pages.pages().for_each(|p| seen.extend_from_slice(p));
                held.push(pages);
            }
        },
    );
    (held, seen)
}

fn held_bytes(held: &[SharedPages]) -> Vec<u8> {
    let mut out = Vec::new();
    for pages in held {
        pages.pages().for_each(|p| out.extend_from_slice(p));
    }
    out
}

/// A file, a twin given the same plain writes, and their model.
struct Files {
    f: FileData,
    twin: FileData,
    model: Model,
}

impl Files {
    fn new(writes: &[(u64, Vec<u8>)]) -> Files {
        let mut files = Files {
            f: FileData::default(),
            twin: FileData::default(),
            model: Model::default(),
        };
        for (offset, data) in writes {
            files.write(*offset, data);
        }
        files
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        self.f.write(offset, data);
        self.twin.write(offset, data);
        self.model.write(offset, data);
    }

    /// `write_gathered` to the file, `write` of the same bytes to the twin; checks that
    /// the memory check's count is what the file grew by. Returns the spare buffers.
    fn write_gathered(&mut self, offset: u64, data: Gathered<'_>) -> Vec<PageBuf> {
        let flat = data.to_vec();
        let needed = self.f.pages_needed(offset, flat.len());
        assert_eq!(needed, self.twin.pages_needed(offset, flat.len()));
        let held_before = self.f.held_pages();
        let mut spare = Vec::new();
        self.f.write_gathered(offset, data, &mut spare);
        assert_eq!(
            self.f.held_pages() - held_before,
            needed,
            "pages_needed is what the write allocated"
        );
        self.twin.write(offset, &flat);
        self.model.write(offset, &flat);
        spare
    }

    /// The file reads as the model and the twin, with the twin's counts.
    fn check(&self) {
        assert_eq!(self.f.read(0, usize::MAX), self.model.0, "file vs model");
        assert_eq!(self.twin.read(0, usize::MAX), self.model.0, "twin vs model");
        assert_eq!(counts(&self.f), counts(&self.twin), "size, live, held");
    }
}

/// A gathered write to try: the plain writes before it, its offset, its head's length,
/// its pages and its tail's length.
type Case = (Vec<(u64, Vec<u8>)>, u64, usize, u64, usize);

#[test]
fn aligned_gathered_writes_take_the_received_pages_over_holes_and_one_page_runs() {
    let cases: [Case; 4] = [
        // Over holes only, past the end.
        (vec![], 0, 0, 5, 0),
        // Over one-page runs only (each page written on its own).
        (
            (0..4)
                .map(|i| (i * PAGE, bytes(PAGE_SIZE, i as u8)))
                .collect(),
            0,
            0,
            4,
            0,
        ),
        // Mixed: a head ending on a page, runs and holes under the pages, a tail over
        // an existing page and past the end.
        (
            vec![
                (0, bytes(PAGE_SIZE + 10, 1)),
                (3 * PAGE, bytes(PAGE_SIZE, 2)),
                (6 * PAGE, bytes(100, 3)),
            ],
            PAGE + 4000,
            96,
            4,
            200,
        ),
        // Into the middle of a file with a head reaching from the page before.
        (
            vec![(0, bytes(10 * PAGE_SIZE, 4))],
            2 * PAGE + 1,
            PAGE_SIZE - 1,
            3,
            5,
        ),
    ];
    for (case, (before, offset, head_len, pages, tail_len)) in cases.into_iter().enumerate() {
        let mut files = Files::new(&before);
        let head = bytes(head_len, 0x40);
        let tail = bytes(tail_len, 0x80);
        let bufs: Vec<PageBuf> = (0..pages).map(|i| page_buf(i as u8 * 16)).collect();
        let addrs: Vec<usize> = bufs.iter().map(buf_addr).collect();
        let first = page_of(offset + head_len as u64);
        let replaced_runs = (first..first + pages)
            .filter(|&i| files.f.page(i).is_some())
            .count();
        let gathered = Gathered {
            head: &head,
            pages: bufs,
            tail: &tail,
        };
        let spare = files.write_gathered(offset, gathered);
        files.check();
        for (i, addr) in addrs.iter().enumerate() {
            assert_eq!(
                page_addr(&files.f, first + i as u64),
                Some(*addr),
                "case {case}: received page {i} is the file's page"
            );
        }
        assert_eq!(
            spare.len(),
            replaced_runs,
            "case {case}: the pages replaced come back"
        );
        assert_eq!(files.f.replaced_while_held(), 0);
    }
}

#[test]
fn replaced_pages_come_back_unless_a_reply_holds_them() {
    let mut files = Files::new(&[(0, bytes(4 * PAGE_SIZE, 9))]);
    let old: Vec<usize> = (0..4).map(|i| page_addr(&files.f, i).unwrap()).collect();
    // A reply holds page 1 (a run of its own).
    let (held, seen) = hold(&files.f, PAGE, PAGE_SIZE);
    assert_eq!(held.len(), 1, "page 1 is handed whole");
    let bufs: Vec<PageBuf> = (0..4).map(|i| page_buf(0xA0 + i)).collect();
    let new: Vec<usize> = bufs.iter().map(buf_addr).collect();
    let spare = files.write_gathered(
        0,
        Gathered {
            pages: bufs,
            ..Default::default()
        },
    );
    files.check();
    let back: HashSet<usize> = spare.iter().map(buf_addr).collect();
    assert_eq!(spare.len(), 3, "pages 0, 2 and 3");
    assert_eq!(back, HashSet::from([old[0], old[2], old[3]]));
    assert!(!back.contains(&old[1]), "the held page stays the reply's");
    assert_eq!(
        held_bytes(&held),
        seen,
        "the reply still sends the old bytes"
    );
    assert_eq!(held[0].slots.as_ptr() as usize, old[1]);
    assert_eq!(files.f.replaced_while_held(), 1);
    for (i, addr) in new.iter().enumerate() {
        assert_eq!(page_addr(&files.f, i as u64), Some(*addr));
    }
}

#[test]
fn a_lent_page_is_written_in_place_and_its_buffer_comes_back() {
    // Page 1 alone between holes, lent: a run of one page that must stay put.
    let mut files = Files::new(&[(PAGE, bytes(PAGE_SIZE, 5))]);
    let lent = files.f.lend(1, 2, |_| Ok::<(), ()>(())).expect("lent");
    files.twin.lend(1, 2, |_| Ok::<(), ()>(())).expect("lent");
    let before = page_addr(&files.f, 1);
    assert_eq!(before, Some(lent.as_ptr() as usize));
    let bufs: Vec<PageBuf> = (0..3).map(|i| page_buf(0x10 * i + 1)).collect();
    let addrs: Vec<usize> = bufs.iter().map(buf_addr).collect();
    let spare = files.write_gathered(
        0,
        Gathered {
            pages: bufs,
            ..Default::default()
        },
    );
    files.check();
    assert_eq!(page_addr(&files.f, 1), before, "the lent page did not move");
    // SAFETY: the page is lent, so it is where it was and stays there; nothing writes
    // it while the test reads it (as a mapping's load).
    let through_loan = unsafe { (*lent.as_ptr()).0 };
    assert_eq!(&through_loan[..], &files.model.0[PAGE_SIZE..2 * PAGE_SIZE]);
    assert_eq!(spare.len(), 1);
    assert_eq!(
        buf_addr(&spare[0]),
        addrs[1],
        "the copied buffer comes back"
    );
    assert_eq!(page_addr(&files.f, 0), Some(addrs[0]), "holes take theirs");
    assert_eq!(page_addr(&files.f, 2), Some(addrs[2]));
    assert_eq!(files.f.give_back(1, 2).unmatched, 0);
}

#[test]
fn a_page_inside_a_run_of_several_is_copied_in_place() {
    // Four pages merged into one run by a loan, given back: the run stays.
    let mut files = Files::new(&[(0, bytes(4 * PAGE_SIZE, 6))]);
    for f in [&mut files.f, &mut files.twin] {
        f.lend(0, 4, |_| Ok::<(), ()>(())).expect("lent");
        f.give_back(0, 4);
    }
    assert_eq!(files.f.runs.len(), 1, "one run of four pages");
    let before: Vec<Option<usize>> = (0..4).map(|i| page_addr(&files.f, i)).collect();
    // A reply holding the whole run keeps what it saw (the run is copied once).
    let (held, seen) = hold(&files.f, 0, 4 * PAGE_SIZE);
    assert_eq!(held.len(), 1);
    let buf = page_buf(0x77);
    let addr = buf_addr(&buf);
    let spare = files.write_gathered(
        2 * PAGE,
        Gathered {
            pages: vec![buf],
            ..Default::default()
        },
    );
    files.check();
    assert_eq!(spare.len(), 1);
    assert_eq!(buf_addr(&spare[0]), addr, "the buffer comes back");
    assert_eq!(held_bytes(&held), seen);
    assert_eq!(files.f.replaced_while_held(), 1, "the held run, copied");
    drop(held);
    // Not held any more: the run's first page (where a run of one would start) is
    // written where it is too.
    let at = (0..4).map(|i| page_addr(&files.f, i)).collect::<Vec<_>>();
    assert_ne!(at, before, "the copy took the held run's place");
    let buf = page_buf(0x99);
    let spare = files.write_gathered(
        0,
        Gathered {
            pages: vec![buf],
            ..Default::default()
        },
    );
    files.check();
    assert_eq!(spare.len(), 1);
    assert_eq!(
        (0..4).map(|i| page_addr(&files.f, i)).collect::<Vec<_>>(),
        at
    );
    assert_eq!(files.f.runs.len(), 1, "still one run");
    assert_eq!(files.f.replaced_while_held(), 1);
}

#[test]
fn a_misaligned_gathered_write_copies_every_page_and_returns_every_buffer() {
    let cases: [Case; 3] = [
        (vec![], 0, 100, 3, 50),
        (vec![(0, bytes(5 * PAGE_SIZE, 7))], 10, 0, 2, 0),
        (
            vec![(2 * PAGE, bytes(30, 8))],
            PAGE - 1,
            2,
            4,
            PAGE_SIZE - 1,
        ),
    ];
    for (case, (before, offset, head_len, pages, tail_len)) in cases.into_iter().enumerate() {
        let mut files = Files::new(&before);
        let head = bytes(head_len, 0x21);
        let tail = bytes(tail_len, 0x42);
        let bufs: Vec<PageBuf> = (0..pages).map(|i| page_buf(i as u8 * 5 + 3)).collect();
        let addrs: HashSet<usize> = bufs.iter().map(buf_addr).collect();
        let spare = files.write_gathered(
            offset,
            Gathered {
                head: &head,
                pages: bufs,
                tail: &tail,
            },
        );
        files.check();
        let back: HashSet<usize> = spare.iter().map(buf_addr).collect();
        assert_eq!(spare.len(), pages as usize, "case {case}");
        assert_eq!(back, addrs, "case {case}: every buffer, and only those");
    }
}

/// xorshift64*: a fixed sequence of choices, the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Addresses of every page the file holds data in.
fn file_pages(f: &FileData) -> HashSet<usize> {
    (0..f.size().div_ceil(PAGE))
        .filter_map(|i| page_addr(f, i))
        .collect()
}

#[test]
fn random_gathered_writes_match_plain_writes_and_a_byte_model() {
    let (mut adopted, mut returned, mut recycled, mut replaced) = (0usize, 0usize, 0usize, 0u64);
    for seed in 1..=30u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut files = Files::new(&[]);
        // Replies held on both files alike: (file's, twin's, the bytes they hold).
        let mut replies: Vec<(Vec<SharedPages>, Vec<SharedPages>, Vec<u8>)> = Vec::new();
        let mut loans: Vec<(u64, u64, usize)> = Vec::new();
        let span = 32u64;
        for step in 0..300 {
            match rng.below(12) {
                0..=4 => {
                    let mut offset = rng.below(span * PAGE);
                    let head_len = match rng.below(3) {
                        // Ending on a page, so the pages are aligned.
                        0 | 1 => (PAGE - offset % PAGE) % PAGE,
                        _ => rng.below(PAGE),
                    } as usize;
                    if rng.below(3) == 0 {
                        offset -= offset % PAGE;
                    }
                    let head = bytes(head_len, rng.next() as u8);
                    let tail = bytes(rng.below(PAGE + 1) as usize, rng.next() as u8);
                    let seed_byte = rng.next() as u8;
                    let bufs: Vec<PageBuf> = (0..rng.below(20))
                        .map(|i| page_buf(seed_byte.wrapping_add(i as u8)))
                        .collect();
                    let given: HashSet<usize> = bufs.iter().map(buf_addr).collect();
                    let count = bufs.len();
                    let was = file_pages(&files.f);
                    let spare = files.write_gathered(
                        offset,
                        Gathered {
                            head: &head,
                            pages: bufs,
                            tail: &tail,
                        },
                    );
                    let now = file_pages(&files.f);
                    let kept = given.intersection(&now).count();
                    adopted += kept;
                    returned += spare.len();
                    for page in &spare {
                        let at = buf_addr(page);
                        assert!(
                            !now.contains(&at),
                            "seed {seed} step {step}: a spare buffer is still a file page"
                        );
                        assert!(
                            !replies
                                .iter()
                                .flat_map(|(held, _, _)| held)
                                .any(|p| p.slots.as_ptr() as usize == at),
                            "seed {seed} step {step}: a spare buffer is held by a reply"
                        );
                    }
                    let back: HashSet<usize> = spare.iter().map(buf_addr).collect();
                    assert_eq!(back.len(), spare.len(), "no buffer twice");
                    let old: Vec<&usize> = back.difference(&given).collect();
                    assert!(
                        old.iter().all(|at| was.contains(at)),
                        "seed {seed} step {step}: a spare buffer neither received nor the file's"
                    );
                    recycled += old.len();
                    assert_eq!(
                        kept + given.intersection(&back).count(),
                        count,
                        "seed {seed} step {step}: each received page kept or given back"
                    );
                }
                5 | 6 => {
                    let offset = rng.below(span * PAGE);
                    let data = bytes(1 + rng.below(3 * PAGE) as usize, rng.next() as u8);
                    files.write(offset, &data);
                }
                7 => {
                    let size = rng.below(span * PAGE);
                    let a = files.f.truncate(size);
                    assert_eq!(a.is_ok(), files.twin.truncate(size).is_ok());
                    if a.is_ok() {
                        files.model.0.resize(size as usize, 0);
                    }
                }
                8 => {
                    let mut offset = rng.below(span * PAGE);
                    offset -= offset % PAGE;
                    let count = rng.below(24 * PAGE) as usize;
                    let (held, seen) = hold(&files.f, offset, count);
                    let (twin_held, twin_seen) = hold(&files.twin, offset, count);
                    assert_eq!(seen, twin_seen);
                    let at = (offset as usize).min(files.model.0.len());
                    let end = (at + count).min(files.model.0.len());
                    assert!(
                        seen == files.model.0[at..end],
                        "seed {seed} step {step}: read"
                    );
                    // What the reply holds, as it must stay.
                    let kept = held_bytes(&held);
                    assert_eq!(kept, held_bytes(&twin_held));
                    replies.push((held, twin_held, kept));
                }
                9 => {
                    if !replies.is_empty() {
                        replies.swap_remove(rng.below(replies.len() as u64) as usize);
                    }
                }
                10 => {
                    let have = files.f.size().div_ceil(PAGE);
                    if have > 0 {
                        let first = rng.below(have);
                        let end = first + 1 + rng.below((have - first).min(4));
                        let a = files.f.lend(first, end, |_| Ok::<(), ()>(()));
                        let b = files.twin.lend(first, end, |_| Ok::<(), ()>(()));
                        assert_eq!(a.is_ok(), b.is_ok(), "seed {seed} step {step}: lend");
                        if let Ok(at) = a {
                            loans.push((first, end, at.as_ptr() as usize));
                        }
                    }
                }
                _ => {
                    if !loans.is_empty() {
                        let (first, end, _) =
                            loans.swap_remove(rng.below(loans.len() as u64) as usize);
                        assert_eq!(files.f.give_back(first, end).unmatched, 0);
                        assert_eq!(files.twin.give_back(first, end).unmatched, 0);
                    }
                }
            }
            files.check();
            assert_eq!(
                files.f.replaced_while_held(),
                files.twin.replaced_while_held(),
                "seed {seed} step {step}: replaced while held"
            );
            for (held, twin_held, seen) in &replies {
                assert!(held_bytes(held) == *seen, "seed {seed} step {step}: reply");
                assert!(held_bytes(twin_held) == *seen);
            }
            for &(first, _, at) in &loans {
                assert_eq!(
                    page_addr(&files.f, first),
                    Some(at),
                    "seed {seed} step {step}: a lent page moved"
                );
            }
        }
        replaced += files.f.replaced_while_held();
    }
    // The run took pages, gave some back and replaced held ones, or it proved little.
    assert!(adopted > 1000, "pages adopted: {adopted}");
    assert!(returned > 1000, "buffers returned: {returned}");
    assert!(recycled > 500, "replaced pages returned: {recycled}");
    assert!(replaced > 50, "runs replaced while held: {replaced}");
}
