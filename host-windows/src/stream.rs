//! A connected named pipe: connect with a deadline, read/write timeouts built on
//! overlapped I/O with cancellation, nonblocking `try_read`/`try_write`, split halves,
//! `peer_process_id`, `std::io` and `embedded_io`.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use ringlink_windows::{ConnectOptions, Stream};
//!
//! let options = ConnectOptions::new()
//!     .timeout(Duration::from_millis(500))
//!     .read_timeout(Some(Duration::from_secs(2)));
//! let mut stream = Stream::connect("demo", options)?;
//! stream.write_all(b"ping")?;
//! let mut reply = [0u8; 4];
//! stream.read_exact(&mut reply)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Timeouts and cancellation
//!
//! Every read and write is an overlapped operation on a private event. A blocking call
//! waits for the event up to the read or write timeout; when it expires, the operation
//! is cancelled (`CancelIoEx`) and the call returns only after the cancellation has
//! completed, so no buffer is ever left in the kernel's hands. Bytes that arrived in the
//! race are returned, not lost.
//!
//! # End of stream
//!
//! Named pipes have no half-close. A peer that closes its handle (or dies) is seen as
//! end of stream (`Ok(0)`) once its buffered bytes are read; writes to it fail with
//! [`ErrorKind::PeerClosed`]. [`Stream::shutdown`] only stops this side: the peer sees end
//! of stream when the stream (all its halves and clones) is dropped.

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::os::windows::io::{AsHandle, AsRawHandle, BorrowedHandle, OwnedHandle, RawHandle};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringlink_host::{ConnectionSlot, SplitStream};

use crate::name::IntoName;
use crate::sys::{self, Completion, EventPool};
use crate::{
    ConnectOptions, Error, ErrorKind, Listener, ListenerOptions, Name, PeerCredentials, UserId,
};

/// Which end of the pipe a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Opened with `Stream::connect`.
    Client,
    /// Handed out by `Listener::accept`.
    Server,
}

/// A timeout stored in an atomic: nanoseconds, `u64::MAX` for none.
#[derive(Debug)]
struct AtomicTimeout(AtomicU64);

impl AtomicTimeout {
    fn new(timeout: Option<Duration>) -> AtomicTimeout {
        let t = AtomicTimeout(AtomicU64::new(u64::MAX));
        t.set(timeout);
        t
    }

    fn set(&self, timeout: Option<Duration>) {
        let nanos = timeout.map_or(u64::MAX, |d| {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
        });
        self.0.store(nanos, Ordering::Relaxed);
    }

    fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            u64::MAX => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }
}

/// A connected named pipe to or from a ringlink peer.
///
/// Implements `std::io::{Read, Write}` (also on `&Stream`, so one thread may read while
/// another writes) and `embedded_io::{Read, Write, ReadReady, WriteReady}`. Writing to a
/// closed peer fails with [`ErrorKind::PeerClosed`] (`io::ErrorKind::BrokenPipe`);
/// `write_all` handles partial writes.
#[derive(Debug)]
pub struct Stream {
    handle: OwnedHandle,
    side: Side,
    read_events: EventPool,
    write_events: EventPool,
    read_timeout: AtomicTimeout,
    write_timeout: AtomicTimeout,
    nonblocking: AtomicBool,
    read_shut: AtomicBool,
    write_shut: AtomicBool,
    /// Holds one of the listener's `max_connections` slots while the connection lives.
    slot: Option<Arc<ConnectionSlot>>,
    /// Made by [`Stream::pair`]: framed mode keeps its frames on the pipe.
    paired: bool,
}

impl Stream {
    /// Connects to the server at `name` (see [`Name`]) within the options' deadline.
    ///
    /// The client opens the pipe with `SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION`,
    /// so the server may learn who it is but never act as this user.
    ///
    /// Fails with [`ErrorKind::ServerNotFound`] when no such pipe exists,
    /// [`ErrorKind::AccessDenied`] when its access list does not admit this user, and
    /// [`ErrorKind::TimedOut`] when the deadline passes (every instance busy, or waiting
    /// for the server with [`ConnectOptions::wait_for_server`]).
    pub fn connect(name: impl IntoName, options: ConnectOptions) -> Result<Stream, Error> {
        let name = name.into_name()?;
        let deadline = Instant::now().checked_add(options.connect_timeout());
        let handle = open_until(&name, &options, deadline)?;
        if options.verifies_server_user() {
            check_server_owner(&handle, &name)?;
        }
        let stream = Stream::from_handle(handle, Side::Client);
        stream.set_read_timeout(options.stream_read_timeout())?;
        stream.set_write_timeout(options.stream_write_timeout())?;
        stream
            .nonblocking
            .store(options.is_nonblocking(), Ordering::Relaxed);
        Ok(stream)
    }

