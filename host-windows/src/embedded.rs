//! `embedded_io` for streams and their halves, so code written against embedded-io
//! (for example the core's frame reader and writer) runs over a named pipe unchanged.
//!
//! Reads block until at least one byte arrives (`Ok(0)` is end of stream); writes never
//! return `Ok(0)` for a non-empty buffer. `ReadReady` polls without waiting; `WriteReady` is
//! always true (named pipes report no write readiness, see [`Stream::wait_writable`]).
//! The impls are `ringlink_host`'s, shared with the Unix sockets of `ringlink-unix`.

use crate::Stream;
use crate::stream::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};

ringlink_host::impl_embedded_io!(read_write: Stream, |this| this);
ringlink_host::impl_embedded_io!(read: ReadHalf<'_>, |this| this.stream());
ringlink_host::impl_embedded_io!(read: OwnedReadHalf, |this| this.stream());
ringlink_host::impl_embedded_io!(write: WriteHalf<'_>, |this| this.stream());
ringlink_host::impl_embedded_io!(write: OwnedWriteHalf, |this| this.stream());
