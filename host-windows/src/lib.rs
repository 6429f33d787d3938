//! ringlink over Windows named pipes: the Rust counterpart of Qt's `QLocalServer` and
//! `QLocalSocket`, secure by default, with the same shapes as `ringlink-unix`.
//!
//! - [`Name`]: `"demo"` is the pipe `\\.\pipe\demo` (Qt uses the same name, so a Qt
//!   application and ringlink talk in raw byte mode).
//! - [`Listener`]: an owner-only access list on every pipe instance, remote clients
//!   rejected, a name that no second server can take while the first lives (the
//!   first-instance flag plus a kernel mutex), and the next instance created before a
//!   connected one is handed out.
//! - [`Stream`]: connect with a deadline (busy pipes retried until it), clients that
//!   allow the server only to identify them, read/write timeouts on overlapped I/O with
//!   cancellation, nonblocking `try_read`/`try_write`, split halves, `peer_process_id`,
//!   `std::io` and `embedded_io`.
//! - [`FramedStream`]: the framed protocol (hello, then length-prefixed frames and
//!   postcard messages), byte for byte the one `ringlink-unix` speaks; between a server and
//!   its client the frames move through shared memory by default.
//! - [`shm`]: the shared-memory transport (two core rings in an unnamed section, event
//!   wake-ups, a hostile peer's garbage an error for its connection only).
//! - One [`Error`] whose [`ErrorKind`] follows Qt's `LocalSocketError`; Win32 errors are
//!   mapped to kinds, not to "unknown" (the type is `ringlink_host`'s, shared with
//!   `ringlink-unix`).
//!
//! ```
//! # // The crate is empty off Windows; the example runs on Windows (and under Wine).
//! # #[cfg(windows)] fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::io::{Read, Write};
//! use ringlink_windows::{ConnectOptions, Listener, ListenerOptions, Stream};
//!
//! let name = format!("ringlink-doc-{}", std::process::id());
//! let listener = Listener::bind(name.as_str(), ListenerOptions::new())?;
//! let server = std::thread::spawn(move || -> Result<(), ringlink_windows::Error> {
//!     let stream = listener.accept()?;
//!     let mut buf = [0u8; 5];
//!     (&stream).read_exact(&mut buf)?;
//!     (&stream).write_all(&buf)?;
//!     Ok(())
//! });
//!
//! let mut client = Stream::connect(name.as_str(), ConnectOptions::new())?;
//! client.write_all(b"hello")?;
//! let mut reply = [0u8; 5];
//! client.read_exact(&mut reply)?;
//! assert_eq!(&reply, b"hello");
//! server.join().unwrap()?;
//! # Ok(())
//! # }
//! # #[cfg(not(windows))] fn main() {}
//! ```
//!
//! A name nobody serves is an error of its own kind, with a message naming it:
//!
//! ```
//! # #[cfg(windows)] {
//! use ringlink_windows::{ConnectOptions, ErrorKind, Stream};
//!
//! let err = Stream::connect("ringlink-doc-nobody-listens", ConnectOptions::new()).unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::ServerNotFound);
//! println!("{err}");
//! # }
//! ```
// Off Windows the crate is empty, so its links have nothing to point at.
#![cfg_attr(not(windows), allow(rustdoc::broken_intra_doc_links))]
#![cfg(windows)]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod sys;

mod embedded;
mod framed;
mod listener;
mod name;
pub mod shm;
mod stream;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use framed::{
    DEFAULT_MAX_FRAME, FrameOptions, FramedStream, HELLO_LEN, Hello, MAGIC, PROTOCOL_VERSION,
    Transports,
};
pub use listener::{Incoming, Listener, ListenerOptionsExt};
pub use name::{IntoName, MAX_NAME_LEN, Name, PIPE_PREFIX};
pub use ringlink_host::{
    Access, ConnectOptions, DEFAULT_BUFFER_SIZE, Error, ErrorKind, ListenerOptions, NameState,
    PeerCredentials, PeerPolicy, UserId,
};
pub use stream::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, Stream, WriteHalf};
