//! A mount: one 9P session over one transport, its version negotiation and attaches.

use crate::sync::Arc;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ninep::{Dialect, Fcall, Msg, IOHDRSZ, MAX_MSIZE, MIN_MSIZE, NOFID, NOTAG};

use crate::chan::{walk_fid, AttachRoot, Chan};
use crate::error::{BadReply, BrokenReason, MntError};
use crate::id::{AttachId, MountId};
use crate::mux::{check_frame, Mux};
use crate::rendez::{Interrupt, Platform};
use crate::stats::{Counters, MountStats};
use crate::transport::Transport;

/// How to start a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountOptions {
    /// The largest message we propose; clipped to 256..=1 MiB, then lowered to the
    /// server's answer.
    pub msize: u32,
    /// The dialect we ask for. A server asked for 9P2000.L may answer 9P2000, and
    /// the session then speaks 9P2000.
    pub dialect: Dialect,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            msize: 64 * 1024 + IOHDRSZ,
            dialect: Dialect::P2000,
        }
    }
}

/// Who attaches, and to what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachArgs {
    /// The user name.
    pub uname: String,
    /// The file tree to attach to ("" for the server's default).
    pub aname: String,
    /// The numeric user (9P2000.L only); also the group of files created in .L.
    pub n_uname: u32,
}

/// A mounted 9P session. Cloning gives another handle to the same mount.
///
/// A `Mount` handle does not keep the connection open: the transport is closed when
/// the last [`Chan`] of the mount is gone (or when every handle and channel is
/// gone, for a mount that never had a channel).
#[derive(Clone)]
pub struct Mount {
    id: MountId,
    mux: Arc<Mux>,
    /// Every attach made on the session (see [`Mount::attach_ids`]). A leaf lock.
    attaches: Arc<spin::Mutex<Vec<AttachId>>>,
}

impl fmt::Debug for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mount")
            .field("id", &self.id)
            .field("dialect", &self.mux.dialect())
            .field("msize", &self.mux.msize())
            .finish()
    }
}

/// The msize we ask for: the caller's wish within 256..=1 MiB.
pub fn clip_msize(want: u32) -> u32 {
    want.clamp(MIN_MSIZE, MAX_MSIZE)
}

impl Mount {
    /// Starts a session on `transport`: `Tversion`, msize and dialect negotiation.
    ///
    /// `Tversion` cannot be flushed, so an interrupt during it gives up the
    /// connection. On any error the transport is closed.
    pub fn version(
        transport: Box<dyn Transport>,
        platform: Arc<dyn Platform>,
        opts: &MountOptions,
        intr: &Interrupt,
    ) -> Result<Mount, MntError> {
        let counters = Counters::new();
        match negotiate(transport.as_ref(), opts, intr, &counters) {
            Ok((dialect, msize)) => {
                let id = MountId::next();
                log::debug!("mnt: {id} speaks {} msize {msize}", dialect.version_str());
                Ok(Mount {
                    id,
                    mux: Arc::new(Mux::new(transport, platform, dialect, msize, counters)),
                    attaches: Arc::default(),
                })
            }
            Err(e) => {
                transport.close();
                Err(e)
            }
        }
    }

    /// Attaches to the server's tree `args.aname` as `args.uname`: the root channel.
    pub fn attach(&self, args: &AttachArgs, intr: &Interrupt) -> Result<Chan, MntError> {
        let fid = self.mux.new_chan_fid()?;
        let attach = AttachId::next();
        let msg = Msg::Tattach {
            fid,
            afid: NOFID,
            uname: args.uname.clone(),
            aname: args.aname.clone(),
            n_uname: (self.mux.dialect() == Dialect::L).then_some(args.n_uname),
        };
        match self.mux.rpc(msg, intr) {
            Ok(Msg::Rattach { qid }) if self.mux.dialect() == Dialect::P2000 => {
                self.attaches.lock().push(attach);
                Ok(Chan::new(
                    self.clone(),
                    attach,
                    fid,
                    qid,
                    args.n_uname,
                    None,
                ))
            }
            Ok(Msg::Rattach { qid }) => {
                // 9P2000.L: keep the attach's fid for walks to a parent (see
                // `Chan::path`), and give the caller a clone of it.
                let root = Arc::new(AttachRoot::new(self.clone(), fid));
                let (cfid, cqid) = walk_fid(self, fid, qid, &[], intr)?;
                self.attaches.lock().push(attach);
                Ok(Chan::new(
                    self.clone(),
                    attach,
                    cfid,
                    cqid,
                    args.n_uname,
                    Some(root),
                ))
            }
            Ok(other) => {
                self.mux.abandon_fid(fid);
                self.mux.chan_gone();
                Err(self.wrong_reply(ninep::mtype::TATTACH, &other))
            }
            Err(e) => {
                self.forget_new_fid(fid, &e);
                self.mux.chan_gone();
                Err(e)
            }
        }
    }

