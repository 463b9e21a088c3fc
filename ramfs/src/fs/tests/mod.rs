//! Unit tests of the tree's rules, one topic a module: permissions, files and qids,
//! names, attributes, memory, exclusive use, loans, handles, POSIX rules and threads.
//! This module holds the helpers they share.

use std::time::Duration;

use super::*;

const MIB: u64 = 1 << 20;

/// Long enough for any step on a loaded machine; only a broken lock waits this long.
const STEP_DEADLINE: Duration = Duration::from_secs(20);

/// A tree of `limit` bytes owned by adm, its clock stopped.
fn config(limit: u64) -> Config {
    Config {
        memory_limit: limit,
        owner: "adm".into(),
        clock: Clock::Fixed(1_000_000),
    }
}

fn tree_with_limit(limit: u64) -> Tree {
    Tree::new(config(limit))
}

/// The tree behind its locks, as the front ends share it.
fn shared_fs(limit: u64) -> Fs {
    Fs::new(config(limit))
}

fn tree() -> Tree {
    tree_with_limit(64 * MIB)
}

impl Tree {
    /// [`Tree::read_with`] into a vector, for tests that look at the bytes.
    fn read(&mut self, id: NodeId, offset: u64, count: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_with(id, offset, count, |b| out.extend_from_slice(b))?;
        Ok(out)
    }
}

fn file(t: &mut Tree, who: &Cred, dir: NodeId, name: &str, perm: u32) -> NodeId {
    t.create(who, dir, name, NewNode::new(NewKind::File, perm))
        .expect("create file")
}

fn mkdir(t: &mut Tree, who: &Cred, dir: NodeId, name: &str, perm: u32) -> NodeId {
    t.create(who, dir, name, NewNode::new(NewKind::Dir, perm))
        .expect("create dir")
}

fn names(t: &Tree, dir: NodeId) -> Vec<String> {
    t.dir_entries(dir, 0)
        .unwrap()
        .map(|e| e.name.to_owned())
        .collect()
}

const RW: OpenMode = OpenMode {
    read: true,
    write: true,
    exec: false,
    truncate: false,
};

mod attrs;
mod concurrent;
mod exclusive;
mod files;
mod handles;
mod loans;
mod memory;
mod names;
mod perm;
mod posix;
