//! Transcript lines to [`ninep::Fcall`]s.
//!
//! ```text
//! # a comment
//! !args --max-fids 4                      (extra server arguments; before any message)
//! > Tversion tag=NOTAG msize=8192 version=9P2000
//! < Rversion tag=NOTAG msize=8192 version=9P2000
//! > Twalk tag=1 fid=0 newfid=1 wnames=[a,b]
//! < Rwalk tag=1 wqids=[(QTDIR,0,1)]
//! > raw 0700000064ffff                    (bytes sent as they are)
//! < eof                                   (the server closed the connection)
//! ```
//!
//! Field names are the Rust field names of `ninep::Msg`; every field must be given,
//! except `n_uname`, whose absence means the 9P2000 layout of `Tauth`/`Tattach`.
//! Nested records (`stat`, `attr`, `statfs`, `lock`, dirents) may omit fields, which are
//! then 0 or empty; `stat={dont_touch …}` starts from the don't-touch values instead.
//! Byte fields (`data`) take a string, `hex:…`, or a list of records: stat records in
//! `Rread`/`Twrite`, dirents in `Rreaddir`.

use ninep::{Attr, Dirent, Fcall, GetLock, LockReq, Msg, Qid, SetAttr, Stat, StatFs};

use super::lexer::{parse_fields, Record, Value};
use super::names::eval;

/// One meaningful line of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// `!args …`: extra command-line arguments for the server.
    Args(Vec<String>),
    /// `> T…`: a message to send.
    Send(Fcall),
    /// `> raw HEX`: bytes to send as they are.
    SendRaw(Vec<u8>),
    /// `< R…`: the reply expected next.
    Expect(Fcall),
    /// `< eof`: the server closes the connection next.
    ExpectEof,
}

/// Parses one line; `Ok(None)` for blank lines and comments.
pub fn parse_line(text: &str) -> Result<Option<Line>, String> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    if let Some(args) = text.strip_prefix("!args") {
        return Ok(Some(Line::Args(
            args.split_whitespace().map(str::to_owned).collect(),
        )));
    }
    let (dir, rest) = match text.split_at(1) {
        (">", r) => ('>', r.trim_start()),
        ("<", r) => ('<', r.trim_start()),
        _ => return Err("a line starts with '>', '<', '!' or '#'".into()),
    };
    let (name, fields) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match (dir, name) {
        ('>', "raw") => return Ok(Some(Line::SendRaw(hex(fields)?))),
        ('<', "eof") if fields.trim().is_empty() => return Ok(Some(Line::ExpectEof)),
        _ => {}
    }
    let rec = parse_fields(fields).map_err(|e| e.to_string())?;
    let fc = fcall(name, rec)?;
    match (dir, fc.msg.is_request()) {
        ('>', true) => Ok(Some(Line::Send(fc))),
        ('<', false) => Ok(Some(Line::Expect(fc))),
        ('>', false) => Err(format!("{name} is a reply; '>' sends requests")),
        _ => Err(format!("{name} is a request; '<' expects replies")),
    }
}

/// Hex digits, white space ignored.
pub fn hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    digits
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| format!("bad hex {:?}", String::from_utf8_lossy(p)))
        })
        .collect()
}

/// The fields of one record, taken one by one; what is left over is an error.
struct Fields {
    what: String,
    rec: Record,
    /// Fields not given are 0/empty (nested records) instead of an error (messages).
    defaults: bool,
}

impl Fields {
    fn new(what: &str, rec: Record, defaults: bool) -> Fields {
        Fields {
            what: what.to_owned(),
            rec,
            defaults,
        }
    }

    fn take(&mut self, name: &str) -> Result<Option<Value>, String> {
        match self.rec.fields.iter().position(|(n, _)| n == name) {
            Some(i) => Ok(Some(self.rec.fields.remove(i).1)),
            None if self.defaults => Ok(None),
            None => Err(format!("{}: missing field {name}", self.what)),
        }
    }

    fn err(&self, name: &str, e: impl std::fmt::Display) -> String {
        format!("{}.{name}: {e}", self.what)
    }

    fn int(&mut self, name: &str, bits: u32) -> Result<u64, String> {
        match self.take(name)? {
            None => Ok(0),
            Some(v) => int_value(&v, bits).map_err(|e| self.err(name, e)),
        }
    }
    fn u8(&mut self, name: &str) -> Result<u8, String> {
        Ok(self.int(name, 8)? as u8)
    }
    fn u16(&mut self, name: &str) -> Result<u16, String> {
        Ok(self.int(name, 16)? as u16)
    }
    fn u32(&mut self, name: &str) -> Result<u32, String> {
        Ok(self.int(name, 32)? as u32)
    }
    fn u64(&mut self, name: &str) -> Result<u64, String> {
        self.int(name, 64)
    }

