//! The cells of a run: which workload, at which msize, with how many requests in flight.

use serde::{Deserialize, Serialize};

use super::workload::Workload;

/// The msizes the issue asks for: 8 KiB, 64 KiB and 1 MiB.
pub const DEFAULT_MSIZES: [u32; 3] = [8 << 10, 64 << 10, 1 << 20];
/// One request in flight, and sixteen.
pub const DEFAULT_DEPTHS: [u16; 2] = [1, 16];
/// The msize of the metadata workloads, whose messages are small whatever it is.
pub const METADATA_MSIZE: u32 = 8 << 10;

/// One measurement to take on every server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub workload: Workload,
    /// The msize asked for in `Tversion`; a server may agree to less.
    pub msize: u32,
    /// Requests (operations) in flight at once.
    pub depth: u16,
}

impl Cell {
    /// The figure's name: "stat q16", "read 64K q1".
    pub fn figure(&self) -> String {
        if self.workload.is_stream() {
            format!(
                "{} {} q{}",
                self.workload.label(),
                size_label(self.msize),
                self.depth
            )
        } else {
            format!("{} q{}", self.workload.label(), self.depth)
        }
    }
}

/// Every metadata workload at each depth, then both streams at each msize and depth.
pub fn cells(msizes: &[u32], depths: &[u16]) -> Vec<Cell> {
    let mut out = Vec::new();
    for workload in Workload::ALL.into_iter().filter(|w| !w.is_stream()) {
        for &depth in depths {
            out.push(Cell {
                workload,
                msize: METADATA_MSIZE,
                depth,
            });
        }
    }
    for workload in Workload::ALL.into_iter().filter(|w| w.is_stream()) {
        for &msize in msizes {
            for &depth in depths {
                out.push(Cell {
                    workload,
                    msize,
                    depth,
                });
            }
        }
    }
    out
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
        let cells = cells(&DEFAULT_MSIZES, &DEFAULT_DEPTHS);
        // 3 metadata workloads x 2 depths + 2 streams x 3 msizes x 2 depths.
        assert_eq!(cells.len(), 6 + 12);
        let mut names: Vec<String> = cells.iter().map(Cell::figure).collect();
        assert!(names.contains(&"walk+open+clunk q16".to_owned()));
        assert!(names.contains(&"write 1M q1".to_owned()));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), cells.len());
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
