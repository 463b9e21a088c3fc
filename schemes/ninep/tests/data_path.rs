//! The copy-free data path: `decode_view` agrees with `decode` on every input and lends a
//! `Twrite`'s data from the input, and `RreadInPlace` writes the bytes `encode` writes.
//! A counting allocator shows that neither makes a buffer of the data's size.

mod common;
mod counting;

use common::*;
use counting::allocated_by;
use ninep::*;
use proptest::collection::vec;
use proptest::prelude::*;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

fn twrite(data: Vec<u8>) -> Vec<u8> {
    bytes_of(&Fcall {
        tag: 9,
        msg: Msg::Twrite {
            fid: 3,
            offset: 1 << 40,
            data,
        },
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every message of both dialects: the view, made owned, is what `decode` gives.
    #[test]
    fn a_view_is_what_decode_gives((dialect, fc) in fcall()) {
        let bytes = bytes_of(&fc);
        let view = decode_view(&bytes, dialect).expect("decodes");
        prop_assert_eq!(
            matches!(view.msg, MsgView::Twrite { .. }),
            matches!(fc.msg, Msg::Twrite { .. }),
            "a Twrite is borrowed, nothing else is"
        );
        prop_assert_eq!(view.into_owned(), fc);
    }

    /// `peek_twrite` on a message's first bytes: the header of what `decode_view` gives
    /// for the whole message when it is a Twrite, and `None` for every other message.
    #[test]
    fn a_peeked_twrite_header_is_what_the_whole_message_decodes_as((dialect, fc) in fcall()) {
        let bytes = bytes_of(&fc);
        let head = &bytes[..bytes.len().min(TWRITE_HEADER_LEN)];
        match (peek_twrite(head), decode_view(&bytes, dialect).expect("decodes").msg) {
            (Some(h), MsgView::Twrite { fid, offset, data }) => {
                prop_assert_eq!((h.tag, h.fid, h.offset), (fc.tag, fid, offset));
                prop_assert_eq!(h.count as usize, data.len());
                prop_assert_eq!(bytes.len(), TWRITE_HEADER_LEN + data.len());
            }
            (None, MsgView::Owned(_)) => {}
            (peeked, msg) => prop_assert!(false, "peeked {:?} of {:?}", peeked, msg),
        }
    }

    /// A size field that disagrees with the count, or a header cut short: no header.
    #[test]
    fn a_twrite_whose_size_disagrees_is_not_peeked(
        data in vec(any::<u8>(), 0..64),
        delta in 1u32..1000,
        cut in 0usize..TWRITE_HEADER_LEN,
    ) {
        let mut bytes = twrite(data);
        prop_assert!(peek_twrite(&bytes[..cut]).is_none());
        let size = peek_size(&bytes).unwrap().wrapping_add(delta);
        bytes[..4].copy_from_slice(&size.to_le_bytes());
        prop_assert!(peek_twrite(&bytes).is_none());
    }

    /// Mangled messages (cut, grown, bytes changed): the same error as `decode`.
    #[test]
    fn a_view_fails_as_decode_fails(
        (dialect, fc) in fcall(),
        cut in any::<prop::sample::Index>(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        extra in vec(any::<u8>(), 0..3),
    ) {
        let mut bytes = bytes_of(&fc);
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        bytes.extend_from_slice(&extra);
        let want = decode(&bytes, dialect);
        let got = decode_view(&bytes, dialect).map(FcallView::into_owned);
        prop_assert_eq!(got, want);
    }

    /// An `Rread` built in place, its data pushed in any pieces after any earlier
    /// replies, is byte for byte what `encode` appends.
    #[test]
    fn an_rread_in_place_is_what_encode_gives(
        before in vec(any::<u8>(), 0..20),
        data in vec(any::<u8>(), 0..300),
        cuts in vec(any::<prop::sample::Index>(), 0..5),
        tag in any::<u16>(),
    ) {
        let mut want = before.clone();
        encode(&Fcall { tag, msg: Msg::Rread { data: data.clone() } }, &mut want).expect("encodes");
        let mut out = before;
        let mut reply = RreadInPlace::begin(&mut out, tag, data.len());
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        at.sort_unstable();
        let mut from = 0;
        for to in at.into_iter().chain([data.len()]) {
            reply.push(&data[from..to]);
            from = to;
        }
        prop_assert_eq!(reply.data_len(), data.len());
        prop_assert_eq!(reply.message_len(), RREAD_HEADER_LEN + data.len());
        prop_assert_eq!(reply.finish(), Ok(data.len() as u32));
        prop_assert_eq!(out, want);
    }
}

#[test]
fn a_twrites_data_is_lent_from_the_input() {
    let bytes = twrite((0..=255).collect());
    let (allocated, view) = allocated_by(|| decode_view(&bytes, Dialect::L));
    let Ok(FcallView {
        tag: 9,
        msg:
            MsgView::Twrite {
                fid: 3,
                offset: 0x100_0000_0000,
                data,
            },
    }) = view
    else {
        panic!("not the Twrite: {view:?}");
    };
    let range = bytes.as_ptr_range();
    assert!(range.contains(&data.as_ptr()), "data points into the input");
    assert_eq!(data.as_ptr_range().end, range.end, "and ends where it does");
    assert_eq!(data, &bytes[bytes.len() - 256..]);
    assert_eq!(allocated, 0, "decoding the view allocated");
    // The counter works: decode's Twrite copies the data into a Vec of its own.
    let (owned, _) = allocated_by(|| decode(&bytes, Dialect::L));
    assert!(owned >= 256, "decode allocated only {owned} bytes");
}

#[test]
fn an_rread_with_room_reserved_allocates_nothing_more() {
    let data = vec![5u8; 10_000];
    let mut out = Vec::with_capacity(RREAD_HEADER_LEN + data.len());
    let (allocated, count) = allocated_by(|| {
        let mut reply = RreadInPlace::begin(&mut out, 1, data.len());
        for piece in data.chunks(4096) {
            reply.push(piece);
        }
        reply.finish()
    });
    assert_eq!(count, Ok(10_000));
    assert_eq!(allocated, 0);
    assert_eq!(
        decode(&out, Dialect::P2000).map(|fc| fc.msg),
        Ok(Msg::Rread { data })
    );
}

#[test]
fn an_unfinished_rread_leaves_the_buffer_as_it_was() {
    let mut out = b"earlier replies".to_vec();
    {
        let mut reply = RreadInPlace::begin(&mut out, 1, 100);
        reply.push(b"half a reply");
    }
    assert_eq!(out, b"earlier replies");
    // And one can be begun again after it.
    let mut reply = RreadInPlace::begin(&mut out, 2, 0);
    assert_eq!(reply.data_len(), 0);
    reply.push(b"");
    assert_eq!(reply.finish(), Ok(0));
    assert_eq!(out.len(), b"earlier replies".len() + RREAD_HEADER_LEN);
}
