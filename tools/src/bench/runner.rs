//! Runs every cell on every server and gathers the [`Report`].
//!
//! Cells run figure by figure, each figure on every server in turn, so the servers'
//! numbers for one figure are taken within seconds of each other: load from elsewhere
//! on a shared machine then touches all of them alike, and the ratios stay fair.

use std::time::{SystemTime, UNIX_EPOCH};

use tracing::warn;

use super::matrix::Cell;
use super::pipeline::Limit;
use super::report::{CellResult, FigureRow, Report, RunSettings, ServerEntry};
use super::session::{self, Fixture, Settings, Target};
use super::workload::Unit;

/// Measures `cells` on `targets` (the first is the baseline); `progress` gets one line
/// per step for a person watching.
pub fn run(
    targets: &[Target],
    cells: &[Cell],
    settings: &Settings,
    progress: &mut dyn FnMut(&str),
) -> Report {
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut servers = Vec::new();
    let mut fixtures: Vec<Option<Fixture>> = Vec::new();
    for t in targets {
        progress(&format!("{}: preparing files at {}", t.name, t.addr));
        let (fixture, error) = match session::setup(t, settings) {
            Ok(f) => (Some(f), None),
            Err(e) => {
                progress(&format!("{}: cannot be measured: {e}", t.name));
                (None, Some(e.to_string()))
            }
        };
        fixtures.push(fixture);
        servers.push(ServerEntry {
            name: t.name.clone(),
            address: t.addr.to_string(),
            dialect: t.dialect.version_str().to_owned(),
            error,
        });
    }

    let total = cells.len() * fixtures.iter().flatten().count();
    let mut done = 0;
    let mut figures = Vec::new();
    for cell in cells {
        let mut row = FigureRow::new(cell);
        for (t, fixture) in targets.iter().zip(&fixtures) {
            let Some(fixture) = fixture else {
                row.results.push(not_measured(&t.name));
                continue;
            };
            done += 1;
            let result = match session::run_cell(t, fixture, cell, settings) {
                Ok(run) => {
                    let m = run.measurement;
                    let value = match cell.workload.unit() {
                        Unit::OpsPerSec => m.ops_per_sec(),
                        Unit::MegabytesPerSec => m.mb_per_sec(),
                    };
                    progress(&format!(
                        "[{done}/{total}] {:<24} {:<14} {value:>10.1} {}",
                        row.figure,
                        t.name,
                        cell.workload.unit().label()
                    ));
                    CellResult {
                        server: t.name.clone(),
                        value: Some(value),
                        msize: Some(run.msize),
                        ops: m.ops,
                        bytes: m.bytes,
                        seconds: m.elapsed.as_secs_f64(),
                        error: None,
                    }
                }
                Err(e) => {
                    progress(&format!(
                        "[{done}/{total}] {:<24} {:<14} failed: {e}",
                        row.figure, t.name
                    ));
                    CellResult {
                        error: Some(e.to_string()),
                        ..not_measured(&t.name)
                    }
                }
            };
            row.results.push(result);
        }
        row.compute_ratios();
        figures.push(row);
    }

    for (t, fixture) in targets.iter().zip(&fixtures) {
        if let Some(fixture) = fixture {
            if let Err(e) = session::teardown(t, fixture, settings) {
                // Leftover files are untidy, not a wrong figure: say so and go on.
                warn!("{}: could not remove the benchmark's files: {e}", t.name);
            }
        }
    }

    Report {
        started_unix,
        settings: run_settings(settings),
        servers,
        figures,
        skipped: Vec::new(),
    }
}

fn not_measured(server: &str) -> CellResult {
    CellResult {
        server: server.to_owned(),
        value: None,
        msize: None,
        ops: 0,
        bytes: 0,
        seconds: 0.0,
        error: None,
    }
}

fn run_settings(settings: &Settings) -> RunSettings {
    let (seconds, warmup_seconds, ops) = match settings.limit {
        Limit::Time { warmup, measure } => (
            Some(measure.as_secs_f64()),
            Some(warmup.as_secs_f64()),
            None,
        ),
        Limit::Ops(n) => (None, None, Some(n)),
    };
    RunSettings {
        seconds,
        warmup_seconds,
        ops,
        file_bytes: settings.file_len,
    }
}
