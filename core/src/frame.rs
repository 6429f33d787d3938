//! Length-prefixed frames: the varint length header (sans-IO), used by the core
//! framing and by host adapters alike.
//!
//! A frame on the wire is a LEB128 varint length (1 to [`MAX_HEADER_LEN`] bytes,
//! canonical: no trailing zero groups) followed by that many payload bytes.
//!
//! ```
//! use ringlink_core::frame::{decode_len, encode_len, MAX_HEADER_LEN};
//!
//! let mut header = [0u8; MAX_HEADER_LEN];
//! let n = encode_len(300, &mut header);
//! assert_eq!(&header[..n], &[0xAC, 0x02]);
//! assert_eq!(decode_len(&header[..n]), Ok(Some((300, 2))));
//! assert_eq!(decode_len(&header[..1]), Ok(None), "need more bytes");
//! ```

use core::fmt;

/// Longest length header: a `u32` in LEB128 takes at most 5 bytes.
pub const MAX_HEADER_LEN: usize = 5;

/// Number of header bytes [`encode_len`] writes for `len`.
pub const fn header_len(len: u32) -> usize {
    match len {
        0..=0x7F => 1,
        0x80..=0x3FFF => 2,
        0x4000..=0x1F_FFFF => 3,
        0x20_0000..=0x0FFF_FFFF => 4,
        _ => 5,
    }
}

/// Writes the LEB128 varint of `len` into `out`; returns the number of bytes written.
pub fn encode_len(len: u32, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
    let mut v = len;
    let mut i = 0;
    // At most 5 iterations: each consumes 7 of the 32 bits.
    while i < MAX_HEADER_LEN {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out[i] = byte;
            return i + 1;
        }
        out[i] = byte | 0x80;
        i += 1;
    }
    // Unreachable: 5 groups of 7 bits cover 35 > 32 bits.
    MAX_HEADER_LEN
}

/// Why a length header is invalid. Either way the stream is out of sync (or not a
/// ringlink frame stream) and cannot be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HeaderError {
    /// More than [`MAX_HEADER_LEN`] bytes, or a value above `u32::MAX`.
    Overlong,
    /// A redundant trailing zero group (e.g. `[0x80, 0x00]` for 0): every length
    /// has exactly one encoding, so this is not something a ringlink writer sends.
    NonCanonical,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Overlong => f.write_str("frame length header longer than 5 bytes"),
            HeaderError::NonCanonical => f.write_str("frame length header is not canonical"),
        }
    }
}

impl core::error::Error for HeaderError {}

/// Decodes a length header at the start of `input`.
///
/// - `Ok(None)`: `input` is a valid but incomplete header (this includes an empty
///   `input`); call again with more bytes.
/// - `Ok(Some((len, header_bytes)))`: the payload starts at `input[header_bytes..]`.
/// - `Err(_)`: not a valid header, see [`HeaderError`].
///
/// Never reads past the first [`MAX_HEADER_LEN`] bytes of `input` and never panics.
pub fn decode_len(input: &[u8]) -> Result<Option<(u32, usize)>, HeaderError> {
    let mut value: u32 = 0;
    for (i, &byte) in input.iter().take(MAX_HEADER_LEN).enumerate() {
        let group = (byte & 0x7F) as u32;
        if i == MAX_HEADER_LEN - 1 && (byte & 0x80 != 0 || group > 0x0F) {
            // A fifth byte may only carry the top 4 bits of a `u32`, and must end.
            return Err(HeaderError::Overlong);
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(HeaderError::NonCanonical);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_at_every_width_boundary() {
        let cases = [
            0u32,
            1,
            0x7F,
            0x80,
            0x3FFF,
            0x4000,
            0x1F_FFFF,
            0x20_0000,
            0x0FFF_FFFF,
            0x1000_0000,
            u32::MAX,
        ];
        for len in cases {
            let mut h = [0u8; MAX_HEADER_LEN];
            let n = encode_len(len, &mut h);
            assert_eq!(n, header_len(len), "width of {len:#x}");
            assert_eq!(decode_len(&h[..n]), Ok(Some((len, n))), "{len:#x}");
            for short in 0..n {
                assert_eq!(
                    decode_len(&h[..short]),
                    Ok(None),
                    "prefix {short} of {len:#x}"
                );
            }
            // Trailing bytes are not part of the header.
            let mut long = [0xFFu8; 8];
            long[..n].copy_from_slice(&h[..n]);
            assert_eq!(decode_len(&long), Ok(Some((len, n))));
        }
    }

    #[test]
    fn rejects_overlong_overflowing_and_non_canonical_headers() {
        assert_eq!(decode_len(&[0x80; 5]), Err(HeaderError::Overlong));
        assert_eq!(decode_len(&[0x80; 9]), Err(HeaderError::Overlong));
        // 5th byte carrying bit 32 and above.
        assert_eq!(
            decode_len(&[0xFF, 0xFF, 0xFF, 0xFF, 0x10]),
            Err(HeaderError::Overlong)
        );
        assert_eq!(
            decode_len(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
            Ok(Some((u32::MAX, 5)))
        );
        assert_eq!(decode_len(&[0x80, 0x00]), Err(HeaderError::NonCanonical));
        assert_eq!(
            decode_len(&[0x81, 0x80, 0x00]),
            Err(HeaderError::NonCanonical)
        );
        assert_eq!(decode_len(&[0x00]), Ok(Some((0, 1))));
    }
}
