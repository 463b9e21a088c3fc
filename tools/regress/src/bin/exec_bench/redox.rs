//! `exec-bench` on Redox: it measures the hosted kernel's exec (9P messages, vm pages,
//! host frames), none of which the real kernel exposes; it says so and exits 2.

use std::process::ExitCode;

use clap::Parser;
use regress::tool::USAGE_ERROR;

/// Measures a cold and a warm exec in the hosted kernel. On Redox there is nothing to
/// measure it with (the kernel exposes no exec counters): the tool says so and exits 2.
#[derive(Debug, Parser)]
#[command(name = "exec-bench", version)]
struct Cli {}

pub fn main() -> ExitCode {
    let _ = Cli::parse();
    eprintln!(
        "exec-bench: measures the hosted kernel's exec and does not run on Redox; \
         exec-from-ramfs's warm-exec case reports what the real kernel does"
    );
    ExitCode::from(USAGE_ERROR)
}
