//! ringlink over Unix domain sockets.
//!
//! Not implemented yet: this crate only reserves its place in the workspace.
#![cfg(unix)]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
