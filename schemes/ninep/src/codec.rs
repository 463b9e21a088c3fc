//! Encoding and decoding of messages, stat records and readdir entries.
//!
//! [`wire`] holds the bounds-checked primitives, [`body`] the layout of each message;
//! this module frames them (`size[4] type[1] tag[2]`) and defines the errors.

mod body;
mod data;
mod wire;

pub use data::{
    decode_view, peek_twrite, FcallView, MsgView, RreadInPlace, TwriteHeader, RREAD_HEADER_LEN,
    TWRITE_HEADER_LEN,
};

use alloc::vec::Vec;

use crate::consts::{mtype, HEADER_LEN};
use crate::msg::{Dialect, Dirent, Fcall, Stat};
use wire::{Reader, Sink, Writer};

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// A string longer than 65535 bytes.
    StringTooLong,
    /// More than 16 names in a `Twalk` or qids in an `Rwalk`.
    TooManyWalkElems,
    /// The message would be longer than `u32::MAX` bytes, or a stat longer than 65535.
    TooLong,
}

/// What was wrong with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// Fewer than 7 bytes, or a size field below 7.
    TooShort,
    /// The size field disagrees with the bytes given.
    SizeMismatch { declared: u32, actual: usize },
    /// A field runs past the end of the message.
    Overrun,
    /// Bytes left over after the last field (the size is trusted: the message is well
    /// framed, its contents are not).
    TrailingBytes,
    /// A type number no dialect defines (or `Terror`).
    UnknownType(u8),
    /// More than 16 names in a `Twalk` or qids in an `Rwalk`.
    TooManyWalkElems(u16),
    /// A string holds a NUL byte.
    NulInString,
    /// A string is not UTF-8.
    InvalidUtf8,
    /// A stat's inner size disagrees with its outer size or its contents, inside a
    /// message whose own size is right (well framed, as `TrailingBytes`).
    BadStatSize,
}

/// A message that could not be decoded, with what could be read of its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    pub kind: DecodeErrorKind,
    /// The type byte, if the header was there.
    pub mtype: Option<u8>,
    /// The tag, if the header was there.
    pub tag: Option<u16>,
}

impl DecodeError {
    /// True when the message's framing cannot be trusted (a size below 7 or unlike the
    /// bytes given, a field that overruns the message, an unknown type), or when there
    /// is no tag to answer: a server closes the connection. Otherwise the message was
    /// well framed (its size is right, so the next message starts where it ends) and a
    /// server answers its tag with an error: bad strings, too many walk names, a stat
    /// whose inner size disagrees with the message, bytes left after the last field.
    pub fn is_framing(&self) -> bool {
        let well_framed = matches!(
            self.kind,
            DecodeErrorKind::TooManyWalkElems(_)
                | DecodeErrorKind::NulInString
                | DecodeErrorKind::InvalidUtf8
                | DecodeErrorKind::BadStatSize
                | DecodeErrorKind::TrailingBytes
        );
        !well_framed || self.tag.is_none()
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "bad 9P message: {:?}", self.kind)?;
        if let Some(t) = self.mtype {
            write!(f, " in {}", mtype_name(t))?;
        }
        if let Some(tag) = self.tag {
            write!(f, " tag {tag}")?;
        }
        Ok(())
    }
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = match self {
            EncodeError::StringTooLong => "string longer than 65535 bytes",
            EncodeError::TooManyWalkElems => "more than 16 walk elements",
            EncodeError::TooLong => "message too long",
        };
        f.write_str(s)
    }
}

impl core::error::Error for DecodeError {}
impl core::error::Error for EncodeError {}

