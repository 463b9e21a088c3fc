//! Writing a connection's socket without blocking ([`PollWrite`]), so that a write that
//! would wait for a client that is not reading is known before it waits
//! (`ninep_server::wait::PollingWriter`). As for reads (`read_now`), the socket stays
//! blocking: the one call asks not to wait (`MSG_DONTWAIT`).

use std::io::{self, IoSlice};

use crate::ninep_server::PollWrite;

/// `sendmsg(fd, bufs, MSG_DONTWAIT | MSG_NOSIGNAL)`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn sendmsg_dontwait(fd: std::os::fd::RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid: no name, no control data, no flags.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is ABI-compatible with `iovec` on unix (std documents it); the kernel
    // only reads through it, and takes at most IOV_MAX of them.
    msg.msg_iov = bufs.as_ptr().cast_mut().cast::<libc::iovec>();
    msg.msg_iovlen = bufs.len().min(1024) as _;
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // SAFETY: `fd` is a socket the caller borrows for the whole call; `msg` points at
    // `msg_iovlen` iovecs, each a readable buffer borrowed from `bufs` for the call; no
    // name or control buffer is given.
    let n = unsafe { libc::sendmsg(fd, &msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // `n` is at most the buffers' total length, so it fits.
    Ok(n as usize)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl PollWrite for std::os::unix::net::UnixStream {
    fn write_now_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        sendmsg_dontwait(self.as_raw_fd(), bufs)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl PollWrite for std::net::TcpStream {
    fn write_now_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        sendmsg_dontwait(self.as_raw_fd(), bufs)
    }
}

/// Elsewhere sockets are only written blocking.
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
impl PollWrite for std::os::unix::net::UnixStream {
    fn write_now_vectored(&mut self, _bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
impl PollWrite for std::net::TcpStream {
    fn write_now_vectored(&mut self, _bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Standard output may be shared with other processes: only written blocking.
impl PollWrite for std::io::Stdout {
    fn write_now_vectored(&mut self, _bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_full_unix_socket_refuses_a_write_now_and_takes_it_once_read() {
        let (mut server, mut client) = UnixStream::pair().unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0;
        // Fill the socket until it takes nothing more.
        let e = loop {
            match server.write_now_vectored(&[IoSlice::new(&chunk)]) {
                Ok(n) => sent += n,
                Err(e) => break e,
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(sent > 0);
        let mut got = vec![0u8; sent];
        client.read_exact(&mut got).unwrap();
        assert!(got.iter().all(|&b| b == 7));
        let two = [IoSlice::new(b"ab"), IoSlice::new(b"cd")];
        assert_eq!(server.write_now_vectored(&two).unwrap(), 4);
        let mut four = [0u8; 4];
        client.read_exact(&mut four).unwrap();
        assert_eq!(&four, b"abcd");
        // A closed peer is an error, not a signal.
        drop(client);
        let e = server.write_now_vectored(&two).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
