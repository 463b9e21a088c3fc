//! Unix-domain stream sockets; the socket file is removed when the listener goes.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::{peer, Connection, PeerCred};
use crate::ninep_server::PollWrite;
#[cfg(target_os = "linux")]
use crate::ninep_server::SplicingSocket;

/// A bound unix socket and the file it made.
pub struct UnixSocketListener {
    listener: UnixListener,
    path: PathBuf,
}

impl UnixSocketListener {
    pub fn bind(path: &Path) -> io::Result<UnixSocketListener> {
        let listener = match UnixListener::bind(path) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && is_stale_socket(path) => {
                std::fs::remove_file(path)?;
                UnixListener::bind(path)?
            }
            Err(e) => return Err(e),
        };
        Ok(UnixSocketListener {
            listener,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn accept(&self) -> io::Result<Connection> {
        let (stream, _) = self.listener.accept()?;
        let cred = match peer::unix_peer_cred(&stream) {
            Ok(c) => PeerCred::Unix(c),
            Err(e) => {
                tracing::warn!(
                    "unix:{}: cannot read the peer's credentials: {e}",
                    self.path.display()
                );
                PeerCred::UnixUnknown
            }
        };
        let peer = match cred {
            PeerCred::Unix(c) => {
                format!("unix:{} pid {} uid {}", self.path.display(), c.pid, c.uid)
            }
            _ => format!("unix:{}", self.path.display()),
        };
        Ok(Connection {
            reader: Box::new(stream.try_clone()?),
            writer: writer(stream),
            peer,
            cred,
        })
    }
}

/// On Linux the stream with a pipe to send file pages by reference, else (or if no
/// pipe can be made) the stream as it is.
fn writer(stream: UnixStream) -> Box<dyn PollWrite + Send> {
    #[cfg(target_os = "linux")]
    {
        match stream.try_clone().and_then(SplicingSocket::new) {
            Ok(s) => return Box::new(s),
            Err(e) => tracing::warn!("replies are copied, not sent by reference: {e}"),
        }
    }
    Box::new(stream)
}

/// True if `path` is a socket nobody listens on.
fn is_stale_socket(path: &Path) -> bool {
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    is_socket && UnixStream::connect(path).is_err()
}

impl Drop for UnixSocketListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
