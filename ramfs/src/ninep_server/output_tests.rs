//! Tests of `output.rs`: bytes and held pages go out in order, whole, through writers
//! that take a few bytes at a time, more slices than one `writev` takes, interrupted
//! writes, and a writer that takes nothing.

use std::io::{self, IoSlice, Write};

use super::*;
use crate::fs::{FileData, Piece};

/// A writer that takes at most `step` bytes a call (vectored or not), and is
/// interrupted every third call; it records what it took and the slices it was handed.
struct Trickle {
    step: usize,
    calls: usize,
    taken: Vec<u8>,
    most_slices: usize,
}

impl Trickle {
    fn new(step: usize) -> Trickle {
        Trickle {
            step,
            calls: 0,
            taken: Vec::new(),
            most_slices: 0,
        }
    }

    fn interrupted(&mut self) -> bool {
        self.calls += 1;
        self.calls.is_multiple_of(3)
    }
}

impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.interrupted() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(self.step);
        self.taken.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.interrupted() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.most_slices = self.most_slices.max(bufs.len());
        let mut left = self.step;
        for buf in bufs {
            let n = buf.len().min(left);
            self.taken.extend_from_slice(&buf[..n]);
            left -= n;
            if left == 0 {
                break;
            }
        }
        Ok(self.step - left)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A file of `pages` pages (a run each), every byte different from its neighbours.
pub(in crate::ninep_server) fn file(pages: usize) -> (FileData, Vec<u8>) {
    let bytes: Vec<u8> = (0..pages * 4096)
        .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
        .collect();
    let mut f = FileData::default();
    f.write(0, &bytes);
    (f, bytes)
}

/// Puts into `out`, `times` times: a few bytes of header, then the file's pages held.
pub(in crate::ninep_server) fn fill(out: &mut Output, f: &FileData, times: usize) -> Vec<u8> {
    let mut want = Vec::new();
    for i in 0..times {
        let header = [i as u8; 11];
        out.bytes.extend_from_slice(&header);
        want.extend_from_slice(&header);
        push_file(out, f, &mut want);
    }
    out.bytes.extend_from_slice(b"tail");
    want.extend_from_slice(b"tail");
    want
}

/// Puts all of `f` into `out` as a read hands it (its pages held), and its bytes onto
/// `want`.
pub(in crate::ninep_server) fn push_file(out: &mut Output, f: &FileData, want: &mut Vec<u8>) {
    f.read_pieces(
        0,
        usize::MAX,
        crate::fs::PIECE_SHARE_MIN,
        |piece| match piece {
            Piece::Pages(pages) => {
                pages.pages().for_each(|p| want.extend_from_slice(p));
                out.push_pages(pages);
            }
            Piece::Bytes(bytes) => {
                want.extend_from_slice(bytes);
                out.bytes.extend_from_slice(bytes);
            }
        },
    );
}

#[test]
fn partial_writes_deliver_every_byte_in_order() {
    let (f, _) = file(5);
    // 1, 3 and 30 replies: 7, 19 and 181 slices, each size of slice array.
    for times in [1, 3, 30] {
        // A byte at a time over 30 replies would take seconds: each call walks the
        // output from its start.
        let steps: &[usize] = if times > 3 {
            &[4095, 4097, 10_000]
        } else {
            &[1, 3, 4095, 4097, 10_000]
        };
        for &step in steps {
            let mut out = Output::default();
            let want = fill(&mut out, &f, times);
            assert_eq!(out.len(), want.len());
            let mut w = Trickle::new(step);
            out.write_to(&mut w).expect("written");
            assert!(w.taken == want, "{times} replies, step {step}");
            assert!(out.is_empty(), "emptied after the write");
        }
    }
}

#[test]
fn more_slices_than_one_writev_takes_go_out_in_several() {
    // 300 replies of 5 pages: 1,800 slices, more than IOV_MAX.
    let (f, _) = file(5);
    let mut out = Output::default();
    let want = fill(&mut out, &f, 300);
    let mut w = Trickle::new(usize::MAX);
    out.write_to(&mut w).expect("written");
    assert_eq!(w.taken.len(), want.len());
    assert!(w.taken == want, "every byte in order");
    assert_eq!(
        w.most_slices, IOV_MAX,
        "no call was handed more than IOV_MAX"
    );
}

#[test]
fn a_writer_that_takes_nothing_is_an_error_not_a_loop() {
    let (f, _) = file(1);
    let mut out = Output::default();
    fill(&mut out, &f, 1);
    let mut w = Trickle::new(0);
    let e = out.write_to(&mut w).expect_err("nothing taken");
    assert_eq!(e.kind(), io::ErrorKind::WriteZero);
    assert!(out.is_empty());
}

#[test]
fn truncate_takes_back_the_pages_placed_after_the_cut() {
    let (f, _) = file(2);
    let mut out = Output::default();
    let first = fill(&mut out, &f, 1);
    let cut = out.bytes.len();
    let len = out.len();
    fill(&mut out, &f, 1);
    out.truncate(cut);
    assert_eq!(out.len(), len);
    let mut w = Trickle::new(usize::MAX);
    out.write_to(&mut w).expect("written");
    assert_eq!(w.taken, first);
}
