//! [`AsyncShmStream`]: a [`ShmStream`] driven by tokio's
//! reactor. A task whose ring is empty (or full) announces that it parks,
//! exactly as the blocking stream does, and then waits for the connection's socket,
//! which carries the wake-ups of both directions, to become readable in tokio's
//! epoll; a dead peer hangs it up, which wakes both directions. Whichever task
//! runs drains the wake-ups of both and wakes the other task when one was for it,
//! so a cleared readiness never strands it. So an idle connection costs no CPU and
//! no runtime thread spins.
//!
//! The handshake runs in the reactor too ([`AsyncShmStream::offer`],
//! [`AsyncShmStream::accept_offer`], [`AsyncShmStream::connect`]): waiting for the
//! peer's part never blocks a runtime thread. [`AsyncShmStream::from_std`] takes a
//! stream set up by the blocking handshake.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use std::os::unix::net::UnixStream;
//! use ringlink_unix::shm::{ShmOptions, ShmStream, tokio::AsyncShmStream};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let (a, b) = UnixStream::pair()?;
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

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ::tokio::io::unix::AsyncFd;
use ::tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

use std::os::fd::AsFd;
use std::time::Instant;

use super::{Half, Park, Parking, ShmOptions, ShmStream, corrupted, peer_gone, timed_out};
use crate::{ConnectOptions, Error, IntoName};

/// A descriptor owned by the stream's `Shared`, watched by tokio.
struct Watch(RawFd);

