//! The measured operations, each as a small state machine per slot.
//!
//! | workload | 9P2000.L requests | 9P2000 requests |
//! |---|---|---|
//! | walk+open+clunk | Twalk, Tlopen, Tclunk | Twalk, Topen, Tclunk |
//! | stat | Tgetattr (basic fields) | Tstat |
//! | create+write+remove | Twalk (clone), Tlcreate, Twrite (4 KiB), Tclunk, Tunlinkat (or Tremove where the server has no Tunlinkat) | Twalk, Tcreate, Twrite, Tremove |
//! | read | Tread of one chunk | same |
//! | write | Twrite of one chunk | same |
//!
//! A chunk is the msize less the I/O header (capped by the server's iounit). Reads and
//! writes go through their file in order, slot after slot, and start again at offset 0
//! when they reach its end.

use ninep::{getattr, Dialect, Msg};
use serde::{Deserialize, Serialize};

use super::client::{ClientError, Conn, Reply};
use super::fsops::{create_msg, open_msg, opened_iounit, unexpected, Access, RemoveBy};
use super::pipeline::{Operation, Progress};

/// The fids a benchmark session uses.
pub mod fids {
    /// The attach point.
    pub const ROOT: u32 = 0;
    /// The benchmark's own directory.
    pub const DIR: u32 = 1;
    /// The file that `stat` asks about.
    pub const STAT_TARGET: u32 = 2;
    /// The open file of a read or write stream.
    pub const STREAM: u32 = 3;
    /// For one-off walks while setting up and tearing down.
    pub const SCRATCH: u32 = 4;
    /// Slot `s` of a metadata workload uses fid `SLOT_BASE + s`.
    pub const SLOT_BASE: u32 = 16;
}

/// Names inside the benchmark's directory.
pub mod names {
    /// The file walked to, opened and stat'ed.
    pub const TARGET: &str = "target";
    /// The file the read streams read.
    pub const READ_FILE: &str = "read-stream";
    /// The file the write streams write, created anew for each cell.
    pub const WRITE_FILE: &str = "write-stream";
    /// Made and removed once to learn how the server removes files.
    pub const REMOVE_PROBE: &str = "remove-probe";
    /// Starts the names of the files create+write+remove makes.
    pub const CWR_PREFIX: &str = "cwr-";
}

/// Bytes written into each file by create+write+remove.
pub const SMALL_WRITE: usize = 4096;

/// What a cell measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    WalkOpenClunk,
    Stat,
    CreateWriteRemove,
    Read,
    Write,
}

/// The unit a workload's figure is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    #[serde(rename = "ops/s")]
    OpsPerSec,
    /// Megabytes of 10^6 bytes.
    #[serde(rename = "MB/s")]
    MegabytesPerSec,
}

impl Unit {
    /// "ops/s" or "MB/s".
    pub fn label(self) -> &'static str {
        match self {
            Unit::OpsPerSec => "ops/s",
            Unit::MegabytesPerSec => "MB/s",
        }
    }
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 5] = [
        Workload::WalkOpenClunk,
        Workload::Stat,
        Workload::CreateWriteRemove,
        Workload::Read,
        Workload::Write,
    ];

    /// The figure's name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Workload::WalkOpenClunk => "walk+open+clunk",
            Workload::Stat => "stat",
            Workload::CreateWriteRemove => "create+write+remove",
            Workload::Read => "read",
            Workload::Write => "write",
        }
    }

    /// What the figure counts.
    pub fn unit(self) -> Unit {
        if self.is_stream() {
            Unit::MegabytesPerSec
        } else {
            Unit::OpsPerSec
        }
    }

    /// True for the data streams, whose figure depends on the msize.
    pub fn is_stream(self) -> bool {
        matches!(self, Workload::Read | Workload::Write)
    }
}

fn slot_fid(slot: u16) -> u32 {
    fids::SLOT_BASE + u32::from(slot)
}

fn slot_index(slot: u16) -> usize {
    usize::from(slot)
}

/// Walk to the target file, open it for reading, clunk it.
pub struct WalkOpenClunk {
    dialect: Dialect,
    /// The file walked to, in the benchmark's directory.
    target: String,
    steps: Vec<WocStep>,
}

