//! Decodes arbitrary bytes in both dialects; whatever decodes must re-encode to
//! exactly the same bytes, with `encoded_len` agreeing, and `decode_view` must agree
//! with `decode` on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ninep::{decode, decode_view, encode, encoded_len, Dialect, Dirent, FcallView, Stat};

fuzz_target!(|data: &[u8]| {
    for dialect in [Dialect::P2000, Dialect::L] {
        let view = decode_view(data, dialect).map(FcallView::into_owned);
        assert_eq!(view, decode(data, dialect), "decode_view disagrees");
        if let Ok(fc) = decode(data, dialect) {
            let mut out = Vec::new();
            encode(&fc, &mut out).expect("a decoded message encodes");
            assert_eq!(out, data, "round trip of {fc:?}");
            assert_eq!(encoded_len(&fc), data.len());
        }
    }
    // The record helpers see the same bytes as a directory-read payload.
    if let Ok((st, used)) = Stat::decode(data) {
        let mut out = Vec::new();
        st.encode(&mut out).expect("a decoded stat encodes");
        assert_eq!(out, data[..used]);
    }
    if let Ok((entry, used)) = Dirent::decode(data) {
        let mut out = Vec::new();
        entry.encode(&mut out).expect("a decoded entry encodes");
        assert_eq!(out, data[..used]);
    }
});
