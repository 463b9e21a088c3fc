//! vm's [`ImageFile`] on a kernel channel: the channel an image reads its pages from.
//!
//! vm hands the file back through [`ImageFile::close`] when the image no longer needs it
//! (`ref == pgref`: only cached pages refer to it). Normally that queues the clunk (Plan 9's
//! `putimage` calls `ccloseq`). In legacy mode the channel is pinned instead, and released
//! only when the image itself is gone, which is what the kernels before the fix did: the
//! image kept its channel until its last page was uncached, and an exited program's cached
//! text kept its file server busy (the 9fans bug of 2014). See
//! [`Kernel::wait_closes`](crate::Kernel::wait_closes) for when pins are looked at.

use mnt::{MntError, DEV_TYPE_MNT};
use vm::{FileError, FileIdentity, ImageFile};

use crate::counters::Counters;
use crate::current;
use crate::kchan::KChan;

/// The identity vm keys an image by, for a channel of a mount: `('M', attach id, qid.path,
/// qid.vers)` (mnt's `FileKey`); attach ids, like mount ids, are never reused.
pub(crate) fn identity_of(chan: &mnt::Chan) -> FileIdentity {
    let key = chan.file_key();
    FileIdentity {
        dev_type: u32::from(DEV_TYPE_MNT),
        dev: key.dev,
        qid_path: key.path,
        qid_vers: key.version,
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
}

impl ChanFile {
    /// `chan` must be open for reading (exec opens with `OEXEC`).
    pub(crate) fn new(chan: KChan) -> Self {
        let identity = identity_of(chan.get());
        Self { chan, identity }
    }
}

impl ImageFile for ChanFile {
    fn identity(&self) -> FileIdentity {
        self.identity
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        let counters = &self.chan.shared().counters;
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
        current::with_interrupt(|intr| self.chan.get().stat(intr))
            .map(|info| info.length)
            .map_err(|err| file_error(&err))
    }

    fn close(self: Box<Self>) {
        let ChanFile { chan, identity } = *self;
        let shared = chan.shared().clone();
        let pins = shared.pins();
        match pins {
            Some(mut pins) => pins.push((identity, chan)),
            // Dropping queues the clunk.
            None => drop(chan),
        }
    }
}
