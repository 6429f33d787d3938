//! COBS frames for byte links that can lose or corrupt bytes (a UART).
//!
//! Each frame is the payload in Consistent Overhead Byte Stuffing (no zero bytes,
//! at most one extra byte per 254) followed by a `0` delimiter. A receiver that
//! lost bytes or started mid-stream resynchronises at the next `0`: the frame
//! around the damage is reported as an error (or, rarely, decodes into something
//! else: add a checksum to the payload if that matters), and the next one decodes
//! normally. A lone `0` is a frame boundary, not a frame: a sender may send one to
//! flush a receiver's partial frame.
//!
//! The encoding is the one of postcard's `to_slice_cobs` / `CobsAccumulator`, so
//! both sides can mix them.
//!
//! ```
//! use ringlink_core::frame::cobs::{CobsDecoder, CobsFeed, CobsWriter};
//!
//! let mut wire = [0u8; 64];
//! let mut tx = CobsWriter::<_, 16>::new(&mut wire[..]);
//! tx.write_frame(&[1, 0, 2]).unwrap();
//! tx.send(&(true, 300u16)).unwrap();
//! let used = 64 - tx.into_inner().len();
//!
//! // Garbage in front (a receiver that joined mid-frame) costs one error.
//! let mut input = [0x41, 0x42, 0x00].iter().chain(&wire[..used]).copied().collect::<Vec<u8>>();
//! let mut decoder = CobsDecoder::<16>::new();
//! let mut rest = &input[..];
//! let mut frames = Vec::new();
//! loop {
//!     match decoder.feed(rest) {
//!         CobsFeed::NeedMore => break,
//!         CobsFeed::Frame { payload, rest: r } => { frames.push(payload.to_vec()); rest = r }
//!         CobsFeed::Error { rest: r, .. } => rest = r,
//!     }
//! }
//! assert_eq!(frames[0], [1, 0, 2]);
//! assert_eq!(postcard::from_bytes::<(bool, u16)>(&frames[1]).unwrap(), (true, 300));
//! ```

use core::fmt;

use embedded_io::Write;
use serde::Serialize;

use super::{FrameError, report_malformed, report_too_large};

/// The frame delimiter.
pub const DELIMITER: u8 = 0;

/// Largest encoded size of a `len`-byte payload, delimiter included.
pub const fn max_encoded_len(len: usize) -> usize {
    len + len / 254 + 2
}

/// Why a COBS frame was rejected. The decoder is resynchronised at the next delimiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CobsError {
    /// The frame decodes to more than `max` bytes; the rest of it, up to the next
    /// delimiter, is discarded.
    TooLarge {
        /// The decoder's maximum payload.
        max: usize,
    },
    /// A delimiter arrived in the middle of a COBS block: bytes were lost or the
    /// receiver started mid-frame.
    Truncated,
}

impl fmt::Display for CobsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CobsError::TooLarge { max } => {
                write!(f, "COBS frame exceeds the maximum of {max} bytes")
            }
            CobsError::Truncated => f.write_str("COBS frame truncated (bytes lost)"),
        }
    }
}

impl core::error::Error for CobsError {}

/// Encodes `payload` and its delimiter into `out`; returns the bytes used, or
/// `None` when `out` is too small ([`max_encoded_len`] is always enough).
pub fn encode(payload: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut at = 0;
    let mut put = |bytes: &[u8]| -> Option<()> {
        let end = at + bytes.len();
        out.get_mut(at..end)?.copy_from_slice(bytes);
        at = end;
        Some(())
    };
    for_each_block(payload, |code, block| {
        put(&[code])?;
        put(block)
    })?;
    put(&[DELIMITER])?;
    Some(at)
}

/// Calls `emit(code, block)` for each COBS block of `payload`, stopping at the first `None`/`Err`.
fn for_each_block(payload: &[u8], mut emit: impl FnMut(u8, &[u8]) -> Option<()>) -> Option<()> {
    let mut rest = payload;
    loop {
        let window = rest.get(..rest.len().min(254)).unwrap_or(rest);
        let run = window.iter().position(|&b| b == 0).unwrap_or(window.len());
        let (block, after) = rest.split_at(run);
        // `run <= 254`, so the code fits in a byte.
        emit(run as u8 + 1, block)?;
        match after.split_first() {
            // A zero ends this block (implied by a code below 0xFF).
            Some((0, tail)) => {
                rest = tail;
                if rest.is_empty() {
                    // A final zero needs an empty block after it.
                    emit(1, &[])?;
                    return Some(());
                }
            }
            // A full 254-byte block: no implied zero.
            Some(_) => rest = after,
            None => return Some(()),
        }
    }
}

/// Writes COBS frames of at most `MAX` payload bytes to an `embedded_io` stream,
/// encoding on the fly (no buffer for raw payloads).
#[derive(Debug)]
pub struct CobsWriter<W, const MAX: usize> {
    writer: W,
}

