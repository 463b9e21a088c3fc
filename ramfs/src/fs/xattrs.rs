//! Extended attributes of nodes, and the memory front ends hold for values in flight.

use super::*;

impl Tree {
    /// An extended attribute's value.
    pub fn xattr_get(&self, id: NodeId, name: &str) -> Result<Vec<u8>> {
        self.node(id)?
            .xattrs
            .get(name)
            .cloned()
            .ok_or(Error::NoData)
    }

    /// The names of a node's extended attributes, each followed by a NUL byte
    /// (`listxattr(2)`).
    pub fn xattr_list(&self, id: NodeId) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for k in self.node(id)?.xattrs.keys() {
            out.extend_from_slice(k.as_bytes());
            out.push(0);
        }
        Ok(out)
    }

    pub(super) fn check_xattr_change(&self, cred: &Cred, n: &Node, name: &str) -> Result<()> {
        if name.is_empty() || name.len() > NAME_MAX {
            return Err(Error::Range);
        }
        if !cred.owns(n.uid) && !self.may(cred, n, access::WRITE) {
            return Err(Error::PermissionDenied);
        }
        Ok(())
    }

    /// Sets an extended attribute; its name and value count against the memory limit.
    pub fn xattr_set(
        &mut self,
        cred: &Cred,
        id: NodeId,
        name: &str,
        value: Vec<u8>,
        mode: XattrSetMode,
    ) -> Result<()> {
        let n = self.node(id)?;
        self.check_xattr_change(cred, n, name)?;
        if value.len() > XATTR_SIZE_MAX {
            return Err(Error::Range);
        }
        let old = n.xattrs.get(name).map(|v| (name.len() + v.len()) as u64);
        match (mode, old) {
            (XattrSetMode::Create, Some(_)) => return Err(Error::Exists),
            (XattrSetMode::Replace, None) => return Err(Error::NoData),
            _ => {}
        }
        let new = (name.len() + value.len()) as u64;
        let old = old.unwrap_or(0);
        if new > old {
            self.memory.reserve(new - old)?;
        } else {
            self.memory.release(old - new);
        }
        let now = self.now();
        let n = self.node_mut(id)?;
        n.xattrs.insert(name.to_owned(), value);
        n.touch_change(now);
        Ok(())
    }

    /// Removes an extended attribute.
    pub fn xattr_remove(&mut self, cred: &Cred, id: NodeId, name: &str) -> Result<()> {
        let n = self.node(id)?;
        self.check_xattr_change(cred, n, name)?;
        let now = self.now();
        let n = self.node_mut(id)?;
        let v = n.xattrs.remove(name).ok_or(Error::NoData)?;
        n.touch_change(now);
        self.memory.release((name.len() + v.len()) as u64);
        Ok(())
    }
}
