//! Exec support: turn a program's loadable ranges into segments over its image.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::file::ImageFile;
use crate::frame::PAGE_BYTES;
use crate::segment::{Geometry, SegmentRef};
use crate::vm::{LayoutError, Vm, VmError};

/// One loadable range of a program (an ELF `PT_LOAD`, or a Plan 9 a.out text or data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    /// Where the range starts in memory.
    pub vaddr: u64,
    /// Its length in memory; past `file_len` it reads as zero.
    pub mem_len: u64,
    /// Where its bytes start in the file (equal to `vaddr` modulo the page size).
    pub file_offset: u64,
    /// How many bytes come from the file.
    pub file_len: u64,
    /// Writable ranges become private data segments, the others shared text.
    pub writable: bool,
}

impl LoadSegment {
    /// The page-level geometry of the range, checked against the file's length.
    pub(crate) fn geometry(&self, file_length: u64) -> Result<Geometry, LayoutError> {
        if self.mem_len == 0 {
            return Err(LayoutError::Empty);
        }
        if self.file_len > self.mem_len {
            return Err(LayoutError::FileLargerThanMemory);
        }
        if self.vaddr % PAGE_BYTES != self.file_offset % PAGE_BYTES {
            return Err(LayoutError::Misaligned);
        }
        let file_end = self
            .file_offset
            .checked_add(self.file_len)
            .ok_or(LayoutError::Overflow)?;
        if file_end > file_length {
            return Err(LayoutError::BeyondFile);
        }
        let lead = self.vaddr % PAGE_BYTES;
        let base = self.vaddr - lead;
        let end = self
            .vaddr
            .checked_add(self.mem_len)
            .and_then(|end| end.checked_next_multiple_of(PAGE_BYTES))
            .ok_or(LayoutError::Overflow)?;
        let pages = (end - base) / PAGE_BYTES;
        // The bytes before `vaddr` in its first page are the file's too, as on every Unix;
        // a range with no file bytes at all is pure zero fill.
        let (file_start, file_len) = if self.file_len == 0 {
            (0, 0)
        } else {
            (self.file_offset - lead, self.file_len + lead)
        };
        if !self.writable && file_len.div_ceil(PAGE_BYTES) < pages {
            return Err(LayoutError::TextBeyondFile);
        }
        Ok(Geometry {
            base,
            pages,
            file_start,
            file_len,
        })
    }
}

impl Vm {
    /// Builds the segments of a program: shared text for each read-only range, private data
    /// for each writable one. `file` is one reference to the open program file, handed over
    /// as in [`attach`](Vm::attach).
    ///
    /// This is everything exec does before its point of no return: the file's length is
    /// read (may block, no lock held), the layout is checked, the image is attached, and the
    /// segments are built. On an error nothing is left behind and the caller's process is
    /// untouched. Stack and bss come from [`zero_segment`](Vm::zero_segment).
    pub fn exec(
        &self,
        file: Box<dyn ImageFile>,
        loads: &[LoadSegment],
    ) -> Result<Vec<SegmentRef>, VmError> {
        self.exec_in(None, file, loads)
    }

    /// [`exec`](Vm::exec) on CPU `cpu`: the image is attached as
    /// [`attach_on`](Vm::attach_on) does it, so the file handed over, when the image has a
    /// channel already, parks in `cpu`'s queue.
    pub fn exec_on(
        &self,
        cpu: usize,
        file: Box<dyn ImageFile>,
        loads: &[LoadSegment],
    ) -> Result<Vec<SegmentRef>, VmError> {
        self.exec_in(Some(cpu), file, loads)
    }

    fn exec_in(
        &self,
        cpu: Option<usize>,
        file: Box<dyn ImageFile>,
        loads: &[LoadSegment],
    ) -> Result<Vec<SegmentRef>, VmError> {
        let length = match file.length() {
            Ok(length) => length,
            Err(err) => {
                file.close();
                return Err(VmError::Io(err));
            }
        };
        let plans = match plan(loads, length) {
            Ok(plans) => plans,
            Err(err) => {
                file.close();
                return Err(err);
            }
        };
        let image = match cpu {
            Some(cpu) => self.attach_on(cpu, file)?,
            None => self.attach(file)?,
        };
        let mut segments = Vec::new();
        segments
            .try_reserve_exact(plans.len())
            .map_err(|_| VmError::NoMemory)?;
        for (geometry, writable) in plans {
            let segment = if writable {
                image.data_segment(self, geometry)?
            } else {
                image.text_segment(self, geometry)?
            };
            segments.push(segment);
        }
        Ok(segments)
    }
}

/// Checks every range and that no two overlap.
fn plan(loads: &[LoadSegment], length: u64) -> Result<Vec<(Geometry, bool)>, VmError> {
    let mut plans: Vec<(Geometry, bool)> = Vec::new();
    plans
        .try_reserve_exact(loads.len())
        .map_err(|_| VmError::NoMemory)?;
    for load in loads {
        let geometry = load.geometry(length).map_err(VmError::BadLayout)?;
        let overlaps = plans
            .iter()
            .any(|(other, _)| geometry.base < other.end() && other.base < geometry.end());
        if overlaps {
            return Err(VmError::BadLayout(LayoutError::Overlap));
        }
        plans.push((geometry, load.writable));
    }
    Ok(plans)
}
