//! Server addresses (`unix:PATH`, `tcp:HOST:PORT`) and the byte stream to one.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Where a 9P server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// A unix domain socket at this path.
    Unix(PathBuf),
    /// A TCP `host:port`.
    Tcp(String),
}

/// Why an address string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("address must be unix:PATH or tcp:HOST:PORT, not {0:?}")]
pub struct BadAddr(pub String);

impl FromStr for Addr {
    type Err = BadAddr;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("unix", path)) if !path.is_empty() => Ok(Addr::Unix(path.into())),
            Some(("tcp", hostport)) if hostport.rsplit_once(':').is_some() => {
                Ok(Addr::Tcp(hostport.to_owned()))
            }
            _ => Err(BadAddr(s.to_owned())),
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Unix(path) => write!(f, "unix:{}", path.display()),
            Addr::Tcp(hostport) => write!(f, "tcp:{hostport}"),
        }
    }
}

/// A connected byte stream to a server.
#[derive(Debug)]
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Connects to `addr`. `stall` bounds every later read: a server that stops
    /// answering makes the read fail instead of hanging the benchmark.
    pub fn connect(addr: &Addr, stall: Duration) -> io::Result<Stream> {
        let stream = match addr {
            Addr::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
            Addr::Tcp(hostport) => {
                let s = TcpStream::connect(hostport.as_str())?;
                // Small requests must leave at once, not wait for Nagle's algorithm.
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
        };
        match &stream {
            Stream::Unix(s) => s.set_read_timeout(Some(stall))?,
            Stream::Tcp(s) => s.set_read_timeout(Some(stall))?,
        }
        Ok(stream)
    }

    /// A second handle to the same connection (one reads, one writes).
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write_vectored(bufs),
            Stream::Tcp(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_and_prints_them_back() {
        for s in ["unix:/tmp/a.sock", "tcp:127.0.0.1:564", "tcp:[::1]:564"] {
            let addr: Addr = s.parse().unwrap();
            assert_eq!(addr.to_string(), s);
        }
        assert_eq!(
            "unix:/x".parse::<Addr>().unwrap(),
            Addr::Unix(PathBuf::from("/x"))
        );
    }

    #[test]
    fn refuses_other_forms() {
        for s in ["", "unix:", "tcp:localhost", "/tmp/a.sock", "udp:1.2.3.4:5"] {
            assert_eq!(s.parse::<Addr>(), Err(BadAddr(s.to_owned())), "{s}");
        }
    }
}
