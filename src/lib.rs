//! ringlink: local inter-process communication from a microcontroller to a desktop.
//!
//! The items at the root are the portable API: the same names and signatures on Linux,
//! macOS, FreeBSD and Windows. They are the host adapter of the operating system the crate
//! is built for (Unix domain sockets on Unix, named pipes on Windows); what one OS alone
//! has is in its module, [`unix`] or [`windows`].
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
// Off its OS an adapter module is absent, so links to it have nothing to point at.
#![allow(rustdoc::broken_intra_doc_links)]

pub use ringlink_core as core;

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
    PeerCredentials, ReadHalf, ReuniteError, Stream, Transports, WriteHalf,
};

/// The async flavour of the portable API, on tokio (feature `tokio`).
#[cfg(feature = "tokio")]
pub mod tokio {
    pub use crate::os::tokio::{
        FramedStream, Listener, OwnedReadHalf, OwnedWriteHalf, ReadHalf, Stream, WriteHalf,
    };
}
