//! A connected ringlink byte stream: connect with a deadline, timeouts, nonblocking I/O,
//! split halves, shutdown and the peer's credentials.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use ringlink_unix::{ConnectOptions, Stream};
//!
//! let options = ConnectOptions::new()
//!     .timeout(Duration::from_secs(2))
//!     .wait_for_server(true)
//!     .read_timeout(Some(Duration::from_secs(5)));
//! let mut stream = Stream::connect("demo", options)?;
//! stream.write_all(b"ping")?;
//! let mut reply = [0u8; 4];
//! stream.read_exact(&mut reply)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Many connections from one thread
//!
//! [`Stream::try_read`] and [`Stream::try_write`] never block, whatever the stream's mode,
//! and fail with [`ErrorKind::WouldBlock`] when nothing can move; drive them from
//! `poll`/`epoll` on [`AsRawFd::as_raw_fd`], or use the `tokio` feature.

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::listener::ConnectionSlot;
use crate::name::IntoName;
use crate::sys;
use crate::{Error, ErrorKind, Name};

/// Who is on the other end of a connection, as the kernel saw it at `connect`/`accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PeerCredentials {
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
    /// The peer's process id, where the platform reports it (Linux, Android, macOS).
    pub pid: Option<i32>,
}

/// How [`Stream::connect`] connects and how the new stream behaves.
///
/// ```
/// use std::time::Duration;
/// use ringlink_unix::ConnectOptions;
///
/// let options = ConnectOptions::new()
///     .timeout(Duration::from_millis(200))
///     .wait_for_server(true)
///     .write_timeout(Some(Duration::from_secs(1)));
/// assert_eq!(options.connect_timeout(), Duration::from_millis(200));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    timeout: Duration,
    wait_for_server: bool,
    verify_server_user: bool,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    nonblocking: bool,
}

impl ConnectOptions {
    /// The defaults: a 30 s connect deadline (Qt's `waitForConnected` default), fail at once
    /// when no server exists, only servers running as this user, no read or write
    /// timeout, blocking I/O.
    pub const fn new() -> ConnectOptions {
        ConnectOptions {
            timeout: Duration::from_secs(30),
            wait_for_server: false,
            verify_server_user: true,
            read_timeout: None,
            write_timeout: None,
            nonblocking: false,
        }
    }

    /// The deadline for the whole connect, including waiting for the server to appear
    /// and for room in its backlog.
    pub const fn timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.timeout = timeout;
        self
    }

    /// Keep retrying (with a growing pause of at most 50 ms) while the server does not exist
    /// yet or its socket is stale, until the [`timeout`](Self::timeout); then fail with
    /// [`ErrorKind::TimedOut`]. Off by default: a missing server fails at once with
    /// [`ErrorKind::ServerNotFound`].
    pub const fn wait_for_server(mut self, wait: bool) -> ConnectOptions {
        self.wait_for_server = wait;
        self
    }

    /// Whether to refuse a server that does not run as the user this process runs as (on
    /// by default). Anyone may create a socket in a shared directory such as `/tmp`, where
    /// Qt names live, or squat a Linux abstract name, and wait for clients; so right after
    /// `connect`, before a byte is sent, the client asks the kernel who listens
    /// (`SO_PEERCRED` on Linux, `getpeereid` on the BSDs and macOS) and refuses another
    /// user with [`ErrorKind::AccessDenied`]. Turn it off to reach a server of another user
    /// on purpose (the same option exists on Windows, where it checks the pipe's owner).
    pub const fn verify_server_user(mut self, verify: bool) -> ConnectOptions {
        self.verify_server_user = verify;
        self
    }

    /// Read timeout of the new stream (see [`Stream::set_read_timeout`]).
    pub const fn read_timeout(mut self, timeout: Option<Duration>) -> ConnectOptions {
        self.read_timeout = timeout;
        self
    }

    /// Write timeout of the new stream (see [`Stream::set_write_timeout`]).
    pub const fn write_timeout(mut self, timeout: Option<Duration>) -> ConnectOptions {
        self.write_timeout = timeout;
        self
    }

    /// Whether the new stream is in nonblocking mode (see [`Stream::set_nonblocking`]).
    pub const fn nonblocking(mut self, nonblocking: bool) -> ConnectOptions {
        self.nonblocking = nonblocking;
        self
    }

    /// The connect deadline set with [`timeout`](Self::timeout).
    pub const fn connect_timeout(&self) -> Duration {
        self.timeout
    }
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions::new()
    }
}

