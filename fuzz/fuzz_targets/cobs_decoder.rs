//! Fuzzes ringlink's COBS decoder with arbitrary bytes and chunkings.
//!
//! It must never panic, never return a frame above `MAX`, give the same results
//! whatever the chunking, account for every byte, decode every frame it returns
//! back from that frame's own encoding, and, after a delimiter, decode a valid
//! frame that follows the garbage.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringlink_core::frame::cobs::{self, CobsDecoder, CobsError, CobsFeed};

const MAX: usize = 64;

fn decode(bytes: &[u8], sizes: &[u8]) -> (Vec<Result<Vec<u8>, CobsError>>, bool) {
    let mut decoder = CobsDecoder::<MAX>::new();
    let mut out = Vec::new();
    let mut at = 0;
    let mut call = 0;
    while at < bytes.len() {
        let n = usize::from(sizes[call % sizes.len()])
            .max(1)
            .min(bytes.len() - at);
        call += 1;
        let mut input = &bytes[at..at + n];
        at += n;
        loop {
            let before = input.len();
            match decoder.feed(input) {
                CobsFeed::NeedMore => break,
                CobsFeed::Frame { payload, rest } => {
                    assert!(payload.len() <= MAX);
                    assert!(
                        rest.len() < before,
                        "a frame ends at a delimiter it consumed"
                    );
                    out.push(Ok(payload.to_vec()));
                    input = rest;
                }
                CobsFeed::Error { error, rest } => {
                    assert!(rest.len() < before);
                    out.push(Err(error));
                    input = rest;
                }
            }
        }
    }
    (out, decoder.is_idle())
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k % 8) + 1;
    if rest.len() < k {
        return;
    }
    let (sizes, wire) = rest.split_at(k);

    let (whole, idle) = decode(wire, &[255]);
    let (chunked, chunked_idle) = decode(wire, sizes);
    assert_eq!(chunked, whole);
    assert_eq!(chunked_idle, idle);
    let delimiters = wire.iter().filter(|&&b| b == cobs::DELIMITER).count();
    let frames = whole.iter().filter(|r| r.is_ok()).count();
    assert!(
        frames <= delimiters,
        "every frame ends at its own delimiter"
    );

    for payload in whole.iter().flatten() {
        let mut enc = vec![0u8; cobs::max_encoded_len(payload.len())];
        let n = cobs::encode(payload, &mut enc).expect("max_encoded_len is enough");
        assert!(!enc[..n - 1].contains(&cobs::DELIMITER));
        let (again, idle) = decode(&enc[..n], &[255]);
        assert_eq!(again, [Ok(payload.clone())]);
        assert!(idle);
        // Typed decoding of arbitrary payloads must not panic either.
        let _ = postcard::from_bytes::<(u8, i32, &str, Option<u16>)>(payload);
    }

    // Garbage, a delimiter, then a valid frame: the valid frame comes out intact.
    let valid: Vec<u8> = wire.iter().rev().take(MAX).copied().collect();
    let mut enc = vec![0u8; cobs::max_encoded_len(valid.len())];
    let n = cobs::encode(&valid, &mut enc).expect("max_encoded_len is enough");
    let mut stream = wire.to_vec();
    stream.push(cobs::DELIMITER);
    stream.extend(&enc[..n]);
    let (events, idle) = decode(&stream, sizes);
    assert_eq!(events.last(), Some(&Ok(valid)));
    assert!(idle);
});