#[derive(Debug, Clone, Copy)]
enum WocStep {
    Walk,
    Open,
    Clunk,
}

impl WalkOpenClunk {
    /// Walks from [`fids::DIR`] to `target`.
    pub fn new(dialect: Dialect, target: &str, depth: u16) -> Self {
        WalkOpenClunk {
            dialect,
            target: target.to_owned(),
            steps: vec![WocStep::Walk; usize::from(depth)],
        }
    }
}

impl Operation for WalkOpenClunk {
    fn begin(&mut self, conn: &mut Conn, slot: u16) -> Result<(), ClientError> {
        self.steps[slot_index(slot)] = WocStep::Walk;
        conn.queue(
            slot,
            Msg::Twalk {
                fid: fids::DIR,
                newfid: slot_fid(slot),
                wnames: vec![self.target.clone()],
            },
        )
    }

    fn advance(
        &mut self,
        conn: &mut Conn,
        slot: u16,
        reply: Reply,
    ) -> Result<Progress, ClientError> {
        let step = &mut self.steps[slot_index(slot)];
        match *step {
            WocStep::Walk => {
                match reply.into_msg("Twalk")? {
                    Msg::Rwalk { wqids } if wqids.len() == 1 => {}
                    Msg::Rwalk { wqids } => {
                        return Err(ClientError::WalkStopped {
                            name: self.target.clone(),
                            walked: wqids.len(),
                            wanted: 1,
                        })
                    }
                    other => return Err(unexpected("Twalk", &other)),
                }
                *step = WocStep::Open;
                conn.queue(slot, open_msg(self.dialect, slot_fid(slot), Access::Read))?;
                Ok(Progress::Pending)
            }
            WocStep::Open => {
                let request = open_msg(self.dialect, 0, Access::Read).name();
                opened_iounit(request, reply.into_msg(request)?)?;
                *step = WocStep::Clunk;
                conn.queue(
                    slot,
                    Msg::Tclunk {
                        fid: slot_fid(slot),
                    },
                )?;
                Ok(Progress::Pending)
            }
            WocStep::Clunk => match reply.into_msg("Tclunk")? {
                Msg::Rclunk => Ok(Progress::Done { bytes: 0 }),
                other => Err(unexpected("Tclunk", &other)),
            },
        }
    }
}

/// Ask for the attributes of the (already walked) target file.
pub struct Stat {
    dialect: Dialect,
}

impl Stat {
    pub fn new(dialect: Dialect) -> Self {
        Stat { dialect }
    }
}

impl Operation for Stat {
    fn begin(&mut self, conn: &mut Conn, slot: u16) -> Result<(), ClientError> {
        let fid = fids::STAT_TARGET;
        let msg = match self.dialect {
            Dialect::L => Msg::Tgetattr {
                fid,
                request_mask: getattr::BASIC,
            },
            Dialect::P2000 => Msg::Tstat { fid },
        };
        conn.queue(slot, msg)
    }

    fn advance(
        &mut self,
        _conn: &mut Conn,
        _slot: u16,
        reply: Reply,
    ) -> Result<Progress, ClientError> {
        let request = match self.dialect {
            Dialect::L => "Tgetattr",
            Dialect::P2000 => "Tstat",
        };
        match reply.into_msg(request)? {
            Msg::Rgetattr { .. } | Msg::Rstat { .. } => Ok(Progress::Done { bytes: 0 }),
            other => Err(unexpected(request, &other)),
        }
    }
}

/// Create a new file, write 4 KiB to it, and remove it.
pub struct CreateWriteRemove {
    dialect: Dialect,
    remove_by: RemoveBy,
    /// Starts the name of every file made, so connections at once never share one.
    prefix: String,
    payload: Vec<u8>,
    slots: Vec<CwrSlot>,
    next_id: u64,
}

#[derive(Debug, Clone)]
struct CwrSlot {
    step: CwrStep,
    name: String,
}

#[derive(Debug, Clone, Copy)]
enum CwrStep {
    Clone,
    Create,
    Write,
    /// With `Tunlinkat`: the file is closed before it is unlinked by name.
    Clunk,
    Remove,
}

