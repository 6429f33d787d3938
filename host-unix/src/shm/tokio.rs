//! [`AsyncShmStream`]: a [`ShmStream`] driven by tokio's
//! reactor. A task whose ring is empty (or full) announces that it parks,
//! exactly as the blocking stream does, and then waits for the connection's socket,
//! which carries the wake-ups of both directions, to become readable in tokio's
//! epoll; a dead peer hangs it up, which wakes both directions. Whichever task
//! runs drains the wake-ups of both and wakes the other task when one was for it,
//! so a cleared readiness never strands it. Before it parks, a task yields to the
//! runtime for up to the spin budget ([`ShmOptions::spin`], grounded in what parking
//! costs): other tasks run in between, and a runtime with nothing else to do polls
//! it again at once, so a hand-over is as fast as on the blocking stream. No
//! runtime thread ever spins inside `poll`, and an idle connection parks after one
//! budget and costs no CPU.
//!
//! The handshake runs in the reactor too ([`AsyncShmStream::offer`],
//! [`AsyncShmStream::accept_offer`], [`AsyncShmStream::connect`]): waiting for the
//! peer's part never blocks a runtime thread. [`AsyncShmStream::from_std`] takes a
//! stream set up by the blocking handshake. The tokio `FramedStream`
//! (`ringlink_unix::tokio::FramedStream`) runs over it when both hellos offer shared
//! memory, as the blocking one runs over [`ShmStream`].
//!
//! As the tokio `Stream` does, it splits into halves, borrowed ([`AsyncShmStream::split`])
//! or owned ([`AsyncShmStream::into_split`], [`OwnedReadHalf::reunite`]); it lends ring
//! bytes in place ([`AsyncShmStream::read_grant`], [`AsyncShmStream::write_grant`]); and
//! read and write timeouts ([`AsyncShmStream::set_read_timeout`],
//! [`AsyncShmStream::set_write_timeout`]) bound each wait as on the blocking stream: a
//! read or write that waits longer fails with `TimedOut` (they need tokio's time driver).
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

use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use ::tokio::io::unix::AsyncFd;
use ::tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use ::tokio::time::Sleep;
use ringlink_host::spin::YieldClock;

use super::{
    Half, Park, Parking, ShmOptions, ShmReadGrant, ShmReadHalf, ShmStream, ShmWriteGrant,
    ShmWriteHalf, Spin, corrupted, grant_failed, monotonic_ns, moved_back, peer_gone, timed_out,
};
use crate::{ConnectOptions, Error, IntoName, PeerCredentials};

/// A descriptor owned by the stream's `Shared`, watched by tokio.
struct Watch(RawFd);

impl AsRawFd for Watch {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// The current wait of one direction: how long it may last (armed when a read or
/// write first has to wait, disarmed when it completes or times out), and since
/// when it has been yielding before it parks.
///
/// It also learns what parking costs, as the blocking stream does (see
/// [`ShmOptions::spin`]): a woken task usually finds its bytes before it takes the
/// wake-up from the socket, so the stamp of the wake-up that ended a park is read
/// at the next park, and judged against the window of the park it ended.
#[derive(Default)]
struct Deadline {
    sleep: Option<Pin<Box<Sleep>>>,
    yielding: YieldClock,
    /// When the current wait parked (monotonic ns), if it did.
    parked_at: Option<u64>,
    /// The last park that ended: when it began and when the task ran again.
    last_park: Option<(u64, u64)>,
}

impl Deadline {
    /// The wait parks (again): its park began now, unless it began before.
    fn parking(&mut self) {
        self.parked_at.get_or_insert_with(monotonic_ns);
    }

    /// The wait found what it waited for: a park it made has ended now.
    fn found(&mut self) {
        if let Some(at) = self.parked_at.take() {
            self.last_park = Some((at, monotonic_ns()));
        }
    }

    /// A wake-up stamped `stamp` was taken: a sample of the park cost if it was
    /// sent during the last park that ended, or during the current one (`spin`
    /// ignores a stamp outside the window it is given).
    fn learn(&mut self, spin: &mut Spin, stamp: Option<u64>) {
        if let Some((parked_at, woken_at)) = self.last_park.take() {
            if stamp.is_some_and(|s| s >= parked_at && s <= woken_at) {
                spin.learn(parked_at, stamp, woken_at);
                return;
            }
        }
        if let Some(parked_at) = self.parked_at {
            spin.learn(parked_at, stamp, monotonic_ns());
        }
    }

