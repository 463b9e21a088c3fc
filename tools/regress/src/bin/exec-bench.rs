//! `exec-bench`: the measurements live per platform: `exec_bench/hosted.rs` against the
//! hosted kernel (every target but Redox), `exec_bench/redox.rs` on Redox, where the tool
//! only says that it measures the hosted kernel.

use std::process::ExitCode;

#[cfg(not(target_os = "redox"))]
#[path = "exec_bench/hosted.rs"]
mod target;

#[cfg(target_os = "redox")]
#[path = "exec_bench/redox.rs"]
mod target;

fn main() -> ExitCode {
    target::main()
}
