//! Async frames: [`FrameWriter`] and [`FrameReader`] over any `embedded_io_async`
//! stream (a ringlink [`Endpoint`](super::Endpoint), a UART driver, a tokio socket
//! through ringlink's host adapters), and [`FrameConsumer`], which awaits whole frames
//! in a ring (from an async [`Producer`](super::Producer) or a
//! [`SharedProducer`](crate::SharedProducer) written by interrupt handlers).
//!
//! Same wire format, same errors and same maximum-size rules as the blocking
//! [`frame`](crate::frame) module: an oversized frame is reported
//! ([`FrameError::TooLarge`]) and skipped, the stream stays in sync.
//!
//! ```
//! # fn block_on<F: core::future::Future>(f: F) -> F::Output {
//! #     let mut f = core::pin::pin!(f);
//! #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
//! #     loop { if let core::task::Poll::Ready(r) = f.as_mut().poll(&mut cx) { return r } }
//! # }
//! use ringlink_core::asynch::{Channel, FrameReader, FrameWriter};
//!
//! let mut channel = Channel::<64>::new();
//! let (a, b) = channel.split();
//! let mut tx = FrameWriter::<_, 32>::new(a);
//! let mut rx = FrameReader::<_, 32>::new(b);
//! block_on(async {
//!     tx.send(&("temperature", 21i16)).await.unwrap();
//!     let (name, value): (&str, i16) = rx.recv().await.unwrap().unwrap();
//!     assert_eq!((name, value), ("temperature", 21));
//! });
//! ```
//!
//! # Cancellation
//!
//! - [`FrameReader`] keeps its place in the decoder after every read it completes;
//!   over a stream whose `read` is cancel-safe (ringlink's endpoints are), a
//!   cancelled `read_frame` loses no byte and the next call continues the frame.
//! - [`FrameWriter`] copies the frame into its own buffer before writing: a
//!   cancelled `write_frame` or `send` leaves the frame queued whole, and the next
//!   `write_frame`, `send` or `flush` finishes it before anything else, so the stream
//!   never carries half a frame followed by something else.
//! - [`FrameConsumer`] takes a frame out of the ring only in the poll that returns it.

use core::future::poll_fn;

use embedded_io_async::{Read, Write};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ring::{Consumer, Waiter, WakePeerOnDrop};
use crate::frame::ring::{FrameConsumer as RingFrameConsumer, Received};
use crate::frame::{
    FrameDecoder, FrameError, MAX_HEADER_LEN, ReadStep, encode_len, serialize_into,
};
use crate::ring::{self, RingError};
use crate::waker::WakerSlot;

/// Writes frames of at most `MAX` payload bytes to an `embedded_io_async` stream.
///
/// Holds a `[u8; MAX]` buffer: the frame being written, so that a cancelled write
/// can be finished (see the [module docs](self)).
#[derive(Debug)]
pub struct FrameWriter<W, const MAX: usize> {
    writer: W,
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    payload: [u8; MAX],
    payload_len: usize,
    /// Bytes of the queued frame (header, then payload) already written.
    sent: usize,
}

