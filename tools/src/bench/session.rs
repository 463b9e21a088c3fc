//! One server under test: how to reach it, the files the benchmark keeps there, and
//! running one cell on fresh connections (one, or several at once on files of their
//! own).

use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use ninep::{Dialect, MAX_MSIZE};

use super::addr::Addr;
use super::client::{ClientError, Conn};
use super::fsops::{self, Access, RemoveBy};
use super::matrix::Cell;
use super::pipeline::{self, Counted, Limit, Measurement, Operation};
use super::workload::{
    fids, names, pattern, CreateWriteRemove, SeqRead, SeqWrite, Stat, WalkOpenClunk, Workload,
    SMALL_WRITE,
};

/// A server to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its name in tables; letters, digits, `.`, `_` and `-`.
    pub name: String,
    pub addr: Addr,
    pub dialect: Dialect,
    /// The `aname` of `Tattach` (diod wants the exported path).
    pub aname: String,
    /// The user name of `Tattach`.
    pub uname: String,
    /// The numeric user of a 9P2000.L `Tattach`.
    pub n_uname: u32,
    /// The raw baseline (`ninep-bench raw-server`): the limit the others are held to.
    pub baseline: bool,
}

/// What every cell of a run shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub limit: Limit,
    /// Length of the file read by the read streams, and the size at which the write
    /// streams start again from offset 0.
    pub file_len: u64,
    /// How long the client waits for any reply before it gives up on the server.
    pub stall: Duration,
    /// The most connections of any cell: [`setup`] makes files for that many.
    pub connections: u16,
}

impl Settings {
    /// The length of each connection's stream file in a cell of several connections:
    /// `file_len` shared among the most connections of the run, so eight connections
    /// keep as much data on a server as one does, but at least 2 MiB (two chunks of the
    /// largest msize) unless `file_len` is shorter.
    pub fn connection_file_len(&self) -> u64 {
        const FLOOR: u64 = 2 * MAX_MSIZE as u64;
        (self.file_len / u64::from(self.connections.max(1))).max(self.file_len.min(FLOOR))
    }
}

/// The benchmark's directory on one server, made by [`setup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    pub dir: String,
    /// How this server removes files.
    pub remove_by: RemoveBy,
    /// Connections of a cell that have files of their own ([`Files::of_connection`]);
    /// 0 when the run has no cell of several connections.
    pub connections: u16,
}

/// The files in the benchmark's directory that one connection of a cell works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// Walked to, opened and stat'ed.
    pub target: String,
    /// Read by the read streams.
    pub read_file: String,
    /// Made, written and removed by each write stream.
    pub write_file: String,
    /// Starts the names of the files create+write+remove makes.
    pub cwr_prefix: String,
}

impl Files {
    /// The files of a cell of one connection.
    pub fn single() -> Files {
        Files {
            target: names::TARGET.into(),
            read_file: names::READ_FILE.into(),
            write_file: names::WRITE_FILE.into(),
            cwr_prefix: names::CWR_PREFIX.into(),
        }
    }

    /// The files of connection `c` of a cell of several.
    pub fn of_connection(c: u16) -> Files {
        Files {
            target: format!("{}-c{c}", names::TARGET),
            read_file: format!("{}-c{c}", names::READ_FILE),
            write_file: format!("{}-c{c}", names::WRITE_FILE),
            cwr_prefix: format!("{}c{c}-", names::CWR_PREFIX),
        }
    }
}

/// A cell's result on one server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellRun {
    /// The msize the server agreed to.
    pub msize: u32,
    pub measurement: Measurement,
}

/// Connects, agrees on a version, and attaches `fids::ROOT`.
fn session(target: &Target, msize: u32, stall: Duration) -> Result<Conn, ClientError> {
    let mut conn = Conn::connect(&target.addr, stall)?;
    conn.version(msize, target.dialect)?;
    conn.attach(fids::ROOT, &target.uname, target.n_uname, &target.aname)?;
    Ok(conn)
}

