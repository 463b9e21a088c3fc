//! The I/O system calls with a buffer in process memory: [`Kernel::read_user`] and
//! [`Kernel::write_user`], for any descriptor (a file of a mount or a pipe).
//!
//! A read stores into the process a page at a time through its MMU, faulting pages in as
//! a store of the program would (`Memory::write`, as [`Kernel::write_memory`]): a store
//! never lands in a frame its mapping no longer maps. From a pipe the bytes go straight
//! from its chunks (the pipe's lock released first); from a file through a kernel buffer
//! the mount driver fills.
//!
//! A write of at least [`LEND_THRESHOLD`] bytes from a mapping *lends* the pages instead
//! of copying them (vm's `MappingRef::lend`, a snapshot: a later store copies, the loan
//! keeps the bytes it had): into a pipe, which holds the loan until a reader has copied
//! the bytes out, or to the mount driver for a file of an uncached mount, which sends the
//! frames' bytes after each `Twrite` header with a vectored write (`Chan::write_parts`).
//! Shorter writes, memory that is no mapping (exec's segments), a part of the range
//! past its mapping, writes to files of cached mounts (the mount cache takes a copy
//! anyway) and ranges vm will not lend are copied: loaded a page at a time through the
//! MMU, as [`Kernel::read_memory`] does, a piece at a time.
//!
//! Lock order: a process's memory lock is taken for each copy and released before the
//! pipe or the server is asked, so no lock of the kernel's is held while a call blocks.

use vm::PAGE_SIZE;

use crate::counters::Counters;
use crate::error::KernelError;
use crate::fd::{FileDescription, OpenFile};
use crate::image_file::identity_of;
use crate::kernel::Kernel;
use crate::lent::LentPages;
use crate::pipe::{Chunk, End, Pipe};
use crate::process::{lock, Pid, Proc};
use crate::sysfile::io_end;

/// The most bytes a read or write of a file moves through one kernel buffer: a long
/// transfer is several of these, so its buffer stays small.
const USER_PIECE: usize = 32 * PAGE_SIZE;

/// The shortest write (or piece of a pipe write) that lends its pages rather than copy
/// them, by default ([`KernelConfig::lend_threshold`](crate::KernelConfig)): a page's
/// worth of bytes. Below it a loan (vm's locks, a page list, perhaps a
/// write-protect) costs more than the copy it saves; `benches/loan_bench.rs` measures the
/// two side by side.
pub const LEND_THRESHOLD: usize = PAGE_SIZE;

/// The most bytes one loan of a file write holds: a longer write is several loans, one
/// after another, so a write of a huge mapping does not make every page of it read only
/// at once.
const LEND_PIECE: usize = 256 * PAGE_SIZE;

