//! Async ringlink on tokio: the same [`Listener`], [`Stream`] and [`FramedStream`],
//! with the same names, security checks and errors as the blocking API.
//!
//! Binding takes the same lock, sets the same modes and applies the same peer policy and
//! connection limit; `accept` backs off with `tokio::time::sleep` when the process is out
//! of descriptors; `connect` honours the same deadline and `wait_for_server` without
//! blocking the runtime. Read and write timeouts of [`ConnectOptions`] apply to the
//! blocking API only: wrap async calls in `tokio::time::timeout`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use ringlink_unix::{ConnectOptions, ListenerOptions};
//! use ringlink_unix::tokio::{Listener, Stream};
//!
//! # let dir = std::env::temp_dir().join(format!("ringlink-tokio-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let name = dir.join("echo");
//! let listener = Listener::bind(&name, ListenerOptions::new())?;
//! tokio::spawn(async move {
//!     while let Ok(stream) = listener.accept().await {
//!         tokio::spawn(async move {
//!             let (mut r, mut w) = stream.into_split();
//!             let _ = tokio::io::copy(&mut r, &mut w).await;
//!         });
//!     }
//! });
//! let mut stream = Stream::connect(&name, ConnectOptions::new()).await?;
//! stream.write_all(b"ping").await?;
//! let mut reply = [0u8; 4];
//! stream.read_exact(&mut reply).await?;
//! assert_eq!(&reply, b"ping");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use ::tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use ::tokio::io::{Interest, ReadBuf};
use ringlink_host::SplitStream;
use ringlink_host::tokio::{AsyncByteStream, AsyncConnect};
use ringlink_host::tokio_halves::AsyncSplitStream;

#[cfg(test)]
use crate::FrameOptions;
use crate::connect::{Attempt, Connector};
use crate::name::IntoName;
use crate::{ConnectOptions, Error, ErrorKind, ListenerOptions, Name, PeerCredentials, PeerPolicy};

/// Shortest and longest pause of `accept` while the process is out of descriptors.
const BACKOFF_MIN: Duration = Duration::from_millis(1);
const BACKOFF_MAX: Duration = Duration::from_millis(100);

/// An async ringlink server socket; see [`crate::Listener`] for what binding guarantees.
#[derive(Debug)]
pub struct Listener {
    inner: AsyncFd<crate::Listener>,
}

impl Listener {
    /// Binds `name` like [`crate::Listener::bind`]. Must be called inside a tokio runtime.
    pub fn bind(name: impl IntoName, options: ListenerOptions) -> Result<Listener, Error> {
        Listener::from_std(crate::Listener::bind(name, options)?)
    }

    /// Wraps a bound blocking listener. Must be called inside a tokio runtime.
    pub fn from_std(listener: crate::Listener) -> Result<Listener, Error> {
        listener.set_nonblocking(true);
        // SAFETY: the listener owns its descriptor (an `OwnedFd` that is never replaced),
        // so it stays open and the same until the `AsyncFd` drops or releases it.
        let inner = unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) }
            .map_err(|e| Error::os(e.into()))?;
        Ok(Listener { inner })
    }

    /// Accepts the next connection that passes the peer policy and the connection limit.
    /// Out of descriptors or kernel memory, it sleeps (1 ms doubling to 100 ms) and tries
    /// again; a connection that cannot be registered with the runtime is closed and
    /// skipped. So it fails only when the listener itself cannot go on, and
    /// `while let Ok(stream) = listener.accept().await` keeps serving.
    pub async fn accept(&self) -> Result<Stream, Error> {
        let mut pause = BACKOFF_MIN;
        loop {
            let mut guard = self.inner.readable().await.map_err(Error::os)?;
            match guard.get_inner().accept_pending() {
                Ok(Some(stream)) => {
                    // Registering with the reactor can fail (epoll out of memory or
                    // watches): that connection is closed, and the listener goes on after
                    // a pause, as when out of descriptors.
                    if let Ok(stream) = Stream::from_std(stream) {
                        return Ok(stream);
                    }
                }
                Ok(None) => {
                    guard.clear_ready();
                    pause = BACKOFF_MIN;
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::ResourceExhausted => {}
                Err(e) => return Err(e),
            }
            drop(guard);
            ::tokio::time::sleep(pause).await;
            pause = (pause * 2).min(BACKOFF_MAX);
        }
    }

    /// The name this listener is bound to.
    pub fn name(&self) -> &Name {
        self.inner.get_ref().name()
    }

    /// The peer policy in force.
    pub fn peer_policy(&self) -> &PeerPolicy {
        self.inner.get_ref().peer_policy()
    }

    /// How many connections were closed at accept (peer policy or connection limit).
    pub fn refused_count(&self) -> u64 {
        self.inner.get_ref().refused_count()
    }

    /// How many accepted connections are open, when `max_connections` is set.
    pub fn open_connections(&self) -> Option<usize> {
        self.inner.get_ref().open_connections()
    }

    /// The blocking listener inside.
    pub fn get_ref(&self) -> &crate::Listener {
        self.inner.get_ref()
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.get_ref().as_fd()
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.get_ref().as_raw_fd()
    }
}