    /// Whether the wait that began when this was armed has lasted `timeout`
    /// (`None`: it may last forever); registers `cx` for the moment it will have.
    fn expired(&mut self, timeout: Option<Duration>, cx: &mut Context<'_>) -> bool {
        let Some(timeout) = timeout else {
            self.sleep = None;
            return false;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(::tokio::time::sleep(timeout)));
        if sleep.as_mut().poll(cx).is_ready() {
            self.disarm();
            return true;
        }
        false
    }

    /// Whether a wait that found nothing should yield to the runtime once more
    /// (and be polled again soon) rather than park in the reactor: for up to the
    /// half's spin budget, which is grounded in what parking costs (see
    /// [`ShmOptions::spin`] and [`YieldClock`]).
    fn keep_yielding(&mut self, budget: Duration) -> bool {
        self.yielding.keep_yielding(budget)
    }

    fn disarm(&mut self) {
        self.sleep = None;
        self.yielding.stop();
        self.parked_at = None;
    }
}

/// A shared-memory stream for tokio: `AsyncRead` + `AsyncWrite` (and
/// `embedded_io_async`), with the tokio `Stream`'s halves and names.
pub struct AsyncShmStream {
    // Field order: the registration is dropped (deregistered) before the
    // descriptor it watches, which `inner` owns. Both halves wait on it.
    event: Arc<AsyncFd<Watch>>,
    read_deadline: Deadline,
    write_deadline: Deadline,
    inner: ShmStream,
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
        AsyncShmStream::offer_over(stream.into_std()?, options).await
    }

    /// Accepts a shared-memory offer over a connected tokio stream (a client),
    /// waiting for it in the reactor within the options' handshake timeout, and
    /// validating everything before acknowledging.
    pub async fn accept_offer(
        stream: crate::tokio::Stream,
        options: &ShmOptions,
    ) -> Result<AsyncShmStream, Error> {
        AsyncShmStream::accept_over(stream.into_std()?, options).await
    }

    /// [`offer`](Self::offer) over a socket in either mode (a framed stream's
    /// duplicate stays nonblocking for the tokio stream it shares its file with).
    pub(crate) async fn offer_over(
        sock: crate::Stream,
        options: &ShmOptions,
    ) -> Result<AsyncShmStream, Error> {
        let sent = ShmStream::send_offer(sock, options)?;
        readable_by(&sent.sock, sent.deadline).await?;
        let shm = ShmStream::finish_offer(sent, options)?;
        AsyncShmStream::from_std(shm)
    }

    /// [`accept_offer`](Self::accept_offer) over a socket in either mode.
    pub(crate) async fn accept_over(
        sock: crate::Stream,
        options: &ShmOptions,
    ) -> Result<AsyncShmStream, Error> {
        readable_by(&sock, Instant::now() + options.handshake_timeout).await?;
        let shm = ShmStream::accept_offer_io(sock, options)?;
        AsyncShmStream::from_std(shm)
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

    /// Registers an established [`ShmStream`] with the current tokio runtime; its
    /// read and write timeouts carry over.
    pub fn from_std(inner: ShmStream) -> Result<AsyncShmStream, Error> {
        let watch = |fd: RawFd| {
            // SAFETY: the watched descriptor, the connection's socket, is owned by
            // `inner`'s `Shared`, which outlives the registration: `AsyncShmStream`
            // and its owned halves declare the registration (an `Arc` they share)
            // before the half (which holds the `Shared`), so the last registration is
            // dropped (deregistered) before the last `Shared`, which closes the socket.
            unsafe { AsyncFd::register_with_interest(Watch(fd), Interest::READABLE) }
                .map_err(|e| Error::from(io::Error::from(e)))
        };
        Ok(AsyncShmStream {
            event: Arc::new(watch(inner.read.shared.sock().as_raw_fd())?),
            read_deadline: Deadline::default(),
            write_deadline: Deadline::default(),
            inner,
        })
    }

    /// The blocking stream inside.
    pub fn get_ref(&self) -> &ShmStream {
        &self.inner
    }

    /// The peer's user, group and process, from the socket beside the mapping.
    pub fn peer_credentials(&self) -> Result<PeerCredentials, Error> {
        self.inner.peer_credentials()
    }

    /// Sets how long a read may wait for bytes before it fails with `TimedOut`
    /// (`None`: wait forever). Each wait has its own clock, started when it
    /// first has to wait and stopped when it ends.
    ///
    /// Cancellation: a [`read_grant`](Self::read_grant) or
    /// [`write_grant`](Self::write_grant) future dropped while it waits withdraws
    /// its wait (the peer stops waking this half, the clock stops). A read through
    /// `AsyncRead` has no future of its own to drop: abandoned while pending, its wait
    /// stays announced and its clock runs on until the next read of this half (as
    /// an I/O timeout wrapper around any `AsyncRead` does); setting the timeout again
    /// starts a fresh clock.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.inner.read.set_read_timeout(timeout);
        self.read_deadline.disarm();
    }

