//! What happens to vm's caches when a mount is gone: once its last channel is released
//! (the mount counts none; its transport is closed then), no channel of the
//! mount can be made again, and its attach ids, the `dev` of its files' identities, are
//! never reused. So nothing can hit its images or mount-cache files any more, and vm
//! forgets them at once ([`vm::Vm::forget_device`]) instead of keeping their pages and idle
//! slots until reclaim. Pages a running program still maps stay until it unmaps them.
//!
//! Called after every release of a channel: [`crate::kchan::KChan`]'s clunk and remove,
//! and the close queue's workers. A closed mount's later releases (a server that hung up
//! leaves channels to close) forget again, finding less or nothing.
//!
//! Lock: called with no lock of the kernel's held; vm takes its own.

use mnt::{Mount, DEV_TYPE_MNT};
use vm::Vm;

/// After a channel of `mount` was released: if it was the mount's last, vm forgets the
/// files of each of its attaches. Not merely when the transport is closed: a mount hung up
/// by force still has channels, and a program running from it still needs the pages it
/// has cached, since none can be read again.
pub(crate) fn channel_released(vm: &Vm, mount: &Mount) {
    if mount.channels() > 0 {
        return;
    }
    for attach in mount.attach_ids() {
        let freed = vm.forget_device(u32::from(DEV_TYPE_MNT), attach.get());
        if freed > 0 {
            log::debug!(
                "hosted: {} gone: {freed} cached pages of attach {} freed",
                mount.id(),
                attach.get()
            );
        }
    }
    // Forgetting can put an image whose last segment went meanwhile: its channel parked,
    // and this caller (a clunk, a remove, a close-queue worker) holds no lock, so close it.
    vm.run_parked_closes();
}
