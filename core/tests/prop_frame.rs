//! Property tests of ringlink's frame layer: round trips through writers, readers,
//! the sans-IO decoder, ring grants and COBS, under arbitrary chunking, oversized
//! frames and garbage.
#![cfg(not(loom))]

use core::convert::Infallible;

use proptest::collection::vec;
use proptest::prelude::*;
use ringlink_core::frame::cobs::{self, CobsDecoder, CobsError, CobsFeed};
use ringlink_core::frame::ring::{FrameConsumer, FrameProducer, Received, SendError};
use ringlink_core::frame::{
    Decoded, FrameDecoder, FrameError, FrameReader, FrameWriter, MAX_HEADER_LEN, decode_len,
    encode_len,
};
use ringlink_core::ring::{Consumer, Ring};

const MAX: usize = 64;

/// An embedded-io writer into a `Vec`.
struct VecWriter(Vec<u8>);
impl embedded_io::ErrorType for VecWriter {
    type Error = Infallible;
}
impl embedded_io::Write for VecWriter {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// An embedded-io reader handing out the data in the given chunk sizes (cycled).
struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    call: usize,
}
impl embedded_io::ErrorType for Chunked<'_> {
    type Error = Infallible;
}
impl embedded_io::Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let size = self.sizes[self.call % self.sizes.len()];
        self.call += 1;
        let n = buf.len().min(size).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn header(len: usize) -> Vec<u8> {
    let mut h = [0u8; MAX_HEADER_LEN];
    let n = encode_len(len as u32, &mut h);
    h[..n].to_vec()
}

/// What a frame reader reported, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Frame(Vec<u8>),
    TooLarge(usize),
}

/// Frames with payloads of 0..=MAX bytes, plus now and then an oversized one.
fn frames() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(
        prop_oneof![
            8 => vec(any::<u8>(), 0..=MAX),
            1 => vec(any::<u8>(), MAX + 1..MAX * 5),
        ],
        0..24,
    )
}

fn expected(frames: &[Vec<u8>]) -> Vec<Event> {
    frames
        .iter()
        .map(|f| {
            if f.len() > MAX {
                Event::TooLarge(f.len())
            } else {
                Event::Frame(f.clone())
            }
        })
        .collect()
}

/// Raw wire bytes of the frames (oversized ones too, as a peer would send them).
fn wire(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Vec::new();
    for f in frames {
        w.extend(header(f.len()));
        w.extend(f);
    }
    w
}

