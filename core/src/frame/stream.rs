//! [`FrameWriter`] and [`FrameReader`]: length-prefixed frames over any
//! `embedded_io` byte stream, with typed messages through postcard.
//!
//! ```
//! use ringlink_core::channel::Channel;
//! use ringlink_core::frame::{FrameReader, FrameWriter};
//!
//! let mut channel = Channel::<64>::new();
//! let (a, b) = channel.split();
//! let mut tx = FrameWriter::<_, 32>::new(a);
//! let mut rx = FrameReader::<_, 32>::new(b);
//! tx.send(&("temperature", 21i16)).unwrap();
//! let (name, value): (&str, i16) = rx.recv().unwrap().unwrap();
//! assert_eq!((name, value), ("temperature", 21));
//! ```

use embedded_io::{Read, Write};
use serde::{Deserialize, Serialize};

use super::decoder::{FrameDecoder, ReadStep};
use super::{FrameError, MAX_HEADER_LEN, encode_len};

/// Writes frames of at most `MAX` payload bytes to an `embedded_io` stream.
///
/// A frame is written with two `write_all` calls (header, payload). If the stream
/// fails half-way, a partial frame may be on the wire: the stream is then out of
/// sync and should be dropped.
#[derive(Debug)]
pub struct FrameWriter<W, const MAX: usize> {
    writer: W,
}

impl<W: Write, const MAX: usize> FrameWriter<W, MAX> {
    /// Wraps a stream.
    pub const fn new(writer: W) -> Self {
        FrameWriter { writer }
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// Unwraps the underlying stream.
    pub fn into_inner(self) -> W {
        self.writer
    }

    /// Writes one frame. A payload longer than `MAX` is refused with
    /// [`FrameError::TooLarge`] and nothing is written.
    pub fn write_frame(&mut self, payload: &[u8]) -> Result<(), FrameError<W::Error>> {
        let len = match u32::try_from(payload.len()) {
            Ok(len) if payload.len() <= MAX => len,
            _ => {
                return Err(FrameError::TooLarge {
                    len: payload.len(),
                    max: MAX,
                });
            }
        };
        let mut header = [0u8; MAX_HEADER_LEN];
        let n = encode_len(len, &mut header);
        self.writer
            .write_all(header.get(..n).unwrap_or(&[]))
            .map_err(FrameError::Io)?;
        self.writer.write_all(payload).map_err(FrameError::Io)
    }

    /// Serializes `msg` with postcard and writes it as one frame.
    ///
    /// Serializes into a `[u8; MAX]` on the stack first; a message longer than
    /// `MAX` is refused with [`FrameError::TooLarge`] and nothing is written.
    pub fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<(), FrameError<W::Error>> {
        let mut buf = [0u8; MAX];
        let used = serialize_into(msg, &mut buf)?.len();
        self.write_frame(buf.get(..used).unwrap_or(&[]))
    }

    /// Flushes the underlying stream.
    pub fn flush(&mut self) -> Result<(), FrameError<W::Error>> {
        self.writer.flush().map_err(FrameError::Io)
    }
}

/// Serializes `msg` into `buf`; a message that does not fit is `TooLarge` with its size.
pub(crate) fn serialize_into<'b, T: Serialize + ?Sized, E>(
    msg: &T,
    buf: &'b mut [u8],
) -> Result<&'b mut [u8], FrameError<E>> {
    let max = buf.len();
    match postcard::to_slice(msg, buf) {
        Ok(used) => Ok(used),
        Err(postcard::Error::SerializeBufferFull) => {
            Err(match postcard::experimental::serialized_size(msg) {
                Ok(len) => FrameError::TooLarge { len, max },
                Err(e) => FrameError::Serialize(e),
            })
        }
        Err(e) => Err(FrameError::Serialize(e)),
    }
}

/// Reads frames of at most `MAX` payload bytes from an `embedded_io` stream into
/// its own `[u8; MAX]` buffer.
///
/// It never reads past the end of the frame it returns (headers are read a byte at
/// a time, payloads in one `read` per chunk the stream delivers), so the stream can
/// be taken back with [`into_inner`](Self::into_inner) between frames and used raw.
///
/// It keeps its place across errors: if the stream fails with an error the caller
/// treats as transient (a timeout, `WouldBlock` from a non-blocking `std` stream),
/// the next [`read_frame`](Self::read_frame) continues the same frame.
#[derive(Debug)]
pub struct FrameReader<R, const MAX: usize> {
    reader: R,
    decoder: FrameDecoder<MAX>,
}

