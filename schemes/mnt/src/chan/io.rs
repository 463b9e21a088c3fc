//! A channel's data transfers: reads, and writes from one buffer or from borrowed slices
//! (a lent write), each in messages of at most the iounit.

use alloc::vec::Vec;

use ninep::Msg;

use super::Chan;
use crate::error::{BadReply, MntError};
use crate::rendez::Interrupt;

impl Chan {
    /// Reads at `offset` into `buf`, in messages of at most [`iounit`](Self::iounit)
    /// bytes, stopping at a short read. Returns the bytes read (0 at end of file).
    ///
    /// If a later message fails, the bytes already read are returned; the next call
    /// reports the error. An interrupt that cuts the read short stays posted, so the
    /// next call fails with [`MntError::Interrupted`] at once (Plan 9 returns the
    /// partial count and the note is still delivered). A read whose end would pass
    /// offset `u64::MAX` fails with [`MntError::OffsetOverflow`], unsent.
    pub fn read(&self, offset: u64, buf: &mut [u8], intr: &Interrupt) -> Result<usize, MntError> {
        if !self.opened.is_some_and(|o| o.mode.can_read()) {
            return Err(MntError::NotOpen);
        }
        transfer_end(offset, buf.len())?;
        let iounit = self.iounit() as usize;
        let mut done = 0;
        while done < buf.len() {
            let want = (buf.len() - done).min(iounit);
            let msg = Msg::Tread {
                fid: self.fid,
                offset: transfer_end(offset, done)?,
                // want ≤ iounit < msize ≤ 1 MiB.
                count: want as u32,
            };
            let data = match self.mount.mux().rpc(msg, intr) {
                Ok(Msg::Rread { data }) if data.len() > want => {
                    return Err(self.overlong(want, data.len()));
                }
                Ok(Msg::Rread { data }) => data,
                Ok(other) => return Err(self.mount.wrong_reply(ninep::mtype::TREAD, &other)),
                Err(e) if done > 0 => {
                    keep_interrupt(&e, intr);
                    break;
                }
                Err(e) => return Err(e),
            };
            buf[done..done + data.len()].copy_from_slice(&data);
            done += data.len();
            // Plan 9 stops at a short read, and between messages when a note is
            // pending (the caller's next call will see it).
            if data.len() < want || intr.is_pending() {
                break;
            }
        }
        Ok(done)
    }

    /// Writes `data` at `offset`, in messages of at most [`iounit`](Self::iounit)
    /// bytes, stopping when the server takes less than it was given. Returns the
    /// bytes written.
    ///
    /// If a later message fails, the bytes already written are returned; an interrupt
    /// that cuts the write short stays posted, as for [`read`](Self::read). A write
    /// whose end would pass offset `u64::MAX` fails with
    /// [`MntError::OffsetOverflow`], unsent.
    pub fn write(&self, offset: u64, data: &[u8], intr: &Interrupt) -> Result<usize, MntError> {
        if !self.opened.is_some_and(|o| o.mode.can_write()) {
            return Err(MntError::NotOpen);
        }
        transfer_end(offset, data.len())?;
        let iounit = self.iounit() as usize;
        let mut done = 0;
        // A zero-length write is still a message (it may mean something to the server).
        loop {
            let n = (data.len() - done).min(iounit);
            let msg = Msg::Twrite {
                fid: self.fid,
                offset: transfer_end(offset, done)?,
                data: Vec::from(&data[done..done + n]),
            };
            self.mount.mux().counters.write_copied(n);
            let count = match self.mount.mux().rpc(msg, intr) {
                Ok(Msg::Rwrite { count }) if count as usize > n => {
                    return Err(self.overlong(n, count as usize));
                }
                Ok(Msg::Rwrite { count }) => count as usize,
                Ok(other) => return Err(self.mount.wrong_reply(ninep::mtype::TWRITE, &other)),
                Err(e) if done > 0 => {
                    keep_interrupt(&e, intr);
                    break;
                }
                Err(e) => return Err(e),
            };
            self.mount.mux().counters.written(count);
            done += count;
            if count < n || done == data.len() || intr.is_pending() {
                break;
            }
        }
        Ok(done)
    }

