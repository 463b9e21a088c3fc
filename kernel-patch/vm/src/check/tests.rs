//! The checker must catch broken states, not only pass good ones: each test breaks one
//! rule by hand and expects the matching violation.

use super::*;
use crate::image::ExecImage;
use crate::mcache::McacheImage;
use crate::segment::Entry;
use crate::sync::Arc;
use crate::testkit::{FakeFile, HeapFrames};
use crate::{Access, Config, FileIdentity, LoadSegment, SegmentKind};

const TEXT: u64 = 0x40_0000;

fn setup() -> (Vm, FakeFile, Vec<SegmentRef>) {
    let frames = HeapFrames::new(64);
    let vm = Vm::new(
        frames.allocator(),
        Config {
            max_pages: 32,
            ..Config::default()
        },
    )
    .unwrap();
    let identity = FileIdentity {
        dev_type: 1,
        dev: 1,
        qid_path: 1,
        version: 0,
    };
    let file = FakeFile::patterned(identity, 3 * 4096);
    let loads = [LoadSegment {
        vaddr: TEXT,
        mem_len: 3 * 4096,
        file_offset: 0,
        file_len: 3 * 4096,
        writable: false,
    }];
    let segments = vm.exec(file.open(), &loads).unwrap();
    for page in 0..3 {
        segments[0].fault(TEXT + page * 4096, Access::Read).unwrap();
    }
    (vm, file, segments)
}

fn image(vm: &Vm) -> Arc<ExecImage> {
    vm.shared.table.any_image().unwrap()
}

#[test]
fn a_good_state_passes() {
    let (vm, _file, segments) = setup();
    let refs: Vec<&SegmentRef> = segments.iter().collect();
    let report = check_invariants(&vm, Some(&refs)).unwrap();
    assert_eq!((report.cached_pages, report.open_channels), (3, 1));
}

#[test]
fn catches_a_wrong_pgref() {
    let (vm, _file, _segments) = setup();
    image(&vm).pgref.fetch_add(1, Ordering::Relaxed);
    assert!(matches!(
        check_invariants(&vm, None),
        Err(Violation::PgrefMismatch {
            chained: 3,
            pgref: 4,
            ..
        })
    ));
}

#[test]
fn catches_a_channel_kept_by_an_idle_image() {
    let (vm, file, segments) = setup();
    drop(segments);
    let image = image(&vm);
    let chan = crate::channel::ImageChannel::new(file.open(), &vm.shared.parked)
        .unwrap_or_else(|_| panic!("no parking slot"));
    let chan = crate::image::ExecChannel {
        file: chan,
        vm: vm.clone(),
    };
    image.state.lock().kind.chan = Some(Arc::try_new(chan).unwrap_or_else(|_| panic!("no memory")));
    let found = check_invariants(&vm, None);
    // The channel's handle of the vm would keep it alive for ever.
    image.state.lock().kind.chan = None;
    assert!(matches!(
        found,
        Err(Violation::ChannelPresence {
            has_channel: true,
            ..
        })
    ));
}

#[test]
fn catches_an_idle_image_off_the_idle_list() {
    let (vm, _file, segments) = setup();
    drop(segments);
    for shard in 0..crate::table::SHARDS {
        vm.shared.table.lock_shard(shard).clear_idle_list();
    }
    assert!(matches!(
        check_invariants(&vm, None),
        Err(Violation::IdleMismatch { idle: false, .. })
    ));
}

#[test]
fn catches_a_page_reference_nobody_holds() {
    let (vm, _file, segments) = setup();
    let refs: Vec<&SegmentRef> = segments.iter().collect();
    vm.shared.pool.incref(PageIndex(0));
    assert!(matches!(
        check_invariants(&vm, Some(&refs)),
        Err(Violation::PageRefMismatch {
            page: 0,
            refs: 2,
            mapped: 1
        })
    ));
}

#[test]
fn catches_a_page_left_loading() {
    let (vm, _file, _segments) = setup();
    let page = {
        let image = image(&vm);
        let mut state = image.state.lock();
        image.find(&mut state, &vm.shared.pool, 4096).unwrap()
    };
    vm.shared.pool.set_loading(page);
    assert_eq!(
        check_invariants(&vm, None),
        Err(Violation::PageLoading { page: page.0 })
    );
}

fn private_page(vm: &Vm) -> (SegmentRef, PageIndex) {
    let zero = vm.zero_segment(SegmentKind::Bss, 0x100_0000, 4096).unwrap();
    zero.fault(0x100_0000, Access::Write).unwrap();
    let Some(Entry::Page(page)) = zero.seg.table.lock().get(0) else {
        panic!("a write maps a page");
    };
    (zero, page)
}

