//! Tests of `input.rs`: messages cut by reads are completed where they were read, a read
//! takes what the transport has, and a large Twrite's data is read into page buffers
//! (through transports that hand out a few bytes at a time, vectored or not) and handed
//! out whole, with the bytes after it left for the next message.

use super::*;
use crate::ninep_server::test_streams::Cuts;

/// A transport that hands out the given pieces, one a read (cut to the room given).
struct Pieces(Vec<Vec<u8>>);

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(piece) = self.0.first_mut() else {
            return Ok(0);
        };
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        piece.drain(..n);
        if piece.is_empty() {
            self.0.remove(0);
        }
        Ok(n)
    }
}

/// A message of `len` bytes (size field included), its body filled with `byte`.
fn message(len: usize, byte: u8) -> Vec<u8> {
    let mut m = vec![byte; len];
    m[..4].copy_from_slice(&(len as u32).to_le_bytes());
    m
}

#[test]
fn a_message_cut_by_reads_is_completed_where_it_was_read() {
    let a = message(100, 1);
    let b = message(3 * READ_CHUNK, 2);
    // One read brings all of a and the start of b, the next ones the rest of b;
    // twice, since the first time the buffer grows (and moves, as a Vec does).
    let mut first = a.clone();
    first.extend_from_slice(&b[..1000]);
    let round = [first, b[1000..].to_vec()];
    let mut t = Pieces([round.clone(), round].concat());
    let mut input = Input::default();
    for round in 0..2 {
        assert_eq!(input.read_from(&mut t, None).unwrap(), 1100);
        assert_eq!(input.pending()[..100], a[..]);
        input.consume(100);
        let b_at = input.pending().as_ptr();
        // The rest of b is asked for, and no more.
        while input.pending().len() < b.len() {
            assert!(input.read_from(&mut t, None).unwrap() > 0);
        }
        assert_eq!(input.pending(), &b[..]);
        if round == 1 {
            assert_eq!(input.pending().as_ptr(), b_at, "b was not moved");
        }
        input.consume(b.len());
        assert!(input.pending().is_empty());
    }
    assert_eq!(input.read_from(&mut t, None).unwrap(), 0, "end of file");
}

#[test]
fn a_read_takes_what_the_transport_has_past_the_end_of_a_message() {
    let a = message(5000, 1);
    let b = message(50, 2);
    let mut t = Pieces(vec![a[..10].to_vec(), [&a[10..], &b[..]].concat()]);
    let mut input = Input::default();
    input.read_from(&mut t, None).unwrap();
    assert_eq!(
        input.read_from(&mut t, None).unwrap(),
        4990 + 50,
        "a's rest and b"
    );
    assert_eq!(input.pending(), &[&a[..], &b[..]].concat()[..]);
    input.consume(a.len());
    // b was read where it lies, after a: not moved.
    assert_eq!(input.pending(), &b[..]);
    assert_eq!(input.pending().as_ptr(), input.buf[a.len()..].as_ptr());
}

#[test]
fn an_unanswered_tail_moves_to_the_front_only_when_its_rest_has_no_room() {
    let a = message(30, 1);
    let cut = message(20, 2);
    let big = message(3 * READ_CHUNK, 3);
    let mut t = Pieces(vec![
        [&a[..], &cut[..2]].concat(),
        [&cut[2..], &big[..1000]].concat(),
        big[1000..].to_vec(),
    ]);
    let mut input = Input::default();
    input.read_from(&mut t, None).unwrap();
    input.consume(a.len());
    // A cut size field with room after it: read in place.
    input.read_from(&mut t, None).unwrap();
    assert_eq!(input.pending()[..cut.len()], cut[..]);
    assert_eq!(input.pending().as_ptr(), input.buf[a.len()..].as_ptr());
    input.consume(cut.len());
    // The big message's rest does not fit after it: its first 1000 bytes move to the
    // front, the rest is read after them.
    while input.pending().len() < big.len() {
        assert!(input.read_from(&mut t, None).unwrap() > 0);
    }
    assert_eq!(input.pending(), &big[..]);
    assert_eq!(input.pending().as_ptr(), input.buf.as_ptr());
}

/// A Twrite of `count` bytes at `offset` (data: a pattern of `seed`).
fn twrite(tag: u16, offset: u64, count: usize, seed: u8) -> Vec<u8> {
    let data: Vec<u8> = (0..count)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    let mut out = Vec::new();
    let msg = ninep::Msg::Twrite {
        fid: 9,
        offset,
        data,
    };
    ninep::encode(&ninep::Fcall { tag, msg }, &mut out).unwrap();
    out
}

