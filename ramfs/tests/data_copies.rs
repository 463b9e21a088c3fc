//! The server's data path makes no buffer of its own for file data: once a connection
//! is warm (its input and output buffers grown, the file's pages there), a run of Twrites
//! and Treads of 64 KiB each through the real connection loop (`Server::serve`)
//! allocates nothing, in both dialects. A Twrite decoded into a `Vec`, or a read copied
//! into a `Vec` before the reply, allocates the data's size every time.
//!
//! This runs in process, not against the binary, so that a counting allocator can see
//! the server's allocations. The counts are this thread's only: the server runs on the
//! test's thread, and parallel tests do not disturb each other.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Arc;

use ninep::{decode, encode, lflags, om, Dialect, Fcall, Msg, NOFID, NOTAG};
use ramfs::fs::{Clock, Config, Fs};
use ramfs::ninep_server::{ConnectionEnd, Server, ServerConfig};

struct Counting;

thread_local! {
    static REQUESTED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the counter is a
// const-initialised thread-local, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        REQUESTED.with(|r| r.set(r.get().saturating_add(layout.size())));
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REQUESTED.with(|r| r.set(r.get().saturating_add(new_size)));
        // SAFETY: the caller upholds `realloc`'s contract, which we pass on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Bytes of file data in each Twrite and Tread.
const DATA: usize = 64 * 1024;
/// Twrites (then Treads) measured.
const ROUNDS: usize = 16;

/// A client's byte stream, handed out message by message, with marks between them at
/// which the allocation counter is read (when the server asks for more bytes, it has
/// answered everything before the mark).
struct Script {
    /// Each message's bytes, or `None` for a mark.
    steps: Vec<Option<Vec<u8>>>,
    step: usize,
    /// Bytes of the current step already handed out.
    at: usize,
    marks: Rc<RefCell<Vec<usize>>>,
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.steps.get(self.step) {
                None => return Ok(0),
                Some(None) => {
                    let now = REQUESTED.with(Cell::get);
                    // The vector was made with room for every mark.
                    self.marks.borrow_mut().push(now);
                    self.step += 1;
                }
                Some(Some(bytes)) => {
                    let n = (bytes.len() - self.at).min(buf.len());
                    buf[..n].copy_from_slice(&bytes[self.at..self.at + n]);
                    self.at += n;
                    if self.at == bytes.len() {
                        self.step += 1;
                        self.at = 0;
                    }
                    return Ok(n);
                }
            }
        }
    }
}

/// The server's replies, kept in a buffer made big enough beforehand.
struct Replies(Rc<RefCell<Vec<u8>>>);

impl Write for Replies {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn bytes(tag: u16, msg: Msg) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    encode(&Fcall { tag, msg }, &mut out).expect("encode");
    Some(out)
}

/// The bytes of the file, different in each round so a stale read would show.
fn pattern(round: usize) -> Vec<u8> {
    (0..DATA).map(|i| (i * 7 + round) as u8).collect()
}

/// Opens a session of `dialect` and a new file as fid 0, writes and reads it once to
/// warm up, then `ROUNDS` Twrites, a mark, `ROUNDS` Treads, a mark. Returns the bytes
/// allocated by the writes and by the reads, and the replies.
fn run(dialect: Dialect) -> (usize, usize, Vec<Fcall>) {
    let fs = Arc::new(Fs::new(Config {
        memory_limit: 64 << 20,
        owner: "adm".into(),
        clock: Clock::Fixed(1_000_000),
    }));
    let server = Server::new(
        fs,
        ServerConfig {
            max_fids: 16,
            trace: false,
            ..ServerConfig::default()
        },
    );
    let version = dialect.version_str().to_owned();
    let mut steps = vec![bytes(
        NOTAG,
        Msg::Tversion {
            msize: 256 * 1024,
            version,
        },
    )];
    let (n_uname, create) = match dialect {
        Dialect::P2000 => (
            None,
            Msg::Tcreate {
                fid: 0,
                name: "f".into(),
                perm: 0o644,
                mode: om::RDWR,
            },
        ),
        Dialect::L => (
            Some(0),
            Msg::Tlcreate {
                fid: 0,
                name: "f".into(),
                flags: lflags::RDWR,
                mode: 0o644,
                gid: 0,
            },
        ),
    };
    steps.push(bytes(
        1,
        Msg::Tattach {
            fid: 0,
            afid: NOFID,
            uname: "u".into(),
            aname: String::new(),
            n_uname,
        },
    ));
    steps.push(bytes(2, create));
    let write = |round: usize| {
        bytes(
            3,
            Msg::Twrite {
                fid: 0,
                offset: 0,
                data: pattern(round),
            },
        )
    };
    let read = bytes(
        4,
        Msg::Tread {
            fid: 0,
            offset: 0,
            count: DATA as u32,
        },
    );
    // Warm up: the pages, the input buffer and the output buffer reach their size.
    steps.extend([write(0), read.clone(), write(0), read.clone(), None]);
    steps.extend((1..=ROUNDS).map(write));
    steps.push(None);
    steps.extend((0..ROUNDS).map(|_| read.clone()));
    steps.push(None);

    let marks = Rc::new(RefCell::new(Vec::with_capacity(8)));
    let output = Rc::new(RefCell::new(Vec::with_capacity(
        (ROUNDS + 4) * (DATA + 64) + 4096,
    )));
    let script = Script {
        steps,
        step: 0,
        at: 0,
        marks: marks.clone(),
    };
    let end = server.serve(script, Replies(output.clone()), "data_copies");
    assert!(matches!(end, ConnectionEnd::Eof), "{end:?}");
    let marks = marks.borrow();
    assert_eq!(marks.len(), 3, "every mark reached");

    let mut replies = Vec::new();
    let output = output.borrow();
    let mut rest = &output[..];
    while let Some(size) = ninep::peek_size(rest) {
        let (m, tail) = rest.split_at(size as usize);
        replies.push(decode(m, Dialect::L).expect("decode reply"));
        rest = tail;
    }
    (marks[1] - marks[0], marks[2] - marks[1], replies)
}

fn check(dialect: Dialect) {
    let (by_writes, by_reads, replies) = run(dialect);
    // Rversion, Rattach, R(l)create, then the warm-up's 4 and the measured replies.
    assert_eq!(replies.len(), 3 + 4 + 2 * ROUNDS, "{:?}", &replies[..3]);
    let (writes, reads) = replies[7..].split_at(ROUNDS);
    for r in writes {
        assert_eq!(r.msg, Msg::Rwrite { count: DATA as u32 });
    }
    for r in reads {
        assert_eq!(
            r.msg,
            Msg::Rread {
                data: pattern(ROUNDS)
            }
        );
    }
    // No buffer of the data's size was made for any of them: an intermediate copy of
    // each would allocate ROUNDS * DATA bytes. (Today both counts are 0; the bound leaves
    // room for small bookkeeping, never for a copy of the data.)
    assert!(
        by_writes < DATA,
        "{ROUNDS} Twrites of {DATA} bytes allocated {by_writes} bytes"
    );
    assert!(
        by_reads < DATA,
        "{ROUNDS} Treads of {DATA} bytes allocated {by_reads} bytes"
    );
}

#[test]
fn writes_and_reads_allocate_nothing_in_9p2000() {
    check(Dialect::P2000);
}

#[test]
fn writes_and_reads_allocate_nothing_in_9p2000_l() {
    check(Dialect::L);
}
