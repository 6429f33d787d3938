//! Async rings: a [`Ring`] of `N` bytes with two [`WakerSlot`]s, whose [`Producer`]
//! awaits space and whose [`Consumer`] awaits data, without polling.
//!
//! The producer owns `tail` and the `space` slot (it registers there when the ring
//! is full); the consumer owns `head` and the `data` slot. Each side wakes the other's
//! slot after it moved its index, and when it is dropped (so a waiting peer sees the
//! ring closed).
//!
//! ```
//! # futures_lite_block_on::run(async {
//! use ringlink_core::asynch::Ring;
//!
//! static RING: Ring<64> = Ring::new();
//! let (mut tx, mut rx) = RING.split_static().unwrap();
//! tx.write_all(b"ping").await.unwrap();
//! let mut buf = [0u8; 4];
//! assert_eq!(rx.read(&mut buf).await.unwrap(), 4);
//! # });
//! # mod futures_lite_block_on { pub fn run<F: core::future::Future>(f: F) -> F::Output {
//! #     let mut f = core::pin::pin!(f);
//! #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
//! #     loop { if let core::task::Poll::Ready(r) = f.as_mut().poll(&mut cx) { return r } }
//! # } }
//! ```
//!
//! # Cancellation
//!
//! Every future here does its work in the one poll that returns `Ready`: dropping it
//! while it is `Pending` moves no byte. A `read` that returned `n` consumed exactly
//! `n` bytes; a `write` that returned `n` published exactly `n`.

use core::future::poll_fn;
use core::ops::{Deref, DerefMut};
use core::task::{Context, Poll, ready};

use crate::channel::ChannelError;
use crate::ring::{self, GrantError, RingError};
use crate::waker::WakerSlot;

/// A byte ring of `N` bytes whose two halves can await each other.
///
/// ```
/// use ringlink_core::asynch::Ring;
/// static RING: Ring<256> = Ring::new();
/// let (tx, rx) = RING.split_static().expect("first split");
/// assert!(RING.split_static().is_none(), "one producer, one consumer");
/// # drop((tx, rx));
/// ```
pub struct Ring<const N: usize> {
    ring: ring::Ring<N>,
    /// Where the consumer waits for data.
    data: WakerSlot,
    /// Where the producer waits for space.
    space: WakerSlot,
}

impl<const N: usize> Ring<N> {
    /// An empty ring. Usable in `const` and `static` items.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Ring {
            ring: ring::Ring::new(),
            data: WakerSlot::new(),
            space: WakerSlot::new(),
        }
    }

    /// An empty ring (loom models).
    #[cfg(loom)]
    pub fn new() -> Self {
        Ring {
            ring: ring::Ring::new(),
            data: WakerSlot::new(),
            space: WakerSlot::new(),
        }
    }

    /// Capacity in bytes.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Splits the ring into its one producer and one consumer, borrowing it.
    pub fn split(&mut self) -> (Producer<'_>, Consumer<'_>) {
        let Ring { ring, data, space } = self;
        let (tx, rx) = ring.split();
        (
            Producer::new(tx, space, data),
            Consumer::new(rx, data, Some(space)),
        )
    }

    /// Splits a `static` ring once; `None` if it was split before.
    pub fn split_static(&'static self) -> Option<(Producer<'static>, Consumer<'static>)> {
        let (tx, rx) = self.ring.split_static()?;
        Some((
            Producer::new(tx, &self.space, &self.data),
            Consumer::new(rx, &self.data, Some(&self.space)),
        ))
    }
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Wakes the peer's slot when dropped. A half keeps it as the field after its ring
/// handle: fields drop in order, so the ring is marked closed first, then the peer
/// is woken and sees it.
pub(super) struct WakePeerOnDrop<'a>(Option<&'a WakerSlot>);

impl Drop for WakePeerOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.0 {
            slot.wake();
        }
    }
}

/// The waiting side of one half: its own slot and whether it is armed.
pub(super) struct Waiter<'a> {
    slot: &'a WakerSlot,
    armed: bool,
}

impl<'a> Waiter<'a> {
    pub(super) fn new(slot: &'a WakerSlot) -> Self {
        Waiter { slot, armed: false }
    }

    /// Register-then-check: `Ready` with what `attempt` made once it makes
    /// something, else `Pending` with the waker registered *before* the last
    /// attempt (see [`WakerSlot`]). Never calls `attempt` more than twice.
    pub(super) fn poll<T, E>(
        &mut self,
        cx: &mut Context<'_>,
        mut attempt: impl FnMut() -> Result<Option<T>, E>,
    ) -> Poll<Result<T, E>> {
        let mut outcome = attempt();
        if matches!(outcome, Ok(None)) {
            self.slot.register(cx.waker());
            self.armed = true;
            outcome = attempt();
        }
        let ready = match outcome {
            Ok(Some(value)) => Ok(value),
            Err(e) => Err(e),
            Ok(None) => return Poll::Pending,
        };
        if self.armed {
            self.armed = false;
            self.slot.disarm();
        }
        Poll::Ready(ready)
    }
}

