//! The `interprocess` crate's local sockets (Unix domain sockets here) through its tokio
//! API, one task per connection: how its users drive many connections from one thread.

use std::io;
use std::path::Path;

use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::local_socket::{GenericFilePath, ListenerOptions};

use super::async_driven::AsyncSockets;
use crate::names::Name;

/// `interprocess::local_socket::tokio`.
pub struct InterprocessUds;

impl AsyncSockets for InterprocessUds {
    const NAME: Name = Name::Interprocess;
    type Stream = Stream;
    type Listener = Listener;

    fn bind(addr: &Path) -> io::Result<Self::Listener> {
        ListenerOptions::new()
            .name(addr.to_fs_name::<GenericFilePath>()?)
            .create_tokio()
    }

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream> {
        listener.accept().await
    }

    async fn connect(addr: &Path) -> io::Result<Self::Stream> {
        Stream::connect(addr.to_fs_name::<GenericFilePath>()?).await
    }
}
