//! Async framed mode on tokio, written once for every host adapter: the same hello,
//! frames and postcard messages as [`crate::FramedStream`], over an [`AsyncByteStream`].
//!
//! `ringlink_unix::tokio::FramedStream` is `FramedStream<ringlink_unix::tokio::Stream>`,
//! `ringlink_windows::tokio::FramedStream` is `FramedStream<ringlink_windows::tokio::Stream>`.
//! As in blocking framed mode, two ringlink peers on one machine move their frames through
//! shared memory when both hellos offer it and the platform has it (Linux: the stream's
//! [`AsyncByteStream::SharedMemory`], set up in the reactor); either side opts out with
//! [`Transports::SOCKET`]. A tokio side and a blocking side speak the same protocol.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(doc)]
use crate::ErrorKind;
use crate::framed::{
    Decoder, SMALL_FRAME, closed_before_hello, decode_message, encode_message, frame_header,
    frame_parts, hello_progress, no_hello, without_shared_memory,
};
use crate::{Error, FrameOptions, Hello, NoSharedMemory, Transports};

/// What async framed mode needs from an adapter's async stream.
pub trait AsyncByteStream: Sync {
    /// The shared-memory transport framed mode may move frames to
    /// ([`NoSharedMemory`] where the platform has none).
    type SharedMemory: AsyncSharedMemoryTransport;

    /// Polls for some bytes into `buf` (tokio's `AsyncRead::poll_read` on a shared
    /// reference): `Ready(Ok)` with nothing added is end of stream.
    fn poll_read_some(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>>;

    /// Reads some bytes, waiting for at least one; `Ok(0)` is end of stream. Cancel safe:
    /// when the future is dropped before it completes, nothing was read.
    fn read_some(&self, buf: &mut [u8]) -> impl Future<Output = Result<usize, Error>> + Send {
        async move {
            poll_fn(|cx| {
                let mut rb = ReadBuf::new(buf);
                ready!(self.poll_read_some(cx, &mut rb))?;
                Poll::Ready(Ok::<usize, io::Error>(rb.filled().len()))
            })
            .await
            .map_err(Error::from)
        }
    }

    /// Writes the concatenation of `parts` completely.
    fn write_parts(&self, parts: &[&[u8]]) -> impl Future<Output = Result<(), Error>> + Send;

    /// Sets up the shared-memory transport after the hellos, in the reactor, called only
    /// when both sides offered [`Transports::SHARED_MEMORY`]; see
    /// [`ByteStream::negotiate_shared_memory`](crate::ByteStream::negotiate_shared_memory)
    /// (the same wire protocol, so a tokio side and a blocking side meet). `Ok(None)`
    /// keeps the frames on the stream (the default).
    fn negotiate_shared_memory(
        &self,
        local: &Hello,
        peer: &Hello,
        received: &[u8],
        options: &FrameOptions,
    ) -> impl Future<Output = Result<Option<Self::SharedMemory>, Error>> + Send {
        let _ = (local, peer, received, options);
        async { Ok(None) }
    }
}

/// A transport that carries frames through memory shared with the peer once both hellos
/// offered it, driven by tokio's reactor (a task waits without spinning a thread); the
/// async counterpart of [`SharedMemoryTransport`](crate::SharedMemoryTransport).
pub trait AsyncSharedMemoryTransport: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {
    /// Whether the platform has the transport; `false` keeps
    /// [`Transports::SHARED_MEMORY`] out of this side's hello.
    const AVAILABLE: bool = true;

    /// The receiving half, for [`into_split`](Self::into_split).
    type ReadHalf: AsyncRead + Unpin + Send + fmt::Debug;
    /// The sending half, for [`into_split`](Self::into_split); dropping it ends the
    /// stream for the peer.
    type WriteHalf: AsyncWrite + Unpin + Send + fmt::Debug;

    /// Splits into halves that can move to different tasks.
    fn into_split(self) -> (Self::ReadHalf, Self::WriteHalf);
}

impl AsyncRead for NoSharedMemory {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match *self {}
    }
}

impl AsyncWrite for NoSharedMemory {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match *self {}
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match *self {}
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        match *self {}
    }
}

