//! The cells of a run: which workload, at which msize, with how many requests in flight
//! on how many connections.
//!
//! A cell of several connections (`x8`) runs the same workload on that many connections
//! at once, each on files of its own, at the deepest of the depths; its figure is their
//! aggregate. It shows what one connection cannot: whether a server serves connections
//! in parallel or behind one server-wide lock.

use serde::{Deserialize, Serialize};

use super::workload::Workload;

/// The msizes the issue asks for: 8 KiB, 64 KiB and 1 MiB.
pub const DEFAULT_MSIZES: [u32; 3] = [8 << 10, 64 << 10, 1 << 20];
/// One request in flight, and sixteen.
pub const DEFAULT_DEPTHS: [u16; 2] = [1, 16];
/// The msize of the metadata workloads, whose messages are small whatever it is.
pub const METADATA_MSIZE: u32 = 8 << 10;
/// One connection, and eight at once.
pub const DEFAULT_CONNECTIONS: [u16; 2] = [1, 8];

/// One measurement to take on every server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub workload: Workload,
    /// The msize asked for in `Tversion`; a server may agree to less.
    pub msize: u32,
    /// Requests (operations) in flight at once, on each connection.
    pub depth: u16,
    /// Connections running the workload at once, each on its own files.
    pub connections: u16,
}

impl Cell {
    /// The figure's name: "stat q16", "read 64K q1", "stat q16 x8".
    pub fn figure(&self) -> String {
        let mut name = if self.workload.is_stream() {
            format!(
                "{} {} q{}",
                self.workload.label(),
                size_label(self.msize),
                self.depth
            )
        } else {
            format!("{} q{}", self.workload.label(), self.depth)
        };
        if self.connections > 1 {
            name.push_str(&format!(" x{}", self.connections));
        }
        name
    }
}

/// Every metadata workload, then both streams at each msize: on one connection at
/// each depth (when `connections` has 1), then on each larger number of connections
/// at the deepest depth.
pub fn cells(msizes: &[u32], depths: &[u16], connections: &[u16]) -> Vec<Cell> {
    let deepest = depths.iter().copied().max().unwrap_or(1);
    let mut out = Vec::new();
    let mut add = |workload: Workload, msize: u32| {
        if connections.contains(&1) {
            for &depth in depths {
                out.push(Cell {
                    workload,
                    msize,
                    depth,
                    connections: 1,
                });
            }
        }
        for &n in connections.iter().filter(|&&n| n > 1) {
            out.push(Cell {
                workload,
                msize,
                depth: deepest,
                connections: n,
            });
        }
    };
    for workload in Workload::ALL.into_iter().filter(|w| !w.is_stream()) {
        add(workload, METADATA_MSIZE);
    }
    for workload in Workload::ALL.into_iter().filter(|w| w.is_stream()) {
        for &msize in msizes {
            add(workload, msize);
        }
    }
    out
}

/// Keeps only the cells of `workloads` (all of them when it is empty): `--workloads`, to
/// profile one cell of a server.
pub fn keep_workloads(cells: &mut Vec<Cell>, workloads: &[Workload]) {
    if !workloads.is_empty() {
        cells.retain(|c| workloads.contains(&c.workload));
    }
}

/// A byte count as people write msizes: "8K", "1M", "64K+24", or the plain number.
pub fn size_label(bytes: u32) -> String {
    const K: u32 = 1 << 10;
    const M: u32 = 1 << 20;
    let io_header = ninep::IOHDRSZ;
    if bytes >= M && bytes.is_multiple_of(M) {
        format!("{}M", bytes / M)
    } else if bytes >= K && bytes.is_multiple_of(K) {
        format!("{}K", bytes / K)
    } else if bytes > io_header && (bytes - io_header).is_multiple_of(K) && bytes - io_header >= K {
        // Servers often cap at a power of two of data plus the I/O header.
        format!("{}+{io_header}", size_label(bytes - io_header))
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matrix_has_every_figure_once() {
        let cells = cells(&DEFAULT_MSIZES, &DEFAULT_DEPTHS, &DEFAULT_CONNECTIONS);
        // (3 metadata workloads + 2 streams x 3 msizes) x (2 depths + 8 connections).
        assert_eq!(cells.len(), (3 + 6) * 3);
        let mut names: Vec<String> = cells.iter().map(Cell::figure).collect();
        assert!(names.contains(&"walk+open+clunk q16".to_owned()));
        assert!(names.contains(&"write 1M q1".to_owned()));
        assert!(names.contains(&"stat q16 x8".to_owned()));
        assert!(names.contains(&"read 64K q16 x8".to_owned()));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), cells.len());
    }

    #[test]
    fn several_connections_run_at_the_deepest_depth_only() {
        let cells = cells(&[8192], &[4, 1], &[8, 2]);
        // No 1 in the list: no single-connection cells.
        assert!(cells.iter().all(|c| c.connections > 1 && c.depth == 4));
        assert_eq!(cells.len(), (3 + 2) * 2);
        assert_eq!(cells[0].figure(), "walk+open+clunk q4 x8");
        let single = super::cells(&[8192], &[1, 16], &[1]);
        assert!(single.iter().all(|c| c.connections == 1));
        assert_eq!(single.len(), (3 + 2) * 2);
    }

    #[test]
    fn a_workload_list_keeps_only_its_cells() {
        let mut all = cells(&DEFAULT_MSIZES, &DEFAULT_DEPTHS, &[1]);
        let every = all.len();
        keep_workloads(&mut all, &[]);
        assert_eq!(all.len(), every, "no list keeps everything");
        keep_workloads(&mut all, &[Workload::Read, Workload::Stat]);
        let names: Vec<String> = all.iter().map(Cell::figure).collect();
        assert_eq!(
            names.len(),
            2 + 3 * 2,
            "stat at 2 depths, read at 3 msizes x 2 depths"
        );
        assert!(names.contains(&"read 64K q16".to_owned()));
        assert!(names.contains(&"stat q1".to_owned()));
        assert!(all
            .iter()
            .all(|c| matches!(c.workload, Workload::Read | Workload::Stat)));
    }

    #[test]
    fn sizes_read_like_msizes() {
        assert_eq!(size_label(8192), "8K");
        assert_eq!(size_label(1 << 20), "1M");
        assert_eq!(size_label(65536 + 24), "64K+24");
        assert_eq!(size_label((1 << 20) + 24), "1M+24");
        assert_eq!(size_label(1000), "1000");
        assert_eq!(size_label(24), "24");
    }
}