impl<W: Write, const MAX: usize> CobsWriter<W, MAX> {
    /// Wraps a stream.
    pub const fn new(writer: W) -> Self {
        CobsWriter { writer }
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// Unwraps the underlying stream.
    pub fn into_inner(self) -> W {
        self.writer
    }

    /// Encodes and writes one frame; a payload above `MAX` is refused, nothing written.
    pub fn write_frame(&mut self, payload: &[u8]) -> Result<(), FrameError<W::Error>> {
        if payload.len() > MAX {
            return Err(FrameError::TooLarge {
                len: payload.len(),
                max: MAX,
            });
        }
        let mut failed = None;
        for_each_block(payload, |code, block| {
            let r = self
                .writer
                .write_all(&[code])
                .and_then(|()| self.writer.write_all(block));
            match r {
                Ok(()) => Some(()),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            }
        });
        if let Some(e) = failed {
            return Err(FrameError::Io(e));
        }
        self.writer.write_all(&[DELIMITER]).map_err(FrameError::Io)
    }

    /// Writes a lone delimiter: the receiver drops any partial frame it holds.
    pub fn resync(&mut self) -> Result<(), FrameError<W::Error>> {
        self.writer.write_all(&[DELIMITER]).map_err(FrameError::Io)
    }

    /// Serializes `msg` with postcard (into a `[u8; MAX]` on the stack) and writes it as one frame.
    pub fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<(), FrameError<W::Error>> {
        let mut buf = [0u8; MAX];
        let used = super::stream::serialize_into(msg, &mut buf)?.len();
        self.write_frame(buf.get(..used).unwrap_or(&[]))
    }
}

/// Decoder state between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing of a frame received yet.
    Idle,
    /// Inside a frame: `remaining` data bytes of the current block to go; the
    /// block's code was `code`.
    Block { remaining: u8, code: u8 },
    /// Discarding an oversized frame up to the next delimiter.
    Discard,
}

/// The result of [`CobsDecoder::feed`]; every variant but `NeedMore` hands back the
/// input it did not consume (`rest`): feed it again.
#[derive(Debug, PartialEq, Eq)]
pub enum CobsFeed<'f, 'i> {
    /// All input consumed, no frame complete yet.
    NeedMore,
    /// A whole frame.
    Frame {
        /// The decoded payload (in the decoder's buffer).
        payload: &'f [u8],
        /// Input after the frame's delimiter.
        rest: &'i [u8],
    },
    /// A damaged or oversized frame; decoding resumes at the next delimiter.
    Error {
        /// What was wrong.
        error: CobsError,
        /// Input after the byte that revealed the error.
        rest: &'i [u8],
    },
}

/// Accumulating COBS decoder of frames of at most `MAX` decoded bytes.
///
/// Decodes as bytes arrive into a `[u8; MAX]`; never allocates or panics, and
/// accounts for every byte: each one ends up in a frame returned, in a frame
/// reported as an error, as a lone delimiter, or still buffered.
#[derive(Debug, Clone)]
pub struct CobsDecoder<const MAX: usize> {
    buf: [u8; MAX],
    len: usize,
    state: State,
}

impl<const MAX: usize> Default for CobsDecoder<MAX> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const MAX: usize> CobsDecoder<MAX> {
    /// An empty decoder. Usable in `const` and `static` items.
    pub const fn new() -> Self {
        CobsDecoder {
            buf: [0; MAX],
            len: 0,
            state: State::Idle,
        }
    }

