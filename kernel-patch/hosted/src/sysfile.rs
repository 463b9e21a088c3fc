//! Files (9front's `port/sysfile.c`): walk, open, create, pipe, read, write, seek, close,
//! stat, remove, truncate.

use std::sync::Arc;

use mnt::{FileInfo, OpenMode};

use crate::cached::{self, Opened};
use crate::error::KernelError;
use crate::fd::{FileDescription, OpenFile};
use crate::image_file::identity_of;
use crate::kchan::KChan;
use crate::kernel::Kernel;
use crate::namespace::{clean_path, MountFlags, Namespace};
use crate::pipe;
use crate::process::{lock, Pid, Proc};

impl Kernel {
    /// Walks `names` from the mount that serves them; returns the channel and how that
    /// mount was made.
    pub(crate) fn walk(
        &self,
        namespace: &Namespace,
        path: &str,
        names: &[String],
        intr: &mnt::Interrupt,
    ) -> Result<(KChan, MountFlags), KernelError> {
        let (point, depth) = namespace
            .resolve(names)
            .ok_or_else(|| KernelError::NotMounted(path.to_string()))?;
        let rest: Vec<&str> = names[depth..].iter().map(String::as_str).collect();
        Ok((point.root.walk(&rest, intr)?, point.flags))
    }

    pub(crate) fn walk_path(
        &self,
        proc: &Proc,
        path: &str,
        intr: &mnt::Interrupt,
    ) -> Result<(KChan, MountFlags), KernelError> {
        let names = clean_path(path)?;
        self.walk(&*proc.namespace()?, path, &names, intr)
    }

    /// The mount-cache handle of `chan`, just opened or created: `None` unless its mount
    /// was made with [`MountFlags::CACHE`] (and for directories). A file opened to be
    /// removed at close gets an uncached handle: its entry goes, and its writes forget one
    /// a later open makes.
    fn cache_open(
        &self,
        flags: MountFlags,
        chan: &KChan,
        mode: OpenMode,
        how: Opened,
        intr: &mnt::Interrupt,
    ) -> Result<Option<vm::CachedFile>, KernelError> {
        if !flags.contains(MountFlags::CACHE) {
            return Ok(None);
        }
        let cache = self.inner.vm.mount_cache();
        if mode.remove_on_close {
            // Uncached, yet its writes must reach (forget) an entry a later open makes.
            return Ok(Some(cache.uncached(identity_of(chan.get()))));
        }
        Ok(cached::open(&cache, chan.get(), how, intr)?)
    }

