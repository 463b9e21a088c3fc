//! Decoding allocates in proportion to the message, never to a count read from it: a
//! counting allocator measures every decode of hostile and valid input.

mod common;
mod counting;

use common::*;
use counting::allocated_by;
use ninep::*;
use proptest::collection::vec;
use proptest::prelude::*;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

/// Bytes requested while decoding `buf` in both dialects.
fn allocated_by_decode(buf: &[u8]) -> usize {
    let (requested, ()) = allocated_by(|| {
        for d in [Dialect::P2000, Dialect::L] {
            // Dropped inside the measurement: only requests count, not what is kept.
            let _ = decode(buf, d);
        }
    });
    requested
}

/// The most decoding in both dialects may ask for. The worst ratio of any message is a
/// `Twalk` of 16 empty names: 47 bytes on the wire, a 384-byte `Vec<String>`. A walk
/// count not checked against the bytes that remain breaks this bound at once.
fn bound(len: usize) -> usize {
    2 * 9 * len
}

#[test]
fn hostile_counts_allocate_nothing_big() {
    let cases: Vec<Vec<u8>> = vec![
        // Rread claiming 4 GiB.
        vec![13, 0, 0, 0, 117, 1, 0, 0xff, 0xff, 0xff, 0xff, 0, 0],
        // Twalk claiming 65535 names.
        vec![17, 0, 0, 0, 110, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff],
        // Twalk claiming 16 names with none there.
        vec![17, 0, 0, 0, 110, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 16, 0],
        // Rwalk claiming 16 qids.
        vec![9, 0, 0, 0, 111, 1, 0, 16, 0],
        // Rerror with a 65535-byte string.
        vec![9, 0, 0, 0, 107, 1, 0, 0xff, 0xff],
        // Rstat with a 65535-byte record.
        vec![11, 0, 0, 0, 125, 1, 0, 0xff, 0xff, 0xff, 0xff],
        // A size field of 4 GiB on a short buffer.
        vec![0xff, 0xff, 0xff, 0xff, 117, 1, 0],
    ];
    // The counter works: a message with a string does allocate.
    let rerror = bytes_of(&Fcall {
        tag: 1,
        msg: Msg::Rerror { ename: "x".into() },
    });
    assert!(allocated_by_decode(&rerror) > 0);
    for buf in cases {
        let used = allocated_by_decode(&buf);
        assert!(used <= bound(buf.len()), "{buf:?}: {used} bytes");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn valid_messages_allocate_in_proportion((_, fc) in fcall()) {
        let buf = bytes_of(&fc);
        let used = allocated_by_decode(&buf);
        prop_assert!(used <= bound(buf.len()), "{} bytes for {} bytes", used, buf.len());
    }

    #[test]
    fn random_bodies_allocate_in_proportion(
        t in proptest::sample::select(all_mtypes()),
        body in vec(any::<u8>(), 0..96),
    ) {
        let mut buf = vec![0, 0, 0, 0, t, 1, 0];
        buf.extend_from_slice(&body);
        let n = buf.len() as u32;
        buf[..4].copy_from_slice(&n.to_le_bytes());
        let used = allocated_by_decode(&buf);
        prop_assert!(used <= bound(buf.len()), "{} bytes for {:?}", used, buf);
    }
}
