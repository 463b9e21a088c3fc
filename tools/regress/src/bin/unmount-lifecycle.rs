//! `unmount-lifecycle`: the case bodies live per platform: `unmount_lifecycle/hosted.rs`
//! against the hosted kernel (every target but Redox), `unmount_lifecycle/redox.rs`
//! against the real Redox kernel and `ramfs-9p --scheme NAME` (the cases that can exist
//! there; the tool names the others and why). Both print the same output contract through
//! `regress::Runner`.

use std::process::ExitCode;

#[cfg(not(target_os = "redox"))]
#[path = "unmount_lifecycle/hosted.rs"]
mod target;

#[cfg(target_os = "redox")]
#[path = "unmount_lifecycle/redox.rs"]
mod target;

fn main() -> ExitCode {
    target::main()
}