/// A connected Unix-domain byte stream to or from a ringlink peer.
///
/// Implements `std::io::{Read, Write}` (also on `&Stream`, so one thread may read while
/// another writes) and `embedded_io::{Read, Write, ReadReady, WriteReady}`. Writes never
/// raise `SIGPIPE`: writing to a closed peer fails with [`ErrorKind::PeerClosed`]
/// (`io::ErrorKind::BrokenPipe`). Interrupted system calls are retried and `write_all`
/// handles partial writes.
#[derive(Debug)]
pub struct Stream {
    fd: OwnedFd,
    /// Cached `O_NONBLOCK`, so `EAGAIN` reads as `WouldBlock` (nonblocking) or `TimedOut`
    /// (a read/write timeout expired) without a system call.
    nonblocking: AtomicBool,
    /// Holds one of the listener's `max_connections` slots while the connection lives.
    slot: Option<Arc<ConnectionSlot>>,
}

impl Stream {
    /// Connects to the server at `name` (see [`Name`]) within the options' deadline.
    ///
    /// Fails with [`ErrorKind::ServerNotFound`] when no socket exists,
    /// [`ErrorKind::ConnectionRefused`] when the socket is stale (its server died),
    /// [`ErrorKind::AccessDenied`] when the socket or its directory belongs to someone
    /// else or the server runs as another user (see [`ConnectOptions::verify_server_user`]),
    /// and [`ErrorKind::TimedOut`] when the deadline passes (waiting for the server
    /// with [`ConnectOptions::wait_for_server`], or for room in a full backlog).
    pub fn connect(name: impl IntoName, options: ConnectOptions) -> Result<Stream, Error> {
        let name = name.into_name()?;
        let fd = connect_fd(&name, &options)?;
        sys::set_timeout(fd.as_raw_fd(), true, options.read_timeout).map_err(Error::os)?;
        sys::set_timeout(fd.as_raw_fd(), false, options.write_timeout).map_err(Error::os)?;
        if options.nonblocking {
            sys::set_nonblocking(fd.as_raw_fd(), true).map_err(Error::os)?;
        }
        Ok(Stream {
            fd,
            nonblocking: AtomicBool::new(options.nonblocking),
            slot: None,
        })
    }

    /// A connected pair of streams in this process (`socketpair`), for tests and for
    /// handing one end to a child process.
    pub fn pair() -> Result<(Stream, Stream), Error> {
        let (a, b) = sys::socketpair().map_err(Error::os)?;
        Ok((Stream::from_fd(a, false), Stream::from_fd(b, false)))
    }

    pub(crate) fn from_fd(fd: OwnedFd, nonblocking: bool) -> Stream {
        Stream {
            fd,
            nonblocking: AtomicBool::new(nonblocking),
            slot: None,
        }
    }

    pub(crate) fn with_slot(mut self, slot: Option<Arc<ConnectionSlot>>) -> Stream {
        self.slot = slot;
        self
    }

    /// The peer's user id, group id and process id.
    pub fn peer_credentials(&self) -> Result<PeerCredentials, Error> {
        let (uid, gid, pid) = sys::peer_credentials(self.fd.as_raw_fd()).map_err(Error::os)?;
        Ok(PeerCredentials { uid, gid, pid })
    }

