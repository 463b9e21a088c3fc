//! [`ninep::Fcall`]s back to transcript lines, for failure reports.
//!
//! The output parses back to the same message (see the round-trip test below), so a
//! reply a server sent can be pasted into a transcript once it has been judged right.

use std::fmt::Write as _;

use ninep::{dm, qt, Attr, Dirent, Fcall, GetLock, LockReq, Msg, Qid, SetAttr, Stat, StatFs};
use ninep::{NOFID, NOTAG};

use super::names::errno_name;

/// The message as a line without its `>`/`<` prefix.
pub fn format_fcall(fc: &Fcall) -> String {
    let mut w = Line(String::new());
    w.0.push_str(fc.msg.name());
    w.raw(
        "tag",
        if fc.tag == NOTAG {
            "NOTAG".into()
        } else {
            fc.tag.to_string()
        },
    );
    match &fc.msg {
        Msg::Tversion { msize, version } | Msg::Rversion { msize, version } => {
            w.num("msize", *msize);
            w.str("version", version);
        }
        Msg::Tauth {
            afid,
            uname,
            aname,
            n_uname,
        } => {
            w.fid("afid", *afid);
            w.str("uname", uname);
            w.str("aname", aname);
            if let Some(n) = n_uname {
                w.num("n_uname", *n);
            }
        }
        Msg::Rauth { aqid } => w.raw("aqid", qid(aqid)),
        Msg::Tattach {
            fid,
            afid,
            uname,
            aname,
            n_uname,
        } => {
            w.fid("fid", *fid);
            w.fid("afid", *afid);
            w.str("uname", uname);
            w.str("aname", aname);
            if let Some(n) = n_uname {
                w.num("n_uname", *n);
            }
        }
        Msg::Rattach { qid: q }
        | Msg::Rsymlink { qid: q }
        | Msg::Rmknod { qid: q }
        | Msg::Rmkdir { qid: q } => w.raw("qid", qid(q)),
        Msg::Rerror { ename } => w.str("ename", ename),
        Msg::Tflush { oldtag } => w.num("oldtag", *oldtag),
        Msg::Rflush
        | Msg::Rclunk
        | Msg::Rremove
        | Msg::Rwstat
        | Msg::Rrename
        | Msg::Rsetattr
        | Msg::Rxattrcreate
        | Msg::Rfsync
        | Msg::Rlink
        | Msg::Rrenameat
        | Msg::Runlinkat => {}
        Msg::Twalk {
            fid,
            newfid,
            wnames,
        } => {
            w.fid("fid", *fid);
            w.fid("newfid", *newfid);
            let names: Vec<String> = wnames.iter().map(|n| string(n)).collect();
            w.raw("wnames", format!("[{}]", names.join(",")));
        }
        Msg::Rwalk { wqids } => {
            let qids: Vec<String> = wqids.iter().map(qid).collect();
            w.raw("wqids", format!("[{}]", qids.join(",")));
        }
        Msg::Topen { fid, mode } => {
            w.fid("fid", *fid);
            w.raw("mode", open_mode(*mode));
        }
        Msg::Ropen { qid: q, iounit }
        | Msg::Rcreate { qid: q, iounit }
        | Msg::Rlopen { qid: q, iounit }
        | Msg::Rlcreate { qid: q, iounit } => {
            w.raw("qid", qid(q));
            w.num("iounit", *iounit);
        }
        Msg::Tcreate {
            fid,
            name,
            perm,
            mode,
        } => {
            w.fid("fid", *fid);
            w.str("name", name);
            w.raw("perm", dir_mode(*perm));
            w.raw("mode", open_mode(*mode));
        }
        Msg::Tread { fid, offset, count } | Msg::Treaddir { fid, offset, count } => {
            w.fid("fid", *fid);
            w.num("offset", *offset);
            w.num("count", *count);
        }
        Msg::Rread { data } => w.raw("data", bytes(data, DataKind::Stats)),
        Msg::Rreaddir { data } => w.raw("data", bytes(data, DataKind::Dirents)),
        Msg::Twrite { fid, offset, data } => {
            w.fid("fid", *fid);
            w.num("offset", *offset);
            w.raw("data", bytes(data, DataKind::Plain));
        }
        Msg::Rwrite { count } => w.num("count", *count),
        Msg::Tclunk { fid }
        | Msg::Tremove { fid }
        | Msg::Tstat { fid }
        | Msg::Tstatfs { fid }
        | Msg::Treadlink { fid } => w.fid("fid", *fid),
        Msg::Rstat { stat: st } => w.raw("stat", stat(st)),
        Msg::Twstat { fid, stat: st } => {
            w.fid("fid", *fid);
            w.raw("stat", stat(st));
        }
        Msg::Rlerror { ecode } => w.raw(
            "ecode",
            errno_name(*ecode).map_or(ecode.to_string(), str::to_owned),
        ),
        Msg::Rstatfs { statfs } => w.raw("statfs", statfs_rec(statfs)),
        Msg::Tlopen { fid, flags } => {
            w.fid("fid", *fid);
            w.raw("flags", format!("0o{flags:o}"));
        }
        Msg::Tlcreate {
            fid,
            name,
            flags,
            mode,
            gid,
        } => {
            w.fid("fid", *fid);
            w.str("name", name);
            w.raw("flags", format!("0o{flags:o}"));
            w.raw("mode", format!("0o{mode:o}"));
            w.num("gid", *gid);
        }
        Msg::Tsymlink {
            fid,
            name,
            symtgt,
            gid,
        } => {
            w.fid("fid", *fid);
            w.str("name", name);
            w.str("symtgt", symtgt);
            w.num("gid", *gid);
        }
        Msg::Tmknod {
            dfid,
            name,
            mode,
            major,
            minor,
            gid,
        } => {
            w.fid("dfid", *dfid);
            w.str("name", name);
            w.raw("mode", format!("0o{mode:o}"));
            w.num("major", *major);
            w.num("minor", *minor);
            w.num("gid", *gid);
        }
        Msg::Trename { fid, dfid, name } => {
            w.fid("fid", *fid);
            w.fid("dfid", *dfid);
            w.str("name", name);
        }
        Msg::Rreadlink { target } => w.str("target", target),
        Msg::Tgetattr { fid, request_mask } => {
            w.fid("fid", *fid);
            w.raw("request_mask", format!("0x{request_mask:x}"));
        }
        Msg::Rgetattr { attr } => w.raw("attr", attr_rec(attr)),
        Msg::Tsetattr { fid, attr } => {
            w.fid("fid", *fid);
            w.raw("attr", setattr_rec(attr));
        }
        Msg::Txattrwalk { fid, newfid, name } => {
            w.fid("fid", *fid);
            w.fid("newfid", *newfid);
            w.str("name", name);
        }
        Msg::Rxattrwalk { size } => w.num("size", *size),
        Msg::Txattrcreate {
            fid,
            name,
            attr_size,
            flags,
        } => {
            w.fid("fid", *fid);
            w.str("name", name);
            w.num("attr_size", *attr_size);
            w.num("flags", *flags);
        }
        Msg::Tfsync { fid, datasync } => {
            w.fid("fid", *fid);
            w.num("datasync", *datasync);
        }
        Msg::Tlock { fid, lock } => {
            w.fid("fid", *fid);
            w.raw("lock", lockreq_rec(lock));
        }
        Msg::Rlock { status } => w.num("status", *status),
        Msg::Tgetlock { fid, lock } => {
            w.fid("fid", *fid);
            w.raw("lock", getlock_rec(lock));
        }
        Msg::Rgetlock { lock } => w.raw("lock", getlock_rec(lock)),
        Msg::Tlink { dfid, fid, name } => {
            w.fid("dfid", *dfid);
            w.fid("fid", *fid);
            w.str("name", name);
        }
        Msg::Tmkdir {
            dfid,
            name,
            mode,
            gid,
        } => {
            w.fid("dfid", *dfid);
            w.str("name", name);
            w.raw("mode", format!("0o{mode:o}"));
            w.num("gid", *gid);
        }
        Msg::Trenameat {
            olddirfid,
            oldname,
            newdirfid,
            newname,
        } => {
            w.fid("olddirfid", *olddirfid);
            w.str("oldname", oldname);
            w.fid("newdirfid", *newdirfid);
            w.str("newname", newname);
        }
        Msg::Tunlinkat { dirfd, name, flags } => {
            w.fid("dirfd", *dirfd);
            w.str("name", name);
            w.raw(
                "flags",
                if *flags == ninep::AT_REMOVEDIR {
                    "AT_REMOVEDIR".into()
                } else {
                    flags.to_string()
                },
            );
        }
    }
    w.0
}