    /// Sets how long a write may wait for room before it fails with `TimedOut`
    /// (`None`: wait forever). As [`set_read_timeout`](Self::set_read_timeout) says
    /// of reads, for writes.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.inner.write.set_write_timeout(timeout);
        self.write_deadline.disarm();
    }

    /// Borrowed halves for reading and writing concurrently in one task (`tokio::join!`).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (
            ReadHalf {
                event: &self.event,
                deadline: &mut self.read_deadline,
                half: &mut self.inner.read,
            },
            WriteHalf {
                event: &self.event,
                deadline: &mut self.write_deadline,
                half: &mut self.inner.write,
            },
        )
    }

    /// Owned halves that can move to different tasks. Dropping the write half ends
    /// this side's stream, so the peer reads end of stream.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let AsyncShmStream {
            event,
            read_deadline,
            write_deadline,
            inner,
        } = self;
        let (read, write) = inner.into_split();
        (
            OwnedReadHalf {
                event: event.clone(),
                deadline: read_deadline,
                half: read,
            },
            OwnedWriteHalf {
                event,
                deadline: write_deadline,
                half: write,
            },
        )
    }

    /// Zero-copy read: waits in the reactor like a read, then lends the bytes that lie
    /// contiguously in the ring; `Ok(None)` at the end of the stream. See
    /// [`ShmReadHalf::read_grant`].
    pub async fn read_grant(&mut self) -> Result<Option<ShmReadGrant<'_>>, Error> {
        read_grant(&self.event, &mut self.read_deadline, &mut self.inner.read).await
    }

    /// Zero-copy write: waits in the reactor like a write for room, then lends up to
    /// `max` contiguous bytes of the ring. See [`ShmWriteHalf::write_grant`].
    pub async fn write_grant(&mut self, max: usize) -> Result<ShmWriteGrant<'_>, Error> {
        write_grant(
            &self.event,
            &mut self.write_deadline,
            &mut self.inner.write,
            max,
        )
        .await
    }
}

/// The reading half of an [`AsyncShmStream`], borrowed by [`AsyncShmStream::split`].
pub struct ReadHalf<'a> {
    event: &'a AsyncFd<Watch>,
    deadline: &'a mut Deadline,
    half: &'a mut ShmReadHalf,
}

/// The writing half of an [`AsyncShmStream`], borrowed by [`AsyncShmStream::split`].
pub struct WriteHalf<'a> {
    event: &'a AsyncFd<Watch>,
    deadline: &'a mut Deadline,
    half: &'a mut ShmWriteHalf,
}

/// The reading half of an [`AsyncShmStream`], owned, from [`AsyncShmStream::into_split`].
pub struct OwnedReadHalf {
    // Field order: the registration is dropped before the half's descriptors.
    event: Arc<AsyncFd<Watch>>,
    deadline: Deadline,
    half: ShmReadHalf,
}

/// The writing half of an [`AsyncShmStream`], owned, from [`AsyncShmStream::into_split`].
/// Dropping it ends this side's stream: the peer reads what is left, then end of stream.
pub struct OwnedWriteHalf {
    // Field order: the registration is dropped before the half's descriptors.
    event: Arc<AsyncFd<Watch>>,
    deadline: Deadline,
    half: ShmWriteHalf,
}

/// The halves given to [`OwnedReadHalf::reunite`] came from different streams; both are
/// handed back.
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl std::fmt::Debug for ReuniteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl std::fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tried to reunite halves of two different shared-memory streams")
    }
}

impl std::error::Error for ReuniteError {}

impl OwnedReadHalf {
    /// Puts the two halves of one stream back together.
    #[allow(clippy::result_large_err)] // giving the halves back is the point
    pub fn reunite(self, write: OwnedWriteHalf) -> Result<AsyncShmStream, ReuniteError> {
        let OwnedReadHalf {
            event: read_event,
            deadline: read_deadline,
            half: read,
        } = self;
        let OwnedWriteHalf {
            event: write_event,
            deadline: write_deadline,
            half: write,
        } = write;
        match read.reunite(write) {
            Ok(inner) => Ok(AsyncShmStream {
                // One registration of one stream: either `Arc` is it.
                event: read_event,
                read_deadline,
                write_deadline,
                inner,
            }),
            Err(super::ShmReuniteError(read, write)) => Err(ReuniteError(
                OwnedReadHalf {
                    event: read_event,
                    deadline: read_deadline,
                    half: read,
                },
                OwnedWriteHalf {
                    event: write_event,
                    deadline: write_deadline,
                    half: write,
                },
            )),
        }
    }

