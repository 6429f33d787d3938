//! `embedded_io_async::{Read, Write}` on the tokio [`Stream`] and its halves, so one
//! async protocol function serves a firmware task on a ringlink-core channel and a
//! desktop client on a socket.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use embedded_io_async::{Read, Write};
//! use ringlink_unix::tokio::Stream;
//!
//! async fn ping<S: Read + Write>(mut s: S) -> Result<[u8; 4], S::Error> {
//!     s.write_all(b"ping").await?;
//!     let mut reply = [0u8; 4];
//!     s.read_exact(&mut reply).await.map_err(|e| match e {
//!         embedded_io_async::ReadExactError::Other(e) => e,
//!         embedded_io_async::ReadExactError::UnexpectedEof => unreachable!("peer echoes"),
//!     })?;
//!     Ok(reply)
//! }
//!
//! let (client, mut server) = Stream::pair()?;
//! tokio::spawn(async move {
//!     let mut buf = [0u8; 4];
//!     let n = Read::read(&mut server, &mut buf).await.unwrap();
//!     Write::write_all(&mut server, &buf[..n]).await.unwrap();
//! });
//! assert_eq!(&ping(client).await?, b"ping");
//! # Ok(())
//! # }
//! ```

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Error;
use crate::tokio::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, Stream, WriteHalf};

/// `embedded_io_async` through the tokio traits of each type: one `read` or `write`
/// of the socket per call, errors back as ringlink [`Error`]s.
macro_rules! embedded_io_async {
    (@type $ty:ty) => {
        impl embedded_io_async::ErrorType for $ty {
            type Error = Error;
        }
    };
    (read: $($ty:ty),*) => {$(
        impl embedded_io_async::Read for $ty {
            async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
                AsyncReadExt::read(self, buf).await.map_err(Error::from)
            }
        }
    )*};
    (write: $($ty:ty),*) => {$(
        impl embedded_io_async::Write for $ty {
            async fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
                AsyncWriteExt::write(self, buf).await.map_err(Error::from)
            }

            async fn flush(&mut self) -> Result<(), Error> {
                AsyncWriteExt::flush(self).await.map_err(Error::from)
            }
        }
    )*};
    (types: $($ty:ty),*) => {$(
        embedded_io_async!(@type $ty);
    )*};
}

embedded_io_async!(types: Stream, ReadHalf<'_>, WriteHalf<'_>, OwnedReadHalf, OwnedWriteHalf);
embedded_io_async!(read: Stream, ReadHalf<'_>, OwnedReadHalf);
embedded_io_async!(write: Stream, WriteHalf<'_>, OwnedWriteHalf);
