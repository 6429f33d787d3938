//! Sans-IO incremental frame decoder: push bytes in, get whole frames out.
//!
//! [`FrameDecoder`] is the one state machine behind every length-prefixed frame
//! reader of ringlink-core; it is public for non-blocking and async hosts that
//! receive bytes in arbitrary chunks.
//!
//! ```
//! use ringlink_core::frame::{Decoded, FrameDecoder};
//!
//! let mut decoder = FrameDecoder::<16>::new();
//! let wire = [2, b'h', b'i', 1, b'!'];
//! let mut frames = 0;
//! // Bytes may arrive in any chunking.
//! for chunk in wire.chunks(2) {
//!     let mut input = chunk;
//!     loop {
//!         match decoder.feed(input) {
//!             Decoded::NeedMore => break,
//!             Decoded::Frame { payload, rest } => {
//!                 assert!(payload == b"hi" || payload == b"!");
//!                 frames += 1;
//!                 input = rest;
//!             }
//!             Decoded::TooLarge { rest, .. } => input = rest,
//!             Decoded::BadHeader { .. } => unreachable!("valid input"),
//!         }
//!     }
//! }
//! assert_eq!(frames, 2);
//! ```

use super::{
    FrameError, HeaderError, MAX_HEADER_LEN, decode_len, len_to_usize, report_malformed,
    report_too_large,
};

/// Where the decoder is inside the current frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Collecting the length header: `len` bytes of it so far.
    Header {
        bytes: [u8; MAX_HEADER_LEN],
        len: u8,
    },
    /// Collecting a payload of `len <= MAX` bytes, `filled` of them so far.
    Payload { len: usize, filled: usize },
    /// Discarding the payload of an oversized frame: `remaining` bytes to go.
    Skip { remaining: u32 },
}

impl State {
    const IDLE: State = State::Header {
        bytes: [0; MAX_HEADER_LEN],
        len: 0,
    };
}

/// What one header byte did.
pub(super) enum HeaderStep {
    /// The header is not complete yet.
    NeedMore,
    /// A frame of `len` bytes started (`len == 0`: it is already complete).
    Started { len: usize },
    /// An oversized frame was announced; its payload is being skipped.
    TooLarge { len: usize, max: usize },
    /// The header is invalid; the decoder is back at the start of a header.
    Bad(HeaderError),
}

/// What a stream read did ([`FrameDecoder::read_done`]).
pub(crate) enum ReadStep {
    /// The frame is not complete yet: read again.
    More,
    /// A frame of this many bytes is complete (in the decoder's buffer).
    Frame(usize),
    /// The stream ended cleanly, between two frames.
    End,
}

/// The result of [`FrameDecoder::feed`]. Every variant but `NeedMore` hands back
/// the input it did not consume (`rest`): feed it again.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'f, 'i> {
    /// All input was consumed and no frame is complete yet.
    NeedMore,
    /// A whole frame.
    Frame {
        /// The frame's payload (in the decoder's buffer).
        payload: &'f [u8],
        /// Input after the frame.
        rest: &'i [u8],
    },
    /// A frame longer than `MAX` was announced. Its payload is skipped by the
    /// following calls (it is never buffered); the frame after it decodes normally.
    TooLarge {
        /// Announced payload length (saturated to `usize::MAX`).
        len: usize,
        /// The decoder's `MAX`.
        max: usize,
        /// Input after the header.
        rest: &'i [u8],
    },
    /// An invalid length header. The stream is out of sync: the decoder starts a
    /// new header at the next byte, but the peer should be dropped.
    BadHeader {
        /// What was wrong.
        error: HeaderError,
        /// Input after the offending header bytes.
        rest: &'i [u8],
    },
}

/// Incremental decoder of length-prefixed frames of at most `MAX` payload bytes.
///
/// Holds a `[u8; MAX]` buffer and a few words of state; never allocates, never
/// panics, and never drops a byte without saying so: every byte fed is either
/// part of a frame returned, part of a frame reported as `TooLarge`, part of a
/// header reported as `BadHeader`, or still buffered.
#[derive(Debug, Clone)]
pub struct FrameDecoder<const MAX: usize> {
    buf: [u8; MAX],
    state: State,
}

