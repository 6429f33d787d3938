//! Fuzz target: attach a shared-memory ring (`RawRing::attach`) to arbitrary bytes,
//! then drive its producer and consumer with arbitrary operations while a hostile
//! "peer" scribbles over the shared indices and data.
//!
//! Input: a flags byte, the mapping's length, then either a capacity (a ring
//! freshly initialised by `RawRing::init`, possibly with a few header bytes
//! changed by a peer before attaching) or the raw bytes of the mapping (the
//! header as a peer left it), then operations until the input runs out.
//!
//! Whatever the bytes, attaching and every operation must return (an error is
//! fine) without panicking or touching memory outside the mapping (AddressSanitizer
//! watches that). While no one has scribbled on a freshly initialised ring, it
//! must also behave exactly like a FIFO of its capacity (a `VecDeque` model).
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use ringlink_core::ring::{HEADER_SIZE, RawRing};

/// Largest ring capacity the target initialises.
const MAX_CAPACITY: usize = 4096;
/// Size of the mapping buffer (the attached length is at most this).
const MAP_BYTES: usize = HEADER_SIZE + MAX_CAPACITY + 128;
/// Offsets of the 32-bit words a peer writes in the header: the producer's line
/// (`tail`, `closed`, `parked`) and the consumer's line (`head`, `closed`,
/// `parked`), each on its own 128-byte line after the immutable one.
const PEER_WORDS: [usize; 6] = [128, 132, 136, 256, 260, 264];

/// 128-byte aligned storage, as a shared mapping would be.
#[derive(Clone, Copy)]
#[repr(C, align(128))]
struct Line([u8; 128]);

