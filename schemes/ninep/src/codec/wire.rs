//! Bounds-checked little-endian primitives: a [`Reader`] over one message's bytes and a
//! [`Writer`] that either appends to a buffer or only counts.
//!
//! Encoding runs the same code twice, once into a [`Counter`] and once into the output
//! buffer, so that `encoded_len` can never disagree with `encode` and every limit is
//! checked before the first byte is written.

use alloc::string::String;
use alloc::vec::Vec;

use super::{DecodeErrorKind, EncodeError};
use crate::msg::{Dirent, Qid, Stat};

/// Cursor over the bytes of one message (or one record) that refuses to run past them.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next `n` bytes, or `Overrun` if fewer remain.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeErrorKind> {
        if n > self.rest.len() {
            return Err(DecodeErrorKind::Overrun);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeErrorKind> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeErrorKind> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeErrorKind> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeErrorKind> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeErrorKind> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// `len[2]` and that many bytes of UTF-8 without NUL.
    pub(crate) fn string(&mut self) -> Result<String, DecodeErrorKind> {
        let len = usize::from(self.u16()?);
        let bytes = self.take(len)?;
        if bytes.contains(&0) {
            return Err(DecodeErrorKind::NulInString);
        }
        let s = core::str::from_utf8(bytes).map_err(|_| DecodeErrorKind::InvalidUtf8)?;
        Ok(String::from(s))
    }

    pub(crate) fn qid(&mut self) -> Result<Qid, DecodeErrorKind> {
        Ok(Qid {
            ty: self.u8()?,
            version: self.u32()?,
            path: self.u64()?,
        })
    }

    /// `count[4]` and that many raw bytes (`Rread`, `Twrite`, `Rreaddir`).
    pub(crate) fn counted_bytes(&mut self) -> Result<Vec<u8>, DecodeErrorKind> {
        // `counted_slice` checks the count against what remains before anything is
        // allocated.
        Ok(self.counted_slice()?.to_vec())
    }

    /// `count[4]` and that many raw bytes, borrowed from the message.
    pub(crate) fn counted_slice(&mut self) -> Result<&'a [u8], DecodeErrorKind> {
        let count = usize::try_from(self.u32()?).map_err(|_| DecodeErrorKind::Overrun)?;
        self.take(count)
    }

    /// One stat record with its own `size[2]`.
    ///
    /// The record's fields must fill its declared size exactly: a record whose fields
    /// run past the size, or stop short of it, is `BadStatSize`. A size that runs past
    /// the end of this reader is an `Overrun`.
    pub(crate) fn stat(&mut self) -> Result<Stat, DecodeErrorKind> {
        let size = usize::from(self.u16()?);
        let mut rec = Reader::new(self.take(size)?);
        let overrun_is_bad_size = |k| match k {
            DecodeErrorKind::Overrun => DecodeErrorKind::BadStatSize,
            other => other,
        };
        let stat = rec.stat_fields().map_err(overrun_is_bad_size)?;
        if rec.remaining() != 0 {
            return Err(DecodeErrorKind::BadStatSize);
        }
        Ok(stat)
    }

    fn stat_fields(&mut self) -> Result<Stat, DecodeErrorKind> {
        Ok(Stat {
            ty: self.u16()?,
            dev: self.u32()?,
            qid: self.qid()?,
            mode: self.u32()?,
            atime: self.u32()?,
            mtime: self.u32()?,
            length: self.u64()?,
            name: self.string()?,
            uid: self.string()?,
            gid: self.string()?,
            muid: self.string()?,
        })
    }

    /// `n[2]` followed by a stat record whose own size must be `n - 2`, as `Rstat` and
    /// `Twstat` carry it.
    pub(crate) fn sized_stat(&mut self) -> Result<Stat, DecodeErrorKind> {
        let n = usize::from(self.u16()?);
        let mut outer = Reader::new(self.take(n)?);
        let stat = outer.stat().map_err(|k| match k {
            // The inner size claims more than the outer n holds.
            DecodeErrorKind::Overrun => DecodeErrorKind::BadStatSize,
            other => other,
        })?;
        if outer.remaining() != 0 {
            return Err(DecodeErrorKind::BadStatSize);
        }
        Ok(stat)
    }

    /// One `Rreaddir` entry: qid, offset, type, name.
    pub(crate) fn dirent(&mut self) -> Result<Dirent, DecodeErrorKind> {
        Ok(Dirent {
            qid: self.qid()?,
            offset: self.u64()?,
            ty: self.u8()?,
            name: self.string()?,
        })
    }

    /// `TrailingBytes` unless everything was read.
    pub(crate) fn finish(&self) -> Result<(), DecodeErrorKind> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeErrorKind::TrailingBytes)
        }
    }
}

