//! Who is asking, and whether the permission bits let them.
//!
//! Two rule sets share the same bits. Plan 9 (9P2000 sessions) names users: a user is
//! in a group when the group has the user's name, nobody is privileged, and the classes
//! add up (other, then group, then owner bits are OR-ed, as lib9p's `hasperm` does).
//! POSIX (9P2000.L sessions) numbers users: only the first matching class counts, and
//! uid 0 may do anything except execute a file that has no execute bit at all.
//!
//! A third style is POSIX with the checks left to the client ([`PermStyle::ClientChecked`]):
//! 9P2000.L carries a caller's uid but not its groups, so the server cannot judge a group
//! member; a kernel client that root mounted has judged it already (Linux's v9fs runs
//! the VFS permission checks, `in_group_p` included, before it sends a request). Such a
//! caller passes every access and ownership check here, as diod's callers do on a
//! connection root attached (diod raises `CAP_DAC_OVERRIDE`, `CAP_CHOWN` and
//! `CAP_FOWNER` for them). It is not privileged otherwise: its writes and chowns still
//! clear set-id bits (see [`super::setid`]), as diod's host kernel does without
//! `CAP_FSETID`. Which callers get it is the 9P server's decision
//! (`ninep_server::client_checks`).

/// Access wanted from a file, as permission bits of one class.
pub mod access {
    /// Read a file or list a directory.
    pub const READ: u32 = 4;
    /// Write a file or change a directory's entries.
    pub const WRITE: u32 = 2;
    /// Execute a file or search a directory.
    pub const EXEC: u32 = 1;
}

/// Which permission rules a caller is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermStyle {
    /// Plan 9: classes add up; no superuser.
    Plan9,
    /// POSIX: the first matching class decides; uid 0 is privileged.
    Posix,
    /// POSIX numbers and set-id rules, but the client has made the access and ownership
    /// checks: the tree makes none (see the module's documentation).
    ClientChecked,
}

/// A caller's identity. Build one with [`crate::fs::Tree::cred_for_name`] or
/// [`crate::fs::Tree::cred_for_uid`], which keep names and numbers consistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cred {
    /// The user's name (Plan 9 `uid` strings; the decimal number if none is known).
    pub name: String,
    /// The user's number.
    pub uid: u32,
    /// The user's group number (for a Plan 9 name: the group of the same name).
    pub gid: u32,
    /// Which rules apply.
    pub style: PermStyle,
}

impl Cred {
    /// True for a caller judged by POSIX rules (numbers, set-id bits, a superuser).
    pub fn is_posix(&self) -> bool {
        matches!(self.style, PermStyle::Posix | PermStyle::ClientChecked)
    }

    /// True for a POSIX caller with uid 0: besides passing every check, it keeps
    /// set-id bits where others clear them (Linux's `CAP_FSETID`).
    pub fn is_privileged(&self) -> bool {
        self.is_posix() && self.uid == 0
    }

    /// True if the tree makes no access or ownership checks for this caller: uid 0, or a
    /// caller whose client checked ([`PermStyle::ClientChecked`]).
    pub fn skips_checks(&self) -> bool {
        self.is_privileged() || self.style == PermStyle::ClientChecked
    }

    /// True if the caller owns a file with owner `uid`, or may act as its owner.
    pub fn owns(&self, uid: u32) -> bool {
        self.uid == uid || self.skips_checks()
    }

    /// True if the caller may use `want` (`access::*` bits) on a file with this owner,
    /// group and permission bits (`0o777` part).
    pub fn may(&self, uid: u32, gid: u32, perm: u32, want: u32, is_dir: bool) -> bool {
        self.may_as(uid, self.gid == gid, perm, want, is_dir)
    }