    /// Sets how long a read may wait; see [`AsyncShmStream::set_read_timeout`].
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.half.set_read_timeout(timeout);
        self.deadline.disarm();
    }

    /// Zero-copy read; see [`AsyncShmStream::read_grant`].
    pub async fn read_grant(&mut self) -> Result<Option<ShmReadGrant<'_>>, Error> {
        read_grant(&self.event, &mut self.deadline, &mut self.half).await
    }
}

impl OwnedWriteHalf {
    /// Sets how long a write may wait; see [`AsyncShmStream::set_write_timeout`].
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.half.set_write_timeout(timeout);
        self.deadline.disarm();
    }

    /// Zero-copy write; see [`AsyncShmStream::write_grant`].
    pub async fn write_grant(&mut self, max: usize) -> Result<ShmWriteGrant<'_>, Error> {
        write_grant(&self.event, &mut self.deadline, &mut self.half, max).await
    }
}

impl ReadHalf<'_> {
    /// Zero-copy read; see [`AsyncShmStream::read_grant`].
    pub async fn read_grant(&mut self) -> Result<Option<ShmReadGrant<'_>>, Error> {
        read_grant(self.event, self.deadline, self.half).await
    }
}

impl WriteHalf<'_> {
    /// Zero-copy write; see [`AsyncShmStream::write_grant`].
    pub async fn write_grant(&mut self, max: usize) -> Result<ShmWriteGrant<'_>, Error> {
        write_grant(self.event, self.deadline, self.half, max).await
    }
}

async fn read_grant<'a>(
    event: &AsyncFd<Watch>,
    deadline: &mut Deadline,
    half: &'a mut ShmReadHalf,
) -> Result<Option<ShmReadGrant<'a>>, Error> {
    let mut wait = Waiting::new(deadline, half);
    let available = poll_fn(|cx| wait.poll(cx, |d, h, cx| poll_readable(event, d, h, cx))).await?;
    let half = wait.finish()?;
    if available == 0 {
        return Ok(None);
    }
    let wake = &half.wake;
    match half.rx.read_grant() {
        Ok(grant) => Ok(Some(ShmReadGrant { grant, wake })),
        Err(e) => Err(grant_failed(e).into()),
    }
}

async fn write_grant<'a>(
    event: &AsyncFd<Watch>,
    deadline: &mut Deadline,
    half: &'a mut ShmWriteHalf,
    max: usize,
) -> Result<ShmWriteGrant<'a>, Error> {
    if max == 0 {
        return Err(Error::new(
            crate::ErrorKind::Other,
            "a write grant needs at least one byte",
        ));
    }
    let mut wait = Waiting::new(deadline, half);
    poll_fn(|cx| wait.poll(cx, |d, h, cx| poll_writable(event, d, h, cx))).await?;
    let half = wait.finish()?;
    let wake = &half.wake;
    match half.tx.grant_max(max) {
        Ok(grant) => Ok(ShmWriteGrant { grant, wake }),
        Err(e) => Err(grant_failed(e).into()),
    }
}

/// A half whose wait can be withdrawn: what a parked task announced (the flag in
/// the ring that asks the peer for a wake-up, the waker stored in the parking state).
trait Withdraw {
    fn withdraw(&mut self);
}

impl Withdraw for ShmReadHalf {
    fn withdraw(&mut self) {
        self.shared.parking.leave(Half::Reader);
        self.rx.unpark();
    }
}

impl Withdraw for ShmWriteHalf {
    fn withdraw(&mut self) {
        self.shared.parking.leave(Half::Writer);
        self.tx.unpark();
    }
}

/// The wait of a grant future. A future dropped before it completes (a `select!`
/// took another branch, a `timeout` wrapped it) withdraws its park, so the peer
/// stops sending a wake-up for every commit to a half nobody polls, and stops its
/// timeout's clock, so the next wait gets a whole timeout of its own instead of the
/// remains of an abandoned one.
struct Waiting<'d, 'a, H: Withdraw> {
    deadline: &'d mut Deadline,
    half: Option<&'a mut H>,
}

impl<'d, 'a, H: Withdraw> Waiting<'d, 'a, H> {
    fn new(deadline: &'d mut Deadline, half: &'a mut H) -> Self {
        Waiting {
            deadline,
            half: Some(half),
        }
    }

    /// Polls the wait with `step` (`poll_readable` or `poll_writable`).
    fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        step: impl FnOnce(&mut Deadline, &mut H, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match self.half.as_deref_mut() {
            Some(half) => step(self.deadline, half, cx),
            None => Poll::Ready(Err(io::Error::other("a finished wait was polled"))),
        }
    }

