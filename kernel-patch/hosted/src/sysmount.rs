//! Mounts (9front's `sysmount`/`sysunmount` in `port/sysfile.c`): a 9P session attached
//! on a path of a process's namespace, and taken out again.

use std::sync::Arc;

use mnt::host::StdPlatform;
use mnt::{AttachArgs, Mount, MountOptions, Transport};

use crate::error::KernelError;
use crate::kchan::KChan;
use crate::kernel::Kernel;
use crate::namespace::{clean_path, key_of, MountFlags, MountInfo, MountPoint};
use crate::process::Pid;

/// How to start a session with a server and what to attach to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSpec {
    /// msize and dialect to ask for.
    pub options: MountOptions,
    /// User and tree.
    pub attach: AttachArgs,
}

impl Default for MountSpec {
    fn default() -> Self {
        Self {
            options: MountOptions::default(),
            attach: AttachArgs {
                uname: "hosted".to_string(),
                aname: String::new(),
                n_uname: 1000,
            },
        }
    }
}

impl Kernel {
    /// Mounts the 9P server at the other end of `transport` on `path` in `pid`'s namespace
    /// (replacing what was there), with default session parameters.
    pub fn mount(
        &self,
        pid: Pid,
        transport: Box<dyn Transport>,
        path: &str,
        flags: MountFlags,
    ) -> Result<MountInfo, KernelError> {
        self.mount_with(pid, transport, path, flags, &MountSpec::default())
    }

    /// Mounts with the given session parameters. On failure the transport is closed.
    pub fn mount_with(
        &self,
        pid: Pid,
        transport: Box<dyn Transport>,
        path: &str,
        flags: MountFlags,
        spec: &MountSpec,
    ) -> Result<MountInfo, KernelError> {
        let proc = self.proc(pid)?;
        let namespace = proc.namespace()?;
        let key = key_of(&clean_path(path)?);
        let intr = proc.notes.begin_call();
        let mount = Mount::version(transport, StdPlatform::shared(), &spec.options, &intr)?;
        let root = mount.attach(&spec.attach, &intr)?;
        let point = Arc::new(MountPoint {
            mount: mount.clone(),
            root: KChan::new(root, &self.inner.services),
            flags,
        });
        let replaced = namespace.install(key.clone(), point);
        drop(replaced);
        log::debug!("hosted: pid {pid} mounted {} on {key}", mount.id());
        Ok(MountInfo {
            path: key,
            mount,
            flags,
        })
    }

    /// Takes the mount at `path` out of `pid`'s namespace. The server stays connected while
    /// another namespace holds the mount or any channel of it lives (an open file, a
    /// running program's image); after that its root channel's clunk is queued and, with
    /// the last channel, the connection closes.
    pub fn unmount(&self, pid: Pid, path: &str) -> Result<(), KernelError> {
        let proc = self.proc(pid)?;
        let key = key_of(&clean_path(path)?);
        let removed = proc
            .namespace()?
            .remove(&key)
            .ok_or(KernelError::NotMounted(key))?;
        drop(removed);
        // A mapped file whose write-back failed holds a channel of its mount: written back
        // now, it lets the channel go, and the mount can close once nothing else holds it.
        if let Err(err) = self.vm().write_back_dirty() {
            log::debug!("hosted: write-back at unmount failed: {err}");
        }
        self.safe_point();
        Ok(())
    }

    /// The mounts of `pid`'s namespace.
    pub fn mounts(&self, pid: Pid) -> Result<Vec<MountInfo>, KernelError> {
        Ok(self.proc(pid)?.namespace()?.list())
    }
}
