//! Tests of `splice.rs` over real socket pairs: outputs with and without pages arrive
//! whole and in order through a socket that fills; what was sent by reference stays as
//! the read saw it for whoever refers to it, for good: after the client read it, after
//! the client spliced it into a pipe of its own and the file changed or went away and
//! its memory was reused, after the arena the headers went through was filled again,
//! and after the connection ended; a client that goes away is an error.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use super::*;
use crate::fs::FileData;
use crate::ninep_server::output::tests::{file, fill, push_file};

fn pair() -> (SplicingSocket, UnixStream) {
    let (ours, client) = UnixStream::pair().expect("socket pair");
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    (SplicingSocket::new(ours).expect("pipe"), client)
}

#[test]
fn outputs_with_and_without_pages_arrive_whole_and_in_order() {
    let (mut socket, mut client) = pair();
    let (f, _) = file(5);
    // 6 MiB of replies, far more than the socket holds, so the writer waits for a
    // client that reads only after a pause; then plain replies between them.
    let mut want = Vec::new();
    let total: usize = 3;
    let expected_len = {
        let mut probe = Output::default();
        fill(&mut probe, &f, 200).len() * total + 5 * total
    };
    let reading = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        let mut got = vec![0u8; expected_len];
        client.read_exact(&mut got).expect("every byte");
        (got, client)
    });
    let mut waits = 0;
    // One output for all, as the connection loop has: sent by reference, emptied, and
    // filled again while the client has not read what it sent.
    let mut out = Output::default();
    for i in 0..total {
        want.extend(fill(&mut out, &f, 200));
        assert!(out.holds_pages());
        socket
            .send_output(&mut out, || waits += 1)
            .expect("spliced");
        assert!(out.is_empty());
        let mut plain = Output::default();
        plain.bytes.extend_from_slice(&[i as u8; 5]);
        want.extend_from_slice(&[i as u8; 5]);
        socket.send_output(&mut plain, || ()).expect("copied");
    }
    let (got, _client) = reading.join().expect("reader");
    assert_eq!(got.len(), want.len());
    assert!(got == want, "every byte in order");
    assert!(
        waits > 0,
        "the socket filled and the writer waited for the client"
    );
}

/// An output of all of `f`'s pages after a header of `header` bytes `mark`.
fn output_of(f: &FileData, header: usize, mark: u8) -> (Output, Vec<u8>) {
    let mut out = Output::default();
    let want = refill(&mut out, f, header, mark);
    (out, want)
}

/// Fills the empty `out` as [`output_of`] makes one; returns the bytes it sends.
fn refill(out: &mut Output, f: &FileData, header: usize, mark: u8) -> Vec<u8> {
    assert!(out.is_empty());
    out.bytes.extend(std::iter::repeat_n(mark, header));
    let mut want = out.bytes.clone();
    push_file(out, f, &mut want);
    assert!(out.holds_pages());
    want
}

/// Moves `len` bytes from `client` into a pipe of its own without reading them (as
/// Go's `io.Copy` from a unix socket does): the pipe takes references to the pages the
/// socket's buffers refer to, and the socket counts them read. Returns the pipe's read
/// end.
fn splice_into_a_pipe(client: &UnixStream, len: usize) -> OwnedFd {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two descriptors, as pipe2 expects.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 succeeded: two open descriptors that nothing else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: F_SETPIPE_SZ on our pipe with an integer argument.
    unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    let mut moved = 0;
    while moved < len {
        // SAFETY: both descriptors are open; no offsets (a socket and a pipe have none).
        let n = unsafe {
            libc::splice(
                client.as_raw_fd(),
                std::ptr::null_mut(),
                write.as_raw_fd(),
                std::ptr::null_mut(),
                len - moved,
                0,
            )
        };
        assert!(n > 0, "splice: {}", io::Error::last_os_error());
        moved += n as usize;
    }
    let mut unread: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at `unread`.
    assert_eq!(
        unsafe { libc::ioctl(client.as_raw_fd(), libc::FIONREAD, &mut unread) },
        0
    );
    assert_eq!(unread, 0, "the socket counts the spliced bytes read");
    read
}