    /// Reads into `buf`, blocking (unless in nonblocking mode) until at least one byte
    /// arrives; `Ok(0)` means the peer closed its side (end of stream).
    ///
    /// With a read timeout set, fails with [`ErrorKind::TimedOut`] when it expires; in
    /// nonblocking mode fails with [`ErrorKind::WouldBlock`] when nothing is ready.
    /// (The `std::io::Read` and `embedded_io::Read` impls call this.)
    pub(crate) fn recv(&self, buf: &mut [u8]) -> Result<usize, Error> {
        sys::recv(self.fd.as_raw_fd(), buf, false).map_err(|e| self.map_again(e))
    }

    /// Writes some of `buf`, returning how many bytes went out.
    pub(crate) fn send(&self, buf: &[u8]) -> Result<usize, Error> {
        sys::send(self.fd.as_raw_fd(), buf, false).map_err(|e| self.map_again(e))
    }

    /// Sends what it can of the concatenation of `parts`, starting `offset` bytes in, with
    /// one `send`/`sendmsg`; returns how many bytes went out.
    pub(crate) fn send_vectored_from(
        &self,
        parts: &[&[u8]],
        mut offset: usize,
    ) -> Result<usize, Error> {
        let mut slices = [IoSlice::new(&[]), IoSlice::new(&[])];
        let mut count = 0;
        for part in parts {
            if offset >= part.len() {
                offset -= part.len();
                continue;
            }
            if count == slices.len() {
                break;
            }
            slices[count] = IoSlice::new(&part[offset..]);
            offset = 0;
            count += 1;
        }
        match count {
            0 => Ok(0),
            1 => self.send(&slices[0]),
            _ => sys::send_vectored(self.fd.as_raw_fd(), &slices[..count], false)
                .map_err(|e| self.map_again(e)),
        }
    }

    /// Reads what is available without ever blocking, whatever the stream's mode:
    /// [`ErrorKind::WouldBlock`] when nothing is there, `Ok(0)` at end of stream.
    pub fn try_read(&self, buf: &mut [u8]) -> Result<usize, Error> {
        sys::recv(self.fd.as_raw_fd(), buf, true).map_err(Error::os)
    }

    /// Writes what fits without ever blocking, whatever the stream's mode:
    /// [`ErrorKind::WouldBlock`] when the socket buffer is full.
    pub fn try_write(&self, buf: &[u8]) -> Result<usize, Error> {
        sys::send(self.fd.as_raw_fd(), buf, true).map_err(Error::os)
    }

    /// Waits until the stream is readable (data or end of stream) for at most `timeout`
    /// (`None`: forever); `Ok(false)` on timeout. A signal may end the wait early with
    /// `Ok(true)`, so follow it with [`try_read`](Self::try_read) and expect `WouldBlock`.
    pub fn wait_readable(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        sys::poll(self.fd.as_raw_fd(), true, timeout).map_err(Error::os)
    }

    /// Waits until the stream is writable for at most `timeout` (`None`: forever);
    /// `Ok(false)` on timeout. Like [`wait_readable`](Self::wait_readable), it may return
    /// `Ok(true)` early when a signal arrives.
    pub fn wait_writable(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        sys::poll(self.fd.as_raw_fd(), false, timeout).map_err(Error::os)
    }

