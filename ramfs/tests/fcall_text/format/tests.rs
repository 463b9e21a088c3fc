//! Every message formatted and parsed back gives the message it was.

use ninep::{dm, qt, Attr, Dirent, GetLock, LockReq, Qid, SetAttr, Stat, StatFs};

use super::super::parse::{parse_line, Line};
use super::*;

fn round_trip(fc: Fcall) {
    let prefix = if fc.msg.is_request() { "> " } else { "< " };
    let text = format!("{prefix}{}", format_fcall(&fc));
    let back = parse_line(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let back = match back {
        Some(Line::Send(f)) | Some(Line::Expect(f)) => f,
        other => panic!("{text}: parsed as {other:?}"),
    };
    assert_eq!(back, fc, "{text}");
}

#[test]
fn formatted_messages_parse_back() {
    let q = Qid {
        ty: qt::DIR,
        version: 3,
        path: 7,
    };
    let st = Stat {
        qid: q,
        mode: dm::DIR | 0o755,
        atime: 1,
        mtime: 2,
        name: "a b".into(),
        uid: "test".into(),
        gid: "test".into(),
        muid: "".into(),
        ..Stat::default()
    };
    let mut dir = Vec::new();
    st.encode(&mut dir).unwrap();
    st.encode(&mut dir).unwrap();
    let mut ents = Vec::new();
    Dirent {
        qid: q,
        offset: 1,
        ty: 4,
        name: ".".into(),
    }
    .encode(&mut ents)
    .unwrap();
    for msg in [
        Msg::Tversion {
            msize: 8192,
            version: "9P2000.L".into(),
        },
        Msg::Tattach {
            fid: 0,
            afid: NOFID,
            uname: "".into(),
            aname: "x=y".into(),
            n_uname: Some(5),
        },
        Msg::Tattach {
            fid: 0,
            afid: NOFID,
            uname: "glenda".into(),
            aname: "".into(),
            n_uname: None,
        },
        Msg::Twalk {
            fid: 0,
            newfid: 1,
            wnames: vec!["..".into(), "a,b".into()],
        },
        Msg::Rwalk {
            wqids: vec![q, Qid::default()],
        },
        Msg::Topen { fid: 1, mode: 0x53 },
        Msg::Tcreate {
            fid: 1,
            name: "f".into(),
            perm: dm::APPEND | 0o600,
            mode: 1,
        },
        Msg::Rread { data: dir },
        Msg::Rread {
            data: b"hello\n\x00".to_vec(),
        },
        Msg::Rread {
            data: vec![b'z'; 100],
        },
        Msg::Rreaddir { data: ents },
        Msg::Twstat {
            fid: 1,
            stat: Stat::dont_touch(),
        },
        Msg::Rstat { stat: st },
        Msg::Rerror {
            ename: "file not found".into(),
        },
        Msg::Rlerror { ecode: 2 },
        Msg::Rlerror { ecode: 4000 },
        Msg::Rgetattr {
            attr: Attr {
                valid: 0x7ff,
                qid: q,
                mode: 0o40755,
                nlink: 2,
                ..Attr::default()
            },
        },
        Msg::Tsetattr {
            fid: 3,
            attr: SetAttr {
                valid: 8,
                size: 10,
                ..SetAttr::default()
            },
        },
        Msg::Tlock {
            fid: 3,
            lock: LockReq {
                ty: 1,
                flags: 0,
                start: 0,
                length: 0,
                proc_id: 9,
                client_id: "h".into(),
            },
        },
        Msg::Rgetlock {
            lock: GetLock {
                ty: 2,
                start: 0,
                length: 0,
                proc_id: 0,
                client_id: "".into(),
            },
        },
        Msg::Tunlinkat {
            dirfd: 0,
            name: "d".into(),
            flags: ninep::AT_REMOVEDIR,
        },
        Msg::Rstatfs {
            statfs: StatFs {
                ty: 0x01021997,
                bsize: 4096,
                ..StatFs::default()
            },
        },
    ] {
        round_trip(Fcall { tag: 3, msg });
    }
    round_trip(Fcall {
        tag: NOTAG,
        msg: Msg::Rversion {
            msize: 256,
            version: "unknown".into(),
        },
    });
}
