//! Framed mode: a hello, then length-prefixed frames and typed (postcard) messages.
//!
//! Both sides send a 16-byte [`Hello`] as soon as the connection is up, then read the
//! peer's: magic `RLNK`, protocol version, the largest frame each side accepts, and the
//! transports each side offers (only the socket today; the bit for shared memory is
//! reserved for the shared-memory transport). A peer that sends anything else, or nothing
//! within the handshake timeout, is a [`ErrorKind::ProtocolMismatch`], never a hang.
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

use std::fmt;
use std::time::Duration;

use ringlink_core::frame::{MAX_HEADER_LEN, decode_len, encode_len};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::name::IntoName;
use crate::{ConnectOptions, Error, ErrorKind, Stream};

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
    /// Bytes over the Unix socket itself.
    pub const SOCKET: Transports = Transports(1);
    /// Reserved for the shared-memory transport (two rings in a memfd); not offered yet.
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
    /// The defaults: frames up to [`DEFAULT_MAX_FRAME`], a 5 s handshake timeout, the socket
    /// transport.
    pub const fn new() -> FrameOptions {
        FrameOptions {
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: Duration::from_secs(5),
            transports: Transports::SOCKET,
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

    /// The transports this side offers. Add [`Transports::SHARED_MEMORY`] to move
    /// frames through memory shared with the peer when it offers it too (Linux; the
    /// server side creates the mapping; see [`crate::shm`]).
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
pub(crate) fn check_peer_hello(bytes: &[u8; HELLO_LEN]) -> Result<Hello, Error> {
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

const INITIAL_BUFFER: usize = 8 * 1024;

impl Decoder {
    pub(crate) fn new(max: u32) -> Decoder {
        let cap = INITIAL_BUFFER.min(max as usize + MAX_HEADER_LEN);
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
        if self.buf.len() - self.start < need || self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < need {
            let limit = self.max as usize + MAX_HEADER_LEN;
            let new_len = need.max(self.buf.len() * 2).min(limit.max(need));
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

/// A [`Stream`] in framed mode: send and receive whole frames and typed messages.
#[derive(Debug)]
pub struct FramedStream {
    stream: Stream,
    /// Set when both hellos offered shared memory and the rings were set up: frames
    /// then move through it, and `stream` only tells whether the peer is alive.
    #[cfg(target_os = "linux")]
    shm: Option<crate::shm::ShmStream>,
    decoder: Decoder,
    local: Hello,
    peer: Hello,
    scratch: Vec<u8>,
}

impl FramedStream {
    /// Connects to `name` and performs the handshake.
    pub fn connect(
        name: impl IntoName,
        connect: ConnectOptions,
        options: FrameOptions,
    ) -> Result<FramedStream, Error> {
        FramedStream::new(Stream::connect(name, connect)?, options)
    }

    /// Performs the handshake on a connected stream (either side; both call this).
    ///
    /// Waits at most the options' handshake timeout for the peer's hello, whatever the
    /// stream's own timeouts and mode, and restores them afterwards.
    pub fn new(stream: Stream, options: FrameOptions) -> Result<FramedStream, Error> {
        #[allow(unused_mut)]
        let mut local = Hello::new(&options);
        #[cfg(not(target_os = "linux"))]
        {
            // The shared-memory transport exists on Linux only.
            local.transports =
                Transports::from_bits(local.transports.bits() & !Transports::SHARED_MEMORY.bits());
        }
        let mut decoder = Decoder::new(options.max_frame);
        let peer = handshake(&stream, &local, &mut decoder, options.handshake_timeout)?;
        #[cfg(target_os = "linux")]
        let shm = negotiate_shm(&stream, &local, &peer, &mut decoder, &options)?;
        Ok(FramedStream {
            stream,
            #[cfg(target_os = "linux")]
            shm,
            decoder,
            local,
            peer,
            scratch: Vec::new(),
        })
    }

    /// Sends one frame. Blocks until the whole frame is written, also on a nonblocking
    /// stream (a frame is never torn). Fails with [`ErrorKind::FrameTooLarge`], sending
    /// nothing, when `payload` is over the peer's limit.
    pub fn send_frame(&mut self, payload: &[u8]) -> Result<(), Error> {
        let (header, n) = frame_header(payload.len(), self.peer.max_frame)?;
        #[cfg(target_os = "linux")]
        if let Some(shm) = &mut self.shm {
            use std::io::Write;
            shm.write_all(&header[..n])?;
            shm.write_all(payload)?;
            return Ok(());
        }
        send_whole(&self.stream, &header[..n], payload)
    }

    /// Receives the next frame; `Ok(None)` when the peer closed the connection between
    /// frames. A peer that disappears in the middle of a frame is
    /// [`ErrorKind::PeerClosed`].
    ///
    /// On a nonblocking stream this returns [`ErrorKind::WouldBlock`] until a whole frame
    /// is there; the bytes received so far are kept.
    pub fn recv_frame(&mut self) -> Result<Option<&[u8]>, Error> {
        loop {
            if let Some(range) = self.decoder.next_frame()? {
                return Ok(Some(self.decoder.frame(range)));
            }
            #[cfg(target_os = "linux")]
            let n = match &mut self.shm {
                Some(shm) => std::io::Read::read(shm, self.decoder.spare())?,
                None => self.stream.recv(self.decoder.spare())?,
            };
            #[cfg(not(target_os = "linux"))]
            let n = self.stream.recv(self.decoder.spare())?;
            if n == 0 {
                return match self.decoder.eof() {
                    None => Ok(None),
                    Some(e) => Err(e),
                };
            }
            self.decoder.filled(n);
        }
    }

    /// Sends `msg` encoded with postcard as one frame.
    ///
    /// ```
    /// use ringlink_unix::{FrameOptions, FramedStream, Stream};
    ///
    /// let (a, b) = Stream::pair()?;
    /// let peer = std::thread::spawn(move || FramedStream::new(b, FrameOptions::new()));
    /// let mut a = FramedStream::new(a, FrameOptions::new())?;
    /// let mut b = peer.join().unwrap()?;
    /// a.send(&(42u32, "answer"))?;
    /// let got: Option<(u32, String)> = b.recv()?;
    /// assert_eq!(got, Some((42, "answer".to_string())));
    /// # Ok::<(), ringlink_unix::Error>(())
    /// ```
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
        match self.recv_frame()? {
            None => Ok(None),
            Some(frame) => decode_message(frame).map(Some),
        }
    }

    /// The hello this side sent.
    pub fn local_hello(&self) -> &Hello {
        &self.local
    }

    /// The hello the peer sent.
    pub fn peer_hello(&self) -> &Hello {
        &self.peer
    }

    /// The stream underneath (for credentials, timeouts, nonblocking mode, polling).
    /// Whether frames move through shared memory (negotiated in the hello, Linux).
    pub fn is_shared_memory(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.shm.is_some();
        #[cfg(not(target_os = "linux"))]
        return false;
    }

    /// Sets how long `recv_frame`/`recv` and `send_frame`/`send` may block, on
    /// whichever transport carries the frames (`None`: no limit).
    pub fn set_timeouts(
        &mut self,
        read: Option<Duration>,
        write: Option<Duration>,
    ) -> Result<(), Error> {
        #[cfg(target_os = "linux")]
        if let Some(shm) = &mut self.shm {
            shm.set_read_timeout(read);
            shm.set_write_timeout(write);
            return Ok(());
        }
        self.stream.set_read_timeout(read)?;
        self.stream.set_write_timeout(write)
    }

    /// The underlying socket. With shared memory it carries no frames.
    pub fn get_ref(&self) -> &Stream {
        &self.stream
    }

    /// The stream and whatever bytes were received but not yet returned as frames.
    /// With shared memory the mapping is closed (the peer sees the end of the
    /// stream) and bytes still in the ring are dropped.
    pub fn into_parts(self) -> (Stream, Vec<u8>) {
        let rest = self.decoder.buffered().to_vec();
        (self.stream, rest)
    }
}

/// Sends `header` and `payload` completely, waiting for room even on a nonblocking stream.
fn send_whole(stream: &Stream, header: &[u8], payload: &[u8]) -> Result<(), Error> {
    // Small frames: one copy into a stack buffer, one `send`.
    let mut small = [0u8; 512];
    let total = header.len() + payload.len();
    let bufs: [&[u8]; 2];
    let parts: &[&[u8]] = if total <= small.len() {
        small[..header.len()].copy_from_slice(header);
        small[header.len()..total].copy_from_slice(payload);
        bufs = [&small[..total], &[]];
        &bufs[..1]
    } else {
        bufs = [header, payload];
        &bufs
    };
    let mut sent = 0usize;
    while sent < total {
        match stream.send_vectored_from(parts, sent) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                stream.wait_writable(stream.write_timeout()?)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends our hello and reads the peer's, within `timeout`.
fn handshake(
    stream: &Stream,
    local: &Hello,
    decoder: &mut Decoder,
    timeout: Duration,
) -> Result<Hello, Error> {
    send_whole(stream, &local.encode(), &[])?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(peer) = hello_progress(decoder)? {
            return Ok(peer);
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || !stream.wait_readable(Some(left))? {
            return Err(no_hello(timeout));
        }
        match stream.try_read(decoder.spare()) {
            Ok(0) => return Err(closed_before_hello()),
            Ok(n) => decoder.filled(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sets up the shared-memory transport when both hellos offer it and the socket
/// says who offers: the side bound to the name (the server) creates the mapping, the
/// side with an unnamed socket (the client) accepts it. Between two unnamed sockets
/// (`Stream::pair`) the frames stay on the socket.
///
/// Wire order after the hellos: the client sends one `READY` byte (so the server's
/// hello reader cannot swallow the descriptors), the server sends the offer with the
/// descriptors, the client validates it and acknowledges.
#[cfg(target_os = "linux")]
fn negotiate_shm(
    stream: &Stream,
    local: &Hello,
    peer: &Hello,
    decoder: &mut Decoder,
    options: &FrameOptions,
) -> Result<Option<crate::shm::ShmStream>, Error> {
    use crate::shm::{ShmOptions, ShmStream};
    const READY: u8 = b'R';
    if !local
        .transports
        .intersection(peer.transports)
        .contains(Transports::SHARED_MEMORY)
    {
        return Ok(None);
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(stream);
    let (me, them) = (
        crate::sys::is_named(fd, false)?,
        crate::sys::is_named(fd, true)?,
    );
    let shm_options = ShmOptions::new().handshake_timeout(options.handshake_timeout);
    let (read_timeout, write_timeout) = (stream.read_timeout()?, stream.write_timeout()?);
    let mut shm = if me && !them {
        // Server: wait for READY (it may already sit in the hello buffer).
        if decoder.buffered().is_empty() {
            let mut byte = [0u8; 1];
            let deadline = std::time::Instant::now() + options.handshake_timeout;
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() || !stream.wait_readable(Some(left))? {
                    return Err(no_hello(options.handshake_timeout));
                }
                match stream.try_read(&mut byte) {
                    Ok(0) => return Err(closed_before_hello()),
                    Ok(_) => break,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            if byte[0] != READY {
                return Err(Error::new(
                    ErrorKind::ProtocolMismatch,
                    "the peer offered shared memory but did not follow the protocol",
                ));
            }
        } else if decoder.buffered() == [READY] {
            decoder.consume(1);
        } else {
            return Err(Error::new(
                ErrorKind::ProtocolMismatch,
                "the peer sent data before the shared-memory handshake",
            ));
        }
        ShmStream::offer(stream.try_clone()?, &shm_options)?
    } else if them && !me {
        send_whole(stream, &[READY], &[])?;
        ShmStream::accept_offer(stream.try_clone()?, &shm_options)?
    } else {
        return Ok(None);
    };
    shm.set_read_timeout(read_timeout);
    shm.set_write_timeout(write_timeout);
    Ok(Some(shm))
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
    use std::io::Write;

    fn pair(a_opts: FrameOptions, b_opts: FrameOptions) -> (FramedStream, FramedStream) {
        let (a, b) = Stream::pair().unwrap();
        let t = std::thread::spawn(move || FramedStream::new(b, b_opts).unwrap());
        let a = FramedStream::new(a, a_opts).unwrap();
        (a, t.join().unwrap())
    }

    #[test]
    fn hello_round_trips() {
        let hello = Hello::new(&FrameOptions::new().max_frame(1234));
        assert_eq!(Hello::decode(&hello.encode()).unwrap(), hello);
        assert_eq!(&hello.encode()[..4], b"RLNK");
    }

    #[test]
    fn frames_of_every_size_round_trip() {
        let (mut a, mut b) = pair(FrameOptions::new(), FrameOptions::new());
        assert_eq!(b.peer_hello().max_frame, DEFAULT_MAX_FRAME);
        let sizes = [
            0usize,
            1,
            127,
            128,
            511,
            512,
            8191,
            8192,
            100_000,
            DEFAULT_MAX_FRAME as usize,
        ];
        let t = std::thread::spawn(move || {
            for &n in &sizes {
                let payload: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
                a.send_frame(&payload).unwrap();
            }
            a
        });
        for &n in &sizes {
            let frame = b.recv_frame().unwrap().unwrap();
            assert_eq!(frame.len(), n);
            assert!(frame.iter().enumerate().all(|(i, &x)| x == (i % 251) as u8));
        }
        drop(t.join().unwrap());
        assert_eq!(b.recv_frame().unwrap(), None, "clean end of stream");
    }

    #[test]
    fn oversized_frames_are_refused_on_send_and_skipped_on_receive() {
        let (mut a, mut b) = pair(FrameOptions::new(), FrameOptions::new().max_frame(16));
        let err = a.send_frame(&[0u8; 17]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FrameTooLarge);
        // Bypass the sender's check: a peer that ignores our limit.
        let (header, n) = frame_header(40_000, u32::MAX).unwrap();
        a.get_ref().send_all(&header[..n]).unwrap();
        a.get_ref().send_all(&vec![7u8; 40_000]).unwrap();
        a.send_frame(b"after").unwrap();
        let err = b.recv_frame().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FrameTooLarge);
        assert!(err.to_string().contains("40000"), "{err}");
        assert_eq!(
            b.recv_frame().unwrap(),
            Some(&b"after"[..]),
            "still in sync"
        );
        assert!(
            b.decoder.buf.len() <= 16 + MAX_HEADER_LEN,
            "buffer bounded by the limit"
        );
    }

    #[test]
    fn typed_messages_round_trip_and_bad_ones_are_invalid_data() {
        let (mut a, mut b) = pair(FrameOptions::new(), FrameOptions::new());
        a.send(&(7u32, String::from("seven"), vec![1u8, 2, 3]))
            .unwrap();
        let got: (u32, String, Vec<u8>) = b.recv().unwrap().unwrap();
        assert_eq!(got, (7, "seven".to_string(), vec![1, 2, 3]));
        a.send_frame(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap();
        let err = b.recv::<String>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        a.send(&5u8).unwrap();
        assert_eq!(b.recv::<u8>().unwrap(), Some(5));
    }

    #[test]
    fn a_raw_peer_is_a_protocol_mismatch_not_a_hang() {
        let (a, b) = Stream::pair().unwrap();
        (&b).write_all(b"HTTP/1.1 200 OK\r\n").unwrap();
        let err = FramedStream::new(a, FrameOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProtocolMismatch);
        assert!(err.to_string().contains("HTTP"), "{err}");

        let (a, _silent) = Stream::pair().unwrap();
        let t = std::time::Instant::now();
        let err = FramedStream::new(
            a,
            FrameOptions::new().handshake_timeout(Duration::from_millis(50)),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProtocolMismatch);
        assert!(t.elapsed() < Duration::from_secs(5));

        let (a, closed) = Stream::pair().unwrap();
        drop(closed);
        let err = FramedStream::new(a, FrameOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PeerClosed);
    }

    #[test]
    fn eof_inside_a_frame_is_peer_closed() {
        let (a, mut b) = pair(FrameOptions::new(), FrameOptions::new());
        let (header, n) = frame_header(100, u32::MAX).unwrap();
        a.get_ref().send_all(&header[..n]).unwrap();
        a.get_ref().send_all(&[1u8; 10]).unwrap();
        drop(a);
        let err = b.recv_frame().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PeerClosed);
    }

    #[test]
    fn nonblocking_receive_keeps_partial_frames() {
        let (mut a, mut b) = pair(FrameOptions::new(), FrameOptions::new());
        b.get_ref().set_nonblocking(true).unwrap();
        assert_eq!(b.recv_frame().unwrap_err().kind(), ErrorKind::WouldBlock);
        let (header, n) = frame_header(4, u32::MAX).unwrap();
        a.get_ref().send_all(&header[..n]).unwrap();
        a.get_ref().send_all(b"ab").unwrap();
        assert_eq!(b.recv_frame().unwrap_err().kind(), ErrorKind::WouldBlock);
        a.get_ref().send_all(b"cd").unwrap();
        assert_eq!(b.recv_frame().unwrap(), Some(&b"abcd"[..]));
        a.send_frame(b"x").unwrap();
    }
}
