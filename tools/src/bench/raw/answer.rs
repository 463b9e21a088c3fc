//! What the raw server answers: for each request, the reply a file server would send
//! for a plain file or directory, of the same shape and about the same size, made
//! without any file system work (no fid table, no tree, no data).
//!
//! The one piece of state is the session's: the msize and dialect agreed by `Tversion`
//! (for framing checks, error replies and the `n_uname` of `Tattach`), the attaching
//! user's name (a 9P2000 stat names its owner, and a real server's `Rstat` carries it),
//! and a counter for the qid paths of created files.

use ninep::{
    errno, getattr, lock, qt, smode, Attr, Dialect, GetLock, Msg, Qid, Stat, StatFs, IOHDRSZ,
    MAX_MSIZE, VERSION_9P2000, VERSION_9P2000L, VERSION_UNKNOWN,
};

/// Length of every file as the raw server describes it.
const FILE_LEN: u64 = 4096;
/// The name in a 9P2000 stat: the server keeps no names, so every file has this one
/// (as long as the bench's `target`, so the `Rstat` is as long as a real server's).
const STAT_NAME: &str = "target";
/// What a `Treadlink` gets.
const LINK_TARGET: &str = "target";
/// Qid path of the attach point; walks and creates hand out paths above it.
const ROOT_PATH: u64 = 1;

/// What a reply is, once decided: a message to encode, or an `Rread` whose data the
/// connection loop writes from its own buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Msg(Msg),
    /// An `Rread` of this many bytes.
    Read(u32),
}

/// One connection's protocol state.
#[derive(Debug, Clone)]
pub struct Session {
    /// The largest msize this server agrees to.
    max_msize: u32,
    /// The agreed msize; before `Tversion`, the largest allowed.
    msize: u32,
    /// `None` until a `Tversion` of a known version.
    dialect: Option<Dialect>,
    uname: String,
    next_path: u64,
}

impl Session {
    /// A new connection's session; `max_msize` is clamped to 256..=1 MiB.
    pub fn new(max_msize: u32) -> Session {
        let max_msize = max_msize.clamp(ninep::MIN_MSIZE, MAX_MSIZE);
        Session {
            max_msize,
            msize: max_msize,
            dialect: None,
            uname: String::new(),
            next_path: ROOT_PATH + 1,
        }
    }

    /// The msize a message may not exceed.
    pub fn msize(&self) -> u32 {
        self.msize
    }

    /// The dialect to decode with: 9P2000 before `Tversion` (its `Tversion` decodes
    /// the same in both).
    pub fn decode_dialect(&self) -> Dialect {
        self.dialect.unwrap_or(Dialect::P2000)
    }

    /// The largest data payload of one `Rread`: what the msize leaves after the I/O
    /// header, as a file server's iounit.
    pub fn iounit(&self) -> u32 {
        self.msize - IOHDRSZ
    }

    /// The error reply of the session's dialect.
    pub fn error(&self, ecode: u32, ename: &str) -> Msg {
        match self.dialect {
            Some(Dialect::L) => Msg::Rlerror { ecode },
            _ => Msg::Rerror {
                ename: ename.to_owned(),
            },
        }
    }

    /// The reply to a `Tread` of `count` bytes: all of them, up to the iounit.
    pub fn read(&self, count: u32) -> Answer {
        if self.dialect.is_none() {
            return Answer::Msg(self.botch());
        }
        Answer::Read(count.min(self.iounit()))
    }

    /// The reply to a `Twrite` of `count` bytes: all of them taken.
    pub fn write(&self, count: u32) -> Msg {
        if self.dialect.is_none() {
            return self.botch();
        }
        Msg::Rwrite { count }
    }

    /// A request that makes no sense here (before `Tversion`, a reply sent as a
    /// request, a message of the other dialect).
    fn botch(&self) -> Msg {
        self.error(errno::EINVAL, "protocol botch")
    }

    fn new_qid(&mut self, ty: u8) -> Qid {
        let path = self.next_path;
        self.next_path = self.next_path.wrapping_add(1).max(ROOT_PATH + 1);
        Qid {
            ty,
            version: 0,
            path,
        }
    }

    /// The reply to one decoded request.
    pub fn answer(&mut self, msg: Msg) -> Answer {
        if let Msg::Tversion { msize, version } = msg {
            return Answer::Msg(self.version(msize, &version));
        }
        let Some(dialect) = self.dialect else {
            return Answer::Msg(self.botch());
        };
        let reply = match msg {
            Msg::Tread { count, .. } => return self.read(count),
            Msg::Twrite { data, .. } => Msg::Rwrite {
                count: data.len() as u32,
            },
            Msg::Tauth { .. } => self.error(errno::EOPNOTSUPP, "authentication not required"),
            Msg::Tattach { uname, .. } => {
                self.uname = uname;
                Msg::Rattach { qid: root_qid() }
            }
            Msg::Tflush { .. } => Msg::Rflush,
            Msg::Twalk { wnames, .. } => Msg::Rwalk {
                wqids: walk_qids(wnames.len()),
            },
            Msg::Tclunk { .. } => Msg::Rclunk,
            Msg::Tremove { .. } => Msg::Rremove,
            other => match dialect {
                Dialect::P2000 => self.answer_p2000(other),
                Dialect::L => self.answer_linux(other),
            },
        };
        Answer::Msg(reply)
    }

