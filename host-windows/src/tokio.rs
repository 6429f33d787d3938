//! Async ringlink on tokio's named pipes: the same [`Listener`], [`Stream`] and
//! [`FramedStream`], with the same names, security and errors as the blocking API.
//!
//! Binding takes the same name guard and creates every instance with the same
//! owner-only security descriptor, `FILE_FLAG_FIRST_PIPE_INSTANCE` and
//! `PIPE_REJECT_REMOTE_CLIENTS`; `accept` creates the next instance before handing out a
//! connected one; `connect` retries busy pipes (and, if asked, missing ones) until the
//! deadline with `tokio::time::sleep`, never blocking the runtime, and opens with
//! `SECURITY_IDENTIFICATION`. Read and write timeouts of [`ConnectOptions`] apply to the
//! blocking API only: wrap async calls in `tokio::time::timeout`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use ringlink_windows::{ConnectOptions, ListenerOptions};
//! use ringlink_windows::tokio::{Listener, Stream};
//!
//! let name = format!("ringlink-tokio-doc-{}", std::process::id());
//! let listener = Listener::bind(name.as_str(), ListenerOptions::new())?;
//! tokio::spawn(async move {
//!     while let Ok(stream) = listener.accept().await {
//!         tokio::spawn(async move {
//!             let (mut r, mut w) = stream.into_split();
//!             let _ = tokio::io::copy(&mut r, &mut w).await;
//!         });
//!     }
//! });
//! let mut stream = Stream::connect(name.as_str(), ConnectOptions::new()).await?;
//! stream.write_all(b"ping").await?;
//! let mut reply = [0u8; 4];
//! stream.read_exact(&mut reply).await?;
//! assert_eq!(&reply, b"ping");
//! # Ok(())
//! # }
//! ```

use std::ffi::c_void;
use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::os::windows::io::{AsHandle, AsRawHandle, BorrowedHandle, RawHandle};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use ::tokio::io::ReadBuf;
use ::tokio::net::windows::named_pipe::{
    ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions,
};
use ringlink_host::tokio::{AsyncByteStream, AsyncConnect};
use windows_sys::Win32::Storage::FileSystem::SECURITY_IDENTIFICATION;

#[cfg(test)]
use crate::FrameOptions;
use crate::listener::{BACKOFF_MAX, BACKOFF_MIN, NameGuard, PipeConfig, admission, is_transient};
use crate::name::IntoName;
use crate::sys;
use crate::{ConnectOptions, Error, ErrorKind, ListenerOptions, Name, PeerCredentials, PeerPolicy};
use ringlink_host::SplitStream;
use ringlink_host::tokio_halves::AsyncSplitStream;
use ringlink_host::{Admission, ConnectionSlot};

/// An async ringlink pipe server; see [`crate::Listener`] for what binding guarantees.
#[derive(Debug)]
pub struct Listener {
    config: PipeConfig,
    /// The instance clients connect to next (`None` after creating it failed; the next
    /// `accept` retries). Concurrent `accept`s take turns.
    pending: ::tokio::sync::Mutex<Option<NamedPipeServer>>,
    admission: Admission,
    /// The last connect completed without waiting: the next `accept` lets other tasks
    /// run first (see [`Listener::connect_next`]).
    connected_at_once: AtomicBool,
    /// Tests: how many of the next instance creations fail as if out of memory.
    #[cfg(test)]
    failing_creates: std::sync::atomic::AtomicU32,
    /// Declared last: the name stays taken until the instances above are closed.
    _guard: NameGuard,
}

impl Listener {
    /// Creates the pipe `name` and starts listening (inside a tokio runtime).
    pub fn bind(name: impl IntoName, options: ListenerOptions) -> Result<Listener, Error> {
        let name = name.into_name()?;
        let config = PipeConfig::new(name, options.access_level(), options.pipe_buffer_size())?;
        let guard = NameGuard::acquire(&config.name, &config.guard_security)?;
        let first = create_instance(&config, true)?;
        Ok(Listener {
            config,
            pending: ::tokio::sync::Mutex::new(Some(first)),
            admission: admission(&options)?,
            connected_at_once: AtomicBool::new(false),
            #[cfg(test)]
            failing_creates: std::sync::atomic::AtomicU32::new(0),
            _guard: guard,
        })
    }

