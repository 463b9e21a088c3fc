//! One log line per message, like Plan 9's chatty9p (`--trace`).

use ninep::{Fcall, Msg};

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
pub(super) fn log_message(session: u64, dir: Direction, fc: &Fcall) {
    let arrow = match dir {
        Direction::In => "<-",
        Direction::Out => "->",
    };
    let name = fc.msg.name();
    let tag = fc.tag;
    match &fc.msg {
        Msg::Rread { data } | Msg::Rreaddir { data } => {
            tracing::info!("{arrow}{session} tag {tag} {name} count {}", data.len())
        }
        Msg::Twrite { fid, offset, data } => tracing::info!(
            "{arrow}{session} tag {tag} {name} fid {fid} offset {offset} count {}",
            data.len()
        ),
        m => tracing::info!("{arrow}{session} tag {tag} {m:?}"),
    }
}
