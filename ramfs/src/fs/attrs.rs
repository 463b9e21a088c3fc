//! Changing a node's attributes: POSIX setattr (9P2000.L), Plan 9 wstat (9P2000),
//! each all or nothing; and the figures statfs reports.

use super::*;

impl Tree {
    /// Changes attributes by POSIX rules (9P2000.L Tsetattr): all or nothing.
    pub fn setattr(&mut self, cred: &Cred, id: NodeId, set: SetAttrs) -> Result<()> {
        let n = self.node(id)?;
        if let Some(p) = set.perm {
            // Clearing set-id bits is what Linux's client asks itself before someone
            // else's write: a writer may do that much.
            let clears = setid::only_clears_setid(n.perm, p & 0o7777)
                && (set.opened_for_write || self.may(cred, n, access::WRITE));
            if !cred.owns(n.uid) && !clears {
                return Err(Error::NotPermitted);
            }
        }
        if let Some(uid) = set.uid {
            if uid != n.uid && !cred.skips_checks() {
                return Err(Error::NotPermitted);
            }
        }
        if let Some(gid) = set.gid {
            let allowed = cred.skips_checks() || (cred.uid == n.uid && self.in_group(cred, gid));
            if gid != n.gid && !allowed {
                return Err(Error::NotPermitted);
            }
        }
        if let Some(size) = set.size {
            match n.content {
                Content::File(_) => {}
                Content::Dir(_) => return Err(Error::IsDir),
                _ => return Err(Error::Invalid),
            }
            if size > MAX_FILE_SIZE {
                return Err(Error::FileTooBig);
            }
            if !set.opened_for_write && !self.may(cred, n, access::WRITE) {
                return Err(Error::PermissionDenied);
            }
        }
        for t in [set.atime, set.mtime].into_iter().flatten() {
            let ok = match t {
                TimeSet::At(_) => cred.owns(n.uid),
                TimeSet::Now => cred.owns(n.uid) || self.may(cred, n, access::WRITE),
            };
            if !ok {
                return Err(if cred.owns(n.uid) {
                    Error::PermissionDenied
                } else {
                    Error::NotPermitted
                });
            }
        }
        // Validated: apply.
        let now = self.now();
        if let Some(size) = set.size {
            self.set_size(id, size)?;
        }
        let n = self.node_mut(id)?;
        if let Some(p) = set.perm {
            n.perm = p & 0o7777;
        }
        if let Some(uid) = set.uid {
            n.uid = uid;
        }
        if let Some(gid) = set.gid {
            n.gid = gid;
        }
        if set.uid.is_some() || set.gid.is_some() {
            n.perm = setid::after_chown(n.perm, n.is_dir(), cred);
        }
        if set.size.is_some() {
            n.perm = setid::after_write(n.perm, cred);
        }
        let at = |t: TimeSet| match t {
            TimeSet::Now => now,
            TimeSet::At(ts) => ts,
        };
        if let Some(t) = set.atime {
            n.stamps.lock().atime = at(t);
        }
        if let Some(t) = set.mtime {
            n.stamps.lock().mtime = at(t);
        } else if set.size.is_some() {
            n.stamps.lock().mtime = now;
        }
        n.touch_change(now);
        self.sync_file_mode(id);
        Ok(())
    }

