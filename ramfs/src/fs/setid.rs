//! When the set-user-id and set-group-id bits go: the rules Linux keeps, so that a file
//! given away or changed by someone else stops running with its owner's rights.
//!
//! - A write or a truncation by a caller other than uid 0 clears `S_ISUID`, and
//!   `S_ISGID` when the group may execute (without group execute, `S_ISGID` marks
//!   mandatory locking, not a set-group-id program, and stays). Linux's
//!   `should_remove_suid`.
//! - A chown by a caller other than uid 0 clears the same bits of a non-directory
//!   (Linux leaves a directory's bits, which mean inheritance there).
//! - A mode change that only clears set-id bits is allowed to anyone who may write the
//!   file: that is the request Linux's client sends itself before a write by someone
//!   else (`file_remove_privs`), and refusing it fails the write.

use super::perm::Cred;

/// Set-user-id.
pub const S_ISUID: u32 = 0o4000;
/// Set-group-id.
pub const S_ISGID: u32 = 0o2000;
/// Group execute.
const S_IXGRP: u32 = 0o010;

/// The set-id bits that a change by an unprivileged caller takes away from `perm`.
fn killed(perm: u32) -> u32 {
    let mut kill = perm & S_ISUID;
    if perm & S_IXGRP != 0 {
        kill |= perm & S_ISGID;
    }
    kill
}

/// The permission bits after `cred` wrote to or truncated a file with `perm`.
pub fn after_write(perm: u32, cred: &Cred) -> u32 {
    if cred.is_privileged() {
        perm
    } else {
        perm & !killed(perm)
    }
}

/// The permission bits after `cred` changed the owner or group of a node with `perm`.
pub fn after_chown(perm: u32, is_dir: bool, cred: &Cred) -> u32 {
    if cred.is_privileged() || is_dir {
        perm
    } else {
        perm & !killed(perm)
    }
}

/// True if going from `old` to `new` clears set-id bits and changes nothing else.
pub fn only_clears_setid(old: u32, new: u32) -> bool {
    let setid = S_ISUID | S_ISGID;
    old & !setid == new & !setid && new & !old == 0 && new != old
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::PermStyle;

    fn cred(uid: u32) -> Cred {
        Cred {
            name: uid.to_string(),
            uid,
            gid: uid,
            style: PermStyle::Posix,
        }
    }

    #[test]
    fn writes_by_others_than_root_clear_setid() {
        assert_eq!(after_write(0o6777, &cred(65534)), 0o777);
        assert_eq!(after_write(0o4755, &cred(65534)), 0o755);
        // Without group execute, S_ISGID is a locking mark and stays.
        assert_eq!(after_write(0o6745, &cred(65534)), 0o2745);
        assert_eq!(after_write(0o6777, &cred(0)), 0o6777);
        let plan9 = Cred {
            style: PermStyle::Plan9,
            ..cred(0)
        };
        assert_eq!(
            after_write(0o4777, &plan9),
            0o777,
            "Plan 9 has no superuser"
        );
    }

    #[test]
    fn chown_by_others_than_root_clears_setid_of_non_directories() {
        assert_eq!(after_chown(0o6555, false, &cred(65534)), 0o555);
        assert_eq!(after_chown(0o6555, true, &cred(65534)), 0o6555);
        assert_eq!(after_chown(0o6555, false, &cred(0)), 0o6555);
    }

    #[test]
    fn clearing_only() {
        assert!(only_clears_setid(0o4777, 0o777));
        assert!(only_clears_setid(0o6777, 0o2777));
        assert!(
            !only_clears_setid(0o777, 0o777),
            "no change is not a clearing"
        );
        assert!(!only_clears_setid(0o4777, 0o775), "other bits changed too");
        assert!(!only_clears_setid(0o777, 0o4777), "setting is not clearing");
    }
}
