//! The 9P front end: one session per connection, speaking 9P2000
//! or 9P2000.L as its Tversion chose, over any byte stream.
//!
//! The connection loop reads whatever bytes are available, answers every whole message
//! in them, and writes the replies together when the input runs dry, so a client that
//! pipelines requests gets them answered in batches. Consecutive Treads and Twrites of
//! file data that touch no file another of them writes form a run (`run`), answered on
//! several threads at once; every other request is answered in order after the run
//! before it, so a Tflush always finds the request it names already answered, and its
//! Rflush goes out after that reply.
//!
//! File data is not copied by ramfs on a large read or a large write, and once on a
//! small one. A Twrite with 32 KiB or more of whole pages still to come has them read
//! straight into page buffers that become the file's pages (`input`, `gathered`). A
//! smaller one is decoded borrowed ([`ninep::decode_view`]) and its data copied from the
//! input buffer, where the transport put it (`input`), into the file's pages. A Tread
//! of at least `output::SHARE_MIN` bytes puts its Rread's header in the output and
//! holds the file's pages it covers whole, which the output writes with vectored writes
//! (`output`); a smaller one is built in the output buffer ([`ninep::RreadInPlace`])
//! with the pages copied after its header. On Linux a unix socket's writer
//! ([`SplicingSocket`], `splice`) takes held pages by reference, so the client's read is
//! the data's only copy, and there a read of a page or more holds its pages.
//! `tests/data_copies.rs` counts the allocations of both, `tests/held_pages.rs` stages a
//! write while a reply holds pages, copied and spliced.
//!
//! A framing error (a size below 7 or above msize, a field that overruns, an unknown
//! type) ends the connection with one log line; the tree and the other connections are
//! not affected. Every other bad request gets an error reply, a well-framed message
//! that does not decode too (a bad string, a stat record whose inner size is wrong,
//! bytes after the last field).
//!
//! Locks: the session's own state is unlocked (the connection's thread owns it; a run's
//! threads see only their jobs); a Tread or Twrite of an open regular file takes no tree
//! lock (it goes through the fid's [`crate::fs::FileHandle`]: the file's data lock), every
//! other request takes the tree lock once, shared
//! ([`crate::fs::Fs::lock_shared`]: walks, stat) or alone
//! ([`crate::fs::Fs::lock`]: everything that changes names or attributes), and none
//! holds a lock across I/O.

mod attach_rule;
mod client_checks;
#[cfg(target_os = "linux")]
mod export_arena;
mod gathered;
mod input;
mod linux;
mod output;
mod p2000;
mod run;
mod session;
#[cfg(target_os = "linux")]
mod splice;
#[cfg(test)]
mod test_streams;
mod trace;
mod wait;

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ninep::{peek_size, DecodeError, Dialect, HEADER_LEN, MAX_MSIZE};

use crate::fs::Fs;
pub use attach_rule::AttachRule;
use input::Input;
use output::{Output, Plain, ReplyWrite};
use run::Run;
use session::Session;
#[cfg(target_os = "linux")]
pub use splice::SplicingSocket;
pub use wait::{
    Adaptive, PollRead, PollWrite, Polling, PollingWriter, Spinners, WaitClock, WaitCounts,
};

/// Limits and switches of the 9P server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Most fids one connection may hold.
    pub max_fids: usize,
    /// Log every message (Plan 9's chatty9p).
    pub trace: bool,
    /// Threads that answer one connection's run of data requests (1: all on the
    /// connection's own thread).
    pub data_threads: usize,
    /// Longest a connection spins on its socket for the next request before it sleeps
    /// (zero: never); whether it spins at all it measures (see `wait`). Only readers
    /// wrapped by [`Server::polling`] spin.
    pub poll: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_fids: 16384,
            trace: false,
            // Half the CPUs: the other half is for the clients and the kernel's copies.
            // Measured on 2 CPUs shared with the bench's client, two threads made q16
            // reads of 64 KiB and 1 MiB 0.69x and 0.37x of one thread, so a small
            // machine answers runs on the connection's thread.
            data_threads: (thread::available_parallelism().map_or(1, |n| n.get()) / 2)
                .clamp(1, MAX_DATA_THREADS),
            poll: DEFAULT_POLL,
        }
    }
}

/// The default of [`ServerConfig::poll`]. On the 2-vCPU test machine a connection with
/// one request in flight saw its next request 10 to 40 µs after its reply went out (the
/// policy's mean waits); a window of 100 µs catches it with room to spare (30 and
/// 300 µs measured the same as 100 in the one run that compared them, on a loaded
/// machine).
pub const DEFAULT_POLL: Duration = Duration::from_micros(100);

/// Most threads one connection's run of data requests is split among.
const MAX_DATA_THREADS: usize = 4;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionEnd {
    /// The client closed its side.
    #[error("end of file")]
    Eof,
    /// The client sent bytes that are not a 9P message.
    #[error("framing error: {0}")]
    Framing(FramingError),
    /// Reading or writing the transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// A message whose framing cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The size field is below the header's 7 bytes or above the session's msize.
    #[error("message size {size} outside 7..={msize}")]
    Size { size: u32, msize: u32 },
    /// The codec rejected the message's layout.
    #[error("{0}")]
    Decode(DecodeError),
}