    /// Changes attributes by Plan 9 rules (9P2000 Twstat): all or nothing; a new name
    /// renames the file within its directory.
    pub fn wstat(&mut self, cred: &Cred, id: NodeId, w: Wstat) -> Result<()> {
        let n = self.node(id)?;
        let mut rename: Option<(NodeId, String, String)> = None;
        if let Some(name) = w.name.as_ref().filter(|nm| **nm != n.name) {
            if id == self.root {
                return Err(Error::WstatProhibited);
            }
            check_name(name)?;
            let (dir, old) = n.links.first().cloned().ok_or(Error::NotFound)?;
            self.check_dir_writable(cred, dir)?;
            if self.dir(dir)?.get(name).is_some() {
                return Err(Error::Exists);
            }
            rename = Some((dir, old, name.clone()));
        }
        if let Some(m) = &w.mode {
            if m.is_dir != n.is_dir() {
                return Err(Error::WstatFileDir);
            }
            if !cred.owns(n.uid) {
                return Err(Error::NotOwner);
            }
        }
        if (w.atime.is_some() || w.mtime.is_some()) && !cred.owns(n.uid) {
            return Err(Error::NotOwner);
        }
        if let Some(len) = w.length {
            match n.content {
                Content::File(_) => {}
                Content::Dir(_) => {
                    if len != 0 {
                        return Err(Error::WstatProhibited);
                    }
                }
                _ => return Err(Error::WstatProhibited),
            }
            if len > MAX_FILE_SIZE {
                return Err(Error::FileTooBig);
            }
            if !self.may(cred, n, access::WRITE) {
                return Err(Error::PermissionDenied);
            }
        }
        if let Some(uid) = &w.uid {
            if *uid != self.users.name_of(n.uid) {
                return Err(Error::WstatProhibited);
            }
        }
        // The new group, and whether its name must be registered first. Nothing is
        // registered before every check has passed: a refused wstat changes nothing.
        let mut new_group: Option<(u32, Option<&str>)> = None;
        let mut group_cost = 0;
        if let Some(gname) = &w.gid {
            if *gname != self.users.name_of(n.gid) {
                if !cred.owns(n.uid) {
                    return Err(Error::NotOwner);
                }
                let (gid, register) = match self.users.lookup(gname) {
                    Some(gid) => (gid, None),
                    None => (self.users.number_for_new(gname), Some(gname.as_str())),
                };
                if !self.in_group(cred, gid) && !cred.is_privileged() {
                    return Err(Error::NotInGroup);
                }
                if register.is_some() {
                    group_cost = Self::check_new_user_name(gname)?;
                }
                new_group = Some((gid, register));
            }
        }
        let rename_cost = rename.as_ref().map_or(0, |(_, _, new)| new.len() as u64);
        if !self.memory.fits(rename_cost + group_cost) {
            return Err(Error::NoSpace);
        }
        // Validated: apply.
        let changed = rename.is_some()
            || new_group.is_some()
            || w.mode.is_some()
            || w.atime.is_some()
            || w.mtime.is_some()
            || w.length.is_some();
        if !changed {
            // All don't-touch: Plan 9's request to make the file stable. Nothing to do.
            return Ok(());
        }
        let now = self.now();
        if let Some(len) = w.length {
            if self.node(id)?.is_dir() {
                // A directory's length is always 0: nothing to do.
            } else {
                self.set_size(id, len)?;
                self.node_mut(id)?.touch_modify(now);
            }
        }
        // Memory for the group and the new name fits (checked above; a length change
        // only frees), so neither step below fails.
        let new_gid = match new_group {
            Some((_, Some(gname))) => Some(self.user_id(gname)?),
            Some((gid, None)) => Some(gid),
            None => None,
        };
        if let Some((dir, old, new)) = rename {
            self.move_entry(id, dir, &old, dir, &new)?;
        }
        let n = self.node_mut(id)?;
        if let Some(m) = w.mode {
            n.perm = (n.perm & !0o777) | (m.perm & 0o777);
            n.append = m.append && !m.is_dir;
            n.excl = m.excl;
            n.tmp = m.tmp;
        }
        if let Some(t) = w.atime {
            n.stamps.lock().atime = Timespec {
                sec: t.into(),
                nsec: 0,
            };
        }
        if let Some(t) = w.mtime {
            n.stamps.lock().mtime = Timespec {
                sec: t.into(),
                nsec: 0,
            };
        }
        if let Some(g) = new_gid {
            n.gid = g;
        }
        n.touch_change(now);
        self.sync_file_mode(id);
        Ok(())
    }

    /// Tells a regular file's data cell its node's permission bits and `DMAPPEND` flag
    /// after a change (writes through handles decide by the cell's copy).
    pub(super) fn sync_file_mode(&self, id: NodeId) {
        if let Ok(n) = self.node(id) {
            if let Content::File(f) = &n.content {
                f.set_mode(n.perm, n.append);
            }
        }
    }

    /// Figures for statfs: 4 KiB blocks of the memory limit, and files at
    /// [`NODE_COST`] each.
    pub fn statfs(&self) -> FsStats {
        let bsize = PAGE_SIZE as u64;
        FsStats {
            bsize: PAGE_SIZE as u32,
            blocks: self.memory.limit() / bsize,
            bfree: self.memory.free() / bsize,
            files: self.memory.limit() / NODE_COST,
            ffree: self.memory.free() / NODE_COST,
            namelen: NAME_MAX as u32,
            used: self.memory.used(),
            limit: self.memory.limit(),
        }
    }

    /// Number of nodes, the root included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Reserves memory for data a front end holds on behalf of a client (an extended
    /// attribute value being written through a fid before it becomes part of the tree,
    /// or a copy of one being read through a fid), so that such buffers count against
    /// the limit too.
    pub fn reserve_pending(&mut self, bytes: u64) -> Result<()> {
        self.memory.reserve(bytes)
    }

    /// Gives back what [`Tree::reserve_pending`] took.
    pub fn release_pending(&mut self, bytes: u64) {
        self.memory.release(bytes);
    }
}