    /// The wait ended (the poll returned `Ready`): nothing to withdraw.
    fn finish(mut self) -> Result<&'a mut H, Error> {
        self.half
            .take()
            .ok_or_else(|| Error::new(crate::ErrorKind::Other, "a wait finished twice"))
    }
}

impl<H: Withdraw> Drop for Waiting<'_, '_, H> {
    fn drop(&mut self) {
        if let Some(half) = self.half.take() {
            half.withdraw();
            self.deadline.disarm();
        }
    }
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

/// Waits in the reactor until the ring holds bytes and returns how many, or `0` once
/// the peer has closed its side and every byte has been read. Parking is announced
/// as the blocking stream announces it; the flag stays up while the task is pending,
/// so the peer's writer sends it a wake-up.
fn poll_readable(
    event: &AsyncFd<Watch>,
    deadline: &mut Deadline,
    half: &mut ShmReadHalf,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    let mut woken = false;
    loop {
        let available = half.rx.available().map_err(corrupted)?;
        let closed = half.rx.is_producer_closed();
        if woken || available > 0 {
            half.wake.count(available > 0 || closed)?;
        }
        if available > 0 || closed {
            // A flag left up while pending is withdrawn once data is here,
            // so the writer stops waking us for every commit.
            half.rx.unpark();
            deadline.found();
            deadline.disarm();
            // `closed` is stored after the last byte: one more look sees them all.
            let available = half.rx.available().map_err(corrupted)?;
            return Poll::Ready(Ok(available));
        }
        if half.peer_gone {
            deadline.disarm();
            return Poll::Ready(Err(peer_gone()));
        }
        if !woken && deadline.keep_yielding(half.spin.budget()) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        half.shared.parking.announce(Half::Reader);
        if !half.rx.prepare_park().map_err(corrupted)? {
            continue;
        }
        // Parked: the flag stays set while we are pending, so the producer sends
        // us a wake-up, which wakes this task through tokio's epoll.
        deadline.parking();
        match poll_park(event, &half.shared.parking, Half::Reader, cx) {
            Poll::Ready(parked) => {
                half.rx.unpark();
                match parked? {
                    Park::Woken(stamp) => deadline.learn(&mut half.spin, stamp),
                    Park::PeerGone => half.peer_gone = true,
                    Park::TimedOut => {
                        deadline.disarm();
                        return Poll::Ready(Err(timed_out("shared-memory read")));
                    }
                }
                woken = true;
            }
            Poll::Pending => {
                if deadline.expired(half.timeout, cx) {
                    half.shared.parking.leave(Half::Reader);
                    half.rx.unpark();
                    return Poll::Ready(Err(timed_out("shared-memory read")));
                }
                return Poll::Pending;
            }
        }
    }
}

/// Waits in the reactor until the ring has room for at least one byte.
fn poll_writable(
    event: &AsyncFd<Watch>,
    deadline: &mut Deadline,
    half: &mut ShmWriteHalf,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    let mut woken = false;
    loop {
        if let Err(e) = half.check_open() {
            deadline.disarm();
            return Poll::Ready(Err(e));
        }
        let free = half.tx.free().map_err(corrupted)?;
        if woken || free > 0 {
            half.wake.count(free > 0)?;
        }
        if free > 0 {
            half.tx.unpark();
            deadline.found();
            deadline.disarm();
            return Poll::Ready(Ok(()));
        }
        if !woken && deadline.keep_yielding(half.spin.budget()) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        half.shared.parking.announce(Half::Writer);
        if !half.tx.prepare_park().map_err(corrupted)? {
            continue;
        }
        deadline.parking();
        match poll_park(event, &half.shared.parking, Half::Writer, cx) {
            Poll::Ready(parked) => {
                half.tx.unpark();
                match parked? {
                    Park::Woken(stamp) => deadline.learn(&mut half.spin, stamp),
                    Park::PeerGone => {
                        deadline.disarm();
                        half.check_open()?;
                        return Poll::Ready(Err(peer_gone()));
                    }
                    Park::TimedOut => {
                        deadline.disarm();
                        return Poll::Ready(Err(timed_out("shared-memory write")));
                    }
                }
                woken = true;
            }
            Poll::Pending => {
                if deadline.expired(half.timeout, cx) {
                    half.shared.parking.leave(Half::Writer);
                    half.tx.unpark();
                    return Poll::Ready(Err(timed_out("shared-memory write")));
                }
                return Poll::Pending;
            }
        }
    }
}

fn poll_read(
    event: &AsyncFd<Watch>,
    deadline: &mut Deadline,
    half: &mut ShmReadHalf,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    if buf.remaining() == 0 {
        return Poll::Ready(Ok(()));
    }
    if ready!(poll_readable(event, deadline, half, cx))? == 0 {
        return Poll::Ready(Ok(()));
    }
    match half.take(buf.initialize_unfilled())? {
        0 => Poll::Ready(Err(moved_back())),
        n => {
            buf.advance(n);
            Poll::Ready(Ok(()))
        }
    }
}

fn poll_write(
    event: &AsyncFd<Watch>,
    deadline: &mut Deadline,
    half: &mut ShmWriteHalf,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<io::Result<usize>> {
    if data.is_empty() {
        return Poll::Ready(Ok(0));
    }
    half.check_open()?;
    // Try first: the write's cached view of the free space often saves a look at
    // the peer's index.
    if let n @ 1.. = half.publish(data)? {
        // A flag left up by a wait that was pending is withdrawn, so the reader
        // stops waking us for every release.
        half.tx.unpark();
        deadline.found();
        deadline.disarm();
        half.wake.idle = 0;
        return Poll::Ready(Ok(n));
    }
    ready!(poll_writable(event, deadline, half, cx))?;
    match half.publish(data)? {
        0 => Poll::Ready(Err(moved_back())),
        n => Poll::Ready(Ok(n)),
    }
}

/// Marks the end of this side's stream: the peer reads what is left, then `0`.
fn shutdown(half: &mut ShmWriteHalf) {
    if !half.closed {
        half.close();
    }
}

/// tokio's `AsyncRead` for a reading type through `$this => (event, deadline, half)`.
macro_rules! async_read {
    ($ty:ty, $this:ident => $event:expr, $deadline:expr, $half:expr) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let $this = self.get_mut();
                poll_read($event, $deadline, $half, cx, buf)
            }
        }
    };
}

