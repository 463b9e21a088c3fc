//! Ending the process on SIGINT or SIGTERM with exit status 0.
//!
//! OS-specific, like the unix peer credentials of `transport`. On Redox (no signal-hook
//! port) and on non-Unix systems the default signal actions apply.

/// Runs `cleanup` and exits with status 0 when SIGINT or SIGTERM arrives.
#[cfg(all(unix, not(target_os = "redox")))]
pub fn exit_on_termination<F: FnOnce() + Send + 'static>(cleanup: F) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::info!("signal {sig}: exiting");
                cleanup();
                std::process::exit(0);
            }
        })?;
    Ok(())
}

/// Without signal handling the default actions end the process.
#[cfg(not(all(unix, not(target_os = "redox"))))]
pub fn exit_on_termination<F: FnOnce() + Send + 'static>(cleanup: F) -> std::io::Result<()> {
    drop(cleanup);
    Ok(())
}