/// Where a [`Writer`] puts bytes.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn put(&mut self, bytes: &[u8]) {
        (**self).put(bytes);
    }
}

/// A sink that only counts (saturating, so absurd values cannot wrap).
#[derive(Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 = self.0.saturating_add(bytes.len());
    }
}

/// Writes fields into a [`Sink`]. A field that breaks a limit latches the first error
/// and is still written in full, so a counting pass reports both the error and the
/// length the value would take.
pub(crate) struct Writer<S: Sink> {
    sink: S,
    error: Option<EncodeError>,
}

impl<S: Sink> Writer<S> {
    pub(crate) fn new(sink: S) -> Self {
        Writer { sink, error: None }
    }

    /// The sink and the first error met, if any.
    pub(crate) fn finish(self) -> (S, Option<EncodeError>) {
        (self.sink, self.error)
    }

    pub(crate) fn fail(&mut self, e: EncodeError) {
        self.error.get_or_insert(e);
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.sink.put(b);
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes(&v.to_le_bytes());
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    /// A count that must fit in 16 bits.
    pub(crate) fn u16_len(&mut self, len: usize, e: EncodeError) {
        let n = u16::try_from(len).unwrap_or_else(|_| {
            self.fail(e);
            u16::MAX
        });
        self.u16(n);
    }

    /// A count that must fit in 32 bits.
    pub(crate) fn u32_len(&mut self, len: usize, e: EncodeError) {
        let n = u32::try_from(len).unwrap_or_else(|_| {
            self.fail(e);
            u32::MAX
        });
        self.u32(n);
    }

    pub(crate) fn string(&mut self, s: &str) {
        self.u16_len(s.len(), EncodeError::StringTooLong);
        self.bytes(s.as_bytes());
    }

    pub(crate) fn qid(&mut self, q: &Qid) {
        self.u8(q.ty);
        self.u32(q.version);
        self.u64(q.path);
    }

    /// `count[4]` and the bytes.
    pub(crate) fn counted_bytes(&mut self, data: &[u8]) {
        self.u32_len(data.len(), EncodeError::TooLong);
        self.bytes(data);
    }

    /// One stat record with its `size[2]`; at most 65535 bytes in all.
    pub(crate) fn stat(&mut self, st: &Stat) {
        let len = st.encoded_len();
        if len > usize::from(u16::MAX) {
            self.fail(EncodeError::TooLong);
        }
        self.u16_len(len.saturating_sub(2), EncodeError::TooLong);
        self.u16(st.ty);
        self.u32(st.dev);
        self.qid(&st.qid);
        self.u32(st.mode);
        self.u32(st.atime);
        self.u32(st.mtime);
        self.u64(st.length);
        self.string(&st.name);
        self.string(&st.uid);
        self.string(&st.gid);
        self.string(&st.muid);
    }

    /// `n[2]` and a stat record of `n` bytes, as `Rstat` and `Twstat` carry it.
    pub(crate) fn sized_stat(&mut self, st: &Stat) {
        self.u16_len(st.encoded_len(), EncodeError::TooLong);
        self.stat(st);
    }
}

/// A value with a wire form.
pub(crate) trait Encode {
    fn put<S: Sink>(&self, w: &mut Writer<S>);
}

/// The bytes `v` takes, and the first limit it breaks.
pub(crate) fn measure<T: Encode + ?Sized>(v: &T) -> (usize, Option<EncodeError>) {
    let mut w = Writer::new(Counter::default());
    v.put(&mut w);
    let (Counter(len), err) = w.finish();
    (len, err)
}

/// Appends `v` to `out`, or leaves `out` as it was if `v` breaks a limit.
pub(crate) fn append<T: Encode + ?Sized>(v: &T, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let (len, err) = measure(v);
    if let Some(e) = err {
        return Err(e);
    }
    let start = out.len();
    out.reserve(len);
    let mut w = Writer::new(&mut *out);
    v.put(&mut w);
    let (_, err) = w.finish();
    // The counting pass saw the same fields, so the writing pass cannot fail.
    debug_assert!(err.is_none());
    debug_assert_eq!(out.len() - start, len);
    Ok(())
}

/// Fixed part of a stat record including its `size[2]`: size, type, dev, qid, mode,
/// atime, mtime, length and four string lengths.
pub(crate) const STAT_FIXED_LEN: usize = 2 + 2 + 4 + 13 + 4 + 4 + 4 + 8 + 4 * 2;

/// Fixed part of a readdir entry: qid, offset, type and the name's length.
pub(crate) const DIRENT_FIXED_LEN: usize = 13 + 8 + 1 + 2;
