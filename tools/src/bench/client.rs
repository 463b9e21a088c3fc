//! A pipelined 9P client connection: requests are queued by tag and written in batches,
//! replies are read one at a time and handed back with their tag, so the caller can keep
//! many requests in flight and match each reply to the request that asked for it.
//!
//! Messages are encoded and decoded by the `ninep` crate, except the data path: `Twrite`
//! headers are written by hand in front of the caller's data (one `writev`, no copy of a
//! 1 MiB payload into a message value), and `Rread`/`Rwrite` replies are recognised from
//! their fixed headers without copying the data out. The load generator must not spend
//! more time per byte than the servers it measures.

use std::io::{self, BufReader, IoSlice, Read, Write};
use std::time::Duration;

use ninep::{mtype, Dialect, Fcall, Msg, Qid, HEADER_LEN, MAX_MSIZE, NOFID, NOTAG};

use super::addr::{Addr, Stream};

/// Bytes of a `Twrite` before its data: size, type, tag, fid, offset, count.
const TWRITE_HEADER_LEN: usize = HEADER_LEN + 4 + 8 + 4;
/// Bytes of an `Rread` before its data, and of a whole `Rwrite`: size, type, tag, count.
const RCOUNT_LEN: usize = HEADER_LEN + 4;
/// Payloads at least this long are written straight from the caller's buffer instead of
/// being copied into the batch of queued requests.
const DIRECT_WRITE_MIN: usize = 16 * 1024;
/// Buffer of the reading side; many small replies arrive in one `read`.
const READ_BUFFER: usize = 64 * 1024;

/// How a server said no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerRefusal {
    /// A 9P2000.L `Rlerror` errno.
    Errno(u32),
    /// A 9P2000 `Rerror` string.
    Text(String),
}

impl std::fmt::Display for ServerRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerRefusal::Errno(e) => write!(f, "errno {e}"),
            ServerRefusal::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// What went wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("the server sent nothing for {0:?}")]
    Stalled(Duration),
    #[error("encoding {request}: {source}")]
    Encode {
        request: &'static str,
        source: ninep::EncodeError,
    },
    #[error(transparent)]
    Decode(#[from] ninep::DecodeError),
    #[error("reply frame of {size} bytes (msize {msize})")]
    BadFrameSize { size: u32, msize: u32 },
    #[error("Rread says {count} bytes in a frame of {size}")]
    BadReadCount { count: u32, size: u32 },
    #[error("the server answered version {requested:?} with {answered:?}")]
    VersionRefused { requested: String, answered: String },
    #[error("the server agreed to msize {0}, too small for this benchmark")]
    MsizeTooSmall(u32),
    #[error("{request} failed: {refusal}")]
    Refused {
        request: &'static str,
        refusal: ServerRefusal,
    },
    #[error("{request} answered by {reply}")]
    UnexpectedReply {
        request: &'static str,
        reply: &'static str,
    },
    #[error("a reply with tag {0}, which no request is waiting for")]
    StrayTag(u16),
    #[error("{request} moved {got} bytes of {wanted}")]
    Short {
        request: &'static str,
        got: u32,
        wanted: u32,
    },
    #[error("a cell of {connections} connections, but the benchmark made files for {made}")]
    NoFiles { connections: u16, made: u16 },
    #[error("walk to {name:?} stopped after {walked} of {wanted} names")]
    WalkStopped {
        name: String,
        walked: usize,
        wanted: usize,
    },
}

/// One reply, with the data of `Rread` left unread in the connection's buffer.
#[derive(Debug)]
pub enum Reply {
    /// An `Rread` of `count` bytes.
    Read { tag: u16, count: u32 },
    /// An `Rwrite` of `count` bytes.
    Write { tag: u16, count: u32 },
    /// Any other reply, decoded.
    Other(Fcall),
}

impl Reply {
    /// The tag of the request this answers.
    pub fn tag(&self) -> u16 {
        match self {
            Reply::Read { tag, .. } | Reply::Write { tag, .. } => *tag,
            Reply::Other(fc) => fc.tag,
        }
    }

