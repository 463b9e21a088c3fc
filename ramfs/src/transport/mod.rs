//! Transports: where connections come from. A connection is a reader and a writer of
//! bytes; the 9P server does not care whether they are a unix socket, a TCP socket or
//! the process's standard input and output.

mod stdio;
mod tcp;
#[cfg(unix)]
mod unix;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

pub use stdio::stdio;

/// One client's byte streams.
pub struct Connection {
    pub reader: Box<dyn Read + Send>,
    pub writer: Box<dyn Write + Send>,
    /// The peer, for logs.
    pub peer: String,
}

/// An address to listen on: `unix:PATH` or `tcp:HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A unix-domain stream socket at this path.
    Unix(PathBuf),
    /// A TCP socket; port 0 picks a free port (the log says which).
    Tcp(SocketAddr),
}

/// Why a listen address could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("expected unix:PATH or tcp:HOST:PORT")]
    Scheme,
    #[error("unix socket path is empty")]
    EmptyPath,
    #[error("bad TCP address {0:?} (expected e.g. tcp:127.0.0.1:5640)")]
    Tcp(String),
}

impl FromStr for ListenAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, AddrError> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(AddrError::EmptyPath);
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = s.strip_prefix("tcp:") {
            return addr
                .parse()
                .map(ListenAddr::Tcp)
                .map_err(|_| AddrError::Tcp(addr.to_owned()));
        }
        Err(AddrError::Scheme)
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            ListenAddr::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// A bound listening socket.
pub enum Listener {
    #[cfg(unix)]
    Unix(unix::UnixSocketListener),
    Tcp(tcp::TcpSocketListener),
}

impl Listener {
    /// Binds `addr`. A unix socket file left behind by a server that is gone is
    /// replaced; one that still answers is not.
    pub fn bind(addr: &ListenAddr) -> io::Result<Listener> {
        match addr {
            #[cfg(unix)]
            ListenAddr::Unix(path) => Ok(Listener::Unix(unix::UnixSocketListener::bind(path)?)),
            #[cfg(not(unix))]
            ListenAddr::Unix(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "unix sockets are not available on this system",
            )),
            ListenAddr::Tcp(a) => Ok(Listener::Tcp(tcp::TcpSocketListener::bind(*a)?)),
        }
    }

    /// The address actually bound (with the real port for `tcp:…:0`).
    pub fn local_addr(&self) -> io::Result<ListenAddr> {
        match self {
            #[cfg(unix)]
            Listener::Unix(l) => Ok(ListenAddr::Unix(l.path().to_owned())),
            Listener::Tcp(l) => l.local_addr().map(ListenAddr::Tcp),
        }
    }

    /// Waits for the next client.
    pub fn accept(&self) -> io::Result<Connection> {
        match self {
            #[cfg(unix)]
            Listener::Unix(l) => l.accept(),
            Listener::Tcp(l) => l.accept(),
        }
    }

    /// What must be undone if the process exits without dropping the listener (a
    /// unix socket's file).
    pub fn cleanup_path(&self) -> Option<PathBuf> {
        match self {
            #[cfg(unix)]
            Listener::Unix(l) => Some(l.path().to_owned()),
            Listener::Tcp(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_addresses() {
        assert_eq!(
            "unix:/tmp/r.sock".parse(),
            Ok(ListenAddr::Unix("/tmp/r.sock".into()))
        );
        assert_eq!(
            "tcp:127.0.0.1:564".parse(),
            Ok(ListenAddr::Tcp("127.0.0.1:564".parse().unwrap()))
        );
        assert_eq!("unix:".parse::<ListenAddr>(), Err(AddrError::EmptyPath));
        assert!(matches!(
            "tcp:localhost".parse::<ListenAddr>(),
            Err(AddrError::Tcp(_))
        ));
        assert_eq!("/tmp/x".parse::<ListenAddr>(), Err(AddrError::Scheme));
        assert_eq!(
            ListenAddr::Unix("/a".into()).to_string(),
            "unix:/a".to_owned()
        );
    }

    #[cfg(unix)]
    #[test]
    fn unix_listener_replaces_a_stale_socket_and_removes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sock");
        // A socket file whose server is gone.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let l = Listener::bind(&ListenAddr::Unix(path.clone())).unwrap();
        // A live one is not replaced.
        assert!(Listener::bind(&ListenAddr::Unix(path.clone())).is_err());
        let client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let c = l.accept().unwrap();
        drop((client, c));
        drop(l);
        assert!(!path.exists());
    }

    #[test]
    fn tcp_listener_reports_its_port() {
        let l = Listener::bind(&"tcp:127.0.0.1:0".parse().unwrap()).unwrap();
        let ListenAddr::Tcp(a) = l.local_addr().unwrap() else {
            panic!("not tcp")
        };
        assert_ne!(a.port(), 0);
        let _client = std::net::TcpStream::connect(a).unwrap();
        let c = l.accept().unwrap();
        assert!(c.peer.starts_with("tcp:127.0.0.1:"));
    }
}
