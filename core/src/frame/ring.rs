//! Frames written straight into a ring's write grants and read straight out of its
//! read grants: [`FrameProducer`] and [`FrameConsumer`].
//!
//! Both are non-blocking. A frame is sent whole or not at all ([`SendError::Full`]
//! when the ring has no room for it now); a frame is received once all its bytes
//! are in the ring ([`Received::Pending`] until then).
//!
//! **No copy when contiguous**: [`FrameProducer::send_with`] hands the closure the
//! payload bytes inside the ring when header and payload fit before the ring's end;
//! [`FrameConsumer::recv_with`] hands out the payload inside the ring when the whole
//! frame lies contiguously. When a frame wraps around the end of the ring, the
//! producer fills a `[u8; MAX]` on the stack and copies it in, and the consumer
//! copies the frame into its own `[u8; MAX]` buffer.
//!
//! ```
//! use ringlink_core::frame::ring::{FrameConsumer, FrameProducer, Received};
//! use ringlink_core::ring::Ring;
//!
//! let mut ring = Ring::<64>::new();
//! let (tx, rx) = ring.split();
//! let mut tx = FrameProducer::<_, 16>::new(tx);
//! let mut rx = FrameConsumer::<_, 16>::new(rx);
//!
//! tx.send_with(3, |payload| payload.copy_from_slice(b"abc")).unwrap();
//! tx.send_msg(&(1u8, -2i32)).unwrap();
//! assert_eq!(rx.recv_with(|p| p == b"abc").unwrap(), Received::Frame(true));
//! assert_eq!(rx.recv_msg::<(u8, i32)>().unwrap(), Received::Frame((1, -2)));
//! assert_eq!(rx.recv_with(|_| ()).unwrap(), Received::Pending);
//! drop(tx);
//! assert_eq!(rx.recv_with(|_| ()).unwrap(), Received::Finished);
//! ```

use core::borrow::BorrowMut;
use core::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::decoder::{Decoded, FrameDecoder};
use super::{FrameError, MAX_HEADER_LEN, decode_len, encode_len, header_len, len_to_usize};
use crate::ring::{Consumer, GrantError, Producer, RingError};

/// Why a frame was not sent. Nothing was written in every case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SendError {
    /// The payload is longer than the maximum, or header and payload together are
    /// larger than the ring: this frame can never be sent.
    TooLarge {
        /// Payload length.
        len: usize,
        /// The largest payload that could be sent (the smaller of `MAX` and what the
        /// ring holds).
        max: usize,
    },
    /// Not enough free space in the ring right now; try again after the consumer reads.
    Full {
        /// Bytes the frame needs (header and payload).
        needed: usize,
        /// Bytes free now.
        free: usize,
    },
    /// The consumer is gone: nobody will read the frame.
    Closed,
    /// The message could not be serialized.
    Serialize(postcard::Error),
    /// The ring's indices were corrupted (only with rings in shared memory).
    Ring(RingError),
}