fn decode_in_chunks(wire: &[u8], cuts: &[usize]) -> Vec<Event> {
    let mut d = FrameDecoder::<MAX>::new();
    let mut events = Vec::new();
    let mut at = 0;
    let mut cut = cuts.iter().cycle();
    while at < wire.len() {
        let n = (*cut.next().unwrap()).min(wire.len() - at);
        let mut input = &wire[at..at + n];
        at += n;
        loop {
            match d.feed(input) {
                Decoded::NeedMore => break,
                Decoded::Frame { payload, rest } => {
                    events.push(Event::Frame(payload.to_vec()));
                    input = rest;
                }
                Decoded::TooLarge { len, max, rest } => {
                    assert_eq!(max, MAX);
                    events.push(Event::TooLarge(len));
                    input = rest;
                }
                Decoded::BadHeader { error, .. } => panic!("valid wire: {error}"),
            }
        }
    }
    assert!(d.is_idle(), "every frame was complete");
    events
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn header_round_trips_and_is_canonical(len in any::<u32>(), tail in vec(any::<u8>(), 0..6)) {
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = encode_len(len, &mut h);
        let mut input = h[..n].to_vec();
        input.extend(&tail);
        prop_assert_eq!(decode_len(&input), Ok(Some((len, n))));
    }

    #[test]
    fn any_header_bytes_decode_to_their_unique_encoding(input in vec(any::<u8>(), 0..8)) {
        if let Ok(Some((len, n))) = decode_len(&input) {
            let mut h = [0u8; MAX_HEADER_LEN];
            let m = encode_len(len, &mut h);
            prop_assert_eq!(&h[..m], &input[..n]);
        }
    }

    #[test]
    fn writer_to_reader_round_trip_in_any_chunking(
        frames in vec(vec(any::<u8>(), 0..=MAX), 0..24),
        sizes in vec(1usize..80, 1..8),
    ) {
        let mut w = FrameWriter::<_, MAX>::new(VecWriter(Vec::new()));
        for f in &frames {
            w.write_frame(f).unwrap();
        }
        let bytes = w.into_inner().0;
        let mut r = FrameReader::<_, MAX>::new(Chunked { data: &bytes, sizes, call: 0 });
        for f in &frames {
            prop_assert_eq!(r.read_frame().unwrap(), Some(&f[..]));
        }
        prop_assert_eq!(r.read_frame().unwrap(), None);
    }

    #[test]
    fn oversized_garbage_frame_then_valid_frame(
        garbage in vec(any::<u8>(), MAX + 1..MAX * 20),
        valid in vec(any::<u8>(), 0..=MAX),
        sizes in vec(1usize..100, 1..6),
    ) {
        let mut bytes = header(garbage.len());
        bytes.extend(&garbage);
        bytes.extend(header(valid.len()));
        bytes.extend(&valid);
        let mut r = FrameReader::<_, MAX>::new(Chunked { data: &bytes, sizes, call: 0 });
        prop_assert_eq!(r.read_frame(), Err(FrameError::TooLarge { len: garbage.len(), max: MAX }));
        prop_assert_eq!(r.read_frame().unwrap(), Some(&valid[..]));
        prop_assert_eq!(r.read_frame().unwrap(), None);
    }

    #[test]
    fn reader_reports_oversized_frames_in_place(frames in frames(), sizes in vec(1usize..100, 1..6)) {
        let bytes = wire(&frames);
        let mut r = FrameReader::<_, MAX>::new(Chunked { data: &bytes, sizes, call: 0 });
        let mut events = Vec::new();
        loop {
            match r.read_frame() {
                Ok(Some(p)) => events.push(Event::Frame(p.to_vec())),
                Ok(None) => break,
                Err(FrameError::TooLarge { len, .. }) => events.push(Event::TooLarge(len)),
                Err(e) => panic!("{e}"),
            }
        }
        prop_assert_eq!(events, expected(&frames));
    }

    #[test]
    fn decoder_gives_the_same_frames_in_any_chunking(
        frames in frames(),
        cuts in vec(1usize..50, 1..10),
    ) {
        let bytes = wire(&frames);
        let whole = decode_in_chunks(&bytes, &[usize::MAX]);
        prop_assert_eq!(&whole, &expected(&frames));
        prop_assert_eq!(decode_in_chunks(&bytes, &cuts), whole.clone());
        prop_assert_eq!(decode_in_chunks(&bytes, &[1]), whole);
    }

    #[test]
    fn ring_frames_round_trip_with_wraps_and_partial_writes(
        frames in frames(),
        write_sizes in vec(1usize..40, 1..8),
        use_frame_producer in any::<bool>(),
    ) {
        // A 128-byte ring: payloads up to MAX fit, oversized ones stream through.
        let mut ring = Ring::<128>::new();
        let (mut tx, rx) = ring.split();
        let mut rx = FrameConsumer::<_, MAX>::new(rx);
        let mut events = Vec::new();
        if use_frame_producer {
            let mut ftx = FrameProducer::<_, { MAX * 5 }>::new(&mut tx);
            for (i, f) in frames.iter().enumerate() {
                loop {
                    let r = if i % 2 == 0 {
                        ftx.send(f)
                    } else {
                        ftx.send_with(f.len(), |p| p.copy_from_slice(f))
                    };
                    match r {
                        Ok(()) => break,
                        Err(SendError::Full { .. }) => drain(&mut rx, &mut events),
                        Err(SendError::TooLarge { .. }) => {
                            // Bigger than the ring: send it as raw bytes below.
                            let bytes = wire(std::slice::from_ref(f));
                            let mut at = 0;
                            while at < bytes.len() {
                                at += ftx.get_mut().write(&bytes[at..]).unwrap();
                                drain(&mut rx, &mut events);
                            }
                            break;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        } else {
            let bytes = wire(&frames);
            let mut at = 0;
            let mut size = write_sizes.iter().cycle();
            while at < bytes.len() {
                let n = (*size.next().unwrap()).min(bytes.len() - at);
                at += tx.write(&bytes[at..at + n]).unwrap();
                drain(&mut rx, &mut events);
            }
        }
        drain(&mut rx, &mut events);
        drop(tx);
        prop_assert_eq!(rx.recv_with(|_| ()).unwrap(), Received::Finished);
        prop_assert_eq!(events, expected(&frames));
    }

    #[test]
    fn cobs_round_trip_in_any_chunking(
        frames in vec(vec(any::<u8>(), 0..=MAX), 0..16),
        cuts in vec(1usize..40, 1..8),
    ) {
        let mut bytes = Vec::new();
        for f in &frames {
            let mut enc = vec![0u8; cobs::max_encoded_len(f.len())];
            let n = cobs::encode(f, &mut enc).unwrap();
            prop_assert!(!enc[..n - 1].contains(&0), "only the delimiter is zero");
            bytes.extend(&enc[..n]);
        }
        let got = cobs_decode_chunked::<MAX>(&bytes, &cuts);
        let want: Vec<_> = frames.into_iter().map(Ok).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn cobs_round_trips_long_zero_poor_payloads(
        frames in vec(vec(prop_oneof![30 => 1u8..=255, 1 => Just(0u8)], 0..700), 1..4),
    ) {
        let mut bytes = Vec::new();
        for f in &frames {
            let mut enc = vec![0u8; cobs::max_encoded_len(f.len())];
            let n = cobs::encode(f, &mut enc).unwrap();
            bytes.extend(&enc[..n]);
        }
        let got = cobs_decode_chunked::<700>(&bytes, &[usize::MAX]);
        let want: Vec<_> = frames.into_iter().map(Ok).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn cobs_resyncs_after_garbage(
        garbage in vec(any::<u8>(), 0..300),
        frames in vec(vec(any::<u8>(), 0..=MAX), 1..6),
        cuts in vec(1usize..40, 1..8),
    ) {
        let mut bytes = garbage;
        bytes.push(cobs::DELIMITER);
        for f in &frames {
            let mut enc = vec![0u8; cobs::max_encoded_len(f.len())];
            let n = cobs::encode(f, &mut enc).unwrap();
            bytes.extend(&enc[..n]);
        }
        let got = cobs_decode_chunked::<MAX>(&bytes, &cuts);
        // Whatever the garbage gave, the frames after the delimiter come out intact.
        prop_assert!(got.len() >= frames.len());
        let tail = &got[got.len() - frames.len()..];
        let want: Vec<_> = frames.into_iter().map(Ok).collect();
        prop_assert_eq!(tail, &want[..]);
    }
}

/// Receives every whole frame in the ring.
fn drain(rx: &mut FrameConsumer<Consumer<'_>, MAX>, events: &mut Vec<Event>) {
    loop {
        match rx.recv_with(|p| p.to_vec()) {
            Ok(Received::Frame(p)) => events.push(Event::Frame(p)),
            Ok(Received::Pending) => break,
            Ok(Received::Finished) => unreachable!("producer alive"),
            Err(FrameError::TooLarge { len, .. }) => events.push(Event::TooLarge(len)),
            Err(e) => panic!("{e}"),
        }
    }
}

fn cobs_decode_chunked<const M: usize>(
    bytes: &[u8],
    cuts: &[usize],
) -> Vec<Result<Vec<u8>, CobsError>> {
    let mut d = CobsDecoder::<M>::new();
    let mut out = Vec::new();
    let mut at = 0;
    let mut cut = cuts.iter().cycle();
    while at < bytes.len() {
        let n = (*cut.next().unwrap()).min(bytes.len() - at);
        let mut input = &bytes[at..at + n];
        at += n;
        loop {
            match d.feed(input) {
                CobsFeed::NeedMore => break,
                CobsFeed::Frame { payload, rest } => {
                    assert!(payload.len() <= M);
                    out.push(Ok(payload.to_vec()));
                    input = rest;
                }
                CobsFeed::Error { error, rest } => {
                    out.push(Err(error));
                    input = rest;
                }
            }
        }
    }
    out
}
