//! Processes and programs (9front's `port/sysproc.c`): spawn, fork, exit, wait, notes,
//! and exec.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mnt::OpenMode;
use vm::{FileIdentity, ImageFile, SegmentKind};

use crate::counters::Counters;
use crate::error::KernelError;
use crate::exec::{self, USER_STACK_TOP};
use crate::fd::FdTable;
use crate::image_file::ChanFile;
use crate::kernel::Kernel;
use crate::memory::{Memory, Region, SegmentInfo};
use crate::namespace::Namespace;
use crate::process::{lock, ForkFlags, NamespaceShare, Pid, Proc, WaitMsg};

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

impl Kernel {
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

    /// Posts a note to `pid`: every call of `pid` in progress is interrupted (the server
    /// request it waits for is flushed, a page wait ends), each call on its own interrupt;
    /// with no call in progress, or if a call ends without taking it, the next call is
    /// interrupted (see the `notes` module).
    pub fn interrupt(&self, pid: Pid) -> Result<(), KernelError> {
        self.proc(pid)?.notes.post();
        Ok(())
    }

    /// Replaces `pid`'s program with the ELF64 executable at `path`: reads its headers
    /// through the mount, attaches its image (sharing it with every process running the
    /// same file version), builds text, data, bss and stack segments and writes `argv` on
    /// the stack. On any error the process is left as it was.
    pub fn exec(&self, pid: Pid, path: &str, argv: &[&str]) -> Result<ExecInfo, KernelError> {
        let proc = self.proc(pid)?;
        let intr = proc.notes.begin_call();
        let result = self.load(&proc, path, argv, &intr);
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

    fn load(
        &self,
        proc: &Proc,
        path: &str,
        argv: &[&str],
        intr: &mnt::Interrupt,
    ) -> Result<ExecInfo, KernelError> {
        let inner = &*self.inner;
        let counters = self.counters();
        // On a cached mount too the file is read through its own channel: attaching its
        // image takes it out of the mount cache (vm's rule: no double caching).
        let (mut chan, _) = self.walk_path(proc, path, intr)?;
        chan.get_mut().open(OpenMode::EXEC, intr)?;
        // The image is keyed by a stat's version, not the open's qid: in 9P2000.L the
        // stat's version folds in the mtime's nanoseconds and the size, which a server
        // whose qid.version is the whole-second mtime leaves unchanged by a quick rewrite.
        let info = chan.get().stat(intr)?;
        let headers = exec::read_headers(chan.get(), intr, counters)?;
        let plan = exec::plan(&headers.loads, inner.config.stack_size)?;
        let file = ChanFile::new(chan, &info);
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
        // The point of no return, unless the process exited while the program was loading:
        // then the new segments go here (their image's channel parks), before the exec's
        // safe point, instead of living on in a dead process until its last reference
        // drops after every safe point.
        let old = {
            let mut current = lock(&proc.mem);
            if current.released() {
                drop(current);
                drop(mem);
                return Err(KernelError::NoSuchProcess(proc.pid));
            }
            std::mem::replace(&mut *current, mem)
        };
        drop(old);
        Ok(info)
    }
}

/// Takes a process's files, memory and namespace and drops them, with no lock held.
pub(crate) fn release(proc: &Proc) {
    let files = lock(&proc.files).take_all();
    let mem = lock(&proc.mem).take();
    let namespace = lock(&proc.namespace).take();
    drop(files);
    drop(mem);
    drop(namespace);
}
