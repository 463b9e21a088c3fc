use super::*;
use crate::bench::test_io::NarrowWriter;
use ninep::{getattr, Dialect, Fcall, Msg, IOHDRSZ};

/// A reader that hands out at most `step` bytes a call, so messages arrive in pieces.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn encode_all(requests: &[Fcall]) -> Vec<u8> {
    let mut out = Vec::new();
    for fc in requests {
        encode(fc, &mut out).unwrap();
    }
    out
}

/// Every reply in `bytes`, decoded; each must be whole and decode.
fn decode_all(mut bytes: &[u8], dialect: Dialect) -> Vec<Fcall> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let size = peek_size(bytes).expect("a size field") as usize;
        out.push(ninep::decode(&bytes[..size], dialect).expect("a well-formed reply"));
        bytes = &bytes[size..];
    }
    out
}

fn serve(input: &[u8], read_step: usize, write_step: usize) -> (Vec<u8>, ConnEnd) {
    let reader = Trickle {
        data: input,
        step: read_step,
    };
    let mut writer = NarrowWriter::new(write_step);
    let end = serve_conn(reader, &mut writer, MAX_MSIZE);
    (writer.got, end)
}

fn fc(tag: u16, msg: Msg) -> Fcall {
    Fcall { tag, msg }
}

fn version(msize: u32, version: &str) -> Fcall {
    fc(
        NOTAG,
        Msg::Tversion {
            msize,
            version: version.into(),
        },
    )
}

