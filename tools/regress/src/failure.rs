//! Why a case failed.

use std::time::Duration;

#[cfg(not(target_os = "redox"))]
use hosted::{Kernel, KernelError, KernelViolation};

/// A case's failure, printed after its name.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Something the case checks did not hold.
    #[error("{0}")]
    Expectation(String),
    /// A system call failed that should have worked.
    #[cfg(not(target_os = "redox"))]
    #[error("{what}: {error}")]
    Kernel {
        /// What the case was doing.
        what: String,
        /// The kernel's error.
        error: KernelError,
    },
    /// The kernel's invariant checker found a broken rule.
    #[cfg(not(target_os = "redox"))]
    #[error("invariant checker: {0}")]
    Invariant(KernelViolation),
    /// Starting or waiting for a server, building the program, a thread.
    #[error("{what}: {error}")]
    Io {
        /// What the case was doing.
        what: String,
        /// The error.
        error: std::io::Error,
    },
    /// The case panicked (a bug in the tool or the kernel).
    #[error("panicked: {0}")]
    Panic(String),
    /// The case did not finish in time.
    #[error("did not finish within {0:?}")]
    TimedOut(Duration),
}

/// Fails with `Expectation` unless `holds`.
#[macro_export]
macro_rules! ensure {
    ($holds:expr, $($why:tt)+) => {
        if !$holds {
            return Err($crate::Failure::Expectation(format!($($why)+)));
        }
    };
}

/// Adds "what was being done" to a kernel or I/O error.
pub trait Context<T> {
    /// The error, with `what` in front.
    fn context(self, what: impl Into<String>) -> Result<T, Failure>;
}

#[cfg(not(target_os = "redox"))]
impl<T> Context<T> for Result<T, KernelError> {
    fn context(self, what: impl Into<String>) -> Result<T, Failure> {
        self.map_err(|error| Failure::Kernel {
            what: what.into(),
            error,
        })
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, what: impl Into<String>) -> Result<T, Failure> {
        self.map_err(|error| Failure::Io {
            what: what.into(),
            error,
        })
    }
}

/// A Redox system call's error, as the `io::Error` of its errno.
#[cfg(target_os = "redox")]
impl<T> Context<T> for Result<T, libredox::error::Error> {
    fn context(self, what: impl Into<String>) -> Result<T, Failure> {
        self.map_err(|error| Failure::Io {
            what: what.into(),
            error: std::io::Error::from_raw_os_error(error.errno()),
        })
    }
}

/// Waits for queued closes (at most `deadline`), then runs the whole-kernel checker.
#[cfg(not(target_os = "redox"))]
pub fn settle_and_check(
    kernel: &Kernel,
    deadline: Duration,
) -> Result<hosted::KernelCheck, Failure> {
    ensure!(
        kernel.wait_closes(deadline),
        "queued closes did not settle within {deadline:?} ({} pending)",
        kernel.statistics().closes_pending
    );
    kernel.check_invariants().map_err(Failure::Invariant)
}
