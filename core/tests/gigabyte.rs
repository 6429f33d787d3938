//! Moves at least 1 GiB through a `static` ring between two threads and checks
//! every byte: against the predicted stream at its position, and with a checksum
//! computed on both sides.
#![cfg(not(loom))]

use ringlink_core::ring::Ring;

static RING: Ring<65536> = Ring::new();

const TOTAL: u64 = 1 << 30;

/// A cheap position-dependent byte stream: the consumer can predict every byte.
fn byte_at(pos: u64) -> u8 {
    let x = pos.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8 ^ pos as u8
}

/// Sum of all bytes of `chunk` (independent of how the stream is cut into chunks),
/// word-wise so that a debug build keeps up.
fn byte_sum(chunk: &[u8]) -> u64 {
    const LO: u64 = 0x00FF_00FF_00FF_00FF;
    let mut words = chunk.chunks_exact(8);
    let mut s = 0u64;
    for w in &mut words {
        let v = u64::from_le_bytes(w.try_into().expect("chunks_exact(8) yields 8 bytes"));
        let pairs = (v & LO) + ((v >> 8) & LO); // four 16-bit lanes, each <= 510
        s += pairs.wrapping_mul(0x0001_0001_0001_0001) >> 48;
    }
    s + words.remainder().iter().map(|&b| u64::from(b)).sum::<u64>()
}

#[test]
fn one_gibibyte_through_a_static_ring() {
    let (mut tx, mut rx) = RING.split_static().expect("first and only split");
    // The stream repeats with a prime period, so it never lines up with the ring's
    // wrap-around; the table holds one period plus the longest chunk.
    const PERIOD: u64 = 65_521; // prime
    let pattern: std::sync::Arc<[u8]> = (0..PERIOD + 16_384).map(|i| byte_at(i % PERIOD)).collect();
    let sent_pattern = pattern.clone();

    let writer = std::thread::spawn(move || {
        let mut sent = 0u64;
        let mut sum = 0u64;
        let sizes = [1usize, 7, 512, 4096, 16_384, 1500];
        let mut i = 0;
        while sent < TOTAL {
            let len = sizes[i % sizes.len()].min((TOTAL - sent) as usize);
            i += 1;
            let off = (sent % PERIOD) as usize;
            let chunk = &sent_pattern[off..off + len];
            let mut done = 0;
            while done < len {
                let n = tx
                    .write(&chunk[done..])
                    .expect("local ring is never corrupted");
                if n == 0 {
                    std::thread::yield_now();
                }
                done += n;
            }
            sum += byte_sum(chunk);
            sent += len as u64;
        }
        sum
    });

    // The consumer reads through zero-copy grants and checks each byte's position.
    let mut received = 0u64;
    let mut sum = 0u64;
    let mut spins = 0u64;
    while received < TOTAL {
        match rx.read_grant() {
            Ok(g) => {
                let n = g.len();
                let off = (received % PERIOD) as usize;
                let take = n.min(16_384);
                assert!(
                    g[..take] == pattern[off..off + take],
                    "corrupted or reordered bytes at offset {received}"
                );
                sum += byte_sum(&g[..take]);
                g.release(take);
                received += take as u64;
            }
            Err(_) => {
                spins += 1;
                std::thread::yield_now();
            }
        }
    }
    let writer_sum = writer.join().expect("writer thread");
    // Byte-sum of the stream, computed independently from the pattern.
    let full_periods = TOTAL / PERIOD;
    let rest = (TOTAL % PERIOD) as usize;
    let period_sum: u64 = pattern[..PERIOD as usize]
        .iter()
        .map(|&b| u64::from(b))
        .sum();
    let rest_sum: u64 = pattern[..rest].iter().map(|&b| u64::from(b)).sum();
    let expected = full_periods * period_sum + rest_sum;
    assert_eq!(writer_sum, expected, "checksum of what was sent");
    assert_eq!(sum, expected, "checksum of what was received");
    assert_eq!(received, TOTAL);
    assert_eq!(rx.available().unwrap(), 0, "nothing extra arrived");
    eprintln!("1 GiB moved; consumer found the ring empty {spins} times");
}
