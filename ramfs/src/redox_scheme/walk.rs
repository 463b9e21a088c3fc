//! Path names of the scheme: from a path to a node, and from a node back to its path.
//!
//! The kernel gives a scheme the part of a path after `/scheme/NAME/`. Components are
//! separated by `/`; empty ones and `.` are skipped; `..` goes to the parent (the root
//! is its own parent, so no path leaves the scheme). Symbolic links, which only 9P
//! clients can make, are followed as redoxfs follows them: a relative target from the
//! link's directory, an absolute one from the scheme's root.

use std::collections::VecDeque;

use crate::error::Error;
use crate::fs::{Cred, FileType, NodeId, Tree};

/// Most symbolic links one walk follows (Linux's limit is 40; POSIX asks for 8).
pub const MAX_SYMLINKS: u32 = 32;

/// Why a walk failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkError {
    /// The tree refused a step (missing name, no search permission, not a directory).
    Tree(Error),
    /// More than [`MAX_SYMLINKS`] symbolic links.
    Loop,
    /// The path has no last name to create or remove (it is empty, or ends in `.`/`..`).
    NoName,
}

impl From<Error> for WalkError {
    fn from(e: Error) -> Self {
        WalkError::Tree(e)
    }
}

/// The components of `path` that move somewhere (no empty ones, no `.`).
fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// Walks `names` from `dir`, following symbolic links on the way (and at the end if
/// `follow_last`), counting them in `hops`.
fn walk_names(
    tree: &Tree,
    cred: &Cred,
    mut dir: NodeId,
    mut names: VecDeque<String>,
    follow_last: bool,
    hops: &mut u32,
) -> Result<NodeId, WalkError> {
    let mut node = dir;
    while let Some(name) = names.pop_front() {
        node = tree.lookup(cred, dir, &name)?;
        let is_last = names.is_empty();
        if tree.attr(node)?.file_type == FileType::Symlink && (!is_last || follow_last) {
            *hops += 1;
            if *hops > MAX_SYMLINKS {
                return Err(WalkError::Loop);
            }
            let target = tree.readlink(node)?;
            let mut expanded: VecDeque<String> = components(&target).map(str::to_owned).collect();
            expanded.extend(names);
            names = expanded;
            if target.starts_with('/') {
                dir = tree.root();
            }
            node = dir;
            continue;
        }
        dir = node;
    }
    Ok(node)
}

/// The node `path` names, starting at directory `start` (at the root if `path` starts
/// with `/`). A symbolic link as the last name is followed only if `follow_last`.
pub fn resolve(
    tree: &Tree,
    cred: &Cred,
    start: NodeId,
    path: &str,
    follow_last: bool,
) -> Result<NodeId, WalkError> {
    let start = if path.starts_with('/') {
        tree.root()
    } else {
        start
    };
    let names = components(path).map(str::to_owned).collect();
    walk_names(tree, cred, start, names, follow_last, &mut 0)
}

/// The directory that holds the last name of `path`, and that name, for creating,
/// removing or renaming it. The last name itself is not looked up.
pub fn resolve_parent(
    tree: &Tree,
    cred: &Cred,
    start: NodeId,
    path: &str,
) -> Result<(NodeId, String), WalkError> {
    let start = if path.starts_with('/') {
        tree.root()
    } else {
        start
    };
    let mut names: VecDeque<String> = components(path).map(str::to_owned).collect();
    let last = names.pop_back().ok_or(WalkError::NoName)?;
    if last == ".." {
        return Err(WalkError::NoName);
    }
    let dir = walk_names(tree, cred, start, names, true, &mut 0)?;
    Ok((dir, last))
}

