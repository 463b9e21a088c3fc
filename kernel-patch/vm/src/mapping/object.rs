//! Mapped objects: the pages of one file within the kernel (keyed without the version, so
//! our own writes never split a file into two objects), or of one piece of shared
//! anonymous memory; the table of them; their counts and their channel.
//!
//! `refs` counts the object's holders: [`ObjectRef`]s, mappings and write-backs in the
//! background. A file object holds its channel while `refs > 0` or one of its pages is
//! dirty: a shared mapping writes its pages back before it lets its reference go, and
//! when that fails the object stays linked at `refs == 0`, with its dirty pages and its
//! channel, until [`Vm::write_back_dirty`] writes them (`unheld.rs`); only a channel
//! that is gone (`FileError::Gone`: the mount is dead) drops them, counted as
//! `dirty_pages_dropped`. A linked file object therefore always has its channel. Its
//! pages are not reclaimed while it is linked, but clean ones through the reverse map.
//!
//! Lock order: object lock → object-table lock. Lookup takes its reference under the table
//! lock; the last put re-checks `refs == 0` under it, with the object lock held for the
//! dirty count, before it unlinks (as the image cache's put does).

use alloc::boxed::Box;
use core::hash::BuildHasherDefault;

use hashbrown::HashMap;

use crate::channel::{ImageChannel, PendingFile, QueueId};
use crate::file::{ImageFile, PathKey};
use crate::frame::{AllocSite, PAGE_BYTES};
use crate::page::{PageIndex, NO_PAGE};
use crate::sync::{Arc, AtomicU32, AtomicU64, Mutex, Ordering};
use crate::table::IdentityHasher;
use crate::vm::{Vm, VmError, VmState};

use super::lineage::Lineage;
use super::rmap::Rmap;

type Hasher = BuildHasherDefault<IdentityHasher>;

/// A mapped object.
pub(crate) struct MemObject {
    /// Never reused; its pages name it as their owner.
    pub(crate) serial: u64,
    /// The file, for a file object; `None` for anonymous memory.
    pub(crate) key: Option<PathKey>,
    /// Holders: [`ObjectRef`]s and mappings.
    pub(crate) refs: AtomicU32,
    /// Write-backs of its pages in flight (counted under the object lock as each takes
    /// its page and the size it writes up to; uncounted when its write returns): a
    /// truncate waits for them, so none lands at the server after the kernel truncates
    /// the file there (`truncate.rs`).
    pub(crate) writing: AtomicU32,
    /// Truncates of it waiting for its write-backs in flight (changed under the object
    /// lock): the gate that new write-backs wait at meanwhile, so a truncate waits only
    /// for those that began before it (`writeback.rs`).
    pub(crate) truncating: AtomicU32,
    /// The object lock.
    pub(crate) state: Mutex<ObjectState>,
}

/// What the object lock protects.
pub(crate) struct ObjectState {
    /// Resident pages by page number in the object; each at ref = the mappings of it
    /// (owner: this object's serial, offset: number × page size).
    pub(crate) pages: HashMap<u64, PageIndex, Hasher>,
    /// Bytes: the file's size as this kernel knows it, or the anonymous memory's length. A
    /// fault wholly past it is a bus error.
    pub(crate) size: u64,
    /// Pages with the dirty mark.
    pub(crate) dirty: u32,
    /// The file's channel (`None` for anonymous memory).
    pub(crate) chan: Option<Arc<ImageChannel>>,
    /// The mappings of this object, by page range.
    pub(crate) rmap: Rmap,
    /// Writes of the kernel's told to the object (`Vm::wrote_mapped`): a page a fault read
    /// from the file while this moved may predate one, and is read again.
    pub(crate) writes: u64,
}

/// The object-table lock's contents: file objects by file, every object and lineage by
/// serial (the reverse map's way from a page's owner to its mappings).
#[derive(Default)]
pub(crate) struct ObjectTable {
    pub(crate) files: HashMap<PathKey, Arc<MemObject>, Hasher>,
    pub(crate) objects: HashMap<u64, Arc<MemObject>, Hasher>,
    pub(crate) lineages: HashMap<u64, Arc<Lineage>, Hasher>,
}

/// Counters of mappings, for [`Statistics`](crate::Statistics).
#[derive(Default)]
pub(crate) struct MapCounters {
    pub(crate) mappings: AtomicU64,
    pub(crate) rmap_records: AtomicU64,
    pub(crate) dirty_pages: AtomicU64,
    pub(crate) writebacks: AtomicU64,
    pub(crate) writeback_errors: AtomicU64,
    pub(crate) dirty_pages_dropped: AtomicU64,
    pub(crate) truncate_gate_waits: AtomicU64,
    pub(crate) bus_errors: AtomicU64,
    pub(crate) migrations: AtomicU64,
}

