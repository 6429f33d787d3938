//! Fuzzes ringlink's length-prefixed frame readers with arbitrary bytes and chunkings.
//!
//! Four readers see the same wire: the sans-IO `FrameDecoder` fed at once and fed in
//! chunks, a `FrameReader` over a stream that returns short reads, and a
//! `FrameConsumer` over a small ring written in chunks. None may panic, every frame
//! must be at most `MAX` bytes, they must all report the same events in the same
//! order, agree on how the input ends, and every frame must be exactly the bytes
//! of the wire behind its header.
#![no_main]

use core::convert::Infallible;

use libfuzzer_sys::fuzz_target;
use ringlink_core::frame::ring::{FrameConsumer, Received};
use ringlink_core::frame::{
    Decoded, FrameDecoder, FrameError, FrameReader, HeaderError, MAX_HEADER_LEN, decode_len,
    encode_len,
};
use ringlink_core::ring::Ring;

const MAX: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Frame(Vec<u8>),
    TooLarge(usize),
    BadHeader(HeaderError),
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Input ended between frames.
    Clean,
    /// Input ended inside a frame.
    Inside,
}

struct ShortReads<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    call: usize,
}

impl embedded_io::ErrorType for ShortReads<'_> {
    type Error = Infallible;
}

impl embedded_io::Read for ShortReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let size = usize::from(self.sizes[self.call % self.sizes.len()]).max(1);
        self.call += 1;
        let n = buf.len().min(size).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn decoder_events(wire: &[u8], sizes: &[u8]) -> (Vec<Event>, End) {
    let mut decoder = FrameDecoder::<MAX>::new();
    let mut events = Vec::new();
    let mut at = 0;
    let mut call = 0;
    while at < wire.len() {
        let n = usize::from(sizes[call % sizes.len()])
            .max(1)
            .min(wire.len() - at);
        call += 1;
        let mut input = &wire[at..at + n];
        at += n;
        loop {
            let before = input.len();
            match decoder.feed(input) {
                Decoded::NeedMore => break,
                Decoded::Frame { payload, rest } => {
                    assert!(payload.len() <= MAX);
                    assert!(rest.len() < before);
                    events.push(Event::Frame(payload.to_vec()));
                    input = rest;
                }
                Decoded::TooLarge { len, max, rest } => {
                    assert!(len > max && max == MAX);
                    assert!(rest.len() < before);
                    events.push(Event::TooLarge(len));
                    input = rest;
                }
                Decoded::BadHeader { error, rest } => {
                    assert!(rest.len() < before);
                    events.push(Event::BadHeader(error));
                    input = rest;
                }
            }
        }
    }
    let end = if decoder.is_idle() {
        End::Clean
    } else {
        End::Inside
    };
    (events, end)
}

fn reader_events(wire: &[u8], sizes: &[u8]) -> (Vec<Event>, End) {
    let mut reader = FrameReader::<_, MAX>::new(ShortReads {
        data: wire,
        sizes,
        call: 0,
    });
    let mut events = Vec::new();
    loop {
        match reader.read_frame() {
            Ok(Some(payload)) => {
                assert!(payload.len() <= MAX);
                events.push(Event::Frame(payload.to_vec()));
            }
            Ok(None) => return (events, End::Clean),
            Err(FrameError::TooLarge { len, .. }) => events.push(Event::TooLarge(len)),
            Err(FrameError::BadHeader(e)) => events.push(Event::BadHeader(e)),
            Err(FrameError::UnexpectedEof) => return (events, End::Inside),
            Err(e) => panic!("unexpected reader error {e:?}"),
        }
    }
}

fn ring_events(wire: &[u8], sizes: &[u8]) -> (Vec<Event>, End) {
    let mut ring = Ring::<16>::new();
    let (tx, rx) = ring.split();
    let mut rx = FrameConsumer::<_, MAX>::new(rx);
    let mut events = Vec::new();
    let mut at = 0;
    let mut call = 0;
    let mut producer = Some(tx);
    loop {
        if let Some(tx) = producer.as_mut() {
            let n = usize::from(sizes[call % sizes.len()])
                .max(1)
                .min(wire.len() - at);
            call += 1;
            at += tx.write(&wire[at..at + n]).unwrap();
        }
        if at == wire.len() {
            // Dropping the producer lets the consumer tell a clean end from a cut frame.
            producer = None;
        }
        loop {
            match rx.recv_with(|p| p.to_vec()) {
                Ok(Received::Frame(p)) => {
                    assert!(p.len() <= MAX);
                    events.push(Event::Frame(p));
                }
                Ok(Received::Pending) => {
                    assert!(producer.is_some(), "pending after the producer left");
                    break;
                }
                Ok(Received::Finished) => return (events, End::Clean),
                Err(FrameError::TooLarge { len, .. }) => events.push(Event::TooLarge(len)),
                Err(FrameError::BadHeader(e)) => events.push(Event::BadHeader(e)),
                Err(FrameError::UnexpectedEof) => return (events, End::Inside),
                Err(e) => panic!("unexpected ring error {e:?}"),
            }
        }
    }
}

/// Checks that every frame event is its header and payload, in wire order.
fn check_against_wire(wire: &[u8], events: &[Event]) {
    let mut at = 0;
    for event in events {
        match event {
            Event::Frame(p) => {
                let mut h = [0u8; MAX_HEADER_LEN];
                let n = encode_len(p.len() as u32, &mut h);
                assert_eq!(&wire[at..at + n], &h[..n], "canonical header in the wire");
                assert_eq!(&wire[at + n..at + n + p.len()], &p[..]);
                at += n + p.len();
            }
            Event::TooLarge(len) => {
                let (l, n) = decode_len(&wire[at..]).unwrap().unwrap();
                assert_eq!(l as usize, *len);
                at += n + len;
            }
            Event::BadHeader(e) => {
                let n = match e {
                    HeaderError::Overlong => MAX_HEADER_LEN,
                    _ => wire[at..].iter().position(|b| b & 0x80 == 0).unwrap() + 1,
                };
                assert_eq!(decode_len(&wire[at..at + n]), Err(*e));
                at += n;
            }
        }
    }
    assert!(at <= wire.len() || matches!(events.last(), Some(Event::TooLarge(_))));
}

fuzz_target!(|data: &[u8]| {
    // First bytes choose the chunk sizes, the rest is the wire.
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k % 8) + 1;
    if rest.len() < k {
        return;
    }
    let (sizes, wire) = rest.split_at(k);

    let (whole, whole_end) = decoder_events(wire, &[255]);
    check_against_wire(wire, &whole);
    let (chunked, chunked_end) = decoder_events(wire, sizes);
    assert_eq!(chunked, whole);
    assert_eq!(chunked_end, whole_end);
    let (read, read_end) = reader_events(wire, sizes);
    assert_eq!(read, whole);
    assert_eq!(read_end, whole_end);
    let (ringed, ring_end) = ring_events(wire, sizes);
    assert_eq!(ringed, whole);
    assert_eq!(ring_end, whole_end);
});
