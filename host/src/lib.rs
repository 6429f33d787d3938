//! The platform-independent half of ringlink's host adapters, written once and used by
//! `ringlink-unix` (Unix domain sockets) and `ringlink-windows` (named pipes).
//!
//! - [`Error`] and [`ErrorKind`]: the one error type of both adapters, its kinds modelled
//!   on Qt's `LocalSocketError`; it reads the platform's OS error codes.
//! - [`FramedStream`]: framed mode (the [`Hello`], length-prefixed frames, postcard
//!   messages, the shared-memory upgrade) over any [`ByteStream`].
//! - [`impl_embedded_io!`]: the `embedded_io` traits for an adapter's streams and halves.
//! - `tokio` (feature `tokio`): the async framed stream over an `AsyncByteStream`.
//! - [`spin`]: the spin-then-park policy of the shared-memory transports.
//!
//! Each adapter keeps what is really its platform's: names, security, the system calls
//! behind its [`ByteStream`] impl, and the shared-memory transport on Linux. Users see
//! these items through the adapters' re-exports (`ringlink_unix::FramedStream` is
//! `ringlink_host::FramedStream<ringlink_unix::Stream>`), so code moves between
//! platforms by changing one `use`.
//!
//! ```
//! use ringlink_host::{FrameOptions, Hello, Transports};
//!
//! let options = FrameOptions::new().max_frame(64 * 1024);
//! let wire = Hello::new(&options).encode();
//! let hello = Hello::decode(&wire)?;
//! assert_eq!(hello.max_frame, 64 * 1024);
//! assert!(hello.transports.contains(Transports::SOCKET));
//! # Ok::<(), ringlink_host::Error>(())
//! ```
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![forbid(unsafe_code)]

mod admission;
mod byte_stream;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod embedded;
mod error;
mod framed;
mod halves;
mod name;
mod options;
mod peer;
pub mod spin;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "tokio")]
pub mod tokio_halves;

pub use admission::{Admission, ConnectionSlot, Refusal};
pub use byte_stream::{ByteStream, Connect, NoSharedMemory, SharedMemoryTransport};
pub use error::{Error, ErrorKind};
pub use framed::{
    DEFAULT_MAX_FRAME, FrameOptions, FrameReceiver, FrameSender, FramedStream, HELLO_LEN, Hello,
    MAGIC, PROTOCOL_VERSION, Transports, read_handshake,
};
pub use halves::{
    OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, SplitStream, WriteHalf, into_split,
    split,
};
pub use name::NameState;
pub use options::{Access, ConnectOptions, DEFAULT_BACKLOG, DEFAULT_BUFFER_SIZE, ListenerOptions};
pub use peer::{PeerCredentials, PeerPolicy, UserId};

/// What [`impl_embedded_io!`] expands to refers to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use embedded_io;
    #[cfg(feature = "tokio")]
    pub use embedded_io_async;
}
