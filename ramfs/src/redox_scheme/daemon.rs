//! The Redox daemon: make the scheme reachable, answer its requests one at a time, and
//! return once the exit rule holds.
//!
//! Two ways to become reachable (NOTES-redox-scheme.md §3):
//! - started by init with `type = { scheme = "NAME" }` (or by a tool acting as init),
//!   the environment's `INIT_NOTIFY` names a pipe; the daemon sends its root capability
//!   through it and the parent registers it (or keeps it, and closes it to unmount);
//! - otherwise it registers `NAME` in its own namespace.

use std::sync::Arc;

use ::redox_scheme::scheme::{register_sync_scheme, SchemeState, SchemeSync};
use ::redox_scheme::{RequestKind, Response, SignalBehavior, Socket};
use syscall::error::EOPNOTSUPP;
use syscall::flag::CallFlags;
use tracing::{debug, info, warn};

use super::handler::SchemeHandler;
use crate::fs::Fs;

/// The environment variable init passes its notification pipe in.
pub const INIT_NOTIFY: &str = "INIT_NOTIFY";

/// How to serve.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The scheme's name: registered under it, and the `/scheme/NAME` of `fpath`.
    pub name: String,
    /// Drop into the null namespace once reachable. Right when the scheme is all the
    /// process serves; wrong when it also serves 9P on a socket it has yet to accept on.
    pub enter_null_namespace: bool,
}

/// Why serving stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The root capability was closed and no handle or mapped page is left.
    AllClosed,
    /// The kernel closed the scheme socket.
    SocketClosed,
}

/// What went wrong while serving.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create the scheme socket: {0}")]
    Socket(syscall::Error),
    #[error("cannot make the root capability: {0}")]
    Root(syscall::Error),
    #[error("cannot register scheme {name}: {cause}")]
    Register { name: String, cause: syscall::Error },
    #[error("cannot send the root capability to the parent: {0}")]
    Notify(syscall::Error),
    #[error("cannot enter the null namespace: {0}")]
    NullNamespace(syscall::Error),
    #[error("reading a request: {0}")]
    Read(syscall::Error),
    #[error("writing a response: {0}")]
    Write(syscall::Error),
}

/// The parent's notification pipe, if `INIT_NOTIFY` names a pipe we hold. A process
/// started from a login shell may inherit an `INIT_NOTIFY` meant for the shell's own
/// ancestors, naming a descriptor that is closed or reused: then we register ourselves.
fn notify_pipe() -> Option<usize> {
    let value = std::env::var(INIT_NOTIFY).ok()?;
    let Ok(fd) = value.parse::<usize>() else {
        warn!("{INIT_NOTIFY}={value:?} is not a descriptor number; ignored");
        return None;
    };
    let mut path = [0u8; 32];
    let is_pipe = libredox::call::fpath(fd, &mut path)
        .is_ok_and(|n| path[..n.min(path.len())].starts_with(b"/scheme/pipe"));
    if !is_pipe {
        warn!("{INIT_NOTIFY}={fd} is not a pipe we hold; ignored");
        return None;
    }
    Some(fd)
}

/// Hands the root capability to the process that started us, through its pipe `fd`.
fn notify_parent(
    socket: &Socket,
    handler: &mut SchemeHandler,
    fd: usize,
) -> Result<(), DaemonError> {
    let root = handler.scheme_root().map_err(DaemonError::Root)?;
    let cap_fd = socket
        .create_this_scheme_fd(0, root, 0, 0)
        .map_err(DaemonError::Root)?;
    // CallFlags::FD without FD_CLONE moves the fd: the parent owns the capability now.
    libredox::call::call_wo(fd, &cap_fd.to_ne_bytes(), CallFlags::FD, &[])
        .map_err(|e| DaemonError::Notify(e.into()))?;
    // The pipe has done its one job; a failed close changes nothing for us.
    let _ = libredox::call::close(fd);
    Ok(())
}

/// Serves `fs` as a Redox scheme until the exit rule holds or the socket closes.
pub fn serve(fs: Arc<Fs>, options: &DaemonOptions) -> Result<Ended, DaemonError> {
    let socket = Socket::create().map_err(DaemonError::Socket)?;
    let mut handler = SchemeHandler::new(fs, &options.name);
    match notify_pipe() {
        Some(fd) => notify_parent(&socket, &mut handler, fd)?,
        None => register_sync_scheme(&socket, &options.name, &mut handler).map_err(|cause| {
            DaemonError::Register {
                name: options.name.clone(),
                cause,
            }
        })?,
    }
    info!(scheme = %options.name, "serving");
    if options.enter_null_namespace {
        libredox::call::setrens(0, 0).map_err(|e| DaemonError::NullNamespace(e.into()))?;
    }

    let mut state = SchemeState::new();
    loop {
        let Some(request) = socket
            .next_request(SignalBehavior::Restart)
            .map_err(DaemonError::Read)?
        else {
            return Ok(Ended::SocketClosed);
        };
        let response = match request.kind() {
            RequestKind::Call(call) => Some(call.handle_sync(&mut handler, &mut state)),
            RequestKind::OnClose { id } => {
                state.on_close(id);
                handler.on_close(id);
                None
            }
            RequestKind::OnDetach { id, pid } => {
                // POSIX record locks of that process on that file go with it.
                if let Ok(inode) = handler.inode(id) {
                    state.on_detach(id, inode, pid);
                }
                None
            }
            RequestKind::SendFd(req) => Some(Response::err(EOPNOTSUPP, req)),
            RequestKind::RecvFd(req) => Some(Response::err(EOPNOTSUPP, req)),
            // Every call is answered before the next is read: nothing is left to cancel.
            RequestKind::Cancellation(_) => None,
            RequestKind::MsyncMsg | RequestKind::MunmapMsg | RequestKind::MmapMsg => None,
        };
        if let Some(response) = response {
            socket
                .write_response(response, SignalBehavior::Restart)
                .map_err(DaemonError::Write)?;
        }
        if handler.may_exit() {
            debug!("root closed, no handle or mapped page left");
            return Ok(Ended::AllClosed);
        }
    }
}
