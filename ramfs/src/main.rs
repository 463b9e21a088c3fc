//! `ramfs`: serve an in-memory file tree over 9P2000 / 9P2000.L, or as a Redox scheme.
//!
//! Exit status: 0 after a normal end (the single client went away, SIGINT/SIGTERM, or
//! on Redox the scheme's root was closed with nothing left open or mapped), 2 for a
//! usage error (including `--scheme` anywhere but Redox), 3 for a TCP address other
//! machines can reach without `--allow-remote` (refused before anything is bound), 1
//! for a runtime failure such as an address that cannot be bound.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgGroup, CommandFactory, Parser};

use ramfs::fs::{Clock, Config, Fs, UsersFile, USER_NAME_MAX};
use ramfs::ninep_server::{AttachRule, ConnectionEnd, Server, ServerConfig};
use ramfs::transport::{self, Connection, ListenAddr, Listener};

/// A file's pages are 4 KiB allocations aligned to 4 KiB. glibc's malloc pads each to
/// 8 KiB (and grows a thread's arena a page at a time, an `mprotect` each); mimalloc
/// carves them from aligned pages of its own, so the process holds about what the
/// tree's memory account says (`tests/memory_footprint.rs`).
#[cfg(target_os = "linux")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status of a refused non-loopback TCP listen (see [`RunError::Remote`]).
const EXIT_REMOTE_REFUSED: u8 = 3;

/// Default memory limit: 768 MiB.
const DEFAULT_MAX_MEMORY: u64 = 768 << 20;

/// An in-memory 9P2000 and 9P2000.L file server.
///
/// Serves one tree, shared by every client, until SIGINT or SIGTERM; with --stdio or
/// --single it serves one client and exits as soon as that client is gone. On Redox,
/// --scheme serves the tree as a scheme and exits once its root is closed and nothing
/// is open or mapped.
#[derive(Debug, Parser)]
#[command(name = "ramfs", version)]
#[command(
    after_help = "Exit status: 0 after a normal end, 1 for a runtime failure, 2 for a \
usage error, 3 for a TCP address other machines can reach without --allow-remote."
)]
#[command(group(ArgGroup::new("transport").required(true).args(["stdio", "listen", "scheme"])))]
struct Cli {
    /// Serve one client on standard input and output.
    #[arg(long)]
    stdio: bool,

    /// Listen on ADDR: unix:PATH or tcp:HOST:PORT (e.g. tcp:127.0.0.1:5640; port 0
    /// picks one and the log says which).
    #[arg(long, value_name = "ADDR")]
    listen: Option<ListenAddr>,

    /// Redox only: register as the scheme NAME (or, started by init with INIT_NOTIFY,
    /// hand the scheme to init) and serve it.
    #[arg(long, value_name = "NAME", value_parser = parse_scheme_name)]
    scheme: Option<String>,

    /// With --listen: serve exactly one connection, then exit.
    #[arg(long, requires = "listen", conflicts_with_all = ["stdio", "scheme"])]
    single: bool,

    /// Allow --listen tcp: on an address other machines can reach (not 127.0.0.0/8 or
    /// ::1). 9P here has no authentication: whoever reaches the port can attach as any
    /// user. Without it such an address is refused with exit status 3.
    #[arg(long, requires = "listen", conflicts_with_all = ["stdio", "scheme"])]
    allow_remote: bool,

    /// Believe the user name or number every unix-socket client attaches as. Without
    /// it a client that is not root may attach only as its own uid (from the socket's
    /// peer credentials): in 9P2000 as its uid in decimal or the name the server has for
    /// that number. --stdio and TCP clients are always believed.
    #[arg(long, requires = "listen", conflicts_with_all = ["stdio", "scheme"])]
    trust_attach_names: bool,

    /// Memory limit for file data, names, symlink targets and xattrs, in bytes (a K, M
    /// or G suffix multiplies by 1024, 1024², 1024³). A write past it fails and changes
    /// nothing. [default: 768M]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    max_memory: Option<u64>,