impl AsyncSharedMemoryTransport for NoSharedMemory {
    const AVAILABLE: bool = false;

    type ReadHalf = NoSharedMemory;
    type WriteHalf = NoSharedMemory;

    fn into_split(self) -> (NoSharedMemory, NoSharedMemory) {
        match self {}
    }
}

/// Opening an async connection by name, so that [`FramedStream::connect`] can do it for
/// any adapter. `N` is whatever the adapter accepts as a name.
pub trait AsyncConnect<N>: Sized {
    /// The adapter's connect options.
    type Options;

    /// Connects to the server at `name`.
    fn connect(name: N, options: Self::Options) -> impl Future<Output = Result<Self, Error>>;
}

/// An async stream in framed mode; see [`crate::FramedStream`] for the protocol.
///
/// `recv_frame` and `recv` are cancel safe (bytes already received are kept);
/// `send_frame` and `send` are not (a cancelled send may leave a partial frame, after
/// which the connection must be dropped).
pub struct FramedStream<S: AsyncByteStream> {
    stream: S,
    /// Set when both hellos offered shared memory and the platform set it up: frames then
    /// move through it, and `stream` only tells whether the peer is alive.
    shared_memory: Option<S::SharedMemory>,
    decoder: Decoder,
    local: Hello,
    peer: Hello,
    scratch: Vec<u8>,
}

