//! One numbering of user and group names, so a file created by a 9P2000 user (a name)
//! shows a consistent number to a 9P2000.L client, and the other way round.
//!
//! "root" is 0 and "nobody" is 65534. A name made only of digits is that number if the
//! number is still free. Any other new name gets the next free number from 100000 (above
//! the ranges Unix systems hand out, so it rarely collides with a real client's uid). A
//! number without a name is shown as its decimal digits. Plan 9 has no group file: a
//! user's group is the group with the user's name, i.e. the same number.

use std::collections::HashMap;

/// The first number given to a new name.
const FIRST_ASSIGNED_ID: u32 = 100_000;

/// The registry of names and numbers.
pub struct Users {
    by_name: HashMap<String, u32>,
    by_id: HashMap<u32, String>,
    next_id: u32,
}

impl Default for Users {
    fn default() -> Self {
        let mut u = Users {
            by_name: HashMap::new(),
            by_id: HashMap::new(),
            next_id: FIRST_ASSIGNED_ID,
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

    /// The number of a name, registering the name if it is new.
    pub fn id_of(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let numeric = name
            .parse::<u32>()
            .ok()
            .filter(|n| n.to_string() == name && !self.by_id.contains_key(n));
        let id = match numeric {
            Some(n) => n,
            None => {
                while self.by_id.contains_key(&self.next_id) {
                    self.next_id = self.next_id.wrapping_add(1);
                }
                self.next_id
            }
        };
        self.insert(name, id);
        id
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
}