/// The size field of a message whose first 4 bytes are in `buf`, if there are 4.
pub fn peek_size(buf: &[u8]) -> Option<u32> {
    let b: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Appends one encoded message to `out`. On error `out` is left as it was.
pub fn encode(fc: &Fcall, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    wire::append(fc, out)
}

/// The number of bytes [`encode`] would append (size field included).
///
/// For a message that [`encode`] refuses this is the length it would have had
/// (saturating at `usize::MAX`).
pub fn encoded_len(fc: &Fcall) -> usize {
    wire::measure(fc).0
}

impl wire::Encode for Fcall {
    fn put<S: Sink>(&self, w: &mut Writer<S>) {
        let mut body = Writer::new(wire::Counter::default());
        body::put(&self.msg, &mut body);
        let (wire::Counter(body_len), _) = body.finish();
        // The size field counts itself and the rest of the header.
        w.u32_len(body_len.saturating_add(HEADER_LEN), EncodeError::TooLong);
        w.u8(self.msg.mtype());
        w.u16(self.tag);
        body::put(&self.msg, w);
    }
}

/// Decodes exactly one whole message (size field included) of the given dialect.
///
/// `dialect` only decides whether `Tauth`/`Tattach` carry `n_uname`; messages of the
/// other dialect's type numbers decode in both. [`decode_view`] decodes the same
/// messages without copying a `Twrite`'s data.
pub fn decode(buf: &[u8], dialect: Dialect) -> Result<Fcall, DecodeError> {
    let (t, tag, mut r) = frame(buf)?;
    let fail = fail_in(t, tag);
    let msg = body::get(t, &mut r, dialect).map_err(&fail)?;
    r.finish().map_err(&fail)?;
    Ok(Fcall { tag, msg })
}

/// Checks the header and the size of one whole message; returns its type, its tag and
/// a reader over its body.
fn frame(buf: &[u8]) -> Result<(u8, u16, Reader<'_>), DecodeError> {
    let (mtype, tag) = match buf.get(..HEADER_LEN) {
        Some(&[_, _, _, _, t, tag0, tag1]) => (Some(t), Some(u16::from_le_bytes([tag0, tag1]))),
        _ => (None, None),
    };
    let fail = |kind| DecodeError { kind, mtype, tag };
    let (Some(size), Some(t), Some(tag)) = (peek_size(buf), mtype, tag) else {
        return Err(fail(DecodeErrorKind::TooShort));
    };
    if size < HEADER_LEN as u32 {
        return Err(fail(DecodeErrorKind::TooShort));
    }
    if usize::try_from(size).ok() != Some(buf.len()) {
        return Err(fail(DecodeErrorKind::SizeMismatch {
            declared: size,
            actual: buf.len(),
        }));
    }
    Ok((
        t,
        tag,
        Reader::new(buf.get(HEADER_LEN..).unwrap_or_default()),
    ))
}

/// The error of a message whose header (type `t`, tag `tag`) was read.
fn fail_in(t: u8, tag: u16) -> impl Fn(DecodeErrorKind) -> DecodeError + Copy {
    move |kind| DecodeError {
        kind,
        mtype: Some(t),
        tag: Some(tag),
    }
}

/// "Twalk", "Rlerror", … for a type number; "T?"/"R?" for unknown ones.
pub fn mtype_name(t: u8) -> &'static str {
    use mtype::*;
    match t {
        TLERROR => "Tlerror",
        RLERROR => "Rlerror",
        TSTATFS => "Tstatfs",
        RSTATFS => "Rstatfs",
        TLOPEN => "Tlopen",
        RLOPEN => "Rlopen",
        TLCREATE => "Tlcreate",
        RLCREATE => "Rlcreate",
        TSYMLINK => "Tsymlink",
        RSYMLINK => "Rsymlink",
        TMKNOD => "Tmknod",
        RMKNOD => "Rmknod",
        TRENAME => "Trename",
        RRENAME => "Rrename",
        TREADLINK => "Treadlink",
        RREADLINK => "Rreadlink",
        TGETATTR => "Tgetattr",
        RGETATTR => "Rgetattr",
        TSETATTR => "Tsetattr",
        RSETATTR => "Rsetattr",
        TXATTRWALK => "Txattrwalk",
        RXATTRWALK => "Rxattrwalk",
        TXATTRCREATE => "Txattrcreate",
        RXATTRCREATE => "Rxattrcreate",
        TREADDIR => "Treaddir",
        RREADDIR => "Rreaddir",
        TFSYNC => "Tfsync",
        RFSYNC => "Rfsync",
        TLOCK => "Tlock",
        RLOCK => "Rlock",
        TGETLOCK => "Tgetlock",
        RGETLOCK => "Rgetlock",
        TLINK => "Tlink",
        RLINK => "Rlink",
        TMKDIR => "Tmkdir",
        RMKDIR => "Rmkdir",
        TRENAMEAT => "Trenameat",
        RRENAMEAT => "Rrenameat",
        TUNLINKAT => "Tunlinkat",
        RUNLINKAT => "Runlinkat",
        TVERSION => "Tversion",
        RVERSION => "Rversion",
        TAUTH => "Tauth",
        RAUTH => "Rauth",
        TATTACH => "Tattach",
        RATTACH => "Rattach",
        TERROR => "Terror",
        RERROR => "Rerror",
        TFLUSH => "Tflush",
        RFLUSH => "Rflush",
        TWALK => "Twalk",
        RWALK => "Rwalk",
        TOPEN => "Topen",
        ROPEN => "Ropen",
        TCREATE => "Tcreate",
        RCREATE => "Rcreate",
        TREAD => "Tread",
        RREAD => "Rread",
        TWRITE => "Twrite",
        RWRITE => "Rwrite",
        TCLUNK => "Tclunk",
        RCLUNK => "Rclunk",
        TREMOVE => "Tremove",
        RREMOVE => "Rremove",
        TSTAT => "Tstat",
        RSTAT => "Rstat",
        TWSTAT => "Twstat",
        RWSTAT => "Rwstat",
        _ if t & 1 == 0 => "T?",
        _ => "R?",
    }
}

