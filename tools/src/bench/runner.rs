//! Runs every cell on every server and gathers the [`Report`].
//!
//! Cells run figure by figure. A figure runs in `rounds` rounds, and a round runs it
//! once on every server, back to back (each round starting one server later), so the
//! servers' numbers for a round are taken within a second or two of each other: load
//! from elsewhere on a shared machine then touches all of them alike. Each figure is
//! the median of its rounds, and each ratio the median of its rounds' ratios, so one
//! burst of outside load does not decide a ratio.

use std::time::{SystemTime, UNIX_EPOCH};

use tracing::warn;

use super::matrix::Cell;
use super::pipeline::Limit;
use super::report::{CellResult, FigureRow, Report, RunSettings, ServerEntry};
use super::session::{self, CellRun, Fixture, Settings, Target};
use super::workload::Unit;

/// Measures `cells` on `targets` (the first is the baseline), `rounds` times (at least
/// once); `progress` gets one line per step for a person watching.
pub fn run(
    targets: &[Target],
    cells: &[Cell],
    settings: &Settings,
    rounds: u32,
    progress: &mut dyn FnMut(&str),
) -> Report {
    let rounds = rounds.max(1);
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
        servers.push(ServerEntry {
            name: t.name.clone(),
            address: t.addr.to_string(),
            dialect: t.dialect.version_str().to_owned(),
            remove_by: fixture.as_ref().map(|f| f.remove_by.request().to_owned()),
            error,
            baseline: t.baseline,
        });
        fixtures.push(fixture);
    }

    // runs[cell][target]: one entry per round.
    let mut runs: Vec<Vec<Vec<Result<CellRun, String>>>> =
        vec![vec![Vec::new(); targets.len()]; cells.len()];
    let live = fixtures.iter().flatten().count();
    let total = cells.len() * live * rounds as usize;
    let mut done = 0;
    for (ci, cell) in cells.iter().enumerate() {
        let figure = cell.figure();
        for round in 0..rounds {
            for k in 0..targets.len() {
                let ti = (k + round as usize) % targets.len();
                let (t, Some(fixture)) = (&targets[ti], &fixtures[ti]) else {
                    continue;
                };
                done += 1;
                let outcome = session::run_cell(t, fixture, cell, settings);
                let shown = match &outcome {
                    Ok(run) => format!(
                        "{:>10.1} {}",
                        value(cell, run),
                        cell.workload.unit().label()
                    ),
                    Err(e) => format!("failed: {e}"),
                };
                progress(&format!(
                    "[{done}/{total}] round {} {figure:<26} {:<14} {shown}",
                    round + 1,
                    t.name
                ));
                runs[ci][ti].push(outcome.map_err(|e| e.to_string()));
            }
        }
    }

    let figures = cells
        .iter()
        .zip(&runs)
        .map(|(cell, per_target)| {
            let mut row = FigureRow::new(cell);
            row.results = targets
                .iter()
                .zip(per_target)
                .map(|(t, rounds)| summarize(&t.name, cell, rounds))
                .collect();
            row.compute_ratios();
            row
        })
        .collect();

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
        settings: run_settings(settings, rounds),
        servers,
        figures,
        skipped: Vec::new(),
    }
}

/// The cell's figure from one run, in its unit.
fn value(cell: &Cell, run: &CellRun) -> f64 {
    match cell.workload.unit() {
        Unit::OpsPerSec => run.measurement.ops_per_sec(),
        Unit::MegabytesPerSec => run.measurement.mb_per_sec(),
    }
}

/// One server's result for a cell: the run with the median figure, or the first error
/// when any round failed (a server that fails once is not measured).
fn summarize(server: &str, cell: &Cell, rounds: &[Result<CellRun, String>]) -> CellResult {
    let mut result = CellResult {
        server: server.to_owned(),
        value: None,
        msize: None,
        ops: 0,
        bytes: 0,
        seconds: 0.0,
        rounds: Vec::new(),
        error: None,
    };
    if let Some(Err(e)) = rounds.iter().find(|r| r.is_err()) {
        result.error = Some(e.clone());
        return result;
    }
    let mut ok: Vec<(f64, &CellRun)> = rounds
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|run| (value(cell, run), run))
        .collect();
    result.rounds = ok.iter().map(|(v, _)| *v).collect();
    ok.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((v, run)) = ok.get(ok.len().saturating_sub(1) / 2) {
        result.value = Some(*v);
        result.msize = Some(run.msize);
        result.ops = run.measurement.ops;
        result.bytes = run.measurement.bytes;
        result.seconds = run.measurement.elapsed.as_secs_f64();
    }
    result
}

fn run_settings(settings: &Settings, rounds: u32) -> RunSettings {
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
        rounds,
        file_bytes: settings.file_len,
        connection_file_bytes: settings.connection_file_len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::pipeline::Measurement;
    use crate::bench::workload::Workload;
    use std::time::Duration;

    fn run(ops: u64) -> Result<CellRun, String> {
        Ok(CellRun {
            msize: 8192,
            measurement: Measurement {
                ops,
                bytes: 0,
                elapsed: Duration::from_secs(1),
            },
        })
    }

    const CELL: Cell = Cell {
        workload: Workload::Stat,
        msize: 8192,
        depth: 1,
        connections: 1,
    };

    #[test]
    fn the_median_round_is_reported_with_every_round_kept() {
        let r = summarize("s", &CELL, &[run(30), run(10), run(20)]);
        assert_eq!(r.value, Some(20.0));
        assert_eq!(r.ops, 20);
        assert_eq!(r.rounds, [30.0, 10.0, 20.0]);
        // An even count takes the lower middle.
        let r = summarize("s", &CELL, &[run(40), run(10)]);
        assert_eq!(r.value, Some(10.0));
    }

    #[test]
    fn one_failed_round_fails_the_cell() {
        let r = summarize(
            "s",
            &CELL,
            &[run(30), Err("Tgetattr failed".into()), run(20)],
        );
        assert_eq!(r.value, None);
        assert_eq!(r.error.as_deref(), Some("Tgetattr failed"));
    }
}
