//! Reading a connection's socket without blocking ([`PollRead`]), for the server's short
//! spin before it sleeps (`ninep_server::wait`).
//!
//! The reader and the writer of a connection are clones of one socket, and so share its
//! file status flags: setting `O_NONBLOCK` on the reader would make the writer's writes
//! fail with `WouldBlock` too. So a read that must not block asks for that on the one
//! call (`recv` with `MSG_DONTWAIT`), and the socket stays blocking.

use std::io;

use crate::ninep_server::PollRead;

/// `recv(fd, buf, MSG_DONTWAIT)`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn recv_dontwait(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `fd` is the descriptor of a socket the caller borrows for the whole call,
    // and `buf` is a writable buffer of `buf.len()` bytes, the most the kernel writes.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // `n` is at most `buf.len()`, so it fits.
    Ok(n as usize)
}

/// `recvmsg(fd, bufs, MSG_DONTWAIT)`: [`recv_dontwait`] into several buffers in order.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn recvmsg_dontwait(
    fd: std::os::fd::RawFd,
    bufs: &mut [std::io::IoSliceMut<'_>],
) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid: no name, no control data, no flags.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSliceMut` is ABI-compatible with `iovec` on unix (std documents it), so the
    // slices are an iovec array; the kernel takes at most IOV_MAX of them.
    msg.msg_iov = bufs.as_mut_ptr().cast::<libc::iovec>();
    msg.msg_iovlen = bufs.len().min(1024) as _;
    // SAFETY: `fd` is a socket the caller borrows for the whole call; `msg` points at
    // `msg_iovlen` iovecs, each a writable buffer borrowed from `bufs` for the call,
    // which is all the kernel writes; no name or control buffer is given.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // `n` is at most the buffers' total length, so it fits.
    Ok(n as usize)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl PollRead for std::os::unix::net::UnixStream {
    fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        recv_dontwait(self.as_raw_fd(), buf)
    }

    fn read_now_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        recvmsg_dontwait(self.as_raw_fd(), bufs)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl PollRead for std::net::TcpStream {
    fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        recv_dontwait(self.as_raw_fd(), buf)
    }

    fn read_now_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        recvmsg_dontwait(self.as_raw_fd(), bufs)
    }
}

/// Elsewhere sockets are only read blocking.
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
impl PollRead for std::os::unix::net::UnixStream {
    fn read_now(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
impl PollRead for std::net::TcpStream {
    fn read_now(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Standard input may be a pipe, a file or a terminal shared with other processes:
/// it is only read blocking.
impl PollRead for std::io::Stdin {
    fn read_now(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_unix_socket_is_read_without_blocking_and_stays_blocking_for_writes() {
        let (mut server, mut client) = UnixStream::pair().unwrap();
        let mut buf = [0u8; 16];
        let e = server.read_now(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        client.write_all(b"hello").unwrap();
        assert_eq!(server.read_now(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        // The socket itself is still blocking: a clone used for writing is unaffected.
        assert!(!is_nonblocking(&server));
        drop(client);
        assert_eq!(server.read_now(&mut buf).unwrap(), 0, "end of file");
    }

    #[test]
    fn a_unix_socket_is_read_into_several_buffers_without_blocking() {
        use std::io::IoSliceMut;
        let (mut server, mut client) = UnixStream::pair().unwrap();
        let (mut a, mut b, mut c) = ([0u8; 3], [0u8; 4096], [0u8; 8]);
        {
            let mut bufs = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
            let e = server.read_now_vectored(&mut bufs).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        }
        let sent: Vec<u8> = (0..4100u32).map(|i| i as u8).collect();
        client.write_all(&sent).unwrap();
        let mut bufs = [
            IoSliceMut::new(&mut a),
            IoSliceMut::new(&mut b),
            IoSliceMut::new(&mut c),
        ];
        assert_eq!(server.read_now_vectored(&mut bufs).unwrap(), 4100);
        assert_eq!(a[..], sent[..3]);
        assert_eq!(b[..], sent[3..4099]);
        assert_eq!(c[..1], sent[4099..]);
        assert!(!is_nonblocking(&server));
    }

    #[test]
    fn a_tcp_socket_is_read_without_blocking() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let mut buf = [0u8; 16];
        let e = server.read_now(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        client.write_all(b"abc").unwrap();
        // Loopback TCP delivers before write returns; read blocking to be sure of it.
        let mut got = 0;
        while got < 3 {
            got += io::Read::read(&mut server, &mut buf[got..]).unwrap();
        }
        assert_eq!(&buf[..3], b"abc");
        drop(client);
        assert_eq!(
            io::Read::read(&mut server, &mut buf).unwrap(),
            0,
            "end of file"
        );
        assert_eq!(
            server.read_now(&mut buf).unwrap(),
            0,
            "still at end of file"
        );
    }

    fn is_nonblocking(s: &UnixStream) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: F_GETFL on a descriptor the stream owns and we borrow; no pointers.
        let flags = unsafe { libc::fcntl(s.as_raw_fd(), libc::F_GETFL) };
        assert!(flags >= 0);
        flags & libc::O_NONBLOCK != 0
    }
}