/// A `DecodeError` outside any message (a stat record or readdir entry on its own).
fn bare(kind: DecodeErrorKind) -> DecodeError {
    DecodeError {
        kind,
        mtype: None,
        tag: None,
    }
}

impl wire::Encode for Stat {
    fn put<S: Sink>(&self, w: &mut Writer<S>) {
        w.stat(self);
    }
}

impl Stat {
    /// Encoded length including the leading `size[2]`.
    pub fn encoded_len(&self) -> usize {
        [&self.name, &self.uid, &self.gid, &self.muid]
            .iter()
            .fold(wire::STAT_FIXED_LEN, |n, s| n.saturating_add(s.len()))
    }
    /// Appends `size[2]` and the record, as directory reads and `Rstat` carry it.
    ///
    /// Fails, leaving `out` as it was, if a string is longer than 65535 bytes or the
    /// whole record (its `size[2]` included) is.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        wire::append(self, out)
    }
    /// Decodes one record (with its `size[2]`) from the front of `buf`; returns it and
    /// the bytes it used.
    pub fn decode(buf: &[u8]) -> Result<(Stat, usize), DecodeError> {
        let mut r = Reader::new(buf);
        let stat = r.stat().map_err(bare)?;
        Ok((stat, buf.len() - r.remaining()))
    }
}

impl wire::Encode for Dirent {
    fn put<S: Sink>(&self, w: &mut Writer<S>) {
        w.qid(&self.qid);
        w.u64(self.offset);
        w.u8(self.ty);
        w.string(&self.name);
    }
}

impl Dirent {
    /// Encoded length of one `Rreaddir` entry.
    pub fn encoded_len(&self) -> usize {
        wire::DIRENT_FIXED_LEN.saturating_add(self.name.len())
    }
    /// Appends one `Rreaddir` entry.
    ///
    /// Fails, leaving `out` as it was, if the name is longer than 65535 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        wire::append(self, out)
    }
    /// Decodes one entry from the front of `buf`; returns it and the bytes it used.
    pub fn decode(buf: &[u8]) -> Result<(Dirent, usize), DecodeError> {
        let mut r = Reader::new(buf);
        let dirent = r.dirent().map_err(bare)?;
        Ok((dirent, buf.len() - r.remaining()))
    }
}
