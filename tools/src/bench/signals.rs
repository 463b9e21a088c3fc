//! Ending `compare` on SIGINT or SIGTERM: its servers and scratch directory first, then
//! the bench, by the same signal.
//!
//! Without this, a signal sent to the bench alone (not to its process group, as Ctrl-C
//! is) would end the bench and leave its servers running. On Redox (no signal-hook port)
//! the default actions apply.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set the moment a terminating signal arrives, before its cleanup starts.
static TERMINATING: AtomicBool = AtomicBool::new(false);

/// Called by `main` before it returns: when a signal's cleanup is under way, waits for it
/// to end the process by that signal, so the failures the cleanup itself causes (the
/// servers it stops no longer answer) never end the bench first with an ordinary failure
/// status.
pub fn let_termination_finish() {
    while TERMINATING.load(Ordering::Acquire) {
        std::thread::park();
    }
}

/// Runs `cleanup` on a thread of its own when SIGINT or SIGTERM arrives, then ends the
/// process as that signal's default action would.
#[cfg(all(unix, not(target_os = "redox")))]
pub fn cleanup_on_termination<F: FnOnce() + Send + 'static>(cleanup: F) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                TERMINATING.store(true, Ordering::Release);
                tracing::info!("signal {signal}: stopping the servers");
                cleanup();
                if let Err(e) = signal_hook::low_level::emulate_default_handler(signal) {
                    tracing::warn!("cannot end by signal {signal}: {e}");
                }
                // Not reached when the default action ended the process.
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// Without signal handling the default actions end the process.
#[cfg(not(all(unix, not(target_os = "redox"))))]
pub fn cleanup_on_termination<F: FnOnce() + Send + 'static>(cleanup: F) -> std::io::Result<()> {
    drop(cleanup);
    Ok(())
}