/// A 9P server over one shared tree; serves any number of connections at once.
pub struct Server {
    fs: Arc<Fs>,
    config: ServerConfig,
    next_session: AtomicU64,
    /// Turns to spin, shared by the connections.
    spinners: Arc<Spinners>,
}

impl Server {
    /// A server of `fs`.
    pub fn new(fs: Arc<Fs>, config: ServerConfig) -> Server {
        Server {
            fs,
            config,
            next_session: AtomicU64::new(1),
            spinners: Arc::new(Spinners::for_this_machine()),
        }
    }

    /// `writer` counted asleep while it waits for its client to read, for
    /// [`Server::serve_peer`] beside [`Server::polling`].
    pub fn polling_writer<W: PollWrite>(&self, writer: W) -> PollingWriter<W> {
        PollingWriter::new(writer, Arc::clone(&self.spinners))
    }

    /// The tree served.
    pub fn fs(&self) -> &Arc<Fs> {
        &self.fs
    }

    /// `reader` made to spin briefly for each request before it sleeps, as
    /// [`ServerConfig::poll`] says, for [`Server::serve_peer`].
    pub fn polling<R: PollRead>(&self, reader: R) -> Polling<R> {
        Polling::new(reader, self.config.poll, Arc::clone(&self.spinners))
    }

    /// Serves one connection until the client goes, then destroys its fids (removing
    /// ORCLOSE files) and drops its record locks. `peer` names the connection in logs.
    /// Every attach name is believed: for clients in this process (tests, fuzzing);
    /// connections from a transport go through [`Server::serve_peer`].
    pub fn serve<R: Read, W: Write>(&self, reader: R, writer: W, peer: &str) -> ConnectionEnd {
        self.serve_peer(reader, writer, peer, AttachRule::BelieveNames)
    }

    /// [`Server::serve`] with a rule for who the client may attach as (see
    /// [`AttachRule::for_peer`]).
    pub fn serve_peer<R: Read, W: Write>(
        &self,
        reader: R,
        writer: W,
        peer: &str,
        rule: AttachRule,
    ) -> ConnectionEnd {
        self.serve_with(reader, Plain(writer), peer, rule)
    }

    /// [`Server::serve_peer`] for a transport's connection, whose writer
    /// ([`Server::polling_writer`]) may send the file pages of large Rreads by
    /// reference (a unix socket on Linux, [`SplicingSocket`]) instead of copying them.
    pub fn serve_polled<R: Read, W: PollWrite>(
        &self,
        reader: R,
        writer: PollingWriter<W>,
        peer: &str,
        rule: AttachRule,
    ) -> ConnectionEnd {
        self.serve_with(reader, writer, peer, rule)
    }

    fn serve_with<R: Read, W: ReplyWrite>(
        &self,
        reader: R,
        writer: W,
        peer: &str,
        rule: AttachRule,
    ) -> ConnectionEnd {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let mut session = Session::new(&self.fs, id, &self.config);
        session.attach_rule = rule;
        tracing::info!("connection {id} from {peer}: open ({rule:?})");
        let end = run(&mut session, reader, writer);
        session.shutdown();
        match &end {
            ConnectionEnd::Eof => tracing::info!("connection {id} from {peer}: closed"),
            e => tracing::warn!("connection {id} from {peer}: closed: {e}"),
        }
        end
    }
}

/// The read–answer–write loop of one connection.
fn run<R: Read, W: ReplyWrite>(
    session: &mut Session<'_>,
    mut reader: R,
    mut writer: W,
) -> ConnectionEnd {
    let mut input = Input::default();
    let mut output = Output::default();
    let mut replies = Replies::default();
    loop {
        if let Some(write) = input.gathered() {
            // A Twrite whose data was read into pages: the front message, after every
            // message before it was answered.
            let answered = session.handle_gathered(write, &mut output.bytes);
            input.finish_gathered();
            if let Err(e) = answered {
                return ConnectionEnd::Framing(FramingError::Decode(e));
            }
        }
        let batch = answer_whole_messages(
            session,
            input.pending(),
            &mut output,
            &mut replies,
            &mut writer,
        );
        input.consume(batch.consumed);
        if let Some(e) = batch.write_error {
            return client_gone_or(e);
        }
        // Only replies to Twrites read into pages wait (nothing else was answered since
        // the last one): a stream of large Twrites, whose client is sending the next one
        // whatever we do. Any other reply goes out before the server waits, however
        // slowly the Twrite begun after it arrives.
        let defer =
            input.after_gathered() && input.twrite_begun() && output.len() < DEFER_FLUSH_BELOW;
        if !output.is_empty() && !defer {
            if let Err(e) = writer
                .write_output(&mut output)
                .and_then(|()| writer.flush())
            {
                return client_gone_or(e);
            }
        }
        if let Some(framing) = batch.framing {
            return ConnectionEnd::Framing(framing);
        }
        if batch.output_full {
            // Whole requests are still waiting: answer them before reading more.
            continue;
        }
        match input.read_from(&mut reader, session.msize()) {
            Ok(0) => return ConnectionEnd::Eof,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return client_gone_or(e),
        }
    }
}

