//! One server under test: how to reach it, the files the benchmark keeps there, and
//! running one cell on a fresh connection.

use std::time::Duration;

use ninep::{Dialect, MAX_MSIZE};

use super::addr::Addr;
use super::client::{ClientError, Conn};
use super::fsops::{self, Access, RemoveBy};
use super::matrix::Cell;
use super::pipeline::{self, Limit, Measurement, Operation};
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
}

/// The benchmark's directory on one server, made by [`setup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    pub dir: String,
    /// How this server removes files.
    pub remove_by: RemoveBy,
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

/// Makes the benchmark's directory on `target`, with the stat target and the file the
/// read streams read.
pub fn setup(target: &Target, settings: &Settings) -> Result<Fixture, ClientError> {
    let mut conn = session(target, MAX_MSIZE, settings.stall)?;
    let dir = format!("ninep-bench-{}-{}", std::process::id(), target.name);
    fsops::mkdir(&mut conn, fids::ROOT, fids::SCRATCH, &dir)?;
    fsops::walk(&mut conn, fids::ROOT, fids::DIR, &[&dir])?;

    fsops::create(&mut conn, fids::DIR, fids::SCRATCH, names::TARGET)?;
    fsops::fill(
        &mut conn,
        fids::SCRATCH,
        SMALL_WRITE as u64,
        SMALL_WRITE as u32,
        &pattern(SMALL_WRITE),
    )?;
    fsops::clunk(&mut conn, fids::SCRATCH)?;

    let iounit = fsops::create(&mut conn, fids::DIR, fids::SCRATCH, names::READ_FILE)?;
    let chunk = fsops::chunk_len(conn.msize(), iounit);
    fsops::fill(
        &mut conn,
        fids::SCRATCH,
        settings.file_len,
        chunk,
        &pattern(chunk as usize),
    )?;
    fsops::clunk(&mut conn, fids::SCRATCH)?;

    fsops::create(&mut conn, fids::DIR, fids::SCRATCH, names::REMOVE_PROBE)?;
    fsops::clunk(&mut conn, fids::SCRATCH)?;
    let remove_by = fsops::probe_remove(&mut conn, fids::DIR, fids::SCRATCH, names::REMOVE_PROBE)?;
    Ok(Fixture { dir, remove_by })
}

/// Removes what [`setup`] made.
pub fn teardown(
    target: &Target,
    fixture: &Fixture,
    settings: &Settings,
) -> Result<(), ClientError> {
    let mut conn = session(target, MAX_MSIZE, settings.stall)?;
    fsops::walk(&mut conn, fids::ROOT, fids::DIR, &[&fixture.dir])?;
    for name in [names::TARGET, names::READ_FILE] {
        fsops::remove(
            &mut conn,
            fixture.remove_by,
            fids::DIR,
            fids::SCRATCH,
            name,
            false,
        )?;
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

/// Measures one cell on a connection of its own.
pub fn run_cell(
    target: &Target,
    fixture: &Fixture,
    cell: &Cell,
    settings: &Settings,
) -> Result<CellRun, ClientError> {
    let mut conn = session(target, cell.msize, settings.stall)?;
    let msize = conn.msize();
    let dialect = conn.dialect();
    fsops::walk(&mut conn, fids::ROOT, fids::DIR, &[&fixture.dir])?;
    let depth = cell.depth;
    let measurement = match cell.workload {
        Workload::WalkOpenClunk => measure(
            &mut conn,
            WalkOpenClunk::new(dialect, depth),
            cell,
            settings,
        )?,
        Workload::Stat => {
            fsops::walk(&mut conn, fids::DIR, fids::STAT_TARGET, &[names::TARGET])?;
            measure(&mut conn, Stat::new(dialect), cell, settings)?
        }
        Workload::CreateWriteRemove => {
            let op = CreateWriteRemove::new(dialect, fixture.remove_by, depth);
            measure(&mut conn, op, cell, settings)?
        }
        Workload::Read => {
            fsops::walk(&mut conn, fids::DIR, fids::STREAM, &[names::READ_FILE])?;
            let iounit = fsops::open(&mut conn, fids::STREAM, Access::Read)?;
            let chunk = fsops::chunk_len(msize, iounit);
            let op = SeqRead::new(fids::STREAM, chunk, settings.file_len, depth);
            measure(&mut conn, op, cell, settings)?
        }
        Workload::Write => {
            let iounit = fsops::create(&mut conn, fids::DIR, fids::STREAM, names::WRITE_FILE)?;
            let chunk = fsops::chunk_len(msize, iounit);
            let op = SeqWrite::new(fids::STREAM, chunk, settings.file_len, depth);
            let m = measure(&mut conn, op, cell, settings)?;
            fsops::clunk(&mut conn, fids::STREAM)?;
            fsops::remove(
                &mut conn,
                fixture.remove_by,
                fids::DIR,
                fids::SCRATCH,
                names::WRITE_FILE,
                false,
            )?;
            m
        }
    };
    Ok(CellRun { msize, measurement })
}

fn measure(
    conn: &mut Conn,
    mut op: impl Operation,
    cell: &Cell,
    settings: &Settings,
) -> Result<Measurement, ClientError> {
    pipeline::run(conn, &mut op, cell.depth, settings.limit)
}
