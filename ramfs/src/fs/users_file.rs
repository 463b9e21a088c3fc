//! A users file in Plan 9's `/adm/users` form (users(6)): who exists, with which number,
//! and who is in which group, for `ramfs --users FILE`.
//!
//! One line a user, `id:name:leader:members`: `id` is the number 9P2000.L clients use
//! for the name (as uid and as gid: Plan 9 users and groups share one namespace, so the
//! user alice is also the group alice), `leader` is empty or a listed name, `members`
//! a comma-separated list of listed names. A user is in its own group and in those that
//! list it as a member; the leader is checked but has no other meaning here (in Plan 9
//! it administers the group, which ramfs has no requests for). Blank lines and lines
//! starting with `#` are ignored.
//!
//! Neither 9P dialect carries a caller's groups, so without a users file a caller is in
//! no group but its own; with one, a file's group bits apply to the group's members in
//! both dialects, and an owner may give a file to any group it is in. (A connection
//! root attached trusts its client's checks anyway; see `ninep_server::client_checks`.)

use std::collections::{HashMap, HashSet};

use super::users::USER_NAME_MAX;

/// One line of a users file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub id: u32,
    pub name: String,
    pub leader: Option<String>,
    pub members: Vec<String>,
}

/// A parsed users file: every name and number unique, every leader and member listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsersFile {
    pub entries: Vec<UserEntry>,
}

/// Why a users file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsersFileError {
    #[error("line {0}: not id:name:leader:members")]
    Fields(usize),
    #[error("line {0}: the id is not a number")]
    Id(usize),
    #[error("line {0}: a name has 1 to {USER_NAME_MAX} bytes and no ',' or ':'")]
    Name(usize),
    #[error("line {0}: {1:?} is listed twice")]
    DuplicateName(usize, String),
    #[error("line {0}: id {1} is listed twice")]
    DuplicateId(usize, u32),
    #[error("line {0}: {1:?} is not a listed user")]
    Unknown(usize, String),
    #[error("line {0}: {1:?} has the number {2} here but is built in with {3}")]
    BuiltIn(usize, String, u32, u32),
    #[error("line {0}: id {1} is {2:?}'s")]
    ReservedId(usize, u32, String),
}

/// Names every tree has, with their numbers (see `users.rs`); a file may list them
/// only with these numbers.
const BUILT_IN: [(&str, u32); 2] = [("root", 0), ("nobody", 65534)];

fn check_name(line: usize, name: &str) -> Result<(), UsersFileError> {
    if name.is_empty() || name.len() > USER_NAME_MAX || name.contains([',', ':']) {
        return Err(UsersFileError::Name(line));
    }
    Ok(())
}

impl UsersFile {
    /// Parses the text of a users file.
    pub fn parse(text: &str) -> Result<UsersFile, UsersFileError> {
        let mut entries = Vec::new();
        let mut lines = Vec::new();
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let raw = raw.trim();
            if raw.is_empty() || raw.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = raw.split(':').collect();
            let [id, name, leader, members] = fields[..] else {
                return Err(UsersFileError::Fields(line));
            };
            let id: u32 = id.parse().map_err(|_| UsersFileError::Id(line))?;
            check_name(line, name)?;
            for (built_name, built_id) in BUILT_IN {
                if name == built_name && id != built_id {
                    return Err(UsersFileError::BuiltIn(line, name.to_owned(), id, built_id));
                }
                if id == built_id && name != built_name {
                    return Err(UsersFileError::ReservedId(line, id, built_name.to_owned()));
                }
            }
            if !names.insert(name.to_owned()) {
                return Err(UsersFileError::DuplicateName(line, name.to_owned()));
            }
            if !ids.insert(id) {
                return Err(UsersFileError::DuplicateId(line, id));
            }
            let members = members
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect();
            entries.push(UserEntry {
                id,
                name: name.to_owned(),
                leader: (!leader.is_empty()).then(|| leader.to_owned()),
                members,
            });
            lines.push(line);
        }
        for (e, line) in entries.iter().zip(lines) {
            for m in e.leader.iter().chain(&e.members) {
                if !names.contains(m) {
                    return Err(UsersFileError::Unknown(line, m.clone()));
                }
            }
        }
        Ok(UsersFile { entries })
    }

    /// Which numbers are in which group: group number → member numbers.
    pub(super) fn memberships(&self) -> HashMap<u32, HashSet<u32>> {
        let id: HashMap<&str, u32> = self
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.id))
            .collect();
        let mut groups: HashMap<u32, HashSet<u32>> = HashMap::new();
        for e in &self.entries {
            let set = groups.entry(e.id).or_default();
            for m in &e.members {
                if let Some(&uid) = id.get(m.as_str()) {
                    set.insert(uid);
                }
            }
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# id:name:leader:members
1001:alice:alice:
1003:bob::
1002:staff:alice:bob, alice
1004:ops:alice:
0:root::
";

    #[test]
    fn parses_users_and_groups() {
        let f = UsersFile::parse(FILE).unwrap();
        assert_eq!(f.entries.len(), 5);
        assert_eq!(f.entries[2].name, "staff");
        assert_eq!(f.entries[2].leader.as_deref(), Some("alice"));
        assert_eq!(f.entries[2].members, ["bob", "alice"]);
        let g = f.memberships();
        assert_eq!(g[&1002], HashSet::from([1001, 1003]));
        assert!(g[&1001].is_empty(), "leading a group is not being in it");
    }

    #[test]
    fn refuses_bad_files() {
        use UsersFileError::*;
        let p = UsersFile::parse;
        assert_eq!(p("1:a:"), Err(Fields(1)));
        assert_eq!(p("x:a::"), Err(Id(1)));
        assert_eq!(p("1:::"), Err(Name(1)));
        assert_eq!(p("1:a::\n2:a::"), Err(DuplicateName(2, "a".into())));
        assert_eq!(p("1:a::\n1:b::"), Err(DuplicateId(2, 1)));
        assert_eq!(p("1:a::zed"), Err(Unknown(1, "zed".into())));
        assert_eq!(p("1:a:zed:"), Err(Unknown(1, "zed".into())));
        assert_eq!(p("5:root::"), Err(BuiltIn(1, "root".into(), 5, 0)));
        assert_eq!(p("0:toor::"), Err(ReservedId(1, 0, "root".into())));
        assert_eq!(p(""), Ok(UsersFile::default()));
    }
}