impl<W: Write, const MAX: usize> FrameWriter<W, MAX> {
    /// Wraps a stream.
    pub const fn new(writer: W) -> Self {
        FrameWriter {
            writer,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            payload: [0; MAX],
            payload_len: 0,
            sent: 0,
        }
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// Unwraps the underlying stream (a queued, unfinished frame is lost).
    pub fn into_inner(self) -> W {
        self.writer
    }

    /// Whether a frame is queued and not completely written (after a cancelled write).
    pub fn is_pending(&self) -> bool {
        self.sent < self.header_len + self.payload_len
    }

    /// Writes one frame. A payload longer than `MAX` is refused with
    /// [`FrameError::TooLarge`] and nothing is written.
    pub async fn write_frame(&mut self, payload: &[u8]) -> Result<(), FrameError<W::Error>> {
        self.finish().await?;
        let Some(buf) = self.payload.get_mut(..payload.len()) else {
            return Err(FrameError::TooLarge {
                len: payload.len(),
                max: MAX,
            });
        };
        buf.copy_from_slice(payload);
        self.queue(payload.len());
        self.finish().await
    }

    /// Serializes `msg` with postcard and writes it as one frame; a message longer
    /// than `MAX` is refused with [`FrameError::TooLarge`] and nothing is written.
    pub async fn send<T: Serialize + ?Sized>(
        &mut self,
        msg: &T,
    ) -> Result<(), FrameError<W::Error>> {
        self.finish().await?;
        let len = serialize_into(msg, &mut self.payload)?.len();
        self.queue(len);
        self.finish().await
    }

    /// Finishes a queued frame, then flushes the underlying stream.
    pub async fn flush(&mut self) -> Result<(), FrameError<W::Error>> {
        self.finish().await?;
        self.writer.flush().await.map_err(FrameError::Io)
    }

    /// Queues the first `len` bytes of the buffer as the next frame.
    fn queue(&mut self, len: usize) {
        // `len <= MAX`, an array length: it fits in a `u32` frame length on every
        // target this builds for.
        self.header_len = encode_len(u32::try_from(len).unwrap_or(u32::MAX), &mut self.header);
        self.payload_len = len;
        self.sent = 0;
    }

    /// Writes what is left of the queued frame.
    async fn finish(&mut self) -> Result<(), FrameError<W::Error>> {
        while self.is_pending() {
            let rest = match self.sent.checked_sub(self.header_len) {
                None => self.header.get(self.sent..self.header_len),
                Some(at) => self.payload.get(at..self.payload_len),
            };
            let n = self
                .writer
                .write(rest.unwrap_or(&[]))
                .await
                .map_err(FrameError::Io)?;
            if n == 0 {
                // The stream accepts no more bytes: it ended inside the frame.
                return Err(FrameError::UnexpectedEof);
            }
            self.sent += n;
        }
        Ok(())
    }
}

/// Reads frames of at most `MAX` payload bytes from an `embedded_io_async` stream
/// into its own `[u8; MAX]` buffer.
///
/// Like the blocking [`FrameReader`](crate::frame::FrameReader), it never reads past
/// the end of the frame it returns and keeps its place across errors and
/// cancellation.
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

    /// Reads the next frame; the outcomes of the blocking
    /// [`FrameReader::read_frame`](crate::frame::FrameReader::read_frame).
    pub async fn read_frame(&mut self) -> Result<Option<&[u8]>, FrameError<R::Error>> {
        loop {
            let mut small = [0u8; 16];
            let target = self.decoder.read_target(&mut small);
            let n = self.reader.read(target).await.map_err(FrameError::Io)?;
            match self.decoder.read_done(n, small[0])? {
                ReadStep::More => {}
                ReadStep::Frame(len) => return Ok(Some(self.decoder.payload(len))),
                ReadStep::End => return Ok(None),
            }
        }
    }

    /// Reads the next frame and deserializes it with postcard (borrowing from the
    /// reader's buffer); [`FrameError::Deserialize`] when it is not a `T`.
    pub async fn recv<'de, T: Deserialize<'de>>(
        &'de mut self,
    ) -> Result<Option<T>, FrameError<R::Error>> {
        match self.read_frame().await? {
            Some(payload) => postcard::from_bytes(payload)
                .map(Some)
                .map_err(FrameError::Deserialize),
            None => Ok(None),
        }
    }
}

/// Receives whole frames of at most `MAX` payload bytes from an async ring,
/// awaiting them without polling. Zero-copy when a frame lies contiguously in the
/// ring, as the blocking [`FrameConsumer`](crate::frame::ring::FrameConsumer) it wraps.
///
/// Made from an async [`Consumer`]: of an async [`Ring`](super::Ring), or of a
/// [`SharedProducer`](crate::SharedProducer) (see
/// [`take_async_consumer`](crate::SharedProducer::take_async_consumer)).
pub struct FrameConsumer<'a, const MAX: usize> {
    frames: RingFrameConsumer<ring::Consumer<'a>, MAX>,
    waiter: Waiter<'a>,
    space: Option<&'a WakerSlot>,
    /// Declared after `frames`, which holds the ring consumer: see [`WakePeerOnDrop`].
    _wake_on_drop: WakePeerOnDrop<'a>,
}