    /// [`Cred::may`] for a caller that is (`in_group`) or is not in the file's group,
    /// as the tree knows from its users file.
    pub fn may_as(&self, uid: u32, in_group: bool, perm: u32, want: u32, is_dir: bool) -> bool {
        let owner = (perm >> 6) & 7;
        let group = (perm >> 3) & 7;
        let other = perm & 7;
        match self.style {
            PermStyle::Plan9 => {
                let mut have = other;
                if in_group {
                    have |= group;
                }
                if self.uid == uid {
                    have |= owner;
                }
                have & want == want
            }
            PermStyle::Posix | PermStyle::ClientChecked => {
                if self.skips_checks() {
                    // Root searches every directory and executes a file if anyone may
                    // (and a client that checked was asked only what it allowed).
                    let x_ok = is_dir || perm & 0o111 != 0;
                    return want & access::EXEC == 0 || x_ok;
                }
                let have = if self.uid == uid {
                    owner
                } else if in_group {
                    group
                } else {
                    other
                };
                have & want == want
            }
        }
    }
}

/// The permission of a file created by 9P2000's Tcreate (open(5)): a file gets
/// `perm & (~0666 | (dir & 0666))`, a directory `perm & (~0777 | (dir & 0777))`.
pub fn plan9_create_perm(requested: u32, dir_perm: u32, is_dir: bool) -> u32 {
    let bits = if is_dir { 0o777 } else { 0o666 };
    requested & (!bits | (dir_perm & bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan9(uid: u32) -> Cred {
        Cred {
            name: format!("u{uid}"),
            uid,
            gid: uid,
            style: PermStyle::Plan9,
        }
    }

    fn posix(uid: u32, gid: u32) -> Cred {
        Cred {
            name: uid.to_string(),
            uid,
            gid,
            style: PermStyle::Posix,
        }
    }

    #[test]
    fn plan9_owner_group_other() {
        // owner 10, group 20, mode 0640
        assert!(plan9(10).may(10, 20, 0o640, access::READ | access::WRITE, false));
        assert!(plan9(20).may(10, 20, 0o640, access::READ, false));
        assert!(!plan9(20).may(10, 20, 0o640, access::WRITE, false));
        assert!(!plan9(30).may(10, 20, 0o640, access::READ, false));
    }

    #[test]
    fn plan9_classes_add_up() {
        // The owner gets the other bits too: mode 0004 lets the owner read.
        assert!(plan9(10).may(10, 20, 0o004, access::READ, false));
    }

    #[test]
    fn posix_first_class_decides() {
        assert!(!posix(10, 20).may(10, 20, 0o074, access::READ, false));
        assert!(posix(11, 20).may(10, 20, 0o040, access::READ, false));
        assert!(!posix(11, 21).may(10, 20, 0o040, access::READ, false));
    }

    #[test]
    fn posix_root_is_privileged_but_needs_some_x_to_exec() {
        let root = posix(0, 0);
        assert!(root.may(10, 20, 0, access::READ | access::WRITE, false));
        assert!(!root.may(10, 20, 0o644, access::EXEC, false));
        assert!(root.may(10, 20, 0o100, access::EXEC, false));
        assert!(root.may(10, 20, 0, access::EXEC, true));
        assert!(root.is_privileged() && !plan9(0).is_privileged());
    }

    #[test]
    fn client_checked_passes_access_and_ownership_checks_but_is_not_privileged() {
        let c = Cred {
            style: PermStyle::ClientChecked,
            ..posix(65534, 65534)
        };
        // Mode 0 file of someone else, in a group the caller is not in (as we know).
        assert!(c.may(10, 20, 0, access::READ | access::WRITE, false));
        assert!(c.may(10, 20, 0, access::EXEC, true));
        assert!(!c.may(10, 20, 0o644, access::EXEC, false));
        assert!(c.owns(10) && c.skips_checks());
        assert!(!c.is_privileged() && c.is_posix());
        // The same caller judged by the server.
        assert!(!posix(65534, 65534).may(10, 20, 0, access::READ, false));
        assert!(!posix(65534, 65534).owns(10));
    }

    #[test]
    fn create_mask_rule() {
        assert_eq!(plan9_create_perm(0o666, 0o755, false), 0o644);
        assert_eq!(plan9_create_perm(0o777, 0o750, true), 0o750);
        assert_eq!(plan9_create_perm(0o644, 0o777, false), 0o644);
        // Bits outside the mask (execute for files) pass through.
        assert_eq!(plan9_create_perm(0o777, 0o700, false), 0o711);
    }
}
