//! Loans of one file's pages to a memory-mapping front end.
//!
//! On Redox a file-backed mapping is made of the daemon's own pages: `mmap_prep` answers
//! with an address in our address space and the kernel maps the pages there into the
//! caller (`kernel-patch/redox/NOTES-redox-scheme.md` §4). Until the matching `munmap`
//! such a page must stay where it is and hold its memory, whatever any front end does
//! to the file meanwhile; [`super::data::FileData`] asks these counts before it moves or
//! frees a page.
//!
//! The kernel reports unmaps per unmapped part of a mapping (a partial `munmap`, an
//! `mmap` over part of it, process exit), so the count is kept per page, not per call:
//! each page of a mapping is one loan, and two mappings of the same page are two.

use std::collections::BTreeMap;

/// Loan counts of the pages of one file.
#[derive(Debug, Clone, Default)]
pub struct Loans {
    /// Page index → loans outstanding (never 0: a page with no loan has no entry).
    counts: BTreeMap<u64, u32>,
    total: u64,
}

impl Loans {
    /// Records one loan of each page in `first..end`.
    pub fn lend(&mut self, first: u64, end: u64) {
        for page in first..end {
            let loans = self.counts.entry(page).or_insert(0);
            // A page lent u32::MAX times at once cannot happen (each loan is a kernel
            // grant); saturating keeps the count from wrapping to "free" if it did.
            *loans = loans.saturating_add(1);
            self.total += 1;
        }
    }

    /// Ends one loan of each page in `first..end`. Pages without a loan are skipped and
    /// counted in the result: the caller returned pages it was never lent (or returned
    /// them twice).
    pub fn give_back(&mut self, first: u64, end: u64) -> u64 {
        if first >= end {
            return 0;
        }
        // Walk the loans in the range, not the range: a bogus unmap may name 2^50 pages.
        let mut matched = 0;
        let mut ended = Vec::new();
        for (&page, loans) in self.counts.range_mut(first..end) {
            *loans -= 1;
            if *loans == 0 {
                ended.push(page);
            }
            matched += 1;
        }
        for page in ended {
            self.counts.remove(&page);
        }
        self.total -= matched;
        (end - first) - matched
    }

    /// Whether any page in `first..end` is lent.
    pub fn any_in(&self, first: u64, end: u64) -> bool {
        first < end && self.counts.range(first..end).next().is_some()
    }

    /// Whether any page at `first` or above is lent: truncating the file to a length
    /// that drops those pages would free memory a mapping still uses.
    pub fn any_from(&self, first: u64) -> bool {
        self.counts.range(first..).next().is_some()
    }

    /// Loans of this one page.
    pub fn of(&self, page: u64) -> u32 {
        self.counts.get(&page).copied().unwrap_or(0)
    }

    /// Loans outstanding over all pages (a page lent twice counts twice).
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_page_of_each_mapping_is_one_loan() {
        let mut loans = Loans::default();
        loans.lend(0, 3);
        loans.lend(2, 4);
        assert_eq!(loans.total(), 5);
        assert_eq!(loans.of(2), 2);
        assert_eq!(loans.of(4), 0);
        assert_eq!(loans.give_back(0, 3), 0);
        assert_eq!(loans.total(), 2);
        assert_eq!(loans.of(2), 1);
        assert_eq!(loans.give_back(2, 4), 0);
        assert_eq!(loans.total(), 0);
        assert!(!loans.any_from(0));
    }

    #[test]
    fn partial_returns_give_back_their_pages_only() {
        let mut loans = Loans::default();
        loans.lend(10, 14);
        // The kernel unmaps the middle of the mapping, then the two ends.
        assert_eq!(loans.give_back(11, 13), 0);
        assert_eq!(loans.total(), 2);
        assert!(loans.any_from(11));
        assert!(!loans.any_in(11, 13));
        assert!(loans.any_in(12, 14));
        assert_eq!(loans.give_back(13, 14), 0);
        assert!(!loans.any_from(11));
        assert!(loans.any_from(0));
        assert_eq!(loans.give_back(10, 11), 0);
        assert_eq!(loans.total(), 0);
    }

    #[test]
    fn returning_pages_never_lent_is_reported_not_counted() {
        let mut loans = Loans::default();
        loans.lend(0, 1);
        assert_eq!(loans.give_back(0, 3), 2);
        assert_eq!(loans.total(), 0);
        assert_eq!(loans.give_back(0, 1), 1);
        assert_eq!(loans.total(), 0);
    }

    #[test]
    fn empty_ranges_hold_no_loan() {
        let mut loans = Loans::default();
        loans.lend(5, 6);
        assert!(!loans.any_in(5, 5));
        assert!(!loans.any_in(6, 5));
        assert!(loans.any_in(5, 6));
    }
}