#[test]
fn catches_a_lost_page() {
    let (vm, _file, _segments) = setup();
    let (_zero, page) = private_page(&vm);
    // A reference dropped as if the page were cached, then the owner cleared: the page
    // is at ref 0, neither free nor in a chain.
    vm.shared.pool.set_cached(page, u64::MAX, 0);
    vm.shared.pool.put(page);
    vm.shared.pool.set_uncached(page);
    assert_eq!(
        check_invariants(&vm, None),
        Err(Violation::PageLost { page: page.0 })
    );
}

#[test]
fn catches_a_page_freed_while_mapped() {
    let (vm, _file, _segments) = setup();
    let (zero, page) = private_page(&vm);
    // The segment still maps the page, but its reference is dropped.
    vm.shared.pool.put(page);
    assert!(
        check_invariants(&vm, None).is_ok(),
        "free and unmapped looks fine"
    );
    assert_eq!(
        check_invariants(&vm, Some(&[&zero])),
        Err(Violation::MappedPageFree { page: page.0 })
    );
    // Then a reference taken and dropped again frees it a second time.
    vm.shared.pool.incref(page);
    vm.shared.pool.put(page);
    assert_eq!(
        check_invariants(&vm, None),
        Err(Violation::DoubleFree { count: 1 })
    );
    core::mem::forget(zero);
}

#[test]
fn catches_a_page_in_two_chains() {
    let (vm, _file, _segments) = setup();
    let image = image(&vm);
    let mut state = image.state.lock();
    // Splice chain 1's head onto the end of chain 0's... by pointing chain 2 at chain 0.
    let head = state.chains_mut()[0];
    state.chains_mut()[2] = head;
    drop(state);
    assert!(matches!(
        check_invariants(&vm, None),
        Err(Violation::PageInTwoChains { .. }) | Err(Violation::PageInWrongChain { .. })
    ));
}

/// A mount-cache file of two cached pages next to `setup`'s image.
fn cached_file(vm: &Vm) -> (crate::CachedFile, Arc<McacheImage>) {
    let identity = FileIdentity {
        dev_type: 1,
        dev: 2,
        qid_path: 9,
        version: 4,
    };
    let file = vm
        .mount_cache()
        .open(identity, 8192, crate::OpenKind::Existing, false);
    let ticket = file.read(0, &mut [0; 1]).ticket;
    assert_eq!(file.fill(ticket, 0, &[7; 8192]), 8192);
    let image = vm.shared.table.any_file().unwrap();
    (file, image)
}

#[test]
fn a_good_mount_cache_passes() {
    let (vm, _file, segments) = setup();
    let (_cached, _) = cached_file(&vm);
    let refs: Vec<&SegmentRef> = segments.iter().collect();
    let report = check_invariants(&vm, Some(&refs)).unwrap();
    assert_eq!((report.mcache_files, report.mcache_pages), (1, 2));
    assert_eq!(report.cached_pages, 3, "the executable image's pages apart");
}

#[test]
fn catches_a_mount_cache_image_in_the_map_marked_unlinked() {
    let (vm, _file, _segments) = setup();
    let (_cached, image) = cached_file(&vm);
    // What is still checkable of a mount-cache image's own state: the map and the
    // image's `linked` must agree.
    image.state.lock().kind.linked = false;
    assert_eq!(
        check_invariants(&vm, None),
        Err(Violation::McacheUnlinked {
            identity: FileIdentity {
                version: 4,
                ..image.identity
            }
        })
    );
}

#[test]
fn catches_a_referenced_mount_cache_page() {
    let (vm, _file, _segments) = setup();
    let (_cached, image) = cached_file(&vm);
    let page = {
        let mut state = image.state.lock();
        image.find(&mut state, &vm.shared.pool, 0).unwrap()
    };
    vm.shared.pool.incref(page);
    assert_eq!(
        check_invariants(&vm, None),
        Err(Violation::McachePageInUse {
            page: page.0,
            refs: 1
        })
    );
}

#[test]
fn catches_a_bad_valid_range() {
    let (vm, _file, _segments) = setup();
    let (_cached, image) = cached_file(&vm);
    let page = {
        let mut state = image.state.lock();
        image.find(&mut state, &vm.shared.pool, 4096).unwrap()
    };
    // Re-cached by hand without a valid range.
    vm.shared.pool.set_uncached(page);
    vm.shared.pool.set_cached(page, image.serial, 4096);
    assert!(matches!(
        check_invariants(&vm, None),
        Err(Violation::McacheBadRange {
            start: 0,
            end: 0,
            ..
        })
    ));
}