/// Makes, in the directory `fids::DIR`, the stat target and the file the read streams
/// read (`read_len` bytes) of `files`.
fn make_files(conn: &mut Conn, files: &Files, read_len: u64) -> Result<(), ClientError> {
    fsops::create(conn, fids::DIR, fids::SCRATCH, &files.target)?;
    fsops::fill(
        conn,
        fids::SCRATCH,
        SMALL_WRITE as u64,
        SMALL_WRITE as u32,
        &pattern(SMALL_WRITE),
    )?;
    fsops::clunk(conn, fids::SCRATCH)?;

    let iounit = fsops::create(conn, fids::DIR, fids::SCRATCH, &files.read_file)?;
    let chunk = fsops::chunk_len(conn.msize(), iounit);
    fsops::fill(
        conn,
        fids::SCRATCH,
        read_len,
        chunk,
        &pattern(chunk as usize),
    )?;
    fsops::clunk(conn, fids::SCRATCH)
}

/// Makes the benchmark's directory on `target`, with the stat target and the file the
/// read streams read, and those of each connection of the run's cells of several.
pub fn setup(target: &Target, settings: &Settings) -> Result<Fixture, ClientError> {
    let mut conn = session(target, MAX_MSIZE, settings.stall)?;
    let dir = format!("ninep-bench-{}-{}", std::process::id(), target.name);
    fsops::mkdir(&mut conn, fids::ROOT, fids::SCRATCH, &dir)?;
    fsops::walk(&mut conn, fids::ROOT, fids::DIR, &[&dir])?;
    make_files(&mut conn, &Files::single(), settings.file_len)?;
    let connections = if settings.connections > 1 {
        settings.connections
    } else {
        0
    };
    for c in 0..connections {
        make_files(
            &mut conn,
            &Files::of_connection(c),
            settings.connection_file_len(),
        )?;
    }

    fsops::create(&mut conn, fids::DIR, fids::SCRATCH, names::REMOVE_PROBE)?;
    fsops::clunk(&mut conn, fids::SCRATCH)?;
    let remove_by = fsops::probe_remove(&mut conn, fids::DIR, fids::SCRATCH, names::REMOVE_PROBE)?;
    Ok(Fixture {
        dir,
        remove_by,
        connections,
    })
}

/// Removes what [`setup`] made.
pub fn teardown(
    target: &Target,
    fixture: &Fixture,
    settings: &Settings,
) -> Result<(), ClientError> {
    let mut conn = session(target, MAX_MSIZE, settings.stall)?;
    fsops::walk(&mut conn, fids::ROOT, fids::DIR, &[&fixture.dir])?;
    let files =
        std::iter::once(Files::single()).chain((0..fixture.connections).map(Files::of_connection));
    for files in files {
        for name in [&files.target, &files.read_file] {
            fsops::remove(
                &mut conn,
                fixture.remove_by,
                fids::DIR,
                fids::SCRATCH,
                name,
                false,
            )?;
        }
    }
    fsops::clunk(&mut conn, fids::DIR)?;
    fsops::remove(
        &mut conn,
        fixture.remove_by,
        fids::ROOT,
        fids::SCRATCH,
        &fixture.dir,
        true,
    )
}

/// A connection ready to measure a cell: in the benchmark's directory, its files open.
struct Ready {
    conn: Conn,
    op: Box<dyn Operation + Send>,
    /// The write stream's file, removed after the measurement.
    written: Option<String>,
}

