//! The halves of an async stream and its tokio `AsyncRead`/`AsyncWrite` impls, written once
//! for every adapter (feature `tokio`).
//!
//! An adapter implements [`AsyncSplitStream`] for its tokio `Stream` (reads and writes
//! through a shared reference) and calls [`impl_async_io!`](crate::impl_async_io) for the
//! stream itself; the halves (the same [`crate::ReadHalf`] and friends as the blocking
//! streams', from [`crate::split`] and [`crate::into_split`]) get the same impls
//! generically.

use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use tokio::io::ReadBuf;

use crate::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, SplitStream, WriteHalf};

/// An async stream that reads and writes through a shared reference, so that two halves
/// (or two tasks) can use it at once.
pub trait AsyncSplitStream: SplitStream + Send + Sync {
    /// Polls for some bytes into `buf`; `Ready(Ok)` with nothing added is end of stream.
    fn poll_read_shared(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>)
    -> Poll<io::Result<()>>;

    /// Polls to write some of `buf`.
    fn poll_write_shared(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Polls to write some of the concatenation of `bufs`; by default the first non-empty
    /// one alone.
    fn poll_write_vectored_shared(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(buf) => self.poll_write_shared(cx, buf),
            None => Poll::Ready(Ok(0)),
        }
    }

    /// Whether [`poll_write_vectored_shared`](Self::poll_write_vectored_shared) gathers.
    fn is_write_vectored_shared(&self) -> bool {
        false
    }
}

/// Implements tokio's `AsyncRead` and `AsyncWrite` for an [`AsyncSplitStream`] type and
/// for shared references to it (`&Stream`), in the adapter that defines the type.
#[macro_export]
macro_rules! impl_async_io {
    ($ty:ty) => {
        $crate::impl_async_io!(@impl [] $ty, this => this);
        $crate::impl_async_io!(@impl [] &$ty, this => *this);
    };
    (@impl [$($bounds:tt)*] $ty:ty, $this:ident => $stream:expr) => {
        impl<$($bounds)*> ::tokio::io::AsyncRead for $ty {
            fn poll_read(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut ::tokio::io::ReadBuf<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                let $this = self.get_mut();
                $crate::tokio_halves::AsyncSplitStream::poll_read_shared(&*$stream, cx, buf)
            }
        }

        impl<$($bounds)*> ::tokio::io::AsyncWrite for $ty {
            fn poll_write(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                let $this = self.get_mut();
                $crate::tokio_halves::AsyncSplitStream::poll_write_shared(&*$stream, cx, buf)
            }

            fn poll_write_vectored(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                let $this = self.get_mut();
                $crate::tokio_halves::AsyncSplitStream::poll_write_vectored_shared(
                    &*$stream, cx, bufs,
                )
            }

            fn is_write_vectored(&self) -> bool {
                let $this = self;
                $crate::tokio_halves::AsyncSplitStream::is_write_vectored_shared(&*$stream)
            }

            fn poll_flush(
                self: ::std::pin::Pin<&mut Self>,
                _cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::std::task::Poll::Ready(Ok(()))
            }

            fn poll_shutdown(
                self: ::std::pin::Pin<&mut Self>,
                _cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                let $this = self.get_mut();
                ::std::task::Poll::Ready(
                    $crate::SplitStream::shutdown_write(&*$stream)
                        .map_err(::std::io::Error::from),
                )
            }
        }
    };
}

impl_async_io!(@impl ['a, S: AsyncSplitStream] ReadHalf<'a, S>, this => this.stream());
impl_async_io!(@impl ['a, S: AsyncSplitStream] WriteHalf<'a, S>, this => this.stream());
impl_async_io!(@impl [S: AsyncSplitStream] OwnedReadHalf<S>, this => this.stream());
impl_async_io!(@impl [S: AsyncSplitStream] OwnedWriteHalf<S>, this => this.stream());

/// Implements `embedded_io_async::{ErrorType, Read, Write}` for an async stream type
/// through its tokio traits (one read or write per call, errors as ringlink
/// [`Error`](crate::Error)s); the halves here have the same impls generically.
#[macro_export]
macro_rules! impl_embedded_io_async {
    ($ty:ty) => {
        impl $crate::__private::embedded_io_async::ErrorType for $ty {
            type Error = $crate::Error;
        }
        $crate::impl_embedded_io_async!(@impl [] $ty);
    };
    (@impl [$($bounds:tt)*] $ty:ty) => {

        impl<$($bounds)*> $crate::__private::embedded_io_async::Read for $ty {
            async fn read(&mut self, buf: &mut [u8]) -> Result<usize, $crate::Error> {
                ::tokio::io::AsyncReadExt::read(self, buf)
                    .await
                    .map_err($crate::Error::from)
            }
        }

        impl<$($bounds)*> $crate::__private::embedded_io_async::Write for $ty {
            async fn write(&mut self, buf: &[u8]) -> Result<usize, $crate::Error> {
                ::tokio::io::AsyncWriteExt::write(self, buf)
                    .await
                    .map_err($crate::Error::from)
            }

            async fn flush(&mut self) -> Result<(), $crate::Error> {
                ::tokio::io::AsyncWriteExt::flush(self)
                    .await
                    .map_err($crate::Error::from)
            }
        }
    };
}

impl_embedded_io_async!(@impl ['a, S: AsyncSplitStream] ReadHalf<'a, S>);
impl_embedded_io_async!(@impl ['a, S: AsyncSplitStream] WriteHalf<'a, S>);
impl_embedded_io_async!(@impl [S: AsyncSplitStream] OwnedReadHalf<S>);
impl_embedded_io_async!(@impl [S: AsyncSplitStream] OwnedWriteHalf<S>);