#[test]
fn catches_a_mount_cache_count_that_drifted() {
    let (vm, _file, _segments) = setup();
    let (_cached, _) = cached_file(&vm);
    vm.shared.mcache_pages.fetch_add(1, Ordering::AcqRel);
    assert_eq!(
        check_invariants(&vm, None),
        Err(Violation::McacheCountMismatch {
            counted: 2,
            recorded: 3
        })
    );
}

#[test]
fn catches_a_file_over_its_limit() {
    let vm = Vm::with_mount_cache(
        HeapFrames::new(8).allocator(),
        Config {
            max_pages: 8,
            ..Config::default()
        },
        crate::MountCacheConfig {
            max_file_bytes: 4096,
            ..crate::MountCacheConfig::default()
        },
    )
    .unwrap();
    let identity = FileIdentity {
        dev_type: 1,
        dev: 2,
        qid_path: 3,
        version: 0,
    };
    let file = vm
        .mount_cache()
        .open(identity, 8192, crate::OpenKind::Existing, false);
    let ticket = file.read(0, &mut [0; 1]).ticket;
    assert_eq!(
        file.fill(ticket, 0, &[7; 8192]),
        4096,
        "one page, the limit"
    );
    check_invariants(&vm, None).unwrap();
    // A second page slipped in past the limit.
    let image = vm.shared.table.any_file().unwrap();
    let pool = &vm.shared.pool;
    let page = pool.try_alloc(&*vm.shared.frames).unwrap();
    let mut state = image.state.lock();
    image.insert(&mut state, pool, 4096, page);
    pool.set_valid(page, 0, 4096);
    pool.put(page);
    drop(state);
    vm.shared.mcache_pages.fetch_add(1, Ordering::AcqRel);
    assert_eq!(
        check_invariants(&vm, None),
        Err(Violation::McacheFileOverLimit {
            identity,
            pages: 2,
            limit: 1
        })
    );
}

#[test]
fn catches_a_mount_cache_reference_nobody_holds() {
    let (vm, _file, _segments) = setup();
    let (_cached, image) = cached_file(&vm);
    image.refs.fetch_add(1, Ordering::AcqRel);
    assert!(matches!(
        check_invariants(&vm, None),
        Err(Violation::McacheRefMismatch {
            refs: 4,
            pgref: 2,
            ..
        })
    ));
}

#[test]
fn catches_double_caching() {
    let (vm, _file, _segments) = setup();
    let exec = image(&vm);
    // The executable's file at another version is cached: fine.
    let other_version = FileIdentity {
        version: exec.identity.version + 1,
        ..exec.identity
    };
    let file = vm
        .mount_cache()
        .open(other_version, 10, crate::OpenKind::Existing, false);
    assert!(file.is_cached());
    check_invariants(&vm, None).unwrap();
    // Relabelled with the executable's very version behind the table's back: not fine.
    let cached = vm.shared.table.any_file().unwrap();
    cached
        .kind
        .vers
        .store(exec.identity.version, Ordering::Relaxed);
    assert_eq!(
        check_invariants(&vm, None),
        Err(Violation::DoubleCached {
            identity: exec.identity
        })
    );
}

#[test]
fn catches_a_count_across_shards_that_is_not_their_sum() {
    let (vm, _file, segments) = setup();
    let refs: Vec<&SegmentRef> = segments.iter().collect();
    check_invariants(&vm, Some(&refs)).unwrap();
    vm.shared.table.counts.images.fetch_add(1, Ordering::AcqRel);
    assert!(matches!(
        check_invariants(&vm, Some(&refs)),
        Err(Violation::TableCountMismatch { images: 2, .. })
    ));
}

#[test]
fn catches_an_image_in_another_shard_than_its_identity_hashes_to() {
    let (vm, _file, segments) = setup();
    let refs: Vec<&SegmentRef> = segments.iter().collect();
    let image = image(&vm);
    let wrong = (Vm::table_shard(&image.identity) + 1) % crate::table::SHARDS;
    vm.shared
        .table
        .lock_shard(wrong)
        .insert_image(image.clone(), u32::MAX)
        .unwrap();
    assert!(matches!(
        check_invariants(&vm, Some(&refs)),
        Err(Violation::WrongShard { identity }) if identity == image.identity
    ));
}

#[test]
fn catches_a_mount_cache_file_with_pages_that_reclaim_cannot_find() {
    let (vm, _file, segments) = setup();
    let refs: Vec<&SegmentRef> = segments.iter().collect();
    let (_cached, image) = cached_file(&vm);
    check_invariants(&vm, Some(&refs)).unwrap();
    vm.shared
        .table
        .lock(&image.identity)
        .hide_from_reclaim(&image);
    assert!(matches!(
        check_invariants(&vm, Some(&refs)),
        Err(Violation::McacheUnreclaimable { identity }) if identity == image.identity
    ));
}
