//! The kernel: its configuration, its process table, and the system calls as methods.
//!
//! Every call names the process it runs for. While a call works for a process, that
//! process's interrupt is the thread's current one (see `current`), so
//! [`Kernel::interrupt`] flushes whatever server request the call is waiting for, a page
//! read of a fault included.
//!
//! Lock order (outermost first): process table → a process's `family`; a process's `mem`
//! (held across faults) → vm's locks. No lock of this module is held while a server is
//! called, except a process's `mem` during a fault (Plan 9's segment lock).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mnt::host::StdPlatform;
use mnt::{AttachArgs, FileInfo, Mount, MountOptions, OpenMode, Transport};
use vm::{Access, FileIdentity, Frame, ImageFile, Mapping, SegmentKind, Vm, PAGE_SIZE};

use crate::cached::{self, Opened};
use crate::check::{KernelCheck, KernelViolation};
use crate::counters::Counters;
use crate::current;
use crate::error::KernelError;
use crate::exec::{self, USER_STACK_TOP};
use crate::fd::{FdTable, OpenFile};
use crate::frames::{FrameStats, HostFrames};
use crate::image_file::{identity_of, ChanFile};
use crate::kchan::KChan;
use crate::memory::{Memory, Region, SegmentInfo};
use crate::namespace::{clean_path, key_of, MountFlags, MountInfo, MountPoint, Namespace};
use crate::page_wait::HostPageWait;
use crate::process::{lock, ForkFlags, NamespaceShare, Pid, Proc, WaitMsg};
use crate::shared::Shared;

/// How a kernel is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    /// Host memory for vm's pages, in frames: the memory limit. When vm needs a page and
    /// every frame is in use, it reclaims cached pages.
    pub memory_frames: u32,
    /// vm's limits (its `max_pages` may exceed `memory_frames`: the frame limit then
    /// decides when reclaim runs).
    pub vm: vm::Config,
    /// The mount cache's limits (8 MiB a file, 256 MiB in all by default).
    pub mount_cache: vm::MountCacheConfig,
    /// The behaviour before the fix of the 2014 bug: an image's channel stays open until
    /// the image's last page is uncached (the kernel pins the channel vm lets go of, and
    /// releases it when the image is gone). A cached program then keeps its file server
    /// connected after every process running it exited and the mount is gone. For showing
    /// that the regression tools catch the bug; never for real use.
    pub legacy_image_channel: bool,
    /// Most threads clunking queued channels at once.
    pub max_close_workers: usize,
    /// Bytes of stack a process gets at exec (page aligned).
    pub stack_size: u64,
}

impl Default for KernelConfig {
    fn default() -> Self {
        Self {
            memory_frames: 16 * 1024,
            vm: vm::Config::default(),
            mount_cache: vm::MountCacheConfig::default(),
            legacy_image_channel: false,
            max_close_workers: 16,
            stack_size: 8 << 20,
        }
    }
}

/// How to start a session with a server and what to attach to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSpec {
    /// msize and dialect to ask for.
    pub options: MountOptions,
    /// User and tree.
    pub attach: AttachArgs,
}

impl Default for MountSpec {
    fn default() -> Self {
        Self {
            options: MountOptions::default(),
            attach: AttachArgs {
                uname: "hosted".to_string(),
                aname: String::new(),
                n_uname: 1000,
            },
        }
    }
}

/// What exec did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecInfo {
    /// The program's entry point.
    pub entry: u64,
    /// The initial stack pointer (it points at `argc`).
    pub stack_pointer: u64,
    /// The identity of the image the program runs from.
    pub identity: FileIdentity,
    /// The new segments.
    pub segments: Vec<SegmentInfo>,
}