impl<R: Read, const MAX: usize> FrameReader<R, MAX> {
    /// Wraps a stream.
    pub const fn new(reader: R) -> Self {
        FrameReader {
            reader,
            decoder: FrameDecoder::new(),
        }
    }

    /// The underlying stream. Reading from it directly while a frame is half-read
    /// desynchronizes the reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Whether the reader is between frames.
    pub fn is_idle(&self) -> bool {
        self.decoder.is_idle()
    }

    /// Unwraps the underlying stream (a half-read frame is lost).
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// Reads the next frame.
    ///
    /// - `Ok(Some(payload))`: a whole frame.
    /// - `Ok(None)`: the stream ended cleanly, between two frames.
    /// - `Err(FrameError::TooLarge { .. })`: a frame above `MAX`; its payload is
    ///   skipped by the next call, which returns the frame after it.
    /// - `Err(FrameError::UnexpectedEof)`: the stream ended inside a frame.
    /// - `Err(FrameError::BadHeader(_))`: the stream is out of sync; drop it.
    /// - `Err(FrameError::Io(_))`: the stream failed; the reader keeps its place.
    pub fn read_frame(&mut self) -> Result<Option<&[u8]>, FrameError<R::Error>> {
        match self.read_frame_len()? {
            Some(len) => Ok(Some(self.decoder.payload(len))),
            None => Ok(None),
        }
    }

    /// Reads the next frame and deserializes it with postcard (borrowing from the
    /// reader's buffer, so `&str` and `&[u8]` fields work). Bytes after the message
    /// inside the frame are ignored, as `postcard::from_bytes` does.
    ///
    /// Same outcomes as [`read_frame`](Self::read_frame), plus
    /// [`FrameError::Deserialize`] when the frame is not a `T` (the frame is consumed).
    pub fn recv<'de, T: Deserialize<'de>>(
        &'de mut self,
    ) -> Result<Option<T>, FrameError<R::Error>> {
        match self.read_frame()? {
            Some(payload) => postcard::from_bytes(payload)
                .map(Some)
                .map_err(FrameError::Deserialize),
            None => Ok(None),
        }
    }

