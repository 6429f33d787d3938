//! Framed mode, written once for every host adapter: a hello, then length-prefixed frames
//! and typed (postcard) messages over any [`ByteStream`].
//!
//! Both sides send a 16-byte [`Hello`] as soon as the connection is up, then read the
//! peer's: magic `RLNK`, protocol version, the largest frame each side accepts, and the
//! transports each side offers (the connection itself, and shared memory where the
//! platform has it). A peer that sends anything else, or nothing within the handshake
//! timeout, is a [`ErrorKind::ProtocolMismatch`], never a hang.
//!
//! After the hello every frame is the core's varint length header
//! ([`ringlink_core::frame`]) followed by the payload. A frame longer than the receiver's
//! limit is reported as [`ErrorKind::FrameTooLarge`] and skipped, so the connection stays
//! in sync and usable; the sender refuses to send a frame over the peer's limit.
//!
//! The adapters name the concrete types: `ringlink_unix::FramedStream` is
//! `FramedStream<ringlink_unix::Stream>`, `ringlink_windows::FramedStream` is
//! `FramedStream<ringlink_windows::Stream>`; their docs carry the runnable examples.

use std::fmt;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use ringlink_core::frame::{MAX_HEADER_LEN, decode_len, encode_len};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ByteStream, Connect, Error, ErrorKind, SharedMemoryTransport};

/// The first four bytes of every ringlink hello.
pub const MAGIC: [u8; 4] = *b"RLNK";

/// The framed protocol version this crate speaks.
pub const PROTOCOL_VERSION: u8 = 1;

/// Size of a [`Hello`] on the wire.
pub const HELLO_LEN: usize = 16;

/// The default largest frame a side accepts: 1 MiB.
pub const DEFAULT_MAX_FRAME: u32 = 1 << 20;

/// A set of transports a side can use, exchanged in the hello.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Transports(u32);

impl Transports {
    /// No transport.
    pub const NONE: Transports = Transports(0);
    /// Bytes over the connection itself (the Unix socket, the named pipe).
    pub const SOCKET: Transports = Transports(1);
    /// Frames through two rings in memory shared with the peer (Linux: a memfd); never
    /// offered where the platform has no shared-memory transport.
    pub const SHARED_MEMORY: Transports = Transports(2);

    /// The raw bits, as on the wire.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// A set from raw bits (unknown bits are kept, so newer peers are understood).
    pub const fn from_bits(bits: u32) -> Transports {
        Transports(bits)
    }

    /// Whether every transport in `other` is in `self`.
    pub const fn contains(self, other: Transports) -> bool {
        self.0 & other.0 == other.0
    }

    /// The transports both sets have.
    pub const fn intersection(self, other: Transports) -> Transports {
        Transports(self.0 & other.0)
    }

    /// The transports either set has.
    pub const fn union(self, other: Transports) -> Transports {
        Transports(self.0 | other.0)
    }
}

impl fmt::Debug for Transports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_set();
        if self.contains(Transports::SOCKET) {
            list.entry(&format_args!("SOCKET"));
        }
        if self.contains(Transports::SHARED_MEMORY) {
            list.entry(&format_args!("SHARED_MEMORY"));
        }
        let rest = self.0 & !(Transports::SOCKET.0 | Transports::SHARED_MEMORY.0);
        if rest != 0 {
            list.entry(&format_args!("{rest:#x}"));
        }
        list.finish()
    }
}

/// What one side announces when a framed connection starts.
///
/// Wire layout (16 bytes): `RLNK`, version (`u8`), flags (`u8`, zero), reserved
/// (`u16`, zero), max frame (`u32` little-endian), transports (`u32` little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Hello {
    /// Protocol version of the sender.
    pub version: u8,
    /// The largest frame payload the sender accepts.
    pub max_frame: u32,
    /// The transports the sender offers.
    pub transports: Transports,
}

impl Hello {
    /// This side's hello for the given options.
    pub fn new(options: &FrameOptions) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            max_frame: options.max_frame,
            transports: options.transports,
        }
    }

    /// The hello as its 16 wire bytes.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut out = [0u8; HELLO_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = self.version;
        out[8..12].copy_from_slice(&self.max_frame.to_le_bytes());
        out[12..16].copy_from_slice(&self.transports.bits().to_le_bytes());
        out
    }

    /// Parses a peer's hello; anything that is not one is [`ErrorKind::ProtocolMismatch`].
    pub fn decode(bytes: &[u8; HELLO_LEN]) -> Result<Hello, Error> {
        if bytes[..4] != MAGIC {
            return Err(Error::new(
                ErrorKind::ProtocolMismatch,
                format!(
                    "the peer does not speak ringlink's framed protocol: it sent {} instead of a hello \
                     (a raw-mode peer, or another program?)",
                    show_bytes(bytes)
                ),
            ));
        }
        let version = bytes[4];
        if version == 0 {
            return Err(Error::new(
                ErrorKind::ProtocolMismatch,
                "the peer's hello has protocol version 0",
            ));
        }
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        Ok(Hello {
            version,
            max_frame: word(8),
            transports: Transports::from_bits(word(12)),
        })
    }
}

