//! `exec-from-ramfs`: the case bodies live per platform: `exec_from_ramfs/hosted.rs`
//! against the hosted kernel (every target but Redox), `exec_from_ramfs/redox.rs` against
//! the real Redox kernel and `ramfs-9p --scheme NAME`. Both print the same output contract
//! through `regress::Runner`.

use std::process::ExitCode;

#[cfg(not(target_os = "redox"))]
#[path = "exec_from_ramfs/hosted.rs"]
mod target;

#[cfg(target_os = "redox")]
#[path = "exec_from_ramfs/redox.rs"]
mod target;

fn main() -> ExitCode {
    target::main()
}
