//! Async framed mode on tokio, written once for every host adapter: the same hello,
//! frames and postcard messages as [`crate::FramedStream`], over an [`AsyncByteStream`].
//!
//! `ringlink_unix::tokio::FramedStream` is `FramedStream<ringlink_unix::tokio::Stream>`,
//! `ringlink_windows::tokio::FramedStream` is `FramedStream<ringlink_windows::tokio::Stream>`.
//! Frames always move over the connection itself: an async side never offers shared
//! memory.

use std::future::{Future, poll_fn};
use std::io;
use std::task::{Context, Poll, ready};

use ::tokio::io::ReadBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::framed::{
    Decoder, SMALL_FRAME, closed_before_hello, decode_message, encode_message, frame_header,
    frame_parts, hello_progress, no_hello, without_shared_memory,
};
use crate::{Error, FrameOptions, Hello};
#[cfg(doc)]
use crate::{ErrorKind, Transports};

/// What async framed mode needs from an adapter's async stream.
pub trait AsyncByteStream: Sync {
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
#[derive(Debug)]
pub struct FramedStream<S> {
    stream: S,
    decoder: Decoder,
    local: Hello,
    peer: Hello,
    scratch: Vec<u8>,
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
    /// the options' handshake timeout for the peer's hello. [`Transports::SHARED_MEMORY`]
    /// is never offered.
    pub async fn new(stream: S, options: FrameOptions) -> Result<Self, Error> {
        let mut local = Hello::new(&options);
        local.transports = without_shared_memory(local.transports);
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
        Ok(FramedStream {
            stream,
            decoder,
            local,
            peer,
            scratch: Vec::new(),
        })
    }

    /// Sends one frame; [`ErrorKind::FrameTooLarge`] (nothing sent) when over the peer's limit.
    pub async fn send_frame(&mut self, payload: &[u8]) -> Result<(), Error> {
        let (header, n) = frame_header(payload.len(), self.peer.max_frame)?;
        let mut small = [0u8; SMALL_FRAME];
        let parts = frame_parts(&header[..n], payload, &mut small);
        self.stream.write_parts(parts.as_slice()).await
    }

    /// Receives the next frame; `Ok(None)` at a clean end of stream. Cancel safe.
    pub async fn recv_frame(&mut self) -> Result<Option<&[u8]>, Error> {
        loop {
            if let Some(range) = self.decoder.next_frame()? {
                return Ok(Some(self.decoder.frame(range)));
            }
            let n = self.stream.read_some(self.decoder.spare()).await?;
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

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream and whatever bytes were received but not yet returned as frames.
    pub fn into_parts(self) -> (S, Vec<u8>) {
        let rest = self.decoder.buffered().to_vec();
        (self.stream, rest)
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
