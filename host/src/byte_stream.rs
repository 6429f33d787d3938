//! What the shared code needs from an adapter's connected stream: [`ByteStream`] (reads and
//! writes that honour the stream's mode and timeouts, readiness, whole writes), [`Connect`]
//! (opening one by name) and the optional shared-memory transport of framed mode.
//!
//! `ringlink-unix` implements them for its Unix-socket `Stream`, `ringlink-windows` for its
//! named-pipe `Stream`; framed mode ([`crate::FramedStream`]) and the embedded-io glue
//! ([`crate::impl_embedded_io!`]) are written once against them.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::{Error, FrameOptions, Hello};

/// A connected byte stream of a host adapter (a Unix socket, a named pipe).
///
/// Methods take `&self`: a stream is read from one thread and written from another.
pub trait ByteStream {
    /// The shared-memory transport framed mode may move frames to
    /// ([`NoSharedMemory`] where the platform has none).
    type SharedMemory: SharedMemoryTransport;

    /// Reads into `buf`, blocking (unless in nonblocking mode) until at least one byte
    /// arrives; `Ok(0)` is end of stream. Fails with
    /// [`ErrorKind::TimedOut`](crate::ErrorKind::TimedOut) when the read timeout expires
    /// and with [`ErrorKind::WouldBlock`](crate::ErrorKind::WouldBlock) in nonblocking mode.
    fn recv(&self, buf: &mut [u8]) -> Result<usize, Error>;

    /// Writes some of `buf`, returning how many bytes went out; mode and write timeout
    /// apply as in [`recv`](Self::recv).
    fn send(&self, buf: &[u8]) -> Result<usize, Error>;

    /// Writes all of `buf`, looping over partial writes. On error, an unknown prefix of
    /// `buf` may have been sent.
    fn send_all(&self, mut buf: &[u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            match self.send(buf)? {
                0 => return Err(Error::os(io::Error::from(io::ErrorKind::WriteZero))),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Writes the concatenation of `parts` completely, waiting for room whatever the
    /// stream's mode (bounded by the write timeout), so a frame is never torn.
    fn send_parts(&self, parts: &[&[u8]]) -> Result<(), Error>;

    /// Reads what is there without ever blocking, whatever the mode:
    /// [`ErrorKind::WouldBlock`](crate::ErrorKind::WouldBlock) when nothing is, `Ok(0)` at
    /// end of stream.
    fn try_read(&self, buf: &mut [u8]) -> Result<usize, Error>;

    /// Waits at most `timeout` (`None`: forever) until a read would not block (data or end
    /// of stream); `Ok(false)` on timeout. It may return `Ok(true)` early, so follow it
    /// with [`try_read`](Self::try_read) and expect `WouldBlock`.
    fn wait_readable(&self, timeout: Option<Duration>) -> Result<bool, Error>;

    /// Waits at most `timeout` until a write would not block; `Ok(false)` on timeout.
    fn wait_writable(&self, timeout: Option<Duration>) -> Result<bool, Error>;

    /// Switches nonblocking mode.
    fn set_nonblocking(&self, nonblocking: bool) -> Result<(), Error>;

    /// Sets how long a blocking read waits (`None`: forever).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), Error>;

    /// Sets how long a blocking write waits for room (`None`: forever).
    fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<(), Error>;

    /// Sets up the shared-memory transport after the hellos, called only when both sides
    /// offered [`Transports::SHARED_MEMORY`](crate::Transports::SHARED_MEMORY).
    /// `received` holds what the peer sent after its hello; when this returns a
    /// transport, those bytes belonged to its setup and are dropped. `Ok(None)` keeps
    /// the frames on the stream (the default).
    fn negotiate_shared_memory(
        &self,
        local: &Hello,
        peer: &Hello,
        received: &[u8],
        options: &FrameOptions,
    ) -> Result<Option<Self::SharedMemory>, Error> {
        let _ = (local, peer, received, options);
        Ok(None)
    }
}

/// Opening a connection by name, so that `FramedStream::connect` can do it for any
/// adapter. `N` is whatever the adapter accepts as a name.
pub trait Connect<N>: Sized {
    /// The adapter's connect options (deadline, timeouts, mode).
    type Options;

    /// Connects to the server at `name`.
    fn connect(name: N, options: Self::Options) -> Result<Self, Error>;
}

/// A transport that carries frames through memory shared with the peer once both hellos
/// offered it: reads block until bytes arrive (`Ok(0)` at end of stream), writes until
/// there is room, each within its timeout.
pub trait SharedMemoryTransport: io::Read + io::Write + fmt::Debug {
    /// Whether the platform has the transport; `false` keeps
    /// [`Transports::SHARED_MEMORY`](crate::Transports::SHARED_MEMORY) out of this side's
    /// hello.
    const AVAILABLE: bool = true;

    /// Sets how long a read waits (`None`: forever).
    fn set_read_timeout(&mut self, timeout: Option<Duration>);

    /// Sets how long a write waits for room (`None`: forever).
    fn set_write_timeout(&mut self, timeout: Option<Duration>);

    /// Nonblocking mode: reads fail with `WouldBlock` instead of waiting for bytes.
    fn set_nonblocking(&mut self, nonblocking: bool);

    /// The receiving half, for [`into_split`](Self::into_split).
    type ReadHalf: io::Read + fmt::Debug + Send;
    /// The sending half, for [`into_split`](Self::into_split); dropping it ends the
    /// stream for the peer.
    type WriteHalf: io::Write + fmt::Debug + Send;

    /// Splits into halves that can move to different threads.
    fn into_split(self) -> (Self::ReadHalf, Self::WriteHalf);
}

/// The shared-memory transport of a platform that has none: no value of it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSharedMemory {}

impl io::Read for NoSharedMemory {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }
}

impl io::Write for NoSharedMemory {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        match *self {}
    }

    fn flush(&mut self) -> io::Result<()> {
        match *self {}
    }
}

impl SharedMemoryTransport for NoSharedMemory {
    const AVAILABLE: bool = false;

