//! ringlink: local inter-process communication from a microcontroller to a desktop.
//!
//! This facade re-exports the `no_std` core ([`core`]) and the host adapter of the
//! operating system it is built for (`unix` on Unix, `windows` on Windows).
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

pub use ringlink_core as core;

#[cfg(unix)]
pub use ringlink_unix as unix;

#[cfg(windows)]
pub use ringlink_windows as windows;
