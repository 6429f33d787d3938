//! Length-prefixed frames over byte streams and rings, typed messages (postcard)
//! and COBS frames for lossy links.
//!
//! A frame on the wire is a LEB128 varint length (1 to [`MAX_HEADER_LEN`] bytes,
//! canonical: no redundant trailing groups) followed by that many payload bytes.
//! Every reader has a maximum payload size `MAX` fixed at compile time and owns a
//! `[u8; MAX]` buffer; nothing allocates.
//!
//! - [`encode_len`] / [`decode_len`]: the header alone, sans-IO (host adapters use it
//!   with their own buffers and a run-time maximum).
//! - [`FrameWriter`] / [`FrameReader`]: frames over any `embedded_io` stream.
//! - [`FrameDecoder`]: push bytes in, get frames out (non-blocking and async hosts).
//! - [`ring::FrameProducer`] / [`ring::FrameConsumer`]: frames written into and read
//!   out of a ring's grants without a copy when they are contiguous.
//! - [`cobs`]: zero-delimited COBS frames for byte links that can lose or corrupt
//!   bytes (a UART); the decoder resynchronises at the next delimiter.
//! - Typed messages: `send` / `recv` methods serialize with postcard.
//!
//! **Oversized frames keep the stream in sync**: a length above `MAX` is reported
//! as [`FrameError::TooLarge`] and its payload is skipped (never buffered), so the
//! next read returns the next frame. An invalid header ([`FrameError::BadHeader`])
//! means the stream is out of sync: drop the connection.
//!
//! ```
//! use ringlink_core::frame::{FrameError, FrameReader, FrameWriter};
//!
//! let mut wire = [0u8; 64];
//! let mut writer = FrameWriter::<_, 8>::new(&mut wire[..]);
//! writer.write_frame(b"hi").unwrap();
//! writer.write_frame(&[0xAA; 20]).unwrap_err(); // TooLarge: nothing written
//! writer.send(&(7u8, true)).unwrap(); // postcard
//! let left = writer.into_inner().len();
//! let used = wire.len() - left;
//!
//! let mut reader = FrameReader::<_, 8>::new(&wire[..used]);
//! assert_eq!(reader.read_frame().unwrap(), Some(&b"hi"[..]));
//! assert_eq!(reader.recv::<(u8, bool)>().unwrap(), Some((7, true)));
//! assert_eq!(reader.read_frame().unwrap(), None, "clean end of stream");
//! # let _: Option<FrameError<()>> = None;
//! ```
//!
//! Header alone:
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

pub mod cobs;
mod decoder;
pub mod ring;
mod stream;

#[cfg(feature = "async")]
pub(crate) use decoder::ReadStep;
pub use decoder::{Decoded, FrameDecoder};
#[cfg(feature = "async")]
pub(crate) use stream::serialize_into;
pub use stream::{FrameReader, FrameWriter};

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

/// Errors of frame readers and writers over a transport whose errors are `E`.
///
/// After [`TooLarge`](FrameError::TooLarge) from a reader, the next read returns the
/// next frame; after [`BadHeader`](FrameError::BadHeader) the stream is out of sync.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FrameError<E> {
    /// The underlying stream or ring failed.
    Io(E),
    /// A frame longer than the maximum. A writer wrote nothing; a reader skips its
    /// payload (without buffering it) and stays in sync.
    TooLarge {
        /// Length of the frame's payload (saturated to `usize::MAX`).
        len: usize,
        /// The maximum payload this side accepts.
        max: usize,
    },
    /// An invalid length header: the stream is out of sync and should be dropped.
    BadHeader(HeaderError),
    /// The stream ended inside a frame (in its header or payload).
    UnexpectedEof,
    /// A message could not be serialized (writers write nothing then).
    Serialize(postcard::Error),
    /// A whole frame was read (and consumed) but is not a valid message of the
    /// requested type.
    Deserialize(postcard::Error),
}

impl<E> From<HeaderError> for FrameError<E> {
    fn from(e: HeaderError) -> Self {
        FrameError::BadHeader(e)
    }
}

impl<E: fmt::Display> fmt::Display for FrameError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "frame transport failed: {e}"),
            FrameError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            FrameError::BadHeader(e) => e.fmt(f),
            FrameError::UnexpectedEof => f.write_str("end of stream inside a frame"),
            FrameError::Serialize(e) => write!(f, "cannot serialize message: {e}"),
            FrameError::Deserialize(e) => write!(f, "frame is not a valid message: {e}"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for FrameError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            FrameError::Io(e) => Some(e),
            FrameError::BadHeader(e) => Some(e),
            FrameError::Serialize(e) | FrameError::Deserialize(e) => Some(e),
            _ => None,
        }
    }
}