/// tokio's `AsyncWrite` for a writing type through `$this => (event, deadline, half)`.
macro_rules! async_write {
    ($ty:ty, $this:ident => $event:expr, $deadline:expr, $half:expr) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<io::Result<usize>> {
                let $this = self.get_mut();
                poll_write($event, $deadline, $half, cx, data)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            /// Marks the end of this side's stream: the peer reads what is left, then `0`.
            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $this = self.get_mut();
                shutdown($half);
                Poll::Ready(Ok(()))
            }
        }
    };
}

async_read!(AsyncShmStream, this => &this.event, &mut this.read_deadline, &mut this.inner.read);
async_write!(AsyncShmStream, this => &this.event, &mut this.write_deadline, &mut this.inner.write);
async_read!(OwnedReadHalf, this => &this.event, &mut this.deadline, &mut this.half);
async_write!(OwnedWriteHalf, this => &this.event, &mut this.deadline, &mut this.half);
async_read!(ReadHalf<'_>, this => this.event, this.deadline, this.half);
async_write!(WriteHalf<'_>, this => this.event, this.deadline, this.half);

ringlink_host::impl_embedded_io_async!(AsyncShmStream);

impl std::fmt::Debug for OwnedReadHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedReadHalf")
            .field("half", &self.half)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OwnedWriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedWriteHalf")
            .field("half", &self.half)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ReadHalf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHalf")
            .field("half", &self.half)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WriteHalf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHalf")
            .field("half", &self.half)
            .finish_non_exhaustive()
    }
}

impl ringlink_host::tokio::AsyncSharedMemoryTransport for AsyncShmStream {
    type ReadHalf = OwnedReadHalf;
    type WriteHalf = OwnedWriteHalf;

    fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        AsyncShmStream::into_split(self)
    }
}