/// Shows up to 16 bytes as (escaped) text when ASCII, else as hex.
fn show_bytes(bytes: &[u8]) -> String {
    if bytes.is_ascii() {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Options of a framed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameOptions {
    max_frame: u32,
    handshake_timeout: Duration,
    transports: Transports,
}

impl FrameOptions {
    /// The defaults: frames up to [`DEFAULT_MAX_FRAME`], a 5 s handshake timeout, and both
    /// transports offered: the socket, and shared memory where the platform has it, so
    /// two ringlink peers on one machine move their frames through shared memory unless
    /// either side opts out with [`transports`](Self::transports)`(Transports::SOCKET)`.
    pub const fn new() -> FrameOptions {
        FrameOptions {
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: Duration::from_secs(5),
            transports: Transports::SOCKET.union(Transports::SHARED_MEMORY),
        }
    }

    /// The largest frame payload this side accepts; the receive buffer never grows past it.
    pub const fn max_frame(mut self, max: u32) -> FrameOptions {
        self.max_frame = max;
        self
    }

    /// How long to wait for the peer's hello before declaring a protocol mismatch.
    pub const fn handshake_timeout(mut self, timeout: Duration) -> FrameOptions {
        self.handshake_timeout = timeout;
        self
    }

    /// The transports this side offers (by default both). With
    /// [`Transports::SHARED_MEMORY`] frames move through memory shared with the peer when
    /// it offers it too and the platform can set it up (Linux, between a named server and
    /// its client; the server side creates the mapping; see `ringlink_unix::shm`), else
    /// they stay on the socket. `Transports::SOCKET` alone opts out.
    pub const fn transports(mut self, transports: Transports) -> FrameOptions {
        self.transports = transports;
        self
    }

    /// The largest frame payload this side accepts.
    pub const fn max_frame_len(&self) -> u32 {
        self.max_frame
    }

    /// The handshake timeout.
    pub const fn handshake_timeout_len(&self) -> Duration {
        self.handshake_timeout
    }
}

impl Default for FrameOptions {
    fn default() -> FrameOptions {
        FrameOptions::new()
    }
}

/// Checks a received hello against ours, returning the peer's.
fn check_peer_hello(bytes: &[u8; HELLO_LEN]) -> Result<Hello, Error> {
    let peer = Hello::decode(bytes)?;
    // Version 1 is the only one so far; a newer peer must be able to speak it too.
    if peer.version < PROTOCOL_VERSION {
        return Err(Error::new(
            ErrorKind::ProtocolMismatch,
            format!(
                "the peer speaks ringlink framed protocol version {}, this side needs {PROTOCOL_VERSION}",
                peer.version
            ),
        ));
    }
    Ok(peer)
}

/// Error for a peer that closed the connection before sending its hello.
pub(crate) fn closed_before_hello() -> Error {
    Error::new(
        ErrorKind::PeerClosed,
        "the peer closed the connection before its hello (refused by the server's peer policy or \
         connection limit, or not a framed peer)",
    )
}

/// Error for a peer that sent no hello in time.
pub(crate) fn no_hello(timeout: Duration) -> Error {
    Error::new(
        ErrorKind::ProtocolMismatch,
        format!(
            "no hello from the peer within {timeout:?}: it does not speak ringlink's framed protocol (a raw-mode peer?)"
        ),
    )
}

/// Sans-IO receive side of a framed connection: bytes in, frames out.
///
/// Holds at most one frame plus its header (the buffer never grows past
/// `max_frame + MAX_HEADER_LEN`); oversized frames are skipped as they stream by.
/// The buffer grows only when it is full of received bytes, and at most doubles, so its
/// size follows what the peer actually sent (at most twice that, plus
/// [`INITIAL_BUFFER`]), never the length a header claims.
#[derive(Debug)]
pub(crate) struct Decoder {
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes of an oversized frame still to discard.
    skip: u64,
    max: u32,
    /// Set after a malformed header: the stream is out of sync for good.
    broken: bool,
}

/// What a receive buffer starts with, before any byte arrived.
const INITIAL_BUFFER: usize = 8 * 1024;

impl Decoder {
    pub(crate) fn new(max: u32) -> Decoder {
        // Room for a hello whatever the frame limit.
        let cap = INITIAL_BUFFER
            .min(max as usize + MAX_HEADER_LEN)
            .max(HELLO_LEN);
        Decoder {
            buf: vec![0; cap],
            start: 0,
            end: 0,
            skip: 0,
            max,
            broken: false,
        }
    }

    /// Bytes received but not yet consumed.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Takes `n` bytes from the front of the buffer (used for the hello).
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
    }

    /// The next complete frame as a range of the buffer, `Ok(None)` when more bytes are
    /// needed. The range stays valid until the next call to [`spare`](Self::spare).
    pub(crate) fn next_frame(&mut self) -> Result<Option<std::ops::Range<usize>>, Error> {
        if self.broken {
            return Err(Error::new(
                ErrorKind::ProtocolMismatch,
                "the frame stream is out of sync after a malformed header",
            ));
        }
        if self.skip > 0 {
            let n = (self.end - self.start).min(usize::try_from(self.skip).unwrap_or(usize::MAX));
            self.start += n;
            self.skip -= n as u64;
            if self.skip > 0 {
                return Ok(None);
            }
        }
        let (len, header) = match decode_len(self.buffered()) {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.broken = true;
                return Err(Error::new(
                    ErrorKind::ProtocolMismatch,
                    format!(
                        "malformed frame header from the peer ({e}); the connection cannot continue"
                    ),
                ));
            }
        };
        if len > self.max {
            self.start += header;
            self.skip = u64::from(len);
            return Err(Error::new(
                ErrorKind::FrameTooLarge,
                format!(
                    "the peer sent a frame of {len} bytes, over this side's limit of {} bytes; it is skipped and the connection stays usable",
                    self.max
                ),
            ));
        }
        let total = header + len as usize;
        if self.end - self.start < total {
            return Ok(None);
        }
        let range = self.start + header..self.start + total;
        self.start += total;
        Ok(Some(range))
    }

    /// How many bytes the buffer holds at most now.
    #[cfg(any(test, feature = "conformance"))]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn frame(&self, range: std::ops::Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Room to read into, made by compacting and (up to the frame limit) growing.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let need = match decode_len(self.buffered()) {
            Ok(Some((len, header))) if self.skip == 0 && len <= self.max => header + len as usize,
            _ => MAX_HEADER_LEN,
        };
        if self.start > 0 && (self.buf.len() - self.start < need || self.end == self.buf.len()) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // Grow only once the buffer is full of bytes that arrived, and at most double: a
        // header claiming a large frame costs nothing until its payload is really sent.
        // (`need` is bounded by the frame limit.)
        if self.end == self.buf.len() && self.buf.len() < need {
            let new_len = need.min(self.buf.len().saturating_mul(2));
            self.buf.resize(new_len, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Records `n` bytes read into [`spare`](Self::spare).
    pub(crate) fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// The error for end of stream now: `None` when it falls between frames.
    pub(crate) fn eof(&self) -> Option<Error> {
        let partial = self.end - self.start;
        if partial == 0 && self.skip == 0 {
            return None;
        }
        Some(Error::new(
            ErrorKind::PeerClosed,
            format!(
                "the peer closed the connection in the middle of a frame ({partial} bytes of it received)"
            ),
        ))
    }
}

/// Encodes `len` and checks it against the peer's limit.
pub(crate) fn frame_header(
    len: usize,
    peer_max: u32,
) -> Result<([u8; MAX_HEADER_LEN], usize), Error> {
    let len32 = u32::try_from(len).ok().filter(|l| *l <= peer_max).ok_or_else(|| {
        Error::new(
            ErrorKind::FrameTooLarge,
            format!("a frame of {len} bytes is over the peer's limit of {peer_max} bytes; nothing was sent"),
        )
    })?;
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = encode_len(len32, &mut header);
    Ok((header, n))
}

/// Serializes `msg` with postcard into `scratch` (cleared first).
pub(crate) fn encode_message<T: Serialize + ?Sized>(
    msg: &T,
    scratch: Vec<u8>,
) -> Result<Vec<u8>, Error> {
    let mut scratch = scratch;
    scratch.clear();
    postcard::to_extend(msg, scratch).map_err(|e| {
        Error::new(
            ErrorKind::InvalidData,
            format!(
                "cannot encode a {} as a message: {e}",
                std::any::type_name::<T>()
            ),
        )
    })
}

/// Deserializes one whole frame as a `T`.
pub(crate) fn decode_message<T: DeserializeOwned>(frame: &[u8]) -> Result<T, Error> {
    let invalid = |why: String| {
        Error::new(
            ErrorKind::InvalidData,
            format!(
                "a frame of {} bytes is not a valid {}: {why}",
                frame.len(),
                std::any::type_name::<T>()
            ),
        )
    };
    match postcard::take_from_bytes::<T>(frame) {
        Ok((msg, [])) => Ok(msg),
        Ok((_, rest)) => Err(invalid(format!("{} bytes left over", rest.len()))),
        Err(e) => Err(invalid(e.to_string())),
    }
}

/// A stream in framed mode: send and receive whole frames and typed messages.
///
/// Generic over the adapter's [`ByteStream`]; use it as `ringlink_unix::FramedStream` or
/// `ringlink_windows::FramedStream`.
#[derive(Debug)]
pub struct FramedStream<S: ByteStream> {
    stream: S,
    /// Set when both hellos offered shared memory and the platform set it up: frames then
    /// move through it, and `stream` only tells whether the peer is alive.
    shared_memory: Option<S::SharedMemory>,
    pub(crate) decoder: Decoder,
    local: Hello,
    peer: Hello,
    scratch: Vec<u8>,
    /// The read timeout set with [`set_timeouts`](FramedStream::set_timeouts): a bound on
    /// each whole `recv_frame`, not only on each read, so a peer that trickles a frame
    /// byte by byte cannot hold the receiver past it.
    read_timeout: Option<Duration>,
}

impl<S: ByteStream> FramedStream<S> {
    /// Connects to `name` and performs the handshake.
    pub fn connect<N>(
        name: N,
        connect: <S as Connect<N>>::Options,
        options: FrameOptions,
    ) -> Result<FramedStream<S>, Error>
    where
        S: Connect<N>,
    {
        FramedStream::new(S::connect(name, connect)?, options)
    }

    /// Performs the handshake on a connected stream (either side; both call this).
    ///
    /// Waits at most the options' handshake timeout for the peer's hello, whatever the
    /// stream's own timeouts and mode.
    pub fn new(stream: S, options: FrameOptions) -> Result<FramedStream<S>, Error> {
        let mut local = Hello::new(&options);
        if !<S::SharedMemory as SharedMemoryTransport>::AVAILABLE {
            local.transports = without_shared_memory(local.transports);
        }
        let mut decoder = Decoder::new(options.max_frame);
        let peer = handshake(&stream, &local, &mut decoder, options.handshake_timeout)?;
        let both = local.transports.intersection(peer.transports);
        let shared_memory = if both.contains(Transports::SHARED_MEMORY) {
            let received = decoder.buffered();
            let shm = stream.negotiate_shared_memory(&local, &peer, received, &options)?;
            if shm.is_some() {
                decoder.consume(received.len());
            }
            shm
        } else {
            None
        };
        Ok(FramedStream {
            stream,
            shared_memory,
            decoder,
            local,
            peer,
            scratch: Vec::new(),
            read_timeout: None,
        })
    }

    /// Sends one frame. Blocks until the whole frame is written, also on a nonblocking
    /// stream (a frame is never torn). Fails with [`ErrorKind::FrameTooLarge`], sending
    /// nothing, when `payload` is over the peer's limit.
    pub fn send_frame(&mut self, payload: &[u8]) -> Result<(), Error> {
        send_frame_on(
            &self.stream,
            self.shared_memory.as_mut(),
            self.peer.max_frame,
            payload,
        )
    }

    /// Receives the next frame; `Ok(None)` when the peer closed the connection between
    /// frames. A peer that disappears in the middle of a frame is
    /// [`ErrorKind::PeerClosed`].
    ///
    /// On a nonblocking stream this returns [`ErrorKind::WouldBlock`] until a whole frame
    /// is there; the bytes received so far are kept.
    ///
    /// With a read timeout ([`set_timeouts`](Self::set_timeouts)) the whole call gives up
    /// with [`ErrorKind::TimedOut`] once the timeout has passed without a complete frame,
    /// however the bytes trickle in (a hostile peer sending one byte a second holds it
    /// for at most about twice the timeout); the bytes received so far are kept, so the
    /// next call goes on with the same frame.
    pub fn recv_frame(&mut self) -> Result<Option<&[u8]>, Error> {
        let (stream, shm) = (&self.stream, &mut self.shared_memory);
        recv_frame_from(&mut self.decoder, self.read_timeout, |buf| match shm {
            Some(shm) => read_shared(shm, buf),
            None => stream.recv(buf),
        })
    }

    /// Sends `msg` encoded with postcard as one frame.
    pub fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<(), Error> {
        let scratch = encode_message(msg, std::mem::take(&mut self.scratch))?;
        let result = self.send_frame(&scratch);
        self.scratch = scratch;
        result
    }

    /// Receives one frame and decodes it as a `T`; `Ok(None)` at a clean end of stream.
    /// A frame that is not a valid `T` is [`ErrorKind::InvalidData`] (the connection
    /// stays in sync).
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, Error> {
        self.recv_frame()?.map(decode_message).transpose()
    }

    /// The hello this side sent.
    pub fn local_hello(&self) -> &Hello {
        &self.local
    }

    /// The hello the peer sent.
    pub fn peer_hello(&self) -> &Hello {
        &self.peer
    }

    /// Whether frames move through shared memory (negotiated in the hello, Linux).
    pub fn is_shared_memory(&self) -> bool {
        self.shared_memory.is_some()
    }

    /// Sets how long `recv_frame`/`recv` and `send_frame`/`send` may block, on
    /// whichever transport carries the frames (`None`: no limit). The read timeout bounds
    /// a whole `recv_frame`, not only each read (see [`recv_frame`](Self::recv_frame)).
    pub fn set_timeouts(
        &mut self,
        read: Option<Duration>,
        write: Option<Duration>,
    ) -> Result<(), Error> {
        self.read_timeout = read;
        if let Some(shm) = &mut self.shared_memory {
            shm.set_read_timeout(read);
            shm.set_write_timeout(write);
            return Ok(());
        }
        self.stream.set_read_timeout(read)?;
        self.stream.set_write_timeout(write)
    }

    /// Nonblocking mode for whichever transport carries the frames: `recv_frame` then
    /// returns [`ErrorKind::WouldBlock`] until a whole frame is there. (Setting it on
    /// [`get_ref`](Self::get_ref) covers the socket only, not shared memory.)
    pub fn set_nonblocking(&mut self, nonblocking: bool) -> Result<(), Error> {
        if let Some(shm) = &mut self.shared_memory {
            shm.set_nonblocking(nonblocking);
        }
        self.stream.set_nonblocking(nonblocking)
    }

    /// The stream underneath (for credentials, polling). With shared memory it carries
    /// no frames, and its timeouts and nonblocking mode do not apply to them: use
    /// [`set_timeouts`](Self::set_timeouts) and [`set_nonblocking`](Self::set_nonblocking).
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream and whatever bytes were received but not yet returned as frames.
    /// With shared memory the mapping is closed (the peer sees the end of the
    /// stream) and bytes still in the ring are dropped.
    pub fn into_parts(self) -> (S, Vec<u8>) {
        let rest = self.decoder.buffered().to_vec();
        (self.stream, rest)
    }

    /// Splits into a receiving and a sending half that can move to different threads
    /// (a reader of frames beside a writer of frames), over whichever transport carries
    /// them. Frames already received stay with the receiver; timeouts set with
    /// [`set_timeouts`](Self::set_timeouts) before the split stay with both. Dropping the sender ends
    /// the stream for the peer over shared memory; over the socket, the stream ends
    /// when both halves are dropped.
    ///
    /// With an adapter's stream (`ringlink_unix`'s here):
    ///
    /// ```ignore
    /// # #[cfg(unix)] {
    /// use ringlink_unix::{FrameOptions, FramedStream, Stream};
    ///
    /// let (a, b) = Stream::pair()?;
    /// let peer = std::thread::spawn(move || FramedStream::new(b, FrameOptions::new()));
    /// let a = FramedStream::new(a, FrameOptions::new())?;
    /// let mut b = peer.join().unwrap()?;
    /// let (mut rx, mut tx) = a.into_split();
    /// let sender = std::thread::spawn(move || tx.send_frame(b"from a thread"));
    /// let echoed = b.recv_frame()?.unwrap().to_vec();
    /// b.send_frame(&echoed)?;
    /// assert_eq!(rx.recv_frame()?, Some(&b"from a thread"[..]));
    /// sender.join().unwrap()?;
    /// # }
    /// # Ok::<(), ringlink_host::Error>(())
    /// ```
    pub fn into_split(self) -> (FrameReceiver<S>, FrameSender<S>) {
        let stream = std::sync::Arc::new(self.stream);
        let (read, write) = match self.shared_memory.map(SharedMemoryTransport::into_split) {
            Some((r, w)) => (Some(r), Some(w)),
            None => (None, None),
        };
        (
            FrameReceiver {
                stream: stream.clone(),
                shared_memory: read,
                decoder: self.decoder,
                read_timeout: self.read_timeout,
            },
            FrameSender {
                stream,
                shared_memory: write,
                peer_max: self.peer.max_frame,
                scratch: self.scratch,
            },
        )
    }
}

/// The receiving half of a [`FramedStream`], from [`FramedStream::into_split`].
pub struct FrameReceiver<S: ByteStream> {
    stream: std::sync::Arc<S>,
    shared_memory: Option<<S::SharedMemory as SharedMemoryTransport>::ReadHalf>,
    decoder: Decoder,
    read_timeout: Option<Duration>,
}

impl<S: ByteStream> FrameReceiver<S> {
    /// Receives the next frame; see [`FramedStream::recv_frame`].
    pub fn recv_frame(&mut self) -> Result<Option<&[u8]>, Error> {
        let (stream, shm) = (&self.stream, &mut self.shared_memory);
        recv_frame_from(&mut self.decoder, self.read_timeout, |buf| match shm {
            Some(shm) => read_shared(shm, buf),
            None => stream.recv(buf),
        })
    }

    /// Receives one frame and decodes it as a `T`; see [`FramedStream::recv`].
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, Error> {
        self.recv_frame()?.map(decode_message).transpose()
    }
}

impl<S: ByteStream> fmt::Debug for FrameReceiver<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameReceiver")
            .field("shared_memory", &self.shared_memory.is_some())
            .finish_non_exhaustive()
    }
}