impl<S: AsyncByteStream + fmt::Debug> fmt::Debug for FramedStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramedStream")
            .field("stream", &self.stream)
            .field("shared_memory", &self.shared_memory)
            .field("local", &self.local)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncByteStream> FramedStream<S> {
    /// Connects to `name` and performs the handshake.
    pub async fn connect<N>(
        name: N,
        connect: <S as AsyncConnect<N>>::Options,
        options: FrameOptions,
    ) -> Result<Self, Error>
    where
        S: AsyncConnect<N>,
    {
        FramedStream::new(S::connect(name, connect).await?, options).await
    }

    /// Performs the handshake on a connected stream (both sides call this), waiting at most
    /// the options' handshake timeout for the peer's hello, then, when both hellos offered
    /// [`Transports::SHARED_MEMORY`] and the platform has it, sets up shared memory in the
    /// reactor (its own handshake timeout is the same).
    pub async fn new(stream: S, options: FrameOptions) -> Result<Self, Error> {
        let mut local = Hello::new(&options);
        if !<S::SharedMemory as AsyncSharedMemoryTransport>::AVAILABLE {
            local.transports = without_shared_memory(local.transports);
        }
        let mut decoder = Decoder::new(options.max_frame_len());
        stream.write_parts(&[&local.encode()]).await?;
        let timeout = options.handshake_timeout_len();
        let handshake = async {
            loop {
                if let Some(peer) = hello_progress(&mut decoder)? {
                    return Ok(peer);
                }
                match stream.read_some(decoder.spare()).await? {
                    0 => return Err(closed_before_hello()),
                    n => decoder.filled(n),
                }
            }
        };
        let peer = ::tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| no_hello(timeout))??;
        let both = local.transports.intersection(peer.transports);
        let shared_memory = if both.contains(Transports::SHARED_MEMORY) {
            let received = decoder.buffered();
            let consumed = received.len();
            let shm = stream
                .negotiate_shared_memory(&local, &peer, received, &options)
                .await?;
            if shm.is_some() {
                decoder.consume(consumed);
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
        })
    }

    /// Sends one frame; [`ErrorKind::FrameTooLarge`] (nothing sent) when over the peer's limit.
    pub async fn send_frame(&mut self, payload: &[u8]) -> Result<(), Error> {
        send_frame_on(
            &self.stream,
            self.shared_memory.as_mut(),
            self.peer.max_frame,
            payload,
        )
        .await
    }

    /// Receives the next frame; `Ok(None)` at a clean end of stream. Cancel safe.
    pub async fn recv_frame(&mut self) -> Result<Option<&[u8]>, Error> {
        recv_frame_from(&mut self.decoder, &self.stream, self.shared_memory.as_mut()).await
    }

    /// Sends `msg` encoded with postcard as one frame.
    pub async fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<(), Error> {
        let scratch = encode_message(msg, std::mem::take(&mut self.scratch))?;
        let result = self.send_frame(&scratch).await;
        self.scratch = scratch;
        result
    }

    /// Receives one frame and decodes it as a `T`; `Ok(None)` at a clean end of stream.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, Error> {
        self.recv_frame().await?.map(decode_message).transpose()
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

    /// The stream underneath (for credentials). With shared memory it carries no frames.
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

    /// Splits into a receiving and a sending half that can move to different tasks, over
    /// whichever transport carries the frames, as
    /// [`crate::FramedStream::into_split`] does. Frames already received stay with the
    /// receiver. Dropping the sender ends the stream for the peer over shared memory;
    /// over the socket, the stream ends when both halves are dropped.
    pub fn into_split(self) -> (FrameReceiver<S>, FrameSender<S>) {
        let stream = Arc::new(self.stream);
        let (read, write) = match self
            .shared_memory
            .map(AsyncSharedMemoryTransport::into_split)
        {
            Some((r, w)) => (Some(r), Some(w)),
            None => (None, None),
        };
        (
            FrameReceiver {
                stream: stream.clone(),
                shared_memory: read,
                decoder: self.decoder,
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

/// The receiving half of an async [`FramedStream`], from [`FramedStream::into_split`].
pub struct FrameReceiver<S: AsyncByteStream> {
    stream: Arc<S>,
    shared_memory: Option<<S::SharedMemory as AsyncSharedMemoryTransport>::ReadHalf>,
    decoder: Decoder,
}

impl<S: AsyncByteStream> FrameReceiver<S> {
    /// Receives the next frame; see [`FramedStream::recv_frame`]. Cancel safe.
    pub async fn recv_frame(&mut self) -> Result<Option<&[u8]>, Error> {
        recv_frame_from(
            &mut self.decoder,
            &*self.stream,
            self.shared_memory.as_mut(),
        )
        .await
    }

    /// Receives one frame and decodes it as a `T`; see [`FramedStream::recv`].
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, Error> {
        self.recv_frame().await?.map(decode_message).transpose()
    }

    /// Whether frames move through shared memory.
    pub fn is_shared_memory(&self) -> bool {
        self.shared_memory.is_some()
    }
}

impl<S: AsyncByteStream> fmt::Debug for FrameReceiver<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameReceiver")
            .field("shared_memory", &self.shared_memory.is_some())
            .finish_non_exhaustive()
    }
}

/// The sending half of an async [`FramedStream`], from [`FramedStream::into_split`].
pub struct FrameSender<S: AsyncByteStream> {
    stream: Arc<S>,
    shared_memory: Option<<S::SharedMemory as AsyncSharedMemoryTransport>::WriteHalf>,
    peer_max: u32,
    scratch: Vec<u8>,
}

impl<S: AsyncByteStream> FrameSender<S> {
    /// Sends one frame; see [`FramedStream::send_frame`].
    pub async fn send_frame(&mut self, payload: &[u8]) -> Result<(), Error> {
        send_frame_on(
            &*self.stream,
            self.shared_memory.as_mut(),
            self.peer_max,
            payload,
        )
        .await
    }

    /// Sends `msg` encoded with postcard as one frame; see [`FramedStream::send`].
    pub async fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<(), Error> {
        let scratch = encode_message(msg, std::mem::take(&mut self.scratch))?;
        let result = self.send_frame(&scratch).await;
        self.scratch = scratch;
        result
    }

    /// The stream underneath, shared with the receiver.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Whether frames move through shared memory (then dropping this half is what
    /// ends the stream for the peer).
    pub fn is_shared_memory(&self) -> bool {
        self.shared_memory.is_some()
    }
}

impl<S: AsyncByteStream> fmt::Debug for FrameSender<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameSender")
            .field("shared_memory", &self.shared_memory.is_some())
            .finish_non_exhaustive()
    }
}

