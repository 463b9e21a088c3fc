//! Encoding and decoding of messages, stat records and readdir entries.
//!
//! (Bodies are being filled in: the signatures below are the crate's contract.)

use alloc::vec::Vec;

use crate::msg::{Dialect, Dirent, Fcall, Stat};

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
    /// Bytes left over after the last field.
    TrailingBytes,
    /// A type number no dialect defines (or `Terror`).
    UnknownType(u8),
    /// More than 16 names in a `Twalk` or qids in an `Rwalk`.
    TooManyWalkElems(u16),
    /// A string holds a NUL byte.
    NulInString,
    /// A string is not UTF-8.
    InvalidUtf8,
    /// A stat's inner size disagrees with its outer size or its contents.
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
    /// True when the message's framing cannot be trusted (bad size, overrun, unknown
    /// type): a server closes the connection. Otherwise the message was well framed and
    /// a server answers its tag with an error.
    pub fn is_framing(&self) -> bool {
        !matches!(
            self.kind,
            DecodeErrorKind::TooManyWalkElems(_)
                | DecodeErrorKind::NulInString
                | DecodeErrorKind::InvalidUtf8
        ) || self.tag.is_none()
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
    let _ = (fc, out);
    todo!("codec being written")
}

/// The number of bytes [`encode`] would append (size field included).
pub fn encoded_len(fc: &Fcall) -> usize {
    let _ = fc;
    todo!("codec being written")
}

/// Decodes exactly one whole message (size field included) of the given dialect.
pub fn decode(buf: &[u8], dialect: Dialect) -> Result<Fcall, DecodeError> {
    let _ = (buf, dialect);
    todo!("codec being written")
}

/// "Twalk", "Rlerror", … for a type number; "T?"/"R?" for unknown ones.
pub fn mtype_name(t: u8) -> &'static str {
    let _ = t;
    todo!("codec being written")
}

impl Stat {
    /// Encoded length including the leading `size[2]`.
    pub fn encoded_len(&self) -> usize {
        todo!("codec being written")
    }
    /// Appends `size[2]` and the record, as directory reads and `Rstat` carry it.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let _ = out;
        todo!("codec being written")
    }
    /// Decodes one record (with its `size[2]`) from the front of `buf`; returns it and
    /// the bytes it used.
    pub fn decode(buf: &[u8]) -> Result<(Stat, usize), DecodeError> {
        let _ = buf;
        todo!("codec being written")
    }
}

impl Dirent {
    /// Encoded length of one `Rreaddir` entry.
    pub fn encoded_len(&self) -> usize {
        todo!("codec being written")
    }
    /// Appends one `Rreaddir` entry.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let _ = out;
        todo!("codec being written")
    }
    /// Decodes one entry from the front of `buf`; returns it and the bytes it used.
    pub fn decode(buf: &[u8]) -> Result<(Dirent, usize), DecodeError> {
        let _ = buf;
        todo!("codec being written")
    }
}