const MSIZE: u32 = 1 << 20;

/// What the input handed out, message by message: the bytes, and whether the data came
/// in pages (with its head ending on a page boundary of the file).
fn messages_read(t: &mut Cuts, input: &mut Input) -> Vec<(Vec<u8>, bool)> {
    let mut seen = Vec::new();
    loop {
        if let Some(w) = input.gathered() {
            let end_of_head = w.header.offset + w.data.head.len() as u64;
            assert!(
                end_of_head.is_multiple_of(PAGE_SIZE as u64),
                "pages start on a file page"
            );
            assert!(w.data.pages.len() * PAGE_SIZE >= GATHER_MIN);
            seen.push((w.message(), true));
            input.finish_gathered();
            continue;
        }
        let pending = input.pending();
        if let Some(size) = peek_size(pending).filter(|&s| s as usize <= pending.len()) {
            seen.push((pending[..size as usize].to_vec(), false));
            input.consume(size as usize);
            continue;
        }
        if input.read_from(t, Some(MSIZE)).unwrap() == 0 {
            assert!(input.pending().is_empty(), "nothing left half read");
            return seen;
        }
    }
}

#[test]
fn a_large_twrite_is_read_into_pages_and_handed_out_whole() {
    let writes = [
        (0u64, 64 * 1024),
        (100, 64 * 1024 + 1),
        (4095, 100_000),
        (4096 * 5, 64 * 1024),
        (7, 1000),
        (8192, GATHER_MIN - 1),
        (1 << 40, 256 * 1024),
    ];
    for vectored in [true, false] {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for (i, &(offset, count)) in writes.iter().enumerate() {
            let w = twrite(i as u16, offset, count, i as u8);
            // Each Twrite is followed by a small message, which a read takes with the
            // Twrite's last bytes.
            let small = message(11, 1);
            stream.extend_from_slice(&w);
            stream.extend_from_slice(&small);
            want.push((w, count >= 64 * 1024));
            want.push((small, false));
        }
        let mut t = Cuts::varied(stream, vectored);
        let mut input = Input::default();
        let seen = messages_read(&mut t, &mut input);
        assert_eq!(seen.len(), want.len());
        for (i, ((got, paged), (want, big))) in seen.iter().zip(&want).enumerate() {
            assert!(got == want, "message {i} (vectored: {vectored})");
            // Reads of at most 6,000 bytes leave a 64 KiB Twrite's data mostly unread
            // when its header is in: it always goes into pages; a small one never does.
            assert_eq!(paged, big, "message {i} (vectored: {vectored})");
        }
    }
}

#[test]
fn before_tversion_nothing_is_read_into_pages() {
    let w = twrite(1, 0, 64 * 1024, 3);
    let mut t = Cuts::varied(w.clone(), true);
    let mut input = Input::default();
    while input.pending().len() < w.len() {
        assert!(input.read_from(&mut t, None).unwrap() > 0);
        assert!(input.gathered().is_none());
    }
    assert_eq!(input.pending(), &w[..]);
}

#[test]
fn page_buffers_given_back_are_the_next_twrite_s() {
    let (a, b) = (twrite(1, 0, 64 * 1024, 1), twrite(2, 0, 64 * 1024, 2));
    let mut t = Cuts::varied([a, b.clone()].concat(), true);
    let mut input = Input::default();
    let first: Vec<*const u8>;
    loop {
        input.read_from(&mut t, Some(MSIZE)).unwrap();
        if let Some(w) = input.gathered() {
            first = w.data.pages.iter().map(|p| p.bytes().as_ptr()).collect();
            // As a file gives back the pages it replaced (or copied from).
            w.spare.extend(w.data.pages);
            input.finish_gathered();
            break;
        }
    }
    loop {
        input.read_from(&mut t, Some(MSIZE)).unwrap();
        if let Some(w) = input.gathered() {
            let second: Vec<_> = w.data.pages.iter().map(|p| p.bytes().as_ptr()).collect();
            assert!(w.message() == b);
            // The first read brought part of the first page, so the first Twrite had
            // 15 pages, the second 16: 15 of them the first's.
            assert!(!first.is_empty());
            for page in &first {
                assert!(second.contains(page), "a buffer given back was not reused");
            }
            return;
        }
    }
}

