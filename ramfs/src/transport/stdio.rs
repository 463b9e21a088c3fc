//! The process's standard input and output as one connection (`--stdio`).

use super::{Connection, PeerCred};

/// Standard input and output as a connection.
pub fn stdio() -> Connection {
    Connection {
        reader: Box::new(std::io::stdin()),
        writer: Box::new(std::io::stdout()),
        peer: "stdio".to_owned(),
        cred: PeerCred::Parent,
    }
}
