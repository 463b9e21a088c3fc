//! Forgetting a device: dropping at once what is cached of the files of a device that can
//! never be seen again, such as a mount whose last channel went (mount ids are never
//! reused, so no later open or exec can hit its images or mount-cache files).
//!
//! Without this, such images and files would wait for reclaim, holding pages and idle
//! slots nobody can use. Executable images go the way reclaim takes them (a short
//! reference, every page at ref 0 taken, then put, which unlinks an image left with no
//! reference), so every rule of the image cache holds: a page still mapped by a live
//! segment stays until it is unmapped, and an image still in use stays in the table until
//! its last segment goes. Mount-cache files of the device leave the mount cache's map, as
//! [`MountCache::forget`](crate::MountCache::forget) does.
//!
//! Lock order: the reclaim lock → an image lock → the table lock, as in `cache.rs`; the
//! table lock is taken alone to find each image, and released before its image is locked.
//! A channel the put drops is parked, never closed here.

use crate::image::ExecImage;
use crate::table::SHARDS;
use crate::vm::{Vm, VmState};

impl Vm {
    /// Frees what is cached of the files of device `(dev_type, dev)`, which the kernel
    /// knows can never be opened again (for a mount: its last channel went): its idle
    /// executable images with their pages, the unmapped pages of its images still in use,
    /// and its mount-cache files. Pages mapped by a live segment stay until unmapped; an
    /// image in use stays until its last segment goes and then waits on the idle list like
    /// any idle image. Returns how many pages were freed.
    ///
    /// Takes vm's locks only briefly and never blocks: a channel a put drops here (a segment
    /// went meanwhile) is parked, as every channel vm lets go, for
    /// [`Vm::run_parked_closes`](crate::Vm::run_parked_closes).
    pub fn forget_device(&self, dev_type: u32, dev: u64) -> usize {
        let freed = self.shared.forget_device(dev_type, dev);
        // With no lock held: frames past `Config::max_free_pages` go back now, the
        // executable images' as well as the mount cache's.
        self.shared.trim_free_pool();
        freed
    }
}

impl VmState {
    /// See [`Vm::forget_device`].
    pub(crate) fn forget_device(&self, dev_type: u32, dev: u64) -> usize {
        let mut freed = 0;
        let reclaiming = self.reclaim_lock.lock();
        let of_device =
            |image: &ExecImage| image.identity.dev_type == dev_type && image.identity.dev == dev;
        // Shard by shard, slot by slot: an image stays in its slot while it is linked, so
        // every image of the device linked when the pass began is visited.
        for shard in 0..SHARDS {
            let mut slot = 0;
            loop {
                let next = self
                    .table
                    .lock_shard(shard)
                    .next_image_from(slot, of_device);
                let Some((image, at)) = next else {
                    break;
                };
                slot = at + 1;
                let done = self.reclaim_image(image, usize::MAX);
                freed += done.taken;
            }
        }
        drop(reclaiming);
        freed + self.mcache_forget_device(dev_type, dev)
    }
}