/// The kernel's counters and vm's statistics at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// vm's statistics.
    pub vm: vm::Statistics,
    /// Host frames.
    pub frames: FrameStats,
    /// Processes alive.
    pub processes: usize,
    /// Channels made and not yet clunked (held, or queued for clunking).
    pub chans_live: u64,
    /// Channels made.
    pub chans_made: u64,
    /// Clunks (or removes) that failed: a dead server, a flush.
    pub clunk_failures: u64,
    /// Channels that went through the close queue.
    pub closes_queued: u64,
    /// Channels in the close queue or being clunked now.
    pub closes_pending: usize,
    /// Image channels kept open by legacy mode.
    pub legacy_pins: usize,
    /// Reads vm made through image channels (page loads).
    pub image_reads: u64,
    /// Bytes those reads returned.
    pub image_read_bytes: u64,
    /// Those reads that failed.
    pub image_read_errors: u64,
    /// Reads of executable headers.
    pub header_reads: u64,
    /// Faults taken (MMU misses).
    pub faults: u64,
    /// Touches the MMU satisfied without a fault.
    pub mmu_hits: u64,
    /// Successful execs.
    pub execs: u64,
    /// Failed execs.
    pub exec_failures: u64,
    /// Forks.
    pub forks: u64,
    /// Exits.
    pub exits: u64,
}

impl fmt::Display for KernelStats {
    /// `name value` lines, vm's first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.vm)?;
        let lines: [(&str, u64); 18] = [
            ("frames_limit", u64::from(self.frames.limit)),
            ("frames_in_use", self.frames.in_use()),
            ("frames_peak", self.frames.peak),
            ("frames_refused", self.frames.refused),
            ("processes", self.processes as u64),
            ("chans_live", self.chans_live),
            ("chans_made", self.chans_made),
            ("clunk_failures", self.clunk_failures),
            ("closes_queued", self.closes_queued),
            ("closes_pending", self.closes_pending as u64),
            ("legacy_pins", self.legacy_pins as u64),
            ("image_reads", self.image_reads),
            ("image_read_bytes", self.image_read_bytes),
            ("header_reads", self.header_reads),
            ("faults", self.faults),
            ("mmu_hits", self.mmu_hits),
            ("execs", self.execs),
            ("exits", self.exits),
        ];
        for (name, value) in lines {
            writeln!(f, "{name} {value}")?;
        }
        Ok(())
    }
}

struct Inner {
    config: KernelConfig,
    vm: Vm,
    frames: HostFrames,
    shared: Arc<Shared>,
    procs: Mutex<BTreeMap<Pid, Arc<Proc>>>,
    next_pid: AtomicU32,
}

/// A hosted kernel. Cheap to clone; clones are the same kernel.
#[derive(Clone)]
pub struct Kernel {
    inner: Arc<Inner>,
}

impl Kernel {
    /// A kernel with no processes.
    pub fn new(config: KernelConfig) -> Result<Kernel, KernelError> {
        let stack = config.stack_size;
        if stack == 0 || !stack.is_multiple_of(PAGE_SIZE as u64) || stack >= USER_STACK_TOP / 2 {
            return Err(KernelError::BadConfig(
                "stack_size must be a non-zero multiple of the page size, well below the stack top",
            ));
        }
        let frames = HostFrames::new(config.memory_frames);
        let vm = Vm::with_page_wait(
            Box::new(frames.clone()),
            config.vm,
            config.mount_cache,
            Box::new(HostPageWait::default()),
        )?;
        Ok(Kernel {
            inner: Arc::new(Inner {
                config,
                vm,
                frames,
                shared: Shared::new(config.max_close_workers, config.legacy_image_channel),
                procs: Mutex::new(BTreeMap::new()),
                next_pid: AtomicU32::new(1),
            }),
        })
    }

    /// How the kernel was built.
    pub fn config(&self) -> &KernelConfig {
        &self.inner.config
    }

    /// The page and image caches.
    pub fn vm(&self) -> &Vm {
        &self.inner.vm
    }

    /// The host frames, for their counters and failure knob.
    pub fn frames(&self) -> &HostFrames {
        &self.inner.frames
    }

    fn counters(&self) -> &Counters {
        &self.inner.shared.counters
    }

    fn proc(&self, pid: Pid) -> Result<Arc<Proc>, KernelError> {
        lock(&self.inner.procs)
            .get(&pid)
            .cloned()
            .ok_or(KernelError::NoSuchProcess(pid))
    }

