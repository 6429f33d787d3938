//! The behaviour every adapter's stream must show in framed mode and through embedded-io,
//! written once: each adapter runs [`conformance_tests!`](crate::conformance_tests) over
//! its own `Stream::pair` (a socket pair, a pipe pair), and this crate runs it over
//! [`MemoryStream`], an in-process pair with the same semantics.
//!
//! Compiled for this crate's tests and with the `conformance` feature (the adapters turn
//! it on for their tests only).

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ringlink_core::frame::MAX_HEADER_LEN;

use crate::framed::frame_header;
use crate::{
    ByteStream, DEFAULT_MAX_FRAME, Error, ErrorKind, FrameOptions, FramedStream, NoSharedMemory,
};

/// Expands to one `#[test]` per case of this module, each run over streams made by
/// `$pair` (a `fn() -> Result<(S, S), Error>`: `Stream::pair`), the embedded-io case also
/// over the owned halves `$into_split` makes (`Stream::into_split`). In an adapter:
/// `#[cfg(test)] mod tests { ringlink_host::conformance_tests!(crate::Stream::pair,
/// crate::Stream::into_split); }`.
#[macro_export]
macro_rules! conformance_tests {
    ($pair:expr, $into_split:expr) => {
        $crate::conformance_tests!(@cases $pair;
            frames_of_every_size_round_trip,
            oversized_frames_are_refused_on_send_and_skipped_on_receive,
            typed_messages_round_trip_and_bad_ones_are_invalid_data,
            a_raw_peer_is_a_protocol_mismatch_not_a_hang,
            eof_inside_a_frame_is_peer_closed,
            nonblocking_receive_keeps_partial_frames,
            framed_receive_honours_the_read_timeout,
            embedded_io_round_trip_and_readiness,
        );

        #[test]
        fn embedded_io_through_owned_halves() {
            $crate::conformance::embedded_io_through_owned_halves($pair, $into_split);
        }
    };
    (@cases $pair:expr; $($case:ident,)*) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case($pair);
            }
        )*
    };
}

/// What the cases need of a stream: a [`ByteStream`] that can move to another thread.
pub trait Conformant: ByteStream + Send + fmt::Debug + 'static {}

impl<S: ByteStream + Send + fmt::Debug + 'static> Conformant for S {}

/// Two framed streams over a fresh pair; the second side's handshake runs on a thread.
fn framed_pair<S: Conformant>(
    pair: fn() -> Result<(S, S), Error>,
    a_options: FrameOptions,
    b_options: FrameOptions,
) -> (FramedStream<S>, FramedStream<S>)
where
    S::SharedMemory: Send,
{
    let (a, b) = pair().unwrap();
    let t = std::thread::spawn(move || FramedStream::new(b, b_options).unwrap());
    let a = FramedStream::new(a, a_options).unwrap();
    (a, t.join().unwrap())
}

/// Frames from empty to the default limit arrive whole, in order, then a clean end.
pub fn frames_of_every_size_round_trip<S: Conformant>(pair: fn() -> Result<(S, S), Error>)
where
    S::SharedMemory: Send,
{
    let (mut a, mut b) = framed_pair(pair, FrameOptions::new(), FrameOptions::new());
    assert_eq!(b.peer_hello().max_frame, DEFAULT_MAX_FRAME);
    assert!(!a.is_shared_memory() && !b.is_shared_memory());
    let sizes = [
        0usize,
        1,
        127,
        128,
        511,
        512,
        8191,
        8192,
        100_000,
        DEFAULT_MAX_FRAME as usize,
    ];
    let t = std::thread::spawn(move || {
        for &n in &sizes {
            let payload: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            a.send_frame(&payload).unwrap();
        }
        a
    });
    for &n in &sizes {
        let frame = b.recv_frame().unwrap().unwrap();
        assert_eq!(frame.len(), n);
        assert!(frame.iter().enumerate().all(|(i, &x)| x == (i % 251) as u8));
    }
    drop(t.join().unwrap());
    assert_eq!(b.recv_frame().unwrap(), None, "clean end of stream");
}

