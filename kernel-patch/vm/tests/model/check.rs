//! After every step: the vm's invariants, its open channels and every resident page
//! against the model.

use super::*;

impl Harness {
    /// Every page any process has resident holds what the model says.
    fn check_resident(&self) -> Result<(), TestCaseError> {
        for model in &self.processes {
            for (index, seg) in model.process.segments.iter().enumerate() {
                for addr in (seg.base()..seg.end()).step_by(PAGE as usize) {
                    let Some(frame) = seg.resident(addr) else {
                        continue;
                    };
                    let expected = match model.written.get(&addr) {
                        Some(bytes) => bytes.clone(),
                        None => match model.process.program.loads.get(index) {
                            Some(load) => expected_page(&model.process.program.file, load, addr),
                            None => vec![0; PAGE as usize],
                        },
                    };
                    prop_assert!(
                        self.world.frames.read(frame) == expected,
                        "resident page at {:#x} of {:?} changed under the process",
                        addr,
                        seg.kind()
                    );
                }
            }
        }
        Ok(())
    }

    pub(crate) fn check(&self) -> Result<(), TestCaseError> {
        self.check_resident()?;
        let live: Vec<_> = self
            .processes
            .iter()
            .flat_map(|p| p.process.segments.iter())
            .collect();
        let report = check_invariants(&self.world.vm, Some(&live))
            .map_err(|v| TestCaseError::fail(v.to_string()))?;
        let active = self.active_identities();
        prop_assert_eq!(report.open_channels as usize, active.len());
        let stats = self.world.vm.statistics();
        prop_assert_eq!(stats.images_active as usize, active.len());
        prop_assert!(stats.images_idle <= self.config.max_idle_images);
        // The kernel's safe point: files vm let go of are closed here.
        self.world.vm.run_parked_closes();
        for (identity, program) in &self.files {
            let counts = program.file.counts();
            let expected = u64::from(active.contains(identity));
            prop_assert_eq!(
                counts.open_handles(),
                expected,
                "channels of {:?}",
                identity
            );
            prop_assert_eq!(counts.unclosed_drops, 0);
        }
        Ok(())
    }
}
