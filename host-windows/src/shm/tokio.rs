//! [`AsyncShmStream`]: a [`ShmStream`] for tokio. A task whose ring is empty (or full)
//! first yields to the runtime for up to the stream's spin budget (the blocking
//! stream's [`Spin`](ringlink_host::spin::Spin), learnt from what its parks cost):
//! every other ready task runs in between, and a runtime with nothing else to do polls
//! it again at once, so a peer that answers within the budget is seen without a
//! wake-up. After the budget the task announces that it parks, exactly as the blocking
//! stream does, and registers a wait for its event with the system thread pool
//! (`RegisterWaitForSingleObject`), whose callback wakes the task: no runtime thread
//! spins inside a poll or blocks while it waits, and an idle connection costs nothing. A
//! wait registered on the peer's process at the start wakes both halves when the peer
//! exits, so a killed peer is an error, not a task that waits forever.
//!
//! The handshake is the blocking one ([`ShmStream::offer`], [`ShmStream::accept_offer`]):
//! run it where blocking is fine (a thread, `spawn_blocking`), then hand the stream to
//! [`AsyncShmStream::from_std`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ringlink_windows::Stream;
//! use ringlink_windows::shm::{ShmOptions, ShmStream, tokio::AsyncShmStream};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let (a, b) = Stream::pair()?;
//! let peer = std::thread::spawn(move || ShmStream::accept_offer(b, &ShmOptions::new()));
//! let mut a = AsyncShmStream::from_std(ShmStream::offer(a, &ShmOptions::new())?)?;
//! let mut b = AsyncShmStream::from_std(peer.join().unwrap()?)?;
//! a.write_all(b"async").await?;
//! let mut buf = [0u8; 5];
//! b.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"async");
//! # Ok(())
//! # }
//! ```

use std::ffi::c_void;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::sys::RegisteredWait;
use super::{ShmStream, corrupted, monotonic_ns, peer_gone};
use ringlink_host::spin::{Spin, YieldClock};

/// One half's yielding before it parks, and the park it learns from.
#[derive(Debug, Default)]
struct Yielding {
    clock: YieldClock,
    /// When the half last parked ([`monotonic_ns`]), until its wake-up is judged.
    parked_at: Option<u64>,
}

impl Yielding {
    /// Whether the task should yield once more rather than park (see [`YieldClock`]).
    fn keep_yielding(&mut self, budget: Duration) -> bool {
        self.clock.keep_yielding(budget)
    }

    /// The half parks now; whether this starts a park (a task polled again while
    /// still parked keeps the time its park began).
    fn parking(&mut self) -> bool {
        self.clock.stop();
        let new = self.parked_at.is_none();
        if new {
            self.parked_at = Some(monotonic_ns());
        }
        new
    }

    /// The wait is over (bytes or room found, or its event fired). If it had parked,
    /// the peer's last wake-up, stamped `stamp`, is what the park cost: it moves the
    /// budget (a stamp from before the park says nothing and is ignored).
    fn settle(&mut self, spin: &mut Spin, stamp: Option<u64>) {
        self.clock.stop();
        if let Some(parked_at) = self.parked_at.take() {
            spin.learn(parked_at, stamp, monotonic_ns());
        }
    }
}