    /// A connected pair of streams in this process, over a pipe with a random name,
    /// for tests and for handing one end to a child process.
    pub fn pair() -> Result<(Stream, Stream), Error> {
        use std::hash::{BuildHasher, RandomState};
        use std::sync::atomic::AtomicU32;
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let random = RandomState::new().hash_one((n, Instant::now()));
        let name = Name::private(&format!(
            "ringlink-pair-{}-{n}-{random:016x}",
            std::process::id()
        ))?;
        let listener = Listener::bind(&name, ListenerOptions::new())?;
        let mut client = Stream::connect(&name, ConnectOptions::new())?;
        let mut server = listener.accept()?;
        client.paired = true;
        server.paired = true;
        Ok((client, server))
    }

    pub(crate) fn from_handle(handle: OwnedHandle, side: Side) -> Stream {
        Stream {
            handle,
            side,
            read_events: EventPool::default(),
            write_events: EventPool::default(),
            read_timeout: AtomicTimeout::new(None),
            write_timeout: AtomicTimeout::new(None),
            nonblocking: AtomicBool::new(false),
            read_shut: AtomicBool::new(false),
            write_shut: AtomicBool::new(false),
            slot: None,
            paired: false,
        }
    }

    pub(crate) fn with_slot(mut self, slot: Option<Arc<ConnectionSlot>>) -> Stream {
        self.slot = slot;
        self
    }

    /// The listener slot this connection holds, if any.
    #[cfg(feature = "tokio")]
    pub(crate) fn slot(&self) -> Option<Arc<ConnectionSlot>> {
        self.slot.clone()
    }

    /// The process id of the peer: the client's for a stream from
    /// [`Listener::accept`], the server's for one from [`Stream::connect`].
    pub fn peer_process_id(&self) -> Result<u32, Error> {
        sys::peer_process_id(&self.handle, self.side == Side::Server)
            .map_err(|e| Error::os(e).with_message("cannot query the peer's process id"))
    }

    /// Who the peer is: its process id (from the pipe) and the user its process runs as
    /// (from the process's token; unknown when that process cannot be opened, for example
    /// when it has exited or runs elevated).
    pub fn peer_credentials(&self) -> Result<PeerCredentials, Error> {
        Ok(credentials_of(self.peer_process_id()?))
    }

    /// Whether this stream is the server end (from [`Listener::accept`]).
    pub fn is_server(&self) -> bool {
        self.side == Side::Server
    }

    /// Whether this stream is an end of [`Stream::pair`].
    pub(crate) fn is_paired(&self) -> bool {
        self.paired
    }

