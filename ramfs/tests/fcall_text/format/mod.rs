//! [`ninep::Fcall`]s back to transcript lines, for failure reports.
//!
//! The output parses back to the same message (see the round-trip test in `tests.rs`),
//! so a reply a server sent can be pasted into a transcript once it has been judged
//! right. Field values and records are written by `values`, a message's data by `data`.

use std::fmt::Write as _;

use ninep::{Fcall, Msg};
use ninep::{NOFID, NOTAG};

use super::names::errno_name;
use data::{bytes, DataKind};
use values::{
    attr_rec, dir_mode, getlock_rec, lockreq_rec, open_mode, qid, setattr_rec, stat, statfs_rec,
    string,
};

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

mod data;
#[cfg(test)]
mod tests;
mod values;