#[test]
fn every_request_of_the_bench_gets_its_reply_in_order_and_well_formed() {
    let big = pattern(MAX_MSIZE as usize - IOHDRSZ as usize);
    let requests = [
        version(MAX_MSIZE, "9P2000.L"),
        fc(
            1,
            Msg::Tattach {
                fid: 0,
                afid: ninep::NOFID,
                uname: "u".into(),
                aname: String::new(),
                n_uname: Some(1000),
            },
        ),
        fc(
            2,
            Msg::Twalk {
                fid: 0,
                newfid: 1,
                wnames: vec!["d".into(), "target".into()],
            },
        ),
        fc(3, Msg::Tlopen { fid: 1, flags: 0 }),
        fc(
            4,
            Msg::Tread {
                fid: 1,
                offset: 0,
                count: 100,
            },
        ),
        fc(
            5,
            Msg::Twrite {
                fid: 1,
                offset: 0,
                data: big.clone(),
            },
        ),
        fc(
            6,
            Msg::Tread {
                fid: 1,
                offset: 0,
                count: MAX_MSIZE,
            },
        ),
        fc(
            7,
            Msg::Tgetattr {
                fid: 1,
                request_mask: getattr::BASIC,
            },
        ),
        fc(
            8,
            Msg::Tunlinkat {
                dirfd: 0,
                name: "f".into(),
                flags: 0,
            },
        ),
        fc(9, Msg::Tclunk { fid: 1 }),
    ];
    let input = encode_all(&requests);
    // Messages in pieces of every size, replies written a few bytes at a time.
    for (read_step, write_step) in [(1 << 30, 1 << 30), (7, 1000), (65536, 3), (1000, 65537)] {
        let (out, end) = serve(&input, read_step, write_step);
        assert!(matches!(end, ConnEnd::Eof), "{end}");
        let replies = decode_all(&out, Dialect::L);
        let tags: Vec<u16> = replies.iter().map(|r| r.tag).collect();
        assert_eq!(tags, [NOTAG, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let names: Vec<&str> = replies.iter().map(|r| r.msg.name()).collect();
        assert_eq!(
            names,
            [
                "Rversion",
                "Rattach",
                "Rwalk",
                "Rlopen",
                "Rread",
                "Rwrite",
                "Rread",
                "Rgetattr",
                "Runlinkat",
                "Rclunk"
            ]
        );
        assert!(matches!(&replies[2].msg, Msg::Rwalk { wqids } if wqids.len() == 2));
        // The Rread is ninep's encoding of an Rread of that many pattern bytes.
        assert_eq!(
            replies[4].msg,
            Msg::Rread {
                data: pattern(MAX_MSIZE as usize)[..100].to_vec()
            }
        );
        assert_eq!(
            replies[5].msg,
            Msg::Rwrite {
                count: big.len() as u32
            }
        );
        // A count past the iounit gets the iounit.
        assert!(
            matches!(&replies[6].msg, Msg::Rread { data } if data.len() == big.len()),
            "{}",
            replies[6].msg.name()
        );
    }
}

#[test]
fn the_9p2000_dialect_gets_its_own_replies() {
    let requests = [
        version(8192, "9P2000"),
        fc(
            1,
            Msg::Tcreate {
                fid: 1,
                name: "f".into(),
                perm: 0o644,
                mode: 1,
            },
        ),
        fc(2, Msg::Tstat { fid: 1 }),
        fc(3, Msg::Tremove { fid: 1 }),
        fc(4, Msg::Tlopen { fid: 1, flags: 0 }),
    ];
    let (out, end) = serve(&encode_all(&requests), 1 << 20, 1 << 20);
    assert!(matches!(end, ConnEnd::Eof), "{end}");
    let names: Vec<&str> = decode_all(&out, Dialect::P2000)
        .iter()
        .map(|r| r.msg.name())
        .collect();
    assert_eq!(names, ["Rversion", "Rcreate", "Rstat", "Rremove", "Rerror"]);
}

#[test]
fn a_well_framed_bad_message_is_answered_and_a_bad_size_ends_the_connection() {
    let mut input = encode_all(&[version(8192, "9P2000.L")]);
    // A Tclunk with a byte too many: well framed, does not decode.
    let mut bad = encode_all(&[fc(5, Msg::Tclunk { fid: 1 })]);
    bad.push(0);
    let len = bad.len() as u32;
    bad[..4].copy_from_slice(&len.to_le_bytes());
    input.extend_from_slice(&bad);
    // A Tread a byte too long is not the fast path's: the decoder refuses it too.
    let mut long = encode_all(&[fc(
        6,
        Msg::Tread {
            fid: 1,
            offset: 0,
            count: 1,
        },
    )]);
    long.push(0);
    let len = long.len() as u32;
    long[..4].copy_from_slice(&len.to_le_bytes());
    input.extend_from_slice(&long);
    input.extend_from_slice(&encode_all(&[fc(7, Msg::Tclunk { fid: 1 })]));
    // Then a message larger than the msize: the end of the connection.
    input.extend_from_slice(&9000u32.to_le_bytes());
    input.extend_from_slice(&[mtype::TCLUNK, 8, 0]);
    let (out, end) = serve(&input, 1 << 20, 1 << 20);
    assert!(
        matches!(
            end,
            ConnEnd::BadSize {
                size: 9000,
                msize: 8192
            }
        ),
        "{end}"
    );
    let replies = decode_all(&out, Dialect::L);
    let got: Vec<(u16, &str)> = replies.iter().map(|r| (r.tag, r.msg.name())).collect();
    assert_eq!(
        got,
        [
            (NOTAG, "Rversion"),
            (5, "Rlerror"),
            (6, "Rlerror"),
            (7, "Rclunk")
        ]
    );
}

#[test]
fn a_twrite_whose_count_disagrees_with_its_size_is_refused() {
    let mut w = encode_all(&[fc(
        3,
        Msg::Twrite {
            fid: 1,
            offset: 0,
            data: vec![1; 10],
        },
    )]);
    // Count 11 in a frame of 10 data bytes: an overrun, which ninep calls framing.
    w[TWRITE_HEADER_LEN - 4..TWRITE_HEADER_LEN].copy_from_slice(&11u32.to_le_bytes());
    let mut input = encode_all(&[version(8192, "9P2000.L")]);
    input.extend_from_slice(&w);
    let (out, end) = serve(&input, 1 << 20, 1 << 20);
    assert!(matches!(end, ConnEnd::Framing(_)), "{end}");
    assert_eq!(decode_all(&out, Dialect::L).len(), 1);
}

#[test]
fn many_reads_in_one_batch_take_several_writevs_and_lose_no_byte() {
    // More Rreads than one writev takes.
    let mut requests = vec![version(8192, "9P2000.L")];
    for tag in 0..(MAX_SLICES as u16 + 10) {
        requests.push(fc(
            tag,
            Msg::Tread {
                fid: 1,
                offset: 0,
                count: u32::from(tag % 7) + 1,
            },
        ));
    }
    let (out, end) = serve(&encode_all(&requests), 1 << 30, 1 << 30);
    assert!(matches!(end, ConnEnd::Eof), "{end}");
    let replies = decode_all(&out, Dialect::L);
    assert_eq!(replies.len(), requests.len());
    for (i, r) in replies[1..].iter().enumerate() {
        let want = i % 7 + 1;
        assert!(
            matches!(&r.msg, Msg::Rread { data } if data.len() == want),
            "{r:?}"
        );
    }
}

#[test]
fn a_live_socket_is_not_replaced_and_a_stale_one_is() {
    let dir = std::env::temp_dir().join(format!("raw-bind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let addr = Addr::Unix(path.clone());
    let live = Listener::bind(&addr).unwrap();
    assert!(matches!(Listener::bind(&addr), Err(ServeError::InUse(_))));
    drop(live); // the socket file stays behind, with nobody listening
    let again = Listener::bind(&addr);
    assert!(again.is_ok(), "{:?}", again.err());
    let file = dir.join("plain");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(
        Listener::bind(&Addr::Unix(file)),
        Err(ServeError::NotASocket(_))
    ));
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reply_past_the_msize_becomes_an_error() {
    // A 9P2000 stat names the attaching user thrice: 3000 bytes of name do not fit 8 KiB.
    let requests = [
        version(8192, "9P2000"),
        fc(
            1,
            Msg::Tattach {
                fid: 0,
                afid: ninep::NOFID,
                uname: "u".repeat(3000),
                aname: String::new(),
                n_uname: None,
            },
        ),
        fc(2, Msg::Tstat { fid: 0 }),
        fc(3, Msg::Tclunk { fid: 0 }),
    ];
    let (out, end) = serve(&encode_all(&requests), 1 << 20, 1 << 20);
    assert!(matches!(end, ConnEnd::Eof), "{end}");
    let got: Vec<(u16, &str)> = decode_all(&out, Dialect::P2000)
        .iter()
        .map(|r| (r.tag, r.msg.name()))
        .collect();
    assert_eq!(
        got,
        [
            (NOTAG, "Rversion"),
            (1, "Rattach"),
            (2, "Rerror"),
            (3, "Rclunk")
        ]
    );
}

/// A listening server answers through its polling reader: requests sent one at a time
/// (found while it spins, or after it slept), then end of file.
#[test]
fn a_listener_answers_one_request_at_a_time_through_its_polling_reader() {
    use std::os::unix::net::UnixStream;
    let dir = std::env::temp_dir().join(format!("raw-poll-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let listener = Listener::bind(&Addr::Unix(path.clone())).unwrap();
    // The accept loop runs until the test process ends.
    thread::spawn(move || listener.serve(MAX_MSIZE));
    let mut client = UnixStream::connect(&path).unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut rpc = |request: Fcall| -> Fcall {
        client.write_all(&encode_all(&[request])).unwrap();
        let mut size = [0u8; 4];
        client.read_exact(&mut size).unwrap();
        let mut reply = size.to_vec();
        reply.resize(u32::from_le_bytes(size) as usize, 0);
        client.read_exact(&mut reply[4..]).unwrap();
        ninep::decode(&reply, Dialect::L).unwrap()
    };
    assert!(matches!(
        rpc(version(8192, "9P2000.L")).msg,
        Msg::Rversion { .. }
    ));
    for tag in 1..100 {
        let r = rpc(fc(
            tag,
            Msg::Tgetattr {
                fid: 1,
                request_mask: getattr::BASIC,
            },
        ));
        assert_eq!(r.tag, tag);
        assert!(matches!(r.msg, Msg::Rgetattr { .. }), "{:?}", r.msg);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// On a unix socket the Rread data goes out by reference: pipelined reads of every
/// size, far more than the socket holds, arrive whole, in order and with the pattern,
/// mixed with replies that carry no data.
#[test]
fn a_unix_socket_gets_its_reads_whole_by_reference() {
    use std::os::unix::net::UnixStream;
    let (mut client, server) = UnixStream::pair().unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let reader = server.try_clone().unwrap();
    let serving = thread::spawn(move || serve_unix(reader, server, MAX_MSIZE));
    let mut requests = vec![version(MAX_MSIZE, "9P2000.L")];
    let counts = [1u32, 4096, 8192 - 24, 65_536, 1 << 20, 300_000, 7];
    for (tag, &count) in counts.iter().cycle().take(64).enumerate() {
        let msg = if tag % 5 == 4 {
            Msg::Tgetattr {
                fid: 1,
                request_mask: getattr::BASIC,
            }
        } else {
            Msg::Tread {
                fid: 1,
                offset: 0,
                count,
            }
        };
        requests.push(fc(tag as u16, msg));
    }
    let sent = encode_all(&requests);
    let writing = thread::spawn(move || {
        client.write_all(&sent).unwrap();
        client
    });
    let mut client = writing.join().unwrap();
    let data = read_data();
    for request in &requests {
        let mut size = [0u8; 4];
        client.read_exact(&mut size).unwrap();
        let mut reply = size.to_vec();
        reply.resize(u32::from_le_bytes(size) as usize, 0);
        client.read_exact(&mut reply[4..]).unwrap();
        let reply = ninep::decode(&reply, Dialect::L).unwrap();
        assert_eq!(reply.tag, request.tag);
        match (&request.msg, &reply.msg) {
            (Msg::Tread { count, .. }, Msg::Rread { data: got }) => {
                let want = (*count as usize).min(MAX_MSIZE as usize - IOHDRSZ as usize);
                assert!(got[..] == data[..want], "tag {}", reply.tag);
            }
            (Msg::Tgetattr { .. }, Msg::Rgetattr { .. }) | (Msg::Tversion { .. }, _) => {}
            (asked, got) => panic!("{asked:?} answered {got:?}"),
        }
    }
    drop(client);
    assert!(matches!(serving.join().unwrap(), ConnEnd::Eof));
}
