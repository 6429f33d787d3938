//! `embedded_io` for an adapter's streams and halves, written once: [`impl_embedded_io!`]
//! expands to the trait impls in the adapter (the orphan rule wants them there), each
//! forwarding to the [`ByteStream`](crate::ByteStream) the type reads from or writes to.
//!
//! Reads block until at least one byte arrives (`Ok(0)` is end of stream); writes never
//! return `Ok(0)` for a non-empty buffer. `ReadReady`/`WriteReady` ask the stream without
//! waiting.

/// Implements `embedded_io::{ErrorType, Read, ReadReady}` (`read:`),
/// `embedded_io::{ErrorType, Write, WriteReady}` (`write:`) or all of them
/// (`read_write:`) for a type, through the [`ByteStream`](crate::ByteStream) that
/// `|this| expr` finds from `this: &Self`. The error type is [`crate::Error`].
///
/// ```
/// # use ringlink_host::{ByteStream, Error, NoSharedMemory};
/// # use std::time::Duration;
/// // A stream that is always at its end, and the half of a split that reads from it.
/// struct Closed;
/// # impl ByteStream for Closed {
/// #     type SharedMemory = NoSharedMemory;
/// #     fn recv(&self, _: &mut [u8]) -> Result<usize, Error> { Ok(0) }
/// #     fn send(&self, _: &[u8]) -> Result<usize, Error> { Ok(0) }
/// #     fn send_parts(&self, _: &[&[u8]]) -> Result<(), Error> { Ok(()) }
/// #     fn try_read(&self, _: &mut [u8]) -> Result<usize, Error> { Ok(0) }
/// #     fn wait_readable(&self, _: Option<Duration>) -> Result<bool, Error> { Ok(true) }
/// #     fn wait_writable(&self, _: Option<Duration>) -> Result<bool, Error> { Ok(true) }
/// #     fn set_nonblocking(&self, _: bool) -> Result<(), Error> { Ok(()) }
/// #     fn set_read_timeout(&self, _: Option<Duration>) -> Result<(), Error> { Ok(()) }
/// #     fn set_write_timeout(&self, _: Option<Duration>) -> Result<(), Error> { Ok(()) }
/// # }
/// struct ReadHalf<'a>(&'a Closed);
///
/// ringlink_host::impl_embedded_io!(read_write: Closed, |this| this);
/// ringlink_host::impl_embedded_io!(read: ReadHalf<'_>, |this| this.0);
///
/// use embedded_io::{Read, ReadReady};
/// let mut half = ReadHalf(&Closed);
/// assert!(half.read_ready()?);
/// assert_eq!(half.read(&mut [0u8; 4])?, 0);
/// # Ok::<(), Error>(())
/// ```
#[macro_export]
macro_rules! impl_embedded_io {
    (read: $ty:ty, |$this:ident| $stream:expr) => {
        impl $crate::__private::embedded_io::ErrorType for $ty {
            type Error = $crate::Error;
        }
        $crate::impl_embedded_io!(@read $ty, |$this| $stream);
    };
    (write: $ty:ty, |$this:ident| $stream:expr) => {
        impl $crate::__private::embedded_io::ErrorType for $ty {
            type Error = $crate::Error;
        }
        $crate::impl_embedded_io!(@write $ty, |$this| $stream);
    };
    (read_write: $ty:ty, |$this:ident| $stream:expr) => {
        impl $crate::__private::embedded_io::ErrorType for $ty {
            type Error = $crate::Error;
        }
        $crate::impl_embedded_io!(@read $ty, |$this| $stream);
        $crate::impl_embedded_io!(@write $ty, |$this| $stream);
    };
    (@read $ty:ty, |$this:ident| $stream:expr) => {
        impl $crate::__private::embedded_io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> Result<usize, $crate::Error> {
                let $this: &Self = self;
                $crate::ByteStream::recv($stream, buf)
            }
        }
        $crate::impl_embedded_io!(@ready ReadReady::read_ready, wait_readable, $ty, |$this| $stream);
    };
    (@write $ty:ty, |$this:ident| $stream:expr) => {
        impl $crate::__private::embedded_io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> Result<usize, $crate::Error> {
                let $this: &Self = self;
                $crate::ByteStream::send($stream, buf)
            }
            fn flush(&mut self) -> Result<(), $crate::Error> {
                Ok(())
            }
            fn write_all(&mut self, buf: &[u8]) -> Result<(), $crate::Error> {
                let $this: &Self = self;
                $crate::ByteStream::send_all($stream, buf)
            }
        }
        $crate::impl_embedded_io!(@ready WriteReady::write_ready, wait_writable, $ty, |$this| $stream);
    };
    // `ReadReady`/`WriteReady`: ask the stream with a zero timeout.
    (@ready $trait:ident::$method:ident, $wait:ident, $ty:ty, |$this:ident| $stream:expr) => {
        impl $crate::__private::embedded_io::$trait for $ty {
            fn $method(&mut self) -> Result<bool, $crate::Error> {
                let $this: &Self = self;
                $crate::ByteStream::$wait($stream, Some(::std::time::Duration::ZERO))
            }
        }
    };
}