    /// The reply's type name, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Reply::Read { .. } => "Rread",
            Reply::Write { .. } => "Rwrite",
            Reply::Other(fc) => fc.msg.name(),
        }
    }

    /// This reply as the answer to `request`: the message itself, or the server's
    /// refusal as an error.
    pub fn into_msg(self, request: &'static str) -> Result<Msg, ClientError> {
        match self {
            Reply::Other(Fcall { msg, .. }) => match msg {
                Msg::Rlerror { ecode } => Err(ClientError::Refused {
                    request,
                    refusal: ServerRefusal::Errno(ecode),
                }),
                Msg::Rerror { ename } => Err(ClientError::Refused {
                    request,
                    refusal: ServerRefusal::Text(ename),
                }),
                msg => Ok(msg),
            },
            other => Err(ClientError::UnexpectedReply {
                request,
                reply: other.name(),
            }),
        }
    }

    /// The byte count of an `Rread` or `Rwrite` answering `request`.
    pub fn into_count(self, request: &'static str) -> Result<u32, ClientError> {
        match self {
            Reply::Read { count, .. } | Reply::Write { count, .. } => Ok(count),
            other => Err(match other.into_msg(request) {
                Err(e) => e,
                Ok(msg) => ClientError::UnexpectedReply {
                    request,
                    reply: msg.name(),
                },
            }),
        }
    }
}

/// One 9P session over one connection.
pub struct Conn {
    reader: BufReader<Stream>,
    writer: Stream,
    /// Encoded requests not yet written.
    out: Vec<u8>,
    /// The reply being read; grows to the largest reply seen and stays there.
    frame: Vec<u8>,
    dialect: Dialect,
    msize: u32,
    stall: Duration,
}

impl Conn {
    /// Connects to `addr`; `stall` is how long a read may wait for the server.
    pub fn connect(addr: &Addr, stall: Duration) -> Result<Conn, ClientError> {
        let writer = Stream::connect(addr, stall)?;
        let reader = BufReader::with_capacity(READ_BUFFER, writer.try_clone()?);
        Ok(Conn {
            reader,
            writer,
            out: Vec::with_capacity(READ_BUFFER),
            frame: Vec::new(),
            dialect: Dialect::L,
            msize: MAX_MSIZE,
            stall,
        })
    }

    /// The negotiated msize (before [`Conn::version`]: the largest this client takes).
    pub fn msize(&self) -> u32 {
        self.msize
    }

    /// The dialect of the session.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// `Tversion`: asks for `msize` and `dialect`; returns the msize the server agreed to.
    pub fn version(&mut self, msize: u32, dialect: Dialect) -> Result<u32, ClientError> {
        let requested = dialect.version_str();
        let reply = self.rpc_tag(
            NOTAG,
            Msg::Tversion {
                msize,
                version: requested.into(),
            },
        )?;
        match reply.into_msg("Tversion")? {
            Msg::Rversion {
                msize: agreed,
                version,
            } if version == requested => {
                // A server may not raise the msize; a smaller one is its cap.
                let agreed = agreed.min(msize);
                if agreed < ninep::MIN_MSIZE {
                    return Err(ClientError::MsizeTooSmall(agreed));
                }
                self.msize = agreed;
                self.dialect = dialect;
                Ok(agreed)
            }
            Msg::Rversion { version, .. } => Err(ClientError::VersionRefused {
                requested: requested.into(),
                answered: version,
            }),
            other => Err(ClientError::UnexpectedReply {
                request: "Tversion",
                reply: other.name(),
            }),
        }
    }

    /// `Tattach` without authentication as `uname` (uid `n_uname` in 9P2000.L).
    pub fn attach(
        &mut self,
        fid: u32,
        uname: &str,
        n_uname: u32,
        aname: &str,
    ) -> Result<Qid, ClientError> {
        let n_uname = (self.dialect == Dialect::L).then_some(n_uname);
        let msg = Msg::Tattach {
            fid,
            afid: NOFID,
            uname: uname.into(),
            aname: aname.into(),
            n_uname,
        };
        match self.rpc(msg)?.into_msg("Tattach")? {
            Msg::Rattach { qid } => Ok(qid),
            other => Err(ClientError::UnexpectedReply {
                request: "Tattach",
                reply: other.name(),
            }),
        }
    }

    /// Sends one request and waits for its reply (tag 0; nothing else may be in flight).
    pub fn rpc(&mut self, msg: Msg) -> Result<Reply, ClientError> {
        self.rpc_tag(0, msg)
    }

    fn rpc_tag(&mut self, tag: u16, msg: Msg) -> Result<Reply, ClientError> {
        self.queue(tag, msg)?;
        let reply = self.recv()?;
        if reply.tag() != tag {
            return Err(ClientError::StrayTag(reply.tag()));
        }
        Ok(reply)
    }

    /// Queues a request; it is written by the next [`Conn::flush`] or [`Conn::recv`].
    pub fn queue(&mut self, tag: u16, msg: Msg) -> Result<(), ClientError> {
        let fc = Fcall { tag, msg };
        ninep::encode(&fc, &mut self.out).map_err(|source| ClientError::Encode {
            request: fc.msg.name(),
            source,
        })
    }

