//! Where holding a file's pages in a reply starts to pay (`ninep_server/output.rs`'s
//! `SHARE_MIN`): the writer's CPU time to send replies of 4 KiB to 64 KiB over a unix
//! socket, copied into one buffer and written (the reply buffer) against held as the
//! read hands them (`FileData::read_pieces`) and written with `writev`, 16 replies a
//! write as a q16 batch. Measured side by side, interleaved, for a file that fits in
//! the cache (4 MiB) and one that does not (64 MiB); prints each size's CPU time per
//! reply and the ratio held/copied (below 1: holding is cheaper). Never asserts.
//!
//! Run: `cargo bench -p ramfs --bench share_threshold`.

use std::io::{IoSlice, Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;

use ramfs::fs::{FileData, Piece, SharedPages, PAGE_SIZE};

/// Replies written together, as a q16 batch.
const BATCH: usize = 16;
/// Bytes sent in each measurement.
const BYTES_PER_MEASUREMENT: usize = 128 << 20;
const ROUNDS: usize = 5;
/// An Rread's header.
const HEADER: [u8; 11] = [0; 11];

/// CPU time of this thread, in nanoseconds.
fn thread_cpu_ns() -> u128 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is always
    // available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128
}

fn file(mib: usize) -> FileData {
    let mut f = FileData::default();
    let page: Vec<u8> = (0..PAGE_SIZE).map(|i| i as u8).collect();
    for i in 0..mib * 256 {
        f.write((i * PAGE_SIZE) as u64, &page);
    }
    f
}

/// Writes every slice in order, whatever `write_vectored` takes each call.
fn write_all_vectored(w: &mut UnixStream, mut slices: &mut [IoSlice<'_>]) {
    while !slices.is_empty() {
        let n = w.write_vectored(slices).expect("writev");
        IoSlice::advance_slices(&mut slices, n);
    }
}

/// Sends replies of `size` bytes read round the file, copied or held; returns the
/// writer's CPU nanoseconds a reply.
fn measure(f: &FileData, size: usize, hold: bool) -> f64 {
    let (mut ours, mut theirs) = UnixStream::pair().expect("socket pair");
    let replies = BYTES_PER_MEASUREMENT / size;
    let total = replies * (size + HEADER.len());
    let drain = thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        while got < total {
            match theirs.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    });
    let len = f.size() as usize;
    let mut offset = 0;
    let mut copied: Vec<u8> = Vec::with_capacity(BATCH * (size + HEADER.len()));
    let mut held: Vec<SharedPages> = Vec::new();
    let start = thread_cpu_ns();
    for _ in 0..replies / BATCH {
        copied.clear();
        held.clear();
        // Headers and copied bytes go in `copied`; the slices record where held pages
        // go between them: (end of the bytes before, index of the held run).
        let mut order: Vec<(usize, usize)> = Vec::new();
        for _ in 0..BATCH {
            copied.extend_from_slice(&HEADER);
            if hold {
                f.read_pieces(
                    offset as u64,
                    size,
                    ramfs::fs::PIECE_SHARE_MIN,
                    |piece| match piece {
                        Piece::Bytes(bytes) => copied.extend_from_slice(bytes),
                        Piece::Pages(pages) => {
                            order.push((copied.len(), held.len()));
                            held.push(pages);
                        }
                    },
                );
            } else {
                f.read_with(offset as u64, size, |bytes| copied.extend_from_slice(bytes));
            }
            offset = (offset + size) % len;
        }
        if hold {
            let mut slices = Vec::with_capacity(order.len() * 2 + 1);
            let mut from = 0;
            for &(at, run) in &order {
                if at > from {
                    slices.push(IoSlice::new(&copied[from..at]));
                }
                from = at;
                slices.extend(held[run].pages().map(IoSlice::new));
            }
            slices.push(IoSlice::new(&copied[from..]));
            write_all_vectored(&mut ours, &mut slices);
        } else {
            ours.write_all(&copied).expect("write");
        }
    }
    let ns = thread_cpu_ns() - start;
    drop(ours);
    drain.join().expect("drain");
    ns as f64 / (replies / BATCH * BATCH) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    println!("writer CPU time a reply (ns), medians of {ROUNDS} interleaved rounds");
    println!("file     size    copied      held   held/copied");
    for mib in [4, 64] {
        let f = file(mib);
        for size in [4 << 10, 8 << 10, 16 << 10, 64 << 10] {
            let (mut copied, mut held, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                let c = measure(&f, size, false);
                let h = measure(&f, size, true);
                copied.push(c);
                held.push(h);
                ratios.push(h / c);
            }
            println!(
                "{mib:>3} MiB {:>5}K {:>9.0} {:>9.0} {:>13.2}",
                size >> 10,
                median(copied),
                median(held),
                median(ratios)
            );
        }
    }
}