impl Kernel {
    /// Reads at most `len` bytes from `fd` into `pid`'s memory at `addr` (a file: at the
    /// descriptor's offset, which it advances; a pipe: what it holds, as
    /// [`Kernel::read`]). Returns the bytes read, 0 at end of file. The memory is
    /// written as the program's stores would be (pages faulted in, copy on write
    /// broken); an address it may not write fails the call
    /// ([`KernelError::Fault`], [`KernelError::ReadOnly`]) and the bytes read for it are
    /// lost, as with Linux's `EFAULT`.
    pub fn read_user(
        &self,
        pid: Pid,
        fd: usize,
        addr: u64,
        len: usize,
    ) -> Result<usize, KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        user_range(addr, len)?;
        let result = match self.open_file(&proc, fd)? {
            OpenFile::Pipe(end) => Self::pipe_end(&end, End::Read, fd)
                .and_then(|pipe| self.read_user_pipe(&proc, pipe, addr, len, &intr)),
            OpenFile::File(file) => self.read_user_file(&proc, &file, addr, len, &intr),
        };
        self.safe_point();
        result
    }

    /// Writes `len` bytes of `pid`'s memory at `addr` to `fd` (a file: at the
    /// descriptor's offset, which it advances; a pipe: blocking for room, as
    /// [`Kernel::write`]). Returns the bytes written. The memory is read as the
    /// program's loads would be (pages faulted in); an address it may not read fails
    /// the call ([`KernelError::Fault`]) or ends it with the count written before it.
    pub fn write_user(
        &self,
        pid: Pid,
        fd: usize,
        addr: u64,
        len: usize,
    ) -> Result<usize, KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        user_range(addr, len)?;
        let result = match self.open_file(&proc, fd)? {
            OpenFile::Pipe(end) => Self::pipe_end(&end, End::Write, fd).and_then(|pipe| {
                pipe.write_with(len, &intr, self.counters(), |done, n| {
                    self.user_chunks(&proc, addr + done as u64, n)
                })
            }),
            OpenFile::File(file) => self.write_user_file(&proc, &file, addr, len, &intr),
        };
        self.safe_point();
        result
    }

    /// Takes what a pipe holds (at most `len` bytes) and stores it into process memory, a
    /// slice at a time straight from the pipe's chunks (copied bytes, or lent frames'
    /// bytes): one copy, with no lock of the pipe held while the stores fault. Bytes taken
    /// and not stored (the store faulted) are lost, as with Linux's `EFAULT`; the count
    /// stored before a fault is returned.
    fn read_user_pipe(
        &self,
        proc: &Proc,
        pipe: &Pipe,
        addr: u64,
        len: usize,
        intr: &mnt::Interrupt,
    ) -> Result<usize, KernelError> {
        let pieces = pipe.take(len, intr, self.counters())?;
        let mut done = 0;
        let mut stored = Ok(());
        for piece in &pieces {
            stored = piece.for_each_slice(|bytes| {
                self.store_user(proc, addr + done as u64, bytes)?;
                done += bytes.len();
                Ok(())
            });
            if stored.is_err() {
                break;
            }
        }
        // Chunks read to their end go with no lock held: their loans return.
        drop(pieces);
        match stored {
            Err(_) if done > 0 => Ok(done),
            Err(err) => Err(err),
            Ok(()) => Ok(done),
        }
    }

    /// Reads a file into process memory, a piece at a time, stopping at a short read.
    fn read_user_file(
        &self,
        proc: &Proc,
        file: &FileDescription,
        addr: u64,
        len: usize,
        intr: &mnt::Interrupt,
    ) -> Result<usize, KernelError> {
        let offset = file.offset();
        io_end(offset, len)?;
        let mut buf = vec![0u8; len.min(USER_PIECE)];
        let mut done = 0;
        while done < len {
            let want = (len - done).min(USER_PIECE);
            let n = match self.read_at(file, offset + done as u64, &mut buf[..want], intr) {
                Ok(n) => n,
                Err(_) if done > 0 => break,
                Err(err) => return Err(err),
            };
            let stored = self.store_user(proc, addr + done as u64, &buf[..n]);
            file.advance(n);
            stored?;
            done += n;
            if n < want || intr.is_pending() {
                break;
            }
        }
        Ok(done)
    }

    /// Writes process memory to a file, a piece at a time, stopping at a short write.
    fn write_user_file(
        &self,
        proc: &Proc,
        file: &FileDescription,
        addr: u64,
        len: usize,
        intr: &mnt::Interrupt,
    ) -> Result<usize, KernelError> {
        let offset = file.offset();
        io_end(offset, len)?;
        let mut done = 0;
        // The mount cache keeps a copy of what is written: it gets the bytes copied.
        if file.cache.is_none() {
            while len - done >= self.inner.config.lend_threshold {
                let at = addr + done as u64;
                let Some(lent) = self.lend_user(proc, at, (len - done).min(LEND_PIECE)) else {
                    break;
                };
                let n = match self.write_lent(file, offset + done as u64, &lent, intr) {
                    Ok(n) => n,
                    Err(_) if done > 0 => return Ok(done),
                    Err(err) => return Err(err),
                };
                let asked = lent.len();
                // The loan goes back before the next is taken.
                drop(lent);
                file.advance(n);
                done += n;
                if n < asked || done == len || intr.is_pending() {
                    return Ok(done);
                }
            }
            if done > 0 && done == len {
                return Ok(done);
            }
        }
        let mut buf = vec![0u8; (len - done).min(USER_PIECE)];
        // A zero-length write is still a message, as for `write`.
        loop {
            let want = (len - done).min(USER_PIECE);
            let loaded = self.load_user(proc, addr + done as u64, &mut buf[..want]);
            let n = match loaded
                .and_then(|()| self.write_at(file, offset + done as u64, &buf[..want], intr))
            {
                Ok(n) => n,
                Err(_) if done > 0 => break,
                Err(err) => return Err(err),
            };
            file.advance(n);
            done += n;
            if n < want || done == len || intr.is_pending() {
                break;
            }
        }
        Ok(done)
    }

    /// Writes the lent bytes to `file` at `offset` with no copy (the mount driver sends
    /// the frames' bytes), then into the pages mappings of the file hold, as `write_at`.
    fn write_lent(
        &self,
        file: &FileDescription,
        offset: u64,
        lent: &LentPages,
        intr: &mnt::Interrupt,
    ) -> Result<usize, KernelError> {
        let pages = lent.shared_pages();
        let parts: Vec<&[u8]> = pages
            .iter()
            .map(|(bytes, range)| &bytes[range.clone()])
            .collect();
        let n = file.chan.get().write_parts(offset, &parts, intr)?;
        let identity = identity_of(file.chan.get());
        let mut at = 0;
        for part in &parts {
            if at >= n {
                break;
            }
            let k = part.len().min(n - at);
            self.vm()
                .wrote_mapped(&identity, offset + at as u64, &part[..k]);
            at += k;
        }
        Ok(n)
    }

    /// The chunks a pipe gets for `n` bytes of process memory at `at`: the pages lent if
    /// there are enough of them in one mapping, the rest copied.
    fn user_chunks(&self, proc: &Proc, at: u64, n: usize) -> Result<Vec<Chunk>, KernelError> {
        let mut chunks = Vec::new();
        let mut lent = 0;
        if n >= self.inner.config.lend_threshold {
            if let Some(pages) = self.lend_user(proc, at, n) {
                lent = pages.len();
                chunks.push(Chunk::Lent(Box::new(pages)));
            }
        }
        if lent < n {
            let mut buf = vec![0u8; n - lent];
            self.load_user(proc, at + lent as u64, &mut buf)?;
            chunks.push(Chunk::Copied(buf));
        }
        Ok(chunks)
    }

    /// Lends up to `n` bytes at `at`: as many as the mapping there holds, if that is at
    /// least the lending threshold and the program may read them; `None` otherwise (copy).
    fn lend_user(&self, proc: &Proc, at: u64, n: usize) -> Option<LentPages> {
        // Lent under the memory lock, as a load faults under it: a munmap waits for the
        // loan, which then outlives the mapping as vm's orphans.
        let mem = lock(&proc.mem);
        let region = mem.map_of(at)?;
        if !region.prot.read {
            return None;
        }
        let map = &region.map;
        let len = n.min(usize::try_from(map.end() - at).unwrap_or(usize::MAX));
        if len < self.inner.config.lend_threshold {
            return None;
        }
        let lent = LentPages::lend(map, &self.inner.frames, at, len)?;
        drop(mem);
        Counters::add(&self.counters().user_bytes_lent, len as u64);
        Some(lent)
    }

    /// Copies process memory at `addr` into `buf`, as the program's loads would.
    fn load_user(&self, proc: &Proc, addr: u64, buf: &mut [u8]) -> Result<(), KernelError> {
        let counters = self.counters();
        lock(&proc.mem).read(&self.inner.frames, addr, buf, counters)?;
        Counters::add(&counters.user_bytes_copied, buf.len() as u64);
        Ok(())
    }

    /// Stores `data` in process memory at `addr`, as the program's stores would.
    fn store_user(&self, proc: &Proc, addr: u64, data: &[u8]) -> Result<(), KernelError> {
        lock(&proc.mem).write(&self.inner.frames, addr, data, self.counters())
    }
}

/// Refuses a buffer that would wrap around the address space (EFAULT), before anything
/// is transferred.
fn user_range(addr: u64, len: usize) -> Result<(), KernelError> {
    u64::try_from(len)
        .ok()
        .and_then(|len| addr.checked_add(len))
        .map(|_| ())
        .ok_or(KernelError::Fault {
            addr,
            error: vm::FaultError::BadAddress,
        })
}