/// A file of `pages` pages sent by reference after a header of 11 bytes `mark`, and
/// spliced by the client into a pipe of its own; returns the file, its bytes, the
/// bytes sent, and the pipe's read end. The connection is over.
fn sent_and_spliced_by_the_client(pages: usize, mark: u8) -> (FileData, Vec<u8>, Vec<u8>, OwnedFd) {
    let (mut socket, client) = pair();
    let (f, old) = file(pages);
    let (mut out, want) = output_of(&f, 11, mark);
    socket.send_output(&mut out, || ()).expect("sent");
    let pipe = splice_into_a_pipe(&client, want.len());
    (f, old, want, pipe)
}

/// Reads `len` bytes from the pipe `read`.
fn read_pipe(read: OwnedFd, len: usize) -> Vec<u8> {
    let mut got = vec![0u8; len];
    std::fs::File::from(read)
        .read_exact(&mut got)
        .expect("the pipe's bytes");
    got
}

#[test]
fn a_run_sent_by_reference_is_never_written_again_even_after_the_client_read_it() {
    let (mut socket, mut client) = pair();
    let (mut f, old) = file(4);
    let (mut out, want) = output_of(&f, 11, 1);
    socket.send_output(&mut out, || ()).expect("sent");
    let mut got = vec![0u8; want.len()];
    client.read_exact(&mut got).expect("read");
    assert!(got == want);
    // Read, and still: someone may refer to those physical pages (next test).
    f.write(0, &vec![0xee; old.len()]);
    assert_eq!(f.replaced_while_held(), 4, "each exported run was copied");
    // The copy is the file's own: written in place.
    f.write(0, &vec![0xef; old.len()]);
    assert_eq!(f.replaced_while_held(), 4, "the copies are not exported");
}

#[test]
fn a_client_that_splices_its_socket_into_a_pipe_keeps_what_the_read_saw_after_a_write() {
    let (mut f, old, want, pipe) = sent_and_spliced_by_the_client(4, 2);
    f.write(0, &vec![0xee; old.len()]);
    assert!(
        read_pipe(pipe, want.len()) == want,
        "the bytes the Rread saw"
    );
}

#[test]
fn a_client_that_splices_its_socket_into_a_pipe_sees_no_other_files_data() {
    let (f, _, want, pipe) = sent_and_spliced_by_the_client(4, 3);
    // The file goes: its memory goes back to the allocator, which hands it out again
    // for other files' pages, written page by page.
    drop(f);
    let others: Vec<FileData> = (0..64)
        .map(|_| {
            let mut other = FileData::default();
            (0..4).for_each(|page| other.write(page * 4096, &[0x5a; 4096]));
            other
        })
        .collect();
    let got = read_pipe(pipe, want.len());
    assert!(
        got == want,
        "the bytes the Rread saw, none of the other files'"
    );
    drop(others);
}

#[test]
fn headers_spliced_into_a_client_pipe_survive_the_arena_being_filled_again() {
    let (mut socket, mut client) = pair();
    let (f, _) = file(1);
    let (mut out, want) = output_of(&f, 64, 0xa1);
    socket.send_output(&mut out, || ()).expect("sent");
    let pipe = splice_into_a_pipe(&client, want.len());
    // Outputs with 64 KiB of bytes each, read as they come: the arena is filled
    // several times over.
    let reading = thread::spawn(move || {
        let mut sink = vec![0u8; 1 << 16];
        let mut total = 0usize;
        while total < 8 * ((1 << 16) + 4096) {
            total += client.read(&mut sink).expect("read");
        }
        client
    });
    // The same output again, as the connection loop reuses its own: its buffer is
    // written over.
    for mark in 0..8u8 {
        refill(&mut out, &f, 1 << 16, mark);
        socket.send_output(&mut out, || ()).expect("sent");
    }
    let _client = reading.join().expect("reader");
    let got = read_pipe(pipe, want.len());
    assert!(got[..64] == want[..64], "the header as it was sent");
    assert!(got == want);
}

