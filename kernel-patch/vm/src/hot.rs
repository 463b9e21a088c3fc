//! Each CPU's last attached executable image: the hit path of
//! [`Vm::attach_on`](crate::Vm::attach_on) without the table lock.
//!
//! A CPU that attaches one executable again and again (every exec of a running program)
//! finds the image in its own slot instead of its table shard, whose lock every CPU
//! attaching that executable would otherwise write. The slot keeps the image's memory
//! only (an `Arc` clone, no reference in `refs`' sense), and attach takes its reference
//! there only under the image lock, and only while the image has its channel: then
//! `refs > pgref`, every put that could make the image idle or free it decides under that
//! same lock (and takes the channel as it does), so the reference is either seen by it or
//! taken after it, when the image has no channel and attach goes to the table as usual.
//! An image with its channel is linked (put unlinks only at `refs == 0`, having taken the
//! channel), so a reference taken so is one to the table's image.
//!
//! Lock order: a slot's lock is a leaf (an `Arc` is cloned or swapped under it); an image
//! a slot lets go of is dropped after it is unlocked.

use crate::channel::{QueueId, CPU_QUEUES};
use crate::file::FileIdentity;
use crate::image::ExecImage;
use crate::sync::{Arc, Mutex};

/// One slot a CPU queue (CPUs that share a park queue share its slot).
pub(crate) struct HotImages {
    slots: [HotSlot; CPU_QUEUES],
}

/// A CPU's slot, alone on its cache lines.
#[repr(align(128))]
struct HotSlot {
    image: Mutex<Option<Arc<ExecImage>>>,
}

impl HotImages {
    pub(crate) fn new() -> Self {
        Self {
            slots: core::array::from_fn(|_| HotSlot {
                image: Mutex::new(None),
            }),
        }
    }

    /// The image the CPU of `queue` attached last, if it is `identity`'s (memory only: the
    /// caller takes a reference under the image lock, if the image has its channel).
    /// `None` for the shared queue: attaches that say no CPU have no slot.
    pub(crate) fn get(&self, queue: QueueId, identity: &FileIdentity) -> Option<Arc<ExecImage>> {
        let slot = self.slots.get(queue.index())?;
        let image = slot.image.lock();
        image
            .as_ref()
            .filter(|image| image.identity == *identity)
            .cloned()
    }

    /// Remembers `image` as the CPU of `queue`'s last; returns the image it replaces, for
    /// the caller to drop with no lock held.
    pub(crate) fn remember(
        &self,
        queue: QueueId,
        image: &Arc<ExecImage>,
    ) -> Option<Arc<ExecImage>> {
        let slot = self.slots.get(queue.index())?;
        let mut held = slot.image.lock();
        if held
            .as_ref()
            .is_some_and(|held| held.serial == image.serial)
        {
            return None;
        }
        held.replace(image.clone())
    }
}