    /// Switches nonblocking mode: reads and writes that cannot proceed fail with
    /// [`ErrorKind::WouldBlock`] instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<(), Error> {
        sys::set_nonblocking(self.fd.as_raw_fd(), nonblocking).map_err(Error::os)?;
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the stream is in nonblocking mode.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    /// Sets how long a blocking read waits before failing with [`ErrorKind::TimedOut`];
    /// `None` waits forever.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), Error> {
        sys::set_timeout(self.fd.as_raw_fd(), true, timeout).map_err(Error::os)
    }

    /// Sets how long a blocking write waits for buffer space before failing with
    /// [`ErrorKind::TimedOut`]; `None` waits forever.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<(), Error> {
        sys::set_timeout(self.fd.as_raw_fd(), false, timeout).map_err(Error::os)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Result<Option<Duration>, Error> {
        sys::timeout(self.fd.as_raw_fd(), true).map_err(Error::os)
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> Result<Option<Duration>, Error> {
        sys::timeout(self.fd.as_raw_fd(), false).map_err(Error::os)
    }

    /// Shuts down reading, writing or both. After `Shutdown::Write` the peer reads end of
    /// stream once it has drained what was sent: the graceful way to say "done".
    pub fn shutdown(&self, how: Shutdown) -> Result<(), Error> {
        sys::shutdown(self.fd.as_raw_fd(), how).map_err(Error::os)
    }

    /// A second handle to the same connection (a duplicated descriptor).
    pub fn try_clone(&self) -> Result<Stream, Error> {
        let fd = self.fd.try_clone().map_err(Error::os)?;
        Ok(Stream {
            fd,
            nonblocking: AtomicBool::new(self.is_nonblocking()),
            slot: self.slot.clone(),
        })
    }

    /// The pending socket error, if any (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> Result<Option<Error>, Error> {
        sys::take_error(self.fd.as_raw_fd())
            .map(|e| e.map(Error::os))
            .map_err(Error::os)
    }

    /// Borrowed read and write halves, usable from two threads at once (scoped threads).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf(self), WriteHalf(self))
    }

    /// Owned read and write halves that can move to different threads. Dropping the
    /// write half shuts down writing, so the peer sees end of stream;
    /// [`OwnedReadHalf::reunite`] puts the halves back together.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let stream = Arc::new(self);
        (
            OwnedReadHalf(stream.clone()),
            OwnedWriteHalf {
                stream,
                shutdown_on_drop: true,
            },
        )
    }

    fn map_again(&self, e: io::Error) -> Error {
        let err = Error::os(e);
        if err.kind() == ErrorKind::WouldBlock && !self.is_nonblocking() {
            // A blocking socket only says EAGAIN when SO_RCVTIMEO/SO_SNDTIMEO expired.
            err.with_kind(ErrorKind::TimedOut)
        } else {
            err
        }
    }
}

/// What one connection attempt came to.
pub(crate) enum Attempt {
    /// Connected.
    Connected(OwnedFd),
    /// A nonblocking connect is under way: wait until writable, then check `SO_ERROR`.
    InProgress(OwnedFd),
    /// Try again after this pause (server absent while waiting for it, or backlog full).
    RetryAfter(Duration),
}

/// The connect policy shared by the blocking and the async `connect`: deadline,
/// waiting for the server, growing pauses and error messages.
pub(crate) struct Connector<'a> {
    name: &'a Name,
    addr: sys::SockAddr,
    options: ConnectOptions,
    deadline: Option<Instant>,
    pause: Duration,
}

