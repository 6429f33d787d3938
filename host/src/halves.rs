//! The read and write halves of a stream, written once for every adapter: borrowed
//! ([`ReadHalf`], [`WriteHalf`], for scoped threads) and owned ([`OwnedReadHalf`],
//! [`OwnedWriteHalf`], which move to other threads and [`reunite`](OwnedReadHalf::reunite)).
//!
//! An adapter's `Stream::split` and `Stream::into_split` return these over its stream; its
//! `ReadHalf<'a>` is `ringlink_host::ReadHalf<'a, Stream>`. Halves implement `std::io` and
//! `embedded_io` through the stream's [`ByteStream`] methods, so they keep its mode and
//! timeouts.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::{ByteStream, Error};

/// A stream that can stop writing: what dropping an [`OwnedWriteHalf`] does, so the peer
/// sees end of stream (on Unix at once; on Windows, where pipes have no half-close, once
/// the read half is gone too). The halves of a blocking stream ([`ByteStream`]) implement
/// `std::io` and `embedded_io`; those of an async one (`tokio_halves::AsyncSplitStream`,
/// feature `tokio`) implement tokio's `AsyncRead`/`AsyncWrite` and `embedded_io_async`.
pub trait SplitStream {
    /// Shuts down writing on this stream.
    fn shutdown_write(&self) -> Result<(), Error>;
}

/// Defines an adapter's half types as aliases of these, over its stream type `$stream`:
/// `ReadHalf<'a>`, `WriteHalf<'a>`, `OwnedReadHalf`, `OwnedWriteHalf`, `ReuniteError`.
#[macro_export]
macro_rules! define_halves {
    ($stream:ident) => {
        /// The reading half of a [`Stream`], borrowed by [`Stream::split`].
        pub type ReadHalf<'a> = $crate::ReadHalf<'a, $stream>;

        /// The writing half of a [`Stream`], borrowed by [`Stream::split`].
        pub type WriteHalf<'a> = $crate::WriteHalf<'a, $stream>;

        /// The reading half of a [`Stream`], owned, from [`Stream::into_split`].
        pub type OwnedReadHalf = $crate::OwnedReadHalf<$stream>;

        /// The writing half of a [`Stream`], owned, from [`Stream::into_split`]. Dropping
        /// it shuts down writing (on Windows the peer sees end of stream once the read half
        /// is dropped too: pipes have no half-close).
        pub type OwnedWriteHalf = $crate::OwnedWriteHalf<$stream>;

        /// The halves given to [`OwnedReadHalf::reunite`] came from different streams.
        pub type ReuniteError = $crate::ReuniteError<$stream>;
    };
}

/// The reading half of a stream, borrowed by `Stream::split`.
#[derive(Debug)]
pub struct ReadHalf<'a, S>(&'a S);

/// The writing half of a stream, borrowed by `Stream::split`.
#[derive(Debug)]
pub struct WriteHalf<'a, S>(&'a S);

/// The reading half of a stream, owned, from `Stream::into_split`.
#[derive(Debug)]
pub struct OwnedReadHalf<S>(Arc<S>);

/// The writing half of a stream, owned, from `Stream::into_split`. Dropping it shuts down
/// writing (see [`SplitStream`]).
#[derive(Debug)]
pub struct OwnedWriteHalf<S: SplitStream> {
    stream: Arc<S>,
    shutdown_on_drop: bool,
}

/// The halves given to [`OwnedReadHalf::reunite`] came from different streams; both are
/// handed back.
pub struct ReuniteError<S: SplitStream>(pub OwnedReadHalf<S>, pub OwnedWriteHalf<S>);

impl<S: SplitStream> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S: SplitStream> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves of two different streams")
    }
}

impl<S: SplitStream> std::error::Error for ReuniteError<S> {}

/// Borrowed halves of `stream`.
pub fn split<S>(stream: &S) -> (ReadHalf<'_, S>, WriteHalf<'_, S>) {
    (ReadHalf(stream), WriteHalf(stream))
}

/// Owned halves of `stream`.
pub fn into_split<S: SplitStream>(stream: S) -> (OwnedReadHalf<S>, OwnedWriteHalf<S>) {
    let stream = Arc::new(stream);
    (
        OwnedReadHalf(stream.clone()),
        OwnedWriteHalf {
            stream,
            shutdown_on_drop: true,
        },
    )
}

impl<'a, S> ReadHalf<'a, S> {
    /// The stream this half belongs to.
    pub fn stream(&self) -> &'a S {
        self.0
    }
}

impl<'a, S> WriteHalf<'a, S> {
    /// The stream this half belongs to.
    pub fn stream(&self) -> &'a S {
        self.0
    }
}

impl<S: SplitStream> OwnedReadHalf<S> {
    /// The stream this half belongs to.
    pub fn stream(&self) -> &S {
        &self.0
    }

    /// Puts the two halves of one stream back together, without shutting anything down.
    pub fn reunite(self, mut write: OwnedWriteHalf<S>) -> Result<S, ReuniteError<S>> {
        if !Arc::ptr_eq(&self.0, &write.stream) {
            return Err(ReuniteError(self, write));
        }
        write.shutdown_on_drop = false;
        drop(write);
        // Exactly the two halves held a reference and the write half is gone.
        Arc::try_unwrap(self.0).map_err(|_| unreachable!("only the two halves share the stream"))
    }
}

impl<S: SplitStream> OwnedWriteHalf<S> {
    /// The stream this half belongs to.
    pub fn stream(&self) -> &S {
        &self.stream
    }
}

