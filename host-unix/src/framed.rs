//! Framed mode over a Unix socket: a hello, then length-prefixed frames and typed
//! (postcard) messages, with the shared-memory upgrade on Linux.
//!
//! The protocol is written once in `ringlink_host` (the same bytes on every platform);
//! [`FramedStream`] is its `FramedStream<Stream>`. Both sides send a 16-byte [`Hello`] as
//! soon as the connection is up, then read the peer's: magic `RLNK`, protocol version, the
//! largest frame each side accepts, and the transports each side offers (the socket, and
//! [`Transports::SHARED_MEMORY`] on Linux). A peer that sends anything else, or nothing
//! within the handshake timeout, is a [`ErrorKind::ProtocolMismatch`], never a hang.
//! The hello and the shared-memory setup run in [`FramedStream::new`]: on a server, call
//! it on the connection's own thread or task, never in the accept loop, so a client
//! that says nothing holds up only itself.
//!
//! After the hello every frame is the core's varint length header
//! ([`ringlink_core::frame`]) followed by the payload. A frame longer than the receiver's
//! limit is reported as [`ErrorKind::FrameTooLarge`] and skipped, so the connection stays
//! in sync and usable; the sender refuses to send a frame over the peer's limit.
//!
//! ```
//! use ringlink_unix::{FrameOptions, FramedStream, Stream};
//!
//! let (a, b) = Stream::pair()?;
//! let server = std::thread::spawn(move || -> Result<(), ringlink_unix::Error> {
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
//! # Ok::<(), ringlink_unix::Error>(())
//! ```
//!
//! Typed messages are postcard-encoded frames:
//!
//! ```
//! use ringlink_unix::{FrameOptions, FramedStream, Stream};
//!
//! let (a, b) = Stream::pair()?;
//! let peer = std::thread::spawn(move || FramedStream::new(b, FrameOptions::new()));
//! let mut a = FramedStream::new(a, FrameOptions::new())?;
//! let mut b = peer.join().unwrap()?;
//! a.send(&(42u32, "answer"))?;
//! let got: Option<(u32, String)> = b.recv()?;
//! assert_eq!(got, Some((42, "answer".to_string())));
//! # Ok::<(), ringlink_unix::Error>(())
//! ```

#[cfg(all(target_os = "linux", not(loom)))]
use std::time::{Duration, Instant};

use ringlink_host::Connect;
pub use ringlink_host::{
    DEFAULT_MAX_FRAME, FrameOptions, HELLO_LEN, Hello, MAGIC, PROTOCOL_VERSION, Transports,
};

use crate::name::IntoName;
use crate::{ConnectOptions, Error, ErrorKind, Stream};

/// A [`Stream`] in framed mode: send and receive whole frames and typed messages; on
/// Linux the frames move through shared memory when both hellos offer it.
pub type FramedStream = ringlink_host::FramedStream<Stream>;

