//! Framed mode over a named pipe: a hello, then length-prefixed frames and typed
//! (postcard) messages.
//!
//! The protocol is written once in `ringlink_host`, byte for byte the one `ringlink-unix`
//! speaks; [`FramedStream`] is its `FramedStream<Stream>`. Both sides send a 16-byte
//! [`Hello`] as soon as the connection is up, then read the peer's: magic `RLNK`, protocol
//! version, the largest frame each side accepts, and the transports each side offers (the
//! pipe only: Windows has no shared-memory transport, so
//! [`Transports::SHARED_MEMORY`] is never offered). A peer that sends anything else, or
//! nothing within the handshake timeout, is a [`ErrorKind::ProtocolMismatch`], never a
//! hang.
//!
//! After the hello every frame is the core's varint length header
//! ([`ringlink_core::frame`]) followed by the payload. A frame longer than the receiver's
//! limit is reported as [`ErrorKind::FrameTooLarge`] and skipped, so the connection stays
//! in sync and usable; the sender refuses to send a frame over the peer's limit.
//!
//! ```
//! use ringlink_windows::{FrameOptions, FramedStream, Stream};
//!
//! let (a, b) = Stream::pair()?;
//! let server = std::thread::spawn(move || -> Result<(), ringlink_windows::Error> {
//!     let mut b = FramedStream::new(b, FrameOptions::new())?;
//!     while let Some(frame) = b.recv_frame()? {
//!         let reply = frame.to_ascii_uppercase();
//!         b.send_frame(&reply)?;
//!     }
//!     Ok(())
//! });
//! let mut a = FramedStream::new(a, FrameOptions::new())?;
//! a.send_frame(b"hello")?;
//! assert_eq!(a.recv_frame()?, Some(&b"HELLO"[..]));
//! drop(a);
//! # server.join().unwrap()?;
//! # Ok::<(), ringlink_windows::Error>(())
//! ```
//!
//! Typed messages are postcard-encoded frames:
//!
//! ```
//! use ringlink_windows::{FrameOptions, FramedStream, Stream};
//!
//! let (a, b) = Stream::pair()?;
//! let peer = std::thread::spawn(move || FramedStream::new(b, FrameOptions::new()));
//! let mut a = FramedStream::new(a, FrameOptions::new())?;
//! let mut b = peer.join().unwrap()?;
//! a.send(&(42u32, "answer"))?;
//! let got: Option<(u32, String)> = b.recv()?;
//! assert_eq!(got, Some((42, "answer".to_string())));
//! # Ok::<(), ringlink_windows::Error>(())
//! ```

use ringlink_host::{Connect, NoSharedMemory};
pub use ringlink_host::{
    DEFAULT_MAX_FRAME, FrameOptions, HELLO_LEN, Hello, MAGIC, PROTOCOL_VERSION, Transports,
};

#[cfg(doc)]
use crate::ErrorKind;
use crate::name::IntoName;
use crate::{ConnectOptions, Error, Stream};

/// A [`Stream`] in framed mode: send and receive whole frames and typed messages.
pub type FramedStream = ringlink_host::FramedStream<Stream>;

ringlink_host::impl_byte_stream!(Stream {
    type SharedMemory = NoSharedMemory;

    /// Pipes have no gather write: one write per part (a small frame is one part
    /// already), each waiting for room whatever the mode, bounded by the write timeout.
    fn send_parts(&self, parts: &[&[u8]]) -> Result<(), Error> {
        parts.iter().try_for_each(|part| self.write_all_blocking(part))
    }
});

impl<N: IntoName> Connect<N> for Stream {
    type Options = ConnectOptions;

    fn connect(name: N, options: ConnectOptions) -> Result<Stream, Error> {
        Stream::connect(name, options)
    }
}

#[cfg(test)]
mod tests {
    ringlink_host::conformance_tests!(crate::Stream::pair, crate::Stream::into_split);
}