impl<'a, const MAX: usize> FrameConsumer<'a, MAX> {
    /// Wraps an async consumer.
    pub fn new(consumer: Consumer<'a>) -> Self {
        let Consumer {
            inner,
            waiter,
            space,
            wake_on_drop,
        } = consumer;
        FrameConsumer {
            frames: RingFrameConsumer::new(inner),
            waiter,
            space,
            _wake_on_drop: wake_on_drop,
        }
    }

    /// The blocking frame consumer inside (its receives do not wake a producer that
    /// awaits space).
    pub fn get_mut(&mut self) -> &mut RingFrameConsumer<ring::Consumer<'a>, MAX> {
        &mut self.frames
    }

    /// Awaits the next whole frame and calls `with` on its payload.
    ///
    /// - `Ok(Some(r))`: `r` is what `with` returned; the frame is consumed.
    /// - `Ok(None)`: the producer is gone and every frame was received.
    /// - `Err(_)`: as [`FrameConsumer::recv_with`](crate::frame::ring::FrameConsumer::recv_with)
    ///   (`TooLarge` frames are skipped, the next call continues after them).
    pub async fn recv_with<R, F: FnOnce(&[u8]) -> R>(
        &mut self,
        with: F,
    ) -> Result<Option<R>, FrameError<RingError>> {
        let mut with = Some(with);
        let frames = &mut self.frames;
        let space = self.space;
        let waiter = &mut self.waiter;
        let got = poll_fn(|cx| {
            waiter.poll(cx, || {
                let outcome = frames.recv_with(|payload| with.take().map(|f| f(payload)));
                // Receiving may free space even when no frame is whole yet (a frame
                // larger than the ring streams through the buffer).
                if let Some(space) = space {
                    space.wake();
                }
                match outcome? {
                    Received::Frame(r) => Ok::<_, FrameError<RingError>>(Some(r)),
                    Received::Finished => Ok(Some(None)),
                    Received::Pending => Ok(None),
                }
            })
        })
        .await?;
        Ok(got)
    }

    /// Awaits the next frame and deserializes it with postcard; `Ok(None)` once the
    /// producer is gone and everything was received, [`FrameError::Deserialize`]
    /// when the frame is not a `T` (it is consumed).
    pub async fn recv_msg<T: DeserializeOwned>(
        &mut self,
    ) -> Result<Option<T>, FrameError<RingError>> {
        match self.recv_with(|p| postcard::from_bytes::<T>(p)).await? {
            Some(Ok(msg)) => Ok(Some(msg)),
            Some(Err(e)) => Err(FrameError::Deserialize(e)),
            None => Ok(None),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use crate::asynch::test_support::{CountingWaker, block_on_counted, block_on_parking};
    use crate::asynch::{Channel, Ring};
    use core::pin::pin;
    use core::task::{Context, Poll};

    #[test]
    fn frames_over_async_endpoints_with_oversized_skip() {
        let mut ch = Channel::<16>::new();
        let (a, b) = ch.split();
        let mut tx = FrameWriter::<_, 40>::new(a);
        let mut rx = FrameReader::<_, 8>::new(b);
        std::thread::scope(|s| {
            s.spawn(move || {
                block_on_parking(async {
                    tx.write_frame(b"one").await.unwrap();
                    tx.write_frame(&[0xEE; 30]).await.unwrap(); // too large for the reader
                    tx.send(&(2u8, 3u16)).await.unwrap();
                })
            });
            block_on_parking(async {
                assert_eq!(rx.read_frame().await.unwrap(), Some(&b"one"[..]));
                assert_eq!(
                    rx.read_frame().await,
                    Err(FrameError::TooLarge { len: 30, max: 8 })
                );
                assert_eq!(rx.recv::<(u8, u16)>().await.unwrap(), Some((2, 3)));
                assert_eq!(rx.read_frame().await.unwrap(), None, "clean end");
            });
        });
    }

    #[test]
    fn a_cancelled_frame_write_is_finished_whole_by_the_next_call() {
        let mut ch = Channel::<4>::new();
        let (a, b) = ch.split();
        let mut tx = FrameWriter::<_, 8>::new(a);
        let mut rx = FrameReader::<_, 8>::new(b);
        {
            let mut cx = Context::from_waker(core::task::Waker::noop());
            let mut write = pin!(tx.write_frame(b"abcdef"));
            // Header + 3 bytes fit; the rest waits for space.
            assert!(write.as_mut().poll(&mut cx).is_pending());
        } // cancelled half-way
        assert!(tx.is_pending());
        std::thread::scope(|s| {
            s.spawn(|| {
                block_on_parking(async {
                    tx.write_frame(b"gh").await.unwrap();
                    drop(tx);
                })
            });
            block_on_parking(async {
                assert_eq!(rx.read_frame().await.unwrap(), Some(&b"abcdef"[..]));
                assert_eq!(rx.read_frame().await.unwrap(), Some(&b"gh"[..]));
                assert_eq!(rx.read_frame().await.unwrap(), None);
            });
        });
    }

    #[test]
    fn a_cancelled_frame_read_loses_no_byte() {
        let mut ch = Channel::<16>::new();
        let (mut a, b) = ch.split();
        let mut rx = FrameReader::<_, 8>::new(b);
        a.try_write(&[5, b'h', b'e']).unwrap(); // half a frame
        {
            let mut cx = Context::from_waker(core::task::Waker::noop());
            let mut read = pin!(rx.read_frame());
            assert!(read.as_mut().poll(&mut cx).is_pending());
        } // cancelled inside the payload
        assert!(!rx.is_idle());
        a.try_write(b"llo").unwrap();
        let (frame, _) = block_on_counted(rx.read_frame());
        assert_eq!(frame.unwrap(), Some(&b"hello"[..]));
    }

    #[test]
    fn frame_consumer_awaits_whole_frames_with_a_bounded_number_of_polls() {
        let mut ring = Ring::<16>::new();
        let (mut tx, rx) = ring.split();
        let mut rx = FrameConsumer::<8>::new(rx);
        let count = CountingWaker::new();
        let waker = count.waker();
        let mut cx = Context::from_waker(&waker);
        {
            let mut recv = pin!(rx.recv_with(|p| p.len()));
            assert!(recv.as_mut().poll(&mut cx).is_pending());
            tx.try_write(&[3, b'a']).unwrap(); // part of a frame: wakes, still pending
            assert_eq!(count.wakes(), 1);
            assert!(recv.as_mut().poll(&mut cx).is_pending());
            tx.try_write(b"bc").unwrap();
            assert_eq!(count.wakes(), 2);
            assert_eq!(recv.as_mut().poll(&mut cx), Poll::Ready(Ok(Some(3))));
        }
        {
            let mut cancelled = pin!(rx.recv_with(|p| p.len()));
            assert!(cancelled.as_mut().poll(&mut cx).is_pending());
        }
        tx.try_write(&[1, b'z']).unwrap();
        drop(tx);
        let (got, polls) = block_on_counted(rx.recv_with(|p| p.to_vec()));
        assert_eq!((got.unwrap(), polls), (Some(std::vec![b'z']), 1));
        assert_eq!(block_on_counted(rx.recv_with(|_| ())).0, Ok(None));
    }

    #[test]
    fn frames_larger_than_the_ring_stream_through_and_wake_the_producer() {
        let mut ring = Ring::<8>::new();
        let (tx, rx) = ring.split();
        let mut rx = FrameConsumer::<64>::new(rx);
        let payload: std::vec::Vec<u8> = (0..50).collect();
        std::thread::scope(|s| {
            let payload = &payload;
            s.spawn(move || {
                block_on_parking(async {
                    let mut tx = FrameWriter::<_, 64>::new(tx);
                    tx.write_frame(payload).await.unwrap();
                })
            });
            block_on_parking(async {
                let got = rx.recv_with(|p| p.to_vec()).await.unwrap();
                assert_eq!(got.as_deref(), Some(&payload[..]));
                assert_eq!(rx.recv_with(|_| ()).await.unwrap(), None);
            });
        });
    }
}
