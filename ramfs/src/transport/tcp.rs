//! TCP listening sockets.

use std::io;
use std::net::{SocketAddr, TcpListener};

use super::{Connection, PeerCred};

/// A bound TCP listener.
pub struct TcpSocketListener {
    listener: TcpListener,
}

impl TcpSocketListener {
    pub fn bind(addr: SocketAddr) -> io::Result<TcpSocketListener> {
        Ok(TcpSocketListener {
            listener: TcpListener::bind(addr)?,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn accept(&self) -> io::Result<Connection> {
        let (stream, peer) = self.listener.accept()?;
        // Replies go out in batches already; don't let Nagle hold the last one back.
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: Box::new(stream.try_clone()?),
            writer: Box::new(stream),
            peer: format!("tcp:{peer}"),
            cred: PeerCred::Tcp,
        })
    }
}
