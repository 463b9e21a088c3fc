//! I/O of files on cached mounts (Plan 9's `devmnt.c` with `cache.c`): the kernel's side of
//! vm's [`MountCache`], call by call as its rustdoc table says.
//!
//! - open and create: [`open`] stats the file (neither dialect's open reply carries the
//!   length) and asks the cache for a [`CachedFile`], kept with the open file until close;
//! - read: [`read`] answers from the cache what it has, below the length the cache knows,
//!   and fills it with what the server sent for the rest;
//! - write: [`write`] sends one `Twrite` at a time, each between
//!   [`CachedFile::begin_write`] and [`vm::PendingWrite::done`], so our own bytes keep the
//!   cache valid and the version counts one a message, as the server's does;
//! - a length change: [`truncate`] wipes and relabels with the server's new version, as a
//!   truncating open does.
//!
//! The channel's `qid.vers` after our writes is the handle's [`CachedFile::vers`], which
//! [`vm::PendingWrite::done`] moves: mnt's channel keeps the qid of its open, and nothing
//! of the kernel reads an open channel's version after it (exec opens its own channel).
//!
//! Nothing here holds a lock of the kernel's, and the callers hold none either (a
//! descriptor's offset is read before the call and advanced after it).

use mnt::ninep::{dm, qt};
use mnt::{Chan, Changes, Interrupt, MntError};
use vm::{CachedFile, FileIdentity, MountCache, OpenKind};

use crate::image_file::identity_of;

/// How a channel came to be open, for the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// An open of an existing file; `truncated` for `OTRUNC`.
    Existing {
        /// Opened with `OTRUNC`.
        truncated: bool,
    },
    /// A create with these permissions (Plan 9's `perm`, `dm::APPEND` included).
    Created {
        /// The create's permissions.
        perm: u32,
    },
}

/// Whether a file of this qid type and mode is ever cached: directories are read as
/// entries, not data, and append-only files are never cached (their entry, if any, is
/// dropped by the cache's open).
fn append_only(qid_type: u8, mode: u32) -> bool {
    qid_type & qt::APPEND != 0 || mode & dm::APPEND != 0
}

/// The cache's handle for `chan`, just opened or created on a cached mount; `None` for a
/// directory. An open stats the file for its length and mode (one `Tstat` or `Tgetattr`);
/// the stat's version and length go to the cache together, as the server said them in one
/// reply. A create needs no stat: a new file is empty.
pub(crate) fn open(
    cache: &MountCache,
    chan: &Chan,
    how: Opened,
    intr: &Interrupt,
) -> Result<Option<CachedFile>, MntError> {
    let qid = chan.qid();
    if qid.ty & qt::DIR != 0 {
        return Ok(None);
    }
    let file = match how {
        Opened::Created { perm } => cache.open(
            identity_of(chan),
            0,
            OpenKind::Created,
            append_only(qid.ty, perm),
        ),
        Opened::Existing { truncated } => {
            let info = chan.stat(intr)?;
            if info.qid.path != qid.path {
                // A server that names another file in its stat: trust neither reply.
                log::debug!("hosted: stat of {:?} names qid {:?}", chan.path(), info.qid);
                return Ok(None);
            }
            let identity = FileIdentity {
                version: info.version,
                ..identity_of(chan)
            };
            let kind = if truncated {
                OpenKind::Truncated
            } else {
                OpenKind::Existing
            };
            cache.open(
                identity,
                info.length,
                kind,
                append_only(qid.ty | info.qid.ty, info.mode),
            )
        }
    };
    Ok(Some(file))
}

