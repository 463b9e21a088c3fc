//! Who a connection's client may attach as: the one check between what a transport
//! knows of its peer ([`PeerCred`]) and the identity a `Tattach` claims.
//!
//! The rule is documented on [`AttachRule`].

use ninep::Dialect;

use crate::fs::Tree;
use crate::transport::PeerCred;

/// The `n_uname` of a 9P2000.L attach that names its user by `uname` instead.
const NO_UNAME: u32 = u32::MAX;

/// The uid the kernel treats as privileged.
const ROOT_UID: u32 = 0;

/// Who a connection may attach as.
///
/// 9P2000 as ramfs serves it has no authentication (`Tauth` is refused), so an attach
/// name is only a claim. The rule:
///
/// - **unix socket, root peer (uid 0):** believed. Root could read and change the
///   server's memory anyway; it is also who mounts for Linux's v9fs.
/// - **unix socket, any other peer:** may attach only as its own uid. The identity an
///   attach claims is resolved to a number through the tree's one registry of names and
///   numbers (see `fs::users`), without registering anything. A 9P2000.L attach names
///   its number (`n_uname`). A 9P2000 attach, or a 9P2000.L one whose `n_uname` is ~0,
///   names a user: a registered name stands for its number, and a name not registered
///   yet only for the number of its own digits while that number has no name. So a peer
///   of uid 1000 attaches as "1000", or as the name registered for 1000 if it has one.
///   Any other name, an unknown one included, is refused ("Operation not permitted",
///   `EPERM`) and nothing is registered.
/// - **unix socket whose credentials could not be read:** every attach is refused
///   (fail closed).
/// - **standard input and output:** believed. The parent that started ramfs chose who
///   holds the other ends of the pipes, and it already has everything an attach could
///   give: it chose the process's arguments, can stop or kill it, and, as the same
///   user, can usually read its memory.
/// - **TCP:** believed, since nothing is known of the peer: on a loopback address any
///   local user can attach as anyone (use a unix socket to tell them apart), and a
///   non-loopback address needs `--allow-remote`.
///
/// `--trust-attach-names` believes every unix-socket peer as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachRule {
    /// Any identity the attach names.
    BelieveNames,
    /// Only the identity whose number is this uid.
    OnlyUid(u32),
    /// No attach at all.
    Refuse,
}

impl AttachRule {
    /// The rule for a peer; `trust_attach_names` believes every peer.
    pub fn for_peer(peer: PeerCred, trust_attach_names: bool) -> AttachRule {
        if trust_attach_names {
            return AttachRule::BelieveNames;
        }
        match peer {
            PeerCred::Parent | PeerCred::Tcp => AttachRule::BelieveNames,
            PeerCred::Unix(c) if c.uid == ROOT_UID => AttachRule::BelieveNames,
            PeerCred::Unix(c) => AttachRule::OnlyUid(c.uid),
            PeerCred::UnixUnknown => AttachRule::Refuse,
        }
    }

    /// May the connection attach as the user numbered `claimed` (`None`: a name that
    /// has no number yet)?
    pub fn permits(self, claimed: Option<u32>) -> bool {
        match self {
            AttachRule::BelieveNames => true,
            AttachRule::OnlyUid(own) => claimed == Some(own),
            AttachRule::Refuse => false,
        }
    }
}