impl CreateWriteRemove {
    /// Files are named `<prefix><slot>-<n>`.
    pub fn new(dialect: Dialect, remove_by: RemoveBy, prefix: &str, depth: u16) -> Self {
        CreateWriteRemove {
            dialect,
            remove_by,
            prefix: prefix.to_owned(),
            payload: pattern(SMALL_WRITE),
            slots: vec![
                CwrSlot {
                    step: CwrStep::Clone,
                    name: String::new(),
                };
                usize::from(depth)
            ],
            next_id: 0,
        }
    }
}

impl Operation for CreateWriteRemove {
    fn begin(&mut self, conn: &mut Conn, slot: u16) -> Result<(), ClientError> {
        let s = &mut self.slots[slot_index(slot)];
        s.step = CwrStep::Clone;
        s.name = format!("{}{slot}-{}", self.prefix, self.next_id);
        self.next_id += 1;
        conn.queue(
            slot,
            Msg::Twalk {
                fid: fids::DIR,
                newfid: slot_fid(slot),
                wnames: Vec::new(),
            },
        )
    }

    fn advance(
        &mut self,
        conn: &mut Conn,
        slot: u16,
        reply: Reply,
    ) -> Result<Progress, ClientError> {
        let fid = slot_fid(slot);
        let s = &mut self.slots[slot_index(slot)];
        match s.step {
            CwrStep::Clone => {
                match reply.into_msg("Twalk")? {
                    Msg::Rwalk { .. } => {}
                    other => return Err(unexpected("Twalk", &other)),
                }
                s.step = CwrStep::Create;
                conn.queue(slot, create_msg(self.dialect, fid, &s.name))?;
            }
            CwrStep::Create => {
                let request = create_msg(self.dialect, fid, "").name();
                opened_iounit(request, reply.into_msg(request)?)?;
                s.step = CwrStep::Write;
                conn.queue_write(slot, fid, 0, &self.payload)?;
            }
            CwrStep::Write => {
                expect_count("Twrite", reply, self.payload.len())?;
                match self.remove_by {
                    RemoveBy::Unlinkat => {
                        s.step = CwrStep::Clunk;
                        conn.queue(slot, Msg::Tclunk { fid })?;
                    }
                    RemoveBy::Tremove => {
                        s.step = CwrStep::Remove;
                        conn.queue(slot, Msg::Tremove { fid })?;
                    }
                }
            }
            CwrStep::Clunk => {
                match reply.into_msg("Tclunk")? {
                    Msg::Rclunk => {}
                    other => return Err(unexpected("Tclunk", &other)),
                }
                s.step = CwrStep::Remove;
                conn.queue(
                    slot,
                    Msg::Tunlinkat {
                        dirfd: fids::DIR,
                        name: std::mem::take(&mut s.name),
                        flags: 0,
                    },
                )?;
            }
            CwrStep::Remove => {
                let request = self.remove_by.request();
                return match reply.into_msg(request)? {
                    Msg::Runlinkat | Msg::Rremove => Ok(Progress::Done {
                        bytes: self.payload.len() as u64,
                    }),
                    other => Err(unexpected(request, &other)),
                };
            }
        }
        Ok(Progress::Pending)
    }
}

/// Offsets of chunks through a file of `file_len` bytes, in order, back to 0 at the end.
#[derive(Debug, Clone)]
struct Cursor {
    chunk: u32,
    file_len: u64,
    next: u64,
}

impl Cursor {
    fn new(chunk: u32, file_len: u64) -> Cursor {
        Cursor {
            chunk,
            file_len,
            next: 0,
        }
    }

    /// The next chunk's offset and length: never past the end of the file.
    fn take(&mut self) -> (u64, u32) {
        let offset = self.next;
        let len = u64::from(self.chunk).min(self.file_len - offset);
        self.next = offset + len;
        if self.next >= self.file_len {
            self.next = 0;
        }
        (offset, len as u32)
    }
}

/// Read a file sequentially in chunks.
pub struct SeqRead {
    fid: u32,
    cursor: Cursor,
    wanted: Vec<u32>,
}