    /// Reads into `buf`, blocking (unless in nonblocking mode) until at least one byte
    /// arrives; `Ok(0)` means the peer closed the pipe (end of stream).
    ///
    /// With a read timeout set, fails with [`ErrorKind::TimedOut`] when it expires; in
    /// nonblocking mode fails with [`ErrorKind::WouldBlock`] when nothing is ready.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.is_nonblocking() {
            self.read_within(buf, Some(Duration::ZERO), ErrorKind::WouldBlock)
        } else {
            self.read_within(buf, self.read_timeout.get(), ErrorKind::TimedOut)
        }
    }

    /// Writes some of `buf`, returning how many bytes went out.
    ///
    /// With a write timeout set, fails with [`ErrorKind::TimedOut`] when nothing could be
    /// written in time; in nonblocking mode fails with [`ErrorKind::WouldBlock`].
    pub(crate) fn send(&self, buf: &[u8]) -> Result<usize, Error> {
        if self.is_nonblocking() {
            self.write_within(buf, Some(Duration::ZERO), ErrorKind::WouldBlock)
        } else {
            self.write_within(buf, self.write_timeout.get(), ErrorKind::TimedOut)
        }
    }

    /// Writes all of `buf` waiting for room whatever the stream's mode (bounded by the
    /// write timeout): a frame is never torn.
    pub(crate) fn write_all_blocking(&self, mut buf: &[u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            let n = self.write_within(buf, self.write_timeout.get(), ErrorKind::TimedOut)?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Reads what is available without ever blocking, whatever the stream's mode:
    /// [`ErrorKind::WouldBlock`] when nothing is there, `Ok(0)` at end of stream.
    pub fn try_read(&self, buf: &mut [u8]) -> Result<usize, Error> {
        self.read_within(buf, Some(Duration::ZERO), ErrorKind::WouldBlock)
    }

    /// Writes what goes through at once, whatever the stream's mode:
    /// [`ErrorKind::WouldBlock`] when the pipe cannot take it now.
    pub fn try_write(&self, buf: &[u8]) -> Result<usize, Error> {
        self.write_within(buf, Some(Duration::ZERO), ErrorKind::WouldBlock)
    }

    /// Waits until the stream is readable (data or end of stream) for at most `timeout`
    /// (`None`: forever); `Ok(false)` on timeout. Nothing is consumed.
    pub fn wait_readable(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        if self.read_shut.load(Ordering::Relaxed) {
            return Ok(true);
        }
        sys::wait_readable(&self.handle, &self.read_events, timeout).map_err(Error::os)
    }

    /// Whether a write can proceed: named pipes report no write readiness, and a write
    /// is always accepted by the kernel (waiting for room is bounded by the write
    /// timeout), so this returns `Ok(true)` at once.
    pub fn wait_writable(&self, _timeout: Option<Duration>) -> Result<bool, Error> {
        Ok(true)
    }

    /// Switches nonblocking mode: reads and writes that cannot proceed fail with
    /// [`ErrorKind::WouldBlock`] instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<(), Error> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the stream is in nonblocking mode.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    /// Sets how long a blocking read waits before failing with [`ErrorKind::TimedOut`];
    /// `None` waits forever. A zero duration is refused, as in `std`: use nonblocking mode.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), Error> {
        check_timeout(timeout)?;
        self.read_timeout.set(timeout);
        Ok(())
    }

    /// Sets how long a blocking write waits for room before failing with
    /// [`ErrorKind::TimedOut`]; `None` waits forever. A zero duration is refused.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<(), Error> {
        check_timeout(timeout)?;
        self.write_timeout.set(timeout);
        Ok(())
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Result<Option<Duration>, Error> {
        Ok(self.read_timeout.get())
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> Result<Option<Duration>, Error> {
        Ok(self.write_timeout.get())
    }

    /// Stops reading (reads return end of stream), writing (writes fail with
    /// [`ErrorKind::PeerClosed`]) or both, on this stream.
    ///
    /// Named pipes have no half-close, so the peer is not told: it sees end of stream
    /// when this stream is dropped (every half and clone of it). Dropping is also the
    /// graceful close: the peer still reads everything written before.
    pub fn shutdown(&self, how: Shutdown) -> Result<(), Error> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.read_shut.store(true, Ordering::Relaxed);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.write_shut.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A second handle to the same connection (a duplicated handle), with the same
    /// mode and timeouts.
    pub fn try_clone(&self) -> Result<Stream, Error> {
        let handle = self.handle.try_clone().map_err(Error::os)?;
        let mut clone = Stream::from_handle(handle, self.side).with_slot(self.slot.clone());
        clone.paired = self.paired;
        clone.read_timeout.set(self.read_timeout.get());
        clone.write_timeout.set(self.write_timeout.get());
        clone
            .nonblocking
            .store(self.is_nonblocking(), Ordering::Relaxed);
        Ok(clone)
    }

    /// Pipes keep no pending error: always `Ok(None)` (errors are reported by the call
    /// that meets them).
    pub fn take_error(&self) -> Result<Option<Error>, Error> {
        Ok(None)
    }

    /// Borrowed read and write halves, usable from two threads at once (scoped threads).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        ringlink_host::split(self)
    }

    /// Owned read and write halves that can move to different threads;
    /// [`OwnedReadHalf::reunite`] puts them back together.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        ringlink_host::into_split(self)
    }

    fn read_within(
        &self,
        buf: &mut [u8],
        timeout: Option<Duration>,
        expired: ErrorKind,
    ) -> Result<usize, Error> {
        if buf.is_empty() || self.read_shut.load(Ordering::Relaxed) {
            return Ok(0);
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let left = match (timeout, deadline) {
                (Some(_), Some(d)) => Some(d.saturating_duration_since(Instant::now())),
                (t, _) => t,
            };
            return match sys::read(&self.handle, &self.read_events, buf, left) {
                // A successful empty read is a foreign peer's zero-length write, not end
                // of stream (that is ERROR_BROKEN_PIPE): keep waiting.
                Ok(Completion::Done(0)) if left != Some(Duration::ZERO) => continue,
                Ok(Completion::Done(0)) => Err(Error::bare(expired)),
                Ok(Completion::Done(n) | Completion::TimedOut(n)) if n > 0 => Ok(n as usize),
                Ok(Completion::Done(_) | Completion::TimedOut(_)) => Err(Error::bare(expired)),
                Err(e) if sys::is_closed(&e) => Ok(0),
                Err(e) => Err(Error::os(e)),
            };
        }
    }

    fn write_within(
        &self,
        buf: &[u8],
        timeout: Option<Duration>,
        expired: ErrorKind,
    ) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.write_shut.load(Ordering::Relaxed) {
            return Err(Error::new(
                ErrorKind::PeerClosed,
                "writing was shut down on this stream",
            ));
        }
        match sys::write(&self.handle, &self.write_events, buf, timeout) {
            Ok(Completion::Done(n) | Completion::TimedOut(n)) if n > 0 => Ok(n as usize),
            Ok(Completion::Done(_)) => Err(Error::os(io::Error::from(io::ErrorKind::WriteZero))),
            Ok(Completion::TimedOut(_)) => Err(Error::bare(expired)),
            Err(e) => Err(Error::os(e)),
        }
    }
}