/// The sender refuses a frame over the peer's limit; a receiver skips one a peer sends
/// anyway and stays in sync, its buffer bounded by the limit.
pub fn oversized_frames_are_refused_on_send_and_skipped_on_receive<S: Conformant>(
    pair: fn() -> Result<(S, S), Error>,
) where
    S::SharedMemory: Send,
{
    let (mut a, mut b) = framed_pair(pair, FrameOptions::new(), FrameOptions::new().max_frame(16));
    let err = a.send_frame(&[0u8; 17]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FrameTooLarge);
    // Bypass the sender's check: a peer that ignores our limit.
    let (header, n) = frame_header(40_000, u32::MAX).unwrap();
    let t = std::thread::spawn(move || {
        a.get_ref().send_all(&header[..n]).unwrap();
        a.get_ref().send_all(&vec![7u8; 40_000]).unwrap();
        a.send_frame(b"after").unwrap();
        a
    });
    let err = b.recv_frame().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FrameTooLarge);
    assert!(err.to_string().contains("40000"), "{err}");
    assert_eq!(
        b.recv_frame().unwrap(),
        Some(&b"after"[..]),
        "still in sync"
    );
    assert!(
        b.decoder.capacity() <= 16 + MAX_HEADER_LEN,
        "buffer bounded by the limit"
    );
    drop(t.join().unwrap());
}

/// Postcard messages round-trip; a frame that is not the expected type is
/// [`ErrorKind::InvalidData`] and the next message still arrives.
pub fn typed_messages_round_trip_and_bad_ones_are_invalid_data<S: Conformant>(
    pair: fn() -> Result<(S, S), Error>,
) where
    S::SharedMemory: Send,
{
    let (mut a, mut b) = framed_pair(pair, FrameOptions::new(), FrameOptions::new());
    a.send(&(7u32, String::from("seven"), vec![1u8, 2, 3]))
        .unwrap();
    let got: (u32, String, Vec<u8>) = b.recv().unwrap().unwrap();
    assert_eq!(got, (7, "seven".to_string(), vec![1, 2, 3]));
    a.send_frame(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap();
    let err = b.recv::<String>().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    a.send(&5u8).unwrap();
    assert_eq!(b.recv::<u8>().unwrap(), Some(5));
}

/// A peer that sends something else, nothing, or closes is told apart, never waited for
/// past the handshake timeout.
pub fn a_raw_peer_is_a_protocol_mismatch_not_a_hang<S: Conformant>(
    pair: fn() -> Result<(S, S), Error>,
) {
    let (a, b) = pair().unwrap();
    b.send_all(b"HTTP/1.1 200 OK\r\n").unwrap();
    let err = FramedStream::new(a, FrameOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProtocolMismatch);
    assert!(err.to_string().contains("HTTP"), "{err}");

    let (a, _silent) = pair().unwrap();
    let t = Instant::now();
    let err = FramedStream::new(
        a,
        FrameOptions::new().handshake_timeout(Duration::from_millis(50)),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProtocolMismatch);
    assert!(t.elapsed() < Duration::from_secs(5));

    let (a, closed) = pair().unwrap();
    drop(closed);
    let err = FramedStream::new(a, FrameOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PeerClosed);
}

/// End of stream in the middle of a frame is [`ErrorKind::PeerClosed`].
pub fn eof_inside_a_frame_is_peer_closed<S: Conformant>(pair: fn() -> Result<(S, S), Error>)
where
    S::SharedMemory: Send,
{
    let (a, mut b) = framed_pair(pair, FrameOptions::new(), FrameOptions::new());
    let (header, n) = frame_header(100, u32::MAX).unwrap();
    a.get_ref().send_all(&header[..n]).unwrap();
    a.get_ref().send_all(&[1u8; 10]).unwrap();
    drop(a);
    let err = b.recv_frame().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PeerClosed);
}

/// In nonblocking mode a partial frame is [`ErrorKind::WouldBlock`] and kept.
pub fn nonblocking_receive_keeps_partial_frames<S: Conformant>(pair: fn() -> Result<(S, S), Error>)
where
    S::SharedMemory: Send,
{
    let (mut a, mut b) = framed_pair(pair, FrameOptions::new(), FrameOptions::new());
    b.get_ref().set_nonblocking(true).unwrap();
    assert_eq!(b.recv_frame().unwrap_err().kind(), ErrorKind::WouldBlock);
    let (header, n) = frame_header(4, u32::MAX).unwrap();
    a.get_ref().send_all(&header[..n]).unwrap();
    a.get_ref().send_all(b"ab").unwrap();
    wait_for_bytes(b.get_ref());
    assert_eq!(b.recv_frame().unwrap_err().kind(), ErrorKind::WouldBlock);
    a.get_ref().send_all(b"cd").unwrap();
    wait_for_bytes(b.get_ref());
    assert_eq!(b.recv_frame().unwrap(), Some(&b"abcd"[..]));
    a.send_frame(b"x").unwrap();
}