impl<const MAX: usize> Default for FrameDecoder<MAX> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const MAX: usize> FrameDecoder<MAX> {
    /// An empty decoder, at the start of a frame. Usable in `const` and `static` items.
    pub const fn new() -> Self {
        FrameDecoder {
            buf: [0; MAX],
            state: State::IDLE,
        }
    }

    /// Whether the decoder is between frames (no partial frame buffered, nothing
    /// being skipped).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Header { len: 0, .. })
    }

    /// Forgets any partial frame: the next byte fed starts a header.
    pub fn reset(&mut self) {
        self.state = State::IDLE;
    }

    /// Feeds one header byte (only valid in the `Header` state).
    pub(super) fn push_header_byte(&mut self, byte: u8) -> HeaderStep {
        let State::Header { mut bytes, len } = self.state else {
            return HeaderStep::NeedMore;
        };
        let n = usize::from(len);
        // `n < MAX_HEADER_LEN`: `decode_len` decides within MAX_HEADER_LEN bytes,
        // so the state never holds a full header.
        let Some(slot) = bytes.get_mut(n) else {
            self.state = State::IDLE;
            return HeaderStep::Bad(HeaderError::Overlong);
        };
        *slot = byte;
        let header = bytes.get(..n + 1).unwrap_or(&[]);
        match decode_len(header) {
            Ok(None) => {
                self.state = State::Header {
                    bytes,
                    len: len + 1,
                };
                HeaderStep::NeedMore
            }
            Ok(Some((frame_len, _))) => self.start_frame(frame_len),
            Err(error) => {
                self.state = State::IDLE;
                report_malformed!("invalid frame length header");
                HeaderStep::Bad(error)
            }
        }
    }

    /// Starts a frame whose header announced `frame_len` bytes.
    pub(super) fn start_frame(&mut self, frame_len: u32) -> HeaderStep {
        let len = len_to_usize(frame_len);
        if len > MAX {
            report_too_large!("frame", len, MAX);
            self.state = if frame_len == 0 {
                State::IDLE
            } else {
                State::Skip {
                    remaining: frame_len,
                }
            };
            return HeaderStep::TooLarge { len, max: MAX };
        }
        self.state = if len == 0 {
            State::IDLE
        } else {
            State::Payload { len, filled: 0 }
        };
        HeaderStep::Started { len }
    }

    /// The unfilled part of the current payload (empty outside the `Payload` state).
    pub(super) fn payload_spare(&mut self) -> &mut [u8] {
        match self.state {
            State::Payload { len, filled } => self.buf.get_mut(filled..len).unwrap_or(&mut []),
            _ => &mut [],
        }
    }

    /// Records `n` bytes written into [`payload_spare`](Self::payload_spare);
    /// returns the payload length once the frame is complete.
    pub(super) fn payload_advance(&mut self, n: usize) -> Option<usize> {
        if let State::Payload { len, filled } = self.state {
            let filled = filled.saturating_add(n).min(len);
            if filled == len {
                self.state = State::IDLE;
                return Some(len);
            }
            self.state = State::Payload { len, filled };
        }
        None
    }

    /// Records `n` skipped bytes of an oversized frame.
    pub(super) fn skip_advance(&mut self, n: usize) {
        if let State::Skip { remaining } = self.state {
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            let remaining = remaining.saturating_sub(n);
            self.state = if remaining == 0 {
                State::IDLE
            } else {
                State::Skip { remaining }
            };
        }
    }

    /// Where a stream reader reads next: one header byte (into `small`), the rest of
    /// the payload, or skipped bytes. Then report with [`read_done`](Self::read_done).
    /// The one read step of the blocking and the async [`FrameReader`](super::FrameReader).
    pub(crate) fn read_target<'b>(&'b mut self, small: &'b mut [u8; 16]) -> &'b mut [u8] {
        match self.state {
            State::Header { .. } => &mut small[..1],
            State::Payload { .. } => self.payload_spare(),
            State::Skip { remaining } => {
                let scratch: &mut [u8] = if MAX >= small.len() {
                    &mut self.buf
                } else {
                    &mut small[..]
                };
                let want = len_to_usize(remaining).min(scratch.len());
                scratch.get_mut(..want).unwrap_or(&mut [])
            }
        }
    }

    /// Records a read of `n` bytes into [`read_target`](Self::read_target) (`first`:
    /// the first byte read, for a header byte); `n == 0` is the end of the stream.
    pub(crate) fn read_done<E>(&mut self, n: usize, first: u8) -> Result<ReadStep, FrameError<E>> {
        match self.state {
            State::Header { len, .. } if n == 0 => {
                if len == 0 {
                    Ok(ReadStep::End)
                } else {
                    Err(FrameError::UnexpectedEof)
                }
            }
            State::Header { .. } => match self.push_header_byte(first) {
                HeaderStep::NeedMore | HeaderStep::Started { len: 1.. } => Ok(ReadStep::More),
                HeaderStep::Started { len: 0 } => Ok(ReadStep::Frame(0)),
                HeaderStep::TooLarge { len, max } => Err(FrameError::TooLarge { len, max }),
                HeaderStep::Bad(e) => Err(FrameError::BadHeader(e)),
            },
            _ if n == 0 => Err(FrameError::UnexpectedEof),
            State::Payload { .. } => Ok(self
                .payload_advance(n)
                .map_or(ReadStep::More, ReadStep::Frame)),
            State::Skip { .. } => {
                self.skip_advance(n);
                Ok(ReadStep::More)
            }
        }
    }

    /// The first `len` bytes of the buffer: a payload just completed.
    pub(crate) fn payload(&self, len: usize) -> &[u8] {
        self.buf.get(..len).unwrap_or(&[])
    }

    /// Feeds bytes; returns at the first event (a frame, an oversized frame, a bad
    /// header) with the input it did not consume, or [`Decoded::NeedMore`] once
    /// all input is consumed.
    pub fn feed<'f, 'i>(&'f mut self, input: &'i [u8]) -> Decoded<'f, 'i> {
        let mut input = input;
        loop {
            match self.state {
                State::Header { len: 0, .. } if !input.is_empty() => {
                    // Fast path: a whole header in the input.
                    match decode_len(input) {
                        Ok(Some((frame_len, used))) => {
                            input = input.get(used..).unwrap_or(&[]);
                            match self.start_frame(frame_len) {
                                HeaderStep::Started { len: 0 } => {
                                    return Decoded::Frame {
                                        payload: &[],
                                        rest: input,
                                    };
                                }
                                HeaderStep::TooLarge { len, max } => {
                                    return Decoded::TooLarge {
                                        len,
                                        max,
                                        rest: input,
                                    };
                                }
                                _ => {}
                            }
                        }
                        // Incomplete (or invalid): go byte by byte for exact accounting.
                        Ok(None) | Err(_) => {
                            if let Some(d) = self.feed_header_byte(&mut input) {
                                return d;
                            }
                        }
                    }
                }
                State::Header { .. } => {
                    if input.is_empty() {
                        return Decoded::NeedMore;
                    }
                    if let Some(d) = self.feed_header_byte(&mut input) {
                        return d;
                    }
                }
                State::Payload { .. } => {
                    let spare = self.payload_spare();
                    let take = spare.len().min(input.len());
                    let (now, later) = input.split_at(take);
                    if let Some(dst) = spare.get_mut(..take) {
                        dst.copy_from_slice(now);
                    }
                    input = later;
                    match self.payload_advance(take) {
                        Some(len) => {
                            return Decoded::Frame {
                                payload: self.payload(len),
                                rest: input,
                            };
                        }
                        None => return Decoded::NeedMore,
                    }
                }
                State::Skip { remaining } => {
                    let take = len_to_usize(remaining).min(input.len());
                    input = input.get(take..).unwrap_or(&[]);
                    self.skip_advance(take);
                    if input.is_empty() {
                        return Decoded::NeedMore;
                    }
                }
            }
        }
    }

    /// Feeds the first byte of `input` as a header byte; `Some` when that ends in an event.
    fn feed_header_byte<'i>(&mut self, input: &mut &'i [u8]) -> Option<Decoded<'static, 'i>> {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        match self.push_header_byte(byte) {
            HeaderStep::NeedMore | HeaderStep::Started { len: 1.. } => None,
            HeaderStep::Started { len: 0 } => Some(Decoded::Frame { payload: &[], rest }),
            HeaderStep::TooLarge { len, max } => Some(Decoded::TooLarge { len, max, rest }),
            HeaderStep::Bad(error) => Some(Decoded::BadHeader { error, rest }),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::frame::encode_len;

    fn frame(payload: &[u8]) -> std::vec::Vec<u8> {
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = encode_len(payload.len() as u32, &mut h);
        let mut v = h[..n].to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_back_to_back_frames_in_one_feed() {
        let mut wire = frame(b"abc");
        wire.extend(frame(b""));
        wire.extend(frame(&[7; 200]));
        let mut d = FrameDecoder::<256>::new();
        let Decoded::Frame { payload, rest } = d.feed(&wire) else {
            panic!("first frame")
        };
        assert_eq!(payload, b"abc");
        let Decoded::Frame { payload, rest } = d.feed(rest) else {
            panic!("empty frame")
        };
        assert!(payload.is_empty());
        let Decoded::Frame { payload, rest } = d.feed(rest) else {
            panic!("long frame")
        };
        assert_eq!(payload, &[7; 200][..]);
        assert!(rest.is_empty());
        assert!(d.is_idle());
        assert_eq!(d.feed(rest), Decoded::NeedMore);
    }

    #[test]
    fn oversized_frame_is_reported_then_skipped_across_chunks() {
        let mut wire = frame(&[9; 40]);
        wire.extend(frame(b"ok"));
        let mut d = FrameDecoder::<8>::new();
        let mut events = std::vec::Vec::new();
        for chunk in wire.chunks(3) {
            let mut input = chunk;
            loop {
                match d.feed(input) {
                    Decoded::NeedMore => break,
                    Decoded::Frame { payload, rest } => {
                        events.push(std::format!("frame {payload:?}"));
                        input = rest;
                    }
                    Decoded::TooLarge { len, max, rest } => {
                        events.push(std::format!("too large {len} {max}"));
                        input = rest;
                    }
                    Decoded::BadHeader { error, .. } => panic!("{error}"),
                }
            }
        }
        assert_eq!(events, ["too large 40 8", "frame [111, 107]"]);
    }

    #[test]
    fn bad_header_consumes_exactly_the_offending_bytes() {
        let wire = [0x80, 0x00, 0x01, 0x55];
        let mut d = FrameDecoder::<8>::new();
        let Decoded::BadHeader { error, rest } = d.feed(&wire) else {
            panic!("bad header")
        };
        assert_eq!(error, HeaderError::NonCanonical);
        assert_eq!(rest, &[0x01, 0x55]);
        let Decoded::Frame { payload, .. } = d.feed(rest) else {
            panic!("frame after")
        };
        assert_eq!(payload, &[0x55]);

        let overlong = [0xFF; 7];
        let Decoded::BadHeader { error, rest } = d.feed(&overlong) else {
            panic!("overlong")
        };
        assert_eq!(error, HeaderError::Overlong);
        assert_eq!(rest.len(), 2);
    }

    #[test]
    fn zero_max_decoder_accepts_only_empty_frames() {
        let mut d = FrameDecoder::<0>::new();
        assert!(matches!(d.feed(&[0]), Decoded::Frame { payload: &[], .. }));
        assert!(matches!(
            d.feed(&[1, 5, 0]),
            Decoded::TooLarge {
                len: 1,
                max: 0,
                rest: &[5, 0]
            }
        ));
        assert!(matches!(
            d.feed(&[5, 0]),
            Decoded::Frame { payload: &[], .. }
        ));
    }
}
