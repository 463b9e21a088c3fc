//! Transports: where connections come from. A connection is a reader and a writer of
//! bytes; the 9P server does not care whether they are a unix socket, a TCP socket or
//! the process's standard input and output. Each connection carries what the transport
//! knows of its peer ([`PeerCred`]): unix sockets report the peer's uid.

mod peer;
mod read_now;
mod stdio;
mod tcp;
#[cfg(unix)]
mod unix;
mod write_now;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use crate::ninep_server::{PollRead, PollWrite};

#[cfg(unix)]
pub use peer::unix_peer_cred;
pub use peer::{PeerCred, UnixCred};
pub use stdio::stdio;

/// One client's byte streams.
pub struct Connection {
    /// Read through [`crate::ninep_server::Server::polling`], which may try it without
    /// blocking first.
    pub reader: Box<dyn PollRead + Send>,
    /// Written through [`crate::ninep_server::Server::polling_writer`], which tries it
    /// without blocking first.
    pub writer: Box<dyn PollWrite + Send>,
    /// The peer, for logs.
    pub peer: String,
    /// Who the peer is, as far as the transport can tell.
    pub cred: PeerCred,
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

impl ListenAddr {
    /// True for an address only this machine can reach: a unix socket, or TCP on a
    /// loopback address (127.0.0.0/8, ::1, or ::ffff:127.x.y.z). The unspecified
    /// addresses 0.0.0.0 and :: listen on every interface, so they are not.
    pub fn is_local(&self) -> bool {
        match self {
            ListenAddr::Unix(_) => true,
            ListenAddr::Tcp(SocketAddr::V4(a)) => a.ip().is_loopback(),
            ListenAddr::Tcp(SocketAddr::V6(a)) => {
                a.ip().is_loopback() || a.ip().to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
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

    #[test]
    fn local_addresses() {
        for local in [
            "unix:/tmp/r.sock",
            "tcp:127.0.0.1:564",
            "tcp:127.1.2.3:0",
            "tcp:[::1]:564",
            "tcp:[::ffff:127.0.0.1]:564",
        ] {
            assert!(local.parse::<ListenAddr>().unwrap().is_local(), "{local}");
        }
        for remote in [
            "tcp:0.0.0.0:564",
            "tcp:[::]:564",
            "tcp:10.0.0.1:564",
            "tcp:192.168.1.2:564",
            "tcp:[fe80::1]:564",
            "tcp:[::ffff:10.0.0.1]:564",
        ] {
            assert!(
                !remote.parse::<ListenAddr>().unwrap().is_local(),
                "{remote}"
            );
        }
    }

    /// The uid of this process, read without unsafe code: the owner of a file it made.
    #[cfg(unix)]
    fn my_uid_gid(dir: &std::path::Path) -> (u32, u32) {
        use std::os::unix::fs::MetadataExt;
        let probe = dir.join("probe");
        std::fs::write(&probe, b"").unwrap();
        let m = std::fs::metadata(&probe).unwrap();
        (m.uid(), m.gid())
    }

    /// A real connection reports the connecting process's credentials.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn unix_connection_carries_the_peers_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let (uid, gid) = my_uid_gid(dir.path());
        let path = dir.path().join("r.sock");
        let l = Listener::bind(&ListenAddr::Unix(path.clone())).unwrap();
        let _client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let c = l.accept().unwrap();
        assert_eq!(
            c.cred,
            PeerCred::Unix(UnixCred {
                uid,
                gid,
                pid: std::process::id() as i32,
            })
        );
    }

    /// As root, a client process running as another uid (nobody, 65534) is seen as that
    /// uid, not ours: the credentials are the peer's. Skipped when not root (nothing else
    /// can start a process as another user) and without python3 outside CI.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn unix_connection_from_another_uid_reports_that_uid() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        if my_uid_gid(dir.path()).0 != 0 {
            eprintln!("SKIPPED: needs root to run a client as another uid");
            return;
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("r.sock");
        let l = Listener::bind(&ListenAddr::Unix(path.clone())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let child = std::process::Command::new("python3")
            .args([
                "-c",
                "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])",
            ])
            .arg(&path)
            .current_dir("/")
            .uid(65534)
            .gid(65534)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("SKIPPED: cannot run python3: {e}");
                return;
            }
            Err(e) => panic!("CI is set but python3 cannot run: {e}"),
        };
        let pid = child.id() as i32;
        // The client connects and exits; its connection waits in the backlog, with the
        // credentials the kernel recorded at connect (so a failed client cannot leave
        // the accept waiting).
        let status = child.wait().unwrap();
        assert!(status.success(), "client: {status}");
        let cred = l.accept().unwrap().cred;
        assert_eq!(
            cred,
            PeerCred::Unix(UnixCred {
                uid: 65534,
                gid: 65534,
                pid,
            })
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
