//! A text form of 9P messages for transcript tests, in the style of Plan 9's
//! `aux/9pcon -a`: one message a line, fields by their Rust names in `ninep::Msg`.
//!
//! [`lexer`] splits a line into values, [`names`] gives numbers their symbolic names,
//! [`parse`] builds `Fcall`s, [`format`] writes them back, [`linux_errors`] lists the
//! `Rerror` strings a transcript may expect.

pub mod format;
pub mod lexer;
pub mod linux_errors;
pub mod names;
pub mod parse;
