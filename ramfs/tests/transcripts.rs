//! Byte-for-byte 9P transcripts against `ramfs --stdio`.
//!
//! Each `tests/transcripts/*.txt` is a conversation in the text form of
//! [`fcall_text`]: `>` lines are sent, `<` lines are the replies expected next, compared
//! byte for byte with their encoding. The server runs as
//! `ramfs --stdio --epoch 1000000000 --owner test` plus any `!args` of the transcript.
//! After the last line the harness closes the server's stdin and requires that no
//! further reply comes and that the server exits (with status 0 unless the transcript
//! expected the server to close the connection).
//!
//! `RAMFS_TRANSCRIPT=substring` runs only the matching files;
//! `RAMFS_TRANSCRIPT_SHOW=1` prints every reply in transcript syntax as it arrives;
//! `RAMFS_TRANSCRIPT_KEEP_GOING=1` reports every differing reply of a transcript, not
//! just the first (later replies may differ only because an earlier one did);
//! `RAMFS_TRANSCRIPT_DIR=path` reads transcripts from another directory and
//! `RAMFS_TRANSCRIPT_SERVER='shell command'` talks to another stdio server (e.g. diod
//! with `-r 0 -w 1`): both are for debugging the harness itself.

mod common;
mod fcall_text;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fcall_text::format::format_fcall;
use fcall_text::linux_errors::linux_knows;
use fcall_text::parse::{parse_line, Line};
use ninep::{decode, encode, Dialect, Fcall, Msg};

/// How long one reply may take before the transcript fails. Generous: the machine is
/// shared, and this bounds a hung server, it does not measure one.
const REPLY_LIMIT: Duration = Duration::from_secs(15);
/// Largest reply the reader accepts (ramfs's msize is at most 1 MiB).
const MAX_REPLY: u32 = 2 << 20;

/// What the server's stdout produced next.
enum Reply {
    Message(Vec<u8>),
    Eof,
    Broken(String),
}