#[test]
fn a_connection_that_ends_before_its_client_read_keeps_nothing_and_the_bytes_stay() {
    let (mut socket, mut client) = pair();
    let (mut f, old) = file(4);
    let (mut out, want) = output_of(&f, 11, 4);
    socket.send_output(&mut out, || ()).expect("sent");
    drop(socket);
    f.write(0, &vec![0xee; old.len()]);
    let mut got = Vec::new();
    client.read_to_end(&mut got).expect("read, then the end");
    assert!(got == want, "the bytes the Rread saw, then the end");
}

#[test]
fn a_client_that_goes_away_is_an_error_and_the_pipe_is_empty() {
    let (mut socket, client) = pair();
    let (f, _) = file(3);
    let mut out = Output::default();
    fill(&mut out, &f, 2);
    socket.send_output(&mut out, || ()).expect("sent");
    drop(client);
    let mut out = Output::default();
    fill(&mut out, &f, 1);
    let e = socket.send_output(&mut out, || ()).expect_err("gone");
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    assert!(out.is_empty());
    assert_eq!(socket.in_pipe, 0);
}

#[test]
fn a_page_a_received_write_replaced_is_fresh_before_it_receives_again() {
    let (mut f, _, want, pipe) = sent_and_spliced_by_the_client(2, 5);
    // A Twrite received into page buffers takes the pages' places; the pages it
    // replaced become buffers for the next Twrite, which another client's data fills.
    let received = || {
        let mut page = crate::fs::PageBuf::new();
        page.bytes_mut().fill(0x33);
        page
    };
    let data = crate::fs::Gathered {
        head: &[],
        pages: vec![received(), received()],
        tail: &[],
    };
    let mut spare = Vec::new();
    f.write_gathered(0, data, &mut spare);
    assert_eq!(spare.len(), 2, "the replaced pages came back as buffers");
    for page in &mut spare {
        assert!(
            page.bytes().iter().all(|&b| b == 0),
            "dropped from our mapping"
        );
        page.bytes_mut().fill(0x77);
    }
    assert!(
        read_pipe(pipe, want.len()) == want,
        "the bytes the Rread saw"
    );
}

#[test]
fn an_exported_run_is_copied_by_writes_within_a_page_and_by_truncation() {
    let (mut f, _, want, pipe) = sent_and_spliced_by_the_client(3, 6);
    f.write(10, b"xx");
    f.write(4096 + 100, &[0xee; 200]);
    f.truncate(2 * 4096 + 7).expect("not lent");
    assert!(
        read_pipe(pipe, want.len()) == want,
        "the bytes the Rread saw"
    );
}

#[test]
fn bytes_sent_by_reference_are_the_callers_as_they_were_when_sent() {
    static DATA: [u8; 4096] = [0x42; 4096];
    let (mut socket, client) = pair();
    let mut headers = vec![0x11u8; 40];
    socket
        .send_by_reference(&headers, &[(20, &DATA[..])])
        .expect("sent");
    let mut want = vec![0x11u8; 20];
    want.extend_from_slice(&DATA);
    want.extend_from_slice(&[0x11; 20]);
    let pipe = splice_into_a_pipe(&client, want.len());
    // The caller reuses its buffer at once, as the raw server does.
    headers.fill(0x99);
    assert!(
        read_pipe(pipe, want.len()) == want,
        "the bytes as they were sent"
    );
}

#[test]
fn a_heap_on_huge_pages_is_told_by_its_variables() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(huge_page_heap(env(&[])), None);
    assert_eq!(
        huge_page_heap(env(&[("MIMALLOC_ALLOW_LARGE_OS_PAGES", "0")])),
        None
    );
    assert_eq!(
        huge_page_heap(env(&[("MIMALLOC_ALLOW_LARGE_OS_PAGES", "1")])),
        Some("MIMALLOC_ALLOW_LARGE_OS_PAGES")
    );
    assert_eq!(
        huge_page_heap(env(&[("MIMALLOC_RESERVE_HUGE_OS_PAGES", "4")])),
        Some("MIMALLOC_RESERVE_HUGE_OS_PAGES")
    );
    assert_eq!(
        huge_page_heap(env(&[("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")])),
        None,
        "transparent huge pages are split by the kernel"
    );
    assert_eq!(
        huge_page_heap(env(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2"
        )])),
        Some("GLIBC_TUNABLES")
    );
}