/// Waits (boundedly) until `stream` has bytes to read, so a nonblocking read that
/// follows does not race the sender.
fn wait_for_bytes<S: ByteStream>(stream: &S) {
    assert!(
        stream.wait_readable(Some(Duration::from_secs(10))).unwrap(),
        "the bytes arrive"
    );
}

/// A framed receive with a read timeout set through the framed stream fails with
/// [`ErrorKind::TimedOut`] when nothing comes, and the connection stays usable.
pub fn framed_receive_honours_the_read_timeout<S: Conformant>(pair: fn() -> Result<(S, S), Error>)
where
    S::SharedMemory: Send,
{
    let (mut a, mut b) = framed_pair(pair, FrameOptions::new(), FrameOptions::new());
    b.set_timeouts(Some(Duration::from_millis(50)), None)
        .unwrap();
    let t = Instant::now();
    assert_eq!(b.recv_frame().unwrap_err().kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(5));
    b.set_timeouts(None, None).unwrap();
    a.send_frame(b"late").unwrap();
    assert_eq!(b.recv_frame().unwrap(), Some(&b"late"[..]));
}

use embedded_io::{ErrorType, Read, ReadReady, Write, WriteReady};

/// `embedded_io`: bytes written arrive, readiness reflects them, end of stream is
/// readable and reads as `Ok(0)`.
pub fn embedded_io_round_trip_and_readiness<S>(pair: fn() -> Result<(S, S), Error>)
where
    S: Conformant + Read + Write + ReadReady + WriteReady + ErrorType<Error = Error>,
{
    let (mut a, mut b) = pair().unwrap();
    assert!(!b.read_ready().unwrap());
    assert!(a.write_ready().unwrap());
    Write::write_all(&mut a, b"frame").unwrap();
    wait_for_bytes(&b);
    assert!(b.read_ready().unwrap());
    let mut buf = [0u8; 5];
    Read::read_exact(&mut b, &mut buf).unwrap();
    assert_eq!(&buf, b"frame");
    drop(a);
    assert!(b.read_ready().unwrap(), "end of stream is readable");
    assert_eq!(Read::read(&mut b, &mut buf).unwrap(), 0);
}

/// The same through owned halves: a read half sees what the peer's write half sent, and
/// end of stream once the peer's halves are gone.
pub fn embedded_io_through_owned_halves<S, R, W>(
    pair: fn() -> Result<(S, S), Error>,
    into_split: fn(S) -> (R, W),
) where
    S: Conformant,
    R: Read + ReadReady + ErrorType<Error = Error>,
    W: Write + WriteReady + ErrorType<Error = Error>,
{
    let (a, b) = pair().unwrap();
    let (a_read, mut a_write) = into_split(a);
    let (mut b_read, _b_write) = into_split(b);
    assert!(!b_read.read_ready().unwrap());
    assert!(a_write.write_ready().unwrap());
    a_write.write_all(b"half").unwrap();
    let mut buf = [0u8; 4];
    b_read.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"half");
    drop((a_read, a_write));
    assert!(b_read.read_ready().unwrap(), "end of stream is readable");
    assert_eq!(Read::read(&mut b_read, &mut buf).unwrap(), 0);
}

