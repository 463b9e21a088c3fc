//! Tests of `data.rs`: pages, reads, truncation, lending, and a model of them all.

use super::*;

/// Lends with no memory limit.
fn lend(f: &mut FileData, first: u64, end: u64) -> Result<NonNull<Page>, LendError<()>> {
    f.lend(first, end, |_| Ok(()))
}

fn addr(p: NonNull<Page>) -> usize {
    p.as_ptr() as usize
}

/// The page at `index` as the file keeps it, by address.
fn page_addr(f: &FileData, index: u64) -> usize {
    f.page(index).expect("a page") as *const Page as usize
}

/// Sum of held pages recomputed from the runs, to check the cached count.
fn recount(f: &FileData) -> (u64, u64) {
    let live = f.runs.values().map(Run::live).sum();
    let held = f.runs.values().map(Run::len).sum();
    (live, held)
}

fn check_counts(f: &FileData) {
    assert_eq!(recount(f), (f.allocated_pages(), f.held_pages()));
}

/// A file of `pages` pages, page `i` filled with byte `i + 1`.
fn dense(pages: u64) -> FileData {
    let mut f = FileData::default();
    for i in 0..pages {
        f.write(i * PAGE, &[i as u8 + 1; PAGE_SIZE]);
    }
    f
}

#[test]
fn pages_are_page_aligned() {
    let mut f = FileData::default();
    f.write(5000, b"x");
    let p = f.page(1).expect("written page");
    assert_eq!(p as *const Page as usize % PAGE_SIZE, 0);
    assert!(f.page(0).is_none(), "the hole before it is not allocated");
}

#[test]
fn holes_read_as_zeros_and_cost_nothing() {
    let mut f = FileData::default();
    f.write(3 * PAGE + 10, b"abc");
    assert_eq!(f.allocated_pages(), 1);
    assert_eq!(f.held_pages(), 1);
    assert_eq!(f.size(), 3 * PAGE + 13);
    let all = f.read(0, usize::MAX);
    assert_eq!(all.len() as u64, f.size());
    assert!(all[..3 * PAGE_SIZE + 10].iter().all(|&b| b == 0));
    assert_eq!(&all[3 * PAGE_SIZE + 10..], b"abc");
}

#[test]
fn write_across_pages_and_read_back() {
    let mut f = FileData::default();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(f.pages_needed(4000, data.len()), 4);
    f.write(4000, &data);
    assert_eq!(f.read(4000, 10_000), data);
    assert_eq!(f.read(4000 + 9_990, 100), data[9_990..]);
    assert_eq!(f.pages_needed(4000, data.len()), 0);
    check_counts(&f);
}

#[test]
fn shrink_then_grow_reads_zeros() {
    let mut f = FileData::default();
    f.write(0, &[7u8; 9000]);
    assert_eq!(f.truncate(5), Ok(2));
    assert_eq!(f.read(0, 100), vec![7, 7, 7, 7, 7]);
    assert_eq!(f.truncate(9000), Ok(0));
    let back = f.read(0, 9000);
    assert_eq!(&back[..5], &[7; 5]);
    assert!(back[5..].iter().all(|&b| b == 0));
    assert_eq!(f.allocated_pages(), 1);
    check_counts(&f);
}

#[test]
fn a_read_hands_out_the_pages_themselves() {
    // Pages 0 and 2 hold data, page 1 is a hole; the read starts inside page 0.
    let mut f = FileData::default();
    f.write(0, &[1; PAGE_SIZE]);
    f.write(2 * PAGE, &[3; 100]);
    let mut pieces = Vec::new();
    let n = f.read_with(10, usize::MAX, |b| {
        pieces.push((b.as_ptr() as usize, b.len(), b[0]))
    });
    assert_eq!(n, 2 * PAGE_SIZE + 90);
    assert_eq!(
        pieces,
        [
            (page_addr(&f, 0) + 10, PAGE_SIZE - 10, 1),
            (&ZERO_PAGE as *const Page as usize, PAGE_SIZE, 0),
            (page_addr(&f, 2), 100, 3),
        ],
        "each piece is the file's page (or the zero page), not a copy"
    );
    assert_eq!(
        f.read_with(2 * PAGE + 100, 1, |_| panic!("past the end")),
        0
    );
    assert_eq!(f.read_with(0, 0, |_| panic!("nothing asked")), 0);
}

