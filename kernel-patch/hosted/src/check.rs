//! The whole-kernel invariant checker: vm's checker with every live segment, plus the
//! kernel's own rules (MMU entries agree with their segments, and none maps vm's zero page
//! writable; every live channel is accounted for; no frame lent to the kernel was written
//! while the kernel held its bytes).
//!
//! Locks: each process's `mem` lock in pid order (only the checker holds more than one,
//! so the order cannot deadlock), then vm's checker takes its own locks one at a time.

use std::sync::Arc;

use vm::check::{CheckReport, Violation};
use vm::{SegmentRef, Vm};

use crate::chan_services::ChanServices;
use crate::fd::FileDescription;
use crate::frames::HostFrames;
use crate::namespace::Namespace;
use crate::process::{lock, Pid, Proc};

/// What the checker found on success.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCheck {
    /// vm's counts.
    pub vm: CheckReport,
    /// Processes checked.
    pub processes: usize,
    /// Live channels, all accounted for.
    pub live_channels: u64,
}

/// A broken rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelViolation {
    /// vm's invariants are broken.
    #[error("{0}")]
    Vm(Violation),
    /// A process's MMU maps a frame its segment does not map there.
    #[error("pid {pid}: MMU entry at {addr:#x} disagrees with its segment")]
    StaleMapping {
        /// The process.
        pid: Pid,
        /// The page.
        addr: u64,
    },
    /// A process's MMU maps vm's zero page writable: a store would write the zeros every
    /// untouched zero-fill page reads.
    #[error("pid {pid}: MMU entry at {addr:#x} maps the zero page writable")]
    ZeroFrameWritable {
        /// The process.
        pid: Pid,
        /// The page.
        addr: u64,
    },
    /// Channels were made and never clunked, or clunked twice: `live` by the counters,
    /// `accounted` by what holds one.
    #[error("channel leak: {live} live, {accounted} accounted for")]
    ChannelLeak {
        /// Made less clunked.
        live: u64,
        /// Open files, mount points, image channels, legacy pins and queued clunks.
        accounted: u64,
    },
    /// A frame was written while the kernel held its bytes as lent (a pipe's or a 9P
    /// write's loan): the loan rule "read only everywhere while lent" was broken.
    #[error("{writes} writes to frames the kernel held as lent")]
    LentFrameWritten {
        /// Such writes since the start.
        writes: u64,
    },
}

pub(crate) fn check(
    vm: &Vm,
    frames: &HostFrames,
    services: &ChanServices,
    procs: &[Arc<Proc>],
) -> Result<KernelCheck, KernelViolation> {
    let writes = frames.stats().shared_writes;
    if writes > 0 {
        return Err(KernelViolation::LentFrameWritten { writes });
    }
    let mems: Vec<_> = procs
        .iter()
        .map(|proc| (proc.pid, lock(&proc.mem)))
        .collect();
    let zero = vm.zero_frame();
    for (pid, mem) in &mems {
        if let Some(addr) = mem.stale_entries().first() {
            return Err(KernelViolation::StaleMapping {
                pid: *pid,
                addr: *addr,
            });
        }
        if let Some(addr) = mem.writable_zero_entry(zero) {
            return Err(KernelViolation::ZeroFrameWritable { pid: *pid, addr });
        }
    }
    let segments: Vec<&SegmentRef> = mems
        .iter()
        .flat_map(|(_, mem)| mem.regions.iter().map(|region| &region.seg))
        .collect();
    let report = vm::check::check_invariants(vm, Some(&segments)).map_err(KernelViolation::Vm)?;
    // Every MMU entry of a mapping is listed by its page's reverse map.
    let translations: Vec<_> = mems
        .iter()
        .flat_map(|(_, mem)| mem.mapping_translations())
        .collect();
    vm::check::check_translations(vm, &translations)
        .map_err(|broken| KernelViolation::Vm(Violation::Mapping(broken)))?;
    drop(segments);
    drop(mems);

    // Distinct open files and namespaces (forks share them), then distinct mount points.
    let mut files: Vec<Arc<FileDescription>> = Vec::new();
    let mut namespaces: Vec<Arc<Namespace>> = Vec::new();
    for proc in procs {
        for file in lock(&proc.files).all() {
            if !files.iter().any(|seen| Arc::ptr_eq(seen, &file)) {
                files.push(file);
            }
        }
        if let Some(namespace) = lock(&proc.namespace).clone() {
            if !namespaces.iter().any(|seen| Arc::ptr_eq(seen, &namespace)) {
                namespaces.push(namespace);
            }
        }
    }
    let mut points = Vec::new();
    for namespace in &namespaces {
        for point in namespace.points() {
            if !points.iter().any(|seen| Arc::ptr_eq(seen, &point)) {
                points.push(point);
            }
        }
    }
    let pins = services.pins().map_or(0, |pins| pins.len());
    let (pending, live) = services.closeq.snapshot(|| {
        let made = services
            .counters
            .chans_made
            .load(std::sync::atomic::Ordering::Relaxed);
        let closed = services
            .counters
            .chans_closed
            .load(std::sync::atomic::Ordering::Relaxed);
        made.wrapping_sub(closed)
    });
    // Channels vm let go of and parked, not closed yet: still live, accounted by vm.
    let parked = vm.parked_closes();
    let accounted = (files.len() + points.len() + pins + pending + parked) as u64
        + u64::from(report.open_channels)
        + u64::from(report.object_channels);
    if live != accounted {
        return Err(KernelViolation::ChannelLeak { live, accounted });
    }
    Ok(KernelCheck {
        vm: report,
        processes: procs.len(),
        live_channels: live,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{Memory, Region};
    use crate::{Kernel, KernelConfig};
    use vm::{Access, SegmentKind};

    const BSS: u64 = 0x100_0000;

    #[test]
    fn catches_the_zero_page_mapped_writable() {
        let kernel = Kernel::new(KernelConfig {
            memory_frames: 64,
            ..KernelConfig::default()
        })
        .unwrap();
        let pid = kernel.spawn();
        let proc = kernel.proc(pid).unwrap();
        let seg = kernel
            .vm()
            .zero_segment(SegmentKind::Bss, BSS, vm::PAGE_SIZE as u64)
            .unwrap();
        {
            let mut mem = lock(&proc.mem);
            *mem = Memory::new(vec![Region {
                seg,
                writable: true,
            }]);
            let pte = mem.touch(BSS, Access::Read, kernel.counters()).unwrap();
            assert_eq!((pte.frame, pte.writable), (kernel.vm().zero_frame(), false));
        }
        kernel.check_invariants().unwrap();
        // The entry made writable behind vm's back: the next store would write the zeros.
        if let Some(pte) = lock(&proc.mem).mmu_mut().get_mut(&BSS) {
            pte.writable = true;
        }
        assert_eq!(
            kernel.check_invariants(),
            Err(KernelViolation::ZeroFrameWritable { pid, addr: BSS })
        );
    }

    #[test]
    fn catches_a_frame_written_while_the_kernel_holds_it_lent() {
        use vm::FrameAllocator;
        let kernel = Kernel::new(KernelConfig {
            memory_frames: 4,
            ..KernelConfig::default()
        })
        .unwrap();
        let frames = kernel.frames();
        let frame = frames.allocate().unwrap();
        let held = frames.share(frame).unwrap();
        kernel.check_invariants().unwrap();
        frames.with_frame_mut(frame, &mut |bytes| bytes[0] ^= 1);
        assert_eq!(
            kernel.check_invariants(),
            Err(KernelViolation::LentFrameWritten { writes: 1 })
        );
        drop(held);
        frames.free(frame);
    }
}
