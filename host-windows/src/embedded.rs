//! `embedded_io` for streams and their halves, so code written against embedded-io
//! (for example the core's frame reader and writer) runs over a named pipe unchanged.
//!
//! Reads block until at least one byte arrives (`Ok(0)` is end of stream); writes never
//! return `Ok(0)` for a non-empty buffer. `ReadReady` polls without waiting; `WriteReady` is
//! always true (named pipes report no write readiness, see [`Stream::wait_writable`]).
//! The halves get theirs from `ringlink_host` with the halves themselves. The impls are `ringlink_host`'s, shared with the Unix sockets of `ringlink-unix`.

use crate::Stream;

ringlink_host::impl_embedded_io!(read_write: Stream, |this| this);