impl From<RingError> for SendError {
    fn from(e: RingError) -> Self {
        SendError::Ring(e)
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            SendError::Full { needed, free } => {
                write!(f, "ring full: frame needs {needed} bytes, {free} free")
            }
            SendError::Closed => f.write_str("the consumer is gone"),
            SendError::Serialize(e) => write!(f, "cannot serialize message: {e}"),
            SendError::Ring(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for SendError {}

/// The outcome of a non-blocking receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Received<T> {
    /// A whole frame (or what the closure made of it).
    Frame(T),
    /// No whole frame is in the ring yet; try again later.
    Pending,
    /// The producer is gone and every frame it sent has been received.
    Finished,
}

/// Checks that a frame of `len` payload bytes can ever go through a ring of
/// `capacity` bytes with a maximum payload of `max`; returns its header.
pub(crate) fn frame_header(
    len: usize,
    max: usize,
    capacity: usize,
) -> Result<([u8; MAX_HEADER_LEN], usize), SendError> {
    let len32 = u32::try_from(len).map_err(|_| SendError::TooLarge { len, max })?;
    let h = header_len(len32);
    let fits_ring = h.checked_add(len).is_some_and(|total| total <= capacity);
    if len > max || !fits_ring {
        let ring_max =
            capacity.saturating_sub(header_len(u32::try_from(capacity).unwrap_or(u32::MAX)));
        return Err(SendError::TooLarge {
            len,
            max: max.min(ring_max),
        });
    }
    let mut header = [0u8; MAX_HEADER_LEN];
    encode_len(len32, &mut header);
    Ok((header, h))
}

/// Sends frames of at most `MAX` payload bytes into a ring through its [`Producer`].
///
/// `P` is a `Producer` or a `&mut Producer`.
pub struct FrameProducer<P, const MAX: usize> {
    producer: P,
}

impl<'a, P: BorrowMut<Producer<'a>>, const MAX: usize> FrameProducer<P, MAX> {
    /// Wraps a producer.
    pub const fn new(producer: P) -> Self {
        FrameProducer { producer }
    }

    /// The producer.
    pub fn get_mut(&mut self) -> &mut Producer<'a> {
        self.producer.borrow_mut()
    }

    /// Unwraps the producer.
    pub fn into_inner(self) -> P {
        self.producer
    }

    fn prepare(&mut self, len: usize) -> Result<([u8; MAX_HEADER_LEN], usize), SendError> {
        let producer = self.producer.borrow_mut();
        if producer.is_consumer_closed() {
            return Err(SendError::Closed);
        }
        frame_header(len, MAX, producer.capacity())
    }

    /// Sends a frame of `len` payload bytes that `fill` writes in place.
    ///
    /// `fill` gets exactly `len` bytes inside the ring when they are contiguous
    /// (bytes it leaves alone hold stale data: it should write them all), or a
    /// `[u8; MAX]` on the stack that is then copied in when the free space wraps.
    /// `fill` is not called when the frame is not sent.
    pub fn send_with<F: FnOnce(&mut [u8])>(
        &mut self,
        len: usize,
        fill: F,
    ) -> Result<(), SendError> {
        let (header, h) = self.prepare(len)?;
        let total = h + len;
        let producer = self.producer.borrow_mut();
        match producer.grant_exact(total) {
            Ok(mut grant) => {
                let (head, payload) = grant.split_at_mut(h);
                head.copy_from_slice(header.get(..h).unwrap_or(&[]));
                fill(payload);
                grant.commit(total);
                Ok(())
            }
            Err(GrantError::InsufficientSize { .. }) => {
                let free = producer.free()?;
                if free < total {
                    return Err(SendError::Full {
                        needed: total,
                        free,
                    });
                }
                // Enough room, but it wraps around the end of the ring.
                send_via_scratch::<MAX, _>(producer, header.get(..h).unwrap_or(&[]), len, fill)
            }
            Err(GrantError::TooLarge { .. }) => Err(SendError::TooLarge { len, max: MAX }),
            Err(GrantError::Corrupted(e)) => Err(SendError::Ring(e)),
        }
    }

    /// Sends a copy of `payload` as one frame.
    pub fn send(&mut self, payload: &[u8]) -> Result<(), SendError> {
        let (header, h) = self.prepare(payload.len())?;
        let producer = self.producer.borrow_mut();
        write_frame_copy(producer, header.get(..h).unwrap_or(&[]), payload)
    }

    /// Serializes `msg` with postcard straight into the ring (when contiguous) as one frame.
    pub fn send_msg<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<(), SendError> {
        let len = postcard::experimental::serialized_size(msg).map_err(SendError::Serialize)?;
        let (header, h) = self.prepare(len)?;
        let total = h + len;
        let producer = self.producer.borrow_mut();
        match producer.grant_exact(total) {
            Ok(mut grant) => {
                let (head, payload) = grant.split_at_mut(h);
                head.copy_from_slice(header.get(..h).unwrap_or(&[]));
                match postcard::to_slice(msg, payload) {
                    Ok(used) if used.len() == len => {
                        grant.commit(total);
                        Ok(())
                    }
                    // A `Serialize` impl that changed its mind between the two
                    // passes: the grant is dropped, nothing is published.
                    Ok(_) => Err(SendError::Serialize(postcard::Error::SerializeBufferFull)),
                    Err(e) => Err(SendError::Serialize(e)),
                }
            }
            Err(GrantError::InsufficientSize { .. }) => {
                let free = producer.free()?;
                if free < total {
                    return Err(SendError::Full {
                        needed: total,
                        free,
                    });
                }
                send_msg_via_scratch::<MAX, T>(producer, msg)
            }
            Err(GrantError::TooLarge { .. }) => Err(SendError::TooLarge { len, max: MAX }),
            Err(GrantError::Corrupted(e)) => Err(SendError::Ring(e)),
        }
    }
}

/// Writes header and payload with copies; checks the free space first so the
/// frame goes in whole or not at all.
fn write_frame_copy(
    producer: &mut Producer<'_>,
    header: &[u8],
    payload: &[u8],
) -> Result<(), SendError> {
    let total = header.len() + payload.len();
    let free = producer.free()?;
    if free < total {
        return Err(SendError::Full {
            needed: total,
            free,
        });
    }
    // Only this producer fills the ring and the consumer only frees space, so
    // both writes complete: the checks below never fail.
    let written = producer.write(header)? + producer.write(payload)?;
    if written != total {
        return Err(SendError::Full {
            needed: total,
            free: written,
        });
    }
    Ok(())
}

/// The wrap-around path of [`FrameProducer::send_with`]; kept out of line so
/// the fast path's stack frame does not carry the `[u8; MAX]`.
#[inline(never)]
#[cold]
fn send_via_scratch<const MAX: usize, F: FnOnce(&mut [u8])>(
    producer: &mut Producer<'_>,
    header: &[u8],
    len: usize,
    fill: F,
) -> Result<(), SendError> {
    let mut scratch = [0u8; MAX];
    let payload = scratch.get_mut(..len).unwrap_or(&mut []);
    fill(payload);
    write_frame_copy(producer, header, payload)
}

/// The wrap-around path of [`FrameProducer::send_msg`].
#[inline(never)]
#[cold]
fn send_msg_via_scratch<const MAX: usize, T: Serialize + ?Sized>(
    producer: &mut Producer<'_>,
    msg: &T,
) -> Result<(), SendError> {
    let mut scratch = [0u8; MAX];
    let payload = postcard::to_slice(msg, &mut scratch).map_err(SendError::Serialize)?;
    let (header, h) = frame_header(payload.len(), MAX, producer.capacity())?;
    write_frame_copy(producer, header.get(..h).unwrap_or(&[]), payload)
}

/// Receives frames of at most `MAX` payload bytes from a ring through its [`Consumer`].
///
/// `C` is a `Consumer` or a `&mut Consumer`. Frames above `MAX` are reported as
/// [`FrameError::TooLarge`] and skipped inside the ring (never copied); frames
/// larger than the ring itself are streamed through the `[u8; MAX]` buffer.
pub struct FrameConsumer<C, const MAX: usize> {
    consumer: C,
    decoder: FrameDecoder<MAX>,
}

impl<'a, C: BorrowMut<Consumer<'a>>, const MAX: usize> FrameConsumer<C, MAX> {
    /// Wraps a consumer.
    pub const fn new(consumer: C) -> Self {
        FrameConsumer {
            consumer,
            decoder: FrameDecoder::new(),
        }
    }

