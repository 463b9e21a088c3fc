//! The server loop as one function of bytes, for the `cargo fuzz` target and for
//! replaying its corpus in tests.

use std::sync::Arc;

use ninep::{encode, Fcall, Msg, NOFID, NOTAG};

use crate::fs::{Clock, Config, Fs};
use crate::ninep_server::{Server, ServerConfig};

/// Requests that open a session, so the fuzzer starts inside one: 0 none, 1 a 9P2000
/// Tversion and Tattach, 2 the same in 9P2000.L, 3 9P2000 with the smallest msize.
fn prelude(selector: u8) -> Vec<u8> {
    let (version, msize, n_uname) = match selector % 4 {
        0 => return Vec::new(),
        1 => ("9P2000", 8192, None),
        2 => ("9P2000.L", 8192, Some(0)),
        _ => ("9P2000", ninep::MIN_MSIZE, None),
    };
    let msgs = [
        Fcall {
            tag: NOTAG,
            msg: Msg::Tversion {
                msize,
                version: version.into(),
            },
        },
        Fcall {
            tag: 0,
            msg: Msg::Tattach {
                fid: 0,
                afid: NOFID,
                uname: "fuzz".into(),
                aname: String::new(),
                n_uname,
            },
        },
    ];
    let mut out = Vec::new();
    for m in &msgs {
        // These fixed messages are small and valid.
        let _ = encode(m, &mut out);
    }
    out
}

/// Serves `data` as a fresh server's only connection: the first byte picks a prelude
/// (see above), the rest is the client's byte stream. Returns the server's output.
pub fn serve_input(data: &[u8]) -> Vec<u8> {
    let Some((&selector, rest)) = data.split_first() else {
        return Vec::new();
    };
    let fs = Arc::new(Fs::new(Config {
        // Small, so the memory limit is reachable.
        memory_limit: 1 << 20,
        owner: "adm".into(),
        clock: Clock::Fixed(0),
    }));
    let server = Server::new(
        fs,
        ServerConfig {
            max_fids: 64,
            trace: false,
            data_threads: 2,
            ..ServerConfig::default()
        },
    );
    let mut input = prelude(selector);
    input.extend_from_slice(rest);
    let mut output = Vec::new();
    server.serve(&input[..], &mut output, "fuzz");
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed of the committed corpus runs without a panic and gets answers.
    #[test]
    fn fuzz_corpus_replays() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/server_loop");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus directory") {
            let path = entry.expect("entry").path();
            let data = std::fs::read(&path).expect("seed");
            let out = serve_input(&data);
            let mut replies = 0;
            let mut rest = &out[..];
            while let Some(size) = ninep::peek_size(rest) {
                ninep::decode(&rest[..size as usize], ninep::Dialect::L)
                    .unwrap_or_else(|e| panic!("{}: bad reply: {e}", path.display()));
                rest = &rest[size as usize..];
                replies += 1;
            }
            assert!(replies >= 2, "{}: only {replies} replies", path.display());
            seen += 1;
        }
        assert!(seen >= 5, "corpus has {seen} seeds");
    }
}
