//! `ringlink-core`: `no_std`, allocation-free building blocks of ringlink.
//!
//! - [`ring`]: a lock-free single-producer single-consumer byte ring with zero-copy
//!   grants, whose `#[repr(C)]` layout can live in a `static` or in shared memory.
//! - [`channel`]: two rings make a duplex [`Channel`] whose
//!   endpoints implement `embedded_io` (and `std::io` with the `std` feature).
//! - [`frame`]: length-prefixed frames with a compile-time maximum size
//!   ([`FrameWriter`] / [`FrameReader`] over any `embedded_io` stream,
//!   [`frame::ring`] straight in and out of ring grants, the sans-IO
//!   [`FrameDecoder`](frame::FrameDecoder) and header functions for hosts), typed
//!   messages (postcard + serde) and [`frame::cobs`] frames for lossy byte links.
//! - [`shared`]: [`SharedProducer`], many writers (interrupt handlers, tasks)
//!   putting whole frames into one ring; the critical section only reserves space.
//! - `asynch` (feature `async`): the same rings, channels and frames awaiting data
//!   and space (`embedded_io_async` endpoints), woken through `waker::WakerSlot`s.
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
//!
//! Typed frames between an interrupt handler and the main loop:
//!
//! ```
//! use ringlink_core::frame::ring::{FrameConsumer, Received};
//! use ringlink_core::SharedProducer;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! enum Event {
//!     Button(u8),
//!     Adc { channel: u8, value: u16 },
//! }
//!
//! static EVENTS: SharedProducer<512, 32> = SharedProducer::new();
//!
//! // In an interrupt handler (any number of them, any priority):
//! fn on_adc() {
//!     let _ = EVENTS.send_msg(&Event::Adc { channel: 2, value: 1017 });
//! }
//!
//! // In the main loop:
//! let mut events = FrameConsumer::<_, 32>::new(EVENTS.take_consumer().unwrap());
//! on_adc();
//! assert_eq!(
//!     events.recv_msg::<Event>().unwrap(),
//!     Received::Frame(Event::Adc { channel: 2, value: 1017 })
//! );
//! ```
//!
//! # Hosts and microcontrollers
//!
//! [`SharedProducer`] and the `async` wakers on targets without compare-and-swap take a
//! [`critical_section`], whose implementation the final program links exactly once:
//!
//! - **A host** (Linux, macOS, Windows, ...) enables the `std` feature, which brings
//!   `critical-section/std` (a process-wide mutex) along with `std::io` on endpoints:
//!   `ringlink-core = { version = "0.1", features = ["std"] }`. The `ringlink` facade
//!   does this for you.
//! - **A microcontroller** leaves `std` off and links the implementation of its target,
//!   for a single-core Cortex-M `cortex-m = { version = "0.7", features =
//!   ["critical-section-single-core"] }` (interrupts off while it is held), or its HAL's
//!   or RTOS's. Without one the link fails with an undefined
//!   `_critical_section_1_0_acquire`.
//!
//! A host program that must provide its own implementation depends on `ringlink-core`
//! without `std` (and loses only the `std::io` impls and `std::error::Error`).
#![cfg_attr(not(any(test, feature = "std", loom)), no_std)]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "std")]
extern crate std;

mod sync;

#[cfg(feature = "async")]
pub mod asynch;
pub mod channel;
pub mod frame;
pub mod ring;
pub mod shared;
pub mod volatile;
#[cfg(feature = "async")]
pub mod waker;

pub use channel::{Channel, Endpoint};
pub use frame::{FrameError, FrameReader, FrameWriter};
pub use ring::{Consumer, Producer, Ring};
#[cfg(not(loom))]
pub use shared::SharedProducer;
