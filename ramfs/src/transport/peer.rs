//! What a transport knows of who is on the other end of a connection.
//!
//! Only a unix socket can say: the kernel records the credentials of the process that
//! called `connect` (Linux's `SO_PEERCRED`), and no client can forge them. Standard
//! input and output belong to the process that started ramfs; a TCP peer is an address
//! and nothing more. What the 9P server makes of this is
//! [`crate::ninep_server::AttachRule`].

use std::fmt;

/// The kernel's record of a unix-socket peer, taken when it connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnixCred {
    /// Effective user id, in ramfs's user namespace (a peer in another namespace whose
    /// uid has no mapping here shows as the overflow uid, 65534).
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// Process id at connect time (for logs: a pid can be reused).
    pub pid: i32,
}

/// Who is on the other end of a connection, as far as the transport can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerCred {
    /// Standard input and output: the process that started ramfs.
    Parent,
    /// A unix-socket peer with the credentials the kernel reported.
    Unix(UnixCred),
    /// A unix-socket peer whose credentials could not be read (an error, or a system
    /// without `SO_PEERCRED`).
    UnixUnknown,
    /// A TCP peer: nothing is known of who it is.
    Tcp,
}

impl fmt::Display for PeerCred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerCred::Parent => f.write_str("the parent process"),
            PeerCred::Unix(c) => write!(f, "uid {} gid {} pid {}", c.uid, c.gid, c.pid),
            PeerCred::UnixUnknown => f.write_str("unknown credentials"),
            PeerCred::Tcp => f.write_str("no credentials (TCP)"),
        }
    }
}

/// The credentials of the peer of a connected unix stream socket.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn unix_peer_cred(stream: &std::os::unix::net::UnixStream) -> std::io::Result<UnixCred> {
    use std::os::fd::AsRawFd;
    let mut ucred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the descriptor is the stream's and open for the whole call (we borrow the
    // stream); `ucred` is a valid, writable `struct ucred` and `len` holds its exact
    // size, so the kernel writes at most that many bytes into it.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut ucred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<libc::ucred>() {
        return Err(std::io::Error::other("SO_PEERCRED returned a short record"));
    }
    Ok(UnixCred {
        uid: ucred.uid,
        gid: ucred.gid,
        pid: ucred.pid,
    })
}

/// Without `SO_PEERCRED` the peer's credentials are unknown.
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
pub fn unix_peer_cred(_stream: &std::os::unix::net::UnixStream) -> std::io::Result<UnixCred> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "peer credentials of unix sockets are not available on this system",
    ))
}