    /// Writes the bytes of `parts`, one after the other, at `offset`, as
    /// [`write`](Self::write) writes one slice, but without copying them: each
    /// `Twrite`'s header is encoded alone and the transport sends it followed by the
    /// slices its data spans (a stream's vectored write), so the caller's memory (pages
    /// lent for the write) goes to the wire as it is. Messages, short writes, errors
    /// and interrupts are as for `write`; the bytes count as
    /// [`MountStats::write_bytes_lent`](crate::MountStats::write_bytes_lent).
    pub fn write_parts(
        &self,
        offset: u64,
        parts: &[&[u8]],
        intr: &Interrupt,
    ) -> Result<usize, MntError> {
        if !self.opened.is_some_and(|o| o.mode.can_write()) {
            return Err(MntError::NotOpen);
        }
        let len: usize = parts.iter().map(|part| part.len()).sum();
        transfer_end(offset, len)?;
        if len == 0 {
            return self.write(offset, &[], intr);
        }
        let iounit = self.iounit() as usize;
        let mut cursor = PartsCursor::new(parts);
        let mut message: Vec<&[u8]> = Vec::new();
        let mut done = 0;
        loop {
            let n = (len - done).min(iounit);
            cursor.take(n, &mut message);
            let msg = Msg::Twrite {
                fid: self.fid,
                offset: transfer_end(offset, done)?,
                data: Vec::new(),
            };
            self.mount.mux().counters.write_lent(n);
            let count = match self.mount.mux().rpc_with_data(msg, &message, intr) {
                Ok(Msg::Rwrite { count }) if count as usize > n => {
                    return Err(self.overlong(n, count as usize));
                }
                Ok(Msg::Rwrite { count }) => count as usize,
                Ok(other) => return Err(self.mount.wrong_reply(ninep::mtype::TWRITE, &other)),
                Err(e) if done > 0 => {
                    keep_interrupt(&e, intr);
                    break;
                }
                Err(e) => return Err(e),
            };
            self.mount.mux().counters.written(count);
            done += count;
            if count < n || done == len || intr.is_pending() {
                break;
            }
        }
        Ok(done)
    }

    /// A reply that claims more data than was asked for: the server is broken.
    pub(super) fn overlong(&self, asked: usize, got: usize) -> MntError {
        let bad = BadReply::Overlong { asked, got };
        self.mount.mux().break_mount(bad.clone(), None);
        MntError::BadReply(bad)
    }
}

/// The offset `len` bytes after `offset`; an error past the largest offset.
pub(super) fn transfer_end(offset: u64, len: usize) -> Result<u64, MntError> {
    u64::try_from(len)
        .ok()
        .and_then(|len| offset.checked_add(len))
        .ok_or(MntError::OffsetOverflow { offset, len })
}

/// After a read or write returned a partial count instead of `e`: if `e` was an
/// interrupt, the rpc consumed its post; post it again, so that the caller's next
/// call reports the interrupt instead of losing it.
fn keep_interrupt(e: &MntError, intr: &Interrupt) {
    if *e == MntError::Interrupted {
        intr.post();
    }
}

/// Where [`Chan::write_parts`] is in its list of slices: it hands out the next `n`
/// bytes as sub-slices, one message's worth at a time.
struct PartsCursor<'a> {
    parts: &'a [&'a [u8]],
    /// The slice the next byte is in, and the byte within it.
    part: usize,
    within: usize,
}

impl<'a> PartsCursor<'a> {
    fn new(parts: &'a [&'a [u8]]) -> Self {
        Self {
            parts,
            part: 0,
            within: 0,
        }
    }

    /// Replaces `out` with the sub-slices holding the next `n` bytes (fewer if the
    /// parts end first).
    fn take(&mut self, mut n: usize, out: &mut Vec<&'a [u8]>) {
        out.clear();
        while n > 0 {
            let Some(part) = self.parts.get(self.part) else {
                return;
            };
            let rest = &part[self.within..];
            let k = rest.len().min(n);
            if k > 0 {
                out.push(&rest[..k]);
            }
            n -= k;
            self.within += k;
            if self.within == part.len() {
                self.part += 1;
                self.within = 0;
            }
        }
    }
}
