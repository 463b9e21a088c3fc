//! vm's [`ImageFile`] on a kernel channel: the channel an image reads its pages from.
//!
//! vm hands the file back through [`ImageFile::close`] when the image no longer needs it
//! (`ref == pgref`: only cached pages refer to it). Normally that queues the clunk (Plan 9's
//! `putimage` calls `ccloseq`). In legacy mode the channel is pinned instead, and released
//! only when the image itself is gone, which is what the kernels before the fix did: the
//! image kept its channel until its last page was uncached, and an exited program's cached
//! text kept its file server busy (the 9fans bug of 2014). See
//! [`Kernel::wait_closes`](crate::Kernel::wait_closes) for when pins are looked at.

use std::sync::Mutex;

use mnt::{MntError, DEV_TYPE_MNT};
use vm::{FileError, FileIdentity, ImageFile};

use crate::counters::Counters;
use crate::current;
use crate::kchan::KChan;

/// The identity of a channel of a mount: `('M', attach id, qid.path, qid.version)` (mnt's
/// `FileKey`); attach ids, like mount ids, are never reused. The version is the channel's
/// qid's, as its walk or open returned it; what caches validate by is a stat's
/// [`FileInfo::version`](mnt::FileInfo), put in its place (see [`identity_with`]).
pub(crate) fn identity_of(chan: &mnt::Chan) -> FileIdentity {
    let key = chan.file_key();
    FileIdentity {
        dev_type: u32::from(DEV_TYPE_MNT),
        dev: key.dev,
        qid_path: key.path,
        version: u64::from(key.version),
    }
}

/// The identity of `chan`'s file as `info`, a stat of it, gives its contents' version.
pub(crate) fn identity_with(chan: &mnt::Chan, info: &mnt::FileInfo) -> FileIdentity {
    FileIdentity {
        version: info.version,
        ..identity_of(chan)
    }
}

fn file_error(err: &MntError) -> FileError {
    match err {
        MntError::Interrupted => FileError::Interrupted,
        _ => FileError::Io,
    }
}

/// An open executable, as vm reads it.
pub(crate) struct ChanFile {
    chan: KChan,
    identity: FileIdentity,
    /// The length exec's stat gave, with the identity's version, for vm's first
    /// [`ImageFile::length`] (exec's own layout check): version and length then come from
    /// one reply, and exec sends one stat. Later calls stat again. A leaf lock.
    exec_length: Mutex<Option<u64>>,
}

impl ChanFile {
    /// `chan` must be open for reading (exec opens with `OEXEC`); `info` is a stat of it,
    /// for the version its image is keyed by and the length exec checks.
    pub(crate) fn new(chan: KChan, info: &mnt::FileInfo) -> Self {
        let identity = identity_with(chan.get(), info);
        Self {
            chan,
            identity,
            exec_length: Mutex::new(Some(info.length)),
        }
    }
}

impl ImageFile for ChanFile {
    fn identity(&self) -> FileIdentity {
        self.identity
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        let counters = &self.chan.services().counters;
        Counters::bump(&counters.image_reads);
        let result = current::with_interrupt(|intr| self.chan.get().read(offset, buf, intr));
        match result {
            Ok(n) => {
                Counters::add(&counters.image_read_bytes, n as u64);
                Ok(n)
            }
            Err(err) => {
                log::debug!("hosted: image read at {offset} failed: {err}");
                Counters::bump(&counters.image_read_errors);
                Err(file_error(&err))
            }
        }
    }

    fn length(&self) -> Result<u64, FileError> {
        let exec_length = self
            .exec_length
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(length) = exec_length {
            return Ok(length);
        }
        current::with_interrupt(|intr| self.chan.get().stat(intr))
            .map(|info| info.length)
            .map_err(|err| file_error(&err))
    }

    fn close(self: Box<Self>) {
        let ChanFile { chan, identity, .. } = *self;
        let services = chan.services().clone();
        let pins = services.pins();
        match pins {
            Some(mut pins) => pins.push((identity, chan)),
            // Dropping queues the clunk.
            None => drop(chan),
        }
    }
}