fn check_timeout(timeout: Option<Duration>) -> Result<(), Error> {
    if timeout == Some(Duration::ZERO) {
        return Err(Error::new(
            ErrorKind::Other,
            "a zero read/write timeout is not allowed; use nonblocking mode instead",
        ));
    }
    Ok(())
}

/// Longest single wait for a busy pipe, so the deadline is checked regularly.
const BUSY_WAIT_SLICE: Duration = Duration::from_millis(50);

/// Opens the client end, retrying busy pipes (and, if asked, missing ones) until
/// `deadline`.
fn open_until(
    name: &Name,
    options: &ConnectOptions,
    deadline: Option<Instant>,
) -> Result<OwnedHandle, Error> {
    let wide = name.wide();
    let mut pause = Duration::from_millis(1);
    loop {
        let remaining = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::MAX,
        };
        if remaining.is_zero() {
            return Err(timed_out(name, options));
        }
        let err = match sys::open_pipe(&wide) {
            Ok(handle) => return Ok(handle),
            Err(e) => e,
        };
        match err.raw_os_error().map(|c| c as u32) {
            Some(sys::ERROR_PIPE_BUSY) => {
                // Every instance is taken: wait for one to free up (or the next to be
                // created), a slice at a time. Its error is only "not yet": the next
                // open tells what really happened.
                let _ = sys::wait_named_pipe(&wide, remaining.min(BUSY_WAIT_SLICE));
            }
            Some(sys::ERROR_FILE_NOT_FOUND) if options.waits_for_server() => {
                std::thread::sleep(pause.min(remaining));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            _ => return Err(explain_connect_error(Error::os(err), name)),
        }
    }
}

/// The credentials of the peer process `pid`: the user its token names, when the process
/// can be opened for a query.
pub(crate) fn credentials_of(pid: u32) -> PeerCredentials {
    let user = sys::process_user_sid(pid)
        .ok()
        .map(|sid| UserId::from_sid(&sid));
    PeerCredentials::new(Some(pid), user)
}

