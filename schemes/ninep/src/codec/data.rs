//! The data messages without a copy of their data: [`decode_view`] lends a `Twrite`'s
//! data from the received buffer, and [`RreadInPlace`] builds an `Rread` in the outgoing
//! buffer, so a server moves file bytes between its buffers and its files exactly once.
//!
//! [`decode`](super::decode) and [`encode`](super::encode) stay the reference: a view
//! turned into an owned message is what `decode` returns for the same bytes, and a
//! finished `RreadInPlace` holds the bytes `encode` writes for the same `Rread`.

use alloc::vec::Vec;

use super::wire::Reader;
use super::{body, fail_in, frame, peek_size, DecodeError, DecodeErrorKind, EncodeError};
use crate::consts::{mtype, HEADER_LEN};
use crate::msg::{Dialect, Fcall, Msg};

/// One decoded message whose `Twrite` data, if any, borrows from the decoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcallView<'a> {
    pub tag: u16,
    pub msg: MsgView<'a>,
}

/// The body of a [`FcallView`]: a borrowed `Twrite`, or any other message as
/// [`decode`](super::decode) returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsgView<'a> {
    /// A `Twrite`; `data` lies in the buffer given to [`decode_view`].
    Twrite {
        fid: u32,
        offset: u64,
        data: &'a [u8],
    },
    /// Every other message (never a `Twrite`).
    Owned(Msg),
}

impl FcallView<'_> {
    /// The owned message, copying a `Twrite`'s data.
    pub fn into_owned(self) -> Fcall {
        let msg = match self.msg {
            MsgView::Twrite { fid, offset, data } => Msg::Twrite {
                fid,
                offset,
                data: data.to_vec(),
            },
            MsgView::Owned(msg) => msg,
        };
        Fcall { tag: self.tag, msg }
    }
}

/// Decodes one whole message as [`decode`](super::decode) does (the same checks, the
/// same errors), except that a `Twrite`'s data is borrowed from `buf`, not copied.
pub fn decode_view(buf: &[u8], dialect: Dialect) -> Result<FcallView<'_>, DecodeError> {
    let (t, tag, mut r) = frame(buf)?;
    let fail = fail_in(t, tag);
    let msg = body_view(t, &mut r, dialect).map_err(&fail)?;
    r.finish().map_err(&fail)?;
    Ok(FcallView { tag, msg })
}

fn body_view<'a>(
    t: u8,
    r: &mut Reader<'a>,
    dialect: Dialect,
) -> Result<MsgView<'a>, DecodeErrorKind> {
    if t != mtype::TWRITE {
        return Ok(MsgView::Owned(body::get(t, r, dialect)?));
    }
    // The layout of body::get's TWRITE, with the data left where it is.
    Ok(MsgView::Twrite {
        fid: r.u32()?,
        offset: r.u64()?,
        data: r.counted_slice()?,
    })
}

/// `size[4] type[1] tag[2] fid[4] offset[8] count[4]`: what precedes a `Twrite`'s data.
pub const TWRITE_HEADER_LEN: usize = HEADER_LEN + 16;

/// The fields of a `Twrite` that precede its data, read before the data has arrived so
/// that a server can choose where to receive the data (straight into page buffers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwriteHeader {
    pub tag: u16,
    pub fid: u32,
    pub offset: u64,
    /// The data's length: the message is [`TWRITE_HEADER_LEN`] + `count` bytes.
    pub count: u32,
}

/// The header of the `Twrite` whose first [`TWRITE_HEADER_LEN`] bytes begin `buf` (the
/// rest of the message need not be there), if its size field and count agree: the
/// whole message, once its data is in, decodes as this `Twrite` with [`decode_view`].
/// `None` for any other type, fewer bytes, or a size that disagrees with the count
/// (which `decode_view` would refuse).
pub fn peek_twrite(buf: &[u8]) -> Option<TwriteHeader> {
    let head = buf.get(..TWRITE_HEADER_LEN)?;
    if head[4] != mtype::TWRITE {
        return None;
    }
    let mut r = Reader::new(&head[5..]);
    let (tag, fid, offset, count) = (r.u16().ok()?, r.u32().ok()?, r.u64().ok()?, r.u32().ok()?);
    let size = peek_size(head)?;
    (u64::from(size) == TWRITE_HEADER_LEN as u64 + u64::from(count)).then_some(TwriteHeader {
        tag,
        fid,
        offset,
        count,
    })
}

/// `size[4] type[1] tag[2] count[4]`: what precedes an `Rread`'s data.
pub const RREAD_HEADER_LEN: usize = HEADER_LEN + 4;

/// An `Rread` being built at the end of an output buffer: the header is written first,
/// the data is appended after it with [`RreadInPlace::push`], and
/// [`RreadInPlace::finish`] fills in the size and the count. Dropped unfinished, it takes
/// the header and any data back off, leaving the buffer as it was, so an error found
/// halfway can be answered instead.
///
/// ```
/// use ninep::{decode, Dialect, Msg, RreadInPlace};
///
/// let mut out = Vec::new();
/// let mut reply = RreadInPlace::begin(&mut out, 7, 8);
/// reply.push(b"file ");
/// reply.push(b"data");
/// assert_eq!(reply.finish(), Ok(9));
/// assert_eq!(decode(&out, Dialect::L).unwrap().msg, Msg::Rread { data: b"file data".to_vec() });
/// ```
#[derive(Debug)]
pub struct RreadInPlace<'a> {
    out: &'a mut Vec<u8>,
    /// Where the header starts in `out`.
    start: usize,
    finished: bool,
}

impl<'a> RreadInPlace<'a> {
    /// Starts an `Rread` for `tag` at the end of `out`, with room reserved for
    /// `capacity` bytes of data so that pushing them moves nothing already there.
    pub fn begin(out: &'a mut Vec<u8>, tag: u16, capacity: usize) -> Self {
        let start = out.len();
        out.reserve(RREAD_HEADER_LEN.saturating_add(capacity));
        // The size and count are placeholders until `finish`.
        out.extend_from_slice(&[0; 4]);
        out.push(mtype::RREAD);
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        RreadInPlace {
            out,
            start,
            finished: false,
        }
    }

    /// Appends data.
    pub fn push(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Data bytes pushed so far.
    pub fn data_len(&self) -> usize {
        self.message_len() - RREAD_HEADER_LEN
    }

    /// The length of the whole message so far, its header included.
    pub fn message_len(&self) -> usize {
        self.out.len() - self.start
    }

    /// Fills in the size and the count and returns the count. A message longer than
    /// `u32::MAX` bytes is refused and taken back off the buffer.
    pub fn finish(mut self) -> Result<u32, EncodeError> {
        let size = u32::try_from(self.message_len()).map_err(|_| EncodeError::TooLong)?;
        // Fits, since the count is the size less the header.
        let count = size - RREAD_HEADER_LEN as u32;
        let header = &mut self.out[self.start..self.start + RREAD_HEADER_LEN];
        header[..4].copy_from_slice(&size.to_le_bytes());
        header[HEADER_LEN..].copy_from_slice(&count.to_le_bytes());
        self.finished = true;
        Ok(count)
    }
}

impl Drop for RreadInPlace<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.out.truncate(self.start);
        }
    }
}
