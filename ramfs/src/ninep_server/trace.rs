//! One log line per message, like Plan 9's chatty9p (`--trace`).

use ninep::Msg;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// A request from the client.
    In,
    /// A reply to it.
    Out,
}

/// Logs a message with its session, tag and contents; bulk data is shown by its
/// length only.
pub(super) fn log_message(session: u64, dir: Direction, tag: u16, msg: &Msg) {
    let arrow = match dir {
        Direction::In => "<-",
        Direction::Out => "->",
    };
    let name = msg.name();
    match msg {
        Msg::Rread { data } | Msg::Rreaddir { data } => {
            tracing::info!("{arrow}{session} tag {tag} {name} count {}", data.len())
        }
        Msg::Twrite { fid, offset, data } => log_write(session, tag, *fid, *offset, data.len()),
        m => tracing::info!("{arrow}{session} tag {tag} {m:?}"),
    }
}

/// Logs a Twrite received, as [`log_message`] would.
pub(super) fn log_write(session: u64, tag: u16, fid: u32, offset: u64, count: usize) {
    tracing::info!("<-{session} tag {tag} Twrite fid {fid} offset {offset} count {count}");
}

/// Logs an Rread built in place, as [`log_message`] would.
pub(super) fn log_rread(session: u64, tag: u16, count: u32) {
    tracing::info!("->{session} tag {tag} Rread count {count}");
}
