//! Duplex channels: two rings, two [`Endpoint`]s speaking `embedded_io`.
//!
//! Each endpoint writes into one ring and reads from the other. Reads and writes
//! block (by the endpoint's [`WaitStrategy`]) until at least one byte moves, or
//! the peer endpoint is dropped: then reads drain what is left and return `Ok(0)`
//! (end of stream) and writes fail with [`ChannelError::PeerClosed`].
//!
//! ```
//! use embedded_io::{Read, Write};
//! use ringlink_core::channel::Channel;
//!
//! let mut channel = Channel::<64>::new();
//! let (mut a, mut b) = channel.split();
//! a.write_all(b"hello").unwrap();
//! let mut buf = [0u8; 5];
//! b.read_exact(&mut buf).unwrap();
//! assert_eq!(&buf, b"hello");
//! drop(a);
//! assert_eq!(b.read(&mut buf).unwrap(), 0, "end of stream once the peer is gone");
//! ```

use core::fmt;

use crate::ring::{Consumer, PopError, Producer, PushError, Ring, RingError};

/// How an endpoint waits when the ring it needs is full (write) or empty (read).
///
/// Pick [`Spin`] between cores or threads, a `WFE`-based strategy on Cortex-M
/// (`cortex_m::asm::wfe` with an `SEV` from the producer), or `Yield` (with the `std` feature) on hosts.
pub trait WaitStrategy {
    /// Called once per unsuccessful attempt; should pause briefly.
    fn wait(&mut self);
    /// Called after an attempt made progress.
    fn reset(&mut self) {}
}

/// Busy-waits with [`core::hint::spin_loop`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Spin;

impl WaitStrategy for Spin {
    #[inline]
    fn wait(&mut self) {
        core::hint::spin_loop();
    }
}

/// Spins a little, then yields the thread to the OS scheduler (hosts).
#[cfg(any(feature = "std", test))]
#[derive(Debug, Default, Clone, Copy)]
pub struct Yield {
    spins: u32,
}

#[cfg(any(feature = "std", test))]
impl WaitStrategy for Yield {
    fn wait(&mut self) {
        if self.spins < 64 {
            self.spins += 1;
            core::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    fn reset(&mut self) {
        self.spins = 0;
    }
}

/// Errors of endpoint reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ChannelError {
    /// The peer endpoint is gone: nobody will read what this side writes.
    PeerClosed,
    /// A ring's indices were corrupted (only with rings in shared memory).
    Ring(RingError),
}

impl From<RingError> for ChannelError {
    fn from(e: RingError) -> Self {
        ChannelError::Ring(e)
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::PeerClosed => f.write_str("the peer endpoint is closed"),
            ChannelError::Ring(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for ChannelError {}

impl embedded_io::Error for ChannelError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            ChannelError::PeerClosed => embedded_io::ErrorKind::BrokenPipe,
            ChannelError::Ring(_) => embedded_io::ErrorKind::InvalidData,
        }
    }
}

#[cfg(feature = "std")]
impl From<ChannelError> for std::io::Error {
    fn from(e: ChannelError) -> Self {
        let kind = match e {
            ChannelError::PeerClosed => std::io::ErrorKind::BrokenPipe,
            ChannelError::Ring(_) => std::io::ErrorKind::InvalidData,
        };
        std::io::Error::new(kind, e)
    }
}

/// A duplex channel: two rings of `N` bytes each.
///
/// A `static` channel can be split once with [`Channel::split_static`].
#[repr(C)]
pub struct Channel<const N: usize> {
    a_to_b: Ring<N>,
    b_to_a: Ring<N>,
}

impl<const N: usize> Channel<N> {
    /// An empty channel. Usable in `const` and `static` items.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Channel {
            a_to_b: Ring::new(),
            b_to_a: Ring::new(),
        }
    }

    /// An empty channel (loom models).
    #[cfg(loom)]
    pub fn new() -> Self {
        Channel {
            a_to_b: Ring::new(),
            b_to_a: Ring::new(),
        }
    }

    /// Splits into two endpoints that spin while waiting.
    pub fn split(&mut self) -> (Endpoint<'_, Spin>, Endpoint<'_, Spin>) {
        self.split_with(Spin, Spin)
    }

    /// Splits into two endpoints with the given wait strategies.
    pub fn split_with<W1: WaitStrategy, W2: WaitStrategy>(
        &mut self,
        wait_a: W1,
        wait_b: W2,
    ) -> (Endpoint<'_, W1>, Endpoint<'_, W2>) {
        let (tx_a, rx_b) = self.a_to_b.split();
        let (tx_b, rx_a) = self.b_to_a.split();
        (
            Endpoint::new(tx_a, rx_a, wait_a),
            Endpoint::new(tx_b, rx_b, wait_b),
        )
    }

    /// Splits a `static` channel once; `None` if it was split before.
    pub fn split_static(
        &'static self,
    ) -> Option<(Endpoint<'static, Spin>, Endpoint<'static, Spin>)> {
        let (tx_a, rx_b) = self.a_to_b.split_static()?;
        let (tx_b, rx_a) = self.b_to_a.split_static()?;
        Some((
            Endpoint::new(tx_a, rx_a, Spin),
            Endpoint::new(tx_b, rx_b, Spin),
        ))
    }
}