    /// Whether no partial frame is buffered.
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    /// Drops any partial frame.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.len = 0;
    }

    fn push(&mut self, byte: u8) -> bool {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = byte;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    fn too_large<'i>(&mut self, rest: &'i [u8]) -> CobsFeed<'static, 'i> {
        report_too_large!("COBS frame", self.len.saturating_add(1), MAX);
        self.state = State::Discard;
        self.len = 0;
        CobsFeed::Error {
            error: CobsError::TooLarge { max: MAX },
            rest,
        }
    }

    /// Feeds bytes; returns at the first frame or error with the input it did not
    /// consume, or [`CobsFeed::NeedMore`] once all input is consumed.
    pub fn feed<'f, 'i>(&'f mut self, input: &'i [u8]) -> CobsFeed<'f, 'i> {
        let mut input = input;
        while let Some((&byte, rest)) = input.split_first() {
            input = rest;
            match (self.state, byte) {
                (State::Idle, DELIMITER) => {}
                (State::Discard, DELIMITER) => self.state = State::Idle,
                (State::Discard, _) => {}
                (State::Block { remaining, .. }, DELIMITER) => {
                    self.state = State::Idle;
                    let len = core::mem::take(&mut self.len);
                    if remaining != 0 {
                        report_malformed!("COBS frame truncated");
                        return CobsFeed::Error {
                            error: CobsError::Truncated,
                            rest,
                        };
                    }
                    return CobsFeed::Frame {
                        payload: self.buf.get(..len).unwrap_or(&[]),
                        rest,
                    };
                }
                (State::Idle, code) => {
                    self.len = 0;
                    self.state = State::Block {
                        remaining: code - 1,
                        code,
                    };
                }
                (
                    State::Block {
                        remaining: 0,
                        code: previous,
                    },
                    code,
                ) => {
                    // A new block; the previous one implied a zero unless it was full.
                    if previous != 0xFF && !self.push(0) {
                        return self.too_large(rest);
                    }
                    self.state = State::Block {
                        remaining: code - 1,
                        code,
                    };
                }
                (State::Block { remaining, code }, data) => {
                    if !self.push(data) {
                        return self.too_large(rest);
                    }
                    self.state = State::Block {
                        remaining: remaining - 1,
                        code,
                    };
                }
            }
        }
        CobsFeed::NeedMore
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn enc(payload: &[u8]) -> Vec<u8> {
        let mut out = std::vec![0u8; max_encoded_len(payload.len())];
        let n = encode(payload, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn decode_all<const MAX: usize>(input: &[u8]) -> Vec<Result<Vec<u8>, CobsError>> {
        let mut d = CobsDecoder::<MAX>::new();
        let mut out = Vec::new();
        let mut rest = input;
        loop {
            match d.feed(rest) {
                CobsFeed::NeedMore => return out,
                CobsFeed::Frame { payload, rest: r } => {
                    out.push(Ok(payload.to_vec()));
                    rest = r;
                }
                CobsFeed::Error { error, rest: r } => {
                    out.push(Err(error));
                    rest = r;
                }
            }
        }
    }

    #[test]
    fn known_encodings() {
        assert_eq!(enc(&[]), [1, 0]);
        assert_eq!(enc(&[0]), [1, 1, 0]);
        assert_eq!(enc(&[0, 0]), [1, 1, 1, 0]);
        assert_eq!(enc(&[0x11, 0x22, 0x00, 0x33]), [3, 0x11, 0x22, 2, 0x33, 0]);
        assert_eq!(enc(&[0x11, 0x00]), [2, 0x11, 1, 0]);
        let run: Vec<u8> = (1..=254).collect();
        let mut expect = std::vec![0xFF];
        expect.extend(&run);
        expect.push(0);
        assert_eq!(enc(&run), expect);
        let run: Vec<u8> = (1..=255).collect();
        let e = enc(&run);
        assert_eq!(&e[..1], &[0xFF]);
        assert_eq!(&e[255..], &[2, 255, 0]);
        assert!(encode(&[1, 2, 3], &mut [0u8; 4]).is_none());
    }

    #[test]
    fn matches_postcard_cobs() {
        let mut buf = [0u8; 64];
        let ours = {
            let mut raw = [0u8; 32];
            let p = postcard::to_slice(&(0u32, [0u8; 3], 7u16), &mut raw).unwrap();
            enc(p)
        };
        let theirs = postcard::to_slice_cobs(&(0u32, [0u8; 3], 7u16), &mut buf).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn round_trips_and_resyncs() {
        for payload in [&[][..], &[0], &[1, 2, 0, 0, 3], &[0xFF; 300]] {
            assert_eq!(decode_all::<400>(&enc(payload)), [Ok(payload.to_vec())]);
        }
        // Lost bytes inside a frame: error at its delimiter, next frame fine.
        let mut wire = enc(&[9; 10]);
        wire.remove(0); // the code byte: the data bytes are read as codes
        wire.extend(enc(b"ok"));
        let got = decode_all::<64>(&wire);
        assert_eq!(got.last(), Some(&Ok(b"ok".to_vec())));
        // Oversized frame: one error, discarded up to its delimiter.
        let mut wire = enc(&[5; 100]);
        wire.extend(enc(b"next"));
        assert_eq!(
            decode_all::<16>(&wire),
            [Err(CobsError::TooLarge { max: 16 }), Ok(b"next".to_vec())]
        );
        // Lone delimiters are boundaries.
        assert_eq!(decode_all::<4>(&[0, 0, 2, 7, 0, 0]), [Ok(std::vec![7])]);
        assert_eq!(decode_all::<4>(&[3, 7, 0]), [Err(CobsError::Truncated)]);
    }

    #[test]
    fn writer_streams_the_same_bytes_as_encode() {
        let payload: Vec<u8> = (0..600u32)
            .map(|i| (i % 7) as u8 * (i % 3 != 0) as u8)
            .collect();
        let mut wire = std::vec![0u8; 700];
        let mut w = CobsWriter::<_, 600>::new(&mut wire[..]);
        w.write_frame(&payload).unwrap();
        let left = w.into_inner().len();
        assert_eq!(&wire[..700 - left], &enc(&payload)[..]);
        let mut w = CobsWriter::<_, 4>::new(&mut wire[..]);
        assert_eq!(
            w.write_frame(&[1; 5]),
            Err(FrameError::TooLarge { len: 5, max: 4 })
        );
    }
}
