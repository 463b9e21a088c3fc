//! The order of replies: a Tflush answered after the reply it flushes, pipelined
//! requests answered in order, large pipelined reads written out as they go, Twrites
//! read into pages answered in their place (and refused past the largest file).

use super::*;
use crate::ninep_server::test_streams::Cuts;

#[test]
fn flush_is_answered_after_the_flushed_reply() {
    let s = server();
    let msgs = vec![
        Fcall {
            tag: NOTAG,
            msg: tversion("9P2000"),
        },
        Fcall {
            tag: 1,
            msg: tattach(0, "glenda", None),
        },
        Fcall {
            tag: 2,
            msg: Msg::Tstat { fid: 0 },
        },
        Fcall {
            tag: 3,
            msg: Msg::Tflush { oldtag: 2 },
        },
    ];
    let (r, _) = serve_bytes(&s, &bytes_of(&msgs));
    let tags: Vec<u16> = r.iter().map(|f| f.tag).collect();
    assert_eq!(tags, vec![NOTAG, 1, 2, 3]);
    assert!(matches!(r[2].msg, Msg::Rstat { .. }));
    assert_eq!(r[3].msg, Msg::Rflush);
}

#[cfg(unix)]
#[test]
fn pipelined_requests_are_all_answered_in_order() {
    let s = server();
    let mut c = Conn::open(&s, "9P2000");
    c.rpc(tattach(0, "glenda", None));
    let tags: Vec<u16> = (0..200).map(|_| c.send(Msg::Tstat { fid: 0 })).collect();
    for t in tags {
        let r = c.recv();
        assert_eq!(r.tag, t);
        assert!(matches!(r.msg, Msg::Rstat { .. }));
    }
    c.close();
}

/// Counts the bytes written to it, in how many writes.
struct CountingWriter {
    bytes: usize,
    largest_write: usize,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len();
        self.largest_write = self.largest_write.max(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// On the connection's thread and on two (a run's parallel path writes its replies
/// itself).
#[test]
fn pipelined_large_reads_are_written_out_as_they_go() {
    for data_threads in [1, 2] {
        pipelined_large_reads_are_written_out_as_they_go_on(data_threads);
    }
}

fn pipelined_large_reads_are_written_out_as_they_go_on(data_threads: usize) {
    let s = server_with_config(ServerConfig {
        max_fids: 100,
        trace: false,
        data_threads,
        ..ServerConfig::default()
    });
    let mut msgs = vec![
        Msg::Tversion {
            msize: 1 << 20,
            version: "9P2000".into(),
        },
        tattach(0, "glenda", None),
        twalk(0, 1, &[]),
        Msg::Tcreate {
            fid: 1,
            name: "big".into(),
            perm: 0o644,
            mode: om::RDWR,
        },
    ];
    let chunk = vec![7u8; (1 << 20) - 24];
    msgs.push(Msg::Twrite {
        fid: 1,
        offset: 0,
        data: chunk.clone(),
    });
    // Sixty reads of almost 1 MiB each, all in one batch of input.
    for _ in 0..60 {
        msgs.push(Msg::Tread {
            fid: 1,
            offset: 0,
            count: 1 << 20,
        });
    }
    let input = bytes_of(&tagged(msgs));
    let mut out = CountingWriter {
        bytes: 0,
        largest_write: 0,
    };
    let end = s.serve(&input[..], &mut out, "test");
    assert!(matches!(end, ConnectionEnd::Eof));
    assert!(out.bytes > 60 * chunk.len(), "every read answered");
    assert!(
        out.largest_write <= crate::ninep_server::OUTPUT_FLUSH_AT + (1 << 20),
        "{data_threads} data threads: replies buffered: {}",
        out.largest_write
    );
}

#[test]
fn a_twrite_read_into_pages_is_answered_in_its_place_and_before_its_flush() {
    let s = server();
    let (a, b) = (vec![1u8; 200 * 1024], vec![2u8; 100 * 1024]);
    let mut msgs = open_f_at_max_msize();
    let rest = [
        (10, Msg::Tstat { fid: 0 }),
        (
            11,
            Msg::Twrite {
                fid: 1,
                offset: 0,
                data: a.clone(),
            },
        ),
        (12, Msg::Tflush { oldtag: 11 }),
        (
            13,
            Msg::Twrite {
                fid: 1,
                offset: 5000,
                data: b.clone(),
            },
        ),
        (14, Msg::Tclunk { fid: 1 }),
    ];
    msgs.extend(rest.into_iter().map(|(tag, msg)| Fcall { tag, msg }));
    let reader = Cuts::fixed(bytes_of(&msgs), 5000);
    let mut output = Vec::new();
    let end = s.serve(reader, &mut output, "in pieces");
    assert!(matches!(end, ConnectionEnd::Eof), "{end:?}");
    let r = replies_of(&output);
    let tags: Vec<u16> = r.iter().map(|f| f.tag).collect();
    assert_eq!(tags, vec![NOTAG, 1, 2, 3, 10, 11, 12, 13, 14]);
    assert_eq!(r[5].msg, Msg::Rwrite { count: 200 * 1024 });
    assert_eq!(r[7].msg, Msg::Rwrite { count: 100 * 1024 });
    let mut t = s.fs().lock();
    let who = t.cred_for_uid(0, None);
    let root = t.root();
    let f = t.lookup(&who, root, "f").expect("f");
    let handle = t.file_handle(f).expect("a regular file");
    assert!(handle.pages_taken() > 0, "the data went into pages");
    let mut want = a;
    want[5000..5000 + b.len()].copy_from_slice(&b);
    let mut got = Vec::new();
    t.read_with(f, 0, want.len() + 1, |bytes| got.extend_from_slice(bytes))
        .expect("read");
    assert!(got == want);
}

#[test]
fn a_twrite_read_into_pages_past_the_largest_file_is_refused_and_the_session_goes_on() {
    let s = server();
    let mut msgs = open_f_at_max_msize();
    for (tag, offset) in [(10, u64::MAX - 70_000), (11, u64::MAX - 65_536)] {
        let data = vec![3u8; 64 * 1024];
        let msg = Msg::Twrite {
            fid: 1,
            offset,
            data,
        };
        msgs.push(Fcall { tag, msg });
    }
    msgs.push(Fcall {
        tag: 12,
        msg: Msg::Tclunk { fid: 1 },
    });
    let reader = Cuts::fixed(bytes_of(&msgs), 5000);
    let mut output = Vec::new();
    let end = s.serve(reader, &mut output, "in pieces");
    assert!(matches!(end, ConnectionEnd::Eof), "{end:?}");
    let r = replies_of(&output);
    let tail: Vec<(u16, Msg)> = r[4..].iter().map(|f| (f.tag, f.msg.clone())).collect();
    let efbig = Msg::Rlerror {
        ecode: errno::EFBIG,
    };
    assert_eq!(
        tail,
        vec![(10, efbig.clone()), (11, efbig), (12, Msg::Rclunk)]
    );
    // The file's name and node cost a few bytes; no page of data was kept.
    assert!(used(&s) < crate::fs::PAGE_SIZE as u64, "used {}", used(&s));
}