/// Opens a session for `cell` on the files `files`, whose read stream is `read_len`
/// bytes long (and whose write stream starts again at 0 after as many).
fn prepare(
    target: &Target,
    fixture: &Fixture,
    cell: &Cell,
    settings: &Settings,
    files: &Files,
    read_len: u64,
) -> Result<Ready, ClientError> {
    let mut conn = session(target, cell.msize, settings.stall)?;
    let msize = conn.msize();
    let dialect = conn.dialect();
    fsops::walk(&mut conn, fids::ROOT, fids::DIR, &[&fixture.dir])?;
    let depth = cell.depth;
    let mut written = None;
    let op: Box<dyn Operation + Send> = match cell.workload {
        Workload::WalkOpenClunk => Box::new(WalkOpenClunk::new(dialect, &files.target, depth)),
        Workload::Stat => {
            fsops::walk(&mut conn, fids::DIR, fids::STAT_TARGET, &[&files.target])?;
            Box::new(Stat::new(dialect))
        }
        Workload::CreateWriteRemove => Box::new(CreateWriteRemove::new(
            dialect,
            fixture.remove_by,
            &files.cwr_prefix,
            depth,
        )),
        Workload::Read => {
            fsops::walk(&mut conn, fids::DIR, fids::STREAM, &[&files.read_file])?;
            let iounit = fsops::open(&mut conn, fids::STREAM, Access::Read)?;
            let chunk = fsops::chunk_len(msize, iounit);
            Box::new(SeqRead::new(fids::STREAM, chunk, read_len, depth))
        }
        Workload::Write => {
            let iounit = fsops::create(&mut conn, fids::DIR, fids::STREAM, &files.write_file)?;
            written = Some(files.write_file.clone());
            let chunk = fsops::chunk_len(msize, iounit);
            Box::new(SeqWrite::new(fids::STREAM, chunk, read_len, depth))
        }
    };
    Ok(Ready { conn, op, written })
}

impl Ready {
    /// Measures, on this connection alone.
    fn measure(&mut self, cell: &Cell, limit: Limit) -> Result<Counted, ClientError> {
        pipeline::run_counted(&mut self.conn, &mut *self.op, cell.depth, limit)
    }

    /// Removes the write stream's file, if there is one.
    fn finish(mut self, fixture: &Fixture) -> Result<(), ClientError> {
        let Some(name) = self.written.take() else {
            return Ok(());
        };
        fsops::clunk(&mut self.conn, fids::STREAM)?;
        fsops::remove(
            &mut self.conn,
            fixture.remove_by,
            fids::DIR,
            fids::SCRATCH,
            &name,
            false,
        )
    }
}

/// Measures one cell on connections of its own: one, or `cell.connections` at once
/// (started together, each on its own files; the figure is their aggregate).
pub fn run_cell(
    target: &Target,
    fixture: &Fixture,
    cell: &Cell,
    settings: &Settings,
) -> Result<CellRun, ClientError> {
    if cell.connections <= 1 {
        let mut ready = prepare(
            target,
            fixture,
            cell,
            settings,
            &Files::single(),
            settings.file_len,
        )?;
        let msize = ready.conn.msize();
        let counted = ready.measure(cell, settings.limit)?;
        ready.finish(fixture)?;
        return Ok(CellRun {
            msize,
            measurement: counted.measurement,
        });
    }
    let n = cell.connections;
    if n > fixture.connections {
        return Err(ClientError::NoFiles {
            connections: n,
            made: fixture.connections,
        });
    }
    let mut ready = Vec::with_capacity(usize::from(n));
    for c in 0..n {
        let files = Files::of_connection(c);
        match prepare(
            target,
            fixture,
            cell,
            settings,
            &files,
            settings.connection_file_len(),
        ) {
            Ok(r) => ready.push(r),
            Err(e) => {
                // The connections already made leave no write stream behind.
                for r in ready {
                    let _ = r.finish(fixture);
                }
                return Err(e);
            }
        }
    }
    let msize = ready[0].conn.msize();
    let limits = pipeline::split_limit(settings.limit, n);
    // Every connection is ready before any starts, so they all run at once.
    let start = Barrier::new(usize::from(n));
    let outcomes: Vec<Result<Counted, ClientError>> = thread::scope(|scope| {
        let running: Vec<_> = ready
            .iter_mut()
            .zip(limits)
            .map(|(r, limit)| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    r.measure(cell, limit)
                })
            })
            .collect();
        running
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut counted = Vec::with_capacity(outcomes.len());
    let mut first_error = None;
    for (outcome, r) in outcomes.into_iter().zip(ready) {
        match outcome {
            Ok(c) => {
                counted.push(c);
                if let Err(e) = r.finish(fixture) {
                    first_error.get_or_insert(e);
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(CellRun {
        msize,
        measurement: Counted::aggregate(&counted),
    })
}
