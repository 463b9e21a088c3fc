//! The loans' rules (`mapping/loan.rs`): an orphan has loans, no owner and no reference,
//! and is not free; no lent page is on the free list; the loans counted in the pages are
//! the loans outstanding, and the orphans counted are the pages flagged. That no lent page
//! is writable in any MMU is `check_translations`'s rule (`mapping/check.rs`); that the
//! zero frame holds zeros, `zero_page.rs`'s.
//!
//! Lock order: none held across pages (each page's view is a snapshot of its atomics).

use super::Violation;
use crate::page::PageIndex;
use crate::vm::Vm;

pub(super) fn check_loans(vm: &Vm) -> Result<(), Violation> {
    let shared = &*vm.shared;
    let pool = &shared.pool;
    let mut lent = 0u64;
    let mut orphans = 0u64;
    for index in 0..pool.capacity() {
        let view = pool.view(PageIndex(index));
        lent += u64::from(view.loans);
        if view.loans != 0 && view.free {
            return Err(Violation::LentPageFree { page: index });
        }
        if view.orphan {
            orphans += 1;
            if view.loans == 0 || view.refs != 0 || view.owner != 0 || view.free {
                return Err(Violation::OrphanPage {
                    page: index,
                    loans: view.loans,
                    refs: view.refs,
                });
            }
        }
    }
    let (recorded, ..) = shared.loan_counts();
    if lent != recorded || orphans != pool.orphans() {
        return Err(Violation::LoanCount {
            lent,
            recorded,
            orphans,
        });
    }
    Ok(())
}