    /// The consumer. Reading from it directly while a frame is half-received
    /// desynchronizes the frame consumer.
    pub fn get_mut(&mut self) -> &mut Consumer<'a> {
        self.consumer.borrow_mut()
    }

    /// Unwraps the consumer (a half-received frame is lost).
    pub fn into_inner(self) -> C {
        self.consumer
    }

    /// Receives the next frame if it is whole, calling `with` on its payload
    /// (inside the ring when contiguous, else in this consumer's buffer).
    ///
    /// - `Ok(Received::Frame(r))`: `r` is what `with` returned; the frame is consumed.
    /// - `Ok(Received::Pending)`: no whole frame yet (`with` is not called).
    /// - `Ok(Received::Finished)`: the producer is gone and everything was received.
    /// - `Err(FrameError::TooLarge { .. })`: a frame above `MAX`; it is skipped,
    ///   the next call continues with the frame after it.
    /// - `Err(FrameError::UnexpectedEof)`: the producer is gone in the middle of a frame.
    /// - `Err(FrameError::BadHeader(_))`: the stream is out of sync.
    /// - `Err(FrameError::Io(_))`: the ring's indices are corrupted.
    pub fn recv_with<R, F: FnOnce(&[u8]) -> R>(
        &mut self,
        with: F,
    ) -> Result<Received<R>, FrameError<RingError>> {
        // Read the flag first: once it is seen, every byte the producer wrote is visible.
        let closed = self.consumer.borrow_mut().is_producer_closed();
        match self.try_recv(with)? {
            Some(r) => Ok(Received::Frame(r)),
            None if !closed => Ok(Received::Pending),
            None => {
                let left = self
                    .consumer
                    .borrow_mut()
                    .available()
                    .map_err(FrameError::Io)?;
                if left == 0 && self.decoder.is_idle() {
                    Ok(Received::Finished)
                } else {
                    Err(FrameError::UnexpectedEof)
                }
            }
        }
    }