/// A client that vanished (reset, broken pipe) is gone like one that closed; any other
/// transport error is an error.
fn client_gone_or(e: io::Error) -> ConnectionEnd {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => ConnectionEnd::Eof,
        _ => ConnectionEnd::Io(e),
    }
}

/// Replies of fewer bytes than this, all to Twrites read into pages, wait to be written
/// while the next Twrite, whose header is in, is still being read, so that back-to-back
/// Twrites read into pages, a read each, have their Rwrites sent a few at a time. Any
/// other reply goes out before the server waits (`tests/flushing.rs`).
const DEFER_FLUSH_BELOW: usize = 64;

/// Replies above this many bytes are written before more requests are answered, so a
/// client that pipelines many large reads cannot make the server buffer them all.
const OUTPUT_FLUSH_AT: usize = 2 * MAX_MSIZE as usize;

/// What a connection keeps for its runs of data requests from batch to batch.
#[derive(Default)]
struct Replies {
    run: Run,
    /// Reply buffers of a run's extra threads.
    spare: Vec<Output>,
}

/// What one pass over the input did.
struct Batch {
    /// Bytes of input answered.
    consumed: usize,
    /// A badly framed message stopped the pass (the bytes from there on are not to be
    /// trusted).
    framing: Option<FramingError>,
    /// The pass stopped because the replies filled [`OUTPUT_FLUSH_AT`].
    output_full: bool,
    /// Writing a run's replies failed.
    write_error: Option<io::Error>,
}

/// Answers the whole messages at the front of `input`: data requests gathered into runs
/// (see `run`), every other message on its own after the run before it. A run's
/// replies may be written to `writer` before the pass ends; the rest are left in
/// `output`.
fn answer_whole_messages<W: ReplyWrite>(
    session: &mut Session<'_>,
    input: &[u8],
    output: &mut Output,
    replies: &mut Replies,
    writer: &mut W,
) -> Batch {
    let mut pos = 0;
    let mut stop = None;
    while let Some(size) = peek_size(&input[pos..]) {
        // The run's replies count too: they join `output` when it is answered.
        if output.len() + replies.run.bytes() >= OUTPUT_FLUSH_AT {
            stop = Some(Batch::stopped(pos, None, true));
            break;
        }
        let msize = session.msize().unwrap_or(MAX_MSIZE);
        if (size as usize) < HEADER_LEN || size > msize {
            stop = Some(Batch::stopped(
                pos,
                Some(FramingError::Size { size, msize }),
                false,
            ));
            break;
        }
        let at = pos..pos + size as usize;
        if at.end > input.len() {
            break;
        }
        if let Some(job) = session.data_job(input, at.clone()) {
            if replies.run.conflicts(&job) {
                if let Err(e) = answer_run(session, input, output, replies, writer) {
                    return Batch::write_failed(pos, e);
                }
            }
            replies.run.push(job);
            pos = at.end;
            continue;
        }
        // Everything else waits for the run before it.
        if let Err(e) = answer_run(session, input, output, replies, writer) {
            return Batch::write_failed(pos, e);
        }
        if let Err(e) = session.handle_bytes(&input[at.clone()], &mut output.bytes) {
            stop = Some(Batch::stopped(pos, Some(FramingError::Decode(e)), false));
            break;
        }
        pos = at.end;
    }
    // The run refers to this pass's input, which the caller consumes next.
    if let Err(e) = answer_run(session, input, output, replies, writer) {
        return Batch::write_failed(pos, e);
    }
    stop.unwrap_or(Batch::stopped(pos, None, false))
}

/// Answers the run gathered so far, if any.
fn answer_run<W: ReplyWrite>(
    session: &Session<'_>,
    input: &[u8],
    output: &mut Output,
    replies: &mut Replies,
    writer: &mut W,
) -> io::Result<()> {
    if replies.run.is_empty() {
        return Ok(());
    }
    // Jobs are made only once Tversion has chosen a dialect.
    let dialect = session.dialect.unwrap_or(Dialect::P2000);
    let cx = run::Context {
        fs: session.fs,
        dialect,
        trace: session.config.trace.then_some(session.id),
        sharing: writer.sharing(),
    };
    replies.run.answer(
        cx,
        session.config.data_threads,
        input,
        &mut replies.spare,
        output,
        writer,
    )
}

impl Batch {
    fn stopped(consumed: usize, framing: Option<FramingError>, output_full: bool) -> Batch {
        Batch {
            consumed,
            framing,
            output_full,
            write_error: None,
        }
    }

    fn write_failed(consumed: usize, e: io::Error) -> Batch {
        Batch {
            consumed,
            framing: None,
            output_full: false,
            write_error: Some(e),
        }
    }
}

#[cfg(test)]
mod tests;
