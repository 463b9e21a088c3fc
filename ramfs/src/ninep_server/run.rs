//! Runs of data requests answered at once.
//!
//! A client that pipelines sends many Treads and Twrites before it waits. The
//! connection loop gathers the consecutive ones that are plain file data (an open fid
//! of a regular file, no xattr) into a [`Run`] and answers a run's requests
//! on several threads at once, through their fids' handles of the file data, without
//! the tree lock (reads of one file share its data lock; writes to different files take
//! different data locks; a write that takes set-id bits away goes through the tree's
//! exclusive lock).
//!
//! Why this keeps 9P's order: a run holds no two requests that touch the same file
//! unless both are reads ([`Run::conflicts`]): no write next to a read or another write
//! of its file. Requests in a run change nothing but file data and times, never a fid
//! or the session, so answering them in any order is answering them in the order sent.
//! Anything else (a Tflush, a Tclunk, a Tversion, a directory read) first answers the
//! run before it, so a Tflush finds the request it names answered and its Rflush goes
//! after that reply, a clunk never overtakes a read of its fid, and a Tversion finds
//! nothing in flight. Two writes near the memory limit may see which of them fails
//! differ from the order sent; each still either fits or changes nothing.
//!
//! Bounds: a run holds at most [`MAX_JOBS`] requests and [`MAX_BYTES`] bytes of
//! replies (Rread data and the Twrite data it borrows from the input buffer), so a
//! connection holds at most that much beyond the single-threaded loop's buffers. A run
//! too small to be worth a thread ([`PARALLEL_MIN_BYTES`]) is answered on the
//! connection's own thread, as before.

use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use ninep::{encode, mtype, Dialect, Fcall, Msg, RreadInPlace, RREAD_HEADER_LEN};

use super::output::{Output, ReplyWrite, Sharing};
use super::session::Session;
use super::trace::{log_message, log_rread, log_write, Direction};
use crate::error::Error;
use crate::fs::{Cred, FileHandle, Fs, NodeId, Piece};

/// Most requests in one run.
pub(super) const MAX_JOBS: usize = 64;
/// Most reply and write data in one run.
pub(super) const MAX_BYTES: usize = super::OUTPUT_FLUSH_AT;
/// A run with less data than this is answered on one thread: a thread costs more than
/// copying this much.
pub(super) const PARALLEL_MIN_BYTES: usize = 256 * 1024;

/// One data request of a run, checked against the session: its fid may do it.
pub(super) enum Job {
    Read {
        tag: u16,
        node: NodeId,
        /// The fid's handle of the file's data: the read takes no tree lock.
        file: FileHandle,
        offset: u64,
        /// Already clipped to the session's iounit.
        count: usize,
    },
    Write {
        tag: u16,
        node: NodeId,
        /// The fid's handle of the file's data: the write takes no tree lock unless it
        /// must take set-id bits away.
        file: FileHandle,
        cred: Arc<Cred>,
        offset: u64,
        /// Where the data lies in the batch's input, which is not touched until the run
        /// is done.
        data: Range<usize>,
        append: bool,
    },
}

impl Job {
    fn node(&self) -> NodeId {
        match self {
            Job::Read { node, .. } | Job::Write { node, .. } => *node,
        }
    }

    fn is_write(&self) -> bool {
        matches!(self, Job::Write { .. })
    }

    /// Data bytes the job moves (reply data of a read, data of a write).
    fn bytes(&self) -> usize {
        match self {
            Job::Read { count, .. } => *count,
            Job::Write { data, .. } => data.len(),
        }
    }

    /// Answers the job onto `out`, as the session would have.
    fn answer(&self, cx: Context<'_>, input: &[u8], out: &mut Output) {
        let fs = cx.fs;
        let result = match self {
            Job::Read {
                tag,
                file,
                offset,
                count,
                ..
            } => read(file, *tag, *offset, *count, cx.sharing, out).map(|count| {
                if let Some(id) = cx.trace {
                    log_rread(id, *tag, count);
                }
            }),
            Job::Write {
                tag,
                node,
                file,
                cred,
                offset,
                data,
                append,
            } => {
                let bytes = &input[data.clone()];
                match file.write(cred, *offset, bytes, *append) {
                    Ok(Some(count)) => Ok(count),
                    // Set-id bits go: that changes the node, under the exclusive lock.
                    Ok(None) => fs.write(cred, *node, *offset, bytes, *append),
                    Err(e) => Err(e),
                }
                .map(|count| push_reply(cx, &mut out.bytes, *tag, Msg::Rwrite { count }))
            }
        };
        if let Err(e) = result {
            push_reply(cx, &mut out.bytes, self.tag(), error_msg(cx.dialect, e));
        }
    }

    fn tag(&self) -> u16 {
        match self {
            Job::Read { tag, .. } | Job::Write { tag, .. } => *tag,
        }
    }
}