/// Refuses a pipe whose owner is not this user (see [`ConnectOptions::verify_server_user`]).
pub(crate) fn check_server_owner(pipe: &impl AsRawHandle, name: &Name) -> Result<(), Error> {
    let own = sys::own_sid().map_err(|e| {
        Error::os(e).with_message("cannot find out which user this process runs as")
    })?;
    let owner = sys::owner_sid(pipe).map_err(|e| {
        Error::os(e).with_message(format!("cannot read the owner of the pipe {name}"))
    })?;
    if owner == own {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::AccessDenied,
        format!(
            "refusing to connect to {name}: the pipe is owned by {owner}, not by this user ({own}); \
             another user may hold the name (use ConnectOptions::verify_server_user(false), or \
             `ringlink connect --any-server`, to connect anyway)"
        ),
    ))
}

pub(crate) fn timed_out(name: &Name, options: &ConnectOptions) -> Error {
    let what = if options.waits_for_server() {
        "no server appeared or had a free pipe instance"
    } else {
        "every pipe instance stayed busy"
    };
    Error::new(
        ErrorKind::TimedOut,
        format!(
            "connecting to {name} timed out after {:?}: {what}",
            options.connect_timeout()
        ),
    )
}

pub(crate) fn explain_connect_error(err: Error, name: &Name) -> Error {
    let message = match err.kind() {
        ErrorKind::ServerNotFound => format!(
            "no ringlink server at {name}: nothing listens on this name (start one, e.g. `ringlink listen NAME`)"
        ),
        ErrorKind::AccessDenied => format!(
            "access denied connecting to {name}: the pipe belongs to another user or its access list does not admit this one"
        ),
        ErrorKind::ResourceExhausted => {
            format!("cannot connect to {name}: out of handles or kernel memory")
        }
        _ => format!("cannot connect to {name}"),
    };
    err.with_message(message)
}

/// Reports a check that cannot run here, in the test's output, and fails the test under
/// `CI=true` (Wine passes the environment through), like `ringlink_tests::cannot_run`,
/// whose crate is Unix-only.
#[cfg(test)]
pub(crate) fn cannot_run(check: &str, reason: &str) {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if in_ci {
        panic!("{check} cannot run here ({reason}), and CI=true makes that a failure");
    }
    eprintln!("SKIPPED {check}: {reason} (set CI=true to make this a failure)");
}

impl AsHandle for Stream {
    fn as_handle(&self) -> BorrowedHandle<'_> {
        self.handle.as_handle()
    }
}

impl AsRawHandle for Stream {
    fn as_raw_handle(&self) -> RawHandle {
        self.handle.as_raw_handle()
    }
}

impl From<Stream> for OwnedHandle {
    /// Gives up the handle; the connection no longer counts against its listener's
    /// `max_connections`.
    fn from(stream: Stream) -> OwnedHandle {
        stream.handle
    }
}

impl io::Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Stream::recv(self, buf).map_err(io::Error::from)
    }
}

impl io::Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Stream::send(self, buf).map_err(io::Error::from)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // One write of the first non-empty buffer: pipes have no gather write.
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(b) => Stream::send(self, b).map_err(io::Error::from),
            None => Ok(0),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Stream::recv(self, buf).map_err(io::Error::from)
    }
}