    /// This mount's id (never reused).
    pub fn id(&self) -> MountId {
        self.id
    }

    /// The ids of the attaches made on this session so far, oldest first: every `dev` its
    /// files' [`FileKey`](crate::FileKey)s can have, so a kernel can forget what it cached
    /// of them when the mount is gone.
    pub fn attach_ids(&self) -> Vec<AttachId> {
        self.attaches.lock().clone()
    }

    /// The negotiated dialect.
    pub fn dialect(&self) -> Dialect {
        self.mux.dialect()
    }

    /// The negotiated msize.
    pub fn msize(&self) -> u32 {
        self.mux.msize()
    }

    /// The largest data count of one read or write: msize less the header.
    pub fn max_iounit(&self) -> u32 {
        self.mux.msize() - IOHDRSZ
    }

    /// A copy of the statistics.
    pub fn stats(&self) -> MountStats {
        self.mux.stats()
    }

    /// Why the server is considered broken, if it is.
    pub fn broken(&self) -> Option<BrokenReason> {
        self.mux.broken()
    }

    /// How many channels of this mount live (the last one's release closes the transport).
    /// A mount hung up by force can be closed with channels still live.
    pub fn channels(&self) -> usize {
        self.mux.channels()
    }

    /// Whether the transport has been closed.
    pub fn is_closed(&self) -> bool {
        self.mux.is_closed()
    }

    /// Closes the transport now: every request in flight and every later one fails
    /// with [`MntError::Hungup`] (an unmount by force, or a dead server given up).
    pub fn hangup(&self) {
        self.mux.shut(MntError::Hungup);
    }

    pub(crate) fn mux(&self) -> &Mux {
        &self.mux
    }

    /// After a request that would have created `fid` failed: an error reply means the
    /// server never made it, so it is free; otherwise nobody knows, so abandon it.
    pub(crate) fn forget_new_fid(&self, fid: u32, e: &MntError) {
        match e {
            MntError::Server(_) | MntError::Errno(_) => self.mux.release_fid(fid),
            // Never sent: the server never heard of it.
            MntError::Encode(_) | MntError::TooLarge { .. } | MntError::NoTags => {
                self.mux.release_fid(fid)
            }
            _ => self.mux.abandon_fid(fid),
        }
    }

    /// A reply of a type the request cannot have. The dispatcher already refuses
    /// these, so this is defence in depth: break the mount, never panic.
    pub(crate) fn wrong_reply(&self, sent: u8, got: &Msg) -> MntError {
        let bad = BadReply::WrongType {
            sent,
            got: got.mtype(),
        };
        self.mux.break_mount(bad.clone(), None);
        MntError::BadReply(bad)
    }
}

/// `Tversion`/`Rversion` on a fresh transport, before anyone else uses it.
fn negotiate(
    transport: &dyn Transport,
    opts: &MountOptions,
    intr: &Interrupt,
    counters: &Counters,
) -> Result<(Dialect, u32), MntError> {
    let want = clip_msize(opts.msize);
    let mut buf = Vec::new();
    let tversion = Fcall {
        tag: NOTAG,
        msg: Msg::Tversion {
            msize: want,
            version: String::from(opts.dialect.version_str()),
        },
    };
    ninep::encode(&tversion, &mut buf).map_err(MntError::Encode)?;
    if intr.take() {
        return Err(MntError::Interrupted);
    }
    transport.send(&buf).map_err(MntError::Transport)?;
    counters.sent(ninep::mtype::TVERSION);
    let reply = match transport.recv(intr) {
        Ok(r) => r,
        Err(crate::error::TransportError::Interrupted) => {
            intr.take();
            return Err(MntError::Interrupted);
        }
        Err(e) => return Err(MntError::Transport(e)),
    };
    check_frame(&reply, want).map_err(MntError::BadReply)?;
    let fc = ninep::decode(&reply, opts.dialect)
        .map_err(|e| MntError::BadReply(BadReply::Decode(e.kind)))?;
    counters.replied();
    let (msize, version) = match fc {
        Fcall {
            tag: NOTAG,
            msg: Msg::Rversion { msize, version },
        } => (msize, version),
        _ => return Err(MntError::BadReply(BadReply::BadVersionReply)),
    };
    let dialect = if version == opts.dialect.version_str() {
        opts.dialect
    } else if version == ninep::VERSION_9P2000 {
        // A server may offer the older protocol instead (version(5)).
        Dialect::P2000
    } else {
        return Err(MntError::VersionRefused(version));
    };
    if msize < MIN_MSIZE {
        return Err(MntError::BadReply(BadReply::MsizeTooSmall(msize)));
    }
    // A server must not raise the msize; if it does, keep ours.
    Ok((dialect, msize.min(want)))
}
