//! `ringlink-core`: `no_std`, allocation-free building blocks of ringlink.
//!
//! - [`ring`]: a lock-free single-producer single-consumer byte ring with zero-copy
//!   grants, whose `#[repr(C)]` layout can live in a `static` or in shared memory.
//! - [`channel`]: two rings make a duplex [`Channel`](channel::Channel) whose
//!   endpoints implement `embedded_io` (and `std::io` with the `std` feature).
//! - [`frame`]: length-prefixed frames, typed messages (postcard) and COBS frames.
//! - [`shared`]: many writers (interrupt handlers, tasks) putting whole frames into
//!   one ring through a critical section.
//!
//! ```
//! use ringlink_core::ring::Ring;
//!
//! static RING: Ring<256> = Ring::new();
//! let (mut producer, mut consumer) = RING.split_static().unwrap();
//! producer.write(b"ping").unwrap();
//! let mut buf = [0u8; 4];
//! assert_eq!(consumer.read(&mut buf).unwrap(), 4);
//! ```
#![cfg_attr(not(any(test, feature = "std", loom)), no_std)]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "std")]
extern crate std;

mod sync;

pub mod channel;
pub mod frame;
pub mod ring;
pub mod shared;

pub use channel::{Channel, Endpoint};
pub use ring::{Consumer, Producer, Ring};
