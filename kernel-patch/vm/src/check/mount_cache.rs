//! The mount cache's rules (`mcache/`): its images' chains, valid ranges and references,
//! the per-file and total limits, and no file cached both by an executable image and by the
//! mount cache (see [`check_invariants`](super::check_invariants)).

use crate::file::FileIdentity;
use crate::frame::{PAGE_BYTES, PAGE_SIZE};
use crate::mcache::McacheImage;
use crate::sync::{Arc, Ordering};
use crate::vm::Vm;

use super::{walk_pages, CheckReport, Violation};

/// The mount cache's rules (see [`check_invariants`](super::check_invariants)).
pub(super) fn check_mount_cache(
    vm: &Vm,
    files: &[(Arc<McacheImage>, FileIdentity)],
    chained: &mut [u8],
    report: &mut CheckReport,
) -> Result<(), Violation> {
    let shared = &*vm.shared;
    let pool = &shared.pool;
    let config = shared.mcache_config;
    let file_limit = u32::try_from(config.max_file_bytes / PAGE_BYTES).unwrap_or(u32::MAX);
    let total_limit = shared.mcache_page_limit();
    let files_now = files.len() as u32;
    if files_now > config.max_files {
        return Err(Violation::McacheTooManyFiles {
            files: files_now,
            limit: config.max_files,
        });
    }
    let mut total = 0u32;
    for (image, identity) in files {
        let identity = *identity;
        let state = image.state.lock();
        if !state.kind.linked {
            return Err(Violation::McacheUnlinked { identity });
        }
        let count = walk_pages(pool, image, &state, identity, chained, |page, view| {
            let (start, end) = view.valid;
            if view.refs != 0 {
                Some(Violation::McachePageInUse {
                    page: page.0,
                    refs: view.refs,
                })
            } else if start >= end || end > PAGE_SIZE || view.offset % PAGE_BYTES != 0 {
                Some(Violation::McacheBadRange {
                    page: page.0,
                    start,
                    end,
                })
            } else {
                None
            }
        })?;
        let refs = image.refs.load(Ordering::Acquire);
        let pgref = image.pgref.load(Ordering::Acquire);
        if count != pgref {
            return Err(Violation::PgrefMismatch {
                identity,
                pgref,
                chained: count,
            });
        }
        if refs != pgref + 1 {
            return Err(Violation::McacheRefMismatch {
                identity,
                refs,
                pgref,
            });
        }
        if pgref > file_limit {
            return Err(Violation::McacheFileOverLimit {
                identity,
                pages: pgref,
                limit: file_limit,
            });
        }
        total += count;
    }
    if total > total_limit {
        return Err(Violation::McacheOverLimit {
            pages: total,
            limit: total_limit,
        });
    }
    let recorded = shared.mcache_pages.load(Ordering::Acquire);
    if recorded != total {
        return Err(Violation::McacheCountMismatch {
            counted: total,
            recorded,
        });
    }
    report.mcache_files = files_now;
    report.mcache_pages = total;
    Ok(())
}
