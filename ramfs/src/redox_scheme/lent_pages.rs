//! Pages of files that the kernel has borrowed through `mmap_prep`.
//!
//! On Redox a file-backed mapping is made of the daemon's own pages: `mmap_prep`
//! answers with an address in our address space and the kernel maps the pages there
//! into the caller (see `kernel-patch/redox/NOTES-redox-scheme.md` §4). Until the
//! matching `munmap` such a page must stay where it is, so truncation asks
//! [`LentPages::any_lent_from`] before it frees pages, and the daemon may not exit
//! while [`LentPages::total`] is above zero.
//!
//! The kernel reports unmaps per unmapped part of a mapping (a partial `munmap`, an
//! `mmap` over part of it, process exit), so the count is kept per page, not per call:
//! each page of a mapping is one loan, and two mappings of the same page are two.

use std::collections::BTreeMap;

/// Loan counts for the pages of files named by `K` (a node id).
#[derive(Debug, Clone)]
pub struct LentPages<K> {
    loans: BTreeMap<(K, u64), u32>,
    total: u64,
}

/// How much of a `give_back` matched no loan: the kernel returned pages we never lent
/// (or returned them twice). Never fatal; the caller logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unmatched(pub u64);

impl<K: Ord + Copy> Default for LentPages<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Copy> LentPages<K> {
    /// No page lent.
    pub fn new() -> Self {
        LentPages {
            loans: BTreeMap::new(),
            total: 0,
        }
    }

    /// Records one loan of each of the `count` pages of `file` starting at page `first`.
    pub fn lend(&mut self, file: K, first: u64, count: u64) {
        for page in first..first.saturating_add(count) {
            let loans = self.loans.entry((file, page)).or_insert(0);
            // A page lent u32::MAX times at once cannot happen (each loan is a kernel
            // grant); saturating keeps the count from wrapping to "free" if it did.
            *loans = loans.saturating_add(1);
            self.total = self.total.saturating_add(1);
        }
    }

    /// Ends one loan of each of the `count` pages of `file` starting at page `first`.
    /// Pages without a loan are skipped and counted in the result.
    pub fn give_back(&mut self, file: K, first: u64, count: u64) -> Option<Unmatched> {
        let mut unmatched = 0;
        for page in first..first.saturating_add(count) {
            match self.loans.get_mut(&(file, page)) {
                Some(loans) => {
                    *loans -= 1;
                    if *loans == 0 {
                        self.loans.remove(&(file, page));
                    }
                    self.total -= 1;
                }
                None => unmatched += 1,
            }
        }
        (unmatched > 0).then_some(Unmatched(unmatched))
    }

    /// Whether any page of `file` at index `first` or above is lent: truncating the
    /// file to a length that drops those pages would free memory the kernel maps.
    pub fn any_lent_from(&self, file: K, first: u64) -> bool {
        self.loans
            .range((file, first)..=(file, u64::MAX))
            .next()
            .is_some()
    }

    /// Loans of this one page.
    pub fn loans_of(&self, file: K, page: u64) -> u32 {
        self.loans.get(&(file, page)).copied().unwrap_or(0)
    }

    /// Loans outstanding over all files and pages (a page lent twice counts twice).
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// The pages `[first, first + count)` that a mapping of `len` bytes at byte `offset`
/// covers, or `None` when `offset` is not page-aligned, `len` is 0, or the end
/// overflows. The kernel maps whole pages, so a partial last page counts.
pub fn pages_of(offset: u64, len: usize, page_size: u64) -> Option<(u64, u64)> {
    if len == 0 || !offset.is_multiple_of(page_size) {
        return None;
    }
    offset.checked_add(len as u64)?;
    Some((offset / page_size, (len as u64).div_ceil(page_size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_page_of_each_mapping_is_one_loan() {
        let mut lent = LentPages::new();
        lent.lend(7u64, 0, 3);
        lent.lend(7, 2, 2);
        assert_eq!(lent.total(), 5);
        assert_eq!(lent.loans_of(7, 2), 2);
        assert_eq!(lent.loans_of(7, 4), 0);
        assert_eq!(lent.give_back(7, 0, 3), None);
        assert_eq!(lent.total(), 2);
        assert_eq!(lent.loans_of(7, 2), 1);
        assert_eq!(lent.give_back(7, 2, 2), None);
        assert_eq!(lent.total(), 0);
    }

    #[test]
    fn partial_unmaps_return_their_pages_only() {
        let mut lent = LentPages::new();
        lent.lend(1u64, 10, 4);
        // The kernel unmaps the middle of the mapping, then the two ends.
        assert_eq!(lent.give_back(1, 11, 2), None);
        assert_eq!(lent.total(), 2);
        assert!(lent.any_lent_from(1, 11));
        assert_eq!(lent.give_back(1, 13, 1), None);
        assert!(!lent.any_lent_from(1, 11));
        assert!(lent.any_lent_from(1, 0));
        assert_eq!(lent.give_back(1, 10, 1), None);
        assert_eq!(lent.total(), 0);
    }

    #[test]
    fn returning_pages_never_lent_is_reported_not_counted() {
        let mut lent = LentPages::new();
        lent.lend(1u64, 0, 1);
        assert_eq!(lent.give_back(1, 0, 3), Some(Unmatched(2)));
        assert_eq!(lent.total(), 0);
        assert_eq!(lent.give_back(1, 0, 1), Some(Unmatched(1)));
        assert_eq!(lent.total(), 0);
    }

    #[test]
    fn files_are_counted_apart() {
        let mut lent = LentPages::new();
        lent.lend(1u64, 0, 1);
        lent.lend(2, 5, 1);
        assert!(!lent.any_lent_from(1, 1));
        assert!(lent.any_lent_from(2, 5));
        assert!(!lent.any_lent_from(2, 6));
        assert_eq!(lent.give_back(2, 0, 1), Some(Unmatched(1)));
        assert_eq!(lent.total(), 2);
    }

    #[test]
    fn mapping_ranges() {
        assert_eq!(pages_of(0, 1, 4096), Some((0, 1)));
        assert_eq!(pages_of(8192, 4096, 4096), Some((2, 1)));
        assert_eq!(pages_of(8192, 4097, 4096), Some((2, 2)));
        assert_eq!(pages_of(100, 4096, 4096), None, "unaligned offset");
        assert_eq!(pages_of(0, 0, 4096), None, "empty mapping");
        assert_eq!(pages_of(u64::MAX - 4095, 8192, 4096), None, "end overflows");
    }
}
