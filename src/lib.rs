//! ringlink: local inter-process communication from a microcontroller to a desktop.
//!
//! The items at the root are the portable API: the same names and signatures on Linux,
//! macOS, FreeBSD and Windows, as with Qt's `QLocalServer`/`QLocalSocket`. On Unix they
//! are Unix domain sockets, on Windows named pipes; either way a plain name such as
//! `"demo"` is private to the user who binds it, and a client refuses a server of another
//! user. What one OS alone has is in its module ([`unix`], [`windows`]), mostly as
//! extension traits (`ringlink::unix::ListenerOptionsExt::backlog`,
//! `ringlink::unix::PeerCredentialsExt::gid`,
//! `ringlink::windows::ListenerOptionsExt::buffer_size`).
//!
//! # Quick start
//!
//! The same server and client on every OS:
//!
//! ```
//! use std::io::{Read, Write};
//! use ringlink::{ConnectOptions, Listener, ListenerOptions, Stream};
//!
//! # let name = format!("ringlink-doc-{}", std::process::id());
//! let listener = Listener::bind(name.as_str(), ListenerOptions::new())?;
//! let server = std::thread::spawn(move || -> Result<(), ringlink::Error> {
//!     let stream = listener.accept()?;
//!     println!("connection from {}", stream.peer_credentials()?);
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
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Errors say what happened in terms of the name, and their [`ErrorKind`] follows Qt's
//! `LocalSocketError`:
//!
//! ```
//! use ringlink::{ConnectOptions, ErrorKind, Stream};
//!
//! let err = Stream::connect("ringlink-doc-nobody-listens", ConnectOptions::new()).unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::ServerNotFound);
//! eprintln!("{err}"); // names the socket or pipe and says how to start a server
//! ```
//!
//! # Typed messages
//!
//! [`FramedStream`] speaks ringlink's framed protocol: a short hello, then length-prefixed
//! frames, with [`postcard`] messages on top (`send`/`recv` of any serde type). Between two
//! ringlink peers on Linux it can move the frames to shared memory. The async flavour is
//! `ringlink::tokio::FramedStream` (feature `tokio`).
//!
//! # Who may connect
//!
//! [`ListenerOptions::peer_policy`] with [`PeerPolicy::same_user`] (the default with
//! [`Access::Owner`]) or [`PeerPolicy::users`]; [`Stream::peer_credentials`] gives the
//! peer's [`pid`](PeerCredentials::pid) and [`user`](PeerCredentials::user) (a uid on
//! Unix, a SID on Windows).
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
// Off its OS an adapter module is absent, so links to it have nothing to point at.
#![allow(rustdoc::broken_intra_doc_links)]

/// The `embedded-io` the streams implement, so its traits need no dependency of your own.
pub use embedded_io;
/// The `postcard` that encodes typed messages, so its version always matches ringlink's.
pub use postcard;
/// The `no_std` core (`ringlink-core`) with its `std` feature, which brings the host's
/// critical-section implementation: `static` rings and a [`SharedProducer`](core::SharedProducer)
/// work in a host program as on a microcontroller, with nothing else to link.
///
/// ```
/// use ringlink::core::SharedProducer;
///
/// static EVENTS: SharedProducer<256, 32> = SharedProducer::new();
/// let mut consumer = EVENTS.take_consumer().unwrap();
/// EVENTS.send(b"tick").unwrap();
/// assert!(consumer.read(&mut [0u8; 16]).unwrap() > 0);
/// ```
pub use ringlink_core as core;
/// The `serde` that typed messages derive, so its version always matches ringlink's.
pub use serde;

#[cfg(unix)]
pub use ringlink_unix as unix;

#[cfg(windows)]
pub use ringlink_windows as windows;

#[cfg(unix)]
use ringlink_unix as os;
#[cfg(windows)]
use ringlink_windows as os;

pub use os::{
    Access, ConnectOptions, DEFAULT_MAX_FRAME, Error, ErrorKind, FrameOptions, FramedStream, Hello,
    Incoming, IntoName, Listener, ListenerOptions, Name, NameState, OwnedReadHalf, OwnedWriteHalf,
    PeerCredentials, PeerPolicy, ReadHalf, ReuniteError, Stream, Transports, UserId, WriteHalf,
};

/// The async flavour of the portable API, on tokio (feature `tokio`).
#[cfg(feature = "tokio")]
pub mod tokio {
    pub use crate::os::tokio::{
        FramedStream, Listener, OwnedReadHalf, OwnedWriteHalf, ReadHalf, Stream, WriteHalf,
    };
}