/// One direction of a [`MemoryStream`] pair: the bytes in flight, and whether either end
/// is gone.
#[derive(Debug, Default)]
struct Pipe {
    state: Mutex<PipeState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct PipeState {
    bytes: VecDeque<u8>,
    closed: bool,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a change until `deadline` (`None`: forever); `None` when it passed.
    fn wait<'a>(
        &'a self,
        state: MutexGuard<'a, PipeState>,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'a, PipeState>> {
        let Some(deadline) = deadline else {
            return Some(
                self.changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            );
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let (state, _) = self
            .changed
            .wait_timeout(state, left)
            .unwrap_or_else(PoisonError::into_inner);
        Some(state)
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

/// An in-process connected byte stream with the semantics of the adapters' streams:
/// blocking reads with a timeout or nonblocking mode, end of stream when the peer is
/// dropped, [`ErrorKind::PeerClosed`] when writing to a dropped peer. Writes never wait
/// (the buffer is unbounded), so it cannot show backpressure.
#[derive(Debug)]
pub struct MemoryStream {
    incoming: Arc<Pipe>,
    outgoing: Arc<Pipe>,
    nonblocking: AtomicBool,
    read_timeout: Mutex<Option<Duration>>,
}

impl MemoryStream {
    /// A connected pair.
    pub fn pair() -> Result<(MemoryStream, MemoryStream), Error> {
        let (ab, ba) = (Arc::new(Pipe::default()), Arc::new(Pipe::default()));
        let side = |incoming, outgoing| MemoryStream {
            incoming,
            outgoing,
            nonblocking: AtomicBool::new(false),
            read_timeout: Mutex::new(None),
        };
        Ok((side(ba.clone(), ab.clone()), side(ab, ba)))
    }

    /// Two handles on the stream, to read and write from different places; the peer sees
    /// end of stream when both are gone.
    pub fn into_split(self) -> (MemoryHalf, MemoryHalf) {
        let stream = Arc::new(self);
        (MemoryHalf(stream.clone()), MemoryHalf(stream))
    }

    /// Moves what has arrived into `buf`, waiting as `deadline` says for something to
    /// arrive.
    fn take_incoming(&self, buf: &mut [u8], deadline: Deadline) -> Result<usize, Error> {
        let (deadline, expired) = match deadline {
            Deadline::Now => (Some(Instant::now()), ErrorKind::WouldBlock),
            Deadline::After(timeout) => (timeout.map(|t| Instant::now() + t), ErrorKind::TimedOut),
        };
        let mut state = self.incoming.lock();
        loop {
            if !state.bytes.is_empty() {
                let n = buf.len().min(state.bytes.len());
                for (slot, byte) in buf.iter_mut().zip(state.bytes.drain(..n)) {
                    *slot = byte;
                }
                return Ok(n);
            }
            if state.closed || buf.is_empty() {
                return Ok(0);
            }
            state = self
                .incoming
                .wait(state, deadline)
                .ok_or(Error::bare(expired))?;
        }
    }
}

/// How long a read of a [`MemoryStream`] may wait.
enum Deadline {
    /// Not at all: nothing there is [`ErrorKind::WouldBlock`].
    Now,
    /// Up to the read timeout (`None`: forever), then [`ErrorKind::TimedOut`].
    After(Option<Duration>),
}

impl Drop for MemoryStream {
    fn drop(&mut self) {
        self.incoming.close();
        self.outgoing.close();
    }
}

impl ByteStream for MemoryStream {
    type SharedMemory = NoSharedMemory;

    fn recv(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.nonblocking.load(Ordering::Relaxed) {
            self.take_incoming(buf, Deadline::Now)
        } else {
            let timeout = *self
                .read_timeout
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.take_incoming(buf, Deadline::After(timeout))
        }
    }

    fn send(&self, buf: &[u8]) -> Result<usize, Error> {
        let mut state = self.outgoing.lock();
        if state.closed {
            return Err(Error::new(
                ErrorKind::PeerClosed,
                "the peer of the in-memory stream is gone",
            ));
        }
        state.bytes.extend(buf);
        self.outgoing.changed.notify_all();
        Ok(buf.len())
    }

    fn send_parts(&self, parts: &[&[u8]]) -> Result<(), Error> {
        parts.iter().try_for_each(|part| self.send_all(part))
    }

    fn try_read(&self, buf: &mut [u8]) -> Result<usize, Error> {
        self.take_incoming(buf, Deadline::Now)
    }

    fn wait_readable(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.incoming.lock();
        while state.bytes.is_empty() && !state.closed {
            match self.incoming.wait(state, deadline) {
                Some(next) => state = next,
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    fn wait_writable(&self, _timeout: Option<Duration>) -> Result<bool, Error> {
        Ok(true)
    }

    fn set_nonblocking(&self, nonblocking: bool) -> Result<(), Error> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), Error> {
        *self
            .read_timeout
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = timeout;
        Ok(())
    }

    fn set_write_timeout(&self, _timeout: Option<Duration>) -> Result<(), Error> {
        // Writes never wait.
        Ok(())
    }
}

crate::impl_embedded_io!(read_write: MemoryStream, |this| this);

/// One of the two handles [`MemoryStream::into_split`] makes.
#[derive(Debug)]
pub struct MemoryHalf(Arc<MemoryStream>);

crate::impl_embedded_io!(read_write: MemoryHalf, |this| &*this.0);

#[cfg(test)]
mod tests {
    crate::conformance_tests!(super::MemoryStream::pair, super::MemoryStream::into_split);

    #[test]
    fn memory_streams_time_out_and_report_a_dropped_peer() {
        use super::*;
        let (a, b) = MemoryStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        assert_eq!(
            a.recv(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        assert!(!a.wait_readable(Some(Duration::from_millis(10))).unwrap());
        drop(b);
        assert_eq!(a.send(b"x").unwrap_err().kind(), ErrorKind::PeerClosed);
        assert_eq!(a.recv(&mut [0u8; 4]).unwrap(), 0);
    }
}