/// The sending half of a [`FramedStream`], from [`FramedStream::into_split`].
pub struct FrameSender<S: ByteStream> {
    stream: std::sync::Arc<S>,
    shared_memory: Option<<S::SharedMemory as SharedMemoryTransport>::WriteHalf>,
    peer_max: u32,
    scratch: Vec<u8>,
}

impl<S: ByteStream> FrameSender<S> {
    /// Sends one frame; see [`FramedStream::send_frame`].
    pub fn send_frame(&mut self, payload: &[u8]) -> Result<(), Error> {
        send_frame_on(
            &*self.stream,
            self.shared_memory.as_mut(),
            self.peer_max,
            payload,
        )
    }

    /// Sends `msg` encoded with postcard as one frame; see [`FramedStream::send`].
    pub fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<(), Error> {
        let scratch = encode_message(msg, std::mem::take(&mut self.scratch))?;
        let result = self.send_frame(&scratch);
        self.scratch = scratch;
        result
    }

    /// The stream underneath, shared with the receiver (for a socket's shutdown).
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Whether frames move through shared memory (then dropping this half is what
    /// ends the stream for the peer; shutting the socket down would read as its death).
    pub fn is_shared_memory(&self) -> bool {
        self.shared_memory.is_some()
    }
}

impl<S: ByteStream> fmt::Debug for FrameSender<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameSender")
            .field("shared_memory", &self.shared_memory.is_some())
            .finish_non_exhaustive()
    }
}

