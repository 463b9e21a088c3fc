//! A kernel channel: an [`mnt::Chan`] that is counted while it lives and whose last drop
//! goes through the close queue, so dropping one never waits for a server.
//!
//! Closing on purpose ([`KChan::clunk`], the `close` system call, Plan 9's `cclose`) waits
//! for the server; dropping ([`Drop`], Plan 9's `ccloseq`) queues the clunk.

use std::sync::Arc;

use mnt::{Chan, Interrupt, MntError};

use crate::chan_services::ChanServices;
use crate::counters::Counters;
use crate::mount_gone;

/// One channel the kernel holds.
pub(crate) struct KChan {
    /// `None` only while being consumed by `clunk`/`remove`.
    chan: Option<Chan>,
    services: Arc<ChanServices>,
}

impl KChan {
    pub(crate) fn new(chan: Chan, services: &Arc<ChanServices>) -> Self {
        Counters::bump(&services.counters.chans_made);
        Self {
            chan: Some(chan),
            services: services.clone(),
        }
    }

    /// The channel.
    pub(crate) fn get(&self) -> &Chan {
        match &self.chan {
            Some(chan) => chan,
            // `chan` is taken only by methods that consume `self`.
            None => unreachable!("kernel channel used after it was consumed"),
        }
    }

    /// What the kernel's channels share.
    pub(crate) fn services(&self) -> &Arc<ChanServices> {
        &self.services
    }

    /// The channel, to open or create through it.
    pub(crate) fn get_mut(&mut self) -> &mut Chan {
        match &mut self.chan {
            Some(chan) => chan,
            None => unreachable!("kernel channel used after it was consumed"),
        }
    }

    /// A new channel walked from this one along `names`.
    pub(crate) fn walk(&self, names: &[&str], intr: &Interrupt) -> Result<KChan, MntError> {
        let chan = self.get().walk(names, intr)?;
        Ok(KChan::new(chan, &self.services))
    }

    fn take(mut self) -> Option<(Chan, Arc<ChanServices>)> {
        let chan = self.chan.take()?;
        Some((chan, self.services.clone()))
    }

    /// Clunks now and waits for the server (Plan 9's `cclose`).
    pub(crate) fn clunk(self, intr: &Interrupt) -> Result<(), MntError> {
        let Some((chan, services)) = self.take() else {
            return Ok(());
        };
        let mount = chan.mount().clone();
        let result = chan.clunk(intr);
        Self::count_close(&services, result.is_err());
        mount_gone::channel_released(&services.vm, &mount);
        result
    }

    /// Removes the file and clunks the channel, waiting for the server.
    pub(crate) fn remove(self, intr: &Interrupt) -> Result<(), MntError> {
        let Some((chan, services)) = self.take() else {
            return Ok(());
        };
        let mount = chan.mount().clone();
        let result = chan.remove(intr);
        Self::count_close(&services, result.is_err());
        mount_gone::channel_released(&services.vm, &mount);
        result
    }

    fn count_close(services: &ChanServices, failed: bool) {
        Counters::bump(&services.counters.chans_closed);
        if failed {
            Counters::bump(&services.counters.clunk_failures);
        }
    }
}

impl Drop for KChan {
    fn drop(&mut self) {
        if let Some(chan) = self.chan.take() {
            self.services.closeq.push(chan);
        }
    }
}
