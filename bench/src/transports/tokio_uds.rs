//! tokio's `UnixStream` and `UnixListener`, one task per connection.

use std::io;
use std::path::Path;

use super::async_driven::AsyncSockets;
use crate::names::Name;

/// tokio's Unix-socket API.
pub struct TokioUds;

impl AsyncSockets for TokioUds {
    const NAME: Name = Name::Tokio;
    type Stream = tokio::net::UnixStream;
    type Listener = tokio::net::UnixListener;

    fn bind(addr: &Path) -> io::Result<Self::Listener> {
        tokio::net::UnixListener::bind(addr)
    }

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream> {
        listener.accept().await.map(|(stream, _)| stream)
    }

    async fn connect(addr: &Path) -> io::Result<Self::Stream> {
        tokio::net::UnixStream::connect(addr).await
    }
}
