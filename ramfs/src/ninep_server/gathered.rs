//! Answering a Twrite whose data was read into page buffers (`input`): through the
//! fid's file handle, the pages becoming the file's, when the write is plain file data;
//! every other Twrite (an xattr, a directory, a bad fid, an error to answer) as the
//! session answers the same message read whole.

use ninep::{DecodeError, Msg};

use super::input::GatheredWrite;
use super::session::Session;
use super::trace::log_write;

impl Session<'_> {
    /// Answers the gathered Twrite `w` onto `out`, as [`Session::handle_bytes`] would
    /// the same message in one buffer. A framing error is returned (none is possible:
    /// the message's size agrees with its count).
    pub(super) fn handle_gathered(
        &mut self,
        mut w: GatheredWrite<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), DecodeError> {
        let h = w.header;
        let target = match self.dialect {
            Some(_) => self.write_target(h.fid, w.data.len()),
            None => None,
        };
        let Some(target) = target else {
            return self.handle_bytes(&w.message(), out);
        };
        if self.config.trace {
            log_write(self.id, h.tag, h.fid, h.offset, w.data.len());
        }
        let written =
            target
                .file
                .write_gathered(&target.cred, h.offset, &mut w.data, target.append, w.spare);
        let result = match written {
            Ok(Some(count)) => Ok(count),
            // Set-id bits go: that changes the node, under the exclusive lock.
            Ok(None) => self.fs.write(
                &target.cred,
                target.node,
                h.offset,
                &w.data.to_vec(),
                target.append,
            ),
            Err(e) => Err(e),
        };
        self.reply(h.tag, result.map(|count| Msg::Rwrite { count }), out);
        Ok(())
    }
}
