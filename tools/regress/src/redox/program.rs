//! The program the Redox cases run from the scheme: this tool's own executable (a static
//! Redox binary as the recipe builds it, the one program known to be there), started
//! with [`AS_PROGRAM`] so that it either exits at once or holds until the tool lets it go.
//!
//! It runs from an fd of the scheme's file (`openat(root, "prog")`), not from a path: the
//! scheme is in no namespace (the tool holds its root), so fork and relibc's `fexecve` are
//! the way. The fd is close-on-exec, so once exec has loaded the program the process holds
//! no handle of ramfs-9p; only the kernel's own hold on the binary (an image-cache mapping)
//! can keep the daemon then.

use std::ffi::{c_char, c_int, CString};
use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::ensure;
use crate::failure::Failure;

/// The first argument that makes this executable the test program instead of the tool.
pub const AS_PROGRAM: &str = "--as-program";

/// How often a wait looks at the child.
const POLL: Duration = Duration::from_millis(10);

extern "C" {
    // relibc's fexecve (unistd); the libc crate does not declare it for Redox.
    fn fexecve(fd: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int;
}

/// What the program does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exits 0 at once.
    Exit,
    /// Reads standard input to its end, then exits 0: it runs until the tool lets go.
    Hold,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Mode::Exit => "exit",
            Mode::Hold => "hold",
        }
    }
}

/// When this executable was started as the test program, does what it was asked and
/// gives the exit status; `None` when it is the tool.
pub fn run_as_program_if_asked() -> Option<ExitCode> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(AS_PROGRAM) {
        return None;
    }
    Some(match args.next().as_deref() {
        Some("exit") => ExitCode::SUCCESS,
        Some("hold") => {
            let mut sink = Vec::new();
            match std::io::stdin().read_to_end(&mut sink) {
                Ok(_) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        _ => ExitCode::from(2),
    })
}

/// A process running the program, and for [`Mode::Hold`] the pipe that holds it.
pub struct Running {
    pid: libc::pid_t,
    hold: Option<c_int>,
    reaped: bool,
}

fn os_error(what: &str) -> Failure {
    Failure::Io {
        what: what.to_string(),
        error: std::io::Error::last_os_error(),
    }
}

impl Running {
    /// Forks and executes the open file `fd` (close-on-exec) in `mode`.
    pub fn start(fd: usize, mode: Mode) -> Result<Running, Failure> {
        // Everything the child needs is made before the fork: it only calls dup2,
        // fexecve and _exit.
        let strings = ["prog", AS_PROGRAM, mode.arg()].map(|s| CString::new(s).ok());
        let [Some(prog), Some(flag), Some(arg)] = strings else {
            return Err(Failure::Expectation("an argument has a NUL".to_string()));
        };
        let argv = [prog.as_ptr(), flag.as_ptr(), arg.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null::<c_char>()];
        let mut fds: [c_int; 2] = [0; 2];
        if mode == Mode::Hold {
            // SAFETY: `fds` has room for the two descriptors.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
                return Err(os_error("make the hold pipe"));
            }
        }
        let fd = c_int::try_from(fd)
            .map_err(|_| Failure::Expectation(format!("fd {fd} is out of range")))?;
        // SAFETY: the child runs only async-signal-safe calls on memory made before the
        // fork (argv, envp), then replaces itself or exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(os_error("fork"));
        }
        if pid == 0 {
            // SAFETY: as above; fd 0 becomes the hold pipe's read end (dup2 clears its
            // close-on-exec), and 127 reports a failed exec as a shell would.
            unsafe {
                if mode == Mode::Hold && libc::dup2(fds[0], 0) < 0 {
                    libc::_exit(126);
                }
                fexecve(fd, argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
        }
        let hold = (mode == Mode::Hold).then(|| {
            // SAFETY: our copy of the read end; the child has its own.
            unsafe { libc::close(fds[0]) };
            fds[1]
        });
        Ok(Running {
            pid,
            hold,
            reaped: false,
        })
    }

    /// The process id.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Lets a [`Mode::Hold`] program go: it sees the end of its input and exits.
    pub fn release(&mut self) {
        if let Some(fd) = self.hold.take() {
            // SAFETY: our write end of the hold pipe, closed once.
            unsafe { libc::close(fd) };
        }
    }

    /// Whether it still runs (reaping it if not).
    pub fn running(&mut self) -> Result<bool, Failure> {
        if self.reaped {
            return Ok(false);
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child, writing into `status`.
        let got = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        if got < 0 {
            return Err(os_error("waitpid"));
        }
        if got == 0 {
            return Ok(true);
        }
        self.reaped = true;
        Ok(false)
    }

    /// Fails unless it exits with status 0 within `deadline`.
    pub fn expect_exit_zero(&mut self, deadline: Duration) -> Result<(), Failure> {
        ensure!(!self.reaped, "pid {} was waited for already", self.pid);
        let started = Instant::now();
        loop {
            let mut status = 0;
            // SAFETY: as in `running`.
            let got = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if got < 0 {
                return Err(os_error("waitpid"));
            }
            if got > 0 {
                self.reaped = true;
                ensure!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "the program (pid {}) ended with wait status {status:#x}, not exit 0 \
                     (127: fexecve of the scheme's file failed)",
                    self.pid
                );
                return Ok(());
            }
            ensure!(
                started.elapsed() < deadline,
                "the program (pid {}) still runs after {deadline:?}",
                self.pid
            );
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.release();
        if !self.reaped {
            // SAFETY: our own child, killed and reaped so that it holds nothing of ramfs-9p.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                let mut status = 0;
                libc::waitpid(self.pid, &mut status, 0);
            }
        }
    }
}
