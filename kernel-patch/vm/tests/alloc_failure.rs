//! Allocation failure injected at every allocation site of each operation: the operation
//! fails with an out-of-memory error, the invariants hold, a retry succeeds, and in the end
//! every frame and file handle comes back.

mod common;

use common::*;
use vm::{Access, AllocSite, Config, FaultError, SegmentKind, SegmentRef, VmError};

#[derive(Debug, PartialEq)]
enum Failed {
    Vm(VmError),
    Fault(FaultError),
}

impl From<VmError> for Failed {
    fn from(err: VmError) -> Self {
        Self::Vm(err)
    }
}

impl From<FaultError> for Failed {
    fn from(err: FaultError) -> Self {
        Self::Fault(err)
    }
}

/// What an operation works on and leaves behind.
#[derive(Default)]
struct State {
    programs: Vec<Program>,
    segments: Vec<SegmentRef>,
}

impl State {
    fn refs(&self) -> Vec<&SegmentRef> {
        self.segments.iter().collect()
    }
}

/// Runs `op` once for each allocation it makes, failing that allocation, and checks the
/// outcome. Returns how many allocation sites the operation went through.
fn fail_each_allocation(
    config: Config,
    setup: impl Fn(&World, &mut State),
    op: impl Fn(&World, &mut State) -> Result<(), Failed>,
) -> u64 {
    for nth in 0.. {
        assert!(nth < 10_000, "the operation never stops allocating");
        let world = world(config);
        let frames = world.frames.clone();
        let mut state = State::default();
        setup(&world, &mut state);
        let before = frames.stats().admitted;
        frames.fail_allocation(nth);
        let result = op(&world, &mut state);
        frames.never_fail();
        let made = frames.stats().admitted - before;
        check(&world, &state.refs());
        match result {
            Ok(()) => {
                assert!(
                    made <= nth,
                    "allocation {nth} failed but the operation succeeded"
                );
                let programs = state.programs.clone();
                drop(state);
                check(&world, &[]);
                drop(world);
                assert_eq!(frames.stats().outstanding(), 0);
                for program in programs {
                    assert_eq!(program.file.counts().open_handles(), 0);
                    assert_eq!(program.file.counts().unclosed_drops, 0);
                }
                return nth;
            }
            Err(err) => {
                assert!(
                    matches!(
                        err,
                        Failed::Vm(VmError::NoMemory) | Failed::Fault(FaultError::NoMemory)
                    ),
                    "allocation {nth}: unexpected {err:?}"
                );
                op(&world, &mut state).expect("retry after the failure");
                check(&world, &state.refs());
                let programs = state.programs.clone();
                drop(state);
                check(&world, &[]);
                drop(world);
                assert_eq!(
                    frames.stats().outstanding(),
                    0,
                    "allocation {nth}: frames leaked"
                );
                for program in programs {
                    let counts = program.file.counts();
                    assert_eq!(counts.open_handles(), 0, "allocation {nth}: handle leaked");
                    assert_eq!(counts.unclosed_drops, 0);
                }
            }
        }
    }
    unreachable!()
}

fn add_program(state: &mut State, path: u64) {
    state
        .programs
        .push(program(ident(1, path, 0), 3 * PAGE + 10, PAGE + 20, PAGE));
}

fn exec_into(world: &World, state: &mut State, index: usize) -> Result<(), Failed> {
    let program = &state.programs[index];
    let segments = world.vm.exec(program.file.open(), &program.loads)?;
    state.segments.extend(segments);
    Ok(())
}

fn fault_every_page(state: &State, kind: SegmentKind, access: Access) -> Result<(), Failed> {
    for segment in state.segments.iter().filter(|s| s.kind() == kind) {
        for addr in (segment.base()..segment.end()).step_by(PAGE as usize) {
            segment.fault(addr, access)?;
        }
    }
    Ok(())
}

#[test]
fn exec_cold() {
    let sites = fail_each_allocation(
        small_config(),
        |_, state| add_program(state, 1),
        |world, state| {
            state.segments.clear();
            exec_into(world, state, 0)
        },
    );
    assert!(sites >= 4, "channel, image, and a segment each: {sites}");
}

#[test]
fn exec_warm_and_fault_everything() {
    let sites = fail_each_allocation(
        small_config(),
        |world, state| {
            add_program(state, 2);
            exec_into(world, state, 0).unwrap();
            fault_every_page(state, SegmentKind::Text, Access::Read).unwrap();
            fault_every_page(state, SegmentKind::Data, Access::Read).unwrap();
            state.segments.clear();
        },
        |world, state| {
            state.segments.clear();
            exec_into(world, state, 0)?;
            fault_every_page(state, SegmentKind::Text, Access::Read)?;
            fault_every_page(state, SegmentKind::Data, Access::Read)
        },
    );
    assert!(sites >= 5, "{sites}");
}

#[test]
fn text_faults_that_load_from_the_file() {
    let sites = fail_each_allocation(
        small_config(),
        |world, state| {
            add_program(state, 3);
            exec_into(world, state, 0).unwrap();
        },
        |_, state| fault_every_page(state, SegmentKind::Text, Access::Read),
    );
    assert!(sites >= 4, "{sites}");
}