    fn new_pid(&self) -> Pid {
        self.inner.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    // ---- processes ----

    /// A first process: no parent, no memory, no files, an empty namespace.
    pub fn spawn(&self) -> Pid {
        let pid = self.new_pid();
        let proc = Proc::new(
            pid,
            None,
            Memory::default(),
            FdTable::default(),
            Arc::new(Namespace::default()),
        );
        lock(&self.inner.procs).insert(pid, Arc::new(proc));
        pid
    }

    /// Forks `pid`: the child shares text, gets the rest copy-on-write, shares the open
    /// files, and gets the namespace `flags` ask for.
    pub fn fork(&self, pid: Pid, flags: ForkFlags) -> Result<Pid, KernelError> {
        let parent = self.proc(pid)?;
        let mem = lock(&parent.mem).fork()?;
        let files = lock(&parent.files).clone();
        let namespace = match flags.namespace {
            NamespaceShare::Share => parent.namespace()?,
            NamespaceShare::Copy => Arc::new(parent.namespace()?.copy()),
            NamespaceShare::Clean => Arc::new(Namespace::default()),
        };
        let child_pid = self.new_pid();
        let child = Arc::new(Proc::new(child_pid, Some(pid), mem, files, namespace));
        let refused = {
            let mut procs = lock(&self.inner.procs);
            if procs.contains_key(&pid) {
                lock(&parent.family).live_children += 1;
                procs.insert(child_pid, child);
                None
            } else {
                // The parent exited meanwhile.
                Some(child)
            }
        };
        if let Some(child) = refused {
            release(&child);
            self.safe_point();
            return Err(KernelError::NoSuchProcess(pid));
        }
        Counters::bump(&self.counters().forks);
        Ok(child_pid)
    }

    /// Ends `pid` with `status` ("" for success): its files are closed (clunks queued), its
    /// segments released, its namespace dropped, and its parent can wait for it.
    pub fn exit(&self, pid: Pid, status: &str) -> Result<(), KernelError> {
        let proc = {
            let mut procs = lock(&self.inner.procs);
            let proc = procs.remove(&pid).ok_or(KernelError::NoSuchProcess(pid))?;
            for other in procs.values() {
                let mut family = lock(&other.family);
                if family.parent == Some(pid) {
                    family.parent = None;
                }
            }
            let parent = lock(&proc.family).parent;
            if let Some(parent) = parent.and_then(|parent| procs.get(&parent)) {
                let mut family = lock(&parent.family);
                family.live_children = family.live_children.saturating_sub(1);
                family.waitq.push_back(WaitMsg {
                    pid,
                    status: status.to_string(),
                });
                parent.child_exited.notify_all();
            }
            proc
        };
        release(&proc);
        Counters::bump(&self.counters().exits);
        self.safe_point();
        Ok(())
    }

    /// Waits for a child of `pid` to exit.
    pub fn wait(&self, pid: Pid) -> Result<WaitMsg, KernelError> {
        self.wait_until(pid, None)
    }

    /// Waits at most `timeout` for a child of `pid` to exit.
    pub fn wait_timeout(&self, pid: Pid, timeout: Duration) -> Result<WaitMsg, KernelError> {
        self.wait_until(pid, Some(Instant::now() + timeout))
    }

    fn wait_until(&self, pid: Pid, deadline: Option<Instant>) -> Result<WaitMsg, KernelError> {
        let proc = self.proc(pid)?;
        let mut family = lock(&proc.family);
        loop {
            if let Some(msg) = family.waitq.pop_front() {
                return Ok(msg);
            }
            if family.live_children == 0 {
                return Err(KernelError::NoChildren);
            }
            family = match deadline {
                None => proc
                    .child_exited
                    .wait(family)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(KernelError::TimedOut);
                    }
                    match proc.child_exited.wait_timeout(family, deadline - now) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    }
                }
            };
        }
    }

    /// The processes alive.
    pub fn processes(&self) -> Vec<Pid> {
        lock(&self.inner.procs).keys().copied().collect()
    }

    /// Posts a note to `pid`: the server request its current call waits for is flushed
    /// (or, if it is not waiting, its next call is interrupted).
    pub fn interrupt(&self, pid: Pid) -> Result<(), KernelError> {
        self.proc(pid)?.intr.post();
        Ok(())
    }

    // ---- namespace ----

    /// Mounts the 9P server at the other end of `transport` on `path` in `pid`'s namespace
    /// (replacing what was there), with default session parameters.
    pub fn mount(
        &self,
        pid: Pid,
        transport: Box<dyn Transport>,
        path: &str,
        flags: MountFlags,
    ) -> Result<MountInfo, KernelError> {
        self.mount_with(pid, transport, path, flags, &MountSpec::default())
    }

    /// Mounts with the given session parameters. On failure the transport is closed.
    pub fn mount_with(
        &self,
        pid: Pid,
        transport: Box<dyn Transport>,
        path: &str,
        flags: MountFlags,
        spec: &MountSpec,
    ) -> Result<MountInfo, KernelError> {
        let proc = self.proc(pid)?;
        let namespace = proc.namespace()?;
        let key = key_of(&clean_path(path)?);
        let _current = current::enter(&proc.intr);
        let mount = Mount::version(transport, StdPlatform::shared(), &spec.options, &proc.intr)?;
        let root = mount.attach(&spec.attach, &proc.intr)?;
        let point = Arc::new(MountPoint {
            mount: mount.clone(),
            root: KChan::new(root, &self.inner.shared),
            flags,
        });
        let replaced = namespace.install(key.clone(), point);
        drop(replaced);
        log::debug!("hosted: pid {pid} mounted {} on {key}", mount.id());
        Ok(MountInfo {
            path: key,
            mount,
            flags,
        })
    }

    /// Takes the mount at `path` out of `pid`'s namespace. The server stays connected while
    /// another namespace holds the mount or any channel of it lives (an open file, a
    /// running program's image); after that its root channel's clunk is queued and, with
    /// the last channel, the connection closes.
    pub fn unmount(&self, pid: Pid, path: &str) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let key = key_of(&clean_path(path)?);
        let removed = proc
            .namespace()?
            .remove(&key)
            .ok_or(KernelError::NotMounted(key))?;
        drop(removed);
        self.safe_point();
        Ok(())
    }

    /// The mounts of `pid`'s namespace.
    pub fn mounts(&self, pid: Pid) -> Result<Vec<MountInfo>, KernelError> {
        Ok(self.proc(pid)?.namespace()?.list())
    }

    /// Walks `names` from the mount that serves them; returns the channel and how that
    /// mount was made.
    fn walk(
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

    fn walk_path(&self, proc: &Proc, path: &str) -> Result<(KChan, MountFlags), KernelError> {
        let names = clean_path(path)?;
        self.walk(&*proc.namespace()?, path, &names, &proc.intr)
    }

    /// The mount-cache handle of `chan`, just opened or created: `None` unless its mount
    /// was made with [`MountFlags::CACHE`] (and for directories). A file opened to be
    /// removed at close is not cached, and its entry goes.
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
            cache.forget(identity_of(chan.get()));
            return Ok(None);
        }
        Ok(cached::open(&cache, chan.get(), how, intr)?)
    }

    // ---- files ----

    /// Opens `path`; returns the lowest free descriptor. A regular file of a cached mount
    /// is also stat'ed, for its length and version, and opened in the mount cache: reads
    /// then send nothing for what the cache holds.
    pub fn open(&self, pid: Pid, path: &str, mode: OpenMode) -> Result<usize, KernelError> {
        let proc = self.proc(pid)?;
        let _current = current::enter(&proc.intr);
        let (mut chan, flags) = self.walk_path(&proc, path)?;
        chan.get_mut().open(mode, &proc.intr)?;
        let how = Opened::Existing {
            truncated: mode.truncate,
        };
        let cache = self.cache_open(flags, &chan, mode, how, &proc.intr)?;
        let file = Arc::new(OpenFile::new(chan, cache));
        let fd = lock(&proc.files).insert(file);
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
        let _current = current::enter(&proc.intr);
        let names = clean_path(path)?;
        let Some((name, parent)) = names.split_last() else {
            return Err(KernelError::BadPath(path.to_string()));
        };
        let (mut chan, flags) = self.walk(&*proc.namespace()?, path, parent, &proc.intr)?;
        chan.get_mut().create(name, perm, mode, &proc.intr)?;
        let how = Opened::Created { perm };
        let cache = self.cache_open(flags, &chan, mode, how, &proc.intr)?;
        let file = Arc::new(OpenFile::new(chan, cache));
        let fd = lock(&proc.files).insert(file);
        Ok(fd)
    }

    fn file(&self, proc: &Proc, fd: usize) -> Result<Arc<OpenFile>, KernelError> {
        lock(&proc.files).get(fd).ok_or(KernelError::BadFd(fd))
    }

    /// Reads at the descriptor's offset and advances it. Fails with
    /// [`KernelError::OffsetOverflow`] if the read could end past the largest offset.
    pub fn read(&self, pid: Pid, fd: usize, buf: &mut [u8]) -> Result<usize, KernelError> {
        let proc = self.proc(pid)?;
        let _current = current::enter(&proc.intr);
        let file = self.file(&proc, fd)?;
        let mut offset = file.offset();
        io_end(*offset, buf.len())?;
        let n = file.read(*offset, buf, &proc.intr)?;
        // At most `buf.len()` bytes came, so this cannot fail.
        *offset = io_end(*offset, n)?;
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
        let _current = current::enter(&proc.intr);
        let file = self.file(&proc, fd)?;
        io_end(offset, buf.len())?;
        Ok(file.read(offset, buf, &proc.intr)?)
    }

    /// Writes at the descriptor's offset and advances it. Fails with
    /// [`KernelError::OffsetOverflow`] if the write would end past the largest offset.
    pub fn write(&self, pid: Pid, fd: usize, data: &[u8]) -> Result<usize, KernelError> {
        let proc = self.proc(pid)?;
        let _current = current::enter(&proc.intr);
        let file = self.file(&proc, fd)?;
        let mut offset = file.offset();
        io_end(*offset, data.len())?;
        let n = file.write(*offset, data, &proc.intr)?;
        // At most `data.len()` bytes were written, so this cannot fail.
        *offset = io_end(*offset, n)?;
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
        let _current = current::enter(&proc.intr);
        let file = self.file(&proc, fd)?;
        io_end(offset, data.len())?;
        Ok(file.write(offset, data, &proc.intr)?)
    }

    /// Sets the descriptor's offset.
    pub fn seek(&self, pid: Pid, fd: usize, offset: u64) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let file = self.file(&proc, fd)?;
        *file.offset() = offset;
        Ok(())
    }

    /// Closes a descriptor. If it was the last reference to the open file, the clunk is
    /// sent now and waited for (Plan 9's `cclose`), and its failure is returned; otherwise
    /// the other holders keep the file open.
    pub fn close(&self, pid: Pid, fd: usize) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let _current = current::enter(&proc.intr);
        let file = lock(&proc.files).remove(fd).ok_or(KernelError::BadFd(fd))?;
        match Arc::try_unwrap(file) {
            Ok(file) => Ok(file.chan.clunk(&proc.intr)?),
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
        let _current = current::enter(&proc.intr);
        let (chan, _) = self.walk_path(&proc, path)?;
        let info = chan.get().stat(&proc.intr)?;
        chan.clunk(&proc.intr)?;
        Ok(info)
    }

    /// The attributes of an open file.
    pub fn fstat(&self, pid: Pid, fd: usize) -> Result<FileInfo, KernelError> {
        let proc = self.proc(pid)?;
        let _current = current::enter(&proc.intr);
        let file = self.file(&proc, fd)?;
        Ok(file.chan.get().stat(&proc.intr)?)
    }

    /// Removes `path`. On a cached mount the file leaves the mount cache first.
    pub fn remove(&self, pid: Pid, path: &str) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let _current = current::enter(&proc.intr);
        let (chan, flags) = self.walk_path(&proc, path)?;
        if flags.contains(MountFlags::CACHE) {
            self.inner.vm.mount_cache().forget(identity_of(chan.get()));
        }
        Ok(chan.remove(&proc.intr)?)
    }

    /// Sets the length of the file at `path` to `length` (a `wstat` of the length, as
    /// Plan 9's `truncate` by `dirwstat`). On a cached mount the file's cached data is
    /// wiped and relabelled with the server's new version and length, as by a truncating
    /// open, or dropped if the outcome is unknown.
    pub fn truncate(&self, pid: Pid, path: &str, length: u64) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let _current = current::enter(&proc.intr);
        let (mut chan, flags) = self.walk_path(&proc, path)?;
        let cache = flags
            .contains(MountFlags::CACHE)
            .then(|| self.inner.vm.mount_cache());
        let result = cached::truncate(cache.as_ref(), chan.get_mut(), length, &proc.intr);
        let clunked = chan.clunk(&proc.intr);
        result?;
        Ok(clunked?)
    }

    // ---- exec and memory ----

    /// Replaces `pid`'s program with the ELF64 executable at `path`: reads its headers
    /// through the mount, attaches its image (sharing it with every process running the
    /// same file version), builds text, data, bss and stack segments and writes `argv` on
    /// the stack. On any error the process is left as it was.
    pub fn exec(&self, pid: Pid, path: &str, argv: &[&str]) -> Result<ExecInfo, KernelError> {
        let proc = self.proc(pid)?;
        let _current = current::enter(&proc.intr);
        let result = self.load(&proc, path, argv);
        // The old image went (or a failed exec let its file go) with no lock held now.
        self.safe_point();
        match &result {
            Ok(_) => Counters::bump(&self.counters().execs),
            Err(err) => {
                log::debug!("hosted: exec of {path} by pid {pid} failed: {err}");
                Counters::bump(&self.counters().exec_failures);
            }
        }
        result
    }

    fn load(&self, proc: &Proc, path: &str, argv: &[&str]) -> Result<ExecInfo, KernelError> {
        let inner = &*self.inner;
        let counters = self.counters();
        let intr = &*proc.intr;
        // On a cached mount too the file is read through its own channel: attaching its
        // image takes it out of the mount cache (vm's rule: no double caching).
        let (mut chan, _) = self.walk_path(proc, path)?;
        chan.get_mut().open(OpenMode::EXEC, intr)?;
        let headers = exec::read_headers(chan.get(), intr, counters)?;
        let plan = exec::plan(&headers.loads, inner.config.stack_size)?;
        let file = ChanFile::new(chan);
        let identity = file.identity();
        let segments = inner.vm.exec(Box::new(file), &plan.loads)?;
        let mut regions: Vec<Region> = segments
            .into_iter()
            .zip(plan.writable)
            .map(|(seg, writable)| Region { seg, writable })
            .collect();
        for range in &plan.bss {
            regions.push(Region {
                seg: inner
                    .vm
                    .zero_segment(SegmentKind::Bss, range.base, range.len)?,
                writable: range.writable,
            });
        }
        let stack_size = inner.config.stack_size;
        regions.push(Region {
            seg: inner.vm.zero_segment(
                SegmentKind::Stack,
                USER_STACK_TOP - stack_size,
                stack_size,
            )?,
            writable: true,
        });
        let mut mem = Memory::new(regions);
        let (stack_pointer, stack) = exec::initial_stack(argv, USER_STACK_TOP)?;
        mem.write(&inner.frames, stack_pointer, &stack, counters)?;
        let info = ExecInfo {
            entry: headers.entry,
            stack_pointer,
            identity,
            segments: mem.describe(),
        };
        // The point of no return.
        let old = std::mem::replace(&mut *lock(&proc.mem), mem);
        drop(old);
        Ok(info)
    }

    /// Touches `addr` in `pid`'s memory for `access`, faulting as a real access would;
    /// returns the frame and whether it is mapped writable.
    pub fn touch(&self, pid: Pid, addr: u64, access: Access) -> Result<Mapping, KernelError> {
        let proc = self.proc(pid)?;
        let _current = current::enter(&proc.intr);
        let touched = lock(&proc.mem).touch(addr, access, self.counters());
        // The memory lock is released: closes a fault's reclaim parked may run.
        self.safe_point();
        let pte = touched?;
        Ok(Mapping {
            frame: pte.frame,
            writable: pte.writable,
        })
    }

    /// Copies `buf.len()` bytes of `pid`'s memory at `addr` into `buf`.
    pub fn read_memory(&self, pid: Pid, addr: u64, buf: &mut [u8]) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let _current = current::enter(&proc.intr);
        let result = lock(&proc.mem).read(&self.inner.frames, addr, buf, self.counters());
        self.safe_point();
        result
    }

    /// Stores `data` in `pid`'s memory at `addr`.
    pub fn write_memory(&self, pid: Pid, addr: u64, data: &[u8]) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let _current = current::enter(&proc.intr);
        let result = lock(&proc.mem).write(&self.inner.frames, addr, data, self.counters());
        self.safe_point();
        result
    }

    /// `pid`'s segments.
    pub fn segments(&self, pid: Pid) -> Result<Vec<SegmentInfo>, KernelError> {
        Ok(lock(&self.proc(pid)?.mem).describe())
    }

    /// The frame vm maps at `addr` in `pid`'s memory, if a fault has put one there.
    pub fn resident(&self, pid: Pid, addr: u64) -> Result<Option<Frame>, KernelError> {
        let proc = self.proc(pid)?;
        let mem = lock(&proc.mem);
        Ok(mem
            .regions
            .iter()
            .find(|region| region.seg.contains(addr))
            .and_then(|region| region.seg.resident(addr)))
    }

    /// Whether `addr` lies in one and the same segment in `a` and in `b` (shared text).
    pub fn same_segment(&self, a: Pid, b: Pid, addr: u64) -> Result<bool, KernelError> {
        let (first, second) = (self.proc(a)?, self.proc(b)?);
        if a == b {
            return Ok(true);
        }
        // Never two process locks at once: share a count of `a`'s segment, then compare.
        let seg = {
            let mem = lock(&first.mem);
            mem.regions
                .iter()
                .find(|region| region.seg.contains(addr))
                .map(|region| region.seg.share())
        };
        let Some(seg) = seg else {
            return Ok(false);
        };
        let same = lock(&second.mem)
            .regions
            .iter()
            .any(|region| region.seg.same_segment(&seg));
        Ok(same)
    }

    // ---- caches, closes, statistics, checks ----

    /// Frees up to `pages` cached pages at ref 0 (idle images first); returns how many.
    pub fn reclaim(&self, pages: usize) -> usize {
        let freed = self.inner.vm.reclaim(pages);
        self.safe_point();
        freed
    }

    /// Waits at most `timeout` until no queued clunk is outstanding. Returns whether the
    /// queue settled. (Legacy pins are looked at first: one whose image is gone is
    /// released.)
    pub fn wait_closes(&self, timeout: Duration) -> bool {
        self.safe_point();
        self.inner.shared.closeq.wait_settled(timeout)
    }

    /// Whether the mount cache exists: files of mounts made with [`MountFlags::CACHE`] are
    /// read and written through vm's mount cache (see [`Kernel::open`]).
    pub fn has_mount_cache(&self) -> bool {
        true
    }

    /// Counters and vm's statistics.
    pub fn statistics(&self) -> KernelStats {
        let counters = self.counters();
        let get = Counters::get;
        let (closes_pending, (made, closed)) = self
            .inner
            .shared
            .closeq
            .snapshot(|| (get(&counters.chans_made), get(&counters.chans_closed)));
        KernelStats {
            vm: self.inner.vm.statistics(),
            frames: self.inner.frames.stats(),
            processes: lock(&self.inner.procs).len(),
            chans_live: made - closed,
            chans_made: made,
            clunk_failures: get(&counters.clunk_failures),
            closes_queued: get(&counters.closes_queued),
            closes_pending,
            legacy_pins: self.inner.shared.pins().map_or(0, |pins| pins.len()),
            image_reads: get(&counters.image_reads),
            image_read_bytes: get(&counters.image_read_bytes),
            image_read_errors: get(&counters.image_read_errors),
            header_reads: get(&counters.header_reads),
            faults: get(&counters.faults),
            mmu_hits: get(&counters.mmu_hits),
            execs: get(&counters.execs),
            exec_failures: get(&counters.exec_failures),
            forks: get(&counters.forks),
            exits: get(&counters.exits),
        }
    }

    /// Checks the whole kernel at a quiescent moment (no call in progress): vm's invariants
    /// with every process's segments, every MMU entry against its segment, and that every
    /// live channel is accounted for (an open file, a mount point, an image's channel, a
    /// legacy pin, or the close queue).
    pub fn check_invariants(&self) -> Result<KernelCheck, KernelViolation> {
        let procs: Vec<Arc<Proc>> = lock(&self.inner.procs).values().cloned().collect();
        crate::check::check(&self.inner.vm, &self.inner.shared, &procs)
    }

    /// In legacy mode: releases the pinned channels of images vm no longer has
    /// ([`Vm::image_status`] of their identities is `None`). The pins' lock is a leaf, so
    /// vm is asked with it released, and the gone identities taken out after.
    /// Where this kernel holds none of its locks: the channels vm let go of (an image gone
    /// idle in an exit, a fault's reclaim) are closed here (vm parks them, never closing
    /// under the memory lock), then legacy pins are looked at.
    fn safe_point(&self) {
        self.inner.vm.run_parked_closes();
        self.sweep_legacy_pins();
    }

    fn sweep_legacy_pins(&self) {
        let inner = &*self.inner;
        let identities: BTreeSet<FileIdentity> = match inner.shared.pins() {
            Some(pins) => pins.iter().map(|(identity, _)| *identity).collect(),
            None => return,
        };
        let gone: BTreeSet<FileIdentity> = identities
            .into_iter()
            .filter(|identity| inner.vm.image_status(identity).is_none())
            .collect();
        if gone.is_empty() {
            return;
        }
        let released: Vec<KChan> = match inner.shared.pins() {
            Some(mut pins) => {
                let (released, kept) = std::mem::take(&mut *pins)
                    .into_iter()
                    .partition(|(identity, _)| gone.contains(identity));
                *pins = kept;
                released.into_iter().map(|(_, chan)| chan).collect()
            }
            None => Vec::new(),
        };
        if !released.is_empty() {
            log::debug!("hosted: legacy: {} image channels released", released.len());
        }
        drop(released);
    }
}

