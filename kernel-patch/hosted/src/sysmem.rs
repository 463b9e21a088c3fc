//! A running program's memory, accessed as its instructions would (a fault on a miss of
//! the process's software MMU), and what the tests ask of its segments.

use vm::{Access, Frame, Mapping};

use crate::error::KernelError;
use crate::kernel::Kernel;
use crate::memory::SegmentInfo;
use crate::process::{lock, Pid};

impl Kernel {
    /// Touches `addr` in `pid`'s memory for `access`, faulting as a real access would;
    /// returns the frame and whether it is mapped writable.
    pub fn touch(&self, pid: Pid, addr: u64, access: Access) -> Result<Mapping, KernelError> {
        let proc = self.proc(pid)?;
        // A fault may read a page: the call's interrupt is the thread's current one.
        let _call = proc.notes.begin_call();
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
        // A fault may read a page: the call's interrupt is the thread's current one.
        let _call = proc.notes.begin_call();
        let result = lock(&proc.mem).read(&self.inner.frames, addr, buf, self.counters());
        self.safe_point();
        result
    }

    /// Stores `data` in `pid`'s memory at `addr`.
    pub fn write_memory(&self, pid: Pid, addr: u64, data: &[u8]) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        // A fault may read a page: the call's interrupt is the thread's current one.
        let _call = proc.notes.begin_call();
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
        // `a` may have exited meanwhile: then this count was its segment's last, and the
        // image's channel parked as it went.
        drop(seg);
        self.safe_point();
        Ok(same)
    }
}