/// The writing half of an async ring. **Owns `tail`** and the ring's space slot.
///
/// Dropping it marks the ring closed and wakes a consumer that awaits data.
pub struct Producer<'a> {
    inner: ring::Producer<'a>,
    waiter: Waiter<'a>,
    /// Where the consumer waits for data.
    data: &'a WakerSlot,
    /// Declared after `inner`: see [`WakePeerOnDrop`].
    _wake_on_drop: WakePeerOnDrop<'a>,
}

impl<'a> Producer<'a> {
    pub(crate) fn new(inner: ring::Producer<'a>, own: &'a WakerSlot, data: &'a WakerSlot) -> Self {
        Producer {
            inner,
            waiter: Waiter::new(own),
            data,
            _wake_on_drop: WakePeerOnDrop(Some(data)),
        }
    }

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Whether the consumer is gone.
    pub fn is_consumer_closed(&self) -> bool {
        self.inner.is_consumer_closed()
    }

    /// Free bytes now.
    pub fn free(&mut self) -> Result<usize, RingError> {
        self.inner.free()
    }

    /// `Ready` once at least `n` bytes are free (`n` is clamped to the capacity) or the
    /// consumer is gone ([`ChannelError::PeerClosed`]).
    pub fn poll_free(&mut self, cx: &mut Context<'_>, n: usize) -> Poll<Result<(), ChannelError>> {
        let n = n.clamp(1, self.inner.capacity());
        let inner = &mut self.inner;
        ready!(self.waiter.poll(cx, || {
            let ready = inner.is_consumer_closed() || inner.free()? >= n;
            Ok::<_, RingError>(ready.then_some(()))
        }))?;
        if self.inner.is_consumer_closed() {
            return Poll::Ready(Err(ChannelError::PeerClosed));
        }
        Poll::Ready(Ok(()))
    }

    /// Waits until at least `n` bytes are free (see [`poll_free`](Self::poll_free)).
    pub async fn wait_free(&mut self, n: usize) -> Result<(), ChannelError> {
        poll_fn(|cx| self.poll_free(cx, n)).await
    }

    /// Writes what fits now without waiting (`Ok(0)` when full) and wakes the consumer.
    pub fn try_write(&mut self, buf: &[u8]) -> Result<usize, ChannelError> {
        if self.inner.is_consumer_closed() {
            return Err(ChannelError::PeerClosed);
        }
        let n = self.inner.write(buf)?;
        if n > 0 {
            self.data.wake();
        }
        Ok(n)
    }

    /// Polls a write of at least one byte of `buf` (of all of it when it is empty).
    pub fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<Result<usize, ChannelError>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let n = self.try_write(buf)?;
            if n > 0 {
                return Poll::Ready(Ok(n));
            }
            ready!(self.poll_free(cx, 1))?;
        }
    }

    /// Writes at least one byte of `buf`, waiting for space; returns how many.
    pub async fn write(&mut self, buf: &[u8]) -> Result<usize, ChannelError> {
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    /// Writes all of `buf`, waiting for space as often as needed. Cancelling it
    /// leaves a prefix of `buf` written (each `write` it awaits is whole).
    pub async fn write_all(&mut self, mut buf: &[u8]) -> Result<(), ChannelError> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            buf = buf.get(n..).unwrap_or(&[]);
        }
        Ok(())
    }

    /// Waits for free space and grants up to `max` (at least one) contiguous bytes
    /// of it: fewer when the free space wraps around the end of the ring.
    /// Committing the grant wakes the consumer.
    pub async fn grant_max(&mut self, max: usize) -> Result<WriteGrant<'_, 'a>, ChannelError> {
        self.wait_free(1).await?;
        let data = self.data;
        match self.inner.grant_max(max.max(1)) {
            Ok(inner) => Ok(WriteGrant { inner, data }),
            Err(GrantError::Corrupted(e)) => Err(ChannelError::Ring(e)),
            // A free byte was seen and only this producer fills the ring: the
            // indices moved backwards, which only corruption does.
            Err(_) => Err(ChannelError::Ring(RingError::Corrupted {
                head: 0,
                tail: 0,
            })),
        }
    }

    /// The plain ring producer (its writes do not wake the consumer: call
    /// [`wake_consumer`](Self::wake_consumer) after them).
    pub fn get_mut(&mut self) -> &mut ring::Producer<'a> {
        &mut self.inner
    }

    /// Wakes a consumer that awaits data (after writes through [`get_mut`](Self::get_mut)).
    pub fn wake_consumer(&self) {
        self.data.wake();
    }
}