impl<'a> Connector<'a> {
    pub(crate) fn new(name: &'a Name, options: ConnectOptions) -> Result<Connector<'a>, Error> {
        Ok(Connector {
            name,
            addr: name.sockaddr()?,
            options,
            deadline: Instant::now().checked_add(options.timeout),
            pause: Duration::from_millis(1),
        })
    }

    /// Time left before the deadline (`None`: no deadline), or the timeout error.
    pub(crate) fn remaining(&self) -> Result<Option<Duration>, Error> {
        match self.deadline {
            None => Ok(None),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Err(self.timed_out())
                } else {
                    Ok(Some(left))
                }
            }
        }
    }

    pub(crate) fn timed_out(&self) -> Error {
        timed_out(self.name, &self.options)
    }

    /// One attempt. A blocking attempt (the sync API) may wait in the kernel for room in
    /// a full backlog, bounded by the deadline; a nonblocking one never waits.
    pub(crate) fn attempt(&mut self, blocking: bool) -> Result<Attempt, Error> {
        let remaining = self.remaining()?;
        let result = self.name.check_for_connect().and_then(|()| {
            let fd = sys::socket(!blocking).map_err(Error::os)?;
            if blocking {
                // On Linux a blocking connect waits for room in a full backlog for up to
                // SO_SNDTIMEO; bound that wait by the deadline (the write timeout is set after).
                sys::set_timeout(fd.as_raw_fd(), false, remaining).map_err(Error::os)?;
            }
            match sys::connect(fd.as_raw_fd(), &self.addr) {
                Ok(()) => Ok(Attempt::Connected(fd)),
                Err(e) if !blocking && e.raw_os_error() == Some(libc::EINPROGRESS) => {
                    Ok(Attempt::InProgress(fd))
                }
                Err(e) => Err(Error::os(e)),
            }
        });
        let err = match result {
            Ok(attempt) => return Ok(attempt),
            Err(e) => e,
        };
        if err.raw_os_error() == Some(libc::EINTR) {
            return Ok(Attempt::RetryAfter(Duration::ZERO));
        }
        let busy = matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EINPROGRESS));
        let absent = matches!(
            err.kind(),
            ErrorKind::ServerNotFound | ErrorKind::ConnectionRefused
        );
        if !(busy || (absent && self.options.wait_for_server)) {
            return Err(explain_connect_error(err, self.name));
        }
        let remaining = self.remaining()?;
        let pause = remaining.map_or(self.pause, |r| self.pause.min(r));
        self.pause = (self.pause * 2).min(Duration::from_millis(50));
        Ok(Attempt::RetryAfter(pause))
    }

    /// Explains an error that ended a connect under way.
    pub(crate) fn explain(&self, err: Error) -> Error {
        explain_connect_error(err, self.name)
    }

    /// The last step of every connect, before a byte is sent: refuses a server that runs as
    /// another user, unless the options opt out ([`ConnectOptions::verify_server_user`]).
    pub(crate) fn check_server(&self, fd: BorrowedFd<'_>) -> Result<(), Error> {
        if !self.options.verify_server_user {
            return Ok(());
        }
        let (uid, _, pid) = sys::peer_credentials(fd.as_raw_fd()).map_err(|e| {
            Error::os(e).with_message(format!("cannot learn who serves {}", self.name))
        })?;
        let own = sys::euid();
        if uid == own {
            return Ok(());
        }
        let pid = pid.map_or(String::new(), |p| format!(", pid {p}"));
        Err(Error::new(
            ErrorKind::AccessDenied,
            format!(
                "refusing to connect to {}: its server runs as uid {uid}{pid}, not as this user \
                 (uid {own}); another user may have planted the socket (use \
                 ConnectOptions::verify_server_user(false), or `ringlink connect --any-server`, \
                 to connect anyway)",
                self.name
            ),
        ))
    }
}

/// Connects a fresh blocking socket to `name`, honouring the deadline and `wait_for_server`.
fn connect_fd(name: &Name, options: &ConnectOptions) -> Result<OwnedFd, Error> {
    let mut connector = Connector::new(name, *options)?;
    loop {
        match connector.attempt(true)? {
            Attempt::Connected(fd) => {
                connector.check_server(fd.as_fd())?;
                return Ok(fd);
            }
            Attempt::RetryAfter(pause) => std::thread::sleep(pause),
            // Only nonblocking attempts report this; handled for completeness.
            Attempt::InProgress(fd) => {
                if !sys::poll(fd.as_raw_fd(), false, connector.remaining()?).map_err(Error::os)? {
                    return Err(connector.timed_out());
                }
                if let Some(e) = sys::take_error(fd.as_raw_fd()).map_err(Error::os)? {
                    return Err(connector.explain(Error::os(e)));
                }
                connector.check_server(fd.as_fd())?;
                return Ok(fd);
            }
        }
    }
}

