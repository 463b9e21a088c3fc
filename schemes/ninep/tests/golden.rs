//! Messages written out by hand from the protocol's descriptions (Plan 9 intro(5) and
//! stat(5), Linux's net/9p/client.c), so that a layout mistake made the same way in
//! encode and decode still fails here.

use ninep::*;

/// Encodes `fc`, compares with `bytes`, decodes `bytes` back and compares with `fc`.
fn check(fc: Fcall, dialect: Dialect, bytes: &[u8]) {
    let mut out = Vec::new();
    encode(&fc, &mut out).expect("encodes");
    assert_eq!(out, bytes, "encoding of {fc:?}");
    assert_eq!(encoded_len(&fc), bytes.len());
    assert_eq!(decode(bytes, dialect).expect("decodes"), fc);
}

/// One field of a hand-written message, by its width on the wire.
enum F<'a> {
    B(u8),
    W(u16),
    D(u32),
    Q(u64),
    S(&'a str),
}

/// Lays out `size[4]` (computed) and `fields` little-endian, for the long messages
/// where counting bytes by hand would hide the layout.
fn message(fields: &[F]) -> Vec<u8> {
    let mut body = Vec::new();
    for f in fields {
        match f {
            F::B(v) => body.push(*v),
            F::W(v) => body.extend_from_slice(&v.to_le_bytes()),
            F::D(v) => body.extend_from_slice(&v.to_le_bytes()),
            F::Q(v) => body.extend_from_slice(&v.to_le_bytes()),
            F::S(s) => {
                body.extend_from_slice(&(s.len() as u16).to_le_bytes());
                body.extend_from_slice(s.as_bytes());
            }
        }
    }
    let mut out = ((body.len() + 4) as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

#[test]
fn tversion() {
    check(
        Fcall {
            tag: NOTAG,
            msg: Msg::Tversion {
                msize: 8192,
                version: "9P2000".into(),
            },
        },
        Dialect::P2000,
        &[
            19, 0, 0, 0,   // size
            100, // Tversion
            0xff, 0xff, // NOTAG
            0x00, 0x20, 0, 0, // msize 8192
            6, 0, b'9', b'P', b'2', b'0', b'0', b'0',
        ],
    );
}

#[test]
fn twalk_two_names() {
    check(
        Fcall {
            tag: 1,
            msg: Msg::Twalk {
                fid: 1,
                newfid: 2,
                wnames: vec!["usr".into(), "glenda".into()],
            },
        },
        Dialect::P2000,
        &[
            30, 0, 0, 0,   // size
            110, // Twalk
            1, 0, // tag
            1, 0, 0, 0, // fid
            2, 0, 0, 0, // newfid
            2, 0, // nwname
            3, 0, b'u', b's', b'r', //
            6, 0, b'g', b'l', b'e', b'n', b'd', b'a',
        ],
    );
}

#[test]
fn rwalk_one_qid() {
    check(
        Fcall {
            tag: 1,
            msg: Msg::Rwalk {
                wqids: vec![Qid {
                    ty: qt::DIR,
                    version: 7,
                    path: 0x0102_0304_0506_0708,
                }],
            },
        },
        Dialect::L,
        &[
            22, 0, 0, 0, 111, 1, 0, //
            1, 0, // nwqid
            0x80, 7, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1, // type, vers, path
        ],
    );
}

/// `Rstat`: `n[2]`, then the record with its own `size[2]` = n - 2.
#[test]
fn rstat() {
    check(
        Fcall {
            tag: 5,
            msg: Msg::Rstat {
                stat: Stat {
                    ty: 1,
                    dev: 2,
                    qid: Qid {
                        ty: qt::DIR,
                        version: 3,
                        path: 4,
                    },
                    mode: dm::DIR | 0o755,
                    atime: 5,
                    mtime: 6,
                    length: 7,
                    name: "a".into(),
                    uid: "u".into(),
                    gid: "g".into(),
                    muid: "m".into(),
                },
            },
        },
        Dialect::P2000,
        &[
            62, 0, 0, 0, 125, 5, 0, // size, Rstat, tag
            53, 0, // n
            51, 0, // the record's own size
            1, 0, // type
            2, 0, 0, 0, // dev
            0x80, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, // qid
            0xed, 0x01, 0, 0x80, // mode
            5, 0, 0, 0, // atime
            6, 0, 0, 0, // mtime
            7, 0, 0, 0, 0, 0, 0, 0, // length
            1, 0, b'a', 1, 0, b'u', 1, 0, b'g', 1, 0, b'm',
        ],
    );
}

#[test]
fn tattach_dotl_carries_n_uname() {
    check(
        Fcall {
            tag: 1,
            msg: Msg::Tattach {
                fid: 0,
                afid: NOFID,
                uname: "root".into(),
                aname: "".into(),
                n_uname: Some(0),
            },
        },
        Dialect::L,
        &[
            27, 0, 0, 0, 104, 1, 0, //
            0, 0, 0, 0, // fid
            0xff, 0xff, 0xff, 0xff, // afid
            4, 0, b'r', b'o', b'o', b't', // uname
            0, 0, // aname
            0, 0, 0, 0, // n_uname
        ],
    );
}

#[test]
fn rlerror() {
    check(
        Fcall {
            tag: 0x1234,
            msg: Msg::Rlerror {
                ecode: errno::ENOENT,
            },
        },
        Dialect::L,
        &[11, 0, 0, 0, 7, 0x34, 0x12, 2, 0, 0, 0],
    );
}

#[test]
fn rgetattr() {
    let attr = Attr {
        valid: getattr::ALL,
        qid: Qid {
            ty: qt::FILE,
            version: 1,
            path: 2,
        },
        mode: smode::IFREG | 0o644,
        uid: 1000,
        gid: 100,
        nlink: 1,
        rdev: 0x0b,
        size: 12345,
        blksize: 4096,
        blocks: 8,
        atime_sec: 100,
        atime_nsec: 101,
        mtime_sec: 200,
        mtime_nsec: 201,
        ctime_sec: 300,
        ctime_nsec: 301,
        btime_sec: 400,
        btime_nsec: 401,
        gen: 5,
        data_version: 6,
    };
    use F::*;
    let bytes = message(&[
        B(25),
        W(9),
        Q(0x3fff), // valid
        B(0),      // qid
        D(1),
        Q(2),
        D(0o100644), // mode
        D(1000),     // uid
        D(100),      // gid
        Q(1),        // nlink
        Q(0x0b),     // rdev
        Q(12345),    // size
        Q(4096),     // blksize
        Q(8),        // blocks
        Q(100),
        Q(101),
        Q(200),
        Q(201),
        Q(300),
        Q(301),
        Q(400),
        Q(401),
        Q(5), // gen
        Q(6), // data_version
    ]);
    assert_eq!(bytes.len(), 7 + 8 + 13 + 3 * 4 + 15 * 8);
    check(
        Fcall {
            tag: 9,
            msg: Msg::Rgetattr { attr },
        },
        Dialect::L,
        &bytes,
    );
}

#[test]
fn tsetattr() {
    use F::*;
    let bytes = message(&[
        B(26),
        W(2),
        D(17), // fid
        D(setattr::MODE | setattr::SIZE),
        D(0o600),
        D(1),
        D(2),
        Q(4096), // size
        Q(10),
        Q(11),
        Q(20),
        Q(21),
    ]);
    check(
        Fcall {
            tag: 2,
            msg: Msg::Tsetattr {
                fid: 17,
                attr: SetAttr {
                    valid: setattr::MODE | setattr::SIZE,
                    mode: 0o600,
                    uid: 1,
                    gid: 2,
                    size: 4096,
                    atime_sec: 10,
                    atime_nsec: 11,
                    mtime_sec: 20,
                    mtime_nsec: 21,
                },
            },
        },
        Dialect::L,
        &bytes,
    );
}

#[test]
fn tlock_and_rgetlock() {
    use F::*;
    check(
        Fcall {
            tag: 4,
            msg: Msg::Tlock {
                fid: 3,
                lock: LockReq {
                    ty: lock::TYPE_WRLCK,
                    flags: lock::FLAGS_BLOCK,
                    start: 10,
                    length: 20,
                    proc_id: 42,
                    client_id: "host".into(),
                },
            },
        },
        Dialect::L,
        &message(&[
            B(52),
            W(4),
            D(3),
            B(1),
            D(1),
            Q(10),
            Q(20),
            D(42),
            S("host"),
        ]),
    );
    check(
        Fcall {
            tag: 4,
            msg: Msg::Rgetlock {
                lock: GetLock {
                    ty: lock::TYPE_UNLCK,
                    start: 10,
                    length: 0,
                    proc_id: 7,
                    client_id: "".into(),
                },
            },
        },
        Dialect::L,
        &message(&[B(55), W(4), B(2), Q(10), Q(0), D(7), S("")]),
    );
}

/// An `Rreaddir` whose payload is one entry: qid[13] offset[8] type[1] name[s].
#[test]
fn rreaddir_entry() {
    let entry = Dirent {
        qid: Qid {
            ty: qt::DIR,
            version: 0,
            path: 1,
        },
        offset: 1,
        ty: dt::DIR,
        name: ".".into(),
    };
    let entry_bytes = [
        0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, // qid
        1, 0, 0, 0, 0, 0, 0, 0, // offset
        4, // DT_DIR
        1, 0, b'.',
    ];
    let mut encoded = Vec::new();
    entry.encode(&mut encoded).unwrap();
    assert_eq!(encoded, entry_bytes);
    assert_eq!(Dirent::decode(&entry_bytes).unwrap(), (entry, 25));

    let mut msg = vec![36, 0, 0, 0, 41, 3, 0, 25, 0, 0, 0];
    msg.extend_from_slice(&entry_bytes);
    check(
        Fcall {
            tag: 3,
            msg: Msg::Rreaddir {
                data: entry_bytes.to_vec(),
            },
        },
        Dialect::L,
        &msg,
    );
}

#[test]
fn twrite() {
    check(
        Fcall {
            tag: 6,
            msg: Msg::Twrite {
                fid: 2,
                offset: 0x1_0000_0000,
                data: b"hi".to_vec(),
            },
        },
        Dialect::P2000,
        &[
            25, 0, 0, 0, 118, 6, 0, //
            2, 0, 0, 0, // fid
            0, 0, 0, 0, 1, 0, 0, 0, // offset
            2, 0, 0, 0, b'h', b'i',
        ],
    );
}
