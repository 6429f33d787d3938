//! ringlink over Windows named pipes.
//!
//! Not implemented yet: this crate only reserves its place in the workspace.
#![cfg(windows)]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