/// The path of `node` from the root (empty for the root), by the names it was last
/// linked under; `None` once it has no name.
pub fn path_of(tree: &Tree, node: NodeId) -> Option<String> {
    let mut names = Vec::new();
    let mut current = node;
    while current != tree.root() {
        let (dir, name) = tree.primary_link(current).ok()?;
        names.push(name);
        current = dir;
    }
    names.reverse();
    Some(names.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Clock, Config, Fs, NewKind, NewNode};

    fn fs() -> Fs {
        Fs::new(Config {
            memory_limit: 1 << 20,
            owner: "root".into(),
            clock: Clock::Fixed(1),
        })
    }

    #[test]
    fn walks_dots_and_dotdots_without_leaving_the_root() {
        let fs = fs();
        let mut t = fs.lock();
        let root_cred = t.cred_for_uid(0, Some(0));
        let r = t.root();
        let a = t
            .create(&root_cred, r, "a", NewNode::new(NewKind::Dir, 0o755))
            .unwrap();
        let f = t
            .create(&root_cred, a, "f", NewNode::new(NewKind::File, 0o644))
            .unwrap();
        assert_eq!(resolve(&t, &root_cred, r, "a/./f", true), Ok(f));
        assert_eq!(resolve(&t, &root_cred, r, "../../a//f", true), Ok(f));
        assert_eq!(resolve(&t, &root_cred, a, "f", true), Ok(f));
        assert_eq!(resolve(&t, &root_cred, a, "/a/f", true), Ok(f));
        assert_eq!(resolve(&t, &root_cred, r, "", true), Ok(r));
        assert_eq!(
            resolve(&t, &root_cred, r, "a/g", true),
            Err(WalkError::Tree(Error::NotFound))
        );
        assert_eq!(
            resolve(&t, &root_cred, r, "a/f/x", true),
            Err(WalkError::Tree(Error::NotDir))
        );
        assert_eq!(
            resolve_parent(&t, &root_cred, r, "a/new"),
            Ok((a, "new".into()))
        );
        assert_eq!(
            resolve_parent(&t, &root_cred, r, ""),
            Err(WalkError::NoName)
        );
        assert_eq!(
            resolve_parent(&t, &root_cred, r, "a/.."),
            Err(WalkError::NoName)
        );
        assert_eq!(path_of(&t, f).as_deref(), Some("a/f"));
        assert_eq!(path_of(&t, r).as_deref(), Some(""));
    }

    #[test]
    fn search_permission_is_checked_on_the_way() {
        let fs = fs();
        let mut t = fs.lock();
        let root_cred = t.cred_for_uid(0, Some(0));
        let user = t.cred_for_uid(1000, Some(1000));
        let r = t.root();
        let d = t
            .create(&root_cred, r, "d", NewNode::new(NewKind::Dir, 0o700))
            .unwrap();
        t.create(&root_cred, d, "f", NewNode::new(NewKind::File, 0o666))
            .unwrap();
        assert_eq!(
            resolve(&t, &user, r, "d/f", true),
            Err(WalkError::Tree(Error::PermissionDenied))
        );
    }

    #[test]
    fn symbolic_links_are_followed_and_loops_stopped() {
        let fs = fs();
        let mut t = fs.lock();
        let c = t.cred_for_uid(0, Some(0));
        let r = t.root();
        let a = t
            .create(&c, r, "a", NewNode::new(NewKind::Dir, 0o755))
            .unwrap();
        let f = t
            .create(&c, a, "f", NewNode::new(NewKind::File, 0o644))
            .unwrap();
        let rel = NewNode::new(NewKind::Symlink("f".into()), 0o777);
        let l = t.create(&c, a, "rel", rel).unwrap();
        let abs = NewNode::new(NewKind::Symlink("/a".into()), 0o777);
        t.create(&c, r, "abs", abs).unwrap();
        let me = NewNode::new(NewKind::Symlink("me".into()), 0o777);
        t.create(&c, r, "me", me).unwrap();
        assert_eq!(resolve(&t, &c, r, "a/rel", true), Ok(f));
        assert_eq!(resolve(&t, &c, r, "a/rel", false), Ok(l));
        assert_eq!(resolve(&t, &c, r, "abs/rel", true), Ok(f));
        assert_eq!(resolve(&t, &c, r, "me", true), Err(WalkError::Loop));
        assert_eq!(resolve_parent(&t, &c, r, "abs/new"), Ok((a, "new".into())));
    }
}