impl<const N: usize> Default for Channel<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// One end of a duplex byte channel: a [`Producer`] towards the peer and a
/// [`Consumer`] from it, with a [`WaitStrategy`] for blocking calls.
pub struct Endpoint<'a, W: WaitStrategy = Spin> {
    tx: Producer<'a>,
    rx: Consumer<'a>,
    wait: W,
}

impl<'a, W: WaitStrategy> Endpoint<'a, W> {
    /// Joins a producer and a consumer (for example of two [`RawRing`](crate::ring::RawRing)s
    /// in shared memory) into an endpoint.
    pub fn new(tx: Producer<'a>, rx: Consumer<'a>, wait: W) -> Self {
        Endpoint { tx, rx, wait }
    }

    /// The writing half.
    pub fn producer(&mut self) -> &mut Producer<'a> {
        &mut self.tx
    }

    /// The reading half.
    pub fn consumer(&mut self) -> &mut Consumer<'a> {
        &mut self.rx
    }

    /// Splits into the writing and reading halves.
    pub fn into_parts(self) -> (Producer<'a>, Consumer<'a>, W) {
        (self.tx, self.rx, self.wait)
    }

    /// Reads without blocking: `Ok(0)` when nothing is there (or at end of stream).
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        Ok(self.rx.read(buf)?)
    }

    /// Writes without blocking: `Ok(0)` when the ring is full.
    pub fn try_write(&mut self, buf: &[u8]) -> Result<usize, ChannelError> {
        if self.tx.is_consumer_closed() {
            return Err(ChannelError::PeerClosed);
        }
        Ok(self.tx.write(buf)?)
    }

    fn blocking_read(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.rx.read(buf)?;
            if n > 0 {
                self.wait.reset();
                return Ok(n);
            }
            if self.rx.is_producer_closed() {
                // The producer stores `closed` after its last `tail`: read once more.
                return Ok(self.rx.read(buf)?);
            }
            self.wait.wait();
        }
    }

    fn blocking_write(&mut self, buf: &[u8]) -> Result<usize, ChannelError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.tx.is_consumer_closed() {
                return Err(ChannelError::PeerClosed);
            }
            let n = self.tx.write(buf)?;
            if n > 0 {
                self.wait.reset();
                return Ok(n);
            }
            self.wait.wait();
        }
    }
}

impl<W: WaitStrategy> embedded_io::ErrorType for Endpoint<'_, W> {
    type Error = ChannelError;
}

impl<W: WaitStrategy> embedded_io::Read for Endpoint<'_, W> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.blocking_read(buf)
    }
}

impl<W: WaitStrategy> embedded_io::Write for Endpoint<'_, W> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.blocking_write(buf)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl<W: WaitStrategy> embedded_io::ReadReady for Endpoint<'_, W> {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(self.rx.available()? > 0 || self.rx.is_producer_closed())
    }
}

