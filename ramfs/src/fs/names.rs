//! The tree's names: creating nodes, removing, unlinking, renaming and linking
//! directory entries, with the memory their names take.

use super::*;

impl Tree {
    /// Creates `name` in `dir`, owned by the caller.
    pub fn create(&mut self, cred: &Cred, dir: NodeId, name: &str, new: NewNode) -> Result<NodeId> {
        check_name(name)?;
        self.check_dir_writable(cred, dir)?;
        let d = self.node(dir)?;
        let dd = d.dir().ok_or(Error::NotDir)?;
        if dd.get(name).is_some() {
            return Err(Error::Exists);
        }
        let is_dir = new.kind == NewKind::Dir;
        let perm = if new.plan9_mask {
            plan9_create_perm(new.perm, d.perm, is_dir) & 0o777
        } else {
            new.perm & 0o7777
        };
        let gid = new.gid.unwrap_or(d.gid);
        let id = self.next_id;
        let content = match new.kind {
            NewKind::File => Content::File(Arc::new(FileCell::new(perm, new.append))),
            NewKind::Dir => Content::Dir(Directory::new(dir)),
            NewKind::Symlink(target) => {
                if target.len() > SYMLINK_MAX {
                    return Err(Error::NameTooLong);
                }
                Content::Symlink(target)
            }
            NewKind::Special { kind, rdev } => Content::Special { kind, rdev },
        };
        self.memory
            .reserve(NODE_COST + content_cost(&content) + name.len() as u64)?;
        self.next_id += 1;
        let now = self.now();
        let node = Node {
            content,
            stamps: Arc::new(StampCell::new(Stamps::new(cred.uid, now))),
            perm,
            append: new.append && !is_dir,
            excl: new.excl,
            tmp: new.tmp,
            uid: cred.uid,
            gid,
            btime: now,
            name: name.to_owned(),
            links: vec![(dir, name.to_owned())],
            refs: AtomicU32::new(0),
            opens: 0,
            xattrs: Default::default(),
            locks: Default::default(),
        };
        self.nodes.insert(id, node);
        let d = self.node_mut(dir)?;
        if let Some(dd) = d.dir_mut() {
            dd.insert(name, id, is_dir);
        }
        d.touch_modify(now);
        Ok(id)
    }

    /// Removes the entry `name` of `dir` without permission checks; releases the name's
    /// memory and destroys the node if nothing else holds it.
    pub(super) fn unlink_entry(&mut self, dir: NodeId, name: &str) -> Result<NodeId> {
        let now = self.now();
        let id = self.dir(dir)?.get(name).ok_or(Error::NotFound)?;
        let is_dir = self.node(id)?.is_dir();
        if let Some(dd) = self.node_mut(dir)?.dir_mut() {
            dd.remove(name, is_dir);
        }
        self.node_mut(dir)?.touch_modify(now);
        self.memory.release(name.len() as u64);
        let n = self.node_mut(id)?;
        if let Some(pos) = n.links.iter().position(|(d, nm)| *d == dir && nm == name) {
            n.links.remove(pos);
        }
        n.touch_change(now);
        self.destroy_if_unused(id);
        Ok(id)
    }

    /// Checks that a node may go from the tree: not the root, and an empty directory.
    pub(super) fn check_removable(&self, id: NodeId) -> Result<()> {
        if id == self.root {
            return Err(Error::NotPermitted);
        }
        if let Some(d) = self.node(id)?.dir() {
            if !d.is_empty() {
                return Err(Error::NotEmpty);
            }
        }
        Ok(())
    }

    /// Removes a node by itself (9P Tremove, ORCLOSE): the entry it was last linked
    /// under. With a caller, checks write permission in the directory; without one
    /// (ORCLOSE, checked at open) it does not.
    pub fn remove(&mut self, cred: Option<&Cred>, id: NodeId) -> Result<()> {
        self.check_removable(id)?;
        let (dir, name) = self
            .node(id)?
            .links
            .first()
            .cloned()
            .ok_or(Error::NotFound)?;
        if let Some(cred) = cred {
            self.check_dir_writable(cred, dir)?;
        }
        self.unlink_entry(dir, &name)?;
        Ok(())
    }

    /// The directory entry a node was last linked under: what [`Tree::remove`] and a
    /// by-node rename act on.
    pub fn primary_link(&self, id: NodeId) -> Result<(NodeId, String)> {
        self.node(id)?.links.first().cloned().ok_or(Error::NotFound)
    }

    /// Checks, without removing, that the caller could [`Tree::remove`] the node (for
    /// an open with ORCLOSE).
    pub fn check_remove(&self, cred: &Cred, id: NodeId) -> Result<()> {
        if id == self.root {
            return Err(Error::NotPermitted);
        }
        let (dir, _) = self.primary_link(id)?;
        self.check_dir_writable(cred, dir)
    }