    fn version(&mut self, msize: u32, version: &str) -> Msg {
        // A Tversion starts a new session, as in every server.
        *self = Session::new(self.max_msize);
        self.msize = msize.clamp(ninep::MIN_MSIZE, self.max_msize);
        // "9P2000.L" and "9P2000" may carry a suffix after a dot (9P2000.u): answer
        // the longest version this server speaks that the string starts with.
        let version = if version.starts_with(VERSION_9P2000L) {
            self.dialect = Some(Dialect::L);
            VERSION_9P2000L
        } else if version.starts_with(VERSION_9P2000) {
            self.dialect = Some(Dialect::P2000);
            VERSION_9P2000
        } else {
            VERSION_UNKNOWN
        };
        Msg::Rversion {
            msize: self.msize,
            version: version.to_owned(),
        }
    }

    fn answer_p2000(&mut self, msg: Msg) -> Msg {
        let iounit = self.iounit();
        match msg {
            Msg::Topen { .. } => Msg::Ropen {
                qid: file_qid(),
                iounit,
            },
            Msg::Tcreate { perm, .. } => {
                let ty = if perm & ninep::dm::DIR != 0 {
                    qt::DIR
                } else {
                    qt::FILE
                };
                Msg::Rcreate {
                    qid: self.new_qid(ty),
                    iounit,
                }
            }
            Msg::Tstat { .. } => Msg::Rstat {
                stat: Stat {
                    ty: 0,
                    dev: 0,
                    qid: file_qid(),
                    mode: 0o644,
                    atime: 0,
                    mtime: 0,
                    length: FILE_LEN,
                    name: STAT_NAME.to_owned(),
                    uid: self.uname.clone(),
                    gid: self.uname.clone(),
                    muid: self.uname.clone(),
                },
            },
            Msg::Twstat { .. } => Msg::Rwstat,
            _ => self.botch(),
        }
    }

    fn answer_linux(&mut self, msg: Msg) -> Msg {
        let iounit = self.iounit();
        match msg {
            Msg::Tstatfs { .. } => Msg::Rstatfs {
                statfs: StatFs {
                    ty: 0x0102_1997, // V9FS_MAGIC
                    bsize: 4096,
                    blocks: 1 << 20,
                    bfree: 1 << 20,
                    bavail: 1 << 20,
                    files: 1 << 20,
                    ffree: 1 << 20,
                    fsid: 0,
                    namelen: 255,
                },
            },
            Msg::Tlopen { .. } => Msg::Rlopen {
                qid: file_qid(),
                iounit,
            },
            Msg::Tlcreate { .. } => Msg::Rlcreate {
                qid: self.new_qid(qt::FILE),
                iounit,
            },
            Msg::Tsymlink { .. } => Msg::Rsymlink {
                qid: self.new_qid(qt::SYMLINK),
            },
            Msg::Tmknod { .. } => Msg::Rmknod {
                qid: self.new_qid(qt::FILE),
            },
            Msg::Trename { .. } => Msg::Rrename,
            Msg::Treadlink { .. } => Msg::Rreadlink {
                target: LINK_TARGET.to_owned(),
            },
            Msg::Tgetattr { request_mask, .. } => Msg::Rgetattr {
                attr: file_attr(request_mask),
            },
            Msg::Tsetattr { .. } => Msg::Rsetattr,
            Msg::Txattrwalk { .. } => Msg::Rxattrwalk { size: 0 },
            Msg::Txattrcreate { .. } => Msg::Rxattrcreate,
            // An empty directory: what a listing past the last entry returns.
            Msg::Treaddir { .. } => Msg::Rreaddir { data: Vec::new() },
            Msg::Tfsync { .. } => Msg::Rfsync,
            Msg::Tlock { .. } => Msg::Rlock {
                status: lock::STATUS_SUCCESS,
            },
            Msg::Tgetlock { lock: asked, .. } => Msg::Rgetlock {
                lock: GetLock {
                    ty: lock::TYPE_UNLCK,
                    ..asked
                },
            },
            Msg::Tlink { .. } => Msg::Rlink,
            Msg::Tmkdir { .. } => Msg::Rmkdir {
                qid: self.new_qid(qt::DIR),
            },
            Msg::Trenameat { .. } => Msg::Rrenameat,
            Msg::Tunlinkat { .. } => Msg::Runlinkat,
            _ => self.botch(),
        }
    }
}

fn root_qid() -> Qid {
    Qid {
        ty: qt::DIR,
        version: 0,
        path: ROOT_PATH,
    }
}

fn file_qid() -> Qid {
    Qid {
        ty: qt::FILE,
        version: 0,
        path: ROOT_PATH + 1,
    }
}