/// The uid a `Tattach` claims, resolved as the session's attach resolves it (an
/// `n_uname` in 9P2000.L, else the name, an empty one meaning "none") but without
/// registering a new name. `None` for a name that is not registered and is not the
/// digits of a number without a name: registering it would give it a fresh number,
/// which is nobody's uid yet.
pub(super) fn claimed_uid(
    tree: &Tree,
    dialect: Dialect,
    uname: &str,
    n_uname: Option<u32>,
) -> Option<u32> {
    if let (Dialect::L, Some(uid)) = (dialect, n_uname) {
        if uid != NO_UNAME {
            return Some(uid);
        }
    }
    let name = if uname.is_empty() { "none" } else { uname };
    if let Some(uid) = tree.lookup_user(name) {
        return Some(uid);
    }
    // An unregistered name of digits gets its own number if that number has no name
    // (and a number without a name is shown as its digits).
    name.parse::<u32>()
        .ok()
        .filter(|&n| n.to_string() == name && tree.user_name(n) == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::UnixCred;

    fn unix(uid: u32) -> PeerCred {
        PeerCred::Unix(UnixCred {
            uid,
            gid: uid,
            pid: 42,
        })
    }

    #[test]
    fn rules_by_peer() {
        assert_eq!(
            AttachRule::for_peer(unix(0), false),
            AttachRule::BelieveNames
        );
        assert_eq!(
            AttachRule::for_peer(unix(1000), false),
            AttachRule::OnlyUid(1000)
        );
        assert_eq!(
            AttachRule::for_peer(PeerCred::UnixUnknown, false),
            AttachRule::Refuse
        );
        assert_eq!(
            AttachRule::for_peer(PeerCred::Parent, false),
            AttachRule::BelieveNames
        );
        assert_eq!(
            AttachRule::for_peer(PeerCred::Tcp, false),
            AttachRule::BelieveNames
        );
        for peer in [unix(0), unix(1000), PeerCred::UnixUnknown, PeerCred::Parent] {
            assert_eq!(AttachRule::for_peer(peer, true), AttachRule::BelieveNames);
        }
    }

    #[test]
    fn only_uid_permits_only_that_uid() {
        let r = AttachRule::OnlyUid(1000);
        assert!(r.permits(Some(1000)));
        assert!(!r.permits(Some(0)));
        assert!(!r.permits(Some(1001)));
        assert!(!r.permits(None));
        assert!(AttachRule::BelieveNames.permits(Some(0)));
        assert!(AttachRule::BelieveNames.permits(None));
        assert!(!AttachRule::Refuse.permits(Some(1000)));
    }

    // ---- the rule in a served connection, with injected peer credentials ----------

    use std::sync::Arc;

    use ninep::{decode, encode, errno, Fcall, Msg, NOFID, NOTAG};

    use crate::fs::{Clock, Config, Fs};
    use crate::ninep_server::{Server, ServerConfig};

    fn server() -> Server {
        let fs = Arc::new(Fs::new(Config {
            memory_limit: 1 << 20,
            owner: "adm".into(),
            clock: Clock::Fixed(0),
        }));
        Server::new(fs, ServerConfig::default())
    }

    /// One connection from `peer`: Tversion, then one Tattach per (uname, n_uname),
    /// each on a fid of its own. Returns the attach replies.
    fn attach_as(
        server: &Server,
        peer: PeerCred,
        version: &str,
        who: &[(&str, Option<u32>)],
    ) -> Vec<Msg> {
        let dialect = if version == "9P2000.L" {
            Dialect::L
        } else {
            Dialect::P2000
        };
        let mut input = Vec::new();
        let version = Msg::Tversion {
            msize: 8192,
            version: version.into(),
        };
        encode(
            &Fcall {
                tag: NOTAG,
                msg: version,
            },
            &mut input,
        )
        .unwrap();
        for (i, (uname, n_uname)) in who.iter().enumerate() {
            let msg = Msg::Tattach {
                fid: i as u32,
                afid: NOFID,
                uname: (*uname).into(),
                aname: String::new(),
                n_uname: if dialect == Dialect::L {
                    *n_uname
                } else {
                    None
                },
            };
            encode(&Fcall { tag: i as u16, msg }, &mut input).unwrap();
        }
        let mut output = Vec::new();
        server.serve_peer(
            &input[..],
            &mut output,
            "test",
            AttachRule::for_peer(peer, false),
        );
        let mut replies = Vec::new();
        let mut buf = &output[..];
        while let Some(size) = ninep::peek_size(buf) {
            let (m, rest) = buf.split_at(size as usize);
            replies.push(decode(m, dialect).unwrap().msg);
            buf = rest;
        }
        assert!(matches!(replies.remove(0), Msg::Rversion { .. }));
        replies
    }

    fn attached(m: &Msg) -> bool {
        matches!(m, Msg::Rattach { .. })
    }

    fn refused(m: &Msg) -> bool {
        match m {
            Msg::Rlerror { ecode } => *ecode == errno::EPERM,
            Msg::Rerror { ename } => ename == "Operation not permitted",
            _ => false,
        }
    }

    #[test]
    fn linux_peer_attaches_only_as_its_uid() {
        let s = server();
        let r = attach_as(
            &s,
            unix(1000),
            "9P2000.L",
            &[
                ("", Some(1000)),
                ("root", Some(1000)),
                ("", Some(0)),
                ("alice", Some(1001)),
                ("1000", Some(NO_UNAME)),
                ("root", Some(NO_UNAME)),
                ("", Some(NO_UNAME)),
            ],
        );
        assert!(attached(&r[0]) && attached(&r[1]), "{r:?}");
        assert!(refused(&r[2]) && refused(&r[3]), "{r:?}");
        assert!(attached(&r[4]), "{r:?}");
        assert!(refused(&r[5]) && refused(&r[6]), "{r:?}");
    }

    #[test]
    fn plan9_peer_attaches_only_as_the_name_of_its_uid() {
        let s = server();
        let r = attach_as(
            &s,
            unix(1000),
            "9P2000",
            &[
                ("1000", None),
                ("root", None),
                ("glenda", None),
                ("", None),
                ("01000", None),
            ],
        );
        assert!(attached(&r[0]), "{r:?}");
        assert!(r[1..].iter().all(refused), "{r:?}");
        // A refused name is not registered.
        assert_eq!(s.fs().lock().lookup_user("glenda"), None);
        assert_eq!(s.fs().lock().lookup_user("1000"), Some(1000));
        // nobody (65534) has a name, so that name and not its digits.
        let r = attach_as(
            &s,
            unix(65534),
            "9P2000",
            &[("nobody", None), ("65534", None)],
        );
        assert!(attached(&r[0]) && refused(&r[1]), "{r:?}");
    }

    #[test]
    fn a_registered_name_stands_for_its_number() {
        let s = server();
        // Root registers glenda (the first assigned number, 100000).
        let r = attach_as(&s, unix(0), "9P2000", &[("glenda", None)]);
        assert!(attached(&r[0]), "{r:?}");
        let glenda = s.fs().lock().lookup_user("glenda").unwrap();
        let r = attach_as(
            &s,
            unix(glenda),
            "9P2000",
            &[("glenda", None), (&glenda.to_string(), None)],
        );
        assert!(attached(&r[0]) && refused(&r[1]), "{r:?}");
        let r = attach_as(&s, unix(glenda), "9P2000.L", &[("glenda", Some(NO_UNAME))]);
        assert!(attached(&r[0]), "{r:?}");
    }

    #[test]
    fn root_stdio_and_tcp_peers_are_believed() {
        for peer in [unix(0), PeerCred::Parent, PeerCred::Tcp] {
            let s = server();
            let r = attach_as(&s, peer, "9P2000", &[("root", None), ("glenda", None)]);
            assert!(r.iter().all(attached), "{peer:?}: {r:?}");
            let r = attach_as(&s, peer, "9P2000.L", &[("", Some(0)), ("", Some(4242))]);
            assert!(r.iter().all(attached), "{peer:?}: {r:?}");
        }
    }

    #[test]
    fn a_peer_of_unknown_credentials_attaches_as_nobody_at_all() {
        let s = server();
        let r = attach_as(
            &s,
            PeerCred::UnixUnknown,
            "9P2000",
            &[("nobody", None), ("root", None)],
        );
        assert!(r.iter().all(refused), "{r:?}");
        let r = attach_as(&s, PeerCred::UnixUnknown, "9P2000.L", &[("", Some(65534))]);
        assert!(r.iter().all(refused), "{r:?}");
    }
}
