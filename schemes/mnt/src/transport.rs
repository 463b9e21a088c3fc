//! The byte pipe between a mount and its server.

use alloc::vec::Vec;

use crate::error::TransportError;
use crate::rendez::Interrupt;

/// A message-preserving, full-duplex connection to a 9P server.
///
/// The unit is one whole 9P message, size field included: a stream transport frames
/// the bytes itself (it reads the 4-byte size, then the rest). A stream transport
/// refuses a size field below 7 or above 1 MiB (`ninep::MAX_MSIZE`, the largest
/// msize) with [`TransportError::FrameSize`], so it never allocates more than that;
/// every other message is returned whole, and the mount judges it against the
/// negotiated msize.
///
/// Concurrency and blocking:
/// - [`send`](Self::send) may be called by several threads at once; each call must put
///   its message on the wire whole, never interleaved with another (a stream
///   transport serializes its writers; that lock is the wire's, no lock of the mount
///   driver is held meanwhile). It may block until the bytes are accepted. It is not
///   interruptible: half a message would break the framing for everyone.
/// - [`recv`](Self::recv) is called by one thread at a time (the mount's current
///   reader). It blocks until a message arrives, and must return
///   [`TransportError::Interrupted`] promptly once `intr` is pending (without
///   consuming it and without losing bytes: the next call returns the next whole
///   message). `intr` is the mount's own: it is posted for the caller's note and
///   also when the mount wants its reader to look again (a tag was freed), so such
///   returns are routine. Sleep through [`Interrupt::sleep_on`]: the post that
///   wakes the transport's rendezvous may come with the mount's state lock held, so
///   that rendezvous's `wakeup` must not block.
/// - [`close`](Self::close) may be called at any time, from any thread, more than once.
///   It makes the server see end of file, and makes blocked `send`/`recv` calls return
///   promptly (`recv` with [`TransportError::Closed`] or [`TransportError::Eof`]).
pub trait Transport: Send + Sync {
    /// Sends one whole message.
    fn send(&self, msg: &[u8]) -> Result<(), TransportError>;
    /// Sends one whole message given in parts, in order (a `Twrite`'s header, then the
    /// borrowed pages of its data), with the same guarantees as [`send`](Self::send):
    /// whole, never interleaved with another message. A stream transport writes the
    /// parts with one vectored write (`writev`), so the data is never copied into a
    /// message buffer; this default, for transports that cannot, joins the parts in
    /// one buffer and sends that.
    fn send_parts(&self, parts: &[&[u8]]) -> Result<(), TransportError> {
        self.send(&parts.concat())
    }
    /// Receives one whole message.
    fn recv(&self, intr: &Interrupt) -> Result<Vec<u8>, TransportError>;
    /// Closes the connection: the server sees end of file.
    fn close(&self);
}
