//! Tests of the pages a read hands to a reply (`FileData::read_pieces`): which runs are
//! handed whole, that what a reply holds never changes (copy on write, counted), that
//! the held counts stay the file's, and that a new page written whole is the data.
//! A seeded random run of writes, truncations, loans and reads checks all of it against
//! a model of the bytes.

use super::*;

const PAGE_BYTES: usize = PAGE_SIZE;

/// What a reply built from `read_pieces` holds: the bytes it sends, and how many
/// whole runs it holds rather than copies.
struct Reply {
    parts: Vec<Part>,
}

enum Part {
    Copied(Vec<u8>),
    Held(SharedPages),
}

impl Reply {
    fn of(f: &FileData, offset: u64, count: usize) -> (Reply, usize) {
        Reply::with_piece_min(f, offset, count, crate::fs::PIECE_SHARE_MIN)
    }

    fn with_piece_min(f: &FileData, offset: u64, count: usize, min: usize) -> (Reply, usize) {
        let mut parts = Vec::new();
        let n = f.read_pieces(offset, count, min, |piece| match piece {
            Piece::Bytes(bytes) => parts.push(Part::Copied(bytes.to_vec())),
            Piece::Pages(pages) => parts.push(Part::Held(pages)),
        });
        (Reply { parts }, n)
    }

    /// The bytes the reply would send now.
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Copied(bytes) => out.extend_from_slice(bytes),
                Part::Held(pages) => pages.pages().for_each(|p| out.extend_from_slice(p)),
            }
        }
        out
    }

    fn held_runs(&self) -> usize {
        self.parts
            .iter()
            .filter(|p| matches!(p, Part::Held(_)))
            .count()
    }

    fn held_bytes(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Held(pages) => pages.len(),
                Part::Copied(_) => 0,
            })
            .sum()
    }
}

/// A file of `pages` pages written a page at a time (a run each), page `i` holding
/// bytes `i * 7 + j + seed`.
fn patterned(pages: u64, seed: u8) -> FileData {
    let mut f = FileData::default();
    f.write(0, &pattern(pages as usize * PAGE_BYTES, seed));
    f
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i / PAGE_BYTES) as u8).wrapping_mul(7) ^ (i as u8).wrapping_add(seed))
        .collect()
}

#[test]
fn a_read_hands_whole_runs_and_large_pieces_of_one_page_runs_and_copies_small_ones() {
    let f = patterned(8, 1);
    let all = pattern(8 * PAGE_BYTES, 1);
    // Aligned: every page is a run of its own, all held.
    let (r, n) = Reply::of(&f, 0, 8 * PAGE_BYTES);
    assert_eq!(n, 8 * PAGE_BYTES);
    assert_eq!(r.held_runs(), 8);
    assert_eq!(r.bytes(), all);
    // Unaligned at both ends: the 3,996 bytes of page 0 are held (a piece of at least
    // 2 KiB of a one-page run), the 6 pages between too, the 100 bytes of page 7 copied.
    let (start, len) = (100, 7 * PAGE_BYTES);
    let (r, n) = Reply::of(&f, start as u64, len);
    assert_eq!(n, len);
    assert_eq!(r.held_runs(), 7, "page 0 in part, pages 1..7 whole");
    assert_eq!(
        r.held_bytes(),
        6 * PAGE_BYTES + PAGE_BYTES - 100,
        "held: the bytes sent, no more"
    );
    assert_eq!(r.bytes(), &all[start..start + len]);
    // Past the end: clipped; page 6 from its second byte held, page 7 whole.
    let (r, n) = Reply::of(&f, 6 * PAGE + 1, 10 * PAGE_BYTES);
    assert_eq!(n, 2 * PAGE_BYTES - 1);
    assert_eq!(r.held_runs(), 2);
    assert_eq!(r.bytes(), &all[6 * PAGE_BYTES + 1..]);
    // Pieces below 2 KiB at both ends: copied.
    let (start, len) = (3 * PAGE_BYTES - 2047, 2 * PAGE_BYTES + 2047 + 2047);
    let (r, _) = Reply::of(&f, start as u64, len);
    assert_eq!(r.held_runs(), 2, "pages 3 and 4 whole only");
    assert_eq!(r.bytes(), &all[start..start + len]);
}

