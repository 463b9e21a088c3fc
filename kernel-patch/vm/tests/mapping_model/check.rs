//! After every step: the vm's invariants and translations against the model.

use super::*;

impl Harness {
    pub(crate) fn check(&self) -> Result<(), TestCaseError> {
        if let Err(violation) = check_invariants(&self.vm, Some(&[])) {
            return Err(TestCaseError::fail(format!("{violation:?}")));
        }
        let mut translations = Vec::new();
        for process in self.procs.iter().flatten() {
            for (&addr, &(frame, writable)) in process.mmu.entries.lock().unwrap().iter() {
                translations.push(Translation {
                    space: process.mmu.id,
                    addr,
                    frame,
                    writable,
                });
            }
        }
        if let Err(violation) = check_translations(&self.vm, &translations) {
            return Err(TestCaseError::fail(format!("{violation:?}")));
        }
        if let Some(object) = &self.object {
            prop_assert_eq!(object.dirty_pages() as usize >= self.dirty.len(), true);
        }
        // Lent frames are mapped read only everywhere, and counted once a loan.
        let zero = self.vm.zero_frame();
        let mut lent = 0;
        for (loan, _) in &self.loans {
            lent += loan.frames().filter(|frame| *frame != zero).count() as u64;
            for frame in loan.frames() {
                if let Some(entry) = translations.iter().find(|t| t.frame == frame && t.writable) {
                    return Err(TestCaseError::fail(format!(
                        "lent {frame:?} writable at {entry:?}"
                    )));
                }
            }
        }
        prop_assert_eq!(self.vm.statistics().pages_lent, lent);
        Ok(())
    }
}