/// `name=value` pairs after the message name.
struct Line(String);

impl Line {
    fn raw(&mut self, name: &str, value: String) {
        let _ = write!(self.0, " {name}={value}");
    }
    fn num(&mut self, name: &str, v: impl Into<u64>) {
        self.raw(name, v.into().to_string());
    }
    fn fid(&mut self, name: &str, v: u32) {
        self.raw(
            name,
            if v == NOFID {
                "NOFID".into()
            } else {
                v.to_string()
            },
        );
    }
    fn str(&mut self, name: &str, s: &str) {
        self.raw(name, string(s));
    }
}

/// A bare atom when the text allows it, else a quoted string.
fn string(s: &str) -> String {
    let atom_safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"[](){},\"=\\".contains(&b));
    if atom_safe {
        s.to_owned()
    } else {
        quote(s.as_bytes())
    }
}

fn quote(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for &c in b {
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(c as char),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push('"');
    out
}

fn qid(q: &Qid) -> String {
    format!("({},{},{})", qid_type(q.ty), q.version, q.path)
}

fn qid_type(t: u8) -> String {
    let names = [
        (qt::DIR, "QTDIR"),
        (qt::APPEND, "QTAPPEND"),
        (qt::EXCL, "QTEXCL"),
        (qt::MOUNT, "QTMOUNT"),
        (qt::AUTH, "QTAUTH"),
        (qt::TMP, "QTTMP"),
        (qt::SYMLINK, "QTSYMLINK"),
        (qt::LINK, "QTLINK"),
    ];
    flags(
        u64::from(t),
        &names.map(|(v, n)| (u64::from(v), n)),
        "0",
        |r| format!("0x{r:x}"),
    )
}

/// `A|B|rest`, naming the bits it knows.
fn flags(v: u64, names: &[(u64, &str)], zero: &str, rest: impl Fn(u64) -> String) -> String {
    let mut parts = Vec::new();
    let mut left = v;
    for (bit, name) in names {
        if left & bit != 0 {
            parts.push((*name).to_owned());
            left &= !bit;
        }
    }
    if left != 0 || parts.is_empty() {
        parts.push(if left == 0 {
            zero.to_owned()
        } else {
            rest(left)
        });
    }
    parts.join("|")
}

fn dir_mode(m: u32) -> String {
    if m == u32::MAX {
        return "~0".into();
    }
    let names = [
        (dm::DIR, "DMDIR"),
        (dm::APPEND, "DMAPPEND"),
        (dm::EXCL, "DMEXCL"),
        (dm::MOUNT, "DMMOUNT"),
        (dm::AUTH, "DMAUTH"),
        (dm::TMP, "DMTMP"),
        (dm::SYMLINK, "DMSYMLINK"),
        (dm::DEVICE, "DMDEVICE"),
        (dm::NAMEDPIPE, "DMNAMEDPIPE"),
        (dm::SOCKET, "DMSOCKET"),
        (dm::SETUID, "DMSETUID"),
        (dm::SETGID, "DMSETGID"),
    ];
    flags(
        u64::from(m),
        &names.map(|(v, n)| (u64::from(v), n)),
        "0",
        |r| format!("0o{r:o}"),
    )
}

fn open_mode(m: u8) -> String {
    let access = ["OREAD", "OWRITE", "ORDWR", "OEXEC"][usize::from(m & 3)];
    let mut s = access.to_owned();
    for (bit, name) in [(0x10u8, "OTRUNC"), (0x20, "OCEXEC"), (0x40, "ORCLOSE")] {
        if m & bit != 0 {
            s.push('|');
            s.push_str(name);
        }
    }
    let rest = m & !0x73;
    if rest != 0 {
        let _ = write!(s, "|0x{rest:x}");
    }
    s
}

fn num_or_dont_touch<T: Into<u64> + Copy>(v: T, max: u64) -> String {
    let v: u64 = v.into();
    if v == max {
        "~0".into()
    } else {
        v.to_string()
    }
}

fn stat(st: &Stat) -> String {
    let q = if st.qid.ty == u8::MAX && st.qid.version == u32::MAX && st.qid.path == u64::MAX {
        "(~0,~0,~0)".to_owned()
    } else {
        qid(&st.qid)
    };
    format!(
        "{{ty={} dev={} qid={} mode={} atime={} mtime={} length={} name={} uid={} gid={} muid={}}}",
        num_or_dont_touch(st.ty, u16::MAX.into()),
        num_or_dont_touch(st.dev, u32::MAX.into()),
        q,
        dir_mode(st.mode),
        num_or_dont_touch(st.atime, u32::MAX.into()),
        num_or_dont_touch(st.mtime, u32::MAX.into()),
        num_or_dont_touch(st.length, u64::MAX),
        string_or_empty(&st.name),
        string_or_empty(&st.uid),
        string_or_empty(&st.gid),
        string_or_empty(&st.muid),
    )
}

fn string_or_empty(s: &str) -> String {
    if s.is_empty() {
        "\"\"".into()
    } else {
        string(s)
    }
}

fn dirent(d: &Dirent) -> String {
    format!(
        "{{qid={} offset={} ty={} name={}}}",
        qid(&d.qid),
        d.offset,
        d.ty,
        string_or_empty(&d.name)
    )
}

#[derive(Clone, Copy)]
enum DataKind {
    Plain,
    Stats,
    Dirents,
}

/// Data as records when it parses as them, as text when it is text, else as hex.
fn bytes(data: &[u8], kind: DataKind) -> String {
    if data.is_empty() {
        return "\"\"".into();
    }
    let records = match kind {
        DataKind::Plain => None,
        DataKind::Stats => split_all(data, |b| Stat::decode(b).ok())
            .map(|v| v.iter().map(stat).collect::<Vec<_>>()),
        DataKind::Dirents => split_all(data, |b| Dirent::decode(b).ok())
            .map(|v| v.iter().map(dirent).collect::<Vec<_>>()),
    };
    if let Some(r) = records {
        return format!("[{}]", r.join(","));
    }
    let printable = data
        .iter()
        .filter(|&&b| b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b))
        .count();
    // Text, or data that is mostly runs (holes of zeros): a quoted string with runs.
    if printable * 4 >= data.len() * 3 || runs(data).len() * 8 <= data.len() {
        return runs(data)
            .iter()
            .map(|&(b, n)| {
                if n >= RUN_MIN {
                    format!("{}*{n}", quote(&[b]))
                } else {
                    quote(&vec![b; n])
                }
            })
            .fold(Vec::<String>::new(), |mut acc, piece| {
                // Merge neighbouring short pieces into one quoted string.
                match acc.last_mut() {
                    Some(last) if !last.contains('*') && !piece.contains('*') => {
                        last.pop();
                        last.push_str(&piece[1..]);
                    }
                    _ => acc.push(piece),
                }
                acc
            })
            .join("+");
    }
    let mut h = String::from("hex:");
    for b in data {
        let _ = write!(h, "{b:02x}");
    }
    h
}

