//! The fuzz target's seed corpus (`fuzz/corpus/decode`): a dozen valid messages of
//! both dialects, one a file. The test checks the committed files against the messages
//! below; `NINEP_WRITE_CORPUS=1 cargo test -p ninep --test fuzz_corpus` rewrites them.

mod common;

use std::path::PathBuf;

use common::bytes_of;
use ninep::*;

fn seeds() -> Vec<(&'static str, Fcall)> {
    let qid = Qid {
        ty: qt::DIR,
        version: 1,
        path: 2,
    };
    let fc = |tag, msg| Fcall { tag, msg };
    vec![
        (
            "tversion",
            fc(
                NOTAG,
                Msg::Tversion {
                    msize: 8192,
                    version: VERSION_9P2000L.into(),
                },
            ),
        ),
        (
            "tattach-l",
            fc(
                1,
                Msg::Tattach {
                    fid: 0,
                    afid: NOFID,
                    uname: "root".into(),
                    aname: "".into(),
                    n_uname: Some(0),
                },
            ),
        ),
        (
            "tauth-9p2000",
            fc(
                1,
                Msg::Tauth {
                    afid: 5,
                    uname: "glenda".into(),
                    aname: "main".into(),
                    n_uname: None,
                },
            ),
        ),
        (
            "twalk",
            fc(
                2,
                Msg::Twalk {
                    fid: 0,
                    newfid: 1,
                    wnames: vec!["usr".into(), "glenda".into(), "lib".into()],
                },
            ),
        ),
        (
            "rwalk",
            fc(
                2,
                Msg::Rwalk {
                    wqids: vec![qid; 2],
                },
            ),
        ),
        (
            "rstat",
            fc(
                3,
                Msg::Rstat {
                    stat: Stat {
                        qid,
                        mode: dm::DIR | 0o775,
                        name: "lib".into(),
                        uid: "glenda".into(),
                        gid: "glenda".into(),
                        muid: "glenda".into(),
                        ..Stat::default()
                    },
                },
            ),
        ),
        (
            "twstat",
            fc(
                3,
                Msg::Twstat {
                    fid: 1,
                    stat: Stat::dont_touch(),
                },
            ),
        ),
        (
            "twrite",
            fc(
                4,
                Msg::Twrite {
                    fid: 1,
                    offset: 0,
                    data: b"hello, world\n".to_vec(),
                },
            ),
        ),
        (
            "rgetattr",
            fc(
                5,
                Msg::Rgetattr {
                    attr: Attr {
                        valid: getattr::BASIC,
                        qid,
                        mode: smode::IFDIR | 0o755,
                        nlink: 2,
                        size: 4096,
                        ..Attr::default()
                    },
                },
            ),
        ),
        (
            "rreaddir",
            fc(
                6,
                Msg::Rreaddir {
                    data: {
                        let mut d = Vec::new();
                        for (i, name) in [".", "..", "file"].into_iter().enumerate() {
                            Dirent {
                                qid,
                                offset: i as u64 + 1,
                                ty: dt::DIR,
                                name: name.into(),
                            }
                            .encode(&mut d)
                            .unwrap();
                        }
                        d
                    },
                },
            ),
        ),
        (
            "tlock",
            fc(
                7,
                Msg::Tlock {
                    fid: 1,
                    lock: LockReq {
                        ty: lock::TYPE_WRLCK,
                        flags: lock::FLAGS_BLOCK,
                        start: 0,
                        length: 0,
                        proc_id: 42,
                        client_id: "host".into(),
                    },
                },
            ),
        ),
        (
            "trenameat",
            fc(
                8,
                Msg::Trenameat {
                    olddirfid: 1,
                    oldname: "a".into(),
                    newdirfid: 2,
                    newname: "b".into(),
                },
            ),
        ),
        (
            "rlerror",
            fc(
                9,
                Msg::Rlerror {
                    ecode: errno::ENOENT,
                },
            ),
        ),
        (
            "rerror",
            fc(
                9,
                Msg::Rerror {
                    ename: "file does not exist".into(),
                },
            ),
        ),
    ]
}

#[test]
fn seed_corpus_is_current() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    let write = std::env::var_os("NINEP_WRITE_CORPUS").is_some();
    for (name, fc) in seeds() {
        let bytes = bytes_of(&fc);
        let dialect = match fc.msg {
            Msg::Tauth { n_uname: None, .. } => Dialect::P2000,
            _ => Dialect::L,
        };
        assert_eq!(decode(&bytes, dialect).unwrap(), fc);
        let path = dir.join(name);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_else(|e| {
                panic!("{}: {e} (NINEP_WRITE_CORPUS=1 writes it)", path.display())
            });
            assert_eq!(committed, bytes, "{name} is stale");
        }
    }
}