    fn string(&mut self, name: &str) -> Result<String, String> {
        match self.take(name)? {
            None => Ok(String::new()),
            Some(v) => string_value(&v).map_err(|e| self.err(name, e)),
        }
    }

    fn qid(&mut self, name: &str) -> Result<Qid, String> {
        match self.take(name)? {
            None => Ok(Qid::default()),
            Some(v) => qid_value(&v).map_err(|e| self.err(name, e)),
        }
    }

    fn list(&mut self, name: &str) -> Result<Vec<Value>, String> {
        match self.take(name)? {
            None => Ok(Vec::new()),
            Some(Value::List(items)) => Ok(items),
            Some(_) => Err(self.err(name, "expected a list [..]")),
        }
    }

    fn record(&mut self, name: &str) -> Result<Record, String> {
        match self.take(name)? {
            None => Ok(Record::default()),
            Some(Value::Record(r)) => Ok(r),
            Some(_) => Err(self.err(name, "expected a record {..}")),
        }
    }

    /// Bytes; a list holds records encoded by `encode_item`.
    fn bytes(
        &mut self,
        name: &str,
        encode_item: fn(Record) -> Result<Vec<u8>, String>,
    ) -> Result<Vec<u8>, String> {
        let v = match self.take(name)? {
            None => return Ok(Vec::new()),
            Some(v) => v,
        };
        let r = match v {
            Value::Str(s) => Ok(s),
            Value::Atom(a) if a.starts_with("hex:") => hex(&a[4..]),
            Value::List(items) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Value::Record(r) => out.extend(encode_item(r)?),
                        _ => return Err(self.err(name, "list items must be records {..}")),
                    }
                }
                Ok(out)
            }
            _ => Err("expected \"string\", hex:… or a list of records".into()),
        };
        r.map_err(|e| self.err(name, e))
    }

    /// Fails if any field was not taken.
    fn done(self) -> Result<(), String> {
        if let Some((n, _)) = self.rec.fields.first() {
            return Err(format!("{}: unknown field {n}", self.what));
        }
        Ok(())
    }

    fn has_flag(&mut self, flag: &str) -> bool {
        match self.rec.flags.iter().position(|f| f == flag) {
            Some(i) => {
                self.rec.flags.remove(i);
                true
            }
            None => false,
        }
    }

    fn no_flags(&self) -> Result<(), String> {
        match self.rec.flags.first() {
            Some(f) => Err(format!("{}: unexpected word {f}", self.what)),
            None => Ok(()),
        }
    }
}

fn int_value(v: &Value, bits: u32) -> Result<u64, String> {
    match v {
        Value::Atom(a) => eval(a, bits),
        _ => Err("expected a number".into()),
    }
}

fn string_value(v: &Value) -> Result<String, String> {
    match v {
        Value::Atom(a) => Ok(a.clone()),
        Value::Str(s) => String::from_utf8(s.clone()).map_err(|_| "not UTF-8".to_string()),
        _ => Err("expected a string".into()),
    }
}

fn qid_value(v: &Value) -> Result<Qid, String> {
    match v {
        Value::Tuple(t) if t.len() == 3 => Ok(Qid {
            ty: int_value(&t[0], 8)? as u8,
            version: int_value(&t[1], 32)? as u32,
            path: int_value(&t[2], 64)?,
        }),
        _ => Err("expected a qid (ty,version,path)".into()),
    }
}

/// A `stat={…}` record.
pub fn stat_record(rec: Record) -> Result<Stat, String> {
    let mut f = Fields::new("stat", rec, true);
    let base = if f.has_flag("dont_touch") {
        Stat::dont_touch()
    } else {
        Stat::default()
    };
    f.no_flags()?;
    // Fields not given keep the base value (zero or don't-touch).
    let mut st = base;
    if let Some(v) = f.take("ty")? {
        st.ty = int_value(&v, 16)? as u16;
    }
    if let Some(v) = f.take("dev")? {
        st.dev = int_value(&v, 32)? as u32;
    }
    if let Some(v) = f.take("qid")? {
        st.qid = qid_value(&v)?;
    }
    if let Some(v) = f.take("mode")? {
        st.mode = int_value(&v, 32)? as u32;
    }
    if let Some(v) = f.take("atime")? {
        st.atime = int_value(&v, 32)? as u32;
    }
    if let Some(v) = f.take("mtime")? {
        st.mtime = int_value(&v, 32)? as u32;
    }
    if let Some(v) = f.take("length")? {
        st.length = int_value(&v, 64)?;
    }
    if let Some(v) = f.take("name")? {
        st.name = string_value(&v)?;
    }
    if let Some(v) = f.take("uid")? {
        st.uid = string_value(&v)?;
    }
    if let Some(v) = f.take("gid")? {
        st.gid = string_value(&v)?;
    }
    if let Some(v) = f.take("muid")? {
        st.muid = string_value(&v)?;
    }
    f.done()?;
    Ok(st)
}