/// Sends one frame over shared memory when it carries the frames, else the socket.
fn send_frame_on<S: ByteStream, W: Write>(
    stream: &S,
    shared_memory: Option<&mut W>,
    peer_max: u32,
    payload: &[u8],
) -> Result<(), Error> {
    let (header, n) = frame_header(payload.len(), peer_max)?;
    if let Some(shm) = shared_memory {
        shm.write_all(&header[..n])?;
        shm.write_all(payload)?;
        return Ok(());
    }
    let mut small = [0u8; SMALL_FRAME];
    stream.send_parts(frame_parts(&header[..n], payload, &mut small).as_slice())
}

/// Reads from shared memory; a peer that died without closing (its socket hung up)
/// ends the stream as a dead socket peer does: cleanly between frames, else mid-frame.
fn read_shared(shm: &mut impl Read, buf: &mut [u8]) -> Result<usize, Error> {
    match shm.read(buf) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(0),
        other => Ok(other?),
    }
}

/// Receives the next frame into `decoder`, reading with `read`; see
/// [`FramedStream::recv_frame`] for the timeout and end-of-stream rules.
fn recv_frame_from(
    decoder: &mut Decoder,
    read_timeout: Option<Duration>,
    mut read: impl FnMut(&mut [u8]) -> Result<usize, Error>,
) -> Result<Option<&[u8]>, Error> {
    let deadline = read_timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        if let Some(range) = decoder.next_frame()? {
            return Ok(Some(decoder.frame(range)));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::new(
                ErrorKind::TimedOut,
                format!(
                    "no whole frame arrived within the read timeout of {:?} ({} bytes of the next one received)",
                    read_timeout.unwrap_or_default(),
                    decoder.buffered().len()
                ),
            ));
        }
        let n = read(decoder.spare())?;
        if n == 0 {
            return match decoder.eof() {
                None => Ok(None),
                Some(e) => Err(e),
            };
        }
        decoder.filled(n);
    }
}