    /// Most fids one connection may hold.
    #[arg(long, value_name = "N", default_value_t = 16384)]
    max_fids: usize,

    /// Threads that answer one connection's run of pipelined reads and writes at once
    /// (1: all on the connection's own thread) [default: half the CPUs, 1 to 4].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    data_threads: Option<u16>,

    /// Longest a connection spins on its socket for the next request, in microseconds,
    /// before it sleeps in read (0: never spin). Spinning saves the wake-up of a halted
    /// CPU when a client sends one request at a time; each connection measures whether
    /// it does and sleeps at once while sleeping is faster (a busy machine). A read that
    /// finds the socket empty spins at most one window, the window shrinks when the
    /// client pauses longer, and at most one connection fewer than the CPUs spins at
    /// once. At most 10000 (10 ms).
    #[arg(long, value_name = "MICROSECONDS",
          default_value_t = ramfs::ninep_server::DEFAULT_POLL.as_micros() as u64,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    poll_us: u64,

    /// Owner and group of the root directory (mode 0777, so any user can create).
    #[arg(long, value_name = "NAME", default_value = "ramfs", value_parser = parse_owner)]
    owner: String,

    /// Users, their numbers and their groups, in Plan 9's /adm/users form: lines of
    /// id:name:leader:members. Without it a caller is in no group but its own.
    #[arg(long, value_name = "FILE")]
    users: Option<std::path::PathBuf>,

    /// Log one line per 9P message to standard error (like Plan 9's chatty9p).
    #[arg(long)]
    trace: bool,

    /// Use this fixed time (seconds since 1970) for every atime, mtime and ctime
    /// instead of the clock, for reproducible transcripts.
    #[arg(long, value_name = "SECS")]
    epoch: Option<u64>,
}

/// Parses a byte count with an optional K/M/G (binary) suffix.
fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, shift) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 10),
        Some((i, 'm' | 'M')) => (&s[..i], 20),
        Some((i, 'g' | 'G')) => (&s[..i], 30),
        _ => (s, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a byte count"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Checks a scheme name: what follows `/scheme/` in a path, so one non-empty component.
fn parse_scheme_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains(['/', ':', '\0']) {
        return Err(format!("{s:?} is not a scheme name (one path component)"));
    }
    Ok(s.to_owned())
}

/// A user name no longer than clients may use (so every stat record stays small).
fn parse_owner(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > USER_NAME_MAX {
        return Err(format!("a user name has 1 to {} bytes", USER_NAME_MAX));
    }
    Ok(s.to_owned())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.scheme.is_some() && !cfg!(target_os = "redox") {
        // A usage error (status 2), reported before anything starts.
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--scheme serves a Redox scheme and works only on Redox; \
                 use --listen or --stdio here",
            )
            .exit();
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(e.exit_status())
        }
    }
}

/// Why ramfs stopped with an error.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// A TCP address other machines can reach, without `--allow-remote`.
    #[error(
        "refusing to listen on {0}: other machines can reach it, and 9P has no \
         authentication here (anyone who connects can attach as any user); listen on \
         127.0.0.1 or a unix socket, or pass --allow-remote"
    )]
    Remote(ListenAddr),
    /// Anything that went wrong while serving or setting up.
    #[error("{0}")]
    Failed(String),
}

impl RunError {
    fn exit_status(&self) -> u8 {
        match self {
            RunError::Remote(_) => EXIT_REMOTE_REFUSED,
            RunError::Failed(_) => 1,
        }
    }
}

impl From<String> for RunError {
    fn from(s: String) -> RunError {
        RunError::Failed(s)
    }
}

/// Refuses a listen address other machines can reach unless `allow_remote`; with it,
/// warns that nothing authenticates the clients.
fn check_exposure(addr: &ListenAddr, allow_remote: bool) -> Result<(), RunError> {
    if addr.is_local() {
        return Ok(());
    }
    if !allow_remote {
        return Err(RunError::Remote(addr.clone()));
    }
    tracing::warn!(
        "listening on {addr}, which other machines can reach: 9P has no authentication \
         here, so anyone who connects can attach as any user and read or change every file"
    );
    Ok(())
}

