//! The mount-cache operations applied to the vm and the model: opens, reads and writes
//! the kernel's way, length changes, closes, forgets, other clients' changes.

use super::*;

impl Harness {
    /// The mount-cache operations.
    pub(crate) fn mc_step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let cache = self.world.vm.mount_cache();
        match op {
            Op::McOpen {
                file,
                kind,
                append_only,
            } => {
                if self.mc_handles.len() >= MAX_HANDLES {
                    // The oldest channel is closed, so opens keep coming.
                    drop(self.mc_handles.remove(0));
                }
                let index = file.index(MC_FILES);
                let kind = open_kind(*kind);
                let server = &mut self.mc_files[index];
                if kind != OpenKind::Existing {
                    // A create or truncating open empties the file: a new version.
                    server.data.clear();
                    server.vers += 1;
                    changed_through(&mut self.mc_handles, index, self.dev);
                }
                let identity = ident(self.dev, MC_PATH + index as u64, server.vers);
                let length = server.data.len() as u64;
                let handle = cache.open(identity, length, kind, *append_only);
                let cacheable = handle.is_cached();
                prop_assert_eq!(cacheable, !append_only, "{:?}", identity);
                let entry = self
                    .mc_entries
                    .entry((self.dev, MC_PATH + index as u64))
                    .or_default();
                let label = Some((server.vers, length));
                if *append_only {
                    entry.wiped(None);
                } else if kind != OpenKind::Existing || entry.label != label {
                    entry.wiped(label);
                }
                self.mc_handles.push(McHandle {
                    file: index,
                    dev: self.dev,
                    handle,
                    cacheable,
                    exact: true,
                });
            }
            Op::McRead {
                handle,
                aligned,
                offset,
                len,
            } => {
                if self.mc_handles.is_empty() {
                    return Ok(());
                }
                let open = &self.mc_handles[handle.index(self.mc_handles.len())];
                let server = &self.mc_files[open.file].data;
                // Within the file (and just past its end), where the cached bytes are.
                let offset = if *aligned {
                    offset.index(server.len() / PAGE as usize + 1) as u64 * PAGE
                } else {
                    offset.index(server.len() + 1) as u64
                };
                let len = 1 + len.index(2 * PAGE as usize);
                let (bytes, hit) = read_through(&open.handle, server, offset, len);
                prop_assert!(
                    !open.exact || bytes == server_read(server, offset, len),
                    "read {len} at {offset} of file {}",
                    open.file
                );
                let entry = self
                    .mc_entries
                    .entry((open.dev, MC_PATH + open.file as u64))
                    .or_default();
                prop_assert!(
                    entry.holds(offset, hit),
                    "the cache answered {hit} bytes at {offset} it was never given"
                );
                entry.add(offset, bytes.len());
            }
            Op::McWrite {
                handle,
                offset,
                len,
                seed,
            } => {
                if self.mc_handles.is_empty() {
                    return Ok(());
                }
                let chosen = handle.index(self.mc_handles.len());
                let (file, dev) = (self.mc_handles[chosen].file, self.mc_handles[chosen].dev);
                changed_through(&mut self.mc_handles, file, dev);
                let open = &self.mc_handles[chosen];
                let offset = offset.index(MC_MAX_LEN) as u64;
                let len = (1 + len.index(2 * PAGE as usize)).min(MC_MAX_LEN - offset as usize);
                let bytes = patterned_bytes(u64::from(*seed) + 1000, len);
                let cached = open.handle.is_cached();
                let before = open.handle.vers();
                let server = &mut self.mc_files[open.file];
                let pending = open.handle.begin_write();
                server_write(&mut server.data, offset, &bytes);
                server.vers += 1;
                prop_assert_eq!(pending.done(offset, &bytes), before + 1);
                prop_assert_eq!(open.handle.vers(), before + 1);
                let key = (open.dev, MC_PATH + open.file as u64);
                if !open.cacheable {
                    // Written behind the cache: the file's entry, if any, goes.
                    prop_assert!(!open.handle.is_cached());
                    self.mc_entries.remove(&key);
                    return Ok(());
                }
                let entry = self.mc_entries.entry(key).or_default();
                if cached {
                    // The cache bumps its own version, not to the server's.
                    entry.label = entry
                        .label
                        .map(|(vers, length)| (vers + 1, length.max(offset + len as u64)));
                }
                entry.add(offset, len);
            }
            Op::McSetLength { handle, len } => {
                if self.mc_handles.is_empty() {
                    return Ok(());
                }
                let chosen = handle.index(self.mc_handles.len());
                let (file, dev) = (self.mc_handles[chosen].file, self.mc_handles[chosen].dev);
                changed_through(&mut self.mc_handles, file, dev);
                let open = &self.mc_handles[chosen];
                let len = len.index(MC_MAX_LEN + 1);
                let cached = open.handle.is_cached();
                let server = &mut self.mc_files[open.file];
                server.data.resize(len, 0);
                server.vers += 1;
                open.handle.set_length(len as u64, server.vers);
                if !open.cacheable {
                    self.mc_entries
                        .remove(&(open.dev, MC_PATH + open.file as u64));
                } else if cached {
                    self.mc_entries
                        .entry((open.dev, MC_PATH + open.file as u64))
                        .or_default()
                        .wiped(Some((server.vers, len as u64)));
                }
            }
            Op::McClose(handle) => {
                if !self.mc_handles.is_empty() {
                    let index = handle.index(self.mc_handles.len());
                    drop(self.mc_handles.swap_remove(index));
                }
            }
            Op::McServerChange { file, len, seed } => {
                // Another client writes the file. Our channels open on it may read old
                // bytes until they reopen (the cache is validated at open, as in Plan 9);
                // a new open must see the new contents.
                let index = file.index(MC_FILES);
                changed_through(&mut self.mc_handles, index, u64::MAX);
                let server = &mut self.mc_files[index];
                let len = len.map_or(server.data.len(), |len| len.index(MC_MAX_LEN + 1));
                server.data = patterned_bytes(u64::from(*seed) + 2000, len);
                server.vers += 1;
            }
            Op::McForget(file) => {
                let index = file.index(MC_FILES);
                let identity = ident(self.dev, MC_PATH + index as u64, 0);
                cache.forget(identity);
                self.mc_entries.remove(&(self.dev, MC_PATH + index as u64));
            }
            Op::McProgramRead { path, offset, len } => {
                // The kernel reads a program file (its header, say) through the cache.
                let program = self.program(path.index(PATHS));
                let identity = program.file.identity();
                let data = program.file.data();
                let handle = cache.open(identity, data.len() as u64, OpenKind::Existing, false);
                let key = (identity.dev, identity.qid_path);
                let entry = self.mc_entries.entry(key).or_default();
                let label = Some((identity.version, data.len() as u64));
                if handle.is_cached() && entry.label != label {
                    entry.wiped(label);
                }
                let offset = offset.index(data.len() + 1) as u64;
                let len = 1 + len.index(PAGE as usize);
                let (bytes, hit) = read_through(&handle, data, offset, len);
                prop_assert!(bytes == server_read(data, offset, len));
                prop_assert!(entry.holds(offset, hit), "program bytes never given");
                entry.add(offset, bytes.len());
            }
            _ => unreachable!("not a mount-cache operation"),
        }
        Ok(())
    }
}