/// An async connected ringlink stream: `AsyncRead` + `AsyncWrite` (also on `&Stream`),
/// never `SIGPIPE`.
#[derive(Debug)]
pub struct Stream {
    inner: AsyncFd<crate::Stream>,
}

impl Stream {
    /// Connects like [`crate::Stream::connect`] (deadline, `wait_for_server`, the check of
    /// the server's user, the same errors) without blocking the runtime.
    pub async fn connect(name: impl IntoName, options: ConnectOptions) -> Result<Stream, Error> {
        let name = name.into_name()?;
        let mut connector = Connector::new(&name, options)?;
        loop {
            match connector.attempt(false)? {
                Attempt::Connected(fd) => {
                    connector.check_server(fd.as_fd())?;
                    return Stream::from_std(crate::Stream::from_fd(fd, true));
                }
                Attempt::InProgress(fd) => {
                    let stream = Stream::from_std(crate::Stream::from_fd(fd, true))?;
                    let writable = stream.inner.writable();
                    let guard = match connector.remaining()? {
                        Some(left) => ::tokio::time::timeout(left, writable)
                            .await
                            .map_err(|_| connector.timed_out())?,
                        None => writable.await,
                    };
                    drop(guard.map_err(Error::os)?);
                    if let Some(e) = stream.inner.get_ref().take_error()? {
                        return Err(connector.explain(e));
                    }
                    connector.check_server(stream.inner.get_ref().as_fd())?;
                    return Ok(stream);
                }
                Attempt::RetryAfter(pause) => ::tokio::time::sleep(pause).await,
            }
        }
    }

    /// A connected pair of async streams in this process.
    pub fn pair() -> Result<(Stream, Stream), Error> {
        let (a, b) = crate::Stream::pair()?;
        Ok((Stream::from_std(a)?, Stream::from_std(b)?))
    }

    /// Wraps a blocking stream, switching it to nonblocking mode. Must be called inside a
    /// tokio runtime.
    pub fn from_std(stream: crate::Stream) -> Result<Stream, Error> {
        stream.set_nonblocking(true)?;
        // SAFETY: the stream owns its descriptor (an `OwnedFd` that is never replaced),
        // so it stays open and the same until the `AsyncFd` drops or releases it.
        let inner = unsafe { AsyncFd::register(stream) }.map_err(|e| Error::os(e.into()))?;
        Ok(Stream { inner })
    }

    /// The blocking stream inside, switched back to blocking mode.
    pub fn into_std(self) -> Result<crate::Stream, Error> {
        let stream = self.inner.into_inner();
        stream.set_nonblocking(false)?;
        Ok(stream)
    }

    /// The blocking stream inside (for credentials, timeouts and the descriptor).
    pub fn get_ref(&self) -> &crate::Stream {
        self.inner.get_ref()
    }

    /// The peer's user id, group id and process id.
    pub fn peer_credentials(&self) -> Result<PeerCredentials, Error> {
        self.inner.get_ref().peer_credentials()
    }

    /// Waits until the stream is readable (data or end of stream).
    pub async fn readable(&self) -> Result<(), Error> {
        self.inner.readable().await.map(drop).map_err(Error::os)
    }

    /// Waits until the stream is writable.
    pub async fn writable(&self) -> Result<(), Error> {
        self.inner.writable().await.map(drop).map_err(Error::os)
    }