/// Frames up to this size (header included) go out with one write.
pub(crate) const SMALL_FRAME: usize = 512;

/// A frame as the parts to write: a small one copied into `small` so it goes out with
/// one write, a larger one as header and payload (no copy).
pub(crate) fn frame_parts<'a>(
    header: &'a [u8],
    payload: &'a [u8],
    small: &'a mut [u8; SMALL_FRAME],
) -> FrameParts<'a> {
    let total = header.len() + payload.len();
    if total <= SMALL_FRAME {
        small[..header.len()].copy_from_slice(header);
        small[header.len()..total].copy_from_slice(payload);
        FrameParts {
            parts: [&small[..total], &[]],
            count: 1,
        }
    } else {
        FrameParts {
            parts: [header, payload],
            count: 2,
        }
    }
}

/// One or two slices that together are one frame on the wire.
pub(crate) struct FrameParts<'a> {
    parts: [&'a [u8]; 2],
    count: usize,
}

impl<'a> FrameParts<'a> {
    pub(crate) fn as_slice(&self) -> &[&'a [u8]] {
        &self.parts[..self.count]
    }
}

/// `transports` without shared memory (unknown bits are kept).
pub(crate) const fn without_shared_memory(transports: Transports) -> Transports {
    Transports::from_bits(transports.bits() & !Transports::SHARED_MEMORY.bits())
}

