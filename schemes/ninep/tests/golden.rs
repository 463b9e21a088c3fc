//! Messages written out byte by byte from the protocol's manual pages (9P2000 intro(5),
//! Linux's net/9p), so that a layout mistake made the same way in encode and decode
//! still fails here.

use ninep::*;

/// Encodes `fc`, compares with `bytes`, decodes `bytes` back and compares with `fc`.
fn check(fc: Fcall, dialect: Dialect, bytes: &[u8]) {
    let mut out = Vec::new();
    encode(&fc, &mut out).expect("encodes");
    assert_eq!(out, bytes, "encoding of {fc:?}");
    assert_eq!(encoded_len(&fc), bytes.len());
    assert_eq!(decode(bytes, dialect).expect("decodes"), fc);
}

#[test]
fn tversion() {
    check(
        Fcall {
            tag: NOTAG,
            msg: Msg::Tversion {
                msize: 8192,
                version: "9P2000".into(),
            },
        },
        Dialect::P2000,
        &[
            19, 0, 0, 0,   // size
            100, // Tversion
            0xff, 0xff, // NOTAG
            0x00, 0x20, 0, 0, // msize 8192
            6, 0, b'9', b'P', b'2', b'0', b'0', b'0',
        ],
    );
}