    /// Removes the entry `name` of `dir` (`unlink(2)`, `rmdir(2)`).
    pub fn unlink(&mut self, cred: &Cred, dir: NodeId, name: &str, kind: UnlinkKind) -> Result<()> {
        if name == "." || name == ".." {
            return Err(Error::Invalid);
        }
        self.check_dir_writable(cred, dir)?;
        let id = self.dir(dir)?.get(name).ok_or(Error::NotFound)?;
        let is_dir = self.node(id)?.is_dir();
        match (kind, is_dir) {
            (UnlinkKind::NonDir, true) => return Err(Error::IsDir),
            (UnlinkKind::Dir, false) => return Err(Error::NotDir),
            _ => {}
        }
        self.check_removable(id)?;
        self.unlink_entry(dir, name)?;
        Ok(())
    }

    /// True if `id` is `ancestor` or lies below it.
    pub(super) fn is_within(&self, mut id: NodeId, ancestor: NodeId) -> bool {
        loop {
            if id == ancestor {
                return true;
            }
            match self.nodes.get(&id).and_then(|n| n.dir()) {
                Some(d) if d.parent != id => id = d.parent,
                _ => return false,
            }
        }
    }

    /// Renames `olddir/oldname` to `newdir/newname` (`rename(2)`): replaces a target of
    /// the same kind (an empty directory for a directory).
    pub fn rename(
        &mut self,
        cred: &Cred,
        olddir: NodeId,
        oldname: &str,
        newdir: NodeId,
        newname: &str,
    ) -> Result<()> {
        if oldname == "." || oldname == ".." {
            return Err(Error::Invalid);
        }
        check_name(newname)?;
        self.check_dir_writable(cred, olddir)?;
        self.check_dir_writable(cred, newdir)?;
        let id = self.dir(olddir)?.get(oldname).ok_or(Error::NotFound)?;
        let is_dir = self.node(id)?.is_dir();
        if let Some(target) = self.dir(newdir)?.get(newname) {
            if target == id {
                return Ok(());
            }
            match (is_dir, self.node(target)?.dir()) {
                (true, None) => return Err(Error::NotDir),
                (false, Some(_)) => return Err(Error::IsDir),
                (true, Some(td)) if !td.is_empty() => return Err(Error::NotEmpty),
                _ => {}
            }
        }
        if is_dir && self.is_within(newdir, id) {
            return Err(Error::Invalid);
        }
        if !self.memory.fits(newname.len() as u64) {
            return Err(Error::NoSpace);
        }
        // Nothing can fail from here on.
        if self.dir(newdir)?.get(newname).is_some() {
            self.unlink_entry(newdir, newname)?;
        }
        self.move_entry(id, olddir, oldname, newdir, newname)
    }

    /// Moves an entry whose target name is free. Memory for the new name must fit.
    pub(super) fn move_entry(
        &mut self,
        id: NodeId,
        olddir: NodeId,
        oldname: &str,
        newdir: NodeId,
        newname: &str,
    ) -> Result<()> {
        let now = self.now();
        let is_dir = self.node(id)?.is_dir();
        self.memory.reserve(newname.len() as u64)?;
        if let Some(d) = self.node_mut(olddir)?.dir_mut() {
            d.remove(oldname, is_dir);
        }
        self.memory.release(oldname.len() as u64);
        self.node_mut(olddir)?.touch_modify(now);
        let nd = self.node_mut(newdir)?;
        if let Some(d) = nd.dir_mut() {
            d.insert(newname, id, is_dir);
        }
        nd.touch_modify(now);
        let n = self.node_mut(id)?;
        for link in n.links.iter_mut() {
            if link.0 == olddir && link.1 == oldname {
                *link = (newdir, newname.to_owned());
                break;
            }
        }
        n.name = newname.to_owned();
        if let Some(d) = n.dir_mut() {
            d.parent = newdir;
        }
        n.touch_change(now);
        Ok(())
    }

    /// Adds the name `dir/name` for the existing non-directory `target` (`link(2)`).
    pub fn link(&mut self, cred: &Cred, dir: NodeId, name: &str, target: NodeId) -> Result<()> {
        check_name(name)?;
        self.check_dir_writable(cred, dir)?;
        let t = self.node(target)?;
        if t.is_dir() {
            return Err(Error::NotPermitted);
        }
        if t.links.is_empty() {
            return Err(Error::NotFound);
        }
        if t.links.len() >= LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        if self.dir(dir)?.get(name).is_some() {
            return Err(Error::Exists);
        }
        self.memory.reserve(name.len() as u64)?;
        let now = self.now();
        let d = self.node_mut(dir)?;
        if let Some(dd) = d.dir_mut() {
            dd.insert(name, target, false);
        }
        d.touch_modify(now);
        let t = self.node_mut(target)?;
        t.links.push((dir, name.to_owned()));
        t.touch_change(now);
        Ok(())
    }
}
