//! File operations in either dialect: the request each one takes, and synchronous
//! versions for setting up and tearing down a benchmark's files.

use ninep::{errno, lflags, om, Dialect, Msg, AT_REMOVEDIR, IOHDRSZ};

use super::client::{ClientError, Conn, ServerRefusal};

/// Permissions of every file the benchmark creates.
pub const FILE_PERM: u32 = 0o644;
/// Permissions of the benchmark's directory.
pub const DIR_PERM: u32 = 0o755;
/// The group of created files in 9P2000.L (the attaching user's own, root).
const GID: u32 = 0;

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// `Tlopen` or `Topen` of `fid`.
pub fn open_msg(dialect: Dialect, fid: u32, access: Access) -> Msg {
    match dialect {
        Dialect::L => Msg::Tlopen {
            fid,
            flags: match access {
                Access::Read => lflags::RDONLY,
                Access::Write => lflags::WRONLY,
            },
        },
        Dialect::P2000 => Msg::Topen {
            fid,
            mode: match access {
                Access::Read => om::READ,
                Access::Write => om::WRITE,
            },
        },
    }
}

/// `Tlcreate` or `Tcreate` of a regular file `name` in the directory `fid`, opened for
/// writing and truncated; afterwards `fid` is the new file.
pub fn create_msg(dialect: Dialect, fid: u32, name: &str) -> Msg {
    match dialect {
        Dialect::L => Msg::Tlcreate {
            fid,
            name: name.into(),
            flags: lflags::WRONLY | lflags::CREAT | lflags::TRUNC,
            mode: FILE_PERM,
            gid: GID,
        },
        Dialect::P2000 => Msg::Tcreate {
            fid,
            name: name.into(),
            perm: FILE_PERM,
            mode: om::WRITE | om::TRUNC,
        },
    }
}

/// The `iounit` of an `Rlopen`, `Ropen`, `Rlcreate` or `Rcreate`.
pub fn opened_iounit(request: &'static str, msg: Msg) -> Result<u32, ClientError> {
    match msg {
        Msg::Rlopen { iounit, .. }
        | Msg::Ropen { iounit, .. }
        | Msg::Rlcreate { iounit, .. }
        | Msg::Rcreate { iounit, .. } => Ok(iounit),
        other => Err(unexpected(request, &other)),
    }
}

/// The error for a reply of the wrong type.
pub fn unexpected(request: &'static str, reply: &Msg) -> ClientError {
    ClientError::UnexpectedReply {
        request,
        reply: reply.name(),
    }
}

/// The largest data payload one `Tread`/`Twrite` may carry: what the msize leaves after
/// the I/O header, and no more than the server's `iounit` when it gave one.
pub fn chunk_len(msize: u32, iounit: u32) -> u32 {
    let by_msize = msize.saturating_sub(IOHDRSZ);
    if iounit == 0 {
        by_msize
    } else {
        by_msize.min(iounit)
    }
}

/// Walks `fid` to `newfid` through `names` (none: a clone), all of them or an error.
pub fn walk(conn: &mut Conn, fid: u32, newfid: u32, names: &[&str]) -> Result<(), ClientError> {
    let wnames = names.iter().map(|n| (*n).to_owned()).collect();
    match conn
        .rpc(Msg::Twalk {
            fid,
            newfid,
            wnames,
        })?
        .into_msg("Twalk")?
    {
        Msg::Rwalk { wqids } if wqids.len() == names.len() => Ok(()),
        Msg::Rwalk { wqids } => Err(ClientError::WalkStopped {
            name: names.join("/"),
            walked: wqids.len(),
            wanted: names.len(),
        }),
        other => Err(unexpected("Twalk", &other)),
    }
}

/// Opens `fid`; returns the server's iounit.
pub fn open(conn: &mut Conn, fid: u32, access: Access) -> Result<u32, ClientError> {
    let msg = open_msg(conn.dialect(), fid, access);
    let name = msg.name();
    opened_iounit(name, conn.rpc(msg)?.into_msg(name)?)
}

/// Creates `name` in the directory `dir_fid` and leaves it open for writing as `fid`;
/// returns the server's iounit.
pub fn create(conn: &mut Conn, dir_fid: u32, fid: u32, name: &str) -> Result<u32, ClientError> {
    walk(conn, dir_fid, fid, &[])?;
    let msg = create_msg(conn.dialect(), fid, name);
    let request = msg.name();
    opened_iounit(request, conn.rpc(msg)?.into_msg(request)?)
}

/// Makes the directory `name` in `dir_fid`; `scratch_fid` must be free.
pub fn mkdir(
    conn: &mut Conn,
    dir_fid: u32,
    scratch_fid: u32,
    name: &str,
) -> Result<(), ClientError> {
    match conn.dialect() {
        Dialect::L => {
            let msg = Msg::Tmkdir {
                dfid: dir_fid,
                name: name.into(),
                mode: DIR_PERM,
                gid: GID,
            };
            match conn.rpc(msg)?.into_msg("Tmkdir")? {
                Msg::Rmkdir { .. } => Ok(()),
                other => Err(unexpected("Tmkdir", &other)),
            }
        }
        Dialect::P2000 => {
            walk(conn, dir_fid, scratch_fid, &[])?;
            let msg = Msg::Tcreate {
                fid: scratch_fid,
                name: name.into(),
                perm: ninep::dm::DIR | DIR_PERM,
                mode: om::READ,
            };
            match conn.rpc(msg)?.into_msg("Tcreate")? {
                Msg::Rcreate { .. } => clunk(conn, scratch_fid),
                other => Err(unexpected("Tcreate", &other)),
            }
        }
    }
}