/// One running `ramfs --stdio`.
struct Server {
    child: common::Reaped,
    stdin: Option<ChildStdin>,
    replies: Receiver<Reply>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Server {
    fn start(extra_args: &[String]) -> Server {
        let mut cmd = match std::env::var("RAMFS_TRANSCRIPT_SERVER") {
            Ok(shell) => {
                let mut c = Command::new("sh");
                c.args(["-c", &shell]);
                c
            }
            Err(_) => {
                let mut c = Command::new(common::ramfs_bin());
                c.args(["--stdio", "--epoch", "1000000000", "--owner", "test"]);
                c.args(extra_args);
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the server: {e}"));
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || loop {
            let r = read_reply(&mut stdout);
            let end = !matches!(r, Reply::Message(_));
            if tx.send(r).is_err() || end {
                return;
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Server {
            child: common::Reaped(child),
            stdin,
            replies,
            stderr,
        }
    }

    /// Writes bytes; a server that already closed its end is noticed by the next `<`.
    fn send(&mut self, bytes: &[u8]) {
        if let Some(w) = self.stdin.as_mut() {
            if w.write_all(bytes).and_then(|_| w.flush()).is_err() {
                self.stdin = None;
            }
        }
    }

    fn next_reply(&self) -> Option<Reply> {
        match self.replies.recv_timeout(REPLY_LIMIT) {
            Ok(r) => Some(r),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Reply::Eof),
        }
    }

    fn stderr_tail(&self) -> String {
        let all = self.stderr.lock().unwrap();
        let text = String::from_utf8_lossy(&all);
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(15);
        lines[from..]
            .iter()
            .map(|l| format!("    | {l}\n"))
            .collect()
    }
}

fn read_reply(r: &mut impl Read) -> Reply {
    let mut size = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut size[got..]) {
            Ok(0) if got == 0 => return Reply::Eof,
            Ok(0) => {
                return Reply::Broken(format!(
                    "stream ended inside a size field ({got} of 4 bytes)"
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Reply::Broken(format!("reading: {e}")),
        }
    }
    let n = u32::from_le_bytes(size);
    if !(7..=MAX_REPLY).contains(&n) {
        return Reply::Broken(format!("reply size field {n} is impossible"));
    }
    let mut msg = size.to_vec();
    msg.resize(n as usize, 0);
    match r.read_exact(&mut msg[4..]) {
        Ok(()) => Reply::Message(msg),
        Err(e) => Reply::Broken(format!("reply of {n} bytes cut short: {e}")),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn describe(bytes: &[u8], dialect: Dialect) -> String {
    match decode(bytes, dialect) {
        Ok(fc) => format!("< {}", format_fcall(&fc)),
        Err(e) => format!("(undecodable: {e})"),
    }
}

/// How to run transcripts (from the environment).
struct Options {
    /// Print every reply.
    show: bool,
    /// Report every differing reply instead of stopping at the first.
    keep_going: bool,
}

/// A transcript that did not go as written.
struct Failure {
    line: usize,
    what: String,
}

/// Runs one transcript file; `Err` holds the first divergence.
fn run_transcript(path: &Path, opts: &Options) -> Result<(), Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure {
        line: 0,
        what: format!("cannot read: {e}"),
    })?;
    let mut lines = Vec::new();
    let mut args = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        match parse_line(raw) {
            Ok(None) => {}
            Ok(Some(Line::Args(a))) if lines.is_empty() => args.extend(a),
            Ok(Some(Line::Args(_))) => {
                return Err(Failure {
                    line: i + 1,
                    what: "!args must come before the first message".into(),
                })
            }
            Ok(Some(Line::Expect(Fcall {
                msg: Msg::Rerror { ename },
                ..
            }))) if !linux_knows(&ename) => {
                return Err(Failure {
                    line: i + 1,
                    what: format!("{ename:?} is not an error string Linux's 9P client knows"),
                })
            }
            Ok(Some(l)) => lines.push((i + 1, raw.trim().to_owned(), l)),
            Err(e) => {
                return Err(Failure {
                    line: i + 1,
                    what: format!("bad line: {e}"),
                })
            }
        }
    }
    let mut server = Server::start(&args);
    let mut dialect = Dialect::P2000;
    let mut expected_close = false;
    let mut first_difference = None;
    let fail = |server: &Server, line: usize, what: String| Failure {
        line,
        what: format!("{what}\n  server stderr (tail):\n{}", server.stderr_tail()),
    };
    for (lineno, raw, line) in &lines {
        match line {
            Line::Args(_) => unreachable!("sorted out above"),
            Line::Send(fc) => {
                if let Msg::Tversion { version, .. } = &fc.msg {
                    dialect = if version == ninep::VERSION_9P2000L {
                        Dialect::L
                    } else {
                        Dialect::P2000
                    };
                }
                let mut out = Vec::new();
                encode(fc, &mut out).map_err(|e| Failure {
                    line: *lineno,
                    what: format!("cannot encode: {e}"),
                })?;
                server.send(&out);
            }
            Line::SendRaw(bytes) => server.send(bytes),
            Line::Expect(fc) => {
                let mut want = Vec::new();
                encode(fc, &mut want).map_err(|e| Failure {
                    line: *lineno,
                    what: format!("cannot encode the expected reply: {e}"),
                })?;
                match server.next_reply() {
                    Some(Reply::Message(got)) => {
                        if opts.show {
                            eprintln!("    {}", describe(&got, dialect));
                        }
                        if got != want {
                            let what = format!(
                                "reply differs\n  expected: {raw}\n  got:      {}\n  expected hex: {}\n  got hex:      {}",
                                describe(&got, dialect),
                                hex(&want),
                                hex(&got)
                            );
                            if !opts.keep_going {
                                return Err(fail(&server, *lineno, what));
                            }
                            eprintln!("  line {lineno}: {what}");
                            first_difference.get_or_insert(*lineno);
                        }
                    }
                    Some(Reply::Eof) => {
                        return Err(fail(
                            &server,
                            *lineno,
                            format!("server closed the connection; expected: {raw}"),
                        ))
                    }
                    Some(Reply::Broken(why)) => {
                        return Err(fail(
                            &server,
                            *lineno,
                            format!("bad reply stream: {why}; expected: {raw}"),
                        ))
                    }
                    None => {
                        return Err(fail(
                            &server,
                            *lineno,
                            format!("no reply within {REPLY_LIMIT:?}; expected: {raw}"),
                        ))
                    }
                }
            }
            Line::ExpectEof => {
                expected_close = true;
                match server.next_reply() {
                    Some(Reply::Eof) => {}
                    Some(Reply::Message(got)) => {
                        return Err(fail(
                            &server,
                            *lineno,
                            format!(
                            "expected the server to close the connection, got: {}\n  got hex: {}",
                            describe(&got, dialect),
                            hex(&got)
                        ),
                        ))
                    }
                    Some(Reply::Broken(why)) => {
                        return Err(fail(
                            &server,
                            *lineno,
                            format!("expected a clean close, got: {why}"),
                        ))
                    }
                    None => {
                        return Err(fail(
                            &server,
                            *lineno,
                            format!("server did not close the connection within {REPLY_LIMIT:?}"),
                        ))
                    }
                }
            }
        }
    }
    let end = lines.last().map_or(0, |(n, _, _)| *n);
    // End of the transcript: the client goes away.
    server.stdin = None;
    if !expected_close {
        match server.next_reply() {
            Some(Reply::Eof) => {}
            Some(Reply::Message(got)) => {
                return Err(fail(
                    &server,
                    end,
                    format!(
                        "unexpected reply after the last line: {}",
                        describe(&got, dialect)
                    ),
                ))
            }
            Some(Reply::Broken(why)) => {
                return Err(fail(&server, end, format!("after the last line: {why}")))
            }
            None => {
                return Err(fail(
                    &server,
                    end,
                    "server kept its stdout open after its stdin closed".into(),
                ))
            }
        }
    }
    match common::wait_with_deadline(&mut server.child.0, REPLY_LIMIT) {
        None => Err(fail(
            &server,
            end,
            "server did not exit after its stdin closed".into(),
        )),
        Some(status) if !expected_close && !status.success() => Err(fail(
            &server,
            end,
            format!("server exited with {status} after stdin closed"),
        )),
        Some(_) => match first_difference {
            Some(line) => Err(Failure {
                line,
                what: "replies differ (listed above)".into(),
            }),
            None => Ok(()),
        },
    }
}

fn transcript_files() -> Vec<PathBuf> {
    let dir = match std::env::var_os("RAMFS_TRANSCRIPT_DIR") {
        Some(d) => PathBuf::from(d),
        None => common::crate_dir().join("tests/transcripts"),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
}

#[test]
fn transcripts() {
    let filter = std::env::var("RAMFS_TRANSCRIPT").unwrap_or_default();
    let opts = Options {
        show: std::env::var_os("RAMFS_TRANSCRIPT_SHOW").is_some(),
        keep_going: std::env::var_os("RAMFS_TRANSCRIPT_KEEP_GOING").is_some(),
    };
    let files = transcript_files();
    assert!(!files.is_empty(), "no transcripts found");
    let mut failures = Vec::new();
    let mut ran = 0;
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.contains(&filter) {
            continue;
        }
        ran += 1;
        if opts.show || opts.keep_going {
            eprintln!("== {name}");
        }
        match run_transcript(&path, &opts) {
            Ok(()) => eprintln!("PASS {name}"),
            Err(f) => {
                eprintln!("FAIL {name}:{}: {}", f.line, f.what);
                failures.push(format!("{name}:{}", f.line));
            }
        }
    }
    assert!(ran > 0, "RAMFS_TRANSCRIPT={filter:?} matches no transcript");
    assert!(
        failures.is_empty(),
        "{} of {ran} transcripts failed: {}",
        failures.len(),
        failures.join(", ")
    );
}

/// The harness must notice a wrong reply; this checks it against a server answer that
/// no correct server gives.
#[test]
fn harness_rejects_a_wrong_reply() {
    let dir = common::ScratchDir::new("transcript-self-test");
    let path = dir.path().join("wrong.txt");
    std::fs::write(
        &path,
        "> Tversion tag=NOTAG msize=8192 version=9P2000\n< Rversion tag=NOTAG msize=8192 version=9P2000.wrong\n",
    )
    .unwrap();
    let opts = Options {
        show: false,
        keep_going: false,
    };
    let err = run_transcript(&path, &opts).expect_err("a wrong reply must fail");
    assert_eq!(err.line, 2);
    assert!(err.what.contains("reply differs"), "{}", err.what);
}
