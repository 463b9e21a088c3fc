//! Memory mappings: `mmap`, `munmap`, `msync`, `mprotect` and `discard` (MADV_DONTNEED),
//! over vm's mapped objects and mappings (`vm::MappingRef`).
//!
//! A file mapping's object holds a channel of its own, walked to the descriptor's file
//! again from its attach's root (an open fid cannot be walked) and opened with the same
//! access, so it outlives the descriptor (POSIX: closing the file
//! does not unmap it) and write-back goes through it. Faults hold the memory lock while vm
//! reads a page, as every fault does; write-back (`msync`, `munmap`, exit) runs with no
//! lock of the kernel's held. A range that covers part of a mapping splits it first
//! (`vm::MappingRef::carve`, under the memory lock, so no fault or fork runs meanwhile):
//! `munmap` then unmaps the mappings inside the range, `mprotect` changes theirs.

use mnt::{Access as OpenAccess, OpenMode};
use vm::{
    FileError, FileIdentity, ImageFile, MapSpec, MappingRef, MappingSync, ObjectRef, SpaceRef,
    PAGE_SIZE,
};

use crate::current;
use crate::error::KernelError;
use crate::fd::FileDescription;
use crate::image_file::identity_of;
use crate::kchan::KChan;
use crate::kernel::Kernel;
use crate::memory::MapRegion;
use crate::process::{lock, Pid, Proc};

const PAGE: u64 = PAGE_SIZE as u64;

/// Where `mmap` places a mapping it is given no address for: the lowest free range at or
/// above this.
pub const MAP_FLOOR: u64 = 0x2000_0000_0000;

/// What a program may do with a mapping's memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prot {
    /// Loads.
    pub read: bool,
    /// Stores.
    pub write: bool,
}

impl Prot {
    /// No access: every access faults.
    pub const NONE: Prot = Prot {
        read: false,
        write: false,
    };
    /// Loads only.
    pub const READ: Prot = Prot {
        read: true,
        write: false,
    };
    /// Loads and stores.
    pub const READ_WRITE: Prot = Prot {
        read: true,
        write: true,
    };
}

/// An `mmap` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapRequest {
    /// The open file to map; `None` for anonymous memory.
    pub fd: Option<usize>,
    /// Where in the file (page aligned).
    pub offset: u64,
    /// Bytes (rounded up to whole pages).
    pub len: u64,
    /// Shared (stores reach the file and every other shared mapping, and fork shares) or
    /// private (stores copy; fork copies on write).
    pub shared: bool,
    /// The protection.
    pub prot: Prot,
    /// The address (page aligned), or `None` to let the kernel choose.
    pub addr: Option<u64>,
}

/// A mapped file's channel, as vm reads and writes it.
struct MapFile {
    chan: KChan,
    identity: FileIdentity,
    /// Opened for writing.
    writable: bool,
}

fn file_error(err: &mnt::MntError) -> FileError {
    match err {
        mnt::MntError::Interrupted => FileError::Interrupted,
        // The mount is dead: nothing can reach the server again (vm drops the dirty pages
        // of a file nobody holds only then).
        mnt::MntError::Hungup | mnt::MntError::Broken(_) | mnt::MntError::Transport(_) => {
            FileError::Gone
        }
        _ => FileError::Io,
    }
}

impl ImageFile for MapFile {
    fn identity(&self) -> FileIdentity {
        self.identity
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        current::with_interrupt(|intr| self.chan.get().read(offset, buf, intr))
            .map_err(|err| file_error(&err))
    }

