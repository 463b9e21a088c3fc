//! Whose permission checks decide on a 9P2000.L connection: diod's rule.
//!
//! 9P2000.L names the caller by its uid alone; its groups are not in any message, so
//! the server judges a group member by the "other" bits and refuses an owner's chgrp
//! to one of its groups. The kernel client knows better: Linux's v9fs runs the VFS
//! permission checks (`generic_permission`, `in_group_p`, `setattr_prepare`) before it
//! sends a request. So, as diod does on a connection that root attached (it raises
//! `CAP_DAC_OVERRIDE`, `CAP_CHOWN` and `CAP_FOWNER` for every later user), once uid 0 has
//! attached on a connection, the fids attached after it by other users are judged by
//! the client: their credentials get [`PermStyle::ClientChecked`], and the tree makes
//! no access or ownership checks for them (it still clears set-id bits on their writes
//! and chowns).
//!
//! Why this gives nothing away: a client that may attach as uid 0 may already do
//! anything to the tree as root, so letting it vouch for its other users adds no
//! power. Which clients may attach as uid 0 is the attach checks' business; this rule
//! only looks at attaches that succeeded. Fids attached before the first root attach,
//! and every fid of a connection root never attached, are judged by the tree.
//!
//! 9P2000 sessions are untouched: Plan 9 names users and trusts no client.

use crate::fs::{Cred, PermStyle};

/// What a connection's attaches have established.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ClientChecks {
    /// A 9P2000.L attach as uid 0 has succeeded on this connection.
    root_attached: bool,
}

impl ClientChecks {
    /// The credentials a new 9P2000.L fid gets, given the ones its attach names.
    pub fn cred_for_attach(&self, mut cred: Cred) -> Cred {
        if self.root_attached && cred.uid != 0 && cred.style == PermStyle::Posix {
            cred.style = PermStyle::ClientChecked;
        }
        cred
    }

    /// Records a successful 9P2000.L attach with these credentials.
    pub fn attached(&mut self, cred: &Cred) {
        if cred.is_privileged() {
            self.root_attached = true;
        }
    }

    /// True once uid 0 has attached.
    #[cfg(test)]
    pub fn root_attached(&self) -> bool {
        self.root_attached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posix(uid: u32) -> Cred {
        Cred {
            name: uid.to_string(),
            uid,
            gid: uid,
            style: PermStyle::Posix,
        }
    }

    #[test]
    fn users_after_a_root_attach_are_client_checked() {
        let mut c = ClientChecks::default();
        assert_eq!(c.cred_for_attach(posix(1000)).style, PermStyle::Posix);
        c.attached(&posix(1000));
        assert!(!c.root_attached());
        c.attached(&posix(0));
        assert!(c.root_attached());
        assert_eq!(
            c.cred_for_attach(posix(1000)).style,
            PermStyle::ClientChecked
        );
        assert_eq!(c.cred_for_attach(posix(0)).style, PermStyle::Posix);
        let plan9 = Cred {
            style: PermStyle::Plan9,
            ..posix(1000)
        };
        assert_eq!(c.cred_for_attach(plan9).style, PermStyle::Plan9);
    }
}