    /// Opens `path`; returns the lowest free descriptor. A regular file of a cached mount
    /// is also stat'ed, for its length and version, and opened in the mount cache: reads
    /// then send nothing for what the cache holds.
    pub fn open(&self, pid: Pid, path: &str, mode: OpenMode) -> Result<usize, KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        let (mut chan, flags) = self.walk_path(&proc, path, &intr)?;
        // A truncating open empties the file: its mappings lose every page (a bus error
        // there now) in the same call, as by `ftruncate(fd, 0)`, vm's part first (see
        // `ftruncate`); an open the server refuses puts the size back and loses nothing.
        let emptied = if mode.truncate {
            Some(self.vm().begin_truncate(&identity_of(chan.get()), 0)?)
        } else {
            None
        };
        chan.get_mut().open(mode, &intr)?;
        if let Some(emptied) = emptied {
            emptied.commit();
        }
        let how = Opened::Existing {
            truncated: mode.truncate,
        };
        let cache = self.cache_open(flags, &chan, mode, how, &intr)?;
        let file = Arc::new(FileDescription::new(chan, cache));
        let fd = lock(&proc.files).insert(OpenFile::File(file));
        Ok(fd)
    }

    /// Creates `path` (permissions `perm`, Plan 9's, `dm::DIR` for a directory) and opens
    /// it with `mode`.
    pub fn create(
        &self,
        pid: Pid,
        path: &str,
        perm: u32,
        mode: OpenMode,
    ) -> Result<usize, KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        let names = clean_path(path)?;
        let Some((name, parent)) = names.split_last() else {
            return Err(KernelError::BadPath(path.to_string()));
        };
        let (mut chan, flags) = self.walk(&*proc.namespace()?, path, parent, &intr)?;
        chan.get_mut().create(name, perm, mode, &intr)?;
        let how = Opened::Created { perm };
        let cache = self.cache_open(flags, &chan, mode, how, &intr)?;
        let file = Arc::new(FileDescription::new(chan, cache));
        let fd = lock(&proc.files).insert(OpenFile::File(file));
        Ok(fd)
    }

    /// A pipe: returns its read end's descriptor and its write end's (the two lowest
    /// free). Reads block while it is empty and return 0 once every write end is closed;
    /// writes block while its [`PIPE_CAPACITY`](crate::PIPE_CAPACITY) bytes are full and
    /// fail with [`KernelError::BrokenPipe`] once every read end is closed; a note
    /// interrupts either ([`KernelError::Interrupted`]). Fork shares both ends.
    pub fn pipe(&self, pid: Pid) -> Result<(usize, usize), KernelError> {
        let proc = self.proc(pid)?;
        let (read, write) = pipe::pipe();
        let mut files = lock(&proc.files);
        let read = files.insert(OpenFile::Pipe(Arc::new(read)));
        let write = files.insert(OpenFile::Pipe(Arc::new(write)));
        Ok((read, write))
    }

    /// What the pipe `fd` (either end) buffers now: bytes not yet read, and how many of
    /// its chunks hold lent pages rather than copied bytes.
    pub fn pipe_buffered(&self, pid: Pid, fd: usize) -> Result<(usize, usize), KernelError> {
        let proc = self.proc(pid)?;
        match self.open_file(&proc, fd)? {
            OpenFile::Pipe(end) => Ok(end.pipe.contents()),
            OpenFile::File(_) => Err(KernelError::BadFd(fd)),
        }
    }

    /// What descriptor `fd` of `proc` names.
    pub(crate) fn open_file(&self, proc: &Proc, fd: usize) -> Result<OpenFile, KernelError> {
        lock(&proc.files).get(fd).ok_or(KernelError::BadFd(fd))
    }

    /// The file of a mount `fd` names; [`KernelError::IsPipe`] for a pipe.
    pub(crate) fn file(&self, proc: &Proc, fd: usize) -> Result<Arc<FileDescription>, KernelError> {
        match self.open_file(proc, fd)? {
            OpenFile::File(file) => Ok(file),
            OpenFile::Pipe(_) => Err(KernelError::IsPipe(fd)),
        }
    }

    /// Reads at the descriptor's offset and advances it by what was read. The offset is not
    /// locked while the server is asked (see `FileDescription::advance`). Fails with
    /// [`KernelError::OffsetOverflow`] if the read could end past the largest offset. From
    /// a pipe's read end: what it holds, up to `buf.len()` bytes (see [`Kernel::pipe`]).
    pub fn read(&self, pid: Pid, fd: usize, buf: &mut [u8]) -> Result<usize, KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        let file = match self.open_file(&proc, fd)? {
            OpenFile::File(file) => file,
            OpenFile::Pipe(end) => return self.read_pipe(&end, fd, buf, &intr),
        };
        let offset = file.offset();
        io_end(offset, buf.len())?;
        let n = self.read_at(&file, offset, buf, &intr)?;
        file.advance(n);
        Ok(n)
    }

    /// Reads at `offset`; the descriptor's offset is left alone. Fails with
    /// [`KernelError::OffsetOverflow`] if the read could end past the largest offset.
    pub fn pread(
        &self,
        pid: Pid,
        fd: usize,
        buf: &mut [u8],
        offset: u64,
    ) -> Result<usize, KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        let file = self.file(&proc, fd)?;
        io_end(offset, buf.len())?;
        self.read_at(&file, offset, buf, &intr)
    }

    /// Writes at the descriptor's offset and advances it by what was written, with the
    /// offset unlocked while the server is asked, as [`Kernel::read`]. Fails with
    /// [`KernelError::OffsetOverflow`] if the write would end past the largest offset.
    /// To a pipe's write end: the bytes are copied into the pipe (see [`Kernel::pipe`]).
    pub fn write(&self, pid: Pid, fd: usize, data: &[u8]) -> Result<usize, KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        let file = match self.open_file(&proc, fd)? {
            OpenFile::File(file) => file,
            OpenFile::Pipe(end) => {
                let pipe = Self::pipe_end(&end, pipe::End::Write, fd)?;
                return Ok(pipe.write(data, &intr, self.counters())?);
            }
        };
        let offset = file.offset();
        io_end(offset, data.len())?;
        let n = self.write_at(&file, offset, data, &intr)?;
        file.advance(n);
        Ok(n)
    }

    /// Writes at `offset`; the descriptor's offset is left alone. Fails with
    /// [`KernelError::OffsetOverflow`] if the write would end past the largest offset.
    pub fn pwrite(
        &self,
        pid: Pid,
        fd: usize,
        data: &[u8],
        offset: u64,
    ) -> Result<usize, KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        let file = self.file(&proc, fd)?;
        io_end(offset, data.len())?;
        self.write_at(&file, offset, data, &intr)
    }

    /// The pipe of `end` if it is the `want` end; a descriptor of the other end is bad for
    /// the call (EBADF, as a file opened without the access).
    pub(crate) fn pipe_end(
        end: &pipe::PipeEnd,
        want: pipe::End,
        fd: usize,
    ) -> Result<&pipe::Pipe, KernelError> {
        if end.end == want {
            Ok(&end.pipe)
        } else {
            Err(KernelError::BadFd(fd))
        }
    }

    /// A read of a pipe's read end into a kernel buffer.
    pub(crate) fn read_pipe(
        &self,
        end: &pipe::PipeEnd,
        fd: usize,
        buf: &mut [u8],
        intr: &mnt::Interrupt,
    ) -> Result<usize, KernelError> {
        let pipe = Self::pipe_end(end, pipe::End::Read, fd)?;
        Ok(pipe.read(buf, intr, self.counters())?)
    }

    /// A read of `file` at `offset`, with the pages mappings of it hold in this kernel
    /// copied over what the server returned: a store through a shared mapping is seen
    /// before it is written back (one copy of each page within the kernel).
    pub(crate) fn read_at(
        &self,
        file: &FileDescription,
        offset: u64,
        buf: &mut [u8],
        intr: &mnt::Interrupt,
    ) -> Result<usize, KernelError> {
        let n = file.read(offset, buf, intr)?;
        let identity = identity_of(file.chan.get());
        self.vm().read_mapped(&identity, offset, &mut buf[..n]);
        Ok(n)
    }

    /// A write of `file` at `offset`; what reached the server is copied into the pages
    /// mappings of the file hold, so every mapping sees it.
    pub(crate) fn write_at(
        &self,
        file: &FileDescription,
        offset: u64,
        data: &[u8],
        intr: &mnt::Interrupt,
    ) -> Result<usize, KernelError> {
        let n = file.write(offset, data, intr)?;
        let identity = identity_of(file.chan.get());
        self.vm().wrote_mapped(&identity, offset, &data[..n]);
        Ok(n)
    }

    /// Sets the descriptor's offset.
    pub fn seek(&self, pid: Pid, fd: usize, offset: u64) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let file = self.file(&proc, fd)?;
        file.set_offset(offset);
        Ok(())
    }

    /// Closes a descriptor. If it was the last reference to the open file, the clunk is
    /// sent now and waited for (Plan 9's `cclose`), and its failure is returned; otherwise
    /// the other holders keep the file open.
    pub fn close(&self, pid: Pid, fd: usize) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        let removed = lock(&proc.files).remove(fd);
        let file = match removed {
            Some(OpenFile::File(file)) => file,
            // The end closes when its last holder lets it go.
            Some(OpenFile::Pipe(end)) => {
                drop(end);
                return Ok(());
            }
            None => return Err(KernelError::BadFd(fd)),
        };
        match Arc::try_unwrap(file) {
            Ok(file) => Ok(file.chan.clunk(&intr)?),
            Err(shared) => {
                drop(shared);
                Ok(())
            }
        }
    }

    /// The descriptors `pid` has open.
    pub fn open_files(&self, pid: Pid) -> Result<usize, KernelError> {
        Ok(lock(&self.proc(pid)?.files).count())
    }

    /// The attributes of `path`.
    pub fn stat(&self, pid: Pid, path: &str) -> Result<FileInfo, KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        let (chan, _) = self.walk_path(&proc, path, &intr)?;
        let info = chan.get().stat(&intr)?;
        chan.clunk(&intr)?;
        Ok(info)
    }

    /// The attributes of an open file.
    pub fn fstat(&self, pid: Pid, fd: usize) -> Result<FileInfo, KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        let file = self.file(&proc, fd)?;
        Ok(file.chan.get().stat(&intr)?)
    }

    /// Removes `path`. On a cached mount the file leaves the mount cache first.
    pub fn remove(&self, pid: Pid, path: &str) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        let (chan, flags) = self.walk_path(&proc, path, &intr)?;
        if flags.contains(MountFlags::CACHE) {
            self.inner.vm.mount_cache().forget(identity_of(chan.get()));
        }
        Ok(chan.remove(&intr)?)
    }

    /// Sets the length of the file at `path` to `length` (a `wstat` of the length, as
    /// Plan 9's `truncate` by `dirwstat`). On a cached mount the file's cached data is
    /// wiped and relabelled with the server's new version and length, as by a truncating
    /// open, or dropped if the outcome is unknown.
    pub fn truncate(&self, pid: Pid, path: &str, length: u64) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        let (chan, flags) = self.walk_path(&proc, path, &intr)?;
        let cache = flags
            .contains(MountFlags::CACHE)
            .then(|| self.inner.vm.mount_cache());
        self.truncate_chan(chan, cache.as_ref(), length, &intr)
    }

    /// Truncates (or extends) the file `fd` has open to `length` bytes, as
    /// [`truncate`](Self::truncate) does by path: the file's mappings first (every page
    /// past the end unmapped, private copies too; the last page's bytes past it read as
    /// zeros; write-backs in flight finished), then the server and the mount cache.
    pub fn ftruncate(&self, pid: Pid, fd: usize, length: u64) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        let file = self.file(&proc, fd)?;
        let chan = self.walk_again(&proc, &file, &intr)?;
        let cache = (file.cache.is_some()).then(|| self.inner.vm.mount_cache());
        self.truncate_chan(chan, cache.as_ref(), length, &intr)
    }

    /// Truncates the file of `chan` (a walked channel, clunked here) to `length`. Mappings
    /// of the file lose their pages past the end (a bus error there now), and their
    /// write-backs in flight land, before the server truncates: none is then written past
    /// the new end. The pages leave vm only once the server has truncated (a refused
    /// truncate puts the old size back with every store kept).
    fn truncate_chan(
        &self,
        mut chan: KChan,
        cache: Option<&vm::MountCache>,
        length: u64,
        intr: &mnt::Interrupt,
    ) -> Result<(), KernelError> {
        let pending = match self.vm().begin_truncate(&identity_of(chan.get()), length) {
            Ok(pending) => pending,
            Err(err) => {
                let _ = chan.clunk(intr);
                return Err(err.into());
            }
        };
        let result = cached::truncate(cache, chan.get_mut(), length, intr);
        if result.is_ok() {
            pending.commit();
        } else {
            pending.abort();
        }
        let clunked = chan.clunk(intr);
        result?;
        Ok(clunked?)
    }
}

/// The offset just past `len` bytes at `offset`. An I/O that would pass the largest file
/// offset is refused before the server is asked: past it no offset can be named, and the
/// offsets the mount driver and the descriptor compute must not wrap.
pub(crate) fn io_end(offset: u64, len: usize) -> Result<u64, KernelError> {
    u64::try_from(len)
        .ok()
        .and_then(|bytes| offset.checked_add(bytes))
        .ok_or(KernelError::OffsetOverflow { offset, len })
}