    /// Reads without waiting: [`ErrorKind::WouldBlock`] when nothing is there.
    pub fn try_read(&self, buf: &mut [u8]) -> Result<usize, Error> {
        self.inner.get_ref().try_read(buf)
    }

    /// Writes without waiting: [`ErrorKind::WouldBlock`] when the socket buffer is full.
    pub fn try_write(&self, buf: &[u8]) -> Result<usize, Error> {
        self.inner.get_ref().try_write(buf)
    }

    /// Shuts down reading, writing or both.
    pub fn shutdown(&self, how: Shutdown) -> Result<(), Error> {
        self.inner.get_ref().shutdown(how)
    }

    /// Borrowed halves for reading and writing concurrently in one task (`tokio::join!`).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        ringlink_host::split(self)
    }

    /// Owned halves that can move to different tasks. Dropping the write half shuts
    /// down writing, so the peer reads end of stream.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        ringlink_host::into_split(self)
    }
}

/// Settles the readiness of one nonblocking transfer of up to `asked` bytes, as tokio's own
/// sockets do: `WouldBlock` clears it (`None`: wait for the reactor and try again), and so
/// does a short transfer (some bytes, fewer than asked). A short read drained the socket
/// and a short write filled it, so the edge the reactor saw is spent: the next call waits
/// for a new one instead of paying a system call that would only say `WouldBlock`. On a
/// ping-pong that is one system call of three per message.
fn settle(
    guard: &mut AsyncFdReadyGuard<'_, crate::Stream>,
    asked: usize,
    result: io::Result<usize>,
) -> Option<io::Result<usize>> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            guard.clear_ready();
            None
        }
        Ok(n) if n > 0 && n < asked => {
            guard.clear_ready();
            Some(Ok(n))
        }
        other => Some(other),
    }
}

impl AsyncSplitStream for Stream {
    fn poll_read_shared(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.inner.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let asked = unfilled.len();
            let result = guard
                .get_inner()
                .try_read(unfilled)
                .map_err(io::Error::from);
            if let Some(result) = settle(&mut guard, asked, result) {
                return Poll::Ready(result.map(|n| buf.advance(n)));
            }
        }
    }

    fn poll_write_shared(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.inner.poll_write_ready(cx))?;
            let result = guard.get_inner().try_write(buf).map_err(io::Error::from);
            if let Some(result) = settle(&mut guard, buf.len(), result) {
                return Poll::Ready(result);
            }
        }
    }

    fn poll_write_vectored_shared(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.inner.poll_write_ready(cx))?;
            let fd = self.inner.get_ref().as_raw_fd();
            let asked = bufs.iter().map(|b| b.len()).sum();
            let result = crate::sys::send_vectored(fd, bufs, true);
            if let Some(result) = settle(&mut guard, asked, result) {
                return Poll::Ready(result);
            }
        }
    }

    fn is_write_vectored_shared(&self) -> bool {
        true
    }
}

impl SplitStream for Stream {
    fn shutdown_write(&self) -> Result<(), Error> {
        self.shutdown(Shutdown::Write)
    }
}

impl AsyncByteStream for Stream {
    #[cfg(target_os = "linux")]
    type SharedMemory = crate::shm::tokio::AsyncShmStream;
    #[cfg(not(target_os = "linux"))]
    type SharedMemory = ringlink_host::NoSharedMemory;

    /// Over a listener's connection and its client, frames move through shared memory
    /// set up in the reactor, as the blocking `FramedStream` sets it up.
    #[cfg(target_os = "linux")]
    async fn negotiate_shared_memory(
        &self,
        _local: &ringlink_host::Hello,
        _peer: &ringlink_host::Hello,
        received: &[u8],
        options: &ringlink_host::FrameOptions,
    ) -> Result<Option<crate::shm::tokio::AsyncShmStream>, Error> {
        crate::shm::tokio::negotiate(self, received, options.handshake_timeout_len()).await
    }

    fn poll_read_some(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.poll_read_shared(cx, buf)
    }