    /// Receives the next frame and deserializes it with postcard.
    ///
    /// Same outcomes as [`recv_with`](Self::recv_with), plus
    /// [`FrameError::Deserialize`] when the frame is not a `T` (it is consumed).
    pub fn recv_msg<T: DeserializeOwned>(&mut self) -> Result<Received<T>, FrameError<RingError>> {
        match self.recv_with(|payload| postcard::from_bytes::<T>(payload))? {
            Received::Frame(Ok(msg)) => Ok(Received::Frame(msg)),
            Received::Frame(Err(e)) => Err(FrameError::Deserialize(e)),
            Received::Pending => Ok(Received::Pending),
            Received::Finished => Ok(Received::Finished),
        }
    }

    /// One attempt: `Ok(None)` when no whole frame is there.
    fn try_recv<R, F: FnOnce(&[u8]) -> R>(
        &mut self,
        with: F,
    ) -> Result<Option<R>, FrameError<RingError>> {
        if self.decoder.is_idle() {
            let consumer = self.consumer.borrow_mut();
            let capacity = consumer.capacity();
            let grant = match consumer.read_grant() {
                Ok(g) => g,
                Err(GrantError::Corrupted(e)) => return Err(FrameError::Io(e)),
                Err(_) => return Ok(None),
            };
            let contiguous = grant.len();
            match decode_len(&grant) {
                Ok(Some((len32, h))) => {
                    let len = len_to_usize(len32);
                    if len > MAX {
                        grant.release(h);
                        // Hands the skip to the decoder (reports it too).
                        self.decoder.start_frame(len32);
                        return Err(FrameError::TooLarge { len, max: MAX });
                    }
                    let end = h + len;
                    if let Some(payload) = grant.get(h..end) {
                        // Zero-copy: the whole frame is contiguous in the ring.
                        let r = with(payload);
                        grant.release(end);
                        return Ok(Some(r));
                    }
                    if end <= capacity {
                        // The frame fits in the ring: wait until all of it is there,
                        // then copy it out if it wraps.
                        drop(grant);
                        if consumer.available().map_err(FrameError::Io)? < end {
                            return Ok(None);
                        }
                    } else {
                        // Larger than the ring: stream it through the buffer.
                        drop(grant);
                    }
                }
                Ok(None) => {
                    // Header incomplete: wait, unless it wraps around the end.
                    drop(grant);
                    if consumer.available().map_err(FrameError::Io)? <= contiguous {
                        return Ok(None);
                    }
                }
                // The decoder reports it with exact byte accounting.
                Err(_) => drop(grant),
            }
        }
        self.recv_copying(with)
    }