impl AsRawFd for Watch {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A shared-memory stream for tokio: `AsyncRead` + `AsyncWrite`.
pub struct AsyncShmStream {
    // Field order: the registration is dropped (deregistered) before the
    // descriptor it watches, which `inner` owns.
    event: AsyncFd<Watch>,
    inner: ShmStream,
}

/// Waits in the reactor until a wake-up for `half` comes or the peer is gone; the
/// task has announced in the ring that it parks and checked the ring again.
/// The reactor holds [`Parking::reactor_waker`], which wakes the tasks of both
/// halves: whichever runs drains the socket for both.
fn poll_park(
    event: &AsyncFd<Watch>,
    parking: &Parking<crate::Stream>,
    half: Half,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Park>> {
    loop {
        if let Some(outcome) = parking.poll_settled(half, cx.waker()) {
            return Poll::Ready(outcome);
        }
        let reactor = parking.reactor_waker();
        let polled = event.poll_read_ready(&mut Context::from_waker(&reactor));
        let mut guard = match ready!(polled) {
            Ok(guard) => guard,
            Err(e) => {
                parking.leave(half);
                return Poll::Ready(Err(e));
            }
        };
        if parking.drain_now() {
            guard.clear_ready();
        }
    }
}

impl std::fmt::Debug for AsyncShmStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncShmStream")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// Waits in the reactor until `sock` has bytes (or hung up), at most until
/// `deadline`, so the blocking handshake step that follows returns at once.
async fn readable_by(sock: &crate::Stream, deadline: Instant) -> io::Result<()> {
    // SAFETY: `sock` outlives the registration, which is dropped (deregistered)
    // at the end of this function, before the descriptor can be closed.
    let watched = unsafe {
        AsyncFd::register_with_interest(Watch(sock.as_fd().as_raw_fd()), Interest::READABLE)
    }?;
    loop {
        let mut guard = match ::tokio::time::timeout_at(deadline.into(), watched.readable()).await {
            Ok(guard) => guard?,
            Err(_) => return Err(timed_out("shared-memory handshake")),
        };
        let mut byte = [0u8; 1];
        // SAFETY: peeks into a valid one-byte buffer; never blocks.
        let n = unsafe {
            libc::recv(
                sock.as_fd().as_raw_fd(),
                byte.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock {
            // Readiness that was stale: wait again.
            guard.clear_ready();
            continue;
        }
        return Ok(());
    }
}

impl AsyncShmStream {
    /// Offers shared memory over a connected tokio stream (the side that creates
    /// the mapping, a server) and waits in the reactor for the acknowledgement,
    /// within the options' handshake timeout. The stream's connection slot (its
    /// listener's `max_connections`) stays with the shared-memory connection.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ringlink_unix::Error> {
    /// use ringlink_unix::shm::{ShmOptions, tokio::AsyncShmStream};
    /// use ringlink_unix::tokio::Stream;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// let (a, b) = Stream::pair()?;
    /// let options = ShmOptions::new();
    /// let (a, b) = tokio::join!(
    ///     AsyncShmStream::offer(a, &options),
    ///     AsyncShmStream::accept_offer(b, &options)
    /// );
    /// let (mut a, mut b) = (a?, b?);
    /// a.write_all(b"async").await?;
    /// let mut buf = [0u8; 5];
    /// b.read_exact(&mut buf).await?;
    /// assert_eq!(&buf, b"async");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn offer(
        stream: crate::tokio::Stream,
        options: &ShmOptions,
    ) -> Result<AsyncShmStream, Error> {
        let sent = ShmStream::send_offer(stream.into_std()?, options)?;
        readable_by(&sent.sock, sent.deadline).await?;
        let shm = ShmStream::finish_offer(sent, options)?;
        Ok(AsyncShmStream::from_std(shm)?)
    }

    /// Accepts a shared-memory offer over a connected tokio stream (a client),
    /// waiting for it in the reactor within the options' handshake timeout, and
    /// validating everything before acknowledging.
    pub async fn accept_offer(
        stream: crate::tokio::Stream,
        options: &ShmOptions,
    ) -> Result<AsyncShmStream, Error> {
        let sock = stream.into_std()?;
        readable_by(&sock, Instant::now() + options.handshake_timeout).await?;
        let shm = ShmStream::accept_offer_io(sock, options)?;
        Ok(AsyncShmStream::from_std(shm)?)
    }

    /// Connects to the server at `name` and takes its shared-memory offer, all in
    /// the reactor.
    pub async fn connect(
        name: impl IntoName,
        connect: ConnectOptions,
        options: &ShmOptions,
    ) -> Result<AsyncShmStream, Error> {
        let stream = crate::tokio::Stream::connect(name, connect).await?;
        AsyncShmStream::accept_offer(stream, options).await
    }

    /// Registers an established [`ShmStream`] with the current tokio runtime.
    pub fn from_std(inner: ShmStream) -> io::Result<AsyncShmStream> {
        let watch = |fd: RawFd| {
            // SAFETY: the watched descriptor is owned by `inner` (its `Shared`),
            // which outlives the registration: `AsyncShmStream` declares the
            // registration before `inner`, so it is dropped (deregistered)
            // before the descriptor is closed.
            unsafe { AsyncFd::register_with_interest(Watch(fd), Interest::READABLE) }
        };
        Ok(AsyncShmStream {
            event: watch(inner.read.shared.sock().as_raw_fd())?,
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
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            if half.rx.is_producer_closed() {
                let n = half.rx.read(buf.initialize_unfilled()).map_err(corrupted)?;
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            if half.peer_gone {
                return Poll::Ready(Err(peer_gone()));
            }
            half.shared.parking.announce(Half::Reader);
            if !half.rx.prepare_park().map_err(corrupted)? {
                continue;
            }
            // Parked: the flag stays set while we are pending, so the producer
            // sends us a wake-up, which wakes this task through tokio's epoll.
            let parked = ready!(poll_park(
                &this.event,
                &half.shared.parking,
                Half::Reader,
                cx
            ));
            half.rx.unpark();
            match parked? {
                Park::Woken(_) => {}
                Park::PeerGone => half.peer_gone = true,
                Park::TimedOut => return Poll::Ready(Err(timed_out("shared-memory read"))),
            }
            woken = true;
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
                return Poll::Ready(Ok(n));
            }
            half.shared.parking.announce(Half::Writer);
            if !half.tx.prepare_park().map_err(corrupted)? {
                continue;
            }
            let parked = ready!(poll_park(
                &this.event,
                &half.shared.parking,
                Half::Writer,
                cx
            ));
            half.tx.unpark();
            match parked? {
                Park::Woken(_) => {}
                Park::PeerGone => {
                    half.check_open()?;
                    return Poll::Ready(Err(peer_gone()));
                }
                Park::TimedOut => return Poll::Ready(Err(timed_out("shared-memory write"))),
            }
            woken = true;
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
