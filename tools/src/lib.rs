//! Regression tools and the 9P load generator.
//!
//! Each tool keeps its library code in a module of its own; the binaries in `src/bin`
//! are thin command lines over them.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod bench;