/// Runs at least this long are written as `"c"*n`.
const RUN_MIN: usize = 16;

/// `data` as (byte, run length) pairs.
fn runs(data: &[u8]) -> Vec<(u8, usize)> {
    let mut out: Vec<(u8, usize)> = Vec::new();
    for &b in data {
        match out.last_mut() {
            Some((last, n)) if *last == b => *n += 1,
            _ => out.push((b, 1)),
        }
    }
    out
}

/// Every record of `data`, or None if it does not split exactly into records.
fn split_all<T>(data: &[u8], one: impl Fn(&[u8]) -> Option<(T, usize)>) -> Option<Vec<T>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (item, used) = one(rest)?;
        if used == 0 {
            return None;
        }
        out.push(item);
        rest = &rest[used..];
    }
    Some(out)
}

fn attr_rec(a: &Attr) -> String {
    format!(
        "{{valid=0x{:x} qid={} mode=0o{:o} uid={} gid={} nlink={} rdev={} size={} blksize={} blocks={} atime_sec={} atime_nsec={} mtime_sec={} mtime_nsec={} ctime_sec={} ctime_nsec={} btime_sec={} btime_nsec={} gen={} data_version={}}}",
        a.valid, qid(&a.qid), a.mode, a.uid, a.gid, a.nlink, a.rdev, a.size, a.blksize, a.blocks,
        a.atime_sec, a.atime_nsec, a.mtime_sec, a.mtime_nsec, a.ctime_sec, a.ctime_nsec,
        a.btime_sec, a.btime_nsec, a.gen, a.data_version
    )
}

fn setattr_rec(a: &SetAttr) -> String {
    format!(
        "{{valid=0x{:x} mode=0o{:o} uid={} gid={} size={} atime_sec={} atime_nsec={} mtime_sec={} mtime_nsec={}}}",
        a.valid, a.mode, a.uid, a.gid, a.size, a.atime_sec, a.atime_nsec, a.mtime_sec, a.mtime_nsec
    )
}

fn statfs_rec(s: &StatFs) -> String {
    format!(
        "{{ty=0x{:x} bsize={} blocks={} bfree={} bavail={} files={} ffree={} fsid={} namelen={}}}",
        s.ty, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.fsid, s.namelen
    )
}

fn lockreq_rec(l: &LockReq) -> String {
    format!(
        "{{ty={} flags={} start={} length={} proc_id={} client_id={}}}",
        l.ty,
        l.flags,
        l.start,
        l.length,
        l.proc_id,
        string_or_empty(&l.client_id)
    )
}

fn getlock_rec(l: &GetLock) -> String {
    format!(
        "{{ty={} start={} length={} proc_id={} client_id={}}}",
        l.ty,
        l.start,
        l.length,
        l.proc_id,
        string_or_empty(&l.client_id)
    )
}

#[cfg(test)]
mod tests {
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
}
