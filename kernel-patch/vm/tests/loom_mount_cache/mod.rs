//! loom models of the mount cache (`mcache/`): fills, writes, exec and reclaim against
//! one another (models 4 to 7 of `loom.rs`).

use loom::thread;
use vm::check::check_invariants;
use vm::testkit::HeapFrames;
use vm::{CachedFile, Config, FileIdentity, MountCacheConfig, OpenKind, Vm, PAGE_SIZE};

use super::{finish, model, setup};

fn mcache_setup() -> (Vm, HeapFrames) {
    let frames = HeapFrames::new(8);
    let vm = Vm::with_mount_cache(
        frames.allocator(),
        Config {
            max_pages: 4,
            max_images: 2,
            max_idle_images: 2,
            reclaim_batch: 1,
            max_free_pages: 4,
        },
        MountCacheConfig {
            max_file_bytes: 2 * PAGE_SIZE as u64,
            max_bytes: 2 * PAGE_SIZE as u64,
            max_files: 2,
        },
    )
    .unwrap();
    (vm, frames)
}

fn data_file(vers: u64) -> FileIdentity {
    FileIdentity {
        dev_type: 1,
        dev: 2,
        qid_path: 30,
        version: vers,
    }
}

/// A file on a fake server: its version and contents, changed atomically.
type Server = loom::sync::Arc<loom::sync::Mutex<(u64, Vec<u8>)>>;

/// Reads `len` bytes at 0 the kernel's way: the cache, then the server, then a fill.
fn read_through(file: &CachedFile, server: &Server, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let hit = file.read(0, &mut buf);
    let data = server.lock().unwrap().1.clone();
    buf[hit.len..].copy_from_slice(&data[hit.len..len]);
    file.fill(hit.ticket, hit.len as u64, &data[hit.len..len]);
    buf
}

/// Whatever `file`'s cache answers is the server's current contents.
fn assert_cache_matches(file: &CachedFile, server: &Server) {
    let data = server.lock().unwrap().1.clone();
    let mut buf = vec![0u8; data.len()];
    let hit = file.read(0, &mut buf);
    assert_eq!(
        &buf[..hit.len],
        &data[..hit.len],
        "a stale byte in the cache"
    );
}

fn mcache_finish(vm: Vm, frames: HeapFrames) {
    if let Err(violation) = check_invariants(&vm, Some(&[])) {
        panic!("{violation}");
    }
    drop(vm);
    assert_eq!(frames.stats().outstanding(), 0);
}

#[test]
fn fill_vs_a_new_version_at_open() {
    model("fill_vs_a_new_version_at_open", || {
        let (vm, frames) = mcache_setup();
        let server: Server = loom::sync::Arc::new(loom::sync::Mutex::new((0, vec![1u8; 64])));
        let cache = vm.mount_cache();
        let file = cache.open(data_file(0), 64, OpenKind::Existing, false);
        let reader = {
            let server = server.clone();
            thread::spawn(move || {
                read_through(&file, &server, 64);
            })
        };
        // Another client writes the file; then an open of ours sees its new version.
        *server.lock().unwrap() = (1, vec![2u8; 64]);
        let reopened = cache.open(data_file(1), 64, OpenKind::Existing, false);
        reader.join().unwrap();
        assert_cache_matches(&reopened, &server);
        drop((reopened, cache));
        mcache_finish(vm, frames);
    });
}

#[test]
fn two_writes_in_flight_at_once() {
    model("two_writes_in_flight_at_once", || {
        let (vm, frames) = mcache_setup();
        let server: Server = loom::sync::Arc::new(loom::sync::Mutex::new((0, vec![0u8; 16])));
        let file = loom::sync::Arc::new(vm.mount_cache().open(
            data_file(0),
            16,
            OpenKind::Existing,
            false,
        ));
        read_through(&file, &server, 16);
        let write = |file: &CachedFile, server: &Server, byte: u8| {
            let pending = file.begin_write();
            {
                let mut server = server.lock().unwrap();
                server.0 += 1;
                server.1[..4].fill(byte);
            }
            pending.done(0, &[byte; 4]);
        };
        let writer = {
            let (file, server) = (file.clone(), server.clone());
            thread::spawn(move || write(&file, &server, b'A'))
        };
        write(&file, &server, b'B');
        writer.join().unwrap();
        assert_cache_matches(&file, &server);
        drop(file);
        mcache_finish(vm, frames);
    });
}