    /// Writes all of the concatenation of `parts`.
    async fn write_parts(&self, parts: &[&[u8]]) -> Result<(), Error> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut sent = 0;
        while sent < total {
            let mut guard = self.inner.writable().await.map_err(Error::os)?;
            let result = guard
                .get_inner()
                .send_vectored_from(parts, sent)
                .map_err(io::Error::from);
            // What one call offered, not the whole rest: a full send of the offer must
            // keep the readiness.
            let asked = crate::Stream::offered_from(parts, sent);
            match settle(&mut guard, asked, result) {
                Some(Ok(0)) => return Err(Error::os(io::Error::from(io::ErrorKind::WriteZero))),
                Some(Ok(n)) => sent += n,
                Some(Err(e)) => return Err(Error::from(e)),
                None => {}
            }
        }
        Ok(())
    }
}

impl<N: IntoName> AsyncConnect<N> for Stream {
    type Options = ConnectOptions;

    async fn connect(name: N, options: ConnectOptions) -> Result<Stream, Error> {
        Stream::connect(name, options).await
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.get_ref().as_fd()
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.get_ref().as_raw_fd()
    }
}

ringlink_host::define_halves!(Stream);

ringlink_host::impl_async_io!(Stream);

/// An async [`Stream`] in framed mode; see [`crate::FramedStream`] for the protocol.
/// [`FramedStream::into_split`](ringlink_host::tokio::FramedStream::into_split) gives a
/// [`FrameReceiver`] and a [`FrameSender`] for two tasks.
///
/// `recv_frame` and `recv` are cancel safe (bytes already received are kept);
/// `send_frame` and `send` are not (a cancelled send may leave a partial frame, after
/// which the connection must be dropped). As the blocking `FramedStream` does, it moves
/// its frames through shared memory on Linux when both hellos offer it (the default;
/// `shm::tokio::AsyncShmStream` underneath, set up and parked in the reactor), and a
/// tokio side talks to a blocking one either way; `is_shared_memory()` says which.
pub type FramedStream = ringlink_host::tokio::FramedStream<Stream>;

/// The receiving half of a tokio [`FramedStream`], from its `into_split`.
pub type FrameReceiver = ringlink_host::tokio::FrameReceiver<Stream>;

/// The sending half of a tokio [`FramedStream`], from its `into_split`.
pub type FrameSender = ringlink_host::tokio::FrameSender<Stream>;

