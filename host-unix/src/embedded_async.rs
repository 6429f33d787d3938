//! `embedded_io_async::{Read, Write}` on the tokio `Stream` and its halves, so one
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

ringlink_host::impl_embedded_io_async!(crate::tokio::Stream);
