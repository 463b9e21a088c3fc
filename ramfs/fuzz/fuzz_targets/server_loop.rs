//! Feeds arbitrary bytes to the server as one connection's input stream; the server
//! must answer or close, never panic. The first byte picks a session prelude (see
//! `ramfs::fuzzing::serve_input`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ramfs::fuzzing::serve_input(data);
});