#[test]
fn read_past_end_is_empty() {
    let mut f = FileData::default();
    f.write(0, b"hello");
    assert!(f.read(5, 10).is_empty());
    assert!(f.read(u64::MAX, 10).is_empty());
    assert_eq!(f.read(3, 10), b"lo");
}

#[test]
fn zero_count_read_at_a_page_boundary() {
    let mut f = FileData::default();
    f.write(0, &[1; PAGE_SIZE + 10]);
    assert!(f.read(PAGE, 0).is_empty());
}

// ---- lending ------------------------------------------------------------------

#[test]
fn a_window_is_one_run_of_side_by_side_pages() {
    let mut f = dense(5);
    let base = lend(&mut f, 1, 4).expect("lent");
    assert_eq!(addr(base) % PAGE_SIZE, 0);
    for i in 1..4 {
        assert_eq!(page_addr(&f, i), addr(base) + (i as usize - 1) * PAGE_SIZE);
        assert_eq!(
            f.page(i).map(|p| p.0[0]),
            Some(i as u8 + 1),
            "data moved along"
        );
    }
    assert_eq!(f.lent_pages(), 3);
    assert_eq!(
        (f.allocated_pages(), f.held_pages()),
        (5, 5),
        "moving costs nothing"
    );
    check_counts(&f);
}

#[test]
fn the_first_window_takes_the_whole_dense_file_along() {
    // An executable: text first, then data starting in text's last page.
    let mut f = dense(8);
    let text = lend(&mut f, 0, 5).expect("text");
    let data = lend(&mut f, 4, 8).expect("data, sharing page 4 with the text");
    assert_eq!(addr(data), addr(text) + 4 * PAGE_SIZE, "one run holds both");
    assert_eq!(f.loans_of(4), 2);
    assert_eq!(f.lent_pages(), 9);
    check_counts(&f);
}

#[test]
fn lent_pages_stay_put_across_writes_growth_and_other_runs() {
    let mut f = dense(3);
    let base = addr(lend(&mut f, 0, 3).expect("lent"));
    let page1 = page_addr(&f, 1);
    // Writes into the lent pages land there (the mapping sees them)...
    f.write(PAGE + 7, b"seen");
    assert_eq!(page_addr(&f, 1), page1);
    assert_eq!(f.page(1).map(|p| &p.0[7..11]), Some(&b"seen"[..]));
    // ...growth elsewhere makes new runs and does not move them...
    f.write(10 * PAGE, &[9; 3 * PAGE_SIZE]);
    f.write(4 * PAGE, b"between");
    // ...nor does lending other windows, which builds runs of their own...
    let other = lend(&mut f, 10, 13).expect("a second run");
    assert_eq!(page_addr(&f, 11), addr(other) + PAGE_SIZE);
    // ...nor shrinking that keeps them.
    assert_eq!(f.truncate(3 * PAGE), Err(Pinned), "pages 10..13 are lent");
    assert_eq!(f.give_back(10, 13).unmatched, 0);
    // Pages 4 and 10..13 go; the lent run stays whole and in place.
    assert_eq!(f.truncate(3 * PAGE - 1), Ok(4));
    for i in 0..3 {
        assert_eq!(page_addr(&f, i), base + i as usize * PAGE_SIZE);
    }
    check_counts(&f);
}

#[test]
fn a_window_over_a_lent_page_out_of_place_is_refused() {
    let mut f = FileData::default();
    f.write(0, &[1; PAGE_SIZE]);
    f.write(2 * PAGE, &[3; PAGE_SIZE]);
    // Page 1 is a hole: pages 0 and 2 are runs of their own, so lending page 0
    // alone lends it in place.
    let p0 = lend(&mut f, 0, 1).expect("page 0");
    assert_eq!(page_addr(&f, 0), addr(p0));
    assert_eq!(lend(&mut f, 0, 3), Err(LendError::Pinned));
    assert_eq!(f.lent_pages(), 1, "a refusal lends nothing");
    assert_eq!(
        (f.allocated_pages(), f.held_pages()),
        (2, 2),
        "and allocates nothing"
    );
    // Once page 0 is back the window can be built, filling the hole.
    assert_eq!(
        f.give_back(0, 1),
        GivenBack {
            unmatched: 0,
            freed: 0
        }
    );
    let base = lend(&mut f, 0, 3).expect("now movable");
    assert_eq!(page_addr(&f, 2), addr(base) + 2 * PAGE_SIZE);
    assert_eq!(f.read(PAGE, 2), [0, 0], "the hole reads as zeros still");
    assert_eq!((f.allocated_pages(), f.held_pages()), (3, 3));
    check_counts(&f);
}