#[test]
fn holes_lent_runs_and_runs_read_in_part_are_copied() {
    let mut f = patterned(12, 2);
    // A hole at page 12..14, then a page.
    f.write(14 * PAGE, &[9; PAGE_BYTES]);
    // Pages 0..4 lent: merged into one run of the whole dense stretch 0..12.
    f.lend(0, 4, |_| Ok::<(), ()>(())).expect("lent");
    let mut want = pattern(12 * PAGE_BYTES, 2);
    want.extend_from_slice(&[0; 2 * PAGE_BYTES]);
    want.extend_from_slice(&[9; PAGE_BYTES]);
    let (r, n) = Reply::of(&f, 0, 15 * PAGE_BYTES);
    assert_eq!(n, want.len());
    assert_eq!(r.bytes(), want);
    assert_eq!(
        r.held_runs(),
        1,
        "only page 14's run: the lent run and the hole copied"
    );
    f.give_back(0, 4);
    // Not lent any more, the merged run of 12 pages is held when read whole…
    let (r, _) = Reply::of(&f, 0, 12 * PAGE_BYTES);
    assert_eq!(r.held_runs(), 1);
    assert_eq!(r.held_bytes(), 12 * PAGE_BYTES);
    // …and copied when read in part: holding it would keep more than the reply sends.
    let (r, _) = Reply::of(&f, 0, 11 * PAGE_BYTES);
    assert_eq!(r.held_runs(), 0);
    assert_eq!(r.bytes(), &want[..11 * PAGE_BYTES]);
}

#[test]
fn a_write_to_held_pages_replaces_them_and_the_reply_keeps_the_old_bytes() {
    let mut f = patterned(4, 3);
    let old = pattern(4 * PAGE_BYTES, 3);
    let (held, held_pages) = (f.held_pages(), f.allocated_pages());
    let (r, _) = Reply::of(&f, 0, 4 * PAGE_BYTES);
    assert_eq!(r.held_runs(), 4);
    assert_eq!(f.replaced_while_held(), 0);
    // A write over page 0 whole (a new page from the data), a part of page 1 (a copy of
    // the old page, then the write), and pages 2..4 not at all.
    let mut new = old.clone();
    new[..PAGE_BYTES].fill(0xAA);
    new[PAGE_BYTES + 10..PAGE_BYTES + 20].fill(0xBB);
    f.write(0, &new[..PAGE_BYTES]);
    f.write(PAGE + 10, &new[PAGE_BYTES + 10..PAGE_BYTES + 20]);
    assert_eq!(r.bytes(), old, "the reply sends what the read saw");
    assert_eq!(f.read(0, usize::MAX), new, "the file has the writes");
    assert_eq!(f.replaced_while_held(), 2, "pages 0 and 1, once each");
    assert_eq!(
        (f.held_pages(), f.allocated_pages()),
        (held, held_pages),
        "the file's pages are counted once: the replaced ones are the reply's"
    );
    // A second write to a page already replaced changes it in place.
    f.write(5, b"again");
    assert_eq!(f.replaced_while_held(), 2);
    drop(r);
    // Nothing held: writes change the pages in place.
    f.write(2 * PAGE, &[1; PAGE_BYTES]);
    assert_eq!(f.replaced_while_held(), 2);
}

#[test]
fn truncation_and_lending_leave_a_held_reply_alone() {
    let mut f = patterned(4, 4);
    let old = pattern(4 * PAGE_BYTES, 4);
    let (r, _) = Reply::of(&f, 0, 4 * PAGE_BYTES);
    // Truncation into page 3 zeroes its tail: the held page is copied first.
    assert_eq!(f.truncate(3 * PAGE + 5), Ok(0));
    assert_eq!(f.replaced_while_held(), 1);
    // Lending page 0 in place (after the merge it lies in one run with pages 1..3):
    // the lent run is the file's own, and a write through the loan is not the reply's.
    let base = f.lend(0, 1, |_| Ok::<(), ()>(())).expect("lent");
    // SAFETY: the page is lent, so it stays where it is; nothing else refers to it
    // while the test writes it (a mapping's store).
    unsafe { (*base.as_ptr()).0[0] = 0xCC };
    assert_eq!(r.bytes(), old, "held pages kept their bytes");
    assert_eq!(f.read(0, 1), [0xCC]);
    assert_eq!(f.held_pages(), 4);
}

#[test]
fn lending_a_run_a_reply_holds_copies_it_first() {
    // One run of 4 pages (merged by a loan and given back), held whole by a reply.
    let mut f = patterned(4, 5);
    f.lend(0, 4, |_| Ok::<(), ()>(())).expect("lent");
    f.give_back(0, 4);
    let (r, _) = Reply::of(&f, 0, 4 * PAGE_BYTES);
    assert_eq!(r.held_runs(), 1);
    let base = f.lend(1, 2, |_| Ok::<(), ()>(())).expect("lent in place");
    assert_eq!(
        f.replaced_while_held(),
        1,
        "the run was copied before the loan"
    );
    // SAFETY: as above: a lent page, written as a mapping's store would.
    unsafe { (*base.as_ptr()).0[0] = 0xDD };
    assert_eq!(r.bytes(), pattern(4 * PAGE_BYTES, 5));
    assert_eq!(f.read(PAGE, 1), [0xDD]);
    assert_eq!(f.held_pages(), 4);
}