#[test]
fn the_spare_buffers_kept_are_one_message_s_worth() {
    let w = twrite(1, 0, 64 * 1024, 1);
    let mut t = Cuts::varied(w, true);
    let mut input = Input::default();
    let msize = 32 * 1024 + 4096;
    loop {
        input.read_from(&mut t, Some(msize)).unwrap();
        if let Some(w) = input.gathered() {
            w.spare.extend(w.data.pages);
            w.spare.extend((0..100).map(|_| PageBuf::new()));
            input.finish_gathered();
            break;
        }
    }
    assert_eq!(input.spare.len(), msize as usize / PAGE_SIZE);
}

#[test]
fn end_of_file_inside_the_pages_is_end_of_file() {
    let w = twrite(1, 0, 64 * 1024, 1);
    let mut t = Cuts::varied(w[..40_000].to_vec(), true);
    let mut input = Input::default();
    let mut reads = 0;
    while input.read_from(&mut t, Some(MSIZE)).unwrap() > 0 {
        reads += 1;
        assert!(input.gathered().is_none());
    }
    assert!(reads > 1);
    assert!(input.gather.is_some(), "the data was going into pages");
}

#[test]
fn back_to_back_twrites_all_go_into_pages_once_one_does() {
    let writes: Vec<Vec<u8>> = (0..20)
        .map(|i| twrite(i, u64::from(i) * 65536, 65536, i as u8))
        .collect();
    let mut t = Cuts::whole(writes.concat());
    let seen = messages_read(&mut t, &mut Input::default());
    assert_eq!(seen.len(), writes.len());
    let paged: Vec<bool> = seen.iter().map(|(_, paged)| *paged).collect();
    for ((got, _), want) in seen.iter().zip(&writes) {
        assert!(got == want);
    }
    // The first read takes the first Twrite whole and most of the second; from the
    // third on, each is read into pages.
    assert!(paged[2..].iter().all(|&p| p), "{paged:?}");
}

mod any_cut {
    use super::*;
    use proptest::prelude::*;

    /// A Twrite (offset, count) or another message of `len` bytes.
    #[derive(Debug, Clone)]
    enum Sent {
        Twrite(u64, usize),
        Other(usize),
    }

    fn offset() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..3 * PAGE_SIZE as u64,
            Just(u64::MAX - 70_000),
            (0u64..16).prop_map(|d| u64::MAX - d),
            any::<u64>(),
        ]
    }

    fn sent() -> impl Strategy<Value = Sent> {
        prop_oneof![
            (offset(), prop_oneof![0usize..100, 30_000usize..140_000])
                .prop_map(|(o, c)| Sent::Twrite(o, c)),
            (7usize..64).prop_map(Sent::Other),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever the reads' cuts, every message comes out once, whole and in order,
        /// answered as the connection loop answers them (all whole ones at once).
        #[test]
        fn messages_come_out_in_order_whatever_the_cuts(
            sent in proptest::collection::vec(sent(), 1..12),
            pieces in proptest::collection::vec(
                prop_oneof![1usize..64, 1usize..9000, 60_000usize..200_000], 1..16),
            vectored in any::<bool>(),
        ) {
            let want: Vec<Vec<u8>> = sent
                .iter()
                .enumerate()
                .map(|(i, s)| match *s {
                    Sent::Twrite(offset, count) => twrite(i as u16, offset, count, i as u8),
                    Sent::Other(len) => message(len, i as u8),
                })
                .collect();
            let mut t = Cuts::new(want.concat(), pieces, vectored);
            let mut input = Input::default();
            let mut seen = Vec::new();
            loop {
                if let Some(w) = input.gathered() {
                    seen.push(w.message());
                    w.spare.extend(w.data.pages);
                    input.finish_gathered();
                }
                let pending = input.pending();
                let mut pos = 0;
                while let Some(size) = peek_size(&pending[pos..]) {
                    prop_assert!(size <= MSIZE);
                    let end = pos + size as usize;
                    if end > pending.len() {
                        break;
                    }
                    seen.push(pending[pos..end].to_vec());
                    pos = end;
                }
                input.consume(pos);
                if input.read_from(&mut t, Some(MSIZE)).unwrap() == 0 {
                    break;
                }
            }
            prop_assert!(input.pending().is_empty() && input.gathered().is_none());
            prop_assert_eq!(seen.len(), want.len());
            for (i, (got, want)) in seen.iter().zip(&want).enumerate() {
                prop_assert!(got == want, "message {} of {:?}", i, sent);
            }
        }
    }
}
