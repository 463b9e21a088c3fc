//! The errors of the mount driver and of its transports.

use alloc::string::String;
use core::fmt;

use ninep::{DecodeErrorKind, EncodeError};

/// Why a transport could not move a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    /// The peer closed its end: end of file.
    Eof,
    /// Our end was closed (by [`Transport::close`](crate::Transport::close)).
    Closed,
    /// The caller's [`Interrupt`](crate::Interrupt) was posted while it waited to
    /// receive. No bytes were lost: the next receive gets the whole next message.
    Interrupted,
    /// A stream's size field was below 7 or above the transport's limit; the framing
    /// of the stream is lost.
    FrameSize(u32),
    /// The operating system reported an error (its raw error number, if any).
    Io(Option<i32>),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Eof => f.write_str("end of file from the server"),
            TransportError::Closed => f.write_str("transport closed"),
            TransportError::Interrupted => f.write_str("interrupted"),
            TransportError::FrameSize(n) => write!(f, "message size {n} out of range"),
            TransportError::Io(Some(e)) => write!(f, "i/o error (os error {e})"),
            TransportError::Io(None) => f.write_str("i/o error"),
        }
    }
}

impl core::error::Error for TransportError {}

/// What was wrong with a reply from the server. Every one of these breaks the mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadReply {
    /// Fewer than 7 bytes, or a size field below 7.
    TooShort(usize),
    /// Longer than the negotiated msize.
    TooLong { len: usize, msize: u32 },
    /// The size field does not match the bytes of the message.
    SizeMismatch { declared: u32, actual: usize },
    /// The reply could not be decoded.
    Decode(DecodeErrorKind),
    /// A reply whose tag matches no request in flight.
    UnknownTag(u16),
    /// A reply of the wrong type for its request (`sent` is the T-message type).
    WrongType { sent: u8, got: u8 },
    /// An `Rwalk` with more qids than the walk had names.
    TooManyQids { names: usize, qids: usize },
    /// An `Rversion` with a tag other than `NOTAG`, or another message in its place.
    BadVersionReply,
    /// An `Rversion` msize below 256.
    MsizeTooSmall(u32),
    /// An `Rread` with more data, or an `Rwrite` with a larger count, than asked.
    Overlong { asked: usize, got: usize },
    /// A 9P2000.L directory read from cookie `offset` that made no progress: the
    /// entries end at the cookie asked for, or list `.` or `..` a second time.
    DirNoProgress { offset: u64 },
}

impl fmt::Display for BadReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadReply::TooShort(n) => write!(f, "reply of {n} bytes is too short"),
            BadReply::TooLong { len, msize } => {
                write!(f, "reply of {len} bytes is longer than msize {msize}")
            }
            BadReply::SizeMismatch { declared, actual } => {
                write!(f, "reply size field {declared} but {actual} bytes")
            }
            BadReply::Decode(k) => write!(f, "undecodable reply: {k:?}"),
            BadReply::UnknownTag(t) => write!(f, "reply with unknown tag {t}"),
            BadReply::WrongType { sent, got } => write!(
                f,
                "{} answered by {}",
                ninep::mtype_name(*sent),
                ninep::mtype_name(*got)
            ),
            BadReply::TooManyQids { names, qids } => {
                write!(f, "walk of {names} names answered with {qids} qids")
            }
            BadReply::BadVersionReply => f.write_str("bad Rversion"),
            BadReply::MsizeTooSmall(m) => write!(f, "server msize {m} below 256"),
            BadReply::Overlong { asked, got } => {
                write!(f, "{got} bytes answered for {asked} asked")
            }
            BadReply::DirNoProgress { offset } => {
                write!(f, "directory read from cookie {offset} makes no progress")
            }
        }
    }
}

/// The error of every mount driver operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MntError {
    /// The server answered `Rerror` (9P2000) with this string.
    Server(String),
    /// The server answered `Rlerror` (9P2000.L) with this Linux errno.
    Errno(u32),
    /// The request was flushed (or never sent) because the caller was interrupted.
    Interrupted,
    /// This request's reply was malformed; the mount is now broken.
    BadReply(BadReply),
    /// The mount is broken (an earlier bad reply or transport failure, given here);
    /// no further requests are sent.
    Broken(BrokenReason),
    /// The mount's transport was closed: its last channel is gone, or it was hung up.
    Hungup,
    /// The transport failed while this request was being sent or its reply awaited.
    Transport(TransportError),
    /// The request could not be encoded (a string too long, …).
    Encode(EncodeError),
    /// The request would be longer than the negotiated msize.
    TooLarge { len: usize, msize: u32 },
    /// A walk stopped after `walked` of its names (the first missing name is next).
    WalkIncomplete { walked: usize },
    /// No tag was free. Requests now wait for a tag instead (reading the replies
    /// that free them), so the driver no longer returns this; kept for matches.
    NoTags,
    /// The fid space is exhausted (abandoned fids are never reused).
    NoFids,
    /// The server does not speak a version we do (it answered this string).
    VersionRefused(String),
    /// The operation has no meaning in this mount's dialect.
    Unsupported,
    /// The channel is not open for this operation.
    NotOpen,
    /// The channel is already open.
    AlreadyOpen,
    /// A transfer of `len` bytes at `offset` would pass the largest file offset.
    OffsetOverflow { offset: u64, len: usize },
}

/// Why a mount broke: the first failure, kept for every later request to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokenReason {
    /// A reply was malformed.
    BadReply(BadReply),
    /// The transport failed.
    Transport(TransportError),
}

impl fmt::Display for BrokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokenReason::BadReply(b) => b.fmt(f),
            BrokenReason::Transport(t) => t.fmt(f),
        }
    }
}

impl fmt::Display for MntError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MntError::Server(s) => f.write_str(s),
            MntError::Errno(e) => write!(f, "server error: errno {e}"),
            MntError::Interrupted => f.write_str("interrupted"),
            MntError::BadReply(b) => write!(f, "mount rpc error: {b}"),
            MntError::Broken(r) => write!(f, "mount broken: {r}"),
            MntError::Hungup => f.write_str("mount hung up"),
            MntError::Transport(t) => write!(f, "mount transport: {t}"),
            MntError::Encode(e) => write!(f, "cannot encode request: {e}"),
            MntError::TooLarge { len, msize } => {
                write!(f, "request of {len} bytes exceeds msize {msize}")
            }
            MntError::WalkIncomplete { walked } => {
                write!(f, "file does not exist (walked {walked} names)")
            }
            MntError::NoTags => f.write_str("no free tags"),
            MntError::NoFids => f.write_str("no free fids"),
            MntError::VersionRefused(v) => write!(f, "server refused version ({v})"),
            MntError::Unsupported => f.write_str("operation not supported by this dialect"),
            MntError::NotOpen => f.write_str("channel not open"),
            MntError::AlreadyOpen => f.write_str("channel already open"),
            MntError::OffsetOverflow { offset, len } => {
                write!(f, "{len} bytes at offset {offset} pass the largest offset")
            }
        }
    }
}

impl core::error::Error for MntError {}

impl From<BrokenReason> for MntError {
    fn from(r: BrokenReason) -> Self {
        MntError::Broken(r)
    }
}