/// An Rread of `count` bytes at `offset` of `file` onto `out`: a small one copied into
/// the reply, a large one holding the whole runs of pages it covers (see `output`).
/// Returns the count sent.
fn read(
    file: &FileHandle,
    tag: u16,
    offset: u64,
    count: usize,
    sharing: Sharing,
    out: &mut Output,
) -> Result<u32, Error> {
    if count < sharing.read_min {
        let mut reply = RreadInPlace::begin(&mut out.bytes, tag, count);
        file.read_with(offset, count, |bytes| reply.push(bytes));
        return reply.finish().map_err(|_| Error::CountTooLarge);
    }
    let start = out.bytes.len();
    out.bytes.extend_from_slice(&[0; RREAD_HEADER_LEN]);
    let n = file.read_pieces(offset, count, sharing.piece_min, |piece| match piece {
        Piece::Bytes(bytes) => out.bytes.extend_from_slice(bytes),
        Piece::Pages(pages) => out.push_pages(pages),
    });
    // `count` was clipped to the iounit, so both fit; the check keeps that a fact.
    let (Ok(n), Ok(size)) = (u32::try_from(n), u32::try_from(RREAD_HEADER_LEN + n)) else {
        out.truncate(start);
        return Err(Error::CountTooLarge);
    };
    // size[4] type[1] tag[2] count[4], then the data.
    let header = &mut out.bytes[start..start + RREAD_HEADER_LEN];
    header[..4].copy_from_slice(&size.to_le_bytes());
    header[4] = mtype::RREAD;
    header[5..7].copy_from_slice(&tag.to_le_bytes());
    header[7..].copy_from_slice(&n.to_le_bytes());
    Ok(n)
}

/// What every job of a run is answered with.
#[derive(Clone, Copy)]
pub(super) struct Context<'a> {
    pub fs: &'a Fs,
    pub dialect: Dialect,
    /// The session's number, if its messages are logged (`--trace`).
    pub trace: Option<u64>,
    /// When Rreads hold the file's pages instead of copying them
    /// ([`ReplyWrite::sharing`]).
    pub sharing: Sharing,
}

/// A small reply (never past msize: an Rwrite or an error) onto `out`.
fn push_reply(cx: Context<'_>, out: &mut Vec<u8>, tag: u16, msg: Msg) {
    if let Some(id) = cx.trace {
        log_message(id, Direction::Out, tag, &msg);
    }
    let fc = Fcall { tag, msg };
    // Encoding into a vector fails only past the 4 GiB size field.
    let _ = encode(&fc, out);
}

/// The error reply of `dialect`.
pub(super) fn error_msg(dialect: Dialect, e: Error) -> Msg {
    match dialect {
        Dialect::L => Msg::Rlerror { ecode: e.errno() },
        Dialect::P2000 => Msg::Rerror {
            ename: e.ename().to_owned(),
        },
    }
}

/// Consecutive data requests gathered for answering at once (kept from batch to batch,
/// always empty between them, so a warm connection allocates nothing for it).
#[derive(Default)]
pub(super) struct Run {
    jobs: Vec<Job>,
    bytes: usize,
    /// Called with each job's tag as a thread begins it: tests stage races with it.
    #[cfg(test)]
    pub hook: Option<Arc<dyn Fn(u16) + Send + Sync>>,
}

impl Run {
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Data bytes of the run's requests (what its replies will add to the output, at
    /// most).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True if `job` may not join the run: it writes a file the run touches, or reads
    /// one the run writes, or the run is full.
    pub fn conflicts(&self, job: &Job) -> bool {
        if self.jobs.len() >= MAX_JOBS || self.bytes + job.bytes() > MAX_BYTES {
            return true;
        }
        let node = job.node();
        self.jobs
            .iter()
            .any(|j| j.node() == node && (j.is_write() || job.is_write()))
    }

    pub fn push(&mut self, job: Job) {
        self.bytes += job.bytes();
        self.jobs.push(job);
    }