/// The offset just past `len` bytes at `offset`. An I/O that would pass the largest file
/// offset is refused before the server is asked: past it no offset can be named, and the
/// offsets the mount driver and the descriptor compute must not wrap.
fn io_end(offset: u64, len: usize) -> Result<u64, KernelError> {
    u64::try_from(len)
        .ok()
        .and_then(|bytes| offset.checked_add(bytes))
        .ok_or(KernelError::OffsetOverflow { offset, len })
}

/// Takes a process's files, memory and namespace and drops them, with no lock held.
fn release(proc: &Proc) {
    let files = lock(&proc.files).take_all();
    let mem = lock(&proc.mem).take();
    let namespace = lock(&proc.namespace).take();
    drop(files);
    drop(mem);
    drop(namespace);
}

impl Drop for Inner {
    fn drop(&mut self) {
        let procs = std::mem::take(&mut *lock(&self.procs));
        for proc in procs.values() {
            release(proc);
        }
        drop(procs);
        // Every image is idle now: free them, so no channel of an image outlives the kernel.
        self.vm.reclaim(usize::MAX);
        self.vm.run_parked_closes();
        let pins = self
            .shared
            .pins()
            .map(|mut pins| std::mem::take(&mut *pins));
        drop(pins);
        self.shared.closeq.shutdown();
    }
}