#[cfg(test)]
mod tests {
    use super::*;
    use ::tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ringlink-tokio-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn async_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        fn send<T: Send>() {}
        check::<Listener>();
        check::<Stream>();
        // Over shared memory a framed stream moves between tasks but is used by one
        // at a time (every method takes `&mut self`); its halves go to two tasks.
        send::<FramedStream>();
        send::<FrameReceiver>();
        send::<FrameSender>();
        check::<OwnedReadHalf>();
        check::<OwnedWriteHalf>();
    }

    #[::tokio::test]
    async fn listener_stream_and_framed_echo() {
        let dir = temp_dir("echo");
        let name = dir.join("s");
        let listener = Listener::bind(&name, ListenerOptions::new()).unwrap();
        let server = ::tokio::spawn(async move {
            let raw = listener.accept().await.unwrap();
            let (mut r, mut w) = raw.into_split();
            let mut buf = [0u8; 5];
            r.read_exact(&mut buf).await.unwrap();
            w.write_all(&buf).await.unwrap();
            let framed = listener.accept().await.unwrap();
            let mut framed = FramedStream::new(framed, FrameOptions::new())
                .await
                .unwrap();
            while let Some(frame) = framed.recv_frame().await.unwrap() {
                let frame = frame.to_vec();
                framed.send_frame(&frame).await.unwrap();
            }
        });
        let mut raw = Stream::connect(&name, ConnectOptions::new()).await.unwrap();
        raw.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        raw.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        assert_eq!(
            raw.peer_credentials().unwrap().pid(),
            Some(std::process::id())
        );

        let mut framed = FramedStream::connect(&name, ConnectOptions::new(), FrameOptions::new())
            .await
            .unwrap();
        #[cfg(target_os = "linux")]
        assert!(framed.is_shared_memory(), "shared memory by default");
        for len in [0usize, 1, 600, 100_000] {
            let payload = vec![len as u8; len];
            framed.send_frame(&payload).await.unwrap();
            assert_eq!(framed.recv_frame().await.unwrap().unwrap(), &payload[..]);
        }
        framed.send(&(1u8, "typed")).await.unwrap();
        let back: (u8, String) = framed.recv().await.unwrap().unwrap();
        assert_eq!(back, (1, "typed".to_string()));
        drop(framed);
        server.await.unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A short read or write clears the readiness the reactor reported (see `settle`):
    /// the data or space that comes after must still wake the task, for small messages
    /// (every read short) and for a write far larger than the socket buffer (every
    /// write short).
    #[::tokio::test]
    async fn short_transfers_wait_for_the_reactor_and_miss_no_wake_up() {
        let (a, b) = Stream::pair().unwrap();
        let echo = ::tokio::spawn(async move {
            let (mut r, mut w) = b.into_split();
            let mut buf = [0u8; 64];
            loop {
                let n = r.read(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                w.write_all(&buf[..n]).await.unwrap();
            }
        });
        let (mut r, mut w) = a.into_split();
        let rounds = async {
            let mut buf = [0u8; 64];
            for i in 0..2_000u32 {
                let byte = [i as u8];
                w.write_all(&byte).await.unwrap();
                let n = r.read(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], &byte, "round {i}");
            }
            // A burst read in pieces smaller than it, with nothing sent after it: a read
            // that fills its buffer is not short, so the readiness stays and the rest is
            // read without a new edge (none would come).
            let (c, mut d) = Stream::pair().unwrap();
            let burst: Vec<u8> = (0..100u8).collect();
            (&c).write_all(&burst).await.unwrap();
            for piece in burst.chunks(10) {
                let mut got = [0u8; 10];
                d.read_exact(&mut got).await.unwrap();
                assert_eq!(&got[..], piece);
            }
            // 8 MiB one way and back: the echo's writes and ours end short on a full buffer.
            let big: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
            let writer = async {
                w.write_all(&big).await.unwrap();
                w
            };
            let reader = async {
                let mut back = vec![0u8; big.len()];
                r.read_exact(&mut back).await.unwrap();
                back
            };
            let (w, back) = ::tokio::join!(writer, reader);
            assert!(back == big, "the echo came back changed");
            drop(w);
        };
        ::tokio::time::timeout(Duration::from_secs(30), rounds)
            .await
            .expect("a transfer waited for a wake-up that never came");
        echo.await.unwrap();
    }

    /// `write_parts` offers one call two pieces at most: sending all of them is not a
    /// short write, and the rest must go out without waiting for an edge that no one sends.
    #[::tokio::test]
    async fn writing_more_parts_than_one_call_offers_completes() {
        let (a, mut b) = Stream::pair().unwrap();
        let parts: [&[u8]; 5] = [b"ab", b"c", b"", b"de", b"f"];
        ::tokio::time::timeout(Duration::from_secs(10), a.write_parts(&parts))
            .await
            .expect("write_parts waited for a wake-up that never came")
            .unwrap();
        let mut got = [0u8; 6];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcdef");
    }

    #[::tokio::test]
    async fn connect_deadline_without_blocking_the_runtime() {
        let dir = temp_dir("deadline");
        let name = dir.join("missing");
        let err = Stream::connect(&name, ConnectOptions::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ServerNotFound);
        let ticker = ::tokio::spawn(async {
            let mut ticks = 0;
            for _ in 0..10 {
                ::tokio::time::sleep(Duration::from_millis(10)).await;
                ticks += 1;
            }
            ticks
        });
        let started = std::time::Instant::now();
        let options = ConnectOptions::new()
            .timeout(Duration::from_millis(200))
            .wait_for_server(true);
        let err = Stream::connect(&name, options).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(180));
        assert_eq!(
            ticker.await.unwrap(),
            10,
            "the runtime kept running other tasks"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[::tokio::test]
    async fn async_handshake_detects_a_silent_or_foreign_peer() {
        let (a, b) = Stream::pair().unwrap();
        let err = FramedStream::new(
            a,
            FrameOptions::new().handshake_timeout(Duration::from_millis(50)),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProtocolMismatch);
        let (a, mut b2) = Stream::pair().unwrap();
        b2.write_all(b"garbage!garbage!").await.unwrap();
        let err = FramedStream::new(a, FrameOptions::new()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProtocolMismatch);
        drop(b);
    }
}