/// Sends our hello and reads the peer's, within `timeout`.
fn handshake<S: ByteStream>(
    stream: &S,
    local: &Hello,
    decoder: &mut Decoder,
    timeout: Duration,
) -> Result<Hello, Error> {
    stream.send_parts(&[&local.encode()])?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(peer) = hello_progress(decoder)? {
            return Ok(peer);
        }
        let n = read_handshake(stream, decoder.spare(), deadline, timeout)?;
        decoder.filled(n);
    }
}

/// Reads some bytes of a handshake (the hello, or what a transport's setup sends after
/// it) before `deadline`, whatever the stream's mode, and returns how many (`> 0`).
/// A peer that closes first is [`ErrorKind::PeerClosed`]; one that stays silent is
/// [`ErrorKind::ProtocolMismatch`] naming `timeout`: never a hang.
pub fn read_handshake<S: ByteStream + ?Sized>(
    stream: &S,
    buf: &mut [u8],
    deadline: Instant,
    timeout: Duration,
) -> Result<usize, Error> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !stream.wait_readable(Some(left))? {
            return Err(no_hello(timeout));
        }
        match stream.try_read(buf) {
            Ok(0) => return Err(closed_before_hello()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Looks at the bytes received so far: the peer's hello once all 16 bytes are there,
/// `Ok(None)` while they are a prefix of one, an error as soon as the magic is wrong.
pub(crate) fn hello_progress(decoder: &mut Decoder) -> Result<Option<Hello>, Error> {
    let got = decoder.buffered();
    let n = got.len().min(MAGIC.len());
    if got[..n] != MAGIC[..n] {
        let mut bytes = [0u8; HELLO_LEN];
        let m = got.len().min(HELLO_LEN);
        bytes[..m].copy_from_slice(&got[..m]);
        return Err(Hello::decode(&bytes).err().unwrap_or_else(|| {
            Error::new(ErrorKind::ProtocolMismatch, "the peer's hello is malformed")
        }));
    }
    if got.len() < HELLO_LEN {
        return Ok(None);
    }
    let mut bytes = [0u8; HELLO_LEN];
    bytes.copy_from_slice(&got[..HELLO_LEN]);
    decoder.consume(HELLO_LEN);
    check_peer_hello(&bytes).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips() {
        let hello = Hello::new(&FrameOptions::new().max_frame(1234));
        assert_eq!(Hello::decode(&hello.encode()).unwrap(), hello);
        assert_eq!(&hello.encode()[..4], b"RLNK");
    }

    #[test]
    fn hellos_of_other_programs_and_versions_are_mismatches() {
        let mut bytes = Hello::new(&FrameOptions::new()).encode();
        bytes[4] = 0;
        let err = Hello::decode(&bytes).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProtocolMismatch);
        let err = Hello::decode(b"GET / HTTP/1.1\r\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProtocolMismatch);
        assert!(err.to_string().contains("GET / HTTP"), "{err}");
        let err = Hello::decode(&[0xFF; HELLO_LEN]).unwrap_err();
        assert!(err.to_string().contains("ff ff"), "{err}");
    }

    #[test]
    fn a_hello_arrives_in_pieces_and_a_wrong_magic_fails_at_once() {
        let hello = Hello::new(&FrameOptions::new().max_frame(99)).encode();
        let mut decoder = Decoder::new(DEFAULT_MAX_FRAME);
        for chunk in hello.chunks(5) {
            assert!(hello_progress(&mut decoder).unwrap().is_none());
            decoder.spare()[..chunk.len()].copy_from_slice(chunk);
            decoder.filled(chunk.len());
        }
        assert_eq!(hello_progress(&mut decoder).unwrap().unwrap().max_frame, 99);
        assert!(decoder.buffered().is_empty());

        let mut decoder = Decoder::new(DEFAULT_MAX_FRAME);
        decoder.spare()[..2].copy_from_slice(b"RX");
        decoder.filled(2);
        let err = hello_progress(&mut decoder).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProtocolMismatch);
    }

    /// Feeds `bytes` through `spare`/`filled` as a socket would, in reads of at most 4 KiB.
    fn feed(decoder: &mut Decoder, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let spare = decoder.spare();
            let n = spare.len().min(bytes.len()).min(4096);
            assert!(n > 0, "the decoder always has room for more of a frame");
            spare[..n].copy_from_slice(&bytes[..n]);
            decoder.filled(n);
            bytes = &bytes[n..];
        }
    }

    #[test]
    fn the_buffer_follows_the_bytes_received_not_the_claimed_length() {
        let mut decoder = Decoder::new(DEFAULT_MAX_FRAME);
        let mut header = [0u8; MAX_HEADER_LEN];
        let n = encode_len(DEFAULT_MAX_FRAME, &mut header);
        feed(&mut decoder, &header[..n]);
        assert!(decoder.next_frame().unwrap().is_none());
        let _ = decoder.spare();
        assert_eq!(
            decoder.capacity(),
            INITIAL_BUFFER,
            "a bare header grows nothing"
        );

        let payload: Vec<u8> = (0..DEFAULT_MAX_FRAME).map(|i| i as u8).collect();
        let mut received = n;
        for chunk in payload.chunks(100_000) {
            feed(&mut decoder, chunk);
            received += chunk.len();
            assert!(
                decoder.capacity() <= 2 * received + INITIAL_BUFFER,
                "{} bytes of buffer for {received} bytes received",
                decoder.capacity()
            );
        }
        let range = decoder
            .next_frame()
            .unwrap()
            .expect("the whole frame arrived");
        assert_eq!(decoder.frame(range), &payload[..]);
        assert!(decoder.capacity() <= DEFAULT_MAX_FRAME as usize + MAX_HEADER_LEN);
    }

    #[test]
    fn transports_show_their_names() {
        let all = Transports::SOCKET.union(Transports::SHARED_MEMORY);
        assert_eq!(format!("{all:?}"), "{SOCKET, SHARED_MEMORY}");
        assert_eq!(
            format!("{:?}", Transports::from_bits(0x11)),
            "{SOCKET, 0x10}"
        );
        assert_eq!(without_shared_memory(all), Transports::SOCKET);
    }

    #[test]
    fn small_frames_are_one_part_large_ones_two() {
        let mut small = [0u8; SMALL_FRAME];
        let parts = frame_parts(&[3], b"abc", &mut small);
        assert_eq!(parts.as_slice(), [&[3, b'a', b'b', b'c'][..]]);
        let payload = vec![7u8; SMALL_FRAME];
        let mut small = [0u8; SMALL_FRAME];
        let parts = frame_parts(&[0x80, 0x04], &payload, &mut small);
        assert_eq!(parts.as_slice().len(), 2);
        assert_eq!(parts.as_slice()[1].len(), SMALL_FRAME);
    }
}