    /// Drives the decoder until a frame is complete; returns its length.
    fn read_frame_len(&mut self) -> Result<Option<usize>, FrameError<R::Error>> {
        loop {
            let mut small = [0u8; 16];
            let target = self.decoder.read_target(&mut small);
            let n = self.reader.read(target).map_err(FrameError::Io)?;
            match self.decoder.read_done(n, small[0])? {
                ReadStep::More => {}
                ReadStep::Frame(len) => return Ok(Some(len)),
                ReadStep::End => return Ok(None),
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use core::convert::Infallible;
    use std::vec::Vec;

    /// An embedded-io writer into a `Vec` (embedded-io's own needs its `alloc` feature).
    struct VecWriter(Vec<u8>);
    impl embedded_io::ErrorType for VecWriter {
        type Error = Infallible;
    }
    impl Write for VecWriter {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Infallible> {
            Ok(())
        }
    }

    /// A reader that hands out at most `chunk` bytes per call and fails every
    /// `fail_every`-th call with a transient error.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
        calls: usize,
        fail_every: usize,
    }
    impl embedded_io::ErrorType for Trickle<'_> {
        type Error = embedded_io::ErrorKind;
    }
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, embedded_io::ErrorKind> {
            self.calls += 1;
            if self.fail_every != 0 && self.calls % self.fail_every == 0 {
                return Err(embedded_io::ErrorKind::TimedOut);
            }
            let n = buf.len().min(self.chunk).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn round_trip_and_clean_eof() {
        let mut w = FrameWriter::<_, 300>::new(VecWriter(Vec::new()));
        w.write_frame(b"one").unwrap();
        w.write_frame(b"").unwrap();
        w.write_frame(&[5; 300]).unwrap();
        let wire = w.into_inner().0;
        let mut r = FrameReader::<_, 300>::new(&wire[..]);
        assert_eq!(r.read_frame().unwrap(), Some(&b"one"[..]));
        assert_eq!(r.read_frame().unwrap(), Some(&b""[..]));
        assert_eq!(r.read_frame().unwrap(), Some(&[5; 300][..]));
        assert_eq!(r.read_frame().unwrap(), None);
        assert_eq!(r.read_frame().unwrap(), None, "stays at end");
    }

    #[test]
    fn writer_refuses_oversized_payload_without_writing() {
        let mut w = FrameWriter::<_, 4>::new(VecWriter(Vec::new()));
        assert_eq!(
            w.write_frame(b"12345"),
            Err(FrameError::TooLarge { len: 5, max: 4 })
        );
        assert_eq!(w.send(&[1u32; 3]), Ok(()), "3 one-byte varints fit");
        assert!(matches!(
            w.send(&[0xFFFF_FFFFu32; 3]),
            Err(FrameError::TooLarge { len: 15, max: 4 })
        ));
        assert!(w.into_inner().0.len() == 4, "only the message that fit");
    }

    #[test]
    fn oversized_frame_is_skipped_and_the_next_one_read() {
        let mut w = FrameWriter::<_, 1000>::new(VecWriter(Vec::new()));
        w.write_frame(&[1; 1000]).unwrap();
        w.write_frame(b"next").unwrap();
        let wire = w.into_inner().0;
        for max_small in [false, true] {
            let mut trickle = Trickle {
                data: &wire,
                chunk: 7,
                calls: 0,
                fail_every: 0,
            };
            let got: Vec<u8> = if max_small {
                let mut r = FrameReader::<_, 4>::new(&mut trickle);
                assert_eq!(
                    r.read_frame(),
                    Err(FrameError::TooLarge { len: 1000, max: 4 })
                );
                r.read_frame().unwrap().unwrap().to_vec()
            } else {
                let mut r = FrameReader::<_, 100>::new(&mut trickle);
                assert_eq!(
                    r.read_frame(),
                    Err(FrameError::TooLarge {
                        len: 1000,
                        max: 100
                    })
                );
                r.read_frame().unwrap().unwrap().to_vec()
            };
            assert_eq!(got, b"next");
        }
    }

    #[test]
    fn eof_inside_header_or_payload_is_unexpected() {
        let wire = [5u8, 1, 2];
        let mut r = FrameReader::<_, 8>::new(&wire[..]);
        assert_eq!(r.read_frame(), Err(FrameError::UnexpectedEof));
        let wire = [0x85u8];
        let mut r = FrameReader::<_, 8>::new(&wire[..]);
        assert_eq!(r.read_frame(), Err(FrameError::UnexpectedEof));
        let wire = [50u8, 1, 2];
        let mut r = FrameReader::<_, 8>::new(&wire[..]);
        assert_eq!(
            r.read_frame(),
            Err(FrameError::TooLarge { len: 50, max: 8 })
        );
        assert_eq!(
            r.read_frame(),
            Err(FrameError::UnexpectedEof),
            "inside the skip"
        );
    }

    #[test]
    fn transient_errors_keep_the_readers_place() {
        let mut w = FrameWriter::<_, 64>::new(VecWriter(Vec::new()));
        for i in 0..20u8 {
            w.write_frame(&[i; 40]).unwrap();
        }
        let wire = w.into_inner().0;
        let mut r = FrameReader::<_, 64>::new(Trickle {
            data: &wire,
            chunk: 3,
            calls: 0,
            fail_every: 4,
        });
        let mut next = 0u8;
        let mut errors = 0;
        loop {
            match r.read_frame() {
                Ok(Some(p)) => {
                    assert_eq!(p, &[next; 40][..]);
                    next += 1;
                }
                Ok(None) => break,
                Err(FrameError::Io(_)) => errors += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(next, 20);
        assert!(errors > 50);
    }

    #[test]
    fn typed_messages_borrow_from_the_buffer_and_report_bad_payloads() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Reading<'a> {
            sensor: &'a str,
            value: i32,
        }
        let mut w = FrameWriter::<_, 32>::new(VecWriter(Vec::new()));
        w.send(&Reading {
            sensor: "t0",
            value: -4,
        })
        .unwrap();
        w.write_frame(&[0xFF]).unwrap();
        let wire = w.into_inner().0;
        let mut r = FrameReader::<_, 32>::new(&wire[..]);
        assert_eq!(
            r.recv::<Reading<'_>>().unwrap(),
            Some(Reading {
                sensor: "t0",
                value: -4
            })
        );
        assert!(matches!(
            r.recv::<Reading<'_>>(),
            Err(FrameError::Deserialize(_))
        ));
        assert_eq!(r.recv::<Reading<'_>>().unwrap(), None);
    }
}