fn timed_out(name: &Name, options: &ConnectOptions) -> Error {
    let what = if options.wait_for_server {
        "no server appeared or accepted"
    } else {
        "the server did not accept"
    };
    Error::bare(ErrorKind::TimedOut).with_message(format!(
        "connecting to {name} timed out after {:?}: {what} in time",
        options.timeout
    ))
}

fn explain_connect_error(err: Error, name: &Name) -> Error {
    if err.message().is_some() {
        return err;
    }
    let message = match err.kind() {
        ErrorKind::ServerNotFound => format!(
            "no ringlink server at {name}: nothing listens on this name (start one, e.g. `ringlink listen NAME`)"
        ),
        ErrorKind::ConnectionRefused => format!(
            "connection refused at {name}: the socket exists but its server is gone (a new server reclaims the name)"
        ),
        ErrorKind::AccessDenied => format!(
            "permission denied connecting to {name}: the socket or its directory belongs to another user"
        ),
        ErrorKind::ResourceExhausted => {
            format!("cannot connect to {name}: out of file descriptors or kernel memory")
        }
        _ => format!("cannot connect to {name}"),
    };
    err.with_message(message)
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<OwnedFd> for Stream {
    /// Adopts a connected Unix stream socket (for example one inherited from a parent).
    /// On Apple platforms the caller should have set `SO_NOSIGPIPE` on it.
    fn from(fd: OwnedFd) -> Stream {
        let nonblocking = sys::is_nonblocking(fd.as_raw_fd()).unwrap_or(false);
        Stream::from_fd(fd, nonblocking)
    }
}

impl From<Stream> for OwnedFd {
    /// Gives up the descriptor; the connection no longer counts against its listener's
    /// `max_connections`.
    fn from(stream: Stream) -> OwnedFd {
        stream.fd
    }
}

impl IntoRawFd for Stream {
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw_fd()
    }
}

impl FromRawFd for Stream {
    /// # Safety
    ///
    /// `fd` must be an open, connected Unix stream socket owned by nobody else.
    unsafe fn from_raw_fd(fd: RawFd) -> Stream {
        // SAFETY: the caller guarantees `fd` is open and exclusively ours.
        Stream::from(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

impl io::Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf).map_err(io::Error::from)
    }
}

impl io::Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf).map_err(io::Error::from)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        sys::send_vectored(self.fd.as_raw_fd(), bufs, false).map_err(|e| self.map_again(e).into())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf).map_err(io::Error::from)
    }
}

impl io::Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf).map_err(io::Error::from)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        io::Write::write_vectored(&mut &*self, bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reading half of a [`Stream`], borrowed by [`Stream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a Stream);

/// The writing half of a [`Stream`], borrowed by [`Stream::split`].
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a Stream);

/// The reading half of a [`Stream`], owned, from [`Stream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf(Arc<Stream>);

/// The writing half of a [`Stream`], owned, from [`Stream::into_split`]. Dropping it
/// shuts down writing, so the peer reads end of stream.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    stream: Arc<Stream>,
    shutdown_on_drop: bool,
}

/// The halves given to [`OwnedReadHalf::reunite`] came from different streams.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl std::fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tried to reunite halves of two different streams")
    }
}

impl std::error::Error for ReuniteError {}

impl<'a> ReadHalf<'a> {
    /// The stream this half belongs to.
    pub fn stream(&self) -> &'a Stream {
        self.0
    }
}

impl<'a> WriteHalf<'a> {
    /// The stream this half belongs to.
    pub fn stream(&self) -> &'a Stream {
        self.0
    }
}

impl OwnedReadHalf {
    /// The stream this half belongs to.
    pub fn stream(&self) -> &Stream {
        &self.0
    }

    /// Puts the two halves of one stream back together.
    pub fn reunite(self, mut write: OwnedWriteHalf) -> Result<Stream, ReuniteError> {
        if !Arc::ptr_eq(&self.0, &write.stream) {
            return Err(ReuniteError(self, write));
        }
        write.shutdown_on_drop = false;
        drop(write);
        // Exactly the two halves held a reference and the write half is gone.
        Arc::try_unwrap(self.0).map_err(|_| unreachable!("only the two halves share the stream"))
    }
}