fn stat_bytes(rec: Record) -> Result<Vec<u8>, String> {
    let st = stat_record(rec)?;
    let mut out = Vec::new();
    st.encode(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn dirent_bytes(rec: Record) -> Result<Vec<u8>, String> {
    let mut f = Fields::new("dirent", rec, true);
    f.no_flags()?;
    let d = Dirent {
        qid: f.qid("qid")?,
        offset: f.u64("offset")?,
        ty: f.u8("ty")?,
        name: f.string("name")?,
    };
    f.done()?;
    let mut out = Vec::new();
    d.encode(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn attr_record(rec: Record) -> Result<Attr, String> {
    let mut f = Fields::new("attr", rec, true);
    f.no_flags()?;
    let a = Attr {
        valid: f.u64("valid")?,
        qid: f.qid("qid")?,
        mode: f.u32("mode")?,
        uid: f.u32("uid")?,
        gid: f.u32("gid")?,
        nlink: f.u64("nlink")?,
        rdev: f.u64("rdev")?,
        size: f.u64("size")?,
        blksize: f.u64("blksize")?,
        blocks: f.u64("blocks")?,
        atime_sec: f.u64("atime_sec")?,
        atime_nsec: f.u64("atime_nsec")?,
        mtime_sec: f.u64("mtime_sec")?,
        mtime_nsec: f.u64("mtime_nsec")?,
        ctime_sec: f.u64("ctime_sec")?,
        ctime_nsec: f.u64("ctime_nsec")?,
        btime_sec: f.u64("btime_sec")?,
        btime_nsec: f.u64("btime_nsec")?,
        gen: f.u64("gen")?,
        data_version: f.u64("data_version")?,
    };
    f.done()?;
    Ok(a)
}

fn setattr_record(rec: Record) -> Result<SetAttr, String> {
    let mut f = Fields::new("attr", rec, true);
    f.no_flags()?;
    let a = SetAttr {
        valid: f.u32("valid")?,
        mode: f.u32("mode")?,
        uid: f.u32("uid")?,
        gid: f.u32("gid")?,
        size: f.u64("size")?,
        atime_sec: f.u64("atime_sec")?,
        atime_nsec: f.u64("atime_nsec")?,
        mtime_sec: f.u64("mtime_sec")?,
        mtime_nsec: f.u64("mtime_nsec")?,
    };
    f.done()?;
    Ok(a)
}

fn statfs_record(rec: Record) -> Result<StatFs, String> {
    let mut f = Fields::new("statfs", rec, true);
    f.no_flags()?;
    let s = StatFs {
        ty: f.u32("ty")?,
        bsize: f.u32("bsize")?,
        blocks: f.u64("blocks")?,
        bfree: f.u64("bfree")?,
        bavail: f.u64("bavail")?,
        files: f.u64("files")?,
        ffree: f.u64("ffree")?,
        fsid: f.u64("fsid")?,
        namelen: f.u32("namelen")?,
    };
    f.done()?;
    Ok(s)
}

fn lockreq_record(rec: Record) -> Result<LockReq, String> {
    let mut f = Fields::new("lock", rec, true);
    f.no_flags()?;
    let l = LockReq {
        ty: f.u8("ty")?,
        flags: f.u32("flags")?,
        start: f.u64("start")?,
        length: f.u64("length")?,
        proc_id: f.u32("proc_id")?,
        client_id: f.string("client_id")?,
    };
    f.done()?;
    Ok(l)
}

fn getlock_record(rec: Record) -> Result<GetLock, String> {
    let mut f = Fields::new("lock", rec, true);
    f.no_flags()?;
    let l = GetLock {
        ty: f.u8("ty")?,
        start: f.u64("start")?,
        length: f.u64("length")?,
        proc_id: f.u32("proc_id")?,
        client_id: f.string("client_id")?,
    };
    f.done()?;
    Ok(l)
}

/// Builds the message `name` from its fields.
fn fcall(name: &str, rec: Record) -> Result<Fcall, String> {
    let mut f = Fields::new(name, rec, false);
    f.no_flags()?;
    let tag = f.u16("tag")?;
    let msg = match name {
        "Tversion" => Msg::Tversion {
            msize: f.u32("msize")?,
            version: f.string("version")?,
        },
        "Rversion" => Msg::Rversion {
            msize: f.u32("msize")?,
            version: f.string("version")?,
        },
        "Tauth" => Msg::Tauth {
            afid: f.u32("afid")?,
            uname: f.string("uname")?,
            aname: f.string("aname")?,
            n_uname: optional_u32(&mut f, "n_uname")?,
        },
        "Rauth" => Msg::Rauth {
            aqid: f.qid("aqid")?,
        },
        "Tattach" => Msg::Tattach {
            fid: f.u32("fid")?,
            afid: f.u32("afid")?,
            uname: f.string("uname")?,
            aname: f.string("aname")?,
            n_uname: optional_u32(&mut f, "n_uname")?,
        },
        "Rattach" => Msg::Rattach { qid: f.qid("qid")? },
        "Rerror" => Msg::Rerror {
            ename: f.string("ename")?,
        },
        "Tflush" => Msg::Tflush {
            oldtag: f.u16("oldtag")?,
        },
        "Rflush" => Msg::Rflush,
        "Twalk" => Msg::Twalk {
            fid: f.u32("fid")?,
            newfid: f.u32("newfid")?,
            wnames: f
                .list("wnames")?
                .iter()
                .map(string_value)
                .collect::<Result<_, _>>()?,
        },
        "Rwalk" => Msg::Rwalk {
            wqids: f
                .list("wqids")?
                .iter()
                .map(qid_value)
                .collect::<Result<_, _>>()?,
        },
        "Topen" => Msg::Topen {
            fid: f.u32("fid")?,
            mode: f.u8("mode")?,
        },
        "Ropen" => Msg::Ropen {
            qid: f.qid("qid")?,
            iounit: f.u32("iounit")?,
        },
        "Tcreate" => Msg::Tcreate {
            fid: f.u32("fid")?,
            name: f.string("name")?,
            perm: f.u32("perm")?,
            mode: f.u8("mode")?,
        },
        "Rcreate" => Msg::Rcreate {
            qid: f.qid("qid")?,
            iounit: f.u32("iounit")?,
        },
        "Tread" => Msg::Tread {
            fid: f.u32("fid")?,
            offset: f.u64("offset")?,
            count: f.u32("count")?,
        },
        "Rread" => Msg::Rread {
            data: f.bytes("data", stat_bytes)?,
        },
        "Twrite" => Msg::Twrite {
            fid: f.u32("fid")?,
            offset: f.u64("offset")?,
            data: f.bytes("data", stat_bytes)?,
        },
        "Rwrite" => Msg::Rwrite {
            count: f.u32("count")?,
        },
        "Tclunk" => Msg::Tclunk { fid: f.u32("fid")? },
        "Rclunk" => Msg::Rclunk,
        "Tremove" => Msg::Tremove { fid: f.u32("fid")? },
        "Rremove" => Msg::Rremove,
        "Tstat" => Msg::Tstat { fid: f.u32("fid")? },
        "Rstat" => Msg::Rstat {
            stat: stat_record(f.record("stat")?)?,
        },
        "Twstat" => Msg::Twstat {
            fid: f.u32("fid")?,
            stat: stat_record(f.record("stat")?)?,
        },
        "Rwstat" => Msg::Rwstat,
        "Rlerror" => Msg::Rlerror {
            ecode: f.u32("ecode")?,
        },
        "Tstatfs" => Msg::Tstatfs { fid: f.u32("fid")? },
        "Rstatfs" => Msg::Rstatfs {
            statfs: statfs_record(f.record("statfs")?)?,
        },
        "Tlopen" => Msg::Tlopen {
            fid: f.u32("fid")?,
            flags: f.u32("flags")?,
        },
        "Rlopen" => Msg::Rlopen {
            qid: f.qid("qid")?,
            iounit: f.u32("iounit")?,
        },
        "Tlcreate" => Msg::Tlcreate {
            fid: f.u32("fid")?,
            name: f.string("name")?,
            flags: f.u32("flags")?,
            mode: f.u32("mode")?,
            gid: f.u32("gid")?,
        },
        "Rlcreate" => Msg::Rlcreate {
            qid: f.qid("qid")?,
            iounit: f.u32("iounit")?,
        },
        "Tsymlink" => Msg::Tsymlink {
            fid: f.u32("fid")?,
            name: f.string("name")?,
            symtgt: f.string("symtgt")?,
            gid: f.u32("gid")?,
        },
        "Rsymlink" => Msg::Rsymlink { qid: f.qid("qid")? },
        "Tmknod" => Msg::Tmknod {
            dfid: f.u32("dfid")?,
            name: f.string("name")?,
            mode: f.u32("mode")?,
            major: f.u32("major")?,
            minor: f.u32("minor")?,
            gid: f.u32("gid")?,
        },
        "Rmknod" => Msg::Rmknod { qid: f.qid("qid")? },
        "Trename" => Msg::Trename {
            fid: f.u32("fid")?,
            dfid: f.u32("dfid")?,
            name: f.string("name")?,
        },
        "Rrename" => Msg::Rrename,
        "Treadlink" => Msg::Treadlink { fid: f.u32("fid")? },
        "Rreadlink" => Msg::Rreadlink {
            target: f.string("target")?,
        },
        "Tgetattr" => Msg::Tgetattr {
            fid: f.u32("fid")?,
            request_mask: f.u64("request_mask")?,
        },
        "Rgetattr" => Msg::Rgetattr {
            attr: attr_record(f.record("attr")?)?,
        },
        "Tsetattr" => Msg::Tsetattr {
            fid: f.u32("fid")?,
            attr: setattr_record(f.record("attr")?)?,
        },
        "Rsetattr" => Msg::Rsetattr,
        "Txattrwalk" => Msg::Txattrwalk {
            fid: f.u32("fid")?,
            newfid: f.u32("newfid")?,
            name: f.string("name")?,
        },
        "Rxattrwalk" => Msg::Rxattrwalk {
            size: f.u64("size")?,
        },
        "Txattrcreate" => Msg::Txattrcreate {
            fid: f.u32("fid")?,
            name: f.string("name")?,
            attr_size: f.u64("attr_size")?,
            flags: f.u32("flags")?,
        },
        "Rxattrcreate" => Msg::Rxattrcreate,
        "Treaddir" => Msg::Treaddir {
            fid: f.u32("fid")?,
            offset: f.u64("offset")?,
            count: f.u32("count")?,
        },
        "Rreaddir" => Msg::Rreaddir {
            data: f.bytes("data", dirent_bytes)?,
        },
        "Tfsync" => Msg::Tfsync {
            fid: f.u32("fid")?,
            datasync: f.u32("datasync")?,
        },
        "Rfsync" => Msg::Rfsync,
        "Tlock" => Msg::Tlock {
            fid: f.u32("fid")?,
            lock: lockreq_record(f.record("lock")?)?,
        },
        "Rlock" => Msg::Rlock {
            status: f.u8("status")?,
        },
        "Tgetlock" => Msg::Tgetlock {
            fid: f.u32("fid")?,
            lock: getlock_record(f.record("lock")?)?,
        },
        "Rgetlock" => Msg::Rgetlock {
            lock: getlock_record(f.record("lock")?)?,
        },
        "Tlink" => Msg::Tlink {
            dfid: f.u32("dfid")?,
            fid: f.u32("fid")?,
            name: f.string("name")?,
        },
        "Rlink" => Msg::Rlink,
        "Tmkdir" => Msg::Tmkdir {
            dfid: f.u32("dfid")?,
            name: f.string("name")?,
            mode: f.u32("mode")?,
            gid: f.u32("gid")?,
        },
        "Rmkdir" => Msg::Rmkdir { qid: f.qid("qid")? },
        "Trenameat" => Msg::Trenameat {
            olddirfid: f.u32("olddirfid")?,
            oldname: f.string("oldname")?,
            newdirfid: f.u32("newdirfid")?,
            newname: f.string("newname")?,
        },
        "Rrenameat" => Msg::Rrenameat,
        "Tunlinkat" => Msg::Tunlinkat {
            dirfd: f.u32("dirfd")?,
            name: f.string("name")?,
            flags: f.u32("flags")?,
        },
        "Runlinkat" => Msg::Runlinkat,
        _ => return Err(format!("unknown message {name}")),
    };
    f.done()?;
    Ok(Fcall { tag, msg })
}

fn optional_u32(f: &mut Fields, name: &str) -> Result<Option<u32>, String> {
    if f.rec.fields.iter().any(|(n, _)| n == name) {
        Ok(Some(f.u32(name)?))
    } else {
        Ok(None)
    }
}