/// Serves one connection on this thread; the process's status says how it ended.
fn serve_one(server: &Server, conn: Connection, trust_attach_names: bool) -> Result<(), String> {
    match serve_conn(server, conn, trust_attach_names) {
        ConnectionEnd::Eof | ConnectionEnd::Framing(_) => Ok(()),
        ConnectionEnd::Io(e) => Err(format!("connection failed: {e}")),
    }
}

/// Serves a connection with the attach rule its peer gets.
fn serve_conn(server: &Server, conn: Connection, trust_attach_names: bool) -> ConnectionEnd {
    let rule = AttachRule::for_peer(conn.cred, trust_attach_names);
    let reader = server.polling(conn.reader);
    let writer = server.polling_writer(conn.writer);
    server.serve_polled(reader, writer, &conn.peer, rule)
}

/// Serves the tree as the Redox scheme `name` until the exit rule holds.
#[cfg(target_os = "redox")]
fn serve_scheme(fs: Arc<Fs>, name: String) -> Result<(), String> {
    use ramfs::redox_scheme::{serve, DaemonOptions, Ended};
    let options = DaemonOptions {
        name,
        // The scheme is all this process serves: nothing else is ever opened.
        enter_null_namespace: true,
    };
    match serve(fs, &options).map_err(|e| e.to_string())? {
        Ended::AllClosed => tracing::info!("scheme root closed, nothing open or mapped"),
        Ended::SocketClosed => tracing::info!("the kernel closed the scheme socket"),
    }
    Ok(())
}