impl io::Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Stream::send(self, buf).map_err(io::Error::from)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        io::Write::write_vectored(&mut &*self, bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

ringlink_host::define_halves!(Stream);

impl SplitStream for Stream {
    fn shutdown_write(&self) -> Result<(), Error> {
        self.shutdown(Shutdown::Write)
    }
}

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
        let (a, mut b) = Stream::pair().unwrap();
        a.send_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        assert!(a.is_server() != b.is_server());
        drop(a);
        assert_eq!(Stream::recv(&b, &mut buf).unwrap(), 0);
    }

    #[test]
    fn bytes_written_before_close_are_still_read() {
        let (a, b) = Stream::pair().unwrap();
        a.send_all(b"last words").unwrap();
        drop(a);
        let mut got = Vec::new();
        (&b).read_to_end(&mut got).unwrap();
        assert_eq!(got, b"last words");
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
        assert_eq!(buf[0], b'x');
    }

    #[test]
    fn read_timeout_expires_as_timed_out_and_the_stream_stays_usable() {
        let (a, b) = Stream::pair().unwrap();
        b.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let t = Instant::now();
        let err = Stream::recv(&b, &mut [0u8; 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(
            t.elapsed() >= Duration::from_millis(45),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(b.read_timeout().unwrap(), Some(Duration::from_millis(50)));
        // The cancelled read consumed nothing: the next byte arrives intact.
        a.send_all(b"z").unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(Stream::recv(&b, &mut buf).unwrap(), 1);
        assert_eq!(buf[0], b'z');
        b.set_nonblocking(true).unwrap();
        assert_eq!(
            Stream::recv(&b, &mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert!(b.set_read_timeout(Some(Duration::ZERO)).is_err());
    }

    #[test]
    fn write_timeout_expires_when_the_peer_does_not_read() {
        let (a, _b) = Stream::pair().unwrap();
        a.set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let chunk = vec![7u8; 1 << 20];
        let t = Instant::now();
        let err = a.send_all(&chunk).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn writing_to_a_closed_peer_is_peer_closed() {
        let (a, b) = Stream::pair().unwrap();
        drop(b);
        let err = a.send_all(b"x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PeerClosed);
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn wait_readable_sees_data_and_end_of_stream_without_consuming() {
        let (a, b) = Stream::pair().unwrap();
        assert!(!b.wait_readable(Some(Duration::from_millis(20))).unwrap());
        a.send_all(b"r").unwrap();
        assert!(b.wait_readable(Some(Duration::from_secs(5))).unwrap());
        let mut buf = [0u8; 1];
        assert_eq!(b.try_read(&mut buf).unwrap(), 1);
        drop(a);
        assert!(b.wait_readable(Some(Duration::from_secs(5))).unwrap());
        assert_eq!(Stream::recv(&b, &mut buf).unwrap(), 0);
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
        b.send_all(b"pong").unwrap();
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pong");
        let w = writer.join().unwrap();
        let a = r.reunite(w).unwrap();
        a.send_all(b"!").unwrap();
        Stream::recv(&b, &mut buf[..1]).unwrap();
        assert_eq!(buf[0], b'!');
    }

    #[test]
    fn concurrent_read_and_write_on_one_stream() {
        let (a, b) = Stream::pair().unwrap();
        let a = Arc::new(a);
        let reader = {
            let a = a.clone();
            std::thread::spawn(move || {
                let mut got = vec![0u8; 100_000];
                (&*a).read_exact(&mut got).unwrap();
                got
            })
        };
        // While `a` blocks in a read, it can still write.
        a.send_all(b"from a").unwrap();
        let mut buf = [0u8; 6];
        (&b).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"from a");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        b.send_all(&data).unwrap();
        assert_eq!(reader.join().unwrap(), data);
    }

    #[test]
    fn shutdown_stops_this_side() {
        let (a, b) = Stream::pair().unwrap();
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(a.send(b"x").unwrap_err().kind(), ErrorKind::PeerClosed);
        b.shutdown(Shutdown::Read).unwrap();
        assert_eq!(Stream::recv(&b, &mut [0u8; 1]).unwrap(), 0);
    }

    #[test]
    fn a_pipe_owned_by_someone_else_is_refused() {
        // A "squatter": a pipe whose owner is the Administrators group, not this user.
        let name = Name::new(&format!("ringlink-squat-{}", std::process::id())).unwrap();
        let sd = sys::SecurityDescriptor::from_sddl("O:BAD:P(A;;GA;;;WD)").unwrap();
        let pipe = match sys::create_pipe(&name.wide(), true, &sd, 4096, 4096) {
            Ok(p) => p,
            Err(e) => {
                // Windows lets only members of Administrators make it the owner.
                return cannot_run(
                    "a_pipe_owned_by_someone_else_is_refused",
                    &format!("cannot create a pipe owned by Administrators here ({e})"),
                );
            }
        };
        let err = Stream::connect(&name, ConnectOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");
        assert!(err.to_string().contains("S-1-5-32-544"), "{err}");
        // The refused client's instance stays taken until the server disconnects it.
        let second = sys::create_pipe(&name.wide(), false, &sd, 4096, 4096).unwrap();
        let opt_out = ConnectOptions::new()
            .verify_server_user(false)
            .timeout(Duration::from_secs(5));
        Stream::connect(&name, opt_out).unwrap();
        drop((pipe, second));
    }

    #[test]
    fn peers_know_each_others_process() {
        let (a, b) = Stream::pair().unwrap();
        assert_eq!(a.peer_process_id().unwrap(), std::process::id());
        assert_eq!(
            b.peer_credentials().unwrap().pid(),
            Some(std::process::id())
        );
    }
}