/// How a server removes files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveBy {
    /// `Tunlinkat` of a name in a directory (9P2000.L).
    Unlinkat,
    /// `Tremove` of a walked fid (9P2000, and 9P2000.L servers without `Tunlinkat`,
    /// such as diod: Linux's v9fs falls back the same way).
    Tremove,
}

impl RemoveBy {
    /// The request that removes: "Tunlinkat" or "Tremove".
    pub fn request(self) -> &'static str {
        match self {
            RemoveBy::Unlinkat => "Tunlinkat",
            RemoveBy::Tremove => "Tremove",
        }
    }
}

/// Removes `name` (a directory when `is_dir`) from `dir_fid`; `scratch_fid` must be free.
pub fn remove(
    conn: &mut Conn,
    by: RemoveBy,
    dir_fid: u32,
    scratch_fid: u32,
    name: &str,
    is_dir: bool,
) -> Result<(), ClientError> {
    match by {
        RemoveBy::Unlinkat => {
            let msg = Msg::Tunlinkat {
                dirfd: dir_fid,
                name: name.into(),
                flags: if is_dir { AT_REMOVEDIR } else { 0 },
            };
            match conn.rpc(msg)?.into_msg("Tunlinkat")? {
                Msg::Runlinkat => Ok(()),
                other => Err(unexpected("Tunlinkat", &other)),
            }
        }
        RemoveBy::Tremove => {
            walk(conn, dir_fid, scratch_fid, &[name])?;
            // Tremove clunks the fid whether or not the file goes.
            match conn
                .rpc(Msg::Tremove { fid: scratch_fid })?
                .into_msg("Tremove")?
            {
                Msg::Rremove => Ok(()),
                other => Err(unexpected("Tremove", &other)),
            }
        }
    }
}

/// Finds how the server removes files by removing `name` (an existing file in
/// `dir_fid`): `Tunlinkat` in 9P2000.L unless the server says it has none.
pub fn probe_remove(
    conn: &mut Conn,
    dir_fid: u32,
    scratch_fid: u32,
    name: &str,
) -> Result<RemoveBy, ClientError> {
    if conn.dialect() == Dialect::P2000 {
        remove(conn, RemoveBy::Tremove, dir_fid, scratch_fid, name, false)?;
        return Ok(RemoveBy::Tremove);
    }
    match remove(conn, RemoveBy::Unlinkat, dir_fid, scratch_fid, name, false) {
        Ok(()) => Ok(RemoveBy::Unlinkat),
        Err(ClientError::Refused {
            refusal: ServerRefusal::Errno(errno::EOPNOTSUPP | errno::ENOSYS),
            ..
        }) => {
            remove(conn, RemoveBy::Tremove, dir_fid, scratch_fid, name, false)?;
            Ok(RemoveBy::Tremove)
        }
        Err(e) => Err(e),
    }
}

/// Forgets `fid`.
pub fn clunk(conn: &mut Conn, fid: u32) -> Result<(), ClientError> {
    match conn.rpc(Msg::Tclunk { fid })?.into_msg("Tclunk")? {
        Msg::Rclunk => Ok(()),
        other => Err(unexpected("Tclunk", &other)),
    }
}

/// Fills the open file `fid` with `len` bytes of `pattern` repeated, from offset 0, in
/// chunks of `chunk` bytes.
pub fn fill(
    conn: &mut Conn,
    fid: u32,
    len: u64,
    chunk: u32,
    pattern: &[u8],
) -> Result<(), ClientError> {
    let mut offset = 0u64;
    while offset < len {
        let n = (len - offset)
            .min(u64::from(chunk))
            .min(pattern.len() as u64) as usize;
        conn.queue_write(0, fid, offset, &pattern[..n])?;
        let count = conn.recv()?.into_count("Twrite")?;
        if count as usize != n {
            return Err(ClientError::Short {
                request: "Twrite",
                got: count,
                wanted: n as u32,
            });
        }
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_is_msize_less_header_capped_by_iounit() {
        assert_eq!(chunk_len(8192, 0), 8192 - 24);
        assert_eq!(chunk_len(65536 + 24, 0), 65536);
        assert_eq!(chunk_len(1 << 20, 4096), 4096);
        assert_eq!(chunk_len(8192, 1 << 20), 8192 - 24);
        assert_eq!(chunk_len(10, 0), 0);
    }

    #[test]
    fn requests_follow_the_dialect() {
        assert_eq!(open_msg(Dialect::L, 5, Access::Read).name(), "Tlopen");
        assert_eq!(open_msg(Dialect::P2000, 5, Access::Write).name(), "Topen");
        assert_eq!(create_msg(Dialect::L, 5, "f").name(), "Tlcreate");
        assert_eq!(create_msg(Dialect::P2000, 5, "f").name(), "Tcreate");
    }
}