/// One qid a name: directories on the way, a file at the end (the server keeps no tree,
/// so every walk succeeds).
fn walk_qids(n: usize) -> Vec<Qid> {
    (0..n)
        .map(|i| Qid {
            ty: if i + 1 == n { qt::FILE } else { qt::DIR },
            version: 0,
            path: ROOT_PATH + 1 + i as u64,
        })
        .collect()
}

/// The attributes of a 4 KiB regular file, the fields asked for (at least the basic
/// ones, which every server fills) marked valid.
fn file_attr(request_mask: u64) -> Attr {
    Attr {
        valid: (request_mask | getattr::BASIC) & getattr::ALL,
        qid: file_qid(),
        mode: smode::IFREG | 0o644,
        uid: 0,
        gid: 0,
        nlink: 1,
        rdev: 0,
        size: FILE_LEN,
        blksize: 4096,
        blocks: FILE_LEN.div_ceil(512),
        ..Attr::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(dialect: &str) -> Session {
        let mut s = Session::new(MAX_MSIZE);
        s.answer(Msg::Tversion {
            msize: 8192,
            version: dialect.into(),
        });
        s
    }

    fn msg(a: Answer) -> Msg {
        match a {
            Answer::Msg(m) => m,
            Answer::Read(n) => panic!("Rread of {n}"),
        }
    }

    #[test]
    fn version_picks_the_dialect_and_caps_the_msize() {
        let mut s = Session::new(65536 + 24);
        let r = s.answer(Msg::Tversion {
            msize: 1 << 20,
            version: "9P2000.L".into(),
        });
        assert_eq!(
            msg(r),
            Msg::Rversion {
                msize: 65536 + 24,
                version: "9P2000.L".into()
            }
        );
        assert_eq!(s.decode_dialect(), Dialect::L);
        let r = s.answer(Msg::Tversion {
            msize: 8192,
            version: "9P2000.u".into(),
        });
        assert_eq!(
            msg(r),
            Msg::Rversion {
                msize: 8192,
                version: "9P2000".into()
            }
        );
        let r = s.answer(Msg::Tversion {
            msize: 8192,
            version: "9P1".into(),
        });
        assert!(matches!(msg(r), Msg::Rversion { version, .. } if version == "unknown"));
        // No dialect: every other request is a botch.
        assert!(matches!(
            msg(s.answer(Msg::Tclunk { fid: 0 })),
            Msg::Rerror { .. }
        ));
    }

    #[test]
    fn walks_get_a_qid_a_name_and_reads_their_count_up_to_the_iounit() {
        let mut s = session("9P2000.L");
        let names = |n: usize| (0..n).map(|i| format!("n{i}")).collect();
        for n in [0, 1, 5, 16] {
            let r = msg(s.answer(Msg::Twalk {
                fid: 0,
                newfid: 1,
                wnames: names(n),
            }));
            assert!(matches!(r, Msg::Rwalk { wqids } if wqids.len() == n));
        }
        assert_eq!(s.read(100), Answer::Read(100));
        assert_eq!(s.read(1 << 20), Answer::Read(8192 - IOHDRSZ));
    }

    #[test]
    fn each_dialect_answers_its_own_messages_and_refuses_the_others() {
        let mut l = session("9P2000.L");
        assert!(matches!(
            msg(l.answer(Msg::Tlopen { fid: 1, flags: 0 })),
            Msg::Rlopen { iounit, .. } if iounit == 8192 - IOHDRSZ
        ));
        assert!(matches!(
            msg(l.answer(Msg::Topen { fid: 1, mode: 0 })),
            Msg::Rlerror {
                ecode: errno::EINVAL
            }
        ));
        let mut p = session("9P2000");
        assert!(matches!(
            msg(p.answer(Msg::Tstat { fid: 1 })),
            Msg::Rstat { .. }
        ));
        assert!(matches!(
            msg(p.answer(Msg::Tgetattr {
                fid: 1,
                request_mask: getattr::BASIC
            })),
            Msg::Rerror { .. }
        ));
        // A reply sent as a request is refused too.
        assert!(matches!(msg(p.answer(Msg::Rclunk)), Msg::Rerror { .. }));
    }

    #[test]
    fn created_files_get_fresh_qid_paths() {
        let mut s = session("9P2000.L");
        let create = |s: &mut Session| match msg(s.answer(Msg::Tlcreate {
            fid: 1,
            name: "f".into(),
            flags: 0,
            mode: 0o644,
            gid: 0,
        })) {
            Msg::Rlcreate { qid, .. } => qid.path,
            other => panic!("{other:?}"),
        };
        let a = create(&mut s);
        let b = create(&mut s);
        assert_ne!(a, b);
        assert!(a > ROOT_PATH && b > ROOT_PATH);
    }

    #[test]
    fn the_9p2000_stat_names_the_attaching_user() {
        let mut s = session("9P2000");
        s.answer(Msg::Tattach {
            fid: 0,
            afid: ninep::NOFID,
            uname: "glenda".into(),
            aname: String::new(),
            n_uname: None,
        });
        let Msg::Rstat { stat } = msg(s.answer(Msg::Tstat { fid: 0 })) else {
            panic!("no Rstat");
        };
        assert_eq!((stat.uid.as_str(), stat.length), ("glenda", FILE_LEN));
    }
}
