//! A run's results: the record written to `results.json`, and the tables printed and
//! written from it (plain text, Markdown, CSV).
//!
//! The first server of a run is the reference: every other server's column is followed
//! by the ratio reference/server, so a ratio above 1 means the reference is faster. A
//! raw baseline among them (`ninep-bench raw-server`, [`ServerEntry::baseline`]) is the
//! limit: its ratio column, `ramfs/raw` in `compare`, is the fraction of it the
//! reference reaches.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::matrix::{size_label, Cell};
use super::workload::{Unit, Workload};

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Seconds since the Unix epoch when the run began.
    pub started_unix: u64,
    pub settings: RunSettings,
    /// The servers, baseline first.
    pub servers: Vec<ServerEntry>,
    /// One row per figure, in table order.
    pub figures: Vec<FigureRow>,
    /// Servers that were meant to be measured but could not be started or found.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

/// A server left out of the run, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// How the run was made, for whoever reads the results later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Measured seconds per cell, when the run was timed.
    pub seconds: Option<f64>,
    /// Uncounted seconds before each measurement, when the run was timed.
    pub warmup_seconds: Option<f64>,
    /// Operations per cell, when the run counted operations.
    pub ops: Option<u64>,
    /// How many times each cell ran; each figure is the median of its rounds.
    pub rounds: u32,
    /// Bytes of the file that the streams read and write.
    pub file_bytes: u64,
    /// Bytes of each connection's stream file in a cell of several connections.
    #[serde(default)]
    pub connection_file_bytes: u64,
}

/// One server of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerEntry {
    pub name: String,
    pub address: String,
    /// "9P2000.L" or "9P2000".
    pub dialect: String,
    /// How create+write+remove removed files on this server: "Tunlinkat" or "Tremove"
    /// (diod has no Tunlinkat); `None` when the server could not be set up.
    #[serde(default)]
    pub remove_by: Option<String>,
    /// Why the server could not be measured at all, if it could not.
    pub error: Option<String>,
    /// True for the raw baseline, which answers without doing file system work.
    #[serde(default)]
    pub baseline: bool,
}

/// One figure on every server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureRow {
    pub figure: String,
    pub workload: Workload,
    pub unit: Unit,
    /// The msize asked for.
    pub msize: u32,
    /// Requests in flight on each connection.
    pub depth: u16,
    /// Connections measured at once (each on its own files); the figure is their
    /// aggregate.
    #[serde(default = "one")]
    pub connections: u16,
    /// One per server, in the order of [`Report::servers`].
    pub results: Vec<CellResult>,
    /// Baseline/server for every server after the first, in order.
    pub ratios: Vec<Ratio>,
}

/// A figure on one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub server: String,
    /// The figure in [`FigureRow::unit`]; `None` when the cell failed.
    pub value: Option<f64>,
    /// The msize the server agreed to.
    pub msize: Option<u32>,
    pub ops: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// The figure of every round, in the order they ran; `value` is their median, and
    /// `ops`, `bytes`, `seconds` and `msize` are the median round's.
    pub rounds: Vec<f64>,
    pub error: Option<String>,
}

/// Baseline/peer for one figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub peer: String,
    /// `None` when either value is missing or the peer's is zero.
    pub ratio: Option<f64>,
}

impl FigureRow {
    /// A row for `cell` with no results yet.
    pub fn new(cell: &Cell) -> FigureRow {
        FigureRow {
            figure: cell.figure(),
            workload: cell.workload,
            unit: cell.workload.unit(),
            msize: cell.msize,
            depth: cell.depth,
            connections: cell.connections,
            results: Vec::new(),
            ratios: Vec::new(),
        }
    }

