//! The kernel: its configuration, its process table, its statistics, and the caches and
//! checks that are no one process's. The system calls are methods of [`Kernel`] too, kept
//! by kind as in 9front's `port/`: processes and exec in `sysproc`, files and pipes in
//! `sysfile`, mounts in `sysmount`, a running program's memory accesses in `sysmem`, I/O
//! with a buffer in process memory in `sysuser`.
//!
//! Every call names the process it runs for and has an interrupt of its own (see `notes`),
//! the thread's current one while it runs (see `current`), so
//! [`Kernel::interrupt`] flushes whatever server request the call is waiting for, a page
//! read of a fault included.
//!
//! Lock order (outermost first): process table → a process's `family`; a process's `mem`
//! (held across faults) → vm's locks. No lock of the kernel is held while a server is
//! called, except a process's `mem` during a fault (Plan 9's segment lock).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vm::{FileIdentity, Vm, PAGE_SIZE};

use crate::chan_services::ChanServices;
use crate::check::{KernelCheck, KernelViolation};
use crate::counters::Counters;
use crate::error::KernelError;
use crate::exec::USER_STACK_TOP;
use crate::frames::{FrameStats, HostFrames};
use crate::kchan::KChan;
use crate::page_wait::HostPageWait;
use crate::process::{lock, Pid, Proc};
use crate::sysproc::release;

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
    /// Most threads clunking queued channels at once. 0: none (a kernel without close
    /// procs): a channel whose last holder must not wait is dropped at once and its clunk
    /// goes out with the mount's next message.
    pub max_close_workers: usize,
    /// Bytes of stack a process gets at exec (page aligned).
    pub stack_size: u64,
    /// The shortest `write_user` (or piece of one a pipe takes) that lends its pages
    /// instead of copying them ([`LEND_THRESHOLD`](crate::LEND_THRESHOLD) by default;
    /// `usize::MAX`: always copy, for comparing the two).
    pub lend_threshold: usize,
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
            lend_threshold: crate::LEND_THRESHOLD,
        }
    }
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
    /// Times a pipe read or write blocked (slept for data, room or a note).
    pub pipe_waits: u64,
    /// Bytes `write_user` copied from process memory into the kernel (writes shorter than
    /// the lending threshold, memory that is no mapping, ranges vm would not lend).
    pub user_bytes_copied: u64,
    /// Bytes `write_user` lent from process memory instead of copying them.
    pub user_bytes_lent: u64,
}

impl fmt::Display for KernelStats {
    /// `name value` lines, vm's first; every field (a test checks).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.vm)?;
        let lines: [(&str, u64); 30] = [
            ("frames_limit", u64::from(self.frames.limit)),
            ("frames_in_use", self.frames.in_use()),
            ("frames_allocated", self.frames.allocated),
            ("frames_freed", self.frames.freed),
            ("frames_peak", self.frames.peak),
            ("frames_refused", self.frames.refused),
            ("frames_admitted", self.frames.admitted),
            ("frames_copies", self.frames.copies),
            ("frames_zeroes", self.frames.zeroes),
            ("frames_shared_writes", self.frames.shared_writes),
            ("processes", self.processes as u64),
            ("chans_live", self.chans_live),
            ("chans_made", self.chans_made),
            ("clunk_failures", self.clunk_failures),
            ("closes_queued", self.closes_queued),
            ("closes_pending", self.closes_pending as u64),
            ("legacy_pins", self.legacy_pins as u64),
            ("image_reads", self.image_reads),
            ("image_read_bytes", self.image_read_bytes),
            ("image_read_errors", self.image_read_errors),
            ("header_reads", self.header_reads),
            ("faults", self.faults),
            ("mmu_hits", self.mmu_hits),
            ("execs", self.execs),
            ("exec_failures", self.exec_failures),
            ("forks", self.forks),
            ("exits", self.exits),
            ("pipe_waits", self.pipe_waits),
            ("user_bytes_copied", self.user_bytes_copied),
            ("user_bytes_lent", self.user_bytes_lent),
        ];
        for (name, value) in lines {
            writeln!(f, "{name} {value}")?;
        }
        Ok(())
    }
}

pub(crate) struct Inner {
    pub(crate) config: KernelConfig,
    pub(crate) vm: Vm,
    pub(crate) frames: HostFrames,
    pub(crate) services: Arc<ChanServices>,
    pub(crate) procs: Mutex<BTreeMap<Pid, Arc<Proc>>>,
    pub(crate) next_pid: AtomicU32,
}

