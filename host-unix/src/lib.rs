//! ringlink over Unix domain sockets: the Rust counterpart of Qt's `QLocalServer` and
//! `QLocalSocket`, secure by default.
//!
//! - [`Name`]: `"demo"` lives in a private per-user directory; paths, Qt-compatible names
//!   and Linux abstract names are explicit.
//! - [`Listener`]: owner-only sockets, a lock file so a live server is never evicted and a
//!   dead one's name is reclaimed, peer policy and connection limit at accept, an accept
//!   that survives `EMFILE`.
//! - [`Stream`]: connect with a deadline, timeouts, nonblocking `try_read`/`try_write`,
//!   split halves, `peer_credentials`, `std::io` and `embedded_io`; never `SIGPIPE`.
//! - One [`Error`] whose [`ErrorKind`] follows Qt's `LocalSocketError` (the type is
//!   `ringlink_host`'s, shared with `ringlink-windows`).
//!
//! ```
//! use std::io::{Read, Write};
//! use ringlink_unix::{ConnectOptions, Listener, ListenerOptions, Stream};
//!
//! # let dir = std::env::temp_dir().join(format!("ringlink-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let name = dir.join("echo");
//! // let name = "echo"; // a plain name: $XDG_RUNTIME_DIR/ringlink/echo
//! let listener = Listener::bind(&name, ListenerOptions::new())?;
//! let server = std::thread::spawn(move || -> Result<(), ringlink_unix::Error> {
//!     let stream = listener.accept()?;
//!     let mut buf = [0u8; 5];
//!     (&stream).read_exact(&mut buf)?;
//!     (&stream).write_all(&buf)?;
//!     Ok(())
//! });
//!
//! let mut client = Stream::connect(&name, ConnectOptions::new())?;
//! client.write_all(b"hello")?;
//! let mut reply = [0u8; 5];
//! client.read_exact(&mut reply)?;
//! assert_eq!(&reply, b"hello");
//! server.join().unwrap()?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A name nobody serves is an error of its own kind, with a message naming it:
//!
//! ```
//! use ringlink_unix::{ConnectOptions, ErrorKind, Stream};
//!
//! let err = Stream::connect("/nonexistent/ringlink-doc", ConnectOptions::new()).unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::ServerNotFound);
//! println!("{err}"); // names the path and says how to start a server
//! ```
#![cfg(unix)]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod sys;

mod connect;
mod embedded;
#[cfg(feature = "tokio")]
mod embedded_async;
mod framed;
mod listener;
mod lock;
mod name;
mod peer;
// Under loom the rings have no shared-memory form, so of the shared-memory
// transport only its parking protocol builds, for its models (`tests/loom_parking.rs`).
#[cfg(all(target_os = "linux", not(loom)))]
pub mod shm;
#[cfg(all(target_os = "linux", loom))]
#[doc(hidden)]
#[path = "shm/parking.rs"]
pub mod shm_parking;
mod stream;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use framed::{
    DEFAULT_MAX_FRAME, FrameOptions, FramedStream, HELLO_LEN, Hello, MAGIC, PROTOCOL_VERSION,
    Transports,
};
pub use listener::{Incoming, Listener, ListenerOptionsExt};
pub use name::{IntoName, Name};
pub use peer::PeerCredentialsExt;
pub use ringlink_host::{
    Access, ConnectOptions, Error, ErrorKind, ListenerOptions, NameState, PeerCredentials,
    PeerPolicy, UserId,
};
pub use stream::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, Stream, WriteHalf};
