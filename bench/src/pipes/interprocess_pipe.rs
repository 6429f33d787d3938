//! The `interprocess` crate's local sockets (named pipes on Windows) through its tokio
//! API, one task per connection, with its defaults (including its pipe buffers) as its
//! users get them.

use std::io;
use std::path::Path;

use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::local_socket::{GenericFilePath, ListenerOptions};

use super::async_driven::AsyncSockets;
use super::pipe_name;
use crate::names::Name;

/// `interprocess::local_socket::tokio`.
pub struct InterprocessPipe;

impl AsyncSockets for InterprocessPipe {
    const NAME: Name = Name::Interprocess;
    type Stream = Stream;
    type Listener = Listener;

    fn bind(addr: &Path) -> io::Result<Self::Listener> {
        ListenerOptions::new()
            .name(pipe_name(addr).to_fs_name::<GenericFilePath>()?)
            .create_tokio()
    }

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream> {
        listener.accept().await
    }

    async fn connect(addr: &Path) -> io::Result<Self::Stream> {
        Stream::connect(pipe_name(addr).to_fs_name::<GenericFilePath>()?).await
    }
}
