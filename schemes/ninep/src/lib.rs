//! 9P2000 and 9P2000.L messages: types, encoding and decoding.
//!
//! This crate is `no_std` with `alloc` and does no I/O. A message on the wire is
//! `size[4] type[1] tag[2] body`, little-endian; [`decode`] takes exactly one whole
//! message (size field included) and [`encode`] appends one to a buffer. A server's data
//! path copies no file bytes of its own: [`decode_view`] lends a `Twrite`'s data from the
//! received bytes, and [`RreadInPlace`] builds an `Rread` in the outgoing buffer.
//!
//! Decoding never panics and never allocates more than the message's own size allows:
//! every count read from the wire is checked against the bytes that remain before
//! anything is reserved.
//!
//! The two dialects share most messages. They differ in `Tauth`/`Tattach` (9P2000.L
//! carries a numeric uid, `n_uname`) and in the error reply (`Rerror` with a string in
//! 9P2000, `Rlerror` with an errno in 9P2000.L). [`Dialect`] tells [`decode`] which
//! layout to expect; `Tversion`/`Rversion` decode the same in both.
//!
//! ```
//! use ninep::{decode, encode, Dialect, Fcall, Msg, NOTAG};
//!
//! let fc = Fcall { tag: NOTAG, msg: Msg::Tversion { msize: 8192, version: "9P2000.L".into() } };
//! let mut buf = Vec::new();
//! encode(&fc, &mut buf).unwrap();
//! assert_eq!(ninep::peek_size(&buf), Some(buf.len() as u32));
//! assert_eq!(decode(&buf, Dialect::L).unwrap(), fc);
//! ```
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

extern crate alloc;

mod codec;
pub mod consts;
pub mod errno;
mod msg;

pub use codec::{
    decode, decode_view, encode, encoded_len, mtype_name, peek_size, peek_twrite, DecodeError,
    DecodeErrorKind, EncodeError, FcallView, MsgView, RreadInPlace, TwriteHeader, RREAD_HEADER_LEN,
    TWRITE_HEADER_LEN,
};
pub use consts::*;
pub use msg::*;