ringlink_host::impl_byte_stream!(Stream {
    #[cfg(all(target_os = "linux", not(loom)))]
    type SharedMemory = crate::shm::ShmStream;
    #[cfg(not(all(target_os = "linux", not(loom))))]
    type SharedMemory = ringlink_host::NoSharedMemory;

    /// One `send`/`sendmsg` per try (a small frame is one slice already); waits for
    /// room on `EAGAIN`, also in nonblocking mode.
    fn send_parts(&self, parts: &[&[u8]]) -> Result<(), Error> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut sent = 0usize;
        while sent < total {
            match self.send_vectored_from(parts, sent) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let timeout = self.write_timeout()?;
                    if !self.wait_writable(timeout)? {
                        // A peer that stopped reading: the write timeout bounds the send
                        // (the frame may be cut short, so the stream is of no further use).
                        return Err(Error::new(
                            ErrorKind::TimedOut,
                            format!(
                                "sending a frame timed out after {timeout:?} with {sent} of {total} bytes sent: the peer is not reading"
                            ),
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    #[cfg(all(target_os = "linux", not(loom)))]
    fn negotiate_shared_memory(
        &self,
        _local: &Hello,
        _peer: &Hello,
        received: &[u8],
        options: &FrameOptions,
    ) -> Result<Option<crate::shm::ShmStream>, Error> {
        negotiate_shm(self, received, options.handshake_timeout_len())
    }
});

impl<N: IntoName> Connect<N> for Stream {
    type Options = ConnectOptions;

    fn connect(name: N, options: ConnectOptions) -> Result<Stream, Error> {
        Stream::connect(name, options)
    }
}

#[cfg(all(target_os = "linux", not(loom)))]
impl ringlink_host::SharedMemoryTransport for crate::shm::ShmStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        crate::shm::ShmStream::set_read_timeout(self, timeout);
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        crate::shm::ShmStream::set_write_timeout(self, timeout);
    }

    fn set_nonblocking(&mut self, nonblocking: bool) {
        crate::shm::ShmStream::set_nonblocking(self, nonblocking);
    }

    type ReadHalf = crate::shm::ShmReadHalf;
    type WriteHalf = crate::shm::ShmWriteHalf;

    fn into_split(self) -> (crate::shm::ShmReadHalf, crate::shm::ShmWriteHalf) {
        crate::shm::ShmStream::into_split(self)
    }
}

/// The byte the accepting side (the client) sends after the hellos, so that the
/// server's hello reader cannot swallow the descriptors of the offer.
#[cfg(all(target_os = "linux", not(loom)))]
pub(crate) const READY: u8 = b'R';

/// Which part of the shared-memory setup a side plays.
#[cfg(all(target_os = "linux", not(loom)))]
pub(crate) enum ShmRole {
    /// Bound to the name (the server): creates the mapping and offers it.
    Offer,
    /// Connected from an unnamed socket (the client): validates and accepts.
    Accept,
}

/// The role the socket `fd` says this side plays; `None` between two unnamed
/// sockets (`Stream::pair`) or two named ones, where the frames stay on the socket.
#[cfg(all(target_os = "linux", not(loom)))]
pub(crate) fn shm_role(fd: std::os::fd::RawFd) -> Result<Option<ShmRole>, Error> {
    let (me, them) = (
        crate::sys::is_named(fd, false)?,
        crate::sys::is_named(fd, true)?,
    );
    Ok(match (me, them) {
        (true, false) => Some(ShmRole::Offer),
        (false, true) => Some(ShmRole::Accept),
        _ => None,
    })
}

/// Checks what the offering side read past the client's hello: exactly the `READY` byte.
#[cfg(all(target_os = "linux", not(loom)))]
pub(crate) fn check_ready(received: &[u8]) -> Result<(), Error> {
    match received {
        [READY] => Ok(()),
        [] | [_] => Err(Error::new(
            ErrorKind::ProtocolMismatch,
            "the peer offered shared memory but did not follow the protocol",
        )),
        _ => Err(Error::new(
            ErrorKind::ProtocolMismatch,
            "the peer sent data before the shared-memory handshake",
        )),
    }
}

/// Sets up the shared-memory transport once both hellos offered it, when the socket
/// says who offers: the side bound to the name (the server) creates the mapping, the
/// side with an unnamed socket (the client) accepts it. Between two unnamed sockets
/// (`Stream::pair`) the frames stay on the socket.
///
/// Wire order after the hellos: the client sends one `READY` byte (so the server's
/// hello reader cannot swallow the descriptors), the server sends the offer with the
/// descriptors, the client validates it and acknowledges. `received` is what the
/// server read past the client's hello: nothing yet, or the `READY` byte. The tokio
/// `FramedStream` runs the same steps in the reactor (`shm::tokio::negotiate`).
#[cfg(all(target_os = "linux", not(loom)))]
fn negotiate_shm(
    stream: &Stream,
    received: &[u8],
    timeout: Duration,
) -> Result<Option<crate::shm::ShmStream>, Error> {
    use crate::shm::{ShmOptions, ShmStream};
    use ringlink_host::ByteStream;
    let shm_options = ShmOptions::new().handshake_timeout(timeout);
    let (read_timeout, write_timeout) = (stream.read_timeout()?, stream.write_timeout()?);
    let fd = std::os::fd::AsRawFd::as_raw_fd(stream);
    let mut shm = match shm_role(fd)? {
        Some(ShmRole::Offer) => {
            // Wait for READY (it may already sit in what the hello reader received).
            if received.is_empty() {
                let mut byte = [0u8; 1];
                let deadline = Instant::now() + timeout;
                ringlink_host::read_handshake(stream, &mut byte, deadline, timeout)?;
                check_ready(&byte)?;
            } else {
                check_ready(received)?;
            }
            ShmStream::offer(stream.try_clone()?, &shm_options)?
        }
        Some(ShmRole::Accept) => {
            stream.send_parts(&[&[READY]])?;
            ShmStream::accept_offer(stream.try_clone()?, &shm_options)?
        }
        None => return Ok(None),
    };
    shm.set_read_timeout(read_timeout);
    shm.set_write_timeout(write_timeout);
    Ok(Some(shm))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    ringlink_host::conformance_tests!(crate::Stream::pair, crate::Stream::into_split);

    #[test]
    fn a_nonblocking_send_to_a_peer_that_stops_reading_times_out() {
        let (a, b) = Stream::pair().unwrap();
        let peer = std::thread::spawn(move || FramedStream::new(b, FrameOptions::new()).unwrap());
        let mut a = FramedStream::new(a, FrameOptions::new()).unwrap();
        let _silent = peer.join().unwrap(); // connected, never reads
        a.get_ref().set_nonblocking(true).unwrap();
        a.set_timeouts(None, Some(Duration::from_millis(100)))
            .unwrap();
        let frame = vec![7u8; 64 * 1024];
        let started = Instant::now();
        let err = loop {
            if let Err(e) = a.send_frame(&frame) {
                break e;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "send never gave up"
            );
        };
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
