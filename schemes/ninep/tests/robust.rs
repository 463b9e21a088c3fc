//! Decoding arbitrary and damaged bytes: never a panic, and whatever decodes is
//! canonical (it re-encodes to exactly the bytes it came from).

mod common;

use common::*;
use ninep::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// Decodes `buf` in both dialects; whatever succeeds must encode back to `buf`.
fn decode_is_canonical(buf: &[u8]) -> Result<(), TestCaseError> {
    for d in [Dialect::P2000, Dialect::L] {
        match decode(buf, d) {
            Ok(fc) => {
                let mut out = Vec::new();
                encode(&fc, &mut out).map_err(|e| TestCaseError::fail(format!("{e}")))?;
                prop_assert_eq!(&out[..], buf, "{:?}", fc);
                prop_assert_eq!(encoded_len(&fc), buf.len());
            }
            Err(e) => {
                // Past the header, the error says which message it was in.
                if buf.len() >= HEADER_LEN {
                    prop_assert_eq!(e.mtype, Some(buf[4]));
                    prop_assert_eq!(e.tag, Some(u16::from_le_bytes([buf[5], buf[6]])));
                } else {
                    prop_assert_eq!((e.mtype, e.tag), (None, None));
                }
                // The Display impl names the message; it must not panic either.
                let _ = e.to_string();
            }
        }
    }
    Ok(())
}

/// `size[4]` set to the real length.
fn with_true_size(mut buf: Vec<u8>) -> Vec<u8> {
    if buf.len() >= 4 {
        let n = buf.len() as u32;
        buf[..4].copy_from_slice(&n.to_le_bytes());
    }
    buf
}

/// One way of damaging a valid message.
#[derive(Debug, Clone)]
enum Damage {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Damage::Flip(i, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Insert(i, b)),
        any::<usize>().prop_map(Damage::Remove),
    ]
}

fn apply(buf: &mut Vec<u8>, d: &Damage) {
    let len = buf.len();
    match *d {
        Damage::Truncate(n) => buf.truncate(n % (len + 1)),
        Damage::Flip(i, x) if len > 0 => buf[i % len] ^= x,
        Damage::Insert(i, b) => buf.insert(i % (len + 1), b),
        Damage::Remove(i) if len > 0 => {
            buf.remove(i % len);
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8192))]

    #[test]
    fn random_bytes(buf in vec(any::<u8>(), 0..200)) {
        decode_is_canonical(&buf)?;
        decode_is_canonical(&with_true_size(buf))?;
    }

    /// Random bodies behind a correct size and a real type number reach every
    /// message's decoder.
    #[test]
    fn random_bodies(
        t in proptest::sample::select(all_mtypes()),
        tag in any::<u16>(),
        body in vec(any::<u8>(), 0..160),
    ) {
        let mut buf = vec![0, 0, 0, 0, t];
        buf.extend_from_slice(&tag.to_le_bytes());
        buf.extend_from_slice(&body);
        decode_is_canonical(&with_true_size(buf))?;
    }

    /// Valid messages, damaged a little, with the size left as it was or corrected.
    #[test]
    fn damaged_messages(
        (_, fc) in fcall(),
        damages in vec(damage(), 1..4),
        fix_size in any::<bool>(),
    ) {
        let mut buf = bytes_of(&fc);
        for d in &damages {
            apply(&mut buf, d);
        }
        if fix_size {
            buf = with_true_size(buf);
        }
        decode_is_canonical(&buf)?;
    }

    #[test]
    fn stat_and_dirent_decode_random_bytes(buf in vec(any::<u8>(), 0..120)) {
        if let Ok((st, used)) = Stat::decode(&buf) {
            let mut out = Vec::new();
            st.encode(&mut out).unwrap();
            prop_assert_eq!(&out[..], &buf[..used]);
        }
        if let Ok((e, used)) = Dirent::decode(&buf) {
            let mut out = Vec::new();
            e.encode(&mut out).unwrap();
            prop_assert_eq!(&out[..], &buf[..used]);
        }
    }
}