    fn set_read_timeout(&mut self, _timeout: Option<Duration>) {
        match *self {}
    }

    fn set_write_timeout(&mut self, _timeout: Option<Duration>) {
        match *self {}
    }

    fn set_nonblocking(&mut self, _nonblocking: bool) {
        match *self {}
    }

    type ReadHalf = NoSharedMemory;
    type WriteHalf = NoSharedMemory;

    fn into_split(self) -> (NoSharedMemory, NoSharedMemory) {
        match self {}
    }
}

/// Implements [`ByteStream`] for an adapter's stream through its inherent methods of the
/// same names and meaning (`recv`, `send`, `try_read`, `wait_readable`, `wait_writable`,
/// `set_nonblocking`, `set_read_timeout`, `set_write_timeout`: both adapters' streams
/// have them); the items in braces complete it (`type SharedMemory`, `send_parts`, and
/// `negotiate_shared_memory` where the platform has shared memory).
///
/// ```
/// # use ringlink_host::Error;
/// # use std::time::Duration;
/// /// A stream that is always at its end and swallows what it is sent.
/// struct Closed;
///
/// impl Closed {
///     fn recv(&self, _: &mut [u8]) -> Result<usize, Error> { Ok(0) }
///     fn send(&self, buf: &[u8]) -> Result<usize, Error> { Ok(buf.len()) }
///     fn try_read(&self, _: &mut [u8]) -> Result<usize, Error> { Ok(0) }
///     fn wait_readable(&self, _: Option<Duration>) -> Result<bool, Error> { Ok(true) }
///     fn wait_writable(&self, _: Option<Duration>) -> Result<bool, Error> { Ok(true) }
///     fn set_nonblocking(&self, _: bool) -> Result<(), Error> { Ok(()) }
///     fn set_read_timeout(&self, _: Option<Duration>) -> Result<(), Error> { Ok(()) }
///     fn set_write_timeout(&self, _: Option<Duration>) -> Result<(), Error> { Ok(()) }
/// }
///
/// ringlink_host::impl_byte_stream!(Closed {
///     type SharedMemory = ringlink_host::NoSharedMemory;
///
///     fn send_parts(&self, _parts: &[&[u8]]) -> Result<(), Error> {
///         Ok(())
///     }
/// });
///
/// use ringlink_host::ByteStream;
/// assert_eq!(ByteStream::recv(&Closed, &mut [0u8; 8])?, 0);
/// Closed.send_all(b"gone")?;
/// # Ok::<(), Error>(())
/// ```
#[macro_export]
macro_rules! impl_byte_stream {
    ($ty:ty { $($items:tt)* }) => {
        impl $crate::ByteStream for $ty {
            $($items)*

            fn recv(&self, buf: &mut [u8]) -> Result<usize, $crate::Error> {
                <$ty>::recv(self, buf)
            }

            fn send(&self, buf: &[u8]) -> Result<usize, $crate::Error> {
                <$ty>::send(self, buf)
            }

            fn try_read(&self, buf: &mut [u8]) -> Result<usize, $crate::Error> {
                <$ty>::try_read(self, buf)
            }

            fn wait_readable(
                &self,
                timeout: Option<::std::time::Duration>,
            ) -> Result<bool, $crate::Error> {
                <$ty>::wait_readable(self, timeout)
            }

            fn wait_writable(
                &self,
                timeout: Option<::std::time::Duration>,
            ) -> Result<bool, $crate::Error> {
                <$ty>::wait_writable(self, timeout)
            }

            fn set_nonblocking(&self, nonblocking: bool) -> Result<(), $crate::Error> {
                <$ty>::set_nonblocking(self, nonblocking)
            }

            fn set_read_timeout(
                &self,
                timeout: Option<::std::time::Duration>,
            ) -> Result<(), $crate::Error> {
                <$ty>::set_read_timeout(self, timeout)
            }

            fn set_write_timeout(
                &self,
                timeout: Option<::std::time::Duration>,
            ) -> Result<(), $crate::Error> {
                <$ty>::set_write_timeout(self, timeout)
            }
        }
    };
}
