//! Async duplex channels: two async rings, two [`Endpoint`]s speaking
//! `embedded_io_async` (and the non-blocking `embedded_io::{ReadReady, WriteReady}`).
//!
//! A read awaits data, a write awaits space; neither polls. When the peer endpoint
//! is dropped, reads drain what is left and then return `Ok(0)`, writes fail with
//! [`ChannelError::PeerClosed`], and a task awaiting either is woken to see it.
//!
//! ```
//! # fn block_on<F: core::future::Future>(f: F) -> F::Output {
//! #     let mut f = core::pin::pin!(f);
//! #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
//! #     loop { if let core::task::Poll::Ready(r) = f.as_mut().poll(&mut cx) { return r } }
//! # }
//! use embedded_io_async::{Read, Write};
//! use ringlink_core::asynch::Channel;
//!
//! static CHANNEL: Channel<64> = Channel::new();
//! let (mut a, mut b) = CHANNEL.split_static().unwrap();
//! block_on(async {
//!     a.write_all(b"hello").await.unwrap();
//!     let mut buf = [0u8; 5];
//!     b.read_exact(&mut buf).await.unwrap();
//!     assert_eq!(&buf, b"hello");
//! });
//! ```
//!
//! # Cancellation
//!
//! `read` and `write` move bytes only in the poll that completes them: a cancelled
//! one moved nothing. (`read_exact` and `write_all` are loops over them, as the
//! `embedded_io_async` traits define them: cancelling one of those leaves a prefix
//! moved; frames never need them to be whole, see [`FrameWriter`](super::FrameWriter).)

use super::ring::{Consumer, Producer, Ring};
use crate::channel::ChannelError;

/// An async duplex channel: two rings of `N` bytes each.
///
/// A `static` channel can be split once with [`Channel::split_static`].
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

    /// Splits into two endpoints, borrowing the channel.
    pub fn split(&mut self) -> (Endpoint<'_>, Endpoint<'_>) {
        let (tx_a, rx_b) = self.a_to_b.split();
        let (tx_b, rx_a) = self.b_to_a.split();
        (Endpoint::new(tx_a, rx_a), Endpoint::new(tx_b, rx_b))
    }

    /// Splits a `static` channel once; `None` if it was split before.
    pub fn split_static(&'static self) -> Option<(Endpoint<'static>, Endpoint<'static>)> {
        let (tx_a, rx_b) = self.a_to_b.split_static()?;
        let (tx_b, rx_a) = self.b_to_a.split_static()?;
        Some((Endpoint::new(tx_a, rx_a), Endpoint::new(tx_b, rx_b)))
    }
}

impl<const N: usize> Default for Channel<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// One end of an async duplex byte channel: an async [`Producer`] towards the peer
/// and an async [`Consumer`] from it.
pub struct Endpoint<'a> {
    tx: Producer<'a>,
    rx: Consumer<'a>,
}

impl<'a> Endpoint<'a> {
    /// Joins an async producer and consumer into an endpoint.
    pub fn new(tx: Producer<'a>, rx: Consumer<'a>) -> Self {
        Endpoint { tx, rx }
    }

    /// The writing half.
    pub fn producer(&mut self) -> &mut Producer<'a> {
        &mut self.tx
    }

    /// The reading half.
    pub fn consumer(&mut self) -> &mut Consumer<'a> {
        &mut self.rx
    }

    /// Splits into the writing and reading halves (for two tasks).
    pub fn into_parts(self) -> (Producer<'a>, Consumer<'a>) {
        (self.tx, self.rx)
    }

    /// Reads without waiting: `Ok(0)` when nothing is there (or at end of stream).
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        Ok(self.rx.try_read(buf)?)
    }

    /// Writes without waiting: `Ok(0)` when the ring is full.
    pub fn try_write(&mut self, buf: &[u8]) -> Result<usize, ChannelError> {
        self.tx.try_write(buf)
    }
}

impl embedded_io_async::ErrorType for Endpoint<'_> {
    type Error = ChannelError;
}

impl embedded_io_async::Read for Endpoint<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        Ok(self.rx.read(buf).await?)
    }
}

impl embedded_io_async::Write for Endpoint<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ChannelError> {
        self.tx.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), ChannelError> {
        Ok(())
    }
}

impl embedded_io::ReadReady for Endpoint<'_> {
    fn read_ready(&mut self) -> Result<bool, ChannelError> {
        Ok(self.rx.available()? > 0 || self.rx.is_producer_closed())
    }
}

impl embedded_io::WriteReady for Endpoint<'_> {
    fn write_ready(&mut self) -> Result<bool, ChannelError> {
        Ok(self.tx.free()? > 0 || self.tx.is_consumer_closed())
    }
}

impl embedded_io_async::ErrorType for Producer<'_> {
    type Error = ChannelError;
}

impl embedded_io_async::Write for Producer<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ChannelError> {
        Producer::write(self, buf).await
    }

    async fn flush(&mut self) -> Result<(), ChannelError> {
        Ok(())
    }
}

impl embedded_io_async::ErrorType for Consumer<'_> {
    type Error = ChannelError;
}

impl embedded_io_async::Read for Consumer<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        Ok(Consumer::read(self, buf).await?)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use crate::asynch::test_support::block_on_counted;
    use embedded_io::{ReadReady, WriteReady};
    use embedded_io_async::{Read, Write};

    #[test]
    fn duplex_both_ways_readiness_and_close() {
        let mut ch = Channel::<8>::new();
        let (mut a, mut b) = ch.split();
        assert!(!b.read_ready().unwrap());
        assert!(a.write_ready().unwrap());
        block_on_counted(a.write_all(b"12345678")).0.unwrap();
        assert!(!a.write_ready().unwrap());
        let mut buf = [0; 8];
        block_on_counted(b.read_exact(&mut buf)).0.unwrap();
        assert_eq!(&buf, b"12345678");
        block_on_counted(b.write_all(b"back")).0.unwrap();
        let mut back = [0; 4];
        block_on_counted(a.read_exact(&mut back)).0.unwrap();
        assert_eq!(&back, b"back");
        drop(b);
        assert_eq!(
            block_on_counted(a.write(b"x")).0,
            Err(ChannelError::PeerClosed)
        );
        assert_eq!(block_on_counted(a.read(&mut back)).0, Ok(0));
    }

    /// Two threads, each running one endpoint's future on a parking executor: every
    /// byte arrives in order both ways, through a ring much smaller than the data.
    #[test]
    fn threads_exchange_through_async_endpoints() {
        let mut ch = Channel::<16>::new();
        let (mut a, mut b) = ch.split();
        const COUNT: u32 = 20_000;
        std::thread::scope(|s| {
            s.spawn(move || {
                crate::asynch::test_support::block_on_parking(async {
                    for i in 0..COUNT {
                        a.write_all(&i.to_le_bytes()).await.unwrap();
                    }
                })
            });
            crate::asynch::test_support::block_on_parking(async {
                let mut buf = [0; 4];
                for i in 0..COUNT {
                    b.read_exact(&mut buf).await.unwrap();
                    assert_eq!(u32::from_le_bytes(buf), i);
                }
                assert_eq!(b.read(&mut buf).await.unwrap(), 0, "end of stream");
            });
        });
    }
}
