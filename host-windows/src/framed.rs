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

use std::time::{Duration, Instant};

use ringlink_host::Connect;
pub use ringlink_host::{
    DEFAULT_MAX_FRAME, FrameOptions, HELLO_LEN, Hello, MAGIC, PROTOCOL_VERSION, Transports,
};

use crate::name::IntoName;
use crate::shm::{ShmOptions, ShmStream};
use crate::{ConnectOptions, Error, ErrorKind, Stream};

/// A [`Stream`] in framed mode: send and receive whole frames and typed messages; the
/// frames move through shared memory when both hellos offer it.
pub type FramedStream = ringlink_host::FramedStream<Stream>;

ringlink_host::impl_byte_stream!(Stream {
    type SharedMemory = ShmStream;

    /// Pipes have no gather write: one write per part (a small frame is one part
    /// already), each waiting for room whatever the mode, bounded by the write timeout.
    fn send_parts(&self, parts: &[&[u8]]) -> Result<(), Error> {
        parts.iter().try_for_each(|part| self.write_all_blocking(part))
    }

    fn negotiate_shared_memory(
        &self,
        _local: &Hello,
        _peer: &Hello,
        received: &[u8],
        options: &FrameOptions,
    ) -> Result<Option<ShmStream>, Error> {
        negotiate_shm(self, received, options.handshake_timeout_len())
    }
});

impl<N: IntoName> Connect<N> for Stream {
    type Options = ConnectOptions;

    fn connect(name: N, options: ConnectOptions) -> Result<Stream, Error> {
        Stream::connect(name, options)
    }
}

impl ringlink_host::SharedMemoryTransport for ShmStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        ShmStream::set_read_timeout(self, timeout);
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        ShmStream::set_write_timeout(self, timeout);
    }

    fn set_nonblocking(&mut self, nonblocking: bool) {
        ShmStream::set_nonblocking(self, nonblocking);
    }

    type ReadHalf = crate::shm::ShmReadHalf;
    type WriteHalf = crate::shm::ShmWriteHalf;

    fn into_split(self) -> (crate::shm::ShmReadHalf, crate::shm::ShmWriteHalf) {
        ShmStream::into_split(self)
    }
}

/// Sets up the shared-memory transport once both hellos offered it: the server end of
/// the pipe creates the section, the client end accepts it. Between the two ends of
/// [`Stream::pair`] the frames stay on the pipe.
///
/// Wire order after the hellos: the client sends one `READY` byte (so it has read all of
/// the server's hello before any byte of the offer can arrive), the server sends the
/// offer, the client validates it and acknowledges. `received` is what the server read
/// past the client's hello: nothing yet, or the `READY` byte.
fn negotiate_shm(
    stream: &Stream,
    received: &[u8],
    timeout: Duration,
) -> Result<Option<ShmStream>, Error> {
    use ringlink_host::ByteStream;
    const READY: u8 = b'R';
    if stream.is_paired() {
        return Ok(None);
    }
    let shm_options = ShmOptions::new().handshake_timeout(timeout);
    let (read_timeout, write_timeout) = (stream.read_timeout()?, stream.write_timeout()?);
    let mut shm = if stream.is_server() {
        // Wait for READY (it may already sit in what the hello reader received).
        match received {
            [] => {
                let mut byte = [0u8; 1];
                let deadline = Instant::now() + timeout;
                ringlink_host::read_handshake(stream, &mut byte, deadline, timeout)?;
                if byte[0] != READY {
                    return Err(Error::new(
                        ErrorKind::ProtocolMismatch,
                        "the peer offered shared memory but did not follow the protocol",
                    ));
                }
            }
            [READY] => {}
            _ => {
                return Err(Error::new(
                    ErrorKind::ProtocolMismatch,
                    "the peer sent data before the shared-memory handshake",
                ));
            }
        }
        ShmStream::offer(stream.try_clone()?, &shm_options)?
    } else {
        stream.send_parts(&[&[READY]])?;
        ShmStream::accept_offer(stream.try_clone()?, &shm_options)?
    };
    shm.set_read_timeout(read_timeout);
    shm.set_write_timeout(write_timeout);
    Ok(Some(shm))
}

#[cfg(test)]
mod tests {
    ringlink_host::conformance_tests!(crate::Stream::pair, crate::Stream::into_split);
}