impl OwnedWriteHalf {
    /// The stream this half belongs to.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // The peer may be gone already; nothing useful to do with that error.
            let _ = self.stream.shutdown(Shutdown::Write);
        }
    }
}

macro_rules! read_half_io {
    ($ty:ty) => {
        impl io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.stream().recv(buf).map_err(io::Error::from)
            }
        }
    };
}

macro_rules! write_half_io {
    ($ty:ty) => {
        impl io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.stream().send(buf).map_err(io::Error::from)
            }
            fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                io::Write::write_vectored(&mut self.stream(), bufs)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
    };
}

read_half_io!(ReadHalf<'_>);
read_half_io!(OwnedReadHalf);
write_half_io!(WriteHalf<'_>);
write_half_io!(OwnedWriteHalf);

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    use ringlink_host::ByteStream;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn streams_and_halves_are_send_and_sync() {
        assert_send_sync::<Stream>();
        assert_send_sync::<OwnedReadHalf>();
        assert_send_sync::<OwnedWriteHalf>();
        assert_send_sync::<ReadHalf<'_>>();
    }

    #[test]
    fn pair_echoes_and_reports_end_of_stream() {
        let (mut a, mut b) = Stream::pair().unwrap();
        a.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        drop(a);
        assert_eq!(b.recv(&mut buf).unwrap(), 0);
    }

    #[test]
    fn try_read_never_blocks() {
        let (a, b) = Stream::pair().unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(
            b.try_read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        a.try_write(b"x").unwrap();
        assert_eq!(b.try_read(&mut buf).unwrap(), 1);
    }

    #[test]
    fn read_timeout_expires_as_timed_out() {
        let (_a, b) = Stream::pair().unwrap();
        b.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let t = Instant::now();
        let err = b.recv(&mut [0u8; 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(15));
        assert!(b.read_timeout().unwrap().is_some());
        b.set_nonblocking(true).unwrap();
        assert_eq!(
            b.recv(&mut [0u8; 1]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
    }

    #[test]
    fn writing_to_a_closed_peer_is_peer_closed_not_sigpipe() {
        let (a, b) = Stream::pair().unwrap();
        drop(b);
        let err = a.send_all(b"x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PeerClosed);
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn owned_halves_move_to_threads_and_reunite() {
        let (a, b) = Stream::pair().unwrap();
        let (mut r, mut w) = a.into_split();
        let writer = std::thread::spawn(move || {
            w.write_all(b"ping").unwrap();
            w
        });
        let mut buf = [0u8; 4];
        (&b).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        (&b).write_all(b"pong").unwrap();
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pong");
        let w = writer.join().unwrap();
        let a = r.reunite(w).unwrap();
        a.send_all(b"!").unwrap();
        b.recv(&mut buf[..1]).unwrap();
        assert_eq!(buf[0], b'!');
    }

    #[test]
    fn dropping_the_owned_write_half_signals_end_of_stream() {
        let (a, b) = Stream::pair().unwrap();
        let (_r, w) = a.into_split();
        drop(w);
        assert_eq!(b.recv(&mut [0u8; 1]).unwrap(), 0);
    }

    #[test]
    fn vectored_writes_arrive_in_order() {
        let (a, mut b) = Stream::pair().unwrap();
        let parts: [&[u8]; 3] = [b"ab", b"", b"cd"];
        assert_eq!(a.send_vectored_from(&parts, 0).unwrap(), 4);
        assert_eq!(a.send_vectored_from(&parts, 1).unwrap(), 3);
        assert_eq!(a.send_vectored_from(&parts, 4).unwrap(), 0);
        let mut buf = [0u8; 7];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"abcdbcd");
    }
}
