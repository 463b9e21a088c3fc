//! `compare`: find and start the servers, measure them side by side, stop them, also
//! when a signal ends the bench.

use std::path::PathBuf;
use std::time::Duration;

use ninep::Dialect;
use tools::bench::report::Skipped;
use tools::bench::servers::{self, Scratch, ServerCommand, Servers};
use tools::bench::session::Target;
use tools::bench::signals;
use tracing::warn;

use super::measure::{finish, measure};
use super::{Binaries, Common, ServerKind};

/// A peer server `compare` may start, and where its binary is.
struct PeerSpec {
    kind: ServerKind,
    name: &'static str,
    /// From the command line.
    given: Option<PathBuf>,
    /// Where it was found when not given.
    found: Option<PathBuf>,
    /// How a person gets it.
    install: &'static str,
}

/// Starts the servers, measures them, stops them; true when all went well.
pub(super) fn compare(
    binaries: &Binaries,
    without: &[ServerKind],
    ramfs_max_memory: u64,
    start_timeout: Duration,
    common: &Common,
) -> bool {
    let wanted = |k: ServerKind| !without.contains(&k);
    let scratch = match Scratch::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ninep-bench: cannot make a scratch directory: {e}");
            return false;
        }
    };
    let logs = common.out.join("logs");
    if let Err(e) = std::fs::create_dir_all(&logs) {
        eprintln!("ninep-bench: cannot make {}: {e}", logs.display());
        return false;
    }

    let mut ok = true;
    let mut skipped = Vec::new();
    let mut commands: Vec<ServerCommand> = Vec::new();
    if wanted(ServerKind::Ramfs) {
        match binaries
            .ramfs
            .clone()
            .or_else(|| servers::sibling_binary("ramfs"))
        {
            Some(p) => commands.push(servers::ramfs(&p, &scratch, ramfs_max_memory)),
            None => {
                eprintln!(
                    "ninep-bench: no ramfs binary next to this program; build it \
                     (cargo build -p ramfs), pass --ramfs PATH, or --without ramfs"
                );
                ok = false;
            }
        }
    }
    if wanted(ServerKind::Raw) {
        // The raw baseline is this very program, so it is always there.
        match std::env::current_exe() {
            Ok(me) => commands.push(servers::raw(&me, &scratch)),
            Err(e) => {
                let reason = format!("cannot find this program to start it: {e}");
                eprintln!("ninep-bench: raw: {reason}; measuring without it");
                skipped.push(Skipped {
                    name: "raw".into(),
                    reason,
                });
            }
        }
    }
    let peers = [
        PeerSpec {
            kind: ServerKind::Diod,
            name: "diod",
            given: binaries.diod.clone(),
            found: servers::on_path("diod"),
            install: "apt-get install diod",
        },
        PeerSpec {
            kind: ServerKind::P9,
            name: "p9",
            given: binaries.p9_peer.clone(),
            found: servers::sibling_binary("p9-peer"),
            install: "cargo build -p p9-peer",
        },
        PeerSpec {
            kind: ServerKind::Unpfs,
            name: "unpfs",
            given: binaries.unpfs.clone(),
            found: servers::on_path("unpfs").or_else(|| servers::cargo_installed("unpfs")),
            install: "cargo install unpfs",
        },
    ];
    for peer in peers {
        let PeerSpec {
            kind,
            name,
            given,
            found,
            install,
        } = peer;
        if !wanted(kind) {
            continue;
        }
        let Some(program) = given.or(found) else {
            let reason = format!("not found (install it: {install})");
            eprintln!("ninep-bench: {name}: {reason}; measuring without it");
            skipped.push(Skipped {
                name: name.into(),
                reason,
            });
            continue;
        };
        let cmd = match kind {
            ServerKind::Diod => servers::diod(&program, &scratch),
            ServerKind::P9 => servers::p9(&program, &scratch),
            _ => servers::unpfs(&program, &scratch),
        };
        match cmd {
            Ok(c) => commands.push(c),
            Err(e) => {
                eprintln!("ninep-bench: {name}: cannot make its export directory: {e}");
                ok = false;
            }
        }
    }

    let running = Servers::default();
    stop_on_signals(&running, &scratch);
    let mut targets: Vec<Target> = Vec::new();
    for cmd in &commands {
        eprintln!("starting {} ({})", cmd.name, cmd.program.display());
        let log = logs.join(format!("{}.log", cmd.name));
        match running.start(cmd, &log, start_timeout) {
            Ok(pid) => {
                eprintln!("{} is listening (pid {pid})", cmd.name);
                targets.push(cmd.target.clone());
            }
            Err(e) => {
                eprintln!("ninep-bench: {e}");
                skipped.push(Skipped {
                    name: cmd.name.clone(),
                    reason: e.to_string(),
                });
                ok = false;
            }
        }
    }
    if wanted(ServerKind::Ramfs9p2000) {
        if let Some(ramfs) = targets.iter().find(|t| t.name == "ramfs") {
            targets.push(Target {
                name: "ramfs-9p2000".into(),
                dialect: Dialect::P2000,
                ..ramfs.clone()
            });
        }
    }
    if targets.is_empty() {
        eprintln!("ninep-bench: no server to measure");
        return false;
    }

    let report = measure(&targets, common, skipped);
    for died in running.died() {
        eprintln!(
            "ninep-bench: {} died during the run ({}); its log ends with:\n{}",
            died.name, died.status, died.log_tail
        );
        ok = false;
    }
    // Stop the servers before their scratch directory goes.
    running.stop();
    drop(scratch);
    finish(&report, &common.out) && ok
}

/// Has SIGINT or SIGTERM, sent to the bench alone, end `servers` and remove `scratch`
/// before the bench ends.
fn stop_on_signals(servers: &Servers, scratch: &Scratch) {
    let stopper = servers.stopper();
    let scratch_dir = scratch.path().to_path_buf();
    let installed = signals::cleanup_on_termination(move || {
        stopper.stop();
        match std::fs::remove_dir_all(&scratch_dir) {
            // Gone already when the signal comes after the run.
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                warn!("could not remove {}: {e}", scratch_dir.display())
            }
            _ => {}
        }
    });
    if let Err(e) = installed {
        warn!("no signal handling: a signal to the bench alone leaves its servers running: {e}");
    }
}