#[test]
fn windows_must_hold_some_of_the_file() {
    let mut f = FileData::default();
    f.write(0, &[1; 10]);
    assert_eq!(lend(&mut f, 0, 0), Err(LendError::OutOfRange));
    assert_eq!(lend(&mut f, 1, 2), Err(LendError::OutOfRange));
    assert_eq!(lend(&mut f, 0, 2), Err(LendError::OutOfRange));
    assert!(lend(&mut f, 0, 1).is_ok());
}

#[test]
fn holes_are_reserved_then_filled_without_changing_the_data() {
    let mut f = FileData::default();
    assert_eq!(f.truncate(4 * PAGE), Ok(0));
    f.write(PAGE, &[2; PAGE_SIZE]);
    let mut asked = None;
    let refused = f.lend(0, 4, |pages| {
        asked = Some(pages);
        Err("full")
    });
    assert_eq!(refused, Err(LendError::Reserve("full")));
    assert_eq!(asked, Some(3), "three holes in the window");
    assert_eq!(
        (f.allocated_pages(), f.held_pages(), f.lent_pages()),
        (1, 1, 0)
    );
    let base = lend(&mut f, 0, 4).expect("lent");
    assert_eq!((f.allocated_pages(), f.held_pages()), (4, 4));
    assert_eq!(f.size(), 4 * PAGE);
    let mut want = vec![0u8; 4 * PAGE_SIZE];
    want[PAGE_SIZE..2 * PAGE_SIZE].fill(2);
    assert_eq!(f.read(0, usize::MAX), want);
    assert_eq!(page_addr(&f, 3), addr(base) + 3 * PAGE_SIZE);
    check_counts(&f);
}

#[test]
fn truncation_keeps_a_lent_run_and_frees_it_when_the_loans_end() {
    let mut f = dense(6);
    let base = addr(lend(&mut f, 0, 2).expect("lent"));
    assert_eq!(f.truncate(PAGE), Err(Pinned), "page 1 is lent");
    assert_eq!(f.size(), 6 * PAGE, "a refusal changes nothing");
    // Dropping pages 2..6 leaves their slots in the lent run, vacant and held.
    assert_eq!(f.truncate(2 * PAGE), Ok(0));
    assert_eq!((f.allocated_pages(), f.held_pages()), (2, 6));
    assert!(f.page(3).is_none());
    // Growing again reads zeros there; a write fills the slot, in place.
    assert_eq!(f.truncate(6 * PAGE), Ok(0));
    assert_eq!(f.read(3 * PAGE, 4), [0; 4]);
    assert_eq!(f.pages_needed(3 * PAGE, 1), 0, "the slot is there");
    f.write(3 * PAGE + 1, b"z");
    assert_eq!(f.read(3 * PAGE, 3), [0, b'z', 0]);
    assert_eq!(page_addr(&f, 3), base + 3 * PAGE_SIZE);
    assert_eq!((f.allocated_pages(), f.held_pages()), (3, 6));
    // The last loan back: the vacant slots go, the live pages stay readable.
    assert_eq!(f.give_back(0, 1).freed, 0, "page 1 is still lent");
    assert_eq!(
        f.give_back(1, 2),
        GivenBack {
            unmatched: 0,
            freed: 3
        }
    );
    assert_eq!((f.allocated_pages(), f.held_pages()), (3, 3));
    assert_eq!(f.read(0, 1), [1]);
    assert_eq!(f.read(PAGE, 1), [2]);
    assert_eq!(f.read(3 * PAGE, 3), [0, b'z', 0]);
    check_counts(&f);
}

#[test]
fn an_unlent_run_cut_by_truncation_frees_the_cut_at_once() {
    let mut f = dense(4);
    lend(&mut f, 0, 4).expect("lent");
    assert_eq!(f.give_back(0, 4).unmatched, 0);
    assert_eq!(f.truncate(PAGE + 1), Ok(2));
    assert_eq!((f.allocated_pages(), f.held_pages()), (2, 2));
    assert_eq!(f.read(0, usize::MAX).len(), PAGE_SIZE + 1);
    check_counts(&f);
}

#[test]
fn giving_back_pages_never_lent_is_counted_apart() {
    let mut f = dense(2);
    lend(&mut f, 0, 1).expect("lent");
    assert_eq!(f.give_back(0, 2).unmatched, 1);
    assert_eq!(f.lent_pages(), 0);
    assert_eq!(f.give_back(5, 1_000_000_000_000).unmatched, 999_999_999_995);
}

