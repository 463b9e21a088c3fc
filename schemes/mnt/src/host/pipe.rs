//! An in-memory, message-preserving pipe: the client end is a [`Transport`], the
//! server end is for tests (a scriptable fake server) and in-process servers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::inbox::Inbox;
use crate::error::TransportError;
use crate::rendez::Interrupt;
use crate::transport::Transport;

struct Ends {
    to_server: Inbox,
    to_client: Inbox,
}

/// The client end of a [`pipe`].
pub struct PipeTransport {
    ends: Arc<Ends>,
}

/// The server end of a [`pipe`]. Dropping it hangs up: the client sees end of file.
pub struct PipeServer {
    ends: Arc<Ends>,
}

/// A connected pair of ends.
pub fn pipe() -> (PipeTransport, PipeServer) {
    let ends = Arc::new(Ends {
        to_server: Inbox::new(),
        to_client: Inbox::new(),
    });
    (PipeTransport { ends: ends.clone() }, PipeServer { ends })
}

impl Transport for PipeTransport {
    fn send(&self, msg: &[u8]) -> Result<(), TransportError> {
        self.ends.to_server.push(msg.to_vec())
    }

    fn recv(&self, intr: &Interrupt) -> Result<Vec<u8>, TransportError> {
        self.ends.to_client.recv(intr)
    }

    fn close(&self) {
        // The server still reads what was sent before, then end of file.
        self.ends.to_server.finish(TransportError::Eof);
        self.ends.to_client.abort(TransportError::Closed);
    }
}

/// What the server end got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerRecv {
    /// One whole message from the client.
    Msg(Vec<u8>),
    /// The client closed its end.
    Eof,
    /// Nothing came before the deadline.
    Timeout,
}

impl PipeServer {
    /// The next message from the client, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> ServerRecv {
        match self.ends.to_server.recv_until(Instant::now() + timeout) {
            Some(Ok(m)) => ServerRecv::Msg(m),
            Some(Err(_)) => ServerRecv::Eof,
            None => ServerRecv::Timeout,
        }
    }

    /// The next message from the client; `None` once the client has closed.
    pub fn recv(&self) -> Option<Vec<u8>> {
        self.ends.to_server.recv(&Interrupt::new()).ok()
    }

    /// Sends one message (whole, or deliberately malformed) to the client. Returns
    /// false if the client has closed.
    pub fn send(&self, msg: Vec<u8>) -> bool {
        self.ends.to_client.push(msg).is_ok()
    }

    /// Hangs up: the client sees end of file after the messages already sent.
    pub fn close(&self) {
        self.ends.to_client.finish(TransportError::Eof);
        self.ends.to_server.abort(TransportError::Eof);
    }
}

impl Drop for PipeServer {
    fn drop(&mut self) {
        self.close();
    }
}