/// Our write through a handle while the file's entry is forgotten, and a second open makes
/// and fills a new one: whichever way they interleave, the entry the second handle reads
/// never answers bytes from before the write once it is done (the write reaches the new
/// entry, or its end wipes it).
#[test]
fn a_write_vs_its_entry_forgotten_and_refilled() {
    model("a_write_vs_its_entry_forgotten_and_refilled", || {
        let (vm, frames) = mcache_setup();
        let server: Server = loom::sync::Arc::new(loom::sync::Mutex::new((0, vec![0u8; 16])));
        let cache = vm.mount_cache();
        let first = cache.open(data_file(0), 16, OpenKind::Existing, false);
        let writer = {
            let server = server.clone();
            thread::spawn(move || {
                let pending = first.begin_write();
                {
                    let mut server = server.lock().unwrap();
                    server.0 += 1;
                    server.1[..4].fill(b'A');
                }
                pending.done(0, b"AAAA");
            })
        };
        cache.forget(data_file(0));
        let vers = server.lock().unwrap().0;
        let second = cache.open(data_file(vers), 16, OpenKind::Existing, false);
        read_through(&second, &server, 16);
        writer.join().unwrap();
        assert_cache_matches(&second, &server);
        drop((second, cache));
        mcache_finish(vm, frames);
    });
}

#[test]
fn exec_vs_a_cached_open_of_the_same_version() {
    model("exec_vs_a_cached_open_of_the_same_version", || {
        let (vm, frames, file, loads) = setup();
        let opener = {
            let (vm, file) = (vm.clone(), file.clone());
            thread::spawn(move || {
                let cached = vm.mount_cache().open(
                    file.identity(),
                    PAGE_SIZE as u64,
                    OpenKind::Existing,
                    false,
                );
                let mut buf = vec![0u8; 32];
                let hit = cached.read(0, &mut buf);
                cached.fill(hit.ticket, 0, &file.data()[..32]);
                cached
            })
        };
        let segments = vm.exec(file.open(), &loads).unwrap();
        let cached = opener.join().unwrap();
        // Whichever came first, the executable image and the mount cache never both hold
        // the file (the checker's DoubleCached), and a cached open lost its entry to exec
        // or came after it uncached.
        assert!(!cached.is_cached());
        drop(cached);
        let live: Vec<&vm::SegmentRef> = segments.iter().collect();
        if let Err(violation) = check_invariants(&vm, Some(&live)) {
            panic!("{violation}");
        }
        assert_eq!(vm.statistics().mcache_files, 0);
        drop(segments);
        finish(vm, frames, file);
    });
}

#[test]
fn fill_vs_reclaim() {
    model("fill_vs_reclaim", || {
        let (vm, frames) = mcache_setup();
        let server: Server =
            loom::sync::Arc::new(loom::sync::Mutex::new((0, vec![3u8; 2 * PAGE_SIZE])));
        let file = vm.mount_cache().open(
            data_file(0),
            2 * PAGE_SIZE as u64,
            OpenKind::Existing,
            false,
        );
        let reclaimer = {
            let vm = vm.clone();
            thread::spawn(move || {
                vm.reclaim(1);
            })
        };
        let bytes = read_through(&file, &server, 2 * PAGE_SIZE);
        assert!(bytes.iter().all(|byte| *byte == 3));
        reclaimer.join().unwrap();
        assert_cache_matches(&file, &server);
        drop(file);
        mcache_finish(vm, frames);
    });
}
