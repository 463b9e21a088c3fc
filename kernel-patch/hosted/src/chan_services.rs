//! What every channel of the kernel reaches: the close queue, the counters, vm (to forget a
//! mount's cached files when its last channel goes) and, in legacy mode, the pins that keep
//! image channels open.

use std::sync::{Arc, Mutex, MutexGuard};

use vm::{FileIdentity, Vm};

use crate::closeq::CloseQueue;
use crate::counters::Counters;
use crate::kchan::KChan;

/// Channels of images that vm has let go of, kept open in legacy mode (see
/// [`KernelConfig::legacy_image_channel`](crate::KernelConfig::legacy_image_channel)).
pub(crate) type Pins = Vec<(FileIdentity, KChan)>;

/// The kernel-wide services every [`KChan`] holds a reference to: where its last drop
/// queues its clunk, what it counts, and (legacy mode) where an image's channel is pinned.
pub(crate) struct ChanServices {
    pub(crate) closeq: CloseQueue,
    pub(crate) counters: Arc<Counters>,
    /// The kernel's vm, for [`crate::mount_gone`].
    pub(crate) vm: Vm,
    /// `Some` in legacy mode.
    pub(crate) legacy_pins: Option<Mutex<Pins>>,
}

impl ChanServices {
    pub(crate) fn new(max_close_workers: usize, legacy: bool, vm: &Vm) -> Arc<Self> {
        let counters = Arc::new(Counters::default());
        Arc::new(Self {
            closeq: CloseQueue::new(counters.clone(), max_close_workers, vm.clone()),
            counters,
            vm: vm.clone(),
            legacy_pins: legacy.then(|| Mutex::new(Vec::new())),
        })
    }

    /// The pins, if in legacy mode, locked. A leaf lock; channels taken out of it are
    /// dropped after it is released.
    pub(crate) fn pins(&self) -> Option<MutexGuard<'_, Pins>> {
        self.legacy_pins
            .as_ref()
            .map(|pins| pins.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}