/// A hosted kernel. Cheap to clone; clones are the same kernel.
#[derive(Clone)]
pub struct Kernel {
    pub(crate) inner: Arc<Inner>,
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
        let services =
            ChanServices::new(config.max_close_workers, config.legacy_image_channel, &vm);
        Ok(Kernel {
            inner: Arc::new(Inner {
                config,
                vm,
                frames,
                services,
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

    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.services.counters
    }

    pub(crate) fn proc(&self, pid: Pid) -> Result<Arc<Proc>, KernelError> {
        lock(&self.inner.procs)
            .get(&pid)
            .cloned()
            .ok_or(KernelError::NoSuchProcess(pid))
    }

    pub(crate) fn new_pid(&self) -> Pid {
        self.inner.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    /// Frees up to `pages` cached pages at ref 0 (idle images first); returns how many.
    /// The dirty pages of mapped files nobody maps any more are written back first
    /// ([`write_back_dirty`](Self::write_back_dirty)), so they can go too.
    pub fn reclaim(&self, pages: usize) -> usize {
        if let Err(err) = self.inner.vm.write_back_dirty() {
            log::debug!("hosted: write-back before reclaim failed: {err}");
        }
        let freed = self.inner.vm.reclaim(pages);
        self.safe_point();
        freed
    }

    /// Writes back the dirty pages of mapped files whose write-back at munmap or exit
    /// failed (vm keeps them, and the file's channel, until then); returns the pages
    /// written. A mount that is dead loses them (`dirty_pages_dropped`). Runs with no lock
    /// of the kernel's held; also done before reclaim and at unmount.
    pub fn write_back_dirty(&self) -> Result<u64, KernelError> {
        let result = self.inner.vm.write_back_dirty();
        self.safe_point();
        Ok(result?)
    }

    /// Waits at most `timeout` until no queued clunk is outstanding. Returns whether the
    /// queue settled. (Legacy pins are looked at first: one whose image is gone is
    /// released.)
    pub fn wait_closes(&self, timeout: Duration) -> bool {
        self.safe_point();
        self.inner.services.closeq.wait_settled(timeout)
    }

    /// Whether the mount cache exists: files of mounts made with [`MountFlags::CACHE`](crate::MountFlags::CACHE) are
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
            .services
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
            legacy_pins: self.inner.services.pins().map_or(0, |pins| pins.len()),
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
            pipe_waits: get(&counters.pipe_waits),
            user_bytes_copied: get(&counters.user_bytes_copied),
            user_bytes_lent: get(&counters.user_bytes_lent),
        }
    }

    /// Checks the whole kernel at a quiescent moment (no call in progress): vm's invariants
    /// with every process's segments, every MMU entry against its segment, and that every
    /// live channel is accounted for (an open file, a mount point, an image's channel, a
    /// legacy pin, or the close queue), and that no frame lent to the kernel was written
    /// while it held the frame's bytes.
    pub fn check_invariants(&self) -> Result<KernelCheck, KernelViolation> {
        let procs: Vec<Arc<Proc>> = lock(&self.inner.procs).values().cloned().collect();
        crate::check::check(
            &self.inner.vm,
            &self.inner.frames,
            &self.inner.services,
            &procs,
        )
    }

    /// Where this kernel holds none of its locks: the channels vm let go of (an image gone
    /// idle in an exit, a fault's reclaim) are closed here (vm parks them, never closing
    /// under the memory lock), then legacy pins are looked at.
    pub(crate) fn safe_point(&self) {
        self.inner.vm.run_parked_closes();
        self.sweep_legacy_pins();
    }

    /// In legacy mode: releases the pinned channels of images vm no longer has
    /// ([`Vm::image_status`] of their identities is `None`). The pins' lock is a leaf, so
    /// vm is asked with it released, and the gone identities taken out after.
    pub(crate) fn sweep_legacy_pins(&self) {
        let inner = &*self.inner;
        let identities: BTreeSet<FileIdentity> = match inner.services.pins() {
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
        let released: Vec<KChan> = match inner.services.pins() {
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
            .services
            .pins()
            .map(|mut pins| std::mem::take(&mut *pins));
        drop(pins);
        self.services.closeq.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_prints_every_counter() {
        let stats = KernelStats {
            vm: vm::Statistics::default(),
            frames: FrameStats {
                limit: 1001,
                allocated: 3002,
                freed: 1000,
                peak: 1003,
                refused: 1004,
                admitted: 1005,
                copies: 1006,
                zeroes: 1007,
                shared_writes: 1028,
            },
            processes: 1008,
            chans_live: 1009,
            chans_made: 1010,
            clunk_failures: 1011,
            closes_queued: 1012,
            closes_pending: 1013,
            legacy_pins: 1014,
            image_reads: 1015,
            image_read_bytes: 1016,
            image_read_errors: 1017,
            header_reads: 1018,
            faults: 1019,
            mmu_hits: 1020,
            execs: 1021,
            exec_failures: 1022,
            forks: 1023,
            exits: 1024,
            pipe_waits: 1025,
            user_bytes_copied: 1026,
            user_bytes_lent: 1027,
        };
        // No `..`: a new field fails to compile here until it is checked below.
        let KernelStats {
            vm: _,
            frames:
                FrameStats {
                    limit,
                    allocated,
                    freed,
                    peak,
                    refused,
                    admitted,
                    copies,
                    zeroes,
                    shared_writes,
                },
            processes,
            chans_live,
            chans_made,
            clunk_failures,
            closes_queued,
            closes_pending,
            legacy_pins,
            image_reads,
            image_read_bytes,
            image_read_errors,
            header_reads,
            faults,
            mmu_hits,
            execs,
            exec_failures,
            forks,
            exits,
            pipe_waits,
            user_bytes_copied,
            user_bytes_lent,
        } = stats;
        let values = [
            u64::from(limit),
            allocated,
            freed,
            allocated - freed,
            peak,
            refused,
            admitted,
            copies,
            zeroes,
            shared_writes,
            processes as u64,
            chans_live,
            chans_made,
            clunk_failures,
            closes_queued,
            closes_pending as u64,
            legacy_pins as u64,
            image_reads,
            image_read_bytes,
            image_read_errors,
            header_reads,
            faults,
            mmu_hits,
            execs,
            exec_failures,
            forks,
            exits,
            pipe_waits,
            user_bytes_copied,
            user_bytes_lent,
        ];
        let text = stats.to_string();
        let printed: Vec<&str> = text
            .lines()
            .filter_map(|line| line.split_once(' ').map(|(_, value)| value))
            .collect();
        for value in values {
            assert!(
                printed.contains(&value.to_string().as_str()),
                "no line shows {value}:\n{text}"
            );
        }
    }
}