/// Contiguous writable bytes of an async ring; [`commit`](Self::commit) publishes
/// them and wakes the consumer. Dropping it publishes nothing.
#[must_use = "a write grant publishes nothing until committed"]
pub struct WriteGrant<'g, 'a> {
    inner: ring::WriteGrant<'g, 'a>,
    data: &'a WakerSlot,
}

impl WriteGrant<'_, '_> {
    /// Publishes the first `used` bytes (clamped) and wakes the consumer.
    pub fn commit(self, used: usize) {
        self.inner.commit(used);
        self.data.wake();
    }
}

impl Deref for WriteGrant<'_, '_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.inner
    }
}

impl DerefMut for WriteGrant<'_, '_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.inner
    }
}

/// The reading half of an async ring. **Owns `head`** and the ring's data slot.
///
/// Dropping it marks the ring closed for reading and wakes a producer that awaits space.
pub struct Consumer<'a> {
    pub(super) inner: ring::Consumer<'a>,
    pub(super) waiter: Waiter<'a>,
    /// Where the producer waits for space; `None` when no producer ever waits
    /// ([`SharedProducer`](crate::SharedProducer) never blocks).
    pub(super) space: Option<&'a WakerSlot>,
    /// Declared after `inner`: see [`WakePeerOnDrop`].
    pub(super) wake_on_drop: WakePeerOnDrop<'a>,
}

impl<'a> Consumer<'a> {
    pub(crate) fn new(
        inner: ring::Consumer<'a>,
        own: &'a WakerSlot,
        space: Option<&'a WakerSlot>,
    ) -> Self {
        Consumer {
            inner,
            waiter: Waiter::new(own),
            space,
            wake_on_drop: WakePeerOnDrop(space),
        }
    }

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Whether the producer is gone (bytes it wrote may still be readable).
    pub fn is_producer_closed(&self) -> bool {
        self.inner.is_producer_closed()
    }

    /// Readable bytes now.
    pub fn available(&mut self) -> Result<usize, RingError> {
        self.inner.available()
    }

    /// `Ready` once more than `seen` bytes are readable or the producer is gone.
    pub fn poll_more_than(
        &mut self,
        cx: &mut Context<'_>,
        seen: usize,
    ) -> Poll<Result<(), RingError>> {
        let inner = &mut self.inner;
        self.waiter.poll(cx, || {
            let ready = inner.is_producer_closed() || inner.available()? > seen;
            Ok(ready.then_some(()))
        })
    }

    /// Waits until at least one byte is readable or the producer is gone.
    pub async fn readable(&mut self) -> Result<(), RingError> {
        poll_fn(|cx| self.poll_more_than(cx, 0)).await
    }

    /// Reads what is there without waiting (`Ok(0)` when empty) and wakes the producer.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize, RingError> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.wake_producer();
        }
        Ok(n)
    }

    /// Polls a read of at least one byte; `Ok(0)` at end of stream (producer gone,
    /// ring drained) or for an empty `buf`.
    pub fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<usize, RingError>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let n = self.try_read(buf)?;
            if n > 0 {
                return Poll::Ready(Ok(n));
            }
            if self.inner.is_producer_closed() {
                // `closed` is stored after the last `tail`: read once more.
                return Poll::Ready(self.try_read(buf));
            }
            ready!(self.poll_more_than(cx, 0))?;
        }
    }

    /// Reads at least one byte, waiting for data; `Ok(0)` at end of stream.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, RingError> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// Waits for readable bytes and grants the contiguous ones; releasing the grant
    /// wakes the producer. `Ok(None)` at end of stream.
    pub async fn read_grant(&mut self) -> Result<Option<ReadGrant<'_, 'a>>, RingError> {
        self.readable().await?;
        let space = self.space;
        match self.inner.read_grant() {
            Ok(inner) => Ok(Some(ReadGrant { inner, space })),
            Err(GrantError::Corrupted(e)) => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// Wakes a producer that awaits space (after reads through [`get_mut`](Self::get_mut)).
    pub fn wake_producer(&self) {
        if let Some(space) = self.space {
            space.wake();
        }
    }

    /// The plain ring consumer (its reads do not wake the producer: call
    /// [`wake_producer`](Self::wake_producer) after them).
    pub fn get_mut(&mut self) -> &mut ring::Consumer<'a> {
        &mut self.inner
    }
}