    /// Fills [`FigureRow::ratios`] from the results: the median of the per-round ratios
    /// when both sides have the same rounds (each round's two figures were taken back
    /// to back), else the ratio of the two figures.
    pub fn compute_ratios(&mut self) {
        let Some((base, peers)) = self.results.split_first() else {
            self.ratios.clear();
            return;
        };
        self.ratios = peers
            .iter()
            .map(|peer| Ratio {
                peer: peer.server.clone(),
                ratio: match (base.value, peer.value) {
                    (Some(b), Some(p)) if p > 0.0 => {
                        if !base.rounds.is_empty() && base.rounds.len() == peer.rounds.len() {
                            let per_round: Vec<f64> = base
                                .rounds
                                .iter()
                                .zip(&peer.rounds)
                                .filter(|(_, p)| **p > 0.0)
                                .map(|(b, p)| b / p)
                                .collect();
                            median(per_round)
                        } else {
                            Some(b / p)
                        }
                    }
                    _ => None,
                },
            })
            .collect();
    }
}

fn one() -> u16 {
    1
}

/// The middle value (the lower of the two middle ones for an even count).
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len().checked_sub(1)? / 2).copied()
}

impl Report {
    /// True when every server was reached and every cell measured.
    pub fn all_ok(&self) -> bool {
        self.servers.iter().all(|s| s.error.is_none())
            && self
                .figures
                .iter()
                .all(|f| f.results.iter().all(|r| r.error.is_none()))
    }

    /// The table's header and rows as cells of text.
    fn grid(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let base = self.servers.first().map(|s| s.name.as_str()).unwrap_or("");
        let mut header = vec!["figure".to_owned(), "unit".to_owned()];
        for (i, s) in self.servers.iter().enumerate() {
            header.push(s.name.clone());
            if i > 0 {
                header.push(format!("{base}/{}", s.name));
            }
        }
        let rows = self
            .figures
            .iter()
            .map(|f| {
                let mut row = vec![f.figure.clone(), f.unit.label().to_owned()];
                for (i, r) in f.results.iter().enumerate() {
                    row.push(value_text(f, r));
                    if i > 0 {
                        row.push(ratio_text(f.ratios.get(i - 1).and_then(|r| r.ratio)));
                    }
                }
                row
            })
            .collect();
        (header, rows)
    }

    /// The table aligned in columns, for a terminal.
    pub fn text_table(&self) -> String {
        let (header, rows) = self.grid();
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i == 0 {
                    let _ = write!(out, "{cell:<w$}");
                } else {
                    let _ = write!(out, "  {cell:>w$}");
                }
            }
            out.push('\n');
        };
        line(&mut out, &header);
        for row in &rows {
            line(&mut out, row);
        }
        out.push_str(&self.notes());
        out
    }

    /// The table in Markdown.
    pub fn markdown_table(&self) -> String {
        let (header, rows) = self.grid();
        let mut out = String::new();
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let align: Vec<&str> = (0..header.len())
            .map(|i| if i < 2 { "---" } else { "---:" })
            .collect();
        let _ = writeln!(out, "|{}|", align.join("|"));
        for row in rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        let notes = self.notes();
        if !notes.is_empty() {
            out.push('\n');
            for line in notes.lines() {
                let _ = writeln!(out, "{line}  ");
            }
        }
        out
    }

    /// One line per server and figure.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "figure,workload,depth,connections,requested_msize,server,msize,unit,value,ratio,ops,bytes,seconds,error\n",
        );
        for f in &self.figures {
            for (i, r) in f.results.iter().enumerate() {
                let ratio = if i == 0 {
                    None
                } else {
                    f.ratios.get(i - 1).and_then(|r| r.ratio)
                };
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{:.6},{}",
                    csv_field(&f.figure),
                    f.workload.label(),
                    f.depth,
                    f.connections,
                    f.msize,
                    csv_field(&r.server),
                    r.msize.map(|m| m.to_string()).unwrap_or_default(),
                    f.unit.label(),
                    r.value.map(|v| format!("{v:.3}")).unwrap_or_default(),
                    ratio.map(|v| format!("{v:.4}")).unwrap_or_default(),
                    r.ops,
                    r.bytes,
                    r.seconds,
                    csv_field(r.error.as_deref().unwrap_or("")),
                );
            }
        }
        out
    }

    /// What a reader needs besides the numbers: units, the baseline, and every error.
    fn notes(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "MB = 10^6 bytes; qN = N requests in flight; xN = N connections at once, each on \
             its own files, the figure their aggregate; each figure is the median of {} round(s)",
            self.settings.rounds
        );
        if let (Some(base), true) = (self.servers.first(), self.servers.len() > 1) {
            let _ = write!(
                out,
                "; ratio = {}/peer, the median of the rounds' ratios (above 1: {} is faster)",
                base.name, base.name
            );
        }
        let _ = writeln!(out, "; \"@X\": the server agreed to msize X only.");
        if let (Some(reference), true) = (self.servers.first(), self.servers.len() > 1) {
            for s in self.servers.iter().skip(1).filter(|s| s.baseline) {
                let _ = writeln!(
                    out,
                    "{}: the raw baseline, answering every request at once with a reply of \
                     the right size and no file system work: the limit of this transport \
                     and client; {}/{} is the fraction of it {} reaches.",
                    s.name, reference.name, s.name, reference.name
                );
            }
        }
        for s in &self.skipped {
            let _ = writeln!(out, "{}: skipped: {}", s.name, s.reason);
        }
        for s in &self.servers {
            if s.dialect == ninep::VERSION_9P2000L && s.remove_by.as_deref() == Some("Tremove") {
                let _ = writeln!(
                    out,
                    "{}: create+write+remove ends with Tremove (the server has no Tunlinkat)",
                    s.name
                );
            }
            if let Some(e) = &s.error {
                let _ = writeln!(out, "{}: not measured: {e}", s.name);
            }
        }
        for f in &self.figures {
            for r in &f.results {
                if let Some(e) = &r.error {
                    let _ = writeln!(out, "{} on {}: {e}", f.figure, r.server);
                }
            }
        }
        out
    }
}