/// Reads and checks a users file.
fn read_users(path: &std::path::Path) -> Result<UsersFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    UsersFile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn run(cli: Cli) -> Result<(), RunError> {
    if let Some(addr) = &cli.listen {
        check_exposure(addr, cli.allow_remote)?;
    }
    let users = match &cli.users {
        Some(path) => read_users(path)?,
        None => UsersFile::default(),
    };
    let fs = Arc::new(Fs::with_users(
        Config {
            memory_limit: cli.max_memory.unwrap_or(DEFAULT_MAX_MEMORY),
            owner: cli.owner,
            clock: cli.epoch.map_or(Clock::System, Clock::Fixed),
        },
        &users,
    ));
    // Off Redox `main` has refused --scheme already.
    #[cfg(target_os = "redox")]
    if let Some(name) = cli.scheme {
        return Ok(serve_scheme(fs, name)?);
    }
    let server = Arc::new(Server::new(
        fs,
        ServerConfig {
            max_fids: cli.max_fids,
            trace: cli.trace,
            data_threads: cli
                .data_threads
                .map_or(ServerConfig::default().data_threads, usize::from),
            poll: Duration::from_micros(cli.poll_us),
        },
    ));

    let Some(addr) = cli.listen else {
        ramfs::signals::exit_on_termination(|| {})
            .map_err(|e| format!("cannot handle signals: {e}"))?;
        return Ok(serve_one(&server, transport::stdio(), false)?);
    };

    let listener = Listener::bind(&addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    if cli.trust_attach_names {
        tracing::warn!("--trust-attach-names: every client may attach as any user it names");
    }
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let socket_file = listener.cleanup_path();
    ramfs::signals::exit_on_termination(move || {
        if let Some(p) = socket_file {
            let _ = std::fs::remove_file(p);
        }
    })
    .map_err(|e| format!("cannot handle signals: {e}"))?;
    tracing::info!("listening on {bound}");

    if cli.single {
        let conn = listener
            .accept()
            .map_err(|e| format!("accept on {bound}: {e}"))?;
        // Nobody else is served: let the address go now.
        drop(listener);
        return Ok(serve_one(&server, conn, cli.trust_attach_names)?);
    }
    loop {
        let conn = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, an aborted handshake: the listener itself is
                // fine, so keep serving the others.
                tracing::warn!("accept on {bound}: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        let server = Arc::clone(&server);
        let trust = cli.trust_attach_names;
        let spawned = std::thread::Builder::new()
            .name(format!("conn {}", conn.peer))
            .spawn(move || {
                serve_conn(&server, conn, trust);
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a connection thread: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn users_files_are_read_and_checked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("users");
        let e = read_users(&path).expect_err("missing file");
        assert!(e.starts_with("cannot read"), "{e}");
        std::fs::write(&path, "1001:alice::\n1002:staff:alice:bob\n").expect("write");
        let e = read_users(&path).expect_err("unknown member");
        assert!(e.ends_with("line 2: \"bob\" is not a listed user"), "{e}");
        std::fs::write(&path, "1001:alice::\n1002:staff::alice\n").expect("write");
        assert_eq!(read_users(&path).expect("good file").entries.len(), 2);
        let c = Cli::try_parse_from(["ramfs", "--stdio", "--users", "/x"]).expect("valid");
        assert_eq!(c.users.as_deref(), Some(std::path::Path::new("/x")));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("768M"), Ok(DEFAULT_MAX_MEMORY));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("x").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn remote_addresses_need_allow_remote() {
        let remote: ListenAddr = "tcp:0.0.0.0:5640".parse().unwrap();
        let err = check_exposure(&remote, false).unwrap_err();
        assert!(matches!(err, RunError::Remote(_)));
        assert_eq!(err.exit_status(), EXIT_REMOTE_REFUSED);
        assert!(err.to_string().contains("--allow-remote"), "{err}");
        assert!(check_exposure(&remote, true).is_ok());
        for local in ["tcp:127.0.0.1:5640", "tcp:[::1]:0", "unix:/tmp/r.sock"] {
            assert!(
                check_exposure(&local.parse().unwrap(), false).is_ok(),
                "{local}"
            );
        }
        assert_eq!(RunError::Failed("x".into()).exit_status(), 1);
        // Both flags go with --listen only.
        assert!(Cli::try_parse_from(["ramfs", "--stdio", "--allow-remote"]).is_err());
        assert!(Cli::try_parse_from(["ramfs", "--stdio", "--trust-attach-names"]).is_err());
        let c = Cli::try_parse_from([
            "ramfs",
            "--listen",
            "tcp:0.0.0.0:0",
            "--allow-remote",
            "--trust-attach-names",
        ])
        .expect("valid");
        assert!(c.allow_remote && c.trust_attach_names);
    }

    #[test]
    fn transport_is_required_and_exclusive() {
        assert!(Cli::try_parse_from(["ramfs"]).is_err());
        assert!(Cli::try_parse_from(["ramfs", "--stdio", "--listen", "unix:/x"]).is_err());
        assert!(Cli::try_parse_from(["ramfs", "--stdio", "--single"]).is_err());
        let c = Cli::try_parse_from(["ramfs", "--listen", "tcp:127.0.0.1:0", "--single"])
            .expect("valid");
        assert!(c.single);
        assert!(Cli::try_parse_from(["ramfs", "--listen", "ftp:x"]).is_err());
        let c = Cli::try_parse_from(["ramfs", "--scheme", "ram9"]).expect("valid");
        assert_eq!(c.scheme.as_deref(), Some("ram9"));
        assert!(Cli::try_parse_from(["ramfs", "--scheme", "a", "--stdio"]).is_err());
        assert!(Cli::try_parse_from(["ramfs", "--scheme", "a", "--single"]).is_err());
        assert!(Cli::try_parse_from(["ramfs", "--scheme", "a/b"]).is_err());
        assert!(Cli::try_parse_from(["ramfs", "--scheme", ""]).is_err());
        let long = "o".repeat(USER_NAME_MAX + 1);
        assert!(Cli::try_parse_from(["ramfs", "--stdio", "--owner", &long]).is_err());
        assert!(Cli::try_parse_from(["ramfs", "--stdio", "--owner", ""]).is_err());
        let c = Cli::try_parse_from(["ramfs", "--stdio", "--owner", &long[1..]]).expect("valid");
        assert_eq!(c.owner.len(), USER_NAME_MAX);
    }
}
