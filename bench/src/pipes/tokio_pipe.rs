//! tokio's named pipes (`tokio::net::windows::named_pipe`), one task per connection, as
//! tokio's documentation writes a server: create the first instance, and after each
//! client connects create the next before handing the connected one out; a client
//! retries while every instance is busy.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::windows::named_pipe::{
    ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions,
};
use windows_sys::Win32::Foundation::ERROR_PIPE_BUSY;

use super::async_driven::AsyncSockets;
use super::pipe_name;
use crate::names::Name;

/// tokio's named-pipe API.
pub struct TokioPipe;

/// A server's pipe instances: the one the next client connects to.
pub struct Instances {
    name: String,
    /// Taken by an accept while it waits; `None` after a cancelled accept.
    pending: Mutex<Option<NamedPipeServer>>,
}

/// Either end of a tokio named pipe.
pub enum Pipe {
    /// An instance a client connected to.
    Server(NamedPipeServer),
    /// A client's end.
    Client(NamedPipeClient),
}

impl AsyncRead for Pipe {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Pipe::Server(p) => Pin::new(p).poll_read(cx, buf),
            Pipe::Client(p) => Pin::new(p).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Pipe::Server(p) => Pin::new(p).poll_write(cx, buf),
            Pipe::Client(p) => Pin::new(p).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Pipe::Server(p) => Pin::new(p).poll_flush(cx),
            Pipe::Client(p) => Pin::new(p).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Pipe::Server(p) => Pin::new(p).poll_shutdown(cx),
            Pipe::Client(p) => Pin::new(p).poll_shutdown(cx),
        }
    }
}

impl AsyncSockets for TokioPipe {
    const NAME: Name = Name::Tokio;
    type Stream = Pipe;
    type Listener = Instances;

    fn bind(addr: &Path) -> io::Result<Self::Listener> {
        let name = pipe_name(addr);
        let first = ServerOptions::new()
            .first_pipe_instance(true)
            .create(&name)?;
        Ok(Instances {
            name,
            pending: Mutex::new(Some(first)),
        })
    }

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream> {
        let taken = listener
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let server = match taken {
            Some(server) => server,
            None => ServerOptions::new().create(&listener.name)?,
        };
        server.connect().await?;
        let next = ServerOptions::new().create(&listener.name)?;
        *listener.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(next);
        Ok(Pipe::Server(server))
    }

    async fn connect(addr: &Path) -> io::Result<Self::Stream> {
        let name = pipe_name(addr);
        loop {
            match ClientOptions::new().open(&name) {
                Ok(client) => return Ok(Pipe::Client(client)),
                // The caller bounds the wait.
                Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