    /// Queues a `Twrite` of `data`, which must fit the msize.
    ///
    /// The header is laid out here rather than by `ninep::encode` so that a large
    /// payload goes to the socket straight from `data`.
    pub fn queue_write(
        &mut self,
        tag: u16,
        fid: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<(), ClientError> {
        push_twrite_header(&mut self.out, tag, fid, offset, data.len())?;
        if data.len() < DIRECT_WRITE_MIN {
            self.out.extend_from_slice(data);
            return Ok(());
        }
        write_both(&mut self.writer, &self.out, data)?;
        self.out.clear();
        Ok(())
    }

    /// Writes every queued request.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        if !self.out.is_empty() {
            self.writer.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Writes what is queued, then reads the next reply.
    pub fn recv(&mut self) -> Result<Reply, ClientError> {
        self.flush()?;
        let mut size_field = [0u8; 4];
        self.read_exact_or_closed(&mut size_field)?;
        let size = u32::from_le_bytes(size_field);
        if (size as usize) < HEADER_LEN || size > self.msize {
            return Err(ClientError::BadFrameSize {
                size,
                msize: self.msize,
            });
        }
        let len = size as usize;
        if self.frame.len() < len {
            self.frame.resize(len, 0);
        }
        let mut frame = std::mem::take(&mut self.frame);
        frame[..4].copy_from_slice(&size_field);
        let read = self.read_exact_or_closed(&mut frame[4..len]);
        self.frame = frame;
        read?;
        let frame = &self.frame[..len];
        let ty = frame[4];
        let tag = u16::from_le_bytes([frame[5], frame[6]]);
        let count = || -> u32 {
            frame
                .get(HEADER_LEN..RCOUNT_LEN)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .unwrap_or(0)
        };
        match ty {
            mtype::RREAD if len >= RCOUNT_LEN => {
                let count = count();
                if count as usize != len - RCOUNT_LEN {
                    return Err(ClientError::BadReadCount { count, size });
                }
                Ok(Reply::Read { tag, count })
            }
            mtype::RWRITE if len == RCOUNT_LEN => Ok(Reply::Write {
                tag,
                count: count(),
            }),
            _ => Ok(Reply::Other(ninep::decode(frame, self.dialect)?)),
        }
    }

    fn read_exact_or_closed(&mut self, buf: &mut [u8]) -> Result<(), ClientError> {
        self.reader.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => ClientError::Closed,
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Stalled(self.stall),
            _ => ClientError::Io(e),
        })
    }
}

/// Appends the header of a `Twrite` of `count` bytes (the data follows it).
fn push_twrite_header(
    out: &mut Vec<u8>,
    tag: u16,
    fid: u32,
    offset: u64,
    count: usize,
) -> Result<(), ClientError> {
    let too_long = || ClientError::Encode {
        request: "Twrite",
        source: ninep::EncodeError::TooLong,
    };
    let size = u32::try_from(TWRITE_HEADER_LEN + count).map_err(|_| too_long())?;
    let count = u32::try_from(count).map_err(|_| too_long())?;
    out.extend_from_slice(&size.to_le_bytes());
    out.push(mtype::TWRITE);
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&fid.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    Ok(())
}

/// Writes `head` then `tail` with as few system calls as the kernel allows.
fn write_both(w: &mut impl Write, mut head: &[u8], mut tail: &[u8]) -> io::Result<()> {
    while !head.is_empty() {
        let n = w.write_vectored(&[IoSlice::new(head), IoSlice::new(tail)])?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        if n < head.len() {
            head = &head[n..];
        } else {
            tail = &tail[n - head.len()..];
            head = &[];
        }
    }
    w.write_all(tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::test_io::NarrowWriter;

    #[test]
    fn write_both_sends_every_byte_in_order_whatever_the_split() {
        let head: Vec<u8> = (0..23).collect();
        let tail: Vec<u8> = (100..=255).collect();
        for step in [1, 5, 22, 23, 24, 100, 1000] {
            let mut w = NarrowWriter::new(step);
            write_both(&mut w, &head, &tail).unwrap();
            let mut want = head.clone();
            want.extend_from_slice(&tail);
            assert_eq!(w.got, want, "step {step}");
        }
    }

    #[test]
    fn twrite_header_decodes_as_ninep_twrite() {
        // queue_write's layout must be the one ninep decodes.
        let data = vec![7u8; 40];
        let mut out = Vec::new();
        push_twrite_header(&mut out, 9, 3, 4096, data.len()).unwrap();
        out.extend_from_slice(&data);
        let fc = ninep::decode(&out, Dialect::L).unwrap();
        assert_eq!(
            fc,
            Fcall {
                tag: 9,
                msg: Msg::Twrite {
                    fid: 3,
                    offset: 4096,
                    data
                }
            }
        );
    }
}