    /// Answers every job of the run (whose Twrite data lies in `input`) and empties it.
    /// A small run is answered onto `output`; a large one by `threads` threads that
    /// claim its jobs one by one, the connection's thread onto `output` and each other
    /// onto a buffer of `spare` (kept for the next run); then `output` and those
    /// buffers are written to `writer` and it is flushed. The replies of one run may go
    /// out in any order: nothing after the run is answered before all of them.
    pub fn answer<W: ReplyWrite>(
        &mut self,
        cx: Context<'_>,
        threads: usize,
        input: &[u8],
        spare: &mut Vec<Output>,
        output: &mut Output,
        writer: &mut W,
    ) -> io::Result<()> {
        let parts = threads.min(self.jobs.len()).max(1);
        if parts == 1 || self.bytes < PARALLEL_MIN_BYTES {
            self.answer_part(&self.jobs, cx, input, output);
            self.clear();
            return Ok(());
        }
        while spare.len() < parts - 1 {
            spare.push(Output::default());
        }
        // Each thread claims the next job until none is left, so the connection's
        // thread does all the work itself if the others are slow to be scheduled (a
        // loaded machine), and waits only for jobs another thread has begun.
        let next = AtomicUsize::new(0);
        let this = &*self;
        let claim = || this.jobs.get(next.fetch_add(1, Ordering::Relaxed));
        thread::scope(|s| {
            for buf in spare.iter_mut().take(parts - 1) {
                s.spawn(|| {
                    while let Some(job) = claim() {
                        this.answer_one(job, cx, input, buf);
                    }
                });
            }
            while let Some(job) = claim() {
                this.answer_one(job, cx, input, output);
            }
        });
        self.clear();
        writer.write_output(output)?;
        for buf in spare.iter_mut().take(parts - 1) {
            writer.write_output(buf)?;
        }
        // The connection loop flushes only what is left in `output`, which is empty now:
        // a buffered writer (--stdio's stdout) would keep these replies while the
        // server waits for the client, which waits for them.
        writer.flush()
    }

    fn answer_part(&self, jobs: &[Job], cx: Context<'_>, input: &[u8], out: &mut Output) {
        for job in jobs {
            self.answer_one(job, cx, input, out);
        }
    }

    fn answer_one(&self, job: &Job, cx: Context<'_>, input: &[u8], out: &mut Output) {
        #[cfg(test)]
        if let Some(hook) = &self.hook {
            hook(job.tag());
        }
        job.answer(cx, input, out);
    }

    fn clear(&mut self) {
        self.jobs.clear();
        self.bytes = 0;
    }
}

impl Session<'_> {
    /// The message at `input[at..]` as a run's job, if it is a Tread or Twrite of file
    /// data that its fid may do; `None` sends it down the session's ordinary path
    /// (which also answers every error).
    pub(super) fn data_job(&self, input: &[u8], at: Range<usize>) -> Option<Job> {
        let msg = &input[at];
        let ty = *msg.get(4)?;
        if !(ty == mtype::TREAD || ty == mtype::TWRITE) {
            return None;
        }
        let dialect = self.dialect?;
        let fc = ninep::decode_view(msg, dialect).ok()?;
        match fc.msg {
            ninep::MsgView::Twrite { fid, offset, data } => {
                let target = self.write_target(fid, data.len())?;
                if self.config.trace {
                    log_write(self.id, fc.tag, fid, offset, data.len());
                }
                Some(Job::Write {
                    tag: fc.tag,
                    node: target.node,
                    file: target.file,
                    cred: target.cred,
                    offset,
                    data: range_within(input, data),
                    append: target.append,
                })
            }
            ninep::MsgView::Owned(Msg::Tread { fid, offset, count }) => {
                let f = self.fids.get(&fid)?;
                let open = f.open.as_ref()?;
                let readable = open.mode.read || open.mode.exec;
                // Only a regular file's open has a handle: no tree lock to ask.
                let file = open.file.as_ref()?;
                if f.xattr.is_some() || !readable {
                    return None;
                }
                if self.config.trace {
                    let msg = Msg::Tread { fid, offset, count };
                    log_message(self.id, Direction::In, fc.tag, &msg);
                }
                Some(Job::Read {
                    tag: fc.tag,
                    node: f.node,
                    file: file.clone(),
                    offset,
                    count: count.min(self.iounit()) as usize,
                })
            }
            _ => None,
        }
    }
}

/// The file a Twrite of `len` bytes on a fid writes through its handle, when it is
/// plain file data: an open regular file, for writing, no xattr, at most the iounit.
pub(super) struct WriteTarget {
    pub node: NodeId,
    pub file: FileHandle,
    pub cred: Arc<Cred>,
    pub append: bool,
}

impl Session<'_> {
    /// The [`WriteTarget`] of a Twrite of `len` bytes on `fid`; `None` sends the
    /// Twrite down the session's ordinary path (which also answers every error).
    pub(super) fn write_target(&self, fid: u32, len: usize) -> Option<WriteTarget> {
        if len > self.iounit() as usize {
            return None;
        }
        let f = self.fids.get(&fid)?;
        let open = f.open.as_ref()?;
        // Only a regular file's open has a handle.
        let file = open.file.as_ref()?;
        if f.xattr.is_some() || !open.mode.write {
            return None;
        }
        Some(WriteTarget {
            node: f.node,
            file: file.clone(),
            cred: Arc::clone(&f.cred),
            append: open.append,
        })
    }
}

/// Where `part`, a slice of `whole`, lies in it.
fn range_within(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}
