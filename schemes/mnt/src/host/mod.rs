//! The hosted side (`std` feature): a `Mutex`+`Condvar` [`Platform`](crate::Platform)
//! and transports over the operating system's connections.
//!
//! Every stream transport has one background thread that frames incoming bytes into
//! whole messages; receiving is taking the next one from a queue, so a receive can
//! be interrupted without losing bytes. The queue is bounded: when it is full the
//! thread stops reading, and the server's writes wait. Sends are written directly,
//! one at a time.

mod inbox;
mod pipe;
mod rendez;
mod stream;

pub use pipe::{pipe, PipeServer, PipeTransport, ServerRecv};
pub use rendez::{StdPlatform, StdRendez};
pub use stream::{ChildProcess, StreamTransport};
