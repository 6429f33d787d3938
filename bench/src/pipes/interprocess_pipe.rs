//! The `interprocess` crate's local sockets (named pipes on Windows) through its tokio
//! API, one task per connection. Its server's pipes get the same buffers as the other
//! pipe transports' ([`PIPE_BUFFER`] each way, as ringlink's, std's and tokio's have):
//! `local_socket::ListenerOptions` has no buffer option and creates them with 512 bytes,
//! which would measure the buffer size rather than the crate. So the listener is built
//! with interprocess's own `named_pipe::PipeListenerOptions` (its buffer size hints, the
//! rest as `local_socket` sets it) and wrapped as the local-socket listener it is on
//! Windows; the streams and the client's connect are `local_socket`'s unchanged.

use std::io;
use std::path::Path;

use interprocess::local_socket::GenericFilePath;
use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::os::windows::named_pipe::local_socket::tokio::Listener as PipeListener;
use interprocess::os::windows::named_pipe::{PipeListenerOptions, pipe_mode};

use super::async_driven::AsyncSockets;
use super::pipe_name;
use super::sys::PIPE_BUFFER;
use crate::names::Name;

/// `interprocess::local_socket::tokio`, its pipes with [`PIPE_BUFFER`] buffers.
pub struct InterprocessPipe;

impl AsyncSockets for InterprocessPipe {
    const NAME: Name = Name::Interprocess;
    type Stream = Stream;
    type Listener = Listener;

    fn bind(addr: &Path) -> io::Result<Self::Listener> {
        let pipes = PipeListenerOptions::new()
            .path(pipe_name(addr).as_str())
            .input_buffer_size_hint(PIPE_BUFFER)
            .output_buffer_size_hint(PIPE_BUFFER)
            .create_tokio_duplex::<pipe_mode::Bytes>()?;
        Ok(Listener::from(PipeListener::from(pipes)))
    }

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream> {
        listener.accept().await
    }

    async fn connect(addr: &Path) -> io::Result<Self::Stream> {
        Stream::connect(pipe_name(addr).to_fs_name::<GenericFilePath>()?).await
    }

    /// Drops the stream without interprocess's "limbo": by default a stream written to
    /// since its last flush is handed to a background thread that flushes it and closes
    /// it later. The harness's streams end when the peer has answered what counts, so
    /// that flush is owed nothing; left to limbo, the client's pipe sometimes stayed
    /// open after its runtime had gone (under Wine), and the server waited for an end
    /// of stream until the row limit. `assume_flushed` is interprocess's own API for
    /// a protocol that knows its peer has read what matters.
    fn finished(stream: &Self::Stream) {
        let Stream::NamedPipe(pipe) = stream;
        pipe.inner().assume_flushed();
    }
}
