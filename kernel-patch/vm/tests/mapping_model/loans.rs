//! Lending a slot's pages, and a loan's rule: its pages keep the bytes of the lend.

use super::*;

impl Harness {
    /// Lends slot pages `from..from + pages` of the mapping of slot page `from`, clamped
    /// to it; the model takes the bytes each page shows now as the loan's, forever.
    pub(crate) fn lend(
        &mut self,
        proc: usize,
        slot: usize,
        from: u64,
        pages: u64,
    ) -> Result<(), TestCaseError> {
        if self.loans.len() >= MAX_LOANS {
            return Ok(());
        }
        // Where no mapping maps `from`, the slot's first piece from its start: most lends
        // lend something.
        let Some((map, model, from)) = self
            .mapping(proc, slot, from)
            .map(|(map, model)| (map, model, from))
            .or_else(|| {
                let (map, model) = self.procs.get(proc)?.as_ref()?.maps[slot].first()?;
                Some((map, model, model.start))
            })
        else {
            return Ok(());
        };
        let to = (from + pages).min(model.start + model.pages);
        let first = model.first + (from - model.start);
        let numbers = first..first + (to - from);
        let expected: Option<Vec<Vec<u8>>> = numbers
            .clone()
            .map(|number| match model.copies.get(&number) {
                Some(copy) => Some(copy.clone()),
                None if self.past_end(number) => None,
                None => {
                    let offset = (number * PAGE) as usize;
                    Some(self.kernel[offset..offset + PAGE as usize].to_vec())
                }
            })
            .collect();
        let result = map.lend(base(slot) + from * PAGE, (to - from) * PAGE);
        let Some(expected) = expected else {
            prop_assert_eq!(result.err(), Some(LendError::PastEnd), "{:?}", numbers);
            return Ok(());
        };
        let loan = match result {
            Ok(loan) => loan,
            Err(err) => return Err(TestCaseError::fail(format!("lend {numbers:?}: {err:?}"))),
        };
        prop_assert_eq!(loan.pages(), expected.len());
        self.check_loan(&loan, &expected)?;
        self.loans.push((loan, expected));
        Ok(())
    }

    /// A loan's pages hold the bytes they had at the lend.
    pub(crate) fn check_loan(
        &self,
        loan: &Loan,
        expected: &[Vec<u8>],
    ) -> Result<(), TestCaseError> {
        for (index, (frame, bytes)) in loan.frames().zip(expected).enumerate() {
            prop_assert!(
                self.frames.read(frame) == *bytes,
                "page {} of a loan of {} changed",
                index,
                expected.len()
            );
        }
        Ok(())
    }
}