/// Where a registered wait leaves its news for one half's task.
#[derive(Default)]
struct Slot {
    /// The half's event was signalled (the registered wait took the signal).
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Slot {
    fn wake(&self) {
        let waker = self.waker.lock().ok().and_then(|mut w| w.take());
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// What the thread-pool callbacks reach: both halves' slots and whether the peer's
/// process exited. Boxed, so its address is stable for the callbacks.
#[derive(Default)]
struct Waits {
    read: Slot,
    write: Slot,
    peer_exited: AtomicBool,
}

/// The callback of a half's event wait: `context` is that half's [`Slot`].
unsafe extern "system" fn event_fired(context: *mut c_void, _timed_out: bool) {
    // SAFETY: the context is a `Slot` inside the stream's `Waits`, which outlives every
    // registration (`RegisteredWait`'s drop waits for a running callback).
    let slot = unsafe { &*context.cast::<Slot>() };
    slot.fired.store(true, Ordering::Release);
    slot.wake();
}

/// The callback of the wait on the peer's process: `context` is the stream's [`Waits`].
unsafe extern "system" fn peer_exited(context: *mut c_void, _timed_out: bool) {
    // SAFETY: as for `event_fired`: `Waits` outlives the registration.
    let waits = unsafe { &*context.cast::<Waits>() };
    waits.peer_exited.store(true, Ordering::Release);
    waits.read.wake();
    waits.write.wake();
}

/// A shared-memory stream for tokio: `AsyncRead` + `AsyncWrite`.
pub struct AsyncShmStream {
    // Field order: the registrations are dropped (unregistered, waiting for running
    // callbacks) before the `Waits` they point to and before the handles they wait
    // on, which `inner` owns.
    read_wait: Option<RegisteredWait>,
    write_wait: Option<RegisteredWait>,
    _exit_wait: RegisteredWait,
    waits: Box<Waits>,
    read_yield: Yielding,
    write_yield: Yielding,
    inner: ShmStream,
}

impl std::fmt::Debug for AsyncShmStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncShmStream")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// One half's wait: `Ready` once its event was signalled (taking the signal), or the
/// peer exited; otherwise registers the waker (and, once, the wait) and is `Pending`.
fn poll_event(
    cx: &mut Context<'_>,
    wait: &mut Option<RegisteredWait>,
    slot: &Slot,
    waits: &Waits,
    event: &std::os::windows::io::OwnedHandle,
) -> Poll<io::Result<()>> {
    if slot.fired.swap(false, Ordering::Acquire) {
        // The one-shot wait is spent: unregister it (its callback has run).
        *wait = None;
        return Poll::Ready(Ok(()));
    }
    if waits.peer_exited.load(Ordering::Acquire) {
        return Poll::Ready(Ok(()));
    }
    if let Ok(mut w) = slot.waker.lock() {
        *w = Some(cx.waker().clone());
    }
    if wait.is_none() {
        // SAFETY: `event` (owned by the stream's `inner`) and `slot` (inside its boxed
        // `Waits`) outlive the registration, which the stream drops first.
        let registered = unsafe {
            RegisteredWait::new(event, event_fired, (slot as *const Slot).cast::<c_void>())
        };
        *wait = Some(registered?);
    }
    // A signal that came between the check above and the registration fired the
    // callback, which wakes the waker stored before it.
    Poll::Pending
}

impl AsyncShmStream {
    /// Makes an established [`ShmStream`] a tokio stream (any runtime: the waits are
    /// the system thread pool's).
    pub fn from_std(inner: ShmStream) -> io::Result<AsyncShmStream> {
        let waits = Box::<Waits>::default();
        // SAFETY: the peer's process handle (in `inner`'s `Shared`) and `waits` outlive
        // the registration, which the stream declares (and so drops) before both.
        let exit_wait = unsafe {
            RegisteredWait::new(
                &inner.read.shared.peer,
                peer_exited,
                (&*waits as *const Waits).cast::<c_void>(),
            )
        }?;
        Ok(AsyncShmStream {
            read_wait: None,
            write_wait: None,
            _exit_wait: exit_wait,
            waits,
            read_yield: Yielding::default(),
            write_yield: Yielding::default(),
            inner,
        })
    }

    /// The blocking stream inside.
    pub fn get_ref(&self) -> &ShmStream {
        &self.inner
    }
}

impl AsyncRead for AsyncShmStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let half = &mut this.inner.read;
        let mut woken = false;
        loop {
            let dst = buf.initialize_unfilled();
            if dst.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let n = half.take(dst)?;
            if woken || n > 0 {
                half.wake.count(n > 0 || half.rx.is_producer_closed())?;
            }
            if n > 0 {
                // A flag left up while pending is withdrawn once data is here,
                // so the writer stops waking us for every commit.
                half.rx.unpark();
                this.read_yield.settle(&mut half.spin, half.wake.stamp());
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            if half.rx.is_producer_closed() {
                this.read_yield.settle(&mut half.spin, half.wake.stamp());
                let n = half.rx.read(buf.initialize_unfilled()).map_err(corrupted)?;
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.waits.peer_exited.load(Ordering::Acquire) {
                return Poll::Ready(Err(peer_gone()));
            }
            if !woken && this.read_yield.keep_yielding(half.spin.budget()) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if !half.rx.prepare_park().map_err(corrupted)? {
                continue;
            }
            // Parked: the flag stays set while we are pending, so the producer
            // signals our event, whose registered wait wakes this task.
            if this.read_yield.parking() {
                half.parks += 1;
            }
            let [own, _] = half.wake.events();
            let slot = &this.waits.read;
            match poll_event(cx, &mut this.read_wait, slot, &this.waits, own) {
                Poll::Ready(r) => {
                    r?;
                    half.rx.unpark();
                    this.read_yield.settle(&mut half.spin, half.wake.stamp());
                    woken = true;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for AsyncShmStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.inner.write.closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let half = &mut this.inner.write;
        let mut woken = false;
        loop {
            if half.tx.is_consumer_closed() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the shared-memory peer closed its reading side",
                )));
            }
            let n = half.publish(data)?;
            if woken || n > 0 {
                half.wake.count(n > 0)?;
            }
            if n > 0 {
                half.tx.unpark();
                this.write_yield.settle(&mut half.spin, half.wake.stamp());
                return Poll::Ready(Ok(n));
            }
            if this.waits.peer_exited.load(Ordering::Acquire) {
                return Poll::Ready(Err(peer_gone()));
            }
            if !woken && this.write_yield.keep_yielding(half.spin.budget()) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if !half.tx.prepare_park().map_err(corrupted)? {
                continue;
            }
            if this.write_yield.parking() {
                half.parks += 1;
            }
            let [own, _] = half.wake.events();
            let slot = &this.waits.write;
            match poll_event(cx, &mut this.write_wait, slot, &this.waits, own) {
                Poll::Ready(r) => {
                    r?;
                    half.tx.unpark();
                    this.write_yield.settle(&mut half.spin, half.wake.stamp());
                    woken = true;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Marks the end of this side's stream: the peer reads what is left, then `0`.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.inner.write.closed {
            this.inner.write.close();
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Stream;
    use crate::shm::ShmOptions;
    use ::tokio::io::{AsyncReadExt, AsyncWriteExt};
    use std::time::Duration;

    fn pair() -> (AsyncShmStream, AsyncShmStream) {
        pair_with(ShmOptions::new())
    }

    /// A pair whose offering side (`a`) has a 4 KiB ring and `options`' spin.
    fn pair_with(options: ShmOptions) -> (AsyncShmStream, AsyncShmStream) {
        let (a, b) = Stream::pair().unwrap();
        let accept = options.clone();
        let peer = std::thread::spawn(move || ShmStream::accept_offer(b, &accept));
        let options = options.capacity(4096);
        let a = AsyncShmStream::from_std(ShmStream::offer(a, &options).unwrap()).unwrap();
        let b = AsyncShmStream::from_std(peer.join().unwrap().unwrap()).unwrap();
        (a, b)
    }

    #[test]
    fn async_streams_are_send() {
        fn send<T: Send>() {}
        send::<AsyncShmStream>();
    }

    /// One runtime thread, two tasks: each parks in turn (a 4 KiB ring for 1 MiB), and
    /// only registered waits can wake them, since nothing else runs.
    #[::tokio::test(flavor = "current_thread")]
    async fn tasks_on_one_thread_park_and_wake_each_other() {
        let (mut a, mut b) = pair();
        let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = ::tokio::spawn(async move {
            a.write_all(&sent).await.unwrap();
            a.shutdown().await.unwrap();
            a
        });
        let mut back = Vec::new();
        let read = ::tokio::time::timeout(Duration::from_secs(60), b.read_to_end(&mut back));
        read.await.expect("no lost wake-up").unwrap();
        assert!(back == data, "1 MiB came back changed");
        drop(writer.await.unwrap());
    }

    /// Two tasks answering each other on one runtime thread: each yields while its
    /// ring is empty, so the other runs and answers within the spin budget, and a
    /// hand-over costs no park (without the yield, every receive parks on its
    /// registered wait). Spin off (`ShmOptions::spin(ZERO)`): every receive parks.
    #[::tokio::test(flavor = "current_thread")]
    async fn tasks_on_one_thread_hand_over_without_parking() {
        const ROUNDS: u32 = 2000;
        // Both sides are spawned tasks, as a server's connections are (the future
        // `block_on` drives is polled only between batches of the other tasks).
        async fn ping_pong(mut a: AsyncShmStream, mut b: AsyncShmStream) -> u64 {
            let echo = ::tokio::spawn(async move {
                let mut byte = [0u8; 1];
                for _ in 0..ROUNDS {
                    b.read_exact(&mut byte).await.unwrap();
                    b.write_all(&byte).await.unwrap();
                }
                b
            });
            let client = ::tokio::spawn(async move {
                let mut byte = [7u8; 1];
                for _ in 0..ROUNDS {
                    a.write_all(&byte).await.unwrap();
                    a.read_exact(&mut byte).await.unwrap();
                }
                a
            });
            let both = async { (client.await.unwrap(), echo.await.unwrap()) };
            let (a, b) = ::tokio::time::timeout(Duration::from_secs(60), both)
                .await
                .expect("the round trips finished");
            a.get_ref().spin_stats().1 + b.get_ref().spin_stats().1
        }
        let (a, b) = pair();
        let parks = ping_pong(a, b).await;
        // Half the round trips at most: on a loaded machine (other tests in parallel)
        // a descheduled runtime thread outlasts a budget now and then, and that
        // receive parks; without the yield every receive parks.
        assert!(
            parks < u64::from(ROUNDS) / 2,
            "{parks} parks in {ROUNDS} round trips"
        );
        let (a, b) = pair_with(ShmOptions::new().spin(Duration::ZERO));
        let parks = ping_pong(a, b).await;
        assert!(
            parks >= u64::from(ROUNDS),
            "without a budget every receive parks: {parks} parks in {ROUNDS} round trips"
        );
    }

    /// A peer that signals the task's event over and over with nothing to read makes
    /// the read `InvalidData`, not a task that wakes forever.
    #[::tokio::test(flavor = "current_thread")]
    async fn a_wake_up_storm_is_invalid_data() {
        use std::sync::Arc;
        let (mut a, _b) = pair();
        let [own, ..] = a.get_ref().raw_events();
        let own = own as usize;
        let stop = Arc::new(AtomicBool::new(false));
        let storm = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: the handle is the stream's event, alive until `stop` is set
                    // (the stream outlives this thread, joined below).
                    unsafe { windows_sys::Win32::System::Threading::SetEvent(own as _) };
                    std::thread::yield_now();
                }
            })
        };
        let mut buf = [0u8; 1];
        let read = ::tokio::time::timeout(Duration::from_secs(20), a.read(&mut buf)).await;
        stop.store(true, Ordering::Relaxed);
        storm.join().unwrap();
        let err = read.expect("an error, not a wait").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }

    #[::tokio::test(flavor = "current_thread")]
    async fn a_closed_peer_ends_the_stream() {
        let (a, mut b) = pair();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(a);
        });
        let mut buf = [0u8; 4];
        let n = ::tokio::time::timeout(Duration::from_secs(20), b.read(&mut buf))
            .await
            .expect("woken by the close")
            .unwrap();
        assert_eq!(n, 0);
        closer.join().unwrap();
    }
}