#[test]
fn data_writes_that_copy() {
    let sites = fail_each_allocation(
        small_config(),
        |world, state| {
            add_program(state, 4);
            exec_into(world, state, 0).unwrap();
            fault_every_page(state, SegmentKind::Data, Access::Read).unwrap();
        },
        |_, state| fault_every_page(state, SegmentKind::Data, Access::Write),
    );
    assert!(sites >= 1, "one full image page to copy: {sites}");
}

#[test]
fn zero_fill_segments() {
    let sites = fail_each_allocation(
        small_config(),
        |_, _| {},
        |world, state| {
            state.segments.clear();
            let stack = world
                .vm
                .zero_segment(SegmentKind::Stack, STACK_VA, 600 * PAGE)?;
            for addr in [STACK_VA, STACK_VA + PAGE, STACK_VA + 599 * PAGE] {
                stack.fault(addr, Access::Write)?;
            }
            state.segments.push(stack);
            Ok(())
        },
    );
    assert!(sites >= 6, "segment, two leaves, three pages: {sites}");
}

#[test]
fn zero_fill_writes_after_reads_of_the_zero_page() {
    let sites = fail_each_allocation(
        small_config(),
        |world, state| {
            let stack = world
                .vm
                .zero_segment(SegmentKind::Stack, STACK_VA, 3 * PAGE)
                .unwrap();
            state.segments.push(stack);
            fault_every_page(state, SegmentKind::Stack, Access::Read).unwrap();
        },
        |_, state| fault_every_page(state, SegmentKind::Stack, Access::Write),
    );
    assert!(sites >= 3, "a page for each write: {sites}");
}

#[test]
fn fork_of_every_segment() {
    let sites = fail_each_allocation(
        small_config(),
        |world, state| {
            add_program(state, 5);
            exec_into(world, state, 0).unwrap();
            fault_every_page(state, SegmentKind::Data, Access::Write).unwrap();
            fault_every_page(state, SegmentKind::Text, Access::Read).unwrap();
            state.segments.push(
                world
                    .vm
                    .zero_segment(SegmentKind::Bss, 0x1000_0000, PAGE)
                    .unwrap(),
            );
            fault_every_page(state, SegmentKind::Bss, Access::Write).unwrap();
            // Entries of the zero page, which a failed fork must not count.
            state.segments.push(
                world
                    .vm
                    .zero_segment(SegmentKind::Stack, STACK_VA, 2 * PAGE)
                    .unwrap(),
            );
            fault_every_page(state, SegmentKind::Stack, Access::Read).unwrap();
        },
        |_, state| {
            let mut children = Vec::new();
            for segment in &state.segments {
                children.push(segment.fork()?);
            }
            state.segments.extend(children);
            Ok(())
        },
    );
    assert!(sites >= 4, "{sites}");
}

#[test]
fn attach_into_a_full_table() {
    let config = Config {
        max_images: 1,
        ..small_config()
    };
    let sites = fail_each_allocation(
        config,
        |world, state| {
            add_program(state, 6);
            add_program(state, 7);
            exec_into(world, state, 0).unwrap();
            fault_every_page(state, SegmentKind::Text, Access::Read).unwrap();
            state.segments.clear();
        },
        |world, state| {
            state.segments.clear();
            exec_into(world, state, 1)?;
            fault_every_page(state, SegmentKind::Text, Access::Read)
        },
    );
    assert!(sites >= 5, "{sites}");
}

#[test]
fn faults_under_memory_pressure() {
    let config = Config {
        max_pages: 8,
        ..small_config()
    };
    let sites = fail_each_allocation(
        config,
        |world, state| {
            add_program(state, 8);
            add_program(state, 9);
            exec_into(world, state, 0).unwrap();
            fault_every_page(state, SegmentKind::Text, Access::Read).unwrap();
            fault_every_page(state, SegmentKind::Data, Access::Read).unwrap();
            state.segments.clear();
        },
        |world, state| {
            state.segments.clear();
            exec_into(world, state, 1)?;
            fault_every_page(state, SegmentKind::Text, Access::Read)?;
            fault_every_page(state, SegmentKind::Data, Access::Write)
        },
    );
    assert!(sites >= 6, "{sites}");
}

#[test]
fn a_refused_load_buffer_fails_the_fault_and_reads_nothing() {
    let world = world(small_config());
    let program = program(ident(1, 60, 0), PAGE, PAGE, 0);
    let process = exec(&world, &program);
    // The bounce buffer a page load reads the file into, before it borrows the frame.
    world.frames.fail_site(AllocSite::LoadBuffer);
    assert_eq!(
        process.text().fault(TEXT_VA, Access::Read),
        Err(FaultError::NoMemory)
    );
    assert_eq!(program.file.counts().reads, 0, "read with no buffer");
    let report = check(&world, &process.refs());
    assert_eq!(report.cached_pages, 0, "the loading page stayed");
    // The next fault loads the page.
    process.text().fault(TEXT_VA, Access::Read).expect("retry");
    verify_process(&world, &process);
    drop(process);
    world.vm.run_parked_closes();
    let counts = program.file.counts();
    assert_eq!((counts.open_handles(), counts.unclosed_drops), (0, 0));
}