/// `u32` frame length as `usize`, saturating on 16-bit targets (where it is
/// larger than any buffer anyway).
#[inline]
pub(crate) fn len_to_usize(len: u32) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

/// Reports a skipped oversized frame through `defmt` / `log` when enabled.
macro_rules! report_too_large {
    ($what:literal, $len:expr, $max:expr) => {{
        let (_len, _max): (usize, usize) = ($len, $max);
        #[cfg(feature = "defmt")]
        defmt::warn!(
            "ringlink: {=str} of {} bytes exceeds max {}: skipped",
            $what,
            _len,
            _max
        );
        #[cfg(feature = "log")]
        log::warn!(
            "ringlink: {} of {} bytes exceeds max {}: skipped",
            $what,
            _len,
            _max
        );
    }};
}
pub(crate) use report_too_large;

/// Reports a malformed input through `defmt` / `log` when enabled.
macro_rules! report_malformed {
    ($what:literal) => {{
        #[cfg(feature = "defmt")]
        defmt::warn!("ringlink: {=str}", $what);
        #[cfg(feature = "log")]
        log::warn!("ringlink: {}", $what);
    }};
}
pub(crate) use report_malformed;

#[cfg(all(test, not(loom)))]
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

/// Encodes `msg` as one whole frame (length header, then its postcard payload) into
/// a fixed-capacity [`heapless::Vec`]: for a queue of outgoing frames, a DMA buffer
/// or a UART driver that wants the frame's bytes in one piece, without a heap.
///
/// `N` bounds the whole frame and must leave room for a [`MAX_HEADER_LEN`] header
/// while encoding; a message that does not fit is [`FrameError::Serialize`].
///
/// ```
/// use ringlink_core::frame::{decode_len, encode_frame};
///
/// let frame = encode_frame::<_, 32>(&(7u8, "seven")).unwrap();
/// let (len, header) = decode_len(&frame).unwrap().unwrap();
/// assert_eq!(header + len as usize, frame.len());
/// let msg: (u8, &str) = postcard::from_bytes(&frame[header..]).unwrap();
/// assert_eq!(msg, (7, "seven"));
/// ```
pub fn encode_frame<T: serde::Serialize + ?Sized, const N: usize>(
    msg: &T,
) -> Result<heapless::Vec<u8, N>, FrameError<core::convert::Infallible>> {
    let mut buf = heapless::Vec::<u8, N>::new();
    if N <= MAX_HEADER_LEN || buf.resize(N, 0).is_err() {
        return Err(FrameError::TooLarge { len: 0, max: N });
    }
    // Serialize behind room for the longest header, then slide the payload down
    // to sit right after the actual header.
    let len = postcard::to_slice(msg, &mut buf[MAX_HEADER_LEN..])
        .map_err(FrameError::Serialize)?
        .len();
    let mut header = [0u8; MAX_HEADER_LEN];
    // `len < N <= u32::MAX` on every target this builds for: `N` is an array length
    // that fits in memory, and frame lengths are `u32` by protocol.
    let h = encode_len(u32::try_from(len).unwrap_or(u32::MAX), &mut header);
    buf.copy_within(MAX_HEADER_LEN..MAX_HEADER_LEN + len, h);
    buf[..h].copy_from_slice(&header[..h]);
    buf.truncate(h + len);
    Ok(buf)
}

#[cfg(test)]
mod encode_frame_tests {
    use super::*;

    #[test]
    fn frames_fit_exactly_and_decode() {
        let frame = encode_frame::<_, 300>(&[9u8; 200][..]).unwrap();
        // postcard: varint length 200 (2 bytes) + 200 bytes; frame header: 2 bytes.
        assert_eq!(frame.len(), 2 + 2 + 200);
        assert_eq!(decode_len(&frame).unwrap(), Some((202, 2)));
        let back: &[u8] = postcard::from_bytes(&frame[2..]).unwrap();
        assert_eq!(back, &[9u8; 200][..]);
    }

    #[test]
    fn too_small_buffers_are_errors() {
        assert!(matches!(
            encode_frame::<_, 8>(&[1u8; 20][..]),
            Err(FrameError::Serialize(_))
        ));
        assert!(matches!(
            encode_frame::<_, 4>(&0u8),
            Err(FrameError::TooLarge { .. })
        ));
    }
}