/// Sets up shared memory for the tokio `FramedStream` after both hellos offered it,
/// with the blocking framed stream's wire protocol (see `crate::framed`): the side
/// bound to the name offers, the other accepts, all waiting in the reactor. The
/// shared-memory handshake runs on a duplicate of the connection's socket, which
/// stays in the tokio stream's mode (nonblocking; every wait polls).
pub(crate) async fn negotiate(
    stream: &crate::tokio::Stream,
    received: &[u8],
    timeout: Duration,
) -> Result<Option<AsyncShmStream>, Error> {
    use crate::framed::{ShmRole, check_ready, shm_role};
    use ringlink_host::tokio::AsyncByteStream;
    let options = ShmOptions::new().handshake_timeout(timeout);
    match shm_role(stream.as_raw_fd())? {
        None => Ok(None),
        Some(ShmRole::Offer) => {
            if received.is_empty() {
                let mut byte = [0u8; 1];
                let n = ::tokio::time::timeout(timeout, stream.read_some(&mut byte))
                    .await
                    .map_err(|_| Error::from(timed_out("shared-memory handshake")))??;
                check_ready(&byte[..n])?;
            } else {
                check_ready(received)?;
            }
            let sock = stream.get_ref().try_clone()?;
            AsyncShmStream::offer_over(sock, &options).await.map(Some)
        }
        Some(ShmRole::Accept) => {
            stream.write_parts(&[&[crate::framed::READY]]).await?;
            let sock = stream.get_ref().try_clone()?;
            AsyncShmStream::accept_over(sock, &options).await.map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair(options: ShmOptions) -> (AsyncShmStream, AsyncShmStream) {
        let (a, b) = crate::tokio::Stream::pair().unwrap();
        let (a, b) = ::tokio::join!(
            AsyncShmStream::offer(a, &options),
            AsyncShmStream::accept_offer(b, &options)
        );
        (a.unwrap(), b.unwrap())
    }

    #[test]
    fn halves_are_send() {
        fn send<T: Send>() {}
        send::<AsyncShmStream>();
        send::<OwnedReadHalf>();
        send::<OwnedWriteHalf>();
        send::<ReadHalf<'_>>();
        send::<WriteHalf<'_>>();
    }

    #[::tokio::test]
    async fn borrowed_and_owned_halves_echo_and_reunite() {
        let (mut a, mut b) = pair(ShmOptions::new().capacity(4096)).await;
        // Borrowed: write more than a ring while reading it back in the same task.
        let msg: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let echo = ::tokio::spawn(async move {
            let (mut r, mut w) = b.split();
            ::tokio::io::copy(&mut r, &mut w).await.unwrap();
            b
        });
        let mut back = vec![0u8; msg.len()];
        {
            let (mut r, mut w) = a.split();
            let (wrote, read) = ::tokio::join!(w.write_all(&msg), r.read_exact(&mut back));
            wrote.unwrap();
            read.unwrap();
        }
        assert!(back == msg);
        // Owned: to two tasks, then back together.
        let (mut r, mut w) = a.into_split();
        let writer = ::tokio::spawn(async move {
            w.write_all(b"owned").await.unwrap();
            w
        });
        let mut five = [0u8; 5];
        r.read_exact(&mut five).await.unwrap();
        assert_eq!(&five, b"owned");
        let w = writer.await.unwrap();
        let (r2, w2) = pair(ShmOptions::new()).await.0.into_split();
        let ReuniteError(r, w2) = r.reunite(w2).unwrap_err();
        let _other = r2.reunite(w2).unwrap();
        let mut a = r.reunite(w).unwrap();
        a.shutdown().await.unwrap();
        let b = echo.await.unwrap();
        drop(b);
        assert_eq!(a.read(&mut five).await.unwrap(), 0, "end of stream");
    }

    #[::tokio::test]
    async fn read_and_write_timeouts_bound_each_wait_without_blocking_the_runtime() {
        let (mut a, _b) = pair(ShmOptions::new().capacity(4096)).await;
        let ticker = ::tokio::spawn(async {
            for _ in 0..5 {
                ::tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        a.set_read_timeout(Some(Duration::from_millis(50)));
        let start = Instant::now();
        let mut buf = [0u8; 1];
        let err = a.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(start.elapsed() >= Duration::from_millis(45));
        assert!(
            ticker.is_finished(),
            "the runtime ran other tasks meanwhile"
        );
        // The next wait has its own deadline.
        let start = Instant::now();
        assert!(a.read(&mut buf).await.is_err());
        assert!(start.elapsed() >= Duration::from_millis(45));

        a.set_write_timeout(Some(Duration::from_millis(50)));
        let start = Instant::now();
        let err = a.write_all(&[7u8; 16 * 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(start.elapsed() >= Duration::from_millis(45));
    }

    #[::tokio::test]
    async fn grants_wait_in_the_reactor() {
        let (mut a, mut b) = pair(ShmOptions::new().capacity(4096)).await;
        assert!(a.write_grant(0).await.is_err());
        let reader = async move {
            let mut out = [0u8; 8];
            let n = {
                let g = b.read_grant().await.unwrap().expect("bytes, not the end");
                let n = g.copy_to(&mut out);
                g.release(n);
                n
            };
            assert!(b.read_grant().await.unwrap().is_none(), "end of stream");
            out[..n].to_vec()
        };
        let writer = async move {
            ::tokio::task::yield_now().await; // the reader parks first
            let mut g = a.write_grant(5).await.unwrap();
            assert_eq!(g.copy_from(b"grant"), 5);
            g.commit(5);
            drop(a);
        };
        let (got, ()) = ::tokio::join!(reader, writer);
        assert_eq!(got, b"grant");
    }

    #[::tokio::test]
    async fn a_grant_future_dropped_while_parked_withdraws_its_park_and_its_clock() {
        let (mut a, mut b) = pair(ShmOptions::new().capacity(4096)).await;
        let timeout = Duration::from_millis(200);
        b.set_read_timeout(Some(timeout));
        a.set_write_timeout(Some(timeout));
        // Park a read grant, then drop it (a timeout around it, as `select!` would).
        let abandoned = ::tokio::time::timeout(Duration::from_millis(50), b.read_grant()).await;
        assert!(abandoned.is_err(), "nothing was written: the grant waited");
        assert!(
            !a.inner.write.tx.consumer_parked(),
            "a dropped grant future left its park announced: the peer would send a \
             wake-up for every commit"
        );
        // Well after the abandoned wait's timeout would have ended, a new wait gets a
        // whole timeout: the bytes written 100 ms into it arrive.
        ::tokio::time::sleep(timeout + Duration::from_millis(50)).await;
        let writer = async {
            ::tokio::time::sleep(Duration::from_millis(100)).await;
            a.write_all(b"late").await.unwrap();
        };
        let reader = async {
            let g = b.read_grant().await?.expect("bytes, not the end");
            let mut out = [0u8; 4];
            let n = g.copy_to(&mut out);
            g.release(n);
            Ok::<_, Error>(out[..n].to_vec())
        };
        let ((), got) = ::tokio::join!(writer, reader);
        assert_eq!(got.unwrap(), b"late");

        // The same for a write grant waiting for room in a full ring.
        a.write_all(&[1u8; 4096]).await.unwrap();
        let abandoned = ::tokio::time::timeout(Duration::from_millis(50), a.write_grant(1)).await;
        assert!(abandoned.is_err(), "the ring was full: the grant waited");
        assert!(
            !b.inner.read.rx.producer_parked(),
            "a dropped write grant future left its park announced"
        );
        ::tokio::time::sleep(timeout + Duration::from_millis(50)).await;
        let reader = async {
            ::tokio::time::sleep(Duration::from_millis(100)).await;
            let mut all = [0u8; 4096];
            b.read_exact(&mut all).await.unwrap();
        };
        let writer = async {
            let mut g = a.write_grant(1).await?;
            g.copy_from(b"x");
            g.commit(1);
            Ok::<_, Error>(())
        };
        let ((), wrote) = ::tokio::join!(reader, writer);
        wrote.unwrap();
    }

    #[::tokio::test]
    async fn the_tokio_stream_learns_what_parking_costs_from_the_wake_up_stamps() {
        let (mut a, mut b) = pair(ShmOptions::new().capacity(4096)).await;
        assert_eq!(b.inner.read.spin.budget(), Spin::INITIAL);
        assert_eq!(a.inner.write.spin.budget(), Spin::INITIAL);
        // Every read parks (the writer sleeps 2 ms, far past the yield budget), and
        // every wake-up carries its stamp; the budget moves to what a wake-up costs
        // here. Writes park too once the 4 KiB ring is full.
        let reader = async {
            let mut buf = [0u8; 4096];
            for _ in 0..20 {
                b.read_exact(&mut buf[..1]).await.unwrap();
            }
            ::tokio::time::sleep(Duration::from_millis(5)).await;
            for _ in 0..20 {
                ::tokio::time::sleep(Duration::from_millis(2)).await;
                b.read_exact(&mut buf).await.unwrap();
            }
        };
        let writer = async {
            for _ in 0..20 {
                ::tokio::time::sleep(Duration::from_millis(2)).await;
                a.write_all(b"x").await.unwrap();
            }
            for _ in 0..20 {
                a.write_all(&[7u8; 4096]).await.unwrap();
            }
        };
        ::tokio::join!(reader, writer);
        assert_ne!(
            b.inner.read.spin.budget(),
            Spin::INITIAL,
            "20 parked reads taught the reader nothing"
        );
        assert_ne!(
            a.inner.write.spin.budget(),
            Spin::INITIAL,
            "parked writes taught the writer nothing"
        );
    }

    #[test]
    fn a_wait_yields_for_its_budget_then_parks_and_a_new_wait_yields_again() {
        let mut wait = Deadline::default();
        assert!(
            !wait.keep_yielding(Duration::ZERO),
            "no budget: park at once"
        );
        let budget = Duration::from_millis(2);
        let started = Instant::now();
        let mut yields = 0u32;
        while wait.keep_yielding(budget) {
            yields += 1;
            assert!(started.elapsed() < Duration::from_secs(5), "never stopped");
        }
        assert!(started.elapsed() >= budget);
        assert!(yields > 0);
        assert!(
            !wait.keep_yielding(budget),
            "the budget is spent for this wait"
        );
        wait.disarm();
        assert!(wait.keep_yielding(budget), "the next wait yields again");
    }
}