    fn length(&self) -> Result<u64, FileError> {
        current::with_interrupt(|intr| self.chan.get().stat(intr))
            .map(|info| info.length)
            .map_err(|err| file_error(&err))
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, FileError> {
        current::with_interrupt(|intr| self.chan.get().write(offset, buf, intr))
            .map_err(|err| file_error(&err))
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn close(self: Box<Self>) {
        // Dropping queues the clunk (vm calls this where a close may run).
        drop(self.chan);
    }
}

fn page_range(addr: u64, len: u64) -> Result<(u64, u64), KernelError> {
    if !addr.is_multiple_of(PAGE) || len == 0 {
        return Err(KernelError::BadMapping("unaligned address or empty range"));
    }
    let end = addr
        .checked_add(len.div_ceil(PAGE) * PAGE)
        .ok_or(KernelError::BadMapping("range overflows"))?;
    Ok((addr, end))
}

/// Splits the mapping that straddles `addr` (if one does) in two at `addr`, so every
/// mapping lies wholly on one side of it. Changes nothing if vm cannot allocate the split.
fn split_at(maps: &mut Vec<MapRegion>, addr: u64) -> Result<(), KernelError> {
    let Some(index) = maps
        .iter()
        .position(|region| region.map.base() < addr && addr < region.map.end())
    else {
        return Ok(());
    };
    let region = maps.swap_remove(index);
    let (base, writable) = (region.map.base(), region.map.is_writable());
    match region.map.carve(base, addr, writable) {
        Ok(carved) => {
            for map in [Some(carved.middle), carved.tail].into_iter().flatten() {
                maps.push(MapRegion { map, ..region });
            }
            Ok(())
        }
        Err(failed) => {
            maps.push(MapRegion {
                map: failed.mapping,
                ..region
            });
            Err(KernelError::Vm(failed.error))
        }
    }
}

/// The mappings of `maps` inside `start..end` (after [`split_at`] of both ends).
fn inside(maps: &[MapRegion], start: u64, end: u64) -> Vec<usize> {
    (0..maps.len())
        .filter(|&index| start <= maps[index].map.base() && maps[index].map.end() <= end)
        .collect()
}

/// Whether `maps` map every page of `start..end`.
fn covered(maps: &[MapRegion], start: u64, end: u64) -> bool {
    let mut ranges: Vec<(u64, u64)> = maps
        .iter()
        .map(|region| (region.map.base(), region.map.end()))
        .filter(|&(base, stop)| base < end && start < stop)
        .collect();
    ranges.sort_unstable();
    let mut reached = start;
    for (base, stop) in ranges {
        if base > reached {
            return false;
        }
        reached = reached.max(stop);
    }
    reached >= end
}

impl Kernel {
    /// Maps a file or anonymous memory into `pid`'s address space; returns the address. A
    /// shared writable file mapping needs the descriptor open for writing; a file mapping
    /// needs it open for reading.
    pub fn mmap(&self, pid: Pid, request: MapRequest) -> Result<u64, KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        if request.len == 0 || !request.offset.is_multiple_of(PAGE) {
            return Err(KernelError::BadMapping("empty or unaligned mapping"));
        }
        let len = request
            .len
            .checked_next_multiple_of(PAGE)
            .ok_or(KernelError::BadMapping("length overflows"))?;
        if let Some(addr) = request.addr {
            page_range(addr, len)?;
        }
        let (object, may_write) = match request.fd {
            Some(fd) => {
                let (object, writable) = self.map_object(&proc, fd, &request, &intr)?;
                (Some(object), writable || !request.shared)
            }
            None if request.shared => (Some(self.vm().anon_object(len)?), true),
            None => (None, true),
        };
        let result = {
            let mut mem = lock(&proc.mem);
            let base = match request.addr {
                Some(addr) if mem.overlaps(addr, len) => {
                    Err(KernelError::BadMapping("the range is in use"))
                }
                Some(addr) => Ok(addr),
                None => mem
                    .free_range(MAP_FLOOR, len)
                    .ok_or(KernelError::BadMapping("no room")),
            };
            base.and_then(|base| {
                let space: SpaceRef = mem.mmu.clone();
                let spec = MapSpec {
                    base,
                    len,
                    offset: request.offset,
                    shared: request.shared,
                    // A private mapping may always copy; the protection is the kernel's.
                    writable: !request.shared || request.prot.write,
                };
                let map = match &object {
                    Some(object) => object.map(space, spec)?,
                    None => self.vm().map_private_anon(space, spec)?,
                };
                mem.maps.push(MapRegion {
                    map,
                    prot: request.prot,
                    may_write,
                });
                Ok(base)
            })
        };
        drop(object);
        self.safe_point();
        result
    }

    /// The mapped object of `fd`'s file, through a channel of its own, and whether the
    /// descriptor is open for writing.
    fn map_object(
        &self,
        proc: &Proc,
        fd: usize,
        request: &MapRequest,
        intr: &mnt::Interrupt,
    ) -> Result<(ObjectRef, bool), KernelError> {
        let file = self.file(proc, fd)?;
        let mode = file.chan.get().open_mode().ok_or(KernelError::BadFd(fd))?;
        let writable = matches!(mode.access, OpenAccess::Write | OpenAccess::ReadWrite);
        if !mode.can_read() {
            return Err(KernelError::BadMapping("file not open for reading"));
        }
        if request.shared && request.prot.write && !writable {
            return Err(KernelError::BadMapping(
                "shared writable mapping of a file not open for writing",
            ));
        }
        let mut chan = self.walk_again(proc, &file, intr)?;
        let access = if writable {
            OpenAccess::ReadWrite
        } else {
            OpenAccess::Read
        };
        chan.get_mut().open(OpenMode::new(access), intr)?;
        let identity = identity_of(chan.get());
        let object = self.vm().file_object(Box::new(MapFile {
            chan,
            identity,
            writable,
        }))?;
        Ok((object, writable))
    }

    /// A new channel (not open) to the file `file` has open: an open fid cannot be walked
    /// (9P), so its names are walked again from the root of its attach in `proc`'s
    /// namespace, and the file found must be the same (by `qid.path`).
    pub(crate) fn walk_again(
        &self,
        proc: &Proc,
        file: &FileDescription,
        intr: &mnt::Interrupt,
    ) -> Result<KChan, KernelError> {
        let attach = file.chan.get().attach_id();
        let point = proc
            .namespace()?
            .points()
            .into_iter()
            .find(|point| point.root.get().attach_id() == attach)
            .ok_or(KernelError::BadMapping("the file's mount is gone"))?;
        let names: Vec<&str> = file.chan.get().path().iter().map(String::as_str).collect();
        let chan = point.root.walk(&names, intr)?;
        if chan.get().qid().path != file.chan.get().qid().path {
            return Err(KernelError::BadMapping("the file was renamed or removed"));
        }
        Ok(chan)
    }

    /// Unmaps every page of `[addr, addr + len)` (POSIX: the range may cover several
    /// mappings, parts of them and holes), writing the dirty pages of the unmapped parts
    /// back first; returns the first write-back error (the pages are unmapped either
    /// way). A mapping straddling an end is split first; if vm cannot allocate a split,
    /// nothing is unmapped (a split already made at the other end changes no address).
    pub fn munmap(&self, pid: Pid, addr: u64, len: u64) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let _call = proc.notes.begin_call();
        let (start, end) = page_range(addr, len)?;
        let taken: Vec<MapRegion> = {
            let mut mem = lock(&proc.mem);
            split_at(&mut mem.maps, start)?;
            split_at(&mut mem.maps, end)?;
            inside(&mem.maps, start, end)
                .into_iter()
                .rev()
                .map(|index| mem.maps.remove(index))
                .collect()
        };
        let mut result = Ok(());
        for region in taken {
            if let Err(err) = MappingRef::unmap(region.map) {
                result = result.and(Err(KernelError::Vm(err)));
            }
        }
        self.safe_point();
        result
    }