/// The mappings part of a vm instance.
pub(crate) struct Mappings {
    pub(crate) table: Mutex<ObjectTable>,
    pub(crate) counters: MapCounters,
    pub(crate) loans: super::loan::LoanCounters,
}

impl Default for Mappings {
    fn default() -> Self {
        Self {
            table: Mutex::new(ObjectTable::default()),
            counters: MapCounters::default(),
            loans: Default::default(),
        }
    }
}

/// One reference to a mapped object: what an open file or a shared anonymous region
/// holds to map it. Dropping the last reference (mappings hold their own) frees the
/// object's pages.
pub struct ObjectRef {
    pub(crate) object: Arc<MemObject>,
    pub(crate) vm: Vm,
}

impl ObjectRef {
    /// The object's size in bytes (the file's as this kernel knows it, or the anonymous
    /// memory's length).
    pub fn size(&self) -> u64 {
        self.object.state.lock().size
    }

    /// Pages of the object marked dirty now.
    pub fn dirty_pages(&self) -> u32 {
        self.object.state.lock().dirty
    }

    /// Pages of the object resident now.
    pub fn resident_pages(&self) -> usize {
        self.object.state.lock().pages.len()
    }

    /// Another reference to the same object.
    pub fn share(&self) -> ObjectRef {
        // We hold a reference, so the object is linked and stays so.
        self.object.refs.fetch_add(1, Ordering::AcqRel);
        ObjectRef {
            object: self.object.clone(),
            vm: self.vm.clone(),
        }
    }
}

impl Drop for ObjectRef {
    fn drop(&mut self) {
        self.vm.shared.put_object(&self.object);
        self.vm.shared.trim_free_pool();
    }
}

impl core::fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ObjectRef")
            .field("serial", &self.object.serial)
            .field("file", &self.object.key.is_some())
            .finish()
    }
}

fn new_object(
    shared: &VmState,
    key: Option<PathKey>,
    size: u64,
    chan: Option<Arc<ImageChannel>>,
) -> Result<Arc<MemObject>, VmError> {
    shared.admit(AllocSite::MemObject)?;
    let object = MemObject {
        serial: shared.serial(),
        key,
        refs: AtomicU32::new(1),
        writing: AtomicU32::new(0),
        truncating: AtomicU32::new(0),
        state: Mutex::new(ObjectState {
            pages: HashMap::default(),
            size,
            dirty: 0,
            chan,
            rmap: Rmap::default(),
            writes: 0,
        }),
    };
    Arc::try_new(object).map_err(|_| VmError::NoMemory)
}

impl Vm {
    /// The mapped object of `file`'s file, made if this kernel has none, with one
    /// reference for the caller. `file` is one reference to an open file, handed over: a
    /// new object keeps it as its channel (writes go back through it, so it should be open
    /// for writing if a shared writable mapping will be made), and so does an object whose
    /// channel cannot write when `file` can ([`ImageFile::writable`]; the old channel
    /// parks); otherwise it is closed on the caller's thread before this returns, with no
    /// vm lock held. Asks the file's
    /// length (may block) for a new object.
    pub fn file_object(&self, file: Box<dyn ImageFile>) -> Result<ObjectRef, VmError> {
        let shared = &*self.shared;
        let key = PathKey::of(&file.identity());
        if let Some(object) = shared.find_object(&key) {
            let object = self.object_ref(object);
            let read_only = |object: &ObjectRef| {
                let state = object.object.state.lock();
                !state.chan.as_ref().is_some_and(|chan| chan.writable())
            };
            if !(file.writable() && read_only(&object)) {
                file.close();
                return Ok(object);
            }
            // The object's channel cannot write (it was made through a read-only open):
            // this open's can, and takes its place for the write-backs to come.
            let chan = self.channel_of(file)?;
            let replaced = {
                let mut state = object.object.state.lock();
                if state.chan.as_ref().is_some_and(|chan| chan.writable()) {
                    // Another open upgraded it meanwhile: ours goes.
                    Some(chan)
                } else {
                    state.chan.replace(chan)
                }
            };
            // Parks its file, with no vm lock held.
            drop(replaced);
            return Ok(object);
        }
        let size = match file.length() {
            Ok(size) => size,
            Err(err) => {
                file.close();
                return Err(VmError::Io(err));
            }
        };
        // From here the channel parks its file if anything fails.
        let chan = self.channel_of(file)?;
        let object = new_object(shared, Some(key), size, Some(chan))?;
        let mut table = shared.maps.table.lock();
        if let Some(found) = table.files.get(&key) {
            // Another open made it meanwhile; ours never was linked (its channel parks).
            found.refs.fetch_add(1, Ordering::AcqRel);
            let found = found.clone();
            drop(table);
            return Ok(self.object_ref(found));
        }
        if table.files.try_reserve(1).is_err() || table.objects.try_reserve(1).is_err() {
            return Err(VmError::NoMemory);
        }
        table.files.insert(key, object.clone());
        table.objects.insert(object.serial, object.clone());
        drop(table);
        Ok(self.object_ref(object))
    }

