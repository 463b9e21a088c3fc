//! One field's value or one record as transcript text: strings, qids, flag words, modes,
//! don't-touch numbers, stats, dirents and 9P2000.L's records.

use std::fmt::Write as _;

use ninep::{dm, qt, Attr, Dirent, GetLock, LockReq, Qid, SetAttr, Stat, StatFs};

/// A bare atom when the text allows it, else a quoted string.
pub(super) fn string(s: &str) -> String {
    let atom_safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"[](){},\"=\\".contains(&b));
    if atom_safe {
        s.to_owned()
    } else {
        quote(s.as_bytes())
    }
}

pub(super) fn quote(b: &[u8]) -> String {
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

pub(super) fn qid(q: &Qid) -> String {
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

pub(super) fn dir_mode(m: u32) -> String {
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

pub(super) fn open_mode(m: u8) -> String {
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

pub(super) fn stat(st: &Stat) -> String {
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

pub(super) fn dirent(d: &Dirent) -> String {
    format!(
        "{{qid={} offset={} ty={} name={}}}",
        qid(&d.qid),
        d.offset,
        d.ty,
        string_or_empty(&d.name)
    )
}

pub(super) fn attr_rec(a: &Attr) -> String {
    format!(
        "{{valid=0x{:x} qid={} mode=0o{:o} uid={} gid={} nlink={} rdev={} size={} blksize={} blocks={} atime_sec={} atime_nsec={} mtime_sec={} mtime_nsec={} ctime_sec={} ctime_nsec={} btime_sec={} btime_nsec={} gen={} data_version={}}}",
        a.valid, qid(&a.qid), a.mode, a.uid, a.gid, a.nlink, a.rdev, a.size, a.blksize, a.blocks,
        a.atime_sec, a.atime_nsec, a.mtime_sec, a.mtime_nsec, a.ctime_sec, a.ctime_nsec,
        a.btime_sec, a.btime_nsec, a.gen, a.data_version
    )
}

pub(super) fn setattr_rec(a: &SetAttr) -> String {
    format!(
        "{{valid=0x{:x} mode=0o{:o} uid={} gid={} size={} atime_sec={} atime_nsec={} mtime_sec={} mtime_nsec={}}}",
        a.valid, a.mode, a.uid, a.gid, a.size, a.atime_sec, a.atime_nsec, a.mtime_sec, a.mtime_nsec
    )
}

pub(super) fn statfs_rec(s: &StatFs) -> String {
    format!(
        "{{ty=0x{:x} bsize={} blocks={} bfree={} bavail={} files={} ffree={} fsid={} namelen={}}}",
        s.ty, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.fsid, s.namelen
    )
}

pub(super) fn lockreq_rec(l: &LockReq) -> String {
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

pub(super) fn getlock_rec(l: &GetLock) -> String {
    format!(
        "{{ty={} start={} length={} proc_id={} client_id={}}}",
        l.ty,
        l.start,
        l.length,
        l.proc_id,
        string_or_empty(&l.client_id)
    )
}