impl<W: WaitStrategy> embedded_io::WriteReady for Endpoint<'_, W> {
    fn write_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(self.tx.free()? > 0 || self.tx.is_consumer_closed())
    }
}

#[cfg(feature = "std")]
impl<W: WaitStrategy> std::io::Read for Endpoint<'_, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(self.blocking_read(buf)?)
    }
}

#[cfg(feature = "std")]
impl<W: WaitStrategy> std::io::Write for Endpoint<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(self.blocking_write(buf)?)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One byte at a time, without blocking: the ring's fast path on an endpoint.
impl<W: WaitStrategy> Endpoint<'_, W> {
    /// Sends one byte, or gives it back when the ring is full or the peer has
    /// stopped reading.
    #[inline]
    pub fn push(&mut self, byte: u8) -> Result<(), PushError> {
        match self.tx.push(byte) {
            Err(PushError::Full(b)) if self.tx.is_consumer_closed() => Err(PushError::Closed(b)),
            other => other,
        }
    }

    /// Receives one byte: [`PopError::Empty`] when none is there yet,
    /// [`PopError::Closed`] once the peer is gone and everything was read.
    #[inline]
    pub fn pop(&mut self) -> Result<u8, PopError> {
        match self.rx.pop() {
            Err(PopError::Empty) if self.rx.is_producer_closed() => {
                // The producer stores `closed` after its last `tail`: look once more.
                self.rx.pop().map_err(|e| match e {
                    PopError::Empty => PopError::Closed,
                    e => e,
                })
            }
            other => other,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use embedded_io::{Read, ReadReady, Write, WriteReady};

    #[test]
    fn duplex_both_ways_and_readiness() {
        let mut ch = Channel::<8>::new();
        let (mut a, mut b) = ch.split();
        assert!(!b.read_ready().unwrap());
        assert!(a.write_ready().unwrap());
        a.write_all(b"12345678").unwrap();
        assert!(!a.write_ready().unwrap());
        assert!(b.read_ready().unwrap());
        let mut buf = [0; 8];
        b.read_exact(&mut buf).unwrap();
        b.write_all(b"back").unwrap();
        let mut back = [0; 4];
        a.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"back");
    }

    #[test]
    fn write_to_closed_peer_is_broken_pipe() {
        let mut ch = Channel::<8>::new();
        let (mut a, b) = ch.split();
        drop(b);
        assert_eq!(a.write(b"x"), Err(ChannelError::PeerClosed));
        assert_eq!(
            embedded_io::Error::kind(&ChannelError::PeerClosed),
            embedded_io::ErrorKind::BrokenPipe
        );
    }

    #[test]
    fn threads_exchange_through_blocking_endpoints() {
        let mut ch = Channel::<16>::new();
        let (mut a, mut b) = ch.split_with(Yield::default(), Yield::default());
        std::thread::scope(|s| {
            s.spawn(move || {
                for i in 0..10_000u32 {
                    a.write_all(&i.to_le_bytes()).unwrap();
                }
            });
            let mut buf = [0; 4];
            for i in 0..10_000u32 {
                b.read_exact(&mut buf).unwrap();
                assert_eq!(u32::from_le_bytes(buf), i);
            }
            assert_eq!(Read::read(&mut b, &mut buf).unwrap(), 0);
        });
    }

    #[test]
    fn endpoints_push_and_pop_bytes_and_see_the_peer_go() {
        let mut ch = Channel::<4>::new();
        let (mut a, mut b) = ch.split();
        for byte in 0..4 {
            a.push(byte).unwrap();
        }
        assert_eq!(a.push(9), Err(PushError::Full(9)));
        assert_eq!(b.pop(), Ok(0));
        b.push(42).unwrap();
        assert_eq!(a.pop(), Ok(42));
        assert_eq!(a.pop(), Err(PopError::Empty));
        drop(b);
        assert_eq!(a.pop(), Err(PopError::Closed));
        a.push(4).unwrap();
        assert_eq!(a.push(5), Err(PushError::Closed(5)));
    }
}
