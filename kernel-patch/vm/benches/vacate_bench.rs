//! `Vm::vacate` of a 2 MiB range of frames (512 pages of mapped memory, each mapped by two
//! address spaces: half a shared anonymous object, half private pages shared after fork),
//! side by side with the floor of any move (copying 512 frames and nothing else) and with
//! 512 single `Vm::migrate` calls of the same pages (each finds its page by scanning the
//! pool). `cargo bench -p vm --bench vacate_bench`. Ratios printed, never asserted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vm::testkit::HeapFrames;
use vm::{
    Access, AddressSpace, Config, Frame, FrameAllocator, MapSpec, MappingRef, ObjectRef, SpaceRef,
    Vm, PAGE_SIZE,
};

const PAGE: u64 = PAGE_SIZE as u64;
const PAGES: u64 = 512;
const ROUNDS: u32 = 10;

struct Mmu {
    id: u64,
    entries: Mutex<BTreeMap<u64, (Frame, bool)>>,
}

impl AddressSpace for Mmu {
    fn id(&self) -> u64 {
        self.id
    }
    fn map(&self, addr: u64, frame: Frame, writable: bool) {
        self.entries.lock().unwrap().insert(addr, (frame, writable));
    }
    fn invalidate(&self, addr: u64, len: u64) {
        self.entries
            .lock()
            .unwrap()
            .retain(|at, _| *at < addr || *at >= addr + len);
    }
}

/// 512 pages in frames `0..512`, each mapped in two spaces.
struct World {
    vm: Vm,
    frames: HeapFrames,
    _maps: Vec<MappingRef>,
    _object: ObjectRef,
}

fn world() -> World {
    let frames = HeapFrames::with_zero_frame(4096);
    let vm = Vm::new(
        frames.allocator(),
        Config {
            max_pages: 2048,
            max_free_pages: 2048,
            ..Config::default()
        },
    )
    .expect("vm");
    let space = |id| -> SpaceRef {
        Arc::new(Mmu {
            id,
            entries: Mutex::new(BTreeMap::new()),
        })
    };
    let (a, b) = (space(1), space(2));
    let half = PAGES / 2;
    let spec = |base, shared| MapSpec {
        base,
        len: half * PAGE,
        offset: 0,
        shared,
        writable: true,
    };
    let object = vm.anon_object(half * PAGE).unwrap();
    let shared_a = object.map(a.clone(), spec(0x100_0000, true)).unwrap();
    let shared_b = object.map(b.clone(), spec(0x100_0000, true)).unwrap();
    let private = vm.map_private_anon(a, spec(0x200_0000, false)).unwrap();
    for page in 0..half {
        shared_a
            .fault(0x100_0000 + page * PAGE, Access::Write)
            .unwrap();
        shared_b
            .fault(0x100_0000 + page * PAGE, Access::Read)
            .unwrap();
        private
            .fault(0x200_0000 + page * PAGE, Access::Write)
            .unwrap();
    }
    let forked = private.fork(b).unwrap();
    for page in 0..half {
        forked
            .fault(0x200_0000 + page * PAGE, Access::Read)
            .unwrap();
    }
    World {
        vm,
        frames,
        _maps: vec![shared_a, shared_b, private, forked],
        _object: object,
    }
}

fn main() {
    let (mut vacate, mut migrate, mut copy) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut moved = 0;
    for _ in 0..ROUNDS {
        let world = world();
        world.frames.reserve(0..PAGES);
        let start = Instant::now();
        let done = world.vm.vacate(0..PAGES).expect("vacate");
        vacate += start.elapsed();
        moved += done.moved;
        assert_eq!(world.frames.reserved_free() as u64, PAGES);

        let world = self::world();
        world.frames.reserve(0..PAGES);
        let start = Instant::now();
        for frame in 0..PAGES {
            world.vm.migrate(Frame(frame)).expect("migrate");
        }
        migrate += start.elapsed();

        // The floor: the copies alone, into frames outside the range (touched once first,
        // so the fake's lazy frame memory is not counted).
        for frame in 0..PAGES {
            world.frames.copy(Frame(frame), Frame(PAGES * 2 + frame));
        }
        let start = Instant::now();
        for frame in 0..PAGES {
            world.frames.copy(Frame(frame), Frame(PAGES * 2 + frame));
        }
        copy += start.elapsed();
    }
    let per = |total: Duration| total / ROUNDS;
    println!("vacate of 2 MiB ({PAGES} pages, each mapped twice), {ROUNDS} rounds, {moved} moves:");
    println!("  vacate:            {:?} a round", per(vacate));
    println!("  512 x migrate:     {:?} a round", per(migrate));
    println!("  512 frame copies:  {:?} a round", per(copy));
    println!(
        "  vacate / copies = {:.2}, 512 migrates / vacate = {:.2}",
        vacate.as_secs_f64() / copy.as_secs_f64(),
        migrate.as_secs_f64() / vacate.as_secs_f64()
    );
}