    /// Feeds the decoder from read grants until a frame completes or the ring is empty.
    fn recv_copying<R, F: FnOnce(&[u8]) -> R>(
        &mut self,
        with: F,
    ) -> Result<Option<R>, FrameError<RingError>> {
        let consumer = self.consumer.borrow_mut();
        loop {
            let grant = match consumer.read_grant() {
                Ok(g) => g,
                Err(GrantError::Corrupted(e)) => return Err(FrameError::Io(e)),
                Err(_) => return Ok(None),
            };
            let offered = grant.len();
            match self.decoder.feed(&grant) {
                Decoded::NeedMore => grant.release(offered),
                Decoded::Frame { payload, rest } => {
                    let used = offered - rest.len();
                    grant.release(used);
                    return Ok(Some(with(payload)));
                }
                Decoded::TooLarge { len, max, rest } => {
                    let used = offered - rest.len();
                    grant.release(used);
                    return Err(FrameError::TooLarge { len, max });
                }
                Decoded::BadHeader { error, rest } => {
                    let used = offered - rest.len();
                    grant.release(used);
                    return Err(FrameError::BadHeader(error));
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::ring::Ring;

    #[test]
    fn frames_round_trip_across_many_wraps() {
        let mut ring = Ring::<32>::new();
        let (tx, rx) = ring.split();
        let mut tx = FrameProducer::<_, 20>::new(tx);
        let mut rx = FrameConsumer::<_, 20>::new(rx);
        let mut sent = 0u32;
        let mut received = 0u32;
        let mut zero_copy_fills = 0;
        while received < 2000 {
            let len = (sent % 21) as usize;
            let seed = sent as u8;
            let r = match sent % 3 {
                0 => tx.send_with(len, |p| {
                    zero_copy_fills += 1;
                    for (i, b) in p.iter_mut().enumerate() {
                        *b = seed.wrapping_add(i as u8);
                    }
                }),
                _ => {
                    let v: std::vec::Vec<u8> =
                        (0..len).map(|i| seed.wrapping_add(i as u8)).collect();
                    tx.send(&v)
                }
            };
            match r {
                Ok(()) => sent += 1,
                Err(SendError::Full { .. }) => {}
                Err(e) => panic!("{e}"),
            }
            loop {
                let expect_len = (received % 21) as usize;
                let expect_seed = received as u8;
                match rx.recv_with(|p| {
                    assert_eq!(p.len(), expect_len);
                    for (i, b) in p.iter().enumerate() {
                        assert_eq!(*b, expect_seed.wrapping_add(i as u8));
                    }
                }) {
                    Ok(Received::Frame(())) => received += 1,
                    Ok(Received::Pending) => break,
                    other => panic!("{other:?}"),
                }
                if received % 2 == 1 {
                    break; // let the ring fill up sometimes
                }
            }
        }
        assert!(zero_copy_fills > 0);
    }

    #[test]
    fn consumer_waits_for_whole_frames_without_consuming() {
        let mut ring = Ring::<16>::new();
        let (mut tx, rx) = ring.split();
        let mut rx = FrameConsumer::<_, 8>::new(rx);
        tx.write(&[5, 1, 2]).unwrap();
        assert_eq!(rx.recv_with(|_| ()).unwrap(), Received::Pending);
        assert_eq!(rx.get_mut().available().unwrap(), 3, "nothing consumed yet");
        tx.write(&[3, 4, 5]).unwrap();
        assert_eq!(
            rx.recv_with(|p| p.to_vec()).unwrap(),
            Received::Frame(vec![1, 2, 3, 4, 5])
        );
        tx.write(&[2, 9]).unwrap();
        drop(tx);
        assert_eq!(rx.recv_with(|_| ()), Err(FrameError::UnexpectedEof));
    }

    #[test]
    fn oversized_frames_are_skipped_in_the_ring() {
        let mut ring = Ring::<16>::new();
        let (tx, rx) = ring.split();
        let mut tx = FrameProducer::<_, 64>::new(tx);
        let mut rx = FrameConsumer::<_, 4>::new(rx);
        tx.send(&[7; 10]).unwrap();
        assert_eq!(
            rx.recv_with(|_| ()),
            Err(FrameError::TooLarge { len: 10, max: 4 })
        );
        tx.send(b"ok").unwrap();
        assert_eq!(
            rx.recv_with(|p| p.to_vec()).unwrap(),
            Received::Frame(b"ok".to_vec())
        );
    }

    #[test]
    fn frames_larger_than_the_ring_stream_through_the_buffer() {
        let mut ring = Ring::<8>::new();
        let (mut tx, rx) = ring.split();
        let mut rx = FrameConsumer::<_, 32>::new(rx);
        let mut wire = std::vec![20u8];
        wire.extend(0..20u8);
        wire.extend([1, 0xEE]);
        let mut sent = 0;
        let mut frames = std::vec::Vec::new();
        while frames.len() < 2 {
            sent += tx.write(&wire[sent..]).unwrap();
            if let Received::Frame(p) = rx.recv_with(|p| p.to_vec()).unwrap() {
                frames.push(p);
            }
        }
        assert_eq!(frames[0], (0..20u8).collect::<std::vec::Vec<_>>());
        assert_eq!(frames[1], [0xEE]);
    }

    #[test]
    fn producer_checks_size_room_and_peer() {
        let mut ring = Ring::<8>::new();
        let (tx, rx) = ring.split();
        let mut tx = FrameProducer::<_, 64>::new(tx);
        assert_eq!(
            tx.send(&[0; 8]),
            Err(SendError::TooLarge { len: 8, max: 7 })
        );
        tx.send(&[0; 5]).unwrap();
        assert_eq!(
            tx.send(&[0; 2]),
            Err(SendError::Full { needed: 3, free: 2 })
        );
        let mut called = false;
        assert!(tx.send_with(2, |_| called = true).is_err());
        assert!(!called, "fill is not called when the frame is not sent");
        drop(rx);
        assert_eq!(tx.send(b""), Err(SendError::Closed));
    }

    #[test]
    fn typed_messages_through_wrapping_ring() {
        let mut ring = Ring::<16>::new();
        let (tx, rx) = ring.split();
        let mut tx = FrameProducer::<_, 12>::new(tx);
        let mut rx = FrameConsumer::<_, 12>::new(rx);
        for i in 0..500u32 {
            let msg = (i, i % 7 == 0, [i as u8; 3]);
            tx.send_msg(&msg).unwrap();
            assert_eq!(
                rx.recv_msg::<(u32, bool, [u8; 3])>().unwrap(),
                Received::Frame(msg)
            );
        }
        tx.send(&[0xFF]).unwrap();
        assert!(matches!(
            rx.recv_msg::<(u32, bool)>(),
            Err(FrameError::Deserialize(_))
        ));
    }
}