/// Reads at `offset` into `buf` (as [`Chan::read`] does), the cached prefix from the cache
/// and the rest from the server. Below the length the cache knows, a read that the cache
/// holds sends nothing; at or past it the read is end of file, as the cached data is the
/// file as it was at open (plus our writes). An uncached file goes to the server.
pub(crate) fn read(
    chan: &Chan,
    file: &CachedFile,
    offset: u64,
    buf: &mut [u8],
    intr: &Interrupt,
) -> Result<usize, MntError> {
    let readable = chan.open_mode().is_some_and(|mode| mode.can_read());
    let Some(length) = file.length().filter(|_| readable) else {
        return chan.read(offset, buf, intr);
    };
    let left = length.saturating_sub(offset);
    let want = usize::try_from(left).map_or(buf.len(), |left| left.min(buf.len()));
    if want == 0 {
        return Ok(0);
    }
    let buf = &mut buf[..want];
    let hit = file.read(offset, buf);
    if hit.len == want {
        return Ok(want);
    }
    let rest_at = offset + hit.len as u64;
    match chan.read(rest_at, &mut buf[hit.len..], intr) {
        Ok(n) => {
            file.fill(hit.ticket, rest_at, &buf[hit.len..hit.len + n]);
            Ok(hit.len + n)
        }
        // As `Chan::read`: the bytes already had are returned, the next call reports. An
        // interrupt that cut the read short is posted again so that call sees it.
        Err(err) if hit.len > 0 => {
            if matches!(err, MntError::Interrupted) {
                intr.post();
            }
            Ok(hit.len)
        }
        Err(err) => Err(err),
    }
}

/// Writes `data` at `offset` (as [`Chan::write`] does): one `Twrite` at a time, each marked
/// in flight in the cache before it is sent and ended with what the server wrote, so the
/// cache holds our bytes and counts one version a message. A message that fails or is
/// flushed leaves its outcome unknown: its pending write is dropped, which wipes the cache.
pub(crate) fn write(
    chan: &Chan,
    file: &CachedFile,
    offset: u64,
    data: &[u8],
    intr: &Interrupt,
) -> Result<usize, MntError> {
    if !chan.open_mode().is_some_and(|mode| mode.can_write()) {
        // Refused before anything is sent: nothing for the cache to hear of.
        return chan.write(offset, data, intr);
    }
    let iounit = (chan.iounit() as usize).max(1);
    let mut done = 0;
    // A zero-length write is still a message.
    loop {
        let n = (data.len() - done).min(iounit);
        let at = offset.saturating_add(done as u64);
        let chunk = &data[done..done + n];
        let pending = file.begin_write();
        // At most one iounit: exactly one Twrite.
        match chan.write(at, chunk, intr) {
            Ok(count) => {
                pending.done(at, &chunk[..count]);
                done += count;
                if count < n || done == data.len() || intr.is_pending() {
                    break;
                }
            }
            Err(err) => {
                drop(pending);
                if done > 0 {
                    // The partial count goes back; an interrupt stays posted for the next call.
                    if matches!(err, MntError::Interrupted) {
                        intr.post();
                    }
                    break;
                }
                return Err(err);
            }
        }
    }
    Ok(done)
}

/// Sets the length of the file `chan` was walked to (not opened: 9P walks and opens no
/// open fid) to `length`, with one `Twstat` (or `Tsetattr`). On a cached mount (`cache`
/// given) the file's cached data goes as for a truncating open: after a success the
/// server's new version and length (a stat) relabel the emptied entry; when the outcome or
/// the new version is unknown the entry is dropped. Open handles share the entry, so they
/// see the file's new length. A file with no entry gets none (it was never opened cached,
/// or its entry went): the truncate is no open. An append-only file's entry goes.
pub(crate) fn truncate(
    cache: Option<&MountCache>,
    chan: &mut Chan,
    length: u64,
    intr: &Interrupt,
) -> Result<(), MntError> {
    let result = chan.wstat(&Changes::truncate(length), intr);
    let Some(cache) = cache else {
        return result;
    };
    if result.is_err() {
        cache.forget(identity_of(chan));
        return result;
    }
    match chan.stat(intr) {
        Ok(info) if info.length == length && info.qid.path == chan.qid().path => {
            let identity = FileIdentity {
                version: info.version,
                ..identity_of(chan)
            };
            if append_only(info.qid.ty, info.mode) {
                cache.forget(identity);
            } else {
                cache.set_length(identity, length);
            }
        }
        // Another change came between: what the entry would be labelled with is unknown.
        Ok(_) => {
            cache.forget(identity_of(chan));
        }
        Err(err) => {
            cache.forget(identity_of(chan));
            return Err(err);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_only_by_qid_or_mode() {
        assert!(append_only(qt::APPEND, 0o644));
        assert!(append_only(qt::FILE, dm::APPEND | 0o644));
        assert!(!append_only(qt::FILE, 0o644));
    }
}
