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
use std::time::Duration;

use ringlink_host::{ConnectionSlot, SplitStream};

use crate::connect::connect_fd;
use crate::name::IntoName;
use crate::sys;
use crate::{ConnectOptions, Error, ErrorKind, PeerCredentials};

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
    /// Connects to the server at `name` (see [`Name`](crate::Name)) within the options' deadline.
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
        sys::set_timeout(fd.as_raw_fd(), true, options.stream_read_timeout()).map_err(Error::os)?;
        sys::set_timeout(fd.as_raw_fd(), false, options.stream_write_timeout())
            .map_err(Error::os)?;
        if options.is_nonblocking() {
            sys::set_nonblocking(fd.as_raw_fd(), true).map_err(Error::os)?;
        }
        Ok(Stream {
            fd,
            nonblocking: AtomicBool::new(options.is_nonblocking()),
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

    /// Who the peer is: its process id and user ([`PeerCredentialsExt`](crate::PeerCredentialsExt) adds its group id).
    pub fn peer_credentials(&self) -> Result<PeerCredentials, Error> {
        crate::peer::credentials(self.fd.as_raw_fd())
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
        offset: usize,
    ) -> Result<usize, Error> {
        let (slices, count) = rest_of(parts, offset);
        match count {
            0 => Ok(0),
            1 => self.send(&slices[0]),
            _ => sys::send_vectored(self.fd.as_raw_fd(), &slices[..count], false)
                .map_err(|e| self.map_again(e)),
        }
    }

    /// How many bytes [`send_vectored_from`](Self::send_vectored_from) offers to one
    /// system call: fewer than the rest when it spans more than two parts.
    pub(crate) fn offered_from(parts: &[&[u8]], offset: usize) -> usize {
        let (slices, count) = rest_of(parts, offset);
        slices[..count].iter().map(|s| s.len()).sum()
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
        ringlink_host::split(self)
    }

    /// Owned read and write halves that can move to different threads. Dropping the
    /// write half shuts down writing, so the peer sees end of stream;
    /// [`OwnedReadHalf::reunite`] puts the halves back together.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        ringlink_host::into_split(self)
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

/// The unsent rest of the concatenation of `parts`, `offset` bytes in: its first two
/// non-empty pieces (what one `send`/`sendmsg` of ours offers) and how many there are.
fn rest_of<'a>(parts: &[&'a [u8]], mut offset: usize) -> ([IoSlice<'a>; 2], usize) {
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
    (slices, count)
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
    use std::time::Instant;

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
        // One call offers two pieces at most: a send of all of them is not short.
        let three: [&[u8]; 3] = [b"a", b"b", b"c"];
        assert_eq!(Stream::offered_from(&three, 0), 2);
        assert_eq!(Stream::offered_from(&three, 1), 2);
        assert_eq!(Stream::offered_from(&parts, 1), 3);
        let mut buf = [0u8; 7];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"abcdbcd");
    }
}
