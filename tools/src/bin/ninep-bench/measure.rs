//! Measuring the servers cell by cell, and the results: the table printed, the files
//! written.

use std::path::Path;

use tools::bench::report::{Report, Skipped};
use tools::bench::session::Target;
use tools::bench::{chart, matrix, runner};
use tracing::info;

use super::Common;

pub(super) fn measure(targets: &[Target], common: &Common, skipped: Vec<Skipped>) -> Report {
    let settings = common.settings();
    let mut cells = matrix::cells(&common.msizes, &common.depths, &common.connections);
    matrix::keep_workloads(&mut cells, &common.workloads);
    eprintln!(
        "measuring {} figures on {} servers: {}",
        cells.len(),
        targets.len(),
        targets
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut progress = |line: &str| eprintln!("{line}");
    let rounds = if common.quick { 1 } else { common.rounds };
    let mut report = runner::run(targets, &cells, &settings, rounds, &mut progress);
    report.skipped = skipped;
    report
}

/// Prints the table and writes the results; true when every cell was measured.
pub(super) fn finish(report: &Report, out: &Path) -> bool {
    print!("{}", report.text_table());
    let written = write_results(report, out);
    match &written {
        Ok(()) => eprintln!(
            "results in {}: results.json, results.csv, results.md, chart.svg",
            out.display()
        ),
        Err(e) => eprintln!(
            "ninep-bench: cannot write results to {}: {e}",
            out.display()
        ),
    }
    written.is_ok() && report.all_ok()
}

fn write_results(report: &Report, out: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(out.join("results.json"), json + "\n")?;
    std::fs::write(out.join("results.csv"), report.csv())?;
    std::fs::write(out.join("results.md"), report.markdown_table())?;
    std::fs::write(out.join("chart.svg"), chart::svg(report))?;
    info!("wrote results to {}", out.display());
    Ok(())
}
