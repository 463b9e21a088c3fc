//! A message's data as transcript text: records when it splits into stats or dirents,
//! quoted text with runs when it is text or mostly runs, else hex.

use std::fmt::Write as _;

use ninep::{Dirent, Stat};

use super::values::{dirent, quote, stat};

#[derive(Clone, Copy)]
pub(super) enum DataKind {
    Plain,
    Stats,
    Dirents,
}

/// Data as records when it parses as them, as text when it is text, else as hex.
pub(super) fn bytes(data: &[u8], kind: DataKind) -> String {
    if data.is_empty() {
        return "\"\"".into();
    }
    let records = match kind {
        DataKind::Plain => None,
        DataKind::Stats => split_all(data, |b| Stat::decode(b).ok())
            .map(|v| v.iter().map(stat).collect::<Vec<_>>()),
        DataKind::Dirents => split_all(data, |b| Dirent::decode(b).ok())
            .map(|v| v.iter().map(dirent).collect::<Vec<_>>()),
    };
    if let Some(r) = records {
        return format!("[{}]", r.join(","));
    }
    let printable = data
        .iter()
        .filter(|&&b| b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b))
        .count();
    // Text, or data that is mostly runs (holes of zeros): a quoted string with runs.
    if printable * 4 >= data.len() * 3 || runs(data).len() * 8 <= data.len() {
        return runs(data)
            .iter()
            .map(|&(b, n)| {
                if n >= RUN_MIN {
                    format!("{}*{n}", quote(&[b]))
                } else {
                    quote(&vec![b; n])
                }
            })
            .fold(Vec::<String>::new(), |mut acc, piece| {
                // Merge neighbouring short pieces into one quoted string.
                match acc.last_mut() {
                    Some(last) if !last.contains('*') && !piece.contains('*') => {
                        last.pop();
                        last.push_str(&piece[1..]);
                    }
                    _ => acc.push(piece),
                }
                acc
            })
            .join("+");
    }
    let mut h = String::from("hex:");
    for b in data {
        let _ = write!(h, "{b:02x}");
    }
    h
}

/// Runs at least this long are written as `"c"*n`.
const RUN_MIN: usize = 16;

/// `data` as (byte, run length) pairs.
fn runs(data: &[u8]) -> Vec<(u8, usize)> {
    let mut out: Vec<(u8, usize)> = Vec::new();
    for &b in data {
        match out.last_mut() {
            Some((last, n)) if *last == b => *n += 1,
            _ => out.push((b, 1)),
        }
    }
    out
}

/// Every record of `data`, or None if it does not split exactly into records.
fn split_all<T>(data: &[u8], one: impl Fn(&[u8]) -> Option<(T, usize)>) -> Option<Vec<T>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (item, used) = one(rest)?;
        if used == 0 {
            return None;
        }
        out.push(item);
        rest = &rest[used..];
    }
    Some(out)
}