impl SeqRead {
    /// `chunk` and `file_len` must be nonzero.
    pub fn new(fid: u32, chunk: u32, file_len: u64, depth: u16) -> Self {
        SeqRead {
            fid,
            cursor: Cursor::new(chunk.max(1), file_len.max(1)),
            wanted: vec![0; usize::from(depth)],
        }
    }
}

impl Operation for SeqRead {
    fn begin(&mut self, conn: &mut Conn, slot: u16) -> Result<(), ClientError> {
        let (offset, count) = self.cursor.take();
        self.wanted[slot_index(slot)] = count;
        conn.queue(
            slot,
            Msg::Tread {
                fid: self.fid,
                offset,
                count,
            },
        )
    }

    fn advance(
        &mut self,
        _conn: &mut Conn,
        slot: u16,
        reply: Reply,
    ) -> Result<Progress, ClientError> {
        let wanted = self.wanted[slot_index(slot)];
        let got = expect_count("Tread", reply, wanted as usize)?;
        Ok(Progress::Done {
            bytes: u64::from(got),
        })
    }
}

/// Write a file sequentially in chunks.
pub struct SeqWrite {
    fid: u32,
    cursor: Cursor,
    payload: Vec<u8>,
    wanted: Vec<u32>,
}

impl SeqWrite {
    /// `chunk` and `file_len` must be nonzero.
    pub fn new(fid: u32, chunk: u32, file_len: u64, depth: u16) -> Self {
        let chunk = chunk.max(1);
        SeqWrite {
            fid,
            cursor: Cursor::new(chunk, file_len.max(1)),
            payload: pattern(chunk as usize),
            wanted: vec![0; usize::from(depth)],
        }
    }
}

impl Operation for SeqWrite {
    fn begin(&mut self, conn: &mut Conn, slot: u16) -> Result<(), ClientError> {
        let (offset, count) = self.cursor.take();
        self.wanted[slot_index(slot)] = count;
        conn.queue_write(slot, self.fid, offset, &self.payload[..count as usize])
    }

    fn advance(
        &mut self,
        _conn: &mut Conn,
        slot: u16,
        reply: Reply,
    ) -> Result<Progress, ClientError> {
        let wanted = self.wanted[slot_index(slot)];
        let got = expect_count("Twrite", reply, wanted as usize)?;
        Ok(Progress::Done {
            bytes: u64::from(got),
        })
    }
}

/// The count of an `Rread`/`Rwrite`, which must be all of `wanted`: the benchmark's
/// files never end inside a chunk it asks for.
fn expect_count(request: &'static str, reply: Reply, wanted: usize) -> Result<u32, ClientError> {
    let got = reply.into_count(request)?;
    if got as usize != wanted {
        return Err(ClientError::Short {
            request,
            got,
            wanted: wanted as u32,
        });
    }
    Ok(got)
}

/// `len` bytes that are neither zero nor one repeated byte, so that no server can store
/// them more cheaply than real data.
pub fn pattern(len: usize) -> Vec<u8> {
    // A xorshift sequence: cheap, deterministic, no run of equal bytes.
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_walks_the_file_in_order_and_wraps_without_passing_its_end() {
        let mut c = Cursor::new(4, 10);
        let got: Vec<_> = (0..5).map(|_| c.take()).collect();
        assert_eq!(got, [(0, 4), (4, 4), (8, 2), (0, 4), (4, 4)]);
        let mut c = Cursor::new(16, 10);
        assert_eq!(c.take(), (0, 10));
        assert_eq!(c.take(), (0, 10));
    }

    #[test]
    fn pattern_is_not_a_run_of_one_byte() {
        let p = pattern(4096);
        assert_eq!(p.len(), 4096);
        assert!(p.windows(2).filter(|w| w[0] == w[1]).count() < 64);
        assert_eq!(p, pattern(4096));
    }

    #[test]
    fn only_streams_are_in_megabytes() {
        for w in Workload::ALL {
            assert_eq!(w.unit() == Unit::MegabytesPerSec, w.is_stream(), "{w:?}");
        }
    }
}
