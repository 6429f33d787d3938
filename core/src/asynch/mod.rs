//! Async ringlink (feature `async`): the rings, channels and frames of the blocking
//! API with the same names, awaiting data and space instead of polling or spinning.
//! `no_std`, allocation-free, executor-independent (embassy on a microcontroller,
//! tokio on a host).
//!
//! - [`Ring`]: a ring whose [`Producer`] awaits space and whose [`Consumer`] awaits data.
//! - [`Channel`]: two of them; its [`Endpoint`]s implement `embedded_io_async::{Read, Write}`.
//! - [`FrameWriter`] / [`FrameReader`]: frames over any `embedded_io_async` stream;
//!   [`FrameConsumer`]: awaits whole frames in a ring, also one that interrupt
//!   handlers fill through a [`SharedProducer`](crate::SharedProducer).
//! - Wakers live in [`WakerSlot`](crate::waker::WakerSlot)s (atomics, or a critical
//!   section on targets without compare-and-swap); publishing wakes a task only when
//!   one waits.
//!
//! One async protocol function, written against `embedded_io_async`, serves a
//! firmware task on a `static` channel and a desktop client on a socket:
//!
//! ```
//! # fn block_on<F: core::future::Future>(f: F) -> F::Output {
//! #     let mut f = core::pin::pin!(f);
//! #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
//! #     loop { if let core::task::Poll::Ready(r) = f.as_mut().poll(&mut cx) { return r } }
//! # }
//! use embedded_io_async::{Read, Write};
//! use ringlink_core::asynch::{Channel, FrameReader, FrameWriter};
//! use ringlink_core::frame::FrameError;
//!
//! /// Sends a `u32` request and awaits the `u32` reply, over any async byte stream.
//! async fn square<S: Read + Write>(stream: S, n: u32) -> Result<Option<u32>, FrameError<S::Error>> {
//!     let mut tx = FrameWriter::<_, 8>::new(stream);
//!     tx.send(&n).await?;
//!     FrameReader::<_, 8>::new(tx.into_inner()).recv::<u32>().await
//! }
//!
//! static CHANNEL: Channel<64> = Channel::new();
//! let (mut client, server) = CHANNEL.split_static().unwrap();
//! block_on(async {
//!     let mut server = FrameWriter::<_, 8>::new(server);
//!     server.send(&144u32).await.unwrap(); // the reply, ready in advance
//!     assert_eq!(square(&mut client, 12).await.unwrap(), Some(144));
//!     let mut server = FrameReader::<_, 8>::new(server.into_inner());
//!     assert_eq!(server.recv::<u32>().await.unwrap(), Some(12));
//! });
//! ```

pub mod channel;
pub mod frame;
pub mod ring;

pub use channel::{Channel, Endpoint};
pub use frame::{FrameConsumer, FrameReader, FrameWriter};
pub use ring::{Consumer, Producer, ReadGrant, Ring, WriteGrant};

/// Executors for the tests: a counting waker, a poll-until-ready loop that reports
/// how many polls it took, and a thread-parking `block_on`.
#[cfg(all(test, not(loom)))]
pub(crate) mod test_support {
    extern crate std;
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    /// A waker that counts its wake-ups.
    #[derive(Clone)]
    pub(crate) struct CountingWaker(Arc<Counter>);

    pub(crate) struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl CountingWaker {
        pub(crate) fn new() -> Self {
            CountingWaker(Arc::new(Counter(AtomicUsize::new(0))))
        }
        pub(crate) fn waker(&self) -> Waker {
            Waker::from(self.0.clone())
        }
        pub(crate) fn wakes(&self) -> usize {
            self.0.0.load(Ordering::SeqCst)
        }
    }

    /// Polls a future that needs no other task until it is ready (at most 100
    /// polls); returns its output and the number of polls.
    pub(crate) fn block_on_counted<F: Future>(f: F) -> (F::Output, usize) {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        for polls in 1..=100 {
            if let Poll::Ready(r) = f.as_mut().poll(&mut cx) {
                return (r, polls);
            }
        }
        panic!("future still pending after 100 polls: it waits for another task");
    }

    struct Unpark(std::thread::Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    /// Runs a future on this thread, parking it while the future is pending.
    pub(crate) fn block_on_parking<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(r) = f.as_mut().poll(&mut cx) {
                return r;
            }
            std::thread::park();
        }
    }
}