    /// Writes back the dirty pages of the shared file mappings in `[addr, addr + len)`,
    /// with no lock of the kernel's held.
    pub fn msync(&self, pid: Pid, addr: u64, len: u64) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let _call = proc.notes.begin_call();
        let (start, end) = page_range(addr, len)?;
        let maps: Vec<MappingSync> = lock(&proc.mem)
            .maps
            .iter()
            .filter(|region| region.map.base() < end && start < region.map.end())
            .map(|region| region.map.sync_handle())
            .collect();
        let mut result = Ok(());
        for map in maps {
            if let Err(err) = map.sync(start, end - start) {
                result = result.and(Err(KernelError::Vm(err)));
            }
        }
        self.safe_point();
        result
    }

    /// Changes the protection of every page of `[addr, addr + len)`, splitting the
    /// mappings that straddle its ends; their translations go, so the next access is
    /// checked against the new protection. A shared mapping's writability in vm changes
    /// with it: write access to a shared mapping of a file not open for writing is refused
    /// (POSIX's EACCES) before anything changes, as is a range with unmapped pages in it
    /// (ENOMEM). If vm cannot allocate a split, the mappings changed before it keep their
    /// new protection (as Linux's mprotect may leave part of the range changed).
    pub fn mprotect(&self, pid: Pid, addr: u64, len: u64, prot: Prot) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let (start, end) = page_range(addr, len)?;
        let mut mem = lock(&proc.mem);
        if !covered(&mem.maps, start, end) {
            return Err(KernelError::BadMapping("range not wholly mapped"));
        }
        let refused = mem.maps.iter().any(|region| {
            region.map.base() < end && start < region.map.end() && prot.write && !region.may_write
        });
        if refused {
            return Err(KernelError::BadMapping(
                "shared writable mapping of a file not open for writing",
            ));
        }
        split_at(&mut mem.maps, start)?;
        split_at(&mut mem.maps, end)?;
        for index in inside(&mem.maps, start, end) {
            let region = mem.maps.swap_remove(index);
            // A private mapping may always copy in vm; its protection is the kernel's.
            let writable = !region.map.is_shared() || prot.write;
            let (base, stop) = (region.map.base(), region.map.end());
            let carved = region.map.carve(base, stop, writable);
            let (map, result) = match carved {
                Ok(carved) => (carved.middle, Ok(())),
                Err(failed) => (failed.mapping, Err(KernelError::Vm(failed.error))),
            };
            let changed = result.is_ok();
            mem.maps.push(MapRegion {
                map,
                prot: if changed { prot } else { region.prot },
                may_write: region.may_write,
            });
            let last = mem.maps.len() - 1;
            mem.maps.swap(index, last);
            vm::AddressSpace::invalidate(&*mem.mmu, base, stop - base);
            result?;
        }
        Ok(())
    }

    /// Drops the pages of `[addr, addr + len)` in `pid`'s mappings (MADV_DONTNEED): a
    /// private page goes, so the next access reads the file's bytes or zeros again; a
    /// shared mapping's pages stay in the file's object. Returns the pages dropped.
    pub fn discard(&self, pid: Pid, addr: u64, len: u64) -> Result<u64, KernelError> {
        let proc = self.proc(pid)?;
        let (start, end) = page_range(addr, len)?;
        let mem = lock(&proc.mem);
        Ok(mem
            .maps
            .iter()
            .map(|region| region.map.discard(start, end - start))
            .sum())
    }
}
