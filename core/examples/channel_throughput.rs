//! Moves 1 GiB (or the MiB given as the first argument) through a core
//! [`Channel`] between two threads, checks it arrived intact, and prints MiB/s.
//!
//! ```text
//! cargo run --release -p ringlink-core --example channel_throughput --features std [MiB]
//! ```
//!
//! The sender writes fixed-size blocks drawn from a few precomputed patterns; the
//! receiver hashes every block it reads and folds the hashes in order, so a lost,
//! duplicated, reordered or corrupted block changes the checksum. The block size
//! does not divide the ring's capacity, so blocks wrap around the end of the ring.

use std::time::Instant;

use embedded_io::{Read, Write};
use ringlink_core::channel::{Channel, Yield};

/// Bytes in each ring of the channel.
const RING_BYTES: usize = 64 * 1024;
/// Bytes per block (a multiple of 8, not a divisor of `RING_BYTES`).
const BLOCK: usize = 4000;
/// Distinct block contents the sender cycles through.
const PATTERNS: usize = 7;

static CHANNEL: Channel<RING_BYTES> = Channel::new();

fn main() {
    let mib: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse().unwrap_or_else(|_| {
            eprintln!("usage: channel_throughput [MiB to move, default 1024]");
            std::process::exit(2)
        }),
        None => 1024,
    };
    let blocks = (mib * 1024 * 1024 / BLOCK as u64) as usize;
    let bytes = (blocks * BLOCK) as f64;

    let patterns = patterns();
    let pattern_hashes: Vec<u64> = patterns.iter().map(|p| block_hash(p)).collect();
    let expected = (0..blocks).fold(0, |sum, k| fold(sum, pattern_hashes[k % PATTERNS]));

    // `split_static` hands out the endpoints once; the `Yield` strategy spins a
    // little, then yields, so the example behaves on a busy machine.
    let (a, b) = CHANNEL
        .split_static()
        .expect("the channel is split only here");
    let (tx, rx, _) = a.into_parts();
    let mut sender = ringlink_core::Endpoint::new(tx, rx, Yield::default());
    let (tx, rx, _) = b.into_parts();
    let mut receiver = ringlink_core::Endpoint::new(tx, rx, Yield::default());

    let start = Instant::now();
    let checksum = std::thread::scope(|s| {
        s.spawn(move || {
            for k in 0..blocks {
                sender
                    .write_all(&patterns[k % PATTERNS])
                    .expect("the receiver reads until the end");
            }
        });
        let mut buf = [0u8; BLOCK];
        let mut sum = 0;
        for _ in 0..blocks {
            receiver
                .read_exact(&mut buf)
                .expect("the sender writes every block");
            sum = fold(sum, block_hash(&buf));
        }
        sum
    });
    let secs = start.elapsed().as_secs_f64();

    println!(
        "channel_throughput: {:.0} MiB in {secs:.3} s through a {} KiB ring: {:.0} MiB/s",
        bytes / (1024.0 * 1024.0),
        RING_BYTES / 1024,
        bytes / (1024.0 * 1024.0) / secs
    );
    if checksum == expected {
        println!("checksum {checksum:#018x} ok");
    } else {
        eprintln!("checksum MISMATCH: got {checksum:#018x}, expected {expected:#018x}");
        std::process::exit(1);
    }
}

/// Block contents from a xorshift generator, distinct per pattern.
fn patterns() -> Vec<[u8; BLOCK]> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..PATTERNS)
        .map(|_| {
            let mut block = [0u8; BLOCK];
            for word in block.chunks_exact_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes());
            }
            block
        })
        .collect()
}

/// FNV-style hash over the block's 64-bit words (position-sensitive).
fn block_hash(block: &[u8]) -> u64 {
    block.chunks_exact(8).fold(0xCBF2_9CE4_8422_2325, |h, w| {
        let w = u64::from_le_bytes(w.try_into().expect("chunks of 8 bytes"));
        (h ^ w).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// Order-sensitive fold of block hashes.
fn fold(sum: u64, hash: u64) -> u64 {
    sum.rotate_left(5) ^ hash
}