    /// Accepts the next connection within the connection limit. Cancel safe: a dropped
    /// `accept` leaves the pending instance listening.
    ///
    /// When one client breaks its pipe instance, that instance is closed and a fresh one
    /// listens; out of resources, `accept` sleeps (1 ms doubling to 100 ms, with
    /// `tokio::time::sleep`) and tries again. So it fails only when the listener itself
    /// cannot go on, and `while let Ok(stream) = listener.accept().await` keeps serving.
    pub async fn accept(&self) -> Result<Stream, Error> {
        let mut pause = BACKOFF_MIN;
        loop {
            match self.connect_next().await {
                Ok(connected) => {
                    pause = BACKOFF_MIN;
                    if let Some(stream) = self.admit(Stream::new(Pipe::Server(connected))) {
                        return Ok(stream);
                    }
                }
                Err(e) if !is_transient(&e) => return Err(e),
                Err(_) => {
                    ::tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Waits for a client on the pending instance (creating it first if the last attempt
    /// could not); once one is connected, creates the next instance and returns the
    /// connected one. An instance whose connect failed is dropped, so the next call
    /// listens on a fresh one.
    ///
    /// A connect that finds its client already there completes without returning to
    /// the runtime, and tokio's pipes charge no cooperative budget for it, so clients that
    /// connect (and leave) as fast as they can would keep this task running and starve
    /// every other task of its thread. After such a connect, the next call yields once
    /// first (before it takes anything, so cancelling it loses nothing).
    async fn connect_next(&self) -> Result<NamedPipeServer, Error> {
        if self.connected_at_once.swap(false, Ordering::Relaxed) {
            yield_to_runtime().await;
        }
        let mut pending = self.pending.lock().await;
        let server = match pending.take() {
            Some(server) => server,
            None => self.create_next()?,
        };
        let mut waited = false;
        let connected = {
            let mut connect = std::pin::pin!(pending.insert(server).connect());
            poll_fn(|cx| {
                let poll = connect.as_mut().poll(cx);
                waited |= poll.is_pending();
                poll
            })
            .await
        };
        self.connected_at_once.store(!waited, Ordering::Relaxed);
        if let Err(e) = connected {
            *pending = None;
            let name = &self.config.name;
            return Err(Error::os(e).with_message(format!("accept on {name} failed")));
        }
        // The next instance exists before this one leaves, so clients never see a gap.
        // If it cannot be created (out of resources), the connection is still handed out
        // and the next accept retries.
        let next = self.create_next().ok();
        match std::mem::replace(&mut *pending, next) {
            Some(connected) => Ok(connected),
            None => unreachable!("inserted above"),
        }
    }

    /// Creates the instance after the first.
    fn create_next(&self) -> Result<NamedPipeServer, Error> {
        #[cfg(test)]
        if self
            .failing_creates
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            let oom = io::Error::from_raw_os_error(
                windows_sys::Win32::Foundation::ERROR_NOT_ENOUGH_MEMORY as i32,
            );
            return Err(self.config.instance_error(oom, false));
        }
        create_instance(&self.config, false)
    }

    fn admit(&self, mut stream: Stream) -> Option<Stream> {
        let slot = self.admission.admit(|| stream.peer_credentials()).ok()?;
        stream.slot = slot.map(Arc::new);
        Some(stream)
    }

    /// The name this listener serves.
    pub fn name(&self) -> &Name {
        &self.config.name
    }

    /// The peer policy in force.
    pub fn peer_policy(&self) -> &PeerPolicy {
        self.admission.policy()
    }

    /// How many connections were closed at accept (peer policy or connection limit).
    pub fn refused_count(&self) -> u64 {
        self.admission.refused_count()
    }

    /// How many accepted connections are open, when `max_connections` is set.
    pub fn open_connections(&self) -> Option<usize> {
        self.admission.open_connections()
    }
}

/// Returns to the runtime once, so that the other tasks of its thread get a turn.
async fn yield_to_runtime() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// Creates one server instance with the listener's security, registered with tokio.
fn create_instance(config: &PipeConfig, first: bool) -> Result<NamedPipeServer, Error> {
    let mut attributes = sys::security_attributes(&config.security);
    let mut options = ServerOptions::new();
    options
        .first_pipe_instance(first)
        .reject_remote_clients(true)
        .in_buffer_size(config.buffer_size)
        .out_buffer_size(config.buffer_size);
    // SAFETY: `attributes` is a valid SECURITY_ATTRIBUTES pointing at the listener's
    // descriptor, and both outlive the call.
    let created = unsafe {
        options.create_with_security_attributes_raw(
            config.name.as_str(),
            (&mut attributes as *mut windows_sys::Win32::Security::SECURITY_ATTRIBUTES)
                .cast::<c_void>(),
        )
    };
    created.map_err(|e| config.instance_error(e, first))
}

/// The two kinds of tokio pipe handles behind one [`Stream`].
#[derive(Debug)]
enum Pipe {
    Client(NamedPipeClient),
    Server(NamedPipeServer),
}

macro_rules! on_pipe {
    ($pipe:expr, $p:ident => $e:expr) => {
        match $pipe {
            Pipe::Client($p) => $e,
            Pipe::Server($p) => $e,
        }
    };
}

/// An async connected named pipe.
///
/// `AsyncRead`/`AsyncWrite` are implemented on `Stream`, `&Stream` and the halves, so one
/// task may read while another writes.
#[derive(Debug)]
pub struct Stream {
    pipe: Pipe,
    read_shut: AtomicBool,
    write_shut: AtomicBool,
    slot: Option<Arc<ConnectionSlot>>,
}

impl Stream {
    fn new(pipe: Pipe) -> Stream {
        Stream {
            pipe,
            read_shut: AtomicBool::new(false),
            write_shut: AtomicBool::new(false),
            slot: None,
        }
    }

    /// Connects to the server at `name` within the options' deadline, without blocking
    /// the runtime (see [`crate::Stream::connect`] for the errors).
    pub async fn connect(name: impl IntoName, options: ConnectOptions) -> Result<Stream, Error> {
        let name = name.into_name()?;
        let deadline = Instant::now().checked_add(options.connect_timeout());
        let mut pause = Duration::from_millis(1);
        let mut client = ClientOptions::new();
        client.security_qos_flags(SECURITY_IDENTIFICATION);
        loop {
            let remaining = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if remaining.is_zero() {
                return Err(crate::stream::timed_out(&name, &options));
            }
            let err = match client.open(name.as_str()) {
                Ok(pipe) => {
                    if options.verifies_server_user() {
                        crate::stream::check_server_owner(&pipe, &name)?;
                    }
                    return Ok(Stream::new(Pipe::Client(pipe)));
                }
                Err(e) => e,
            };
            let code = err.raw_os_error().map(|c| c as u32);
            let retry = code == Some(sys::ERROR_PIPE_BUSY)
                || (code == Some(sys::ERROR_FILE_NOT_FOUND) && options.waits_for_server());
            if !retry {
                return Err(crate::stream::explain_connect_error(Error::os(err), &name));
            }
            ::tokio::time::sleep(pause.min(remaining)).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// A connected pair over a pipe with a random name (inside a tokio runtime).
    pub fn pair() -> Result<(Stream, Stream), Error> {
        let (a, b) = crate::Stream::pair()?;
        Ok((Stream::from_std(a)?, Stream::from_std(b)?))
    }

    /// Moves a blocking stream into tokio (inside a runtime).
    pub fn from_std(stream: crate::Stream) -> Result<Stream, Error> {
        let server = stream.is_server();
        let slot = stream.slot();
        let handle = std::os::windows::io::OwnedHandle::from(stream);
        let raw = std::os::windows::io::IntoRawHandle::into_raw_handle(handle);
        // SAFETY: `raw` is an open pipe handle, opened for overlapped I/O, owned by nobody
        // else (just released from the stream); tokio takes ownership of it.
        let pipe = unsafe {
            if server {
                NamedPipeServer::from_raw_handle(raw).map(Pipe::Server)
            } else {
                NamedPipeClient::from_raw_handle(raw).map(Pipe::Client)
            }
        }
        .map_err(Error::os)?;
        let mut stream = Stream::new(pipe);
        stream.slot = slot;
        Ok(stream)
    }

    /// The process id of the peer.
    pub fn peer_process_id(&self) -> Result<u32, Error> {
        let server = matches!(self.pipe, Pipe::Server(_));
        sys::peer_process_id(self, server)
            .map_err(|e| Error::os(e).with_message("cannot query the peer's process id"))
    }

    /// The peer's credentials: its process id and user (see
    /// [`crate::Stream::peer_credentials`]).
    pub fn peer_credentials(&self) -> Result<PeerCredentials, Error> {
        Ok(crate::stream::credentials_of(self.peer_process_id()?))
    }

    /// Waits until the stream may be readable.
    pub async fn readable(&self) -> Result<(), Error> {
        on_pipe!(&self.pipe, p => p.readable().await).map_err(Error::os)
    }

    /// Waits until the stream may be writable.
    pub async fn writable(&self) -> Result<(), Error> {
        on_pipe!(&self.pipe, p => p.writable().await).map_err(Error::os)
    }

    /// Reads what is there without waiting ([`ErrorKind::WouldBlock`] when nothing is).
    pub fn try_read(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.read_shut.load(Ordering::Relaxed) {
            return Ok(0);
        }
        match on_pipe!(&self.pipe, p => p.try_read(buf)) {
            Ok(n) => Ok(n),
            Err(e) if sys::is_closed(&e) => Ok(0),
            Err(e) => Err(Error::os(e)),
        }
    }

    /// Writes what fits without waiting ([`ErrorKind::WouldBlock`] when nothing does).
    pub fn try_write(&self, buf: &[u8]) -> Result<usize, Error> {
        if self.write_shut.load(Ordering::Relaxed) {
            return Err(Error::new(
                ErrorKind::PeerClosed,
                "writing was shut down on this stream",
            ));
        }
        on_pipe!(&self.pipe, p => p.try_write(buf)).map_err(Error::os)
    }

    /// Stops reading, writing or both on this side (see [`crate::Stream::shutdown`]: named
    /// pipes have no half-close; the peer sees end of stream when this stream is dropped).
    pub fn shutdown(&self, how: Shutdown) -> Result<(), Error> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.read_shut.store(true, Ordering::Relaxed);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.write_shut.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Borrowed halves for two tasks of one scope.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        ringlink_host::split(self)
    }

    /// Owned halves that can move to different tasks.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        ringlink_host::into_split(self)
    }
}

impl AsyncSplitStream for Stream {
    fn poll_read_shared(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.read_shut.load(Ordering::Relaxed) {
                ready!(on_pipe!(&self.pipe, p => p.poll_read_ready(cx)))?;
            }
            match self.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
    }

    fn poll_write_shared(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            ready!(on_pipe!(&self.pipe, p => p.poll_write_ready(cx)))?;
            match self.try_write(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
    }
}

impl SplitStream for Stream {
    fn shutdown_write(&self) -> Result<(), Error> {
        self.shutdown(Shutdown::Write)
    }
}

impl AsyncByteStream for Stream {
    type SharedMemory = ringlink_host::NoSharedMemory;

    fn poll_read_some(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.poll_read_shared(cx, buf)
    }

    /// Writes all of the concatenation of `parts`.
    async fn write_parts(&self, parts: &[&[u8]]) -> Result<(), Error> {
        for part in parts {
            let mut rest = *part;
            while !rest.is_empty() {
                let n = poll_fn(|cx| self.poll_write_shared(cx, rest))
                    .await
                    .map_err(Error::from)?;
                if n == 0 {
                    return Err(Error::os(io::Error::from(io::ErrorKind::WriteZero)));
                }
                rest = &rest[n..];
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

impl AsHandle for Stream {
    fn as_handle(&self) -> BorrowedHandle<'_> {
        on_pipe!(&self.pipe, p => p.as_handle())
    }
}

impl AsRawHandle for Stream {
    fn as_raw_handle(&self) -> RawHandle {
        on_pipe!(&self.pipe, p => p.as_raw_handle())
    }
}

ringlink_host::define_halves!(Stream);

ringlink_host::impl_async_io!(Stream);
ringlink_host::impl_embedded_io_async!(Stream);

/// An async [`Stream`] in framed mode; see [`crate::FramedStream`] for the protocol.
///
/// `recv_frame` and `recv` are cancel safe (bytes already received are kept);
/// `send_frame` and `send` are not (a cancelled send may leave a partial frame, after
/// which the connection must be dropped).
pub type FramedStream = ringlink_host::tokio::FramedStream<Stream>;

#[cfg(test)]
mod tests {
    use super::*;
    use ::tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn unique(tag: &str) -> String {
        format!("ringlink-tokio-{tag}-{}", std::process::id())
    }

    #[test]
    fn async_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Listener>();
        check::<Stream>();
        check::<FramedStream>();
        check::<OwnedReadHalf>();
        check::<OwnedWriteHalf>();
    }

    #[::tokio::test]
    async fn listener_stream_and_framed_echo() {
        let name = unique("echo");
        let listener = Listener::bind(name.as_str(), ListenerOptions::new()).unwrap();
        // A second bind is refused while the first lives, async or not.
        let err = crate::Listener::bind(name.as_str(), ListenerOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddressInUse);
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
        let mut raw = Stream::connect(name.as_str(), ConnectOptions::new())
            .await
            .unwrap();
        raw.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        raw.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        assert_eq!(
            raw.peer_credentials().unwrap().pid(),
            Some(std::process::id())
        );

        let mut framed =
            FramedStream::connect(name.as_str(), ConnectOptions::new(), FrameOptions::new())
                .await
                .unwrap();
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
    }

    #[::tokio::test]
    async fn connect_deadline_without_blocking_the_runtime() {
        let name = unique("missing");
        let err = Stream::connect(name.as_str(), ConnectOptions::new())
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
        let started = Instant::now();
        let options = ConnectOptions::new()
            .timeout(Duration::from_millis(200))
            .wait_for_server(true);
        let err = Stream::connect(name.as_str(), options).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(180));
        assert_eq!(
            ticker.await.unwrap(),
            10,
            "the runtime kept running other tasks"
        );
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

    #[::tokio::test]
    async fn end_of_stream_when_the_peer_drops() {
        let (mut a, b) = Stream::pair().unwrap();
        (&b).write_all(b"bye").await.unwrap();
        drop(b);
        let mut got = Vec::new();
        a.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"bye");
        let err = a.write_all(b"x").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[::tokio::test]
    async fn accept_waits_out_failing_instance_creation() {
        let name = unique("exhausted");
        let listener = Listener::bind(name.as_str(), ListenerOptions::new()).unwrap();
        // Out of memory from the first next instance on: after the first connection no
        // instance exists, and creating one fails a few more times.
        listener.failing_creates.store(4, Ordering::Relaxed);
        let first = Stream::connect(name.as_str(), ConnectOptions::new())
            .await
            .unwrap();
        let _served = listener.accept().await.unwrap();
        let patient = ConnectOptions::new()
            .timeout(Duration::from_secs(10))
            .wait_for_server(true);
        let client = ::tokio::spawn(Stream::connect(name.clone(), patient));
        let started = Instant::now();
        let accepted = ::tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .expect("accept returned within 10 s");
        accepted.expect("accept backs off out of memory instead of failing");
        client.await.unwrap().unwrap();
        assert_eq!(listener.failing_creates.load(Ordering::Relaxed), 0);
        // Three pauses (1 + 2 + 4 ms), never a spin.
        assert!(
            started.elapsed() >= Duration::from_millis(7),
            "{:?}",
            started.elapsed()
        );
        drop(first);
    }
}