#[test]
fn a_new_page_written_whole_is_the_data_and_one_written_in_part_is_zeros_around_it() {
    let mut f = FileData::default();
    let data = pattern(2 * PAGE_BYTES, 6);
    f.write(0, &data);
    f.write(3 * PAGE + 100, b"tail");
    assert_eq!(f.held_pages(), 3);
    let all = f.read(0, usize::MAX);
    assert_eq!(&all[..2 * PAGE_BYTES], &data[..]);
    assert!(all[2 * PAGE_BYTES..3 * PAGE_BYTES + 100]
        .iter()
        .all(|&b| b == 0));
    assert_eq!(&all[3 * PAGE_BYTES + 100..], b"tail");
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

#[test]
fn random_writes_truncations_loans_and_reads_never_change_what_a_reply_holds() {
    // A model of the bytes beside the file; every read's reply is kept a while and
    // checked after every later change: it must still send what the read saw, and
    // every read must match the model.
    let (mut held_runs, mut replaced) = (0, 0);
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut f = FileData::default();
        let mut model: Vec<u8> = Vec::new();
        let mut loans: Vec<(u64, u64, *const Page)> = Vec::new();
        let mut replies: Vec<(Reply, Vec<u8>)> = Vec::new();
        for step in 0..400 {
            let pages = 24u64;
            match rng.below(10) {
                0..=3 => {
                    let off = rng.below(pages * PAGE);
                    let len = 1 + rng.below(2 * PAGE) as usize;
                    let byte = rng.next() as u8;
                    let data: Vec<u8> = (0..len).map(|i| byte.wrapping_add(i as u8)).collect();
                    f.write(off, &data);
                    let end = off as usize + len;
                    if model.len() < end {
                        model.resize(end, 0);
                    }
                    model[off as usize..end].copy_from_slice(&data);
                }
                4 => {
                    let size = rng.below(pages * PAGE);
                    if f.truncate(size).is_ok() {
                        model.resize(size as usize, 0);
                    }
                }
                5 => {
                    let have = f.size().div_ceil(PAGE);
                    if have > 0 {
                        let first = rng.below(have);
                        let end = first + 1 + rng.below((have - first).min(4));
                        if let Ok(at) = f.lend(first, end, |_| Ok::<(), ()>(())) {
                            loans.push((first, end, at.as_ptr().cast_const()));
                        }
                    }
                }
                6 => {
                    if !loans.is_empty() {
                        let (first, end, _) =
                            loans.swap_remove(rng.below(loans.len() as u64) as usize);
                        assert_eq!(f.give_back(first, end).unmatched, 0);
                    }
                }
                7 => {
                    if !replies.is_empty() {
                        replies.swap_remove(rng.below(replies.len() as u64) as usize);
                    }
                }
                _ => {
                    // Half the reads start on a page, so merged (once lent) runs are
                    // covered whole too.
                    let mut off = rng.below(pages * PAGE);
                    if rng.below(2) == 0 {
                        off -= off % PAGE;
                    }
                    let count = rng.below(16 * PAGE) as usize;
                    let (r, n) = Reply::of(&f, off, count);
                    let start = (off as usize).min(model.len());
                    let want = model[start..(start + count).min(model.len())].to_vec();
                    assert_eq!(n, want.len(), "seed {seed} step {step}: length");
                    assert!(r.bytes() == want, "seed {seed} step {step}: read");
                    held_runs += r.held_runs();
                    replies.push((r, want));
                }
            }
            for (r, want) in &replies {
                assert!(
                    r.bytes() == *want,
                    "seed {seed} step {step}: a held reply changed"
                );
            }
            assert_eq!(
                f.size(),
                model.len() as u64,
                "seed {seed} step {step}: size"
            );
            assert!(f.held_pages() >= f.allocated_pages());
            for &(first, _, at) in &loans {
                let now = f.page(first).map(|p| p as *const Page);
                assert_eq!(now, Some(at), "seed {seed} step {step}: a lent page moved");
            }
        }
        replaced += f.replaced_while_held();
    }
    // The run shared pages and wrote to them while held, or it proved nothing.
    assert!(held_runs > 1000, "runs held: {held_runs}");
    assert!(replaced > 100, "runs replaced while held: {replaced}");
}

#[test]
fn a_piece_of_a_one_page_run_is_held_from_the_size_the_caller_names() {
    let f = patterned(3, 9);
    // 100 bytes of page 0, page 1 whole, 100 bytes of page 2.
    let (offset, count) = (PAGE_BYTES as u64 - 100, PAGE_BYTES + 200);
    let want = pattern(3 * PAGE_BYTES, 9)[offset as usize..offset as usize + count].to_vec();
    let (copied_ends, n) = Reply::of(&f, offset, count);
    assert_eq!(n, count);
    assert_eq!(copied_ends.held_runs(), 1, "the 100-byte ends are copied");
    assert!(copied_ends.bytes() == want);
    let (held_ends, _) = Reply::with_piece_min(&f, offset, count, 1);
    assert_eq!(held_ends.held_runs(), 3, "every piece held");
    assert_eq!(held_ends.held_bytes(), count);
    assert!(held_ends.bytes() == want);
}
