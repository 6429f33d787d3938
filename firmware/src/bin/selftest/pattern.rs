//! Deterministic test data and checksums: both sides regenerate what they expect.

/// A xorshift32 generator: the byte streams both ends of a test can regenerate.
#[derive(Clone, Copy)]
pub struct Xorshift(u32);

impl Xorshift {
    /// A generator from a non-zero seed (zero is mapped to a fixed non-zero seed).
    pub const fn new(seed: u32) -> Self {
        Xorshift(if seed == 0 { 0x9e37_79b9 } else { seed })
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// The next random byte.
    pub fn next_u8(&mut self) -> u8 {
        (self.next_u32() >> 24) as u8
    }

    /// A value in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u32() as usize) % (hi - lo + 1)
    }
}

/// CRC-32 (IEEE, reflected), bit by bit: small code, fast enough for test data.
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for part in parts {
        for &byte in *part {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xedb8_8320 & mask);
            }
        }
    }
    !crc
}

/// The payload of message `seq` of a stream: its length and bytes follow from `seq`.
pub fn payload(stream: u8, seq: u32, out: &mut [u8]) -> usize {
    let mut rng = Xorshift::new(seq.wrapping_mul(0x0100_0193) ^ u32::from(stream) << 24);
    let len = rng.between(0, out.len());
    for b in &mut out[..len] {
        *b = rng.next_u8();
    }
    len
}