/// Sends one frame over shared memory when it carries the frames, else the stream.
async fn send_frame_on<S: AsyncByteStream, W: AsyncWrite + Unpin>(
    stream: &S,
    shared_memory: Option<&mut W>,
    peer_max: u32,
    payload: &[u8],
) -> Result<(), Error> {
    let (header, n) = frame_header(payload.len(), peer_max)?;
    let mut small = [0u8; SMALL_FRAME];
    let parts = frame_parts(&header[..n], payload, &mut small);
    match shared_memory {
        Some(shm) => {
            for part in parts.as_slice() {
                shm.write_all(part).await?;
            }
            Ok(())
        }
        None => stream.write_parts(parts.as_slice()).await,
    }
}

/// Receives the next frame into `decoder`, from shared memory when it carries the
/// frames, else from the stream. Cancel safe: bytes read stay in `decoder`.
async fn recv_frame_from<'d, S: AsyncByteStream, R: AsyncRead + Unpin>(
    decoder: &'d mut Decoder,
    stream: &S,
    mut shared_memory: Option<&mut R>,
) -> Result<Option<&'d [u8]>, Error> {
    loop {
        if let Some(range) = decoder.next_frame()? {
            return Ok(Some(decoder.frame(range)));
        }
        let n = match shared_memory.as_mut() {
            // A peer that died without closing (its socket hung up) ends the stream as
            // a dead socket peer does: cleanly between frames, else mid-frame.
            Some(shm) => match shm.read(decoder.spare()).await {
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => 0,
                other => other?,
            },
            None => stream.read_some(decoder.spare()).await?,
        };
        if n == 0 {
            return match decoder.eof() {
                None => Ok(None),
                Some(e) => Err(e),
            };
        }
        decoder.filled(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::MemoryStream;
    use crate::{ByteStream, ErrorKind, Transports};
    use std::time::Duration;

    /// The in-memory pair, read without blocking the runtime's thread for long.
    #[derive(Debug)]
    struct Async(MemoryStream);

    impl AsyncByteStream for Async {
        type SharedMemory = crate::NoSharedMemory;

        fn poll_read_some(
            &self,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    Poll::Ready(Ok(()))
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // Polled again at once: good enough for a test.
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e.into())),
            }
        }

        async fn write_parts(&self, parts: &[&[u8]]) -> Result<(), Error> {
            self.0.send_parts(parts)
        }
    }

    fn pair() -> (Async, Async) {
        let (a, b) = MemoryStream::pair().unwrap();
        (Async(a), Async(b))
    }

    #[::tokio::test]
    async fn frames_and_messages_round_trip_and_shared_memory_is_never_offered() {
        let (a, b) = pair();
        let offer =
            FrameOptions::new().transports(Transports::SOCKET.union(Transports::SHARED_MEMORY));
        let (a, b) = ::tokio::join!(FramedStream::new(a, offer), FramedStream::new(b, offer));
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        assert_eq!(b.peer_hello().transports, Transports::SOCKET);
        let big = vec![9u8; 70_000];
        a.send_frame(b"small").await.unwrap();
        a.send_frame(&big).await.unwrap();
        a.send(&(3u16, "three")).await.unwrap();
        assert_eq!(b.recv_frame().await.unwrap(), Some(&b"small"[..]));
        assert_eq!(b.recv_frame().await.unwrap().map(<[u8]>::len), Some(70_000));
        let typed: (u16, String) = b.recv().await.unwrap().unwrap();
        assert_eq!(typed, (3, "three".to_string()));
        drop(a);
        assert_eq!(b.recv_frame().await.unwrap(), None);
    }

    #[::tokio::test]
    async fn a_silent_or_foreign_peer_is_a_protocol_mismatch() {
        let (a, _silent) = pair();
        let quick = FrameOptions::new().handshake_timeout(Duration::from_millis(30));
        let err = FramedStream::new(a, quick).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProtocolMismatch);

        let (a, foreign) = pair();
        foreign.0.send_all(b"SSH-2.0-OpenSSH_9").unwrap();
        let err = FramedStream::new(a, FrameOptions::new()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProtocolMismatch);
        assert!(err.to_string().contains("SSH"), "{err}");

        let (a, gone) = pair();
        drop(gone);
        let err = FramedStream::new(a, FrameOptions::new()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PeerClosed);
    }
}