impl<S: SplitStream> Drop for OwnedWriteHalf<S> {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // The peer may be gone already; nothing useful to do with that error.
            let _ = self.stream.shutdown_write();
        }
    }
}

/// `std::io` and `embedded_io` for a half type, reading or writing through `stream()`.
macro_rules! half_io {
    (read: $ty:ty, [$($bounds:tt)*]) => {
        impl<$($bounds)*> io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.stream().recv(buf).map_err(io::Error::from)
            }
        }
        impl<$($bounds)*> embedded_io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
                self.stream().recv(buf)
            }
        }
        impl<$($bounds)*> embedded_io::ReadReady for $ty {
            fn read_ready(&mut self) -> Result<bool, Error> {
                self.stream().wait_readable(Some(Duration::ZERO))
            }
        }
    };
    (write: $ty:ty, [$($bounds:tt)*]) => {
        impl<$($bounds)*> io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.stream().send(buf).map_err(io::Error::from)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl<$($bounds)*> embedded_io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
                self.stream().send(buf)
            }
            fn flush(&mut self) -> Result<(), Error> {
                Ok(())
            }
            fn write_all(&mut self, buf: &[u8]) -> Result<(), Error> {
                self.stream().send_all(buf)
            }
        }
        impl<$($bounds)*> embedded_io::WriteReady for $ty {
            fn write_ready(&mut self) -> Result<bool, Error> {
                self.stream().wait_writable(Some(Duration::ZERO))
            }
        }
    };
}

// One error type whatever the stream (blocking or async): embedded-io-async shares
// embedded-io's `ErrorType`.
impl<S> embedded_io::ErrorType for ReadHalf<'_, S> {
    type Error = Error;
}
impl<S> embedded_io::ErrorType for WriteHalf<'_, S> {
    type Error = Error;
}
impl<S> embedded_io::ErrorType for OwnedReadHalf<S> {
    type Error = Error;
}
impl<S: SplitStream> embedded_io::ErrorType for OwnedWriteHalf<S> {
    type Error = Error;
}

half_io!(read: ReadHalf<'_, S>, [S: ByteStream]);
half_io!(read: OwnedReadHalf<S>, [S: ByteStream + SplitStream]);
half_io!(write: WriteHalf<'_, S>, [S: ByteStream]);
half_io!(write: OwnedWriteHalf<S>, [S: ByteStream + SplitStream]);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoSharedMemory;
    use std::io::{Read, Write};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A loopback stream: what is sent is read back.
    #[derive(Debug, Default)]
    struct Loop {
        bytes: Mutex<Vec<u8>>,
        shut: AtomicBool,
    }

    impl ByteStream for Loop {
        type SharedMemory = NoSharedMemory;
        fn recv(&self, buf: &mut [u8]) -> Result<usize, Error> {
            let mut bytes = self.bytes.lock().unwrap();
            let n = buf.len().min(bytes.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            bytes.drain(..n);
            Ok(n)
        }
        fn send(&self, buf: &[u8]) -> Result<usize, Error> {
            if self.shut.load(Ordering::Relaxed) {
                return Err(Error::new(crate::ErrorKind::PeerClosed, "shut down"));
            }
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn send_parts(&self, parts: &[&[u8]]) -> Result<(), Error> {
            parts.iter().try_for_each(|p| self.send_all(p))
        }
        fn try_read(&self, buf: &mut [u8]) -> Result<usize, Error> {
            self.recv(buf)
        }
        fn wait_readable(&self, _: Option<Duration>) -> Result<bool, Error> {
            Ok(!self.bytes.lock().unwrap().is_empty())
        }
        fn wait_writable(&self, _: Option<Duration>) -> Result<bool, Error> {
            Ok(true)
        }
        fn set_nonblocking(&self, _: bool) -> Result<(), Error> {
            Ok(())
        }
        fn set_read_timeout(&self, _: Option<Duration>) -> Result<(), Error> {
            Ok(())
        }
        fn set_write_timeout(&self, _: Option<Duration>) -> Result<(), Error> {
            Ok(())
        }
    }

    impl SplitStream for Loop {
        fn shutdown_write(&self) -> Result<(), Error> {
            self.shut.store(true, Ordering::Relaxed);
            Ok(())
        }
    }

    #[test]
    fn owned_halves_reunite_without_shutting_down() {
        let (mut r, mut w) = into_split(Loop::default());
        w.write_all(b"ab").unwrap();
        let mut buf = [0u8; 2];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ab");
        let stream = r.reunite(w).unwrap();
        assert!(!stream.shut.load(Ordering::Relaxed));
        assert_eq!(stream.send(b"c").unwrap(), 1);
    }

    #[test]
    fn halves_of_two_streams_do_not_reunite_and_a_dropped_write_half_shuts_down() {
        let (r1, w1) = into_split(Loop::default());
        let (r2, w2) = into_split(Loop::default());
        let ReuniteError(r1, w2) = r1.reunite(w2).unwrap_err();
        drop(w2);
        assert!(r2.stream().shut.load(Ordering::Relaxed));
        let stream = r1.reunite(w1).unwrap();
        assert!(!stream.shut.load(Ordering::Relaxed));
    }

    #[test]
    fn borrowed_halves_read_and_write_the_stream() {
        let stream = Loop::default();
        let (mut r, mut w) = split(&stream);
        embedded_io::Write::write_all(&mut w, b"xyz").unwrap();
        assert!(embedded_io::ReadReady::read_ready(&mut r).unwrap());
        let mut buf = [0u8; 3];
        assert_eq!(embedded_io::Read::read(&mut r, &mut buf).unwrap(), 3);
        assert_eq!(&buf, b"xyz");
    }
}
