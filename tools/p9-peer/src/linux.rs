//! The server loop: parse the command line, listen, and give each connection a thread
//! with its own `p9::Server`.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::thread;

use clap::Parser;
use tracing::{debug, error, info, warn};

/// Bytes the connection's buffered reader and writer hold; a whole 64 KiB message fits.
const IO_BUFFER: usize = 128 * 1024;

/// Serve a directory over 9P2000.L with crosvm's `p9` crate.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Where to listen: `unix:PATH` or `tcp:HOST:PORT`.
    #[arg(long, value_name = "ADDR")]
    listen: ListenAddr,
    /// The directory to export.
    #[arg(long, value_name = "DIR")]
    root: PathBuf,
    /// The largest msize to agree to. The crate's own default is 65560 (64 KiB + 24);
    /// the default here is 1 MiB so that the 1 MiB benchmark cells compare like with like.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(4096..))]
    max_msize: u32,
}

/// A listening address given on the command line.
#[derive(Debug, Clone)]
enum ListenAddr {
    Unix(PathBuf),
    Tcp(String),
}

/// Why a `--listen` value was refused.
#[derive(Debug, thiserror::Error)]
#[error("listen address must be unix:PATH or tcp:HOST:PORT, not {0:?}")]
struct BadListenAddr(String);

impl FromStr for ListenAddr {
    type Err = BadListenAddr;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("unix", path)) if !path.is_empty() => Ok(ListenAddr::Unix(path.into())),
            Some(("tcp", hostport)) if hostport.contains(':') => {
                Ok(ListenAddr::Tcp(hostport.to_owned()))
            }
            _ => Err(BadListenAddr(s.to_owned())),
        }
    }
}

/// Runs the server until it is killed; returns 1 when it cannot start.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(io::stderr)
        .init();
    let args = Args::parse();
    let config = Config {
        root: args.root.clone(),
        max_msize: args.max_msize,
    };
    let result = match &args.listen {
        ListenAddr::Unix(path) => serve_unix(path, &config),
        ListenAddr::Tcp(addr) => serve_tcp(addr, &config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("p9-peer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What every connection's server is made with.
#[derive(Debug, Clone)]
struct Config {
    root: PathBuf,
    max_msize: u32,
}

fn serve_unix(path: &Path, config: &Config) -> io::Result<()> {
    // A socket left behind by an earlier run would make bind fail; anything else at that
    // path is not ours to remove.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let listener = UnixListener::bind(path)?;
    info!("listening on unix:{}", path.display());
    for stream in listener.incoming() {
        let stream = stream?;
        let reader = stream.try_clone()?;
        spawn_session(reader, stream, config.clone());
    }
    Ok(())
}

fn serve_tcp(addr: &str, config: &Config) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    info!("listening on tcp:{}", listener.local_addr()?);
    for stream in listener.incoming() {
        let stream = stream?;
        // Small replies must not wait for Nagle's algorithm.
        stream.set_nodelay(true)?;
        let reader = stream.try_clone()?;
        spawn_session(reader, stream, config.clone());
    }
    Ok(())
}

fn spawn_session<S>(reader: S, writer: S, config: Config)
where
    S: Read + Write + Send + 'static,
{
    thread::spawn(move || match run_session(reader, writer, &config) {
        Ok(()) => debug!("session ended"),
        Err(e) => warn!("session ended: {e}"),
    });
}

/// Answers one connection's messages until the client hangs up.
fn run_session<S: Read + Write>(reader: S, writer: S, config: &Config) -> io::Result<()> {
    let mut server = p9::Server::with_config(p9::Config {
        root: config.root.clone().into_boxed_path(),
        msize: config.max_msize,
        ..p9::Config::default()
    })?;
    let mut reader = BufReader::with_capacity(IO_BUFFER, reader);
    let mut writer = BufWriter::with_capacity(IO_BUFFER, writer);
    loop {
        match server.handle_message(&mut reader, &mut writer) {
            Ok(()) => {}
            // The client closed the connection between messages: a normal end.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
