//! One numbering of user and group names, so a file created by a 9P2000 user (a name)
//! shows a consistent number to a 9P2000.L client, and the other way round.
//!
//! "root" is 0 and "nobody" is 65534. A name made only of digits is that number if the
//! number is still free. Any other new name gets the next free number from 100000 (above
//! the ranges Unix systems hand out, so it rarely collides with a real client's uid). A
//! number without a name is shown as its decimal digits. Plan 9 has no group file: a
//! user's group is the group with the user's name, i.e. the same number.
//!
//! A registration is kept for good: files and sessions refer to the number, and the
//! number must keep meaning the same name. So the tree limits the names clients may
//! introduce ([`USER_NAME_MAX`]) and charges each registration against the memory limit
//! ([`Users::registration_cost`]); names the operator gives (the owner) are free.

use std::collections::{HashMap, HashSet};

use super::users_file::UsersFile;

/// The first number given to a new name.
const FIRST_ASSIGNED_ID: u32 = 100_000;

/// Longest user or group name a client may introduce, in bytes: a file name's limit
/// ([`super::NAME_MAX`]), so that a 9P2000 stat record, which carries three such names
/// besides the file's own, always fits a modest read.
pub const USER_NAME_MAX: usize = 255;

/// Bytes charged for registering a name besides its bytes, which are kept twice (by
/// name and by number): an estimate of the two table entries.
const ENTRY_COST: u64 = 64;

/// The registry of names and numbers.
pub struct Users {
    by_name: HashMap<String, u32>,
    by_id: HashMap<u32, String>,
    next_id: u32,
    /// Group number → the numbers of its members besides itself (from a users file).
    groups: HashMap<u32, HashSet<u32>>,
}

impl Default for Users {
    fn default() -> Self {
        let mut u = Users {
            by_name: HashMap::new(),
            by_id: HashMap::new(),
            next_id: FIRST_ASSIGNED_ID,
            groups: HashMap::new(),
        };
        u.insert("root", 0);
        u.insert("nobody", 65534);
        u
    }
}

impl Users {
    fn insert(&mut self, name: &str, id: u32) {
        self.by_name.insert(name.to_owned(), id);
        self.by_id.insert(id, name.to_owned());
    }

    /// Registers the names and groups of a users file (its checks keep the built-in
    /// names at their numbers); call before any other name is registered.
    pub fn load(&mut self, file: &UsersFile) {
        for e in &file.entries {
            self.insert(&e.name, e.id);
        }
        self.groups = file.memberships();
    }

    /// True if `uid` is in group `gid`: its own, or one a users file lists it in.
    pub fn is_member(&self, uid: u32, gid: u32) -> bool {
        uid == gid || self.groups.get(&gid).is_some_and(|m| m.contains(&uid))
    }

    /// The number of a registered name.
    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// The number a name of digits stands for, if that number is free.
    fn own_number(&self, name: &str) -> Option<u32> {
        name.parse::<u32>()
            .ok()
            .filter(|n| n.to_string() == name && !self.by_id.contains_key(n))
    }

    /// The first free number from the counter on.
    fn next_free(&self) -> u32 {
        let mut id = self.next_id;
        while self.by_id.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        id
    }

    /// The number [`Users::register`] would give a name that is not registered yet:
    /// the name's own digits if that number is free, else the next free assigned one.
    pub fn number_for_new(&self, name: &str) -> u32 {
        self.own_number(name).unwrap_or_else(|| self.next_free())
    }

    /// Registers a name that is not registered yet and returns its new number.
    pub fn register(&mut self, name: &str) -> u32 {
        debug_assert!(self.lookup(name).is_none(), "{name:?} registered twice");
        let id = match self.own_number(name) {
            Some(n) => n,
            None => {
                let id = self.next_free();
                self.next_id = id.wrapping_add(1);
                id
            }
        };
        self.insert(name, id);
        id
    }

    /// The number of a name, registering the name if it is new (for names the
    /// operator gives, which are neither limited nor charged).
    pub fn id_of(&mut self, name: &str) -> u32 {
        match self.lookup(name) {
            Some(id) => id,
            None => self.register(name),
        }
    }

    /// The memory a registration of `name` takes.
    pub fn registration_cost(name: &str) -> u64 {
        ENTRY_COST + 2 * name.len() as u64
    }

    /// The name of a number: its registered name, or its decimal digits.
    pub fn name_of(&self, id: u32) -> String {
        match self.by_id.get(&id) {
            Some(n) => n.clone(),
            None => id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_and_assigned() {
        let mut u = Users::default();
        assert_eq!(u.id_of("root"), 0);
        assert_eq!(u.id_of("nobody"), 65534);
        let g = u.id_of("glenda");
        assert_eq!(g, FIRST_ASSIGNED_ID);
        assert_eq!(u.id_of("glenda"), g);
        assert_eq!(u.name_of(g), "glenda");
        assert_eq!(u.name_of(1000), "1000");
        assert_eq!(u.id_of("1000"), 1000);
        // A digit name whose number is taken gets a fresh number.
        assert_eq!(u.id_of("0"), FIRST_ASSIGNED_ID + 1);
        assert_eq!(u.id_of("007"), FIRST_ASSIGNED_ID + 2);
    }

    #[test]
    fn a_users_file_gives_numbers_and_groups() {
        let mut u = Users::default();
        u.load(&UsersFile::parse("1001:alice::\n1002:staff::alice\n7:bob::").unwrap());
        assert_eq!(u.id_of("alice"), 1001);
        assert_eq!(u.name_of(7), "bob");
        assert_eq!(u.id_of("root"), 0);
        assert!(u.is_member(1001, 1002) && u.is_member(7, 7));
        assert!(!u.is_member(7, 1002) && !u.is_member(1002, 1001));
    }
}
