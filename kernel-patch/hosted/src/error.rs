//! The errors of the hosted kernel's system calls.

use mnt::MntError;
use vm::elf::ElfError;
use vm::{FaultError, MigrateError, VmError};

use crate::pipe::PipeError;
use crate::process::Pid;

impl From<PipeError> for KernelError {
    fn from(err: PipeError) -> Self {
        match err {
            PipeError::Broken => KernelError::BrokenPipe,
            PipeError::Interrupted => KernelError::Interrupted,
        }
    }
}

/// Why an executable could not be loaded (before anything of the process changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The ELF headers are unusable.
    #[error("not an executable: {0}")]
    Elf(ElfError),
    /// The file ends inside its headers.
    #[error("executable headers truncated")]
    Truncated,
    /// The program headers are larger than the kernel reads.
    #[error("program headers too large ({0} bytes)")]
    HeadersTooLarge(u64),
    /// No loadable segment.
    #[error("no loadable segment")]
    NothingToLoad,
    /// Two segments (or a segment and the stack) overlap.
    #[error("segments overlap at {0:#x}")]
    Overlap(u64),
    /// The arguments do not fit on the stack.
    #[error("arguments too long")]
    ArgumentsTooLong,
}

/// The error of a system call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// No process has this id (or it has exited).
    #[error("no process {0}")]
    NoSuchProcess(Pid),
    /// The file descriptor is not open.
    #[error("bad file descriptor {0}")]
    BadFd(usize),
    /// A path that is not absolute, or a name that cannot be walked.
    #[error("bad path {0:?}")]
    BadPath(String),
    /// Nothing is mounted where the path leads.
    #[error("nothing mounted at or above {0:?}")]
    NotMounted(String),
    /// The mount driver failed (the server's error, a broken or hung-up mount, a flush).
    #[error("{0}")]
    Mount(#[from] MntError),
    /// vm refused (out of memory, image table full, bad layout, file error).
    #[error("{0}")]
    Vm(#[from] VmError),
    /// A memory access failed (the process would get a note).
    #[error("fault at {addr:#x}: {error}")]
    Fault {
        /// The faulting address.
        addr: u64,
        /// Why.
        error: FaultError,
    },
    /// An access to a mapped page wholly past the end of its file (SIGBUS); an access
    /// outside every mapping is a [`Fault`](Self::Fault) with a bad address instead.
    #[error("bus error at {addr:#x}: past the end of the mapped file")]
    BusError {
        /// The faulting address.
        addr: u64,
    },
    /// A mapping request the kernel refuses (EINVAL, EACCES, ENOMEM of `mmap` and its
    /// kin).
    #[error("bad mapping request: {0}")]
    BadMapping(&'static str),
    /// The write is to memory the program maps read only.
    #[error("write to read-only memory at {0:#x}")]
    ReadOnly(u64),
    /// The file could not be executed.
    #[error("exec: {0}")]
    Exec(#[from] ExecError),
    /// `wait` with no children left to wait for.
    #[error("no living children")]
    NoChildren,
    /// `wait` ran out of time.
    #[error("timed out")]
    TimedOut,
    /// A frame's page cannot move (`migrate`, `vacate`): which frame and why.
    #[error("{0}")]
    Unmovable(#[from] MigrateError),
    /// A frame of a range to vacate is held by something besides vm's pages.
    #[error("frame range in use")]
    RangeInUse,
    /// A write to a pipe whose every read end is closed (EPIPE).
    #[error("broken pipe")]
    BrokenPipe,
    /// The call needs a file with offsets (seek, pread, stat, truncate, map) and the
    /// descriptor is a pipe (ESPIPE).
    #[error("descriptor {0} is a pipe")]
    IsPipe(usize),
    /// A read or write was interrupted by a note before it transferred anything (a pipe
    /// waited; a server request is [`Mount`](Self::Mount) with `Interrupted`).
    #[error("interrupted")]
    Interrupted,
    /// The kernel's configuration cannot work.
    #[error("bad kernel configuration: {0}")]
    BadConfig(&'static str),
    /// A read or write of `len` bytes at `offset` would go past the largest file offset
    /// (Plan 9 refuses such an offset as negative). Nothing was sent to the server.
    #[error("{len} bytes at offset {offset:#x} pass the largest file offset")]
    OffsetOverflow {
        /// The offset asked for.
        offset: u64,
        /// The bytes asked for.
        len: usize,
    },
}

impl KernelError {
    /// Whether the call failed because the process was interrupted (a flushed request, an
    /// interrupted page read).
    pub fn is_interrupted(&self) -> bool {
        matches!(
            self,
            KernelError::Mount(MntError::Interrupted)
                | KernelError::Interrupted
                | KernelError::Fault {
                    error: FaultError::Io(vm::FileError::Interrupted),
                    ..
                }
                | KernelError::Vm(VmError::Io(vm::FileError::Interrupted))
        )
    }
}