    /// A new object of `len` bytes (page aligned, > 0) of shared anonymous memory, zero
    /// filled on demand, with one reference for the caller.
    pub fn anon_object(&self, len: u64) -> Result<ObjectRef, VmError> {
        use crate::vm::LayoutError;
        if len == 0 {
            return Err(VmError::BadLayout(LayoutError::Empty));
        }
        if !len.is_multiple_of(PAGE_BYTES) {
            return Err(VmError::BadLayout(LayoutError::Misaligned));
        }
        let shared = &*self.shared;
        let object = new_object(shared, None, len, None)?;
        let mut table = shared.maps.table.lock();
        table
            .objects
            .try_reserve(1)
            .map_err(|_| VmError::NoMemory)?;
        table.objects.insert(object.serial, object.clone());
        drop(table);
        Ok(self.object_ref(object))
    }

    /// A channel for `file` (closed on the caller's thread if it cannot be made).
    fn channel_of(&self, file: Box<dyn ImageFile>) -> Result<Arc<ImageChannel>, VmError> {
        let shared = &*self.shared;
        if shared.admit(AllocSite::Channel).is_err() {
            file.close();
            return Err(VmError::NoMemory);
        }
        // A channel's last reference may go on any CPU: its file parks in the shared
        // queue, which every CPU's drain runs.
        let chan = match PendingFile::in_queue(file, &shared.parked, QueueId::SHARED) {
            Ok(pending) => pending.into_channel(&shared.parked),
            Err((_, file)) => {
                file.close();
                return Err(VmError::NoMemory);
            }
        };
        // From here the channel parks its file if anything fails.
        Arc::try_new(chan).map_err(|_| VmError::NoMemory)
    }

    fn object_ref(&self, object: Arc<MemObject>) -> ObjectRef {
        ObjectRef {
            object,
            vm: self.clone(),
        }
    }
}

impl VmState {
    /// Finds the file object of `key` and takes a reference to it.
    fn find_object(&self, key: &PathKey) -> Option<Arc<MemObject>> {
        let table = self.maps.table.lock();
        let object = table.files.get(key)?;
        object.refs.fetch_add(1, Ordering::AcqRel);
        Some(object.clone())
    }

    /// Drops one reference of `object`. The last one unlinks it (after re-checking under
    /// the table lock that nobody found it meanwhile) and frees its pages, its channel
    /// parks; unless a page is dirty (its write-back failed): then the object stays,
    /// linked and with its channel, for [`Vm::write_back_dirty`] (`unheld.rs`). Called
    /// with no vm lock held.
    pub(crate) fn put_object(&self, object: &Arc<MemObject>) {
        if object.refs.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        self.release_unused(object);
    }

    /// Unlinks and frees `object` if nobody holds it and no page of it waits for its
    /// write-back (or it has no channel to write through). Called with no vm lock held.
    pub(crate) fn release_unused(&self, object: &Arc<MemObject>) {
        let pool = &self.pool;
        let mut state = object.state.lock();
        {
            let mut table = self.maps.table.lock();
            if object.refs.load(Ordering::Acquire) != 0 {
                return;
            }
            // The channel rule: a dirty page keeps its object, and the
            // channel to write it through, until it is written back.
            if state.dirty > 0 && state.chan.is_some() {
                return;
            }
            if let Some(key) = &object.key {
                if table
                    .files
                    .get(key)
                    .is_some_and(|linked| linked.serial == object.serial)
                {
                    table.files.remove(key);
                }
            }
            table.objects.remove(&object.serial);
        }
        let mut head = NO_PAGE;
        let mut dropped_dirty = 0u64;
        for (_, page) in state.pages.drain() {
            // No mapping is left, so every page is at ref 0.
            if pool.set_dirty(page, false) {
                dropped_dirty += 1;
            }
            pool.set_uncached(page);
            pool.set_link(page, head);
            head = page.0;
        }
        state.dirty = 0;
        let chan = state.chan.take();
        drop(state);
        let counters = &self.maps.counters;
        if dropped_dirty > 0 {
            counters
                .dirty_pages
                .fetch_sub(dropped_dirty, Ordering::Relaxed);
        }
        if dropped_dirty > 0 && object.key.is_some() {
            // Never with a channel (it would have kept the object): a store lost.
            counters
                .dirty_pages_dropped
                .fetch_add(dropped_dirty, Ordering::Relaxed);
        }
        pool.free_list_of(head);
        // Parks the file (a lock of the kernel's may be held).
        drop(chan);
    }
}