// ---- against a model -------------------------------------------------------------

mod model {
    use super::*;
    use proptest::prelude::*;

    /// Pages the model file spans at most.
    const SPAN: u64 = 12;

    #[derive(Debug, Clone)]
    enum Op {
        Write { offset: u64, len: usize, byte: u8 },
        Truncate { size: u64 },
        Lend { first: u64, count: u64 },
        GiveBack { which: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..SPAN * PAGE, 0..3 * PAGE_SIZE, 1..=255u8)
                .prop_map(|(offset, len, byte)| Op::Write { offset, len, byte }),
            1 => (0..=SPAN * PAGE).prop_map(|size| Op::Truncate { size }),
            3 => (0..SPAN, 1..5u64).prop_map(|(first, count)| Op::Lend { first, count }),
            2 => any::<usize>().prop_map(|which| Op::GiveBack { which }),
        ]
    }

    /// One outstanding loan: its window and the address it was given.
    struct Loan {
        first: u64,
        end: u64,
        base: usize,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any mix of writes, truncations, loans and returns: the data is what a
        /// plain byte vector says, every outstanding window stays contiguous and in
        /// place, refusals change nothing, and the memory charged step by step is
        /// exactly what the file holds.
        #[test]
        fn file_data_matches_a_byte_vector(ops in proptest::collection::vec(op(), 1..60)) {
            let mut f = FileData::default();
            let mut model: Vec<u8> = Vec::new();
            let mut loans: Vec<Loan> = Vec::new();
            let mut charged: u64 = 0;
            for op in ops {
                match op {
                    Op::Write { offset, len, byte } => {
                        let data = vec![byte; len];
                        charged += f.pages_needed(offset, len);
                        f.write(offset, &data);
                        if len > 0 {
                            let end = offset as usize + len;
                            if model.len() < end {
                                model.resize(end, 0);
                            }
                            model[offset as usize..end].fill(byte);
                        }
                    }
                    Op::Truncate { size } => {
                        let keep = size.div_ceil(PAGE);
                        let shrinks = size < f.size();
                        let pinned = shrinks && loans.iter().any(|l| l.end > keep);
                        match f.truncate(size) {
                            Ok(freed) => {
                                prop_assert!(!pinned);
                                charged -= freed;
                                model.resize(size as usize, 0);
                            }
                            Err(Pinned) => prop_assert!(pinned),
                        }
                    }
                    Op::Lend { first, count } => {
                        let end = first + count;
                        let before = (f.allocated_pages(), f.held_pages(), f.lent_pages());
                        let mut asked = 0;
                        match f.lend(first, end, |pages| {
                            asked = pages;
                            Ok::<(), ()>(())
                        }) {
                            Ok(base) => {
                                charged += asked;
                                loans.push(Loan { first, end, base: addr(base) });
                            }
                            Err(LendError::OutOfRange) => {
                                prop_assert!(end > f.size().div_ceil(PAGE));
                                prop_assert_eq!(before, (f.allocated_pages(), f.held_pages(), f.lent_pages()));
                            }
                            Err(LendError::Pinned) => {
                                prop_assert!(!loans.is_empty());
                                prop_assert_eq!(before, (f.allocated_pages(), f.held_pages(), f.lent_pages()));
                            }
                            Err(LendError::Reserve(())) => prop_assert!(false, "reserve never refuses"),
                        }
                    }
                    Op::GiveBack { which } => {
                        if !loans.is_empty() {
                            let loan = loans.remove(which % loans.len());
                            let back = f.give_back(loan.first, loan.end);
                            prop_assert_eq!(back.unmatched, 0);
                            charged -= back.freed;
                        }
                    }
                }
                prop_assert_eq!(f.read(0, usize::MAX), model.clone());
                prop_assert_eq!(f.size(), model.len() as u64);
                prop_assert_eq!(recount(&f), (f.allocated_pages(), f.held_pages()));
                prop_assert_eq!(charged, f.held_pages());
                let lent: u64 = loans.iter().map(|l| l.end - l.first).sum();
                prop_assert_eq!(f.lent_pages(), lent);
                for l in &loans {
                    for i in l.first..l.end {
                        prop_assert_eq!(page_addr(&f, i), l.base + (i - l.first) as usize * PAGE_SIZE);
                    }
                }
                // Vacant slots only where a run holds a lent page.
                for (&start, run) in &f.runs {
                    prop_assert!(run.vacant.is_empty() || f.run_is_lent(start, run));
                }
            }
        }
    }
}