fn value_text(f: &FigureRow, r: &CellResult) -> String {
    let Some(v) = r.value else {
        return if r.error.is_some() { "error" } else { "-" }.to_owned();
    };
    let mut s = match f.unit {
        Unit::OpsPerSec => format!("{v:.0}"),
        Unit::MegabytesPerSec => format!("{v:.1}"),
    };
    if f.workload.is_stream() {
        if let Some(m) = r.msize.filter(|&m| m != f.msize) {
            let _ = write!(s, " @{}", size_label(m));
        }
    }
    s
}

fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map(format_ratio).unwrap_or_else(|| "-".to_owned())
}

/// A ratio with two decimals, or two significant digits when it is smaller than 0.1:
/// a server at a few thousandths of the raw baseline must not read as 0.00.
pub fn format_ratio(r: f64) -> String {
    if !(r.is_finite() && r > 0.0 && r < 0.1) {
        return format!("{r:.2}");
    }
    // 0.05 -> 3 decimals, 0.0045 -> 4: two significant digits, at most 8 decimals.
    let decimals = (1.0 - r.log10().floor()).clamp(2.0, 8.0) as usize;
    format!("{r:.decimals$}")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::matrix::Cell;

    fn result(server: &str, value: Option<f64>, msize: u32) -> CellResult {
        CellResult {
            server: server.into(),
            value,
            msize: Some(msize),
            ops: 10,
            bytes: 100,
            seconds: 1.0,
            rounds: value.into_iter().collect(),
            error: value.is_none().then(|| "Tread failed: errno 5".to_owned()),
        }
    }

    fn report() -> Report {
        let mut row = FigureRow::new(&Cell {
            workload: Workload::Read,
            msize: 1 << 20,
            depth: 16,
            connections: 1,
        });
        row.results = vec![
            result("ramfs", Some(300.0), 1 << 20),
            result("diod", Some(150.0), 65536 + 24),
            result("p9", None, 1 << 20),
        ];
        row.compute_ratios();
        Report {
            started_unix: 0,
            settings: RunSettings {
                seconds: Some(1.0),
                warmup_seconds: Some(0.2),
                ops: None,
                rounds: 1,
                file_bytes: 1 << 20,
                connection_file_bytes: 1 << 20,
            },
            servers: ["ramfs", "diod", "p9"]
                .iter()
                .map(|n| ServerEntry {
                    name: (*n).into(),
                    address: format!("unix:/tmp/{n}"),
                    dialect: "9P2000.L".into(),
                    remove_by: Some("Tunlinkat".into()),
                    error: None,
                    baseline: false,
                })
                .collect(),
            figures: vec![row],
            skipped: vec![Skipped {
                name: "unpfs".into(),
                reason: "not installed".into(),
            }],
        }
    }

    #[test]
    fn ratios_are_baseline_over_peer_and_missing_when_a_value_is() {
        let r = report();
        let ratios: Vec<_> = r.figures[0].ratios.iter().map(|r| r.ratio).collect();
        assert_eq!(ratios, [Some(2.0), None]);
        assert!(!r.all_ok());
    }

    #[test]
    fn tables_show_values_ratios_capped_msizes_and_errors() {
        let r = report();
        let text = r.text_table();
        let first = text.lines().next().unwrap();
        assert!(
            first.contains("ramfs/diod") && first.contains("ramfs/p9"),
            "{text}"
        );
        let row = text.lines().nth(1).unwrap();
        assert!(row.starts_with("read 1M q16"), "{text}");
        for want in ["300.0", "150.0 @64K+24", "2.00", "error"] {
            assert!(row.contains(want), "{want} missing in {row}");
        }
        assert!(text.contains("read 1M q16 on p9: Tread failed"), "{text}");
        assert!(text.contains("unpfs: skipped: not installed"), "{text}");
        let md = r.markdown_table();
        assert!(
            md.starts_with("| figure | unit | ramfs | diod | ramfs/diod |"),
            "{md}"
        );
    }

    #[test]
    fn a_raw_baseline_gets_its_column_a_ratio_column_and_a_note() {
        let mut r = report();
        r.servers[1].name = "raw".into();
        r.servers[1].baseline = true;
        r.figures[0].results[1].server = "raw".into();
        r.figures[0].connections = 8;
        r.figures[0].figure = "read 1M q16 x8".into();
        r.figures[0].compute_ratios();
        let text = r.text_table();
        let header = text.lines().next().unwrap();
        assert!(
            header.contains("  raw  ") && header.contains("ramfs/raw"),
            "{text}"
        );
        assert!(
            text.contains("raw: the raw baseline") && text.contains("ramfs/raw is the fraction"),
            "{text}"
        );
        assert!(text.lines().nth(1).unwrap().starts_with("read 1M q16 x8 "));
        assert!(r.csv().contains("read 1M q16 x8,read,16,8,"), "{}", r.csv());
        // Results written before these fields existed still parse.
        let mut json: serde_json::Value = serde_json::to_value(&r).unwrap();
        json["servers"][1]
            .as_object_mut()
            .unwrap()
            .remove("baseline");
        json["figures"][0]
            .as_object_mut()
            .unwrap()
            .remove("connections");
        let back: Report = serde_json::from_value(json).unwrap();
        assert!(!back.servers[1].baseline);
        assert_eq!(back.figures[0].connections, 1);
    }

    #[test]
    fn small_ratios_keep_two_significant_digits() {
        assert_eq!(format_ratio(2.0), "2.00");
        assert_eq!(format_ratio(0.5), "0.50");
        assert_eq!(format_ratio(0.1), "0.10");
        assert_eq!(format_ratio(0.05), "0.050");
        assert_eq!(format_ratio(0.0045), "0.0045");
        assert_eq!(format_ratio(0.0), "0.00");
        assert_eq!(format_ratio(1e-12), "0.00000000");
    }

    #[test]
    fn ratios_are_the_median_of_per_round_ratios() {
        let mut row = report().figures[0].clone();
        row.results[0].rounds = vec![100.0, 300.0, 200.0];
        row.results[1].rounds = vec![50.0, 300.0, 400.0];
        row.compute_ratios();
        // Per round: 2, 1, 0.5.
        assert_eq!(row.ratios[0].ratio, Some(1.0));
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0]), Some(1.0));
    }

    #[test]
    fn csv_has_a_line_per_server_and_round_trips_through_json() {
        let r = report();
        let csv = r.csv();
        assert_eq!(csv.lines().count(), 1 + 3);
        assert!(csv.contains(",diod,65560,MB/s,150.000,2.0000,"), "{csv}");
        let json = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