/// Contiguous readable bytes of an async ring; [`release`](Self::release) frees
/// them and wakes the producer. Dropping it frees nothing.
#[must_use = "a read grant frees nothing until released"]
pub struct ReadGrant<'g, 'a> {
    inner: ring::ReadGrant<'g, 'a>,
    space: Option<&'a WakerSlot>,
}

impl ReadGrant<'_, '_> {
    /// Frees the first `used` bytes (clamped) and wakes the producer.
    pub fn release(self, used: usize) {
        self.inner.release(used);
        if let Some(space) = self.space {
            space.wake();
        }
    }
}

impl Deref for ReadGrant<'_, '_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.inner
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use crate::asynch::test_support::{CountingWaker, block_on_counted};
    use core::pin::pin;

    #[test]
    fn a_pending_read_registers_once_and_the_write_wakes_it() {
        let mut ring = Ring::<8>::new();
        let (mut tx, mut rx) = ring.split();
        let count = CountingWaker::new();
        let waker = count.waker();
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0u8; 4];
        {
            let mut read = pin!(rx.read(&mut buf));
            assert!(read.as_mut().poll(&mut cx).is_pending());
            assert!(read.as_mut().poll(&mut cx).is_pending());
            assert_eq!(count.wakes(), 0, "no self-wake: nothing polls in a loop");
            assert_eq!(tx.try_write(b"ab").unwrap(), 2);
            assert_eq!(count.wakes(), 1, "the write woke the reader at once");
            assert_eq!(read.as_mut().poll(&mut cx), Poll::Ready(Ok(2)));
        }
        assert_eq!(&buf[..2], b"ab");
        tx.try_write(b"c").unwrap();
        assert_eq!(count.wakes(), 1, "nobody waits: no wake-up");
    }

    #[test]
    fn a_cancelled_read_moves_no_byte() {
        let mut ring = Ring::<8>::new();
        let (mut tx, mut rx) = ring.split();
        let mut buf = [0u8; 4];
        {
            let mut read = pin!(rx.read(&mut buf));
            let mut cx = Context::from_waker(core::task::Waker::noop());
            assert!(read.as_mut().poll(&mut cx).is_pending());
        } // cancelled
        tx.try_write(b"xyz").unwrap();
        assert_eq!(
            rx.available().unwrap(),
            3,
            "nothing consumed by the cancelled read"
        );
        let (n, polls) = block_on_counted(rx.read(&mut buf));
        assert_eq!((n.unwrap(), polls), (3, 1));
    }

    #[test]
    fn full_ring_writer_waits_for_space_and_dropped_peers_wake() {
        let mut ring = Ring::<4>::new();
        let (mut tx, mut rx) = ring.split();
        tx.try_write(b"1234").unwrap();
        let count = CountingWaker::new();
        let waker = count.waker();
        let mut cx = Context::from_waker(&waker);
        {
            let mut write = pin!(tx.write(b"5"));
            assert!(write.as_mut().poll(&mut cx).is_pending());
            let mut two = [0u8; 2];
            assert_eq!(rx.try_read(&mut two).unwrap(), 2);
            assert_eq!(count.wakes(), 1);
            assert_eq!(write.as_mut().poll(&mut cx), Poll::Ready(Ok(1)));
        }
        {
            tx.try_write(b"67").unwrap();
            let mut grant = pin!(tx.grant_max(3));
            assert!(grant.as_mut().poll(&mut cx).is_pending());
        }
        drop(rx);
        assert_eq!(
            block_on_counted(tx.write(b"x")).0,
            Err(ChannelError::PeerClosed)
        );
    }

    #[test]
    fn dropping_the_producer_ends_a_waiting_read() {
        let mut ring = Ring::<4>::new();
        let (tx, mut rx) = ring.split();
        let count = CountingWaker::new();
        let waker = count.waker();
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0u8; 1];
        let mut read = pin!(rx.read(&mut buf));
        assert!(read.as_mut().poll(&mut cx).is_pending());
        drop(tx);
        assert_eq!(count.wakes(), 1);
        assert_eq!(read.as_mut().poll(&mut cx), Poll::Ready(Ok(0)));
    }

    #[test]
    fn grants_wait_and_wake() {
        let mut ring = Ring::<8>::new();
        let (mut tx, mut rx) = ring.split();
        let (g, _) = block_on_counted(tx.grant_max(3));
        let mut g = g.unwrap();
        g.copy_from_slice(b"abc");
        g.commit(3);
        let (g, _) = block_on_counted(rx.read_grant());
        let g = g.unwrap().unwrap();
        assert_eq!(&g[..], b"abc");
        g.release(3);
    }
}
