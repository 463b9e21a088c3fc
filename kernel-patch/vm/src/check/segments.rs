//! The accounting rules that need every live segment: each page's count is its mappings,
//! each image's `refs` is `pgref` plus its segments, each segment's image is the table's,
//! and the zero page's entries (see [`check_invariants`](super::check_invariants)).

use alloc::vec;
use alloc::vec::Vec;

use hashbrown::HashSet;

use crate::image::ExecImage;
use crate::page::PageIndex;
use crate::segment::{Entry, SegmentRef};
use crate::sync::{Arc, Ordering};
use crate::table::IdentityHasher;
use crate::vm::Vm;

use super::{zero_page, Violation};

/// The accounting checks that need every live segment.
pub(super) fn check_segments(
    vm: &Vm,
    segments: &[&SegmentRef],
    images: &[Arc<ExecImage>],
) -> Result<(), Violation> {
    let shared = &*vm.shared;
    let pool = &shared.pool;
    let capacity = pool.capacity();
    let mut mapped = vec![0u32; capacity as usize];
    let mut seen: HashSet<u64, core::hash::BuildHasherDefault<IdentityHasher>> = HashSet::default();
    // (image serial, segments using it)
    let mut users: Vec<(u64, u32)> = Vec::new();
    let mut zero_entries = 0u64;
    for segment in segments {
        let seg = &*segment.seg;
        if !seen.insert(seg.serial) {
            continue;
        }
        if let Some(image) = &seg.image {
            let linked = images
                .iter()
                .any(|linked| linked.serial == image.serial && linked.identity == image.identity);
            if !linked {
                return Err(Violation::DuplicateIdentity {
                    identity: image.identity,
                });
            }
            match users.iter_mut().find(|(serial, _)| *serial == image.serial) {
                Some((_, count)) => *count += 1,
                None => users.push((image.serial, 1)),
            }
        }
        let table = seg.table.lock();
        let mut problem = None;
        table.for_each(|number, entry| {
            let page = match entry {
                Entry::Page(page) => page,
                Entry::Zero => {
                    zero_entries += 1;
                    if let Some(found) = zero_page::check_entry(seg, number) {
                        problem.get_or_insert(found);
                    }
                    return;
                }
            };
            let view = pool.view(page);
            if !view.bound || view.free {
                problem.get_or_insert(Violation::MappedPageFree { page: page.0 });
            }
            mapped[page.0 as usize] += 1;
        });
        if let Some(problem) = problem {
            return Err(problem);
        }
    }
    // Mappings hold page references too, and map the zero page too.
    zero_entries += crate::mapping::check::count_mapped(vm, &mut mapped);
    zero_page::check_entry_count(vm, zero_entries)?;
    for index in 0..capacity {
        let view = pool.view(PageIndex(index));
        if view.bound && view.refs != mapped[index as usize] {
            return Err(Violation::PageRefMismatch {
                page: index,
                refs: view.refs,
                mapped: mapped[index as usize],
            });
        }
    }
    for image in images {
        let using = users
            .iter()
            .find(|(serial, _)| *serial == image.serial)
            .map_or(0, |(_, count)| *count);
        let refs = image.refs.load(Ordering::Acquire);
        let expected = image.pgref.load(Ordering::Acquire) + using;
        if refs != expected {
            return Err(Violation::ImageRefMismatch {
                identity: image.identity,
                refs,
                expected,
            });
        }
    }
    Ok(())
}