/// The fuzzer's bytes, read front to back; zeros once they run out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.u8();
    let mut lines = vec![Line([0; 128]); MAP_BYTES / 128 + 1];
    let base = lines.as_mut_ptr().cast::<u8>();
    // Sometimes hand over a misaligned mapping: attach must refuse it.
    let offset = if flags & 0x80 != 0 {
        usize::from(input.u8() % 128)
    } else {
        0
    };
    let len = usize::from(input.u16()) % (MAP_BYTES + 1);
    // SAFETY: `offset < 128` and the buffer holds `MAP_BYTES + 128` bytes.
    let mem = unsafe { base.add(offset) };

    let fresh = flags & 1 != 0;
    // Bytes of a fresh header a peer changes before we attach (flags bits 1..=3).
    let patches = (flags >> 1) & 7;
    let attached = if fresh {
        let capacity = 1usize << (input.u8() % 13);
        // SAFETY: `mem` is valid for `len <= MAP_BYTES` bytes and used by no one else.
        let init = unsafe { RawRing::init(mem, len, capacity) };
        if init.is_ok() && patches > 0 {
            for _ in 0..patches {
                let at = usize::from(input.u16()) % HEADER_SIZE;
                // SAFETY: `init` succeeded, so `len >= HEADER_SIZE > at`; the ring
                // `init` returned is no longer used.
                unsafe { mem.add(at).write(input.u8()) };
            }
            // SAFETY: as for `init`.
            unsafe { RawRing::attach(mem, len) }
        } else {
            init
        }
    } else {
        // The mapping as a peer left it: the next `len` input bytes (zeros after).
        for i in 0..len {
            // SAFETY: `i < len <= MAP_BYTES`, inside the buffer after `offset`.
            unsafe { mem.add(i).write(input.u8()) };
        }
        // SAFETY: `mem` is valid for `len` bytes for the whole closure.
        unsafe { RawRing::attach(mem, len) }
    };
    let Ok(ring) = attached else { return };

    let cap = ring.capacity();
    assert!(cap.is_power_of_two() && cap <= MAX_CAPACITY + 128);
    assert!(
        HEADER_SIZE + cap <= len,
        "attach accepted a ring larger than its mapping"
    );
    assert_eq!(
        mem as usize % 128,
        0,
        "attach accepted a misaligned mapping"
    );

    // SAFETY: this closure is the only user of the ring: one producer, one consumer.
    let (mut tx, mut rx) = unsafe { (ring.producer(), ring.consumer()) };
    // The model holds while the ring is fresh and no peer wrote to it.
    let mut pristine = fresh && patches == 0;
    let mut model = VecDeque::new();
    let mut next = 0u8;
    let mut scratch = vec![0u8; 2 * cap + 1];

    while !input.is_empty() {
        let n = usize::from(input.u16()) % (2 * cap + 1);
        match input.u8() % 8 {
            0 => {
                let bytes: Vec<u8> = (0..n).map(|i| next.wrapping_add(i as u8)).collect();
                if let Ok(k) = tx.write(&bytes) {
                    assert!(k <= n);
                    if pristine {
                        // Documented: "copies as much of `data` as fits".
                        assert_eq!(
                            k,
                            n.min(cap - model.len()),
                            "write must fill the free space"
                        );
                    }
                    if pristine {
                        model.extend(&bytes[..k]);
                    }
                    next = next.wrapping_add(k as u8);
                }
            }
            1 => {
                if let Ok(k) = rx.read(&mut scratch[..n]) {
                    assert!(k <= n);
                    if pristine {
                        // `read` may stop short (it trusts a cached `tail` until the
                        // ring looks empty), but returns 0 only when it is empty.
                        assert!(k <= model.len(), "read more than was written");
                        assert!(
                            k > 0 || n == 0 || model.is_empty(),
                            "read nothing from a non-empty ring"
                        );
                        let expected: Vec<u8> = model.drain(..k).collect();
                        assert_eq!(&scratch[..k], &expected[..], "bytes out of order");
                    }
                }
            }
            2 | 3 => {
                let exact = input.u8() & 1 == 0;
                let grant = if exact {
                    tx.grant_exact(n)
                } else {
                    tx.grant_max(n)
                };
                if let Ok(mut g) = grant {
                    if exact {
                        assert_eq!(g.len(), n, "exact grant of another size");
                    } else {
                        assert!(!g.is_empty() && g.len() <= n.min(cap), "grant_max size");
                    }
                    // A shared ring's grant is a volatile view, never a slice.
                    let bytes: Vec<u8> = (0..g.len()).map(|i| next.wrapping_add(i as u8)).collect();
                    assert_eq!(g.bytes().copy_from(&bytes), g.len());
                    let used = usize::from(input.u16()) % (g.len() + 1);
                    if pristine {
                        assert!(model.len() + g.len() <= cap, "grant over unread bytes");
                        model.extend(&bytes[..used]);
                    }
                    next = next.wrapping_add(used as u8);
                    g.commit(used);
                }
            }
            4 => {
                if let Ok(g) = rx.read_grant() {
                    assert!(!g.is_empty() && g.len() <= cap);
                    let used = usize::from(input.u16()) % (g.len() + 1);
                    if pristine {
                        assert!(
                            g.len() <= model.len(),
                            "read grant beyond the written bytes"
                        );
                        let expected: Vec<u8> = model.iter().take(g.len()).copied().collect();
                        let mut got = vec![0u8; g.len()];
                        assert_eq!(g.bytes().copy_to(&mut got), g.len());
                        assert_eq!(got, expected, "bytes out of order");
                        model.drain(..used);
                    }
                    g.release(used);
                }
            }
            5 => {
                // A peer writes a header word or a data word of the shared mapping.
                let value = input.u32();
                let at = if input.u8() & 1 == 0 {
                    PEER_WORDS[n % PEER_WORDS.len()]
                } else {
                    HEADER_SIZE + (n % cap) / 4 * 4
                };
                if at + 4 <= HEADER_SIZE + cap {
                    // SAFETY: inside the mapping and 4-aligned; a shared ring never
                    // makes a reference to its data or to plain header fields, and
                    // header words are atomics.
                    unsafe { mem.add(at).cast::<u32>().write_volatile(value) };
                    pristine = false;
                }
            }
            6 => {
                if let (Ok(free), Ok(used)) = (tx.free(), rx.available()) {
                    assert!(free <= cap && used <= cap);
                    if pristine {
                        assert_eq!(used, model.len());
                        assert_eq!(free, cap - model.len());
                    }
                }
            }
            _ => {
                // The parking protocol and close flags: must not panic either.
                let _ = tx.prepare_park();
                let _ = rx.prepare_park();
                let _ = (tx.consumer_parked(), rx.producer_parked());
                let _ = (
                    tx.is_consumer_closed(),
                    rx.is_producer_closed(),
                    rx.is_finished(),
                );
                tx.unpark();
                rx.unpark();
            }
        }
    }
});
