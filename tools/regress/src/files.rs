//! Files the tools make through the kernel's system calls.

use hosted::mnt::OpenMode;
use hosted::{Kernel, Pid};

use crate::ensure;
use crate::failure::{Context, Failure};

/// Creates the file `path` (mode 0755) in `pid`'s namespace and writes `bytes` to it,
/// however many writes that takes.
pub fn write_new_file(kernel: &Kernel, pid: Pid, path: &str, bytes: &[u8]) -> Result<(), Failure> {
    let fd = kernel
        .create(pid, path, 0o755, OpenMode::WRITE)
        .context(format!("create {path}"))?;
    let mut done = 0;
    while done < bytes.len() {
        let n = kernel
            .write(pid, fd, &bytes[done..])
            .context(format!("write {path}"))?;
        ensure!(n > 0, "ramfs took no bytes of {path} at {done}");
        done += n;
    }
    kernel.close(pid, fd).context(format!("close {path}"))
}
