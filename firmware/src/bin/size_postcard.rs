//! Footprint of ring + channel + frames + postcard: a typed message sent and
//! received over the embedded-io endpoints of a `static` channel.
#![no_std]
#![no_main]

// The critical-section implementation (single core: interrupts off).
use cortex_m as _;
use cortex_m_rt::entry;
use ringlink_core::channel::Channel;
use ringlink_core::frame::{FrameReader, FrameWriter};
use serde::{Deserialize, Serialize};

static CHANNEL: Channel<64> = Channel::new();

/// A typical small telemetry message.
#[derive(Serialize, Deserialize)]
struct Reading {
    sensor: u8,
    seq: u32,
    value: i16,
    samples: [u16; 4],
}

#[entry]
fn main() -> ! {
    let Some((a, b)) = CHANNEL.split_static() else {
        panic!("split twice")
    };
    let mut tx = FrameWriter::<_, 32>::new(a);
    let mut rx = FrameReader::<_, 32>::new(b);
    let mut seq = 0u32;
    loop {
        // black_box keeps the data opaque so the message code is really linked in.
        let reading = Reading {
            sensor: core::hint::black_box(3),
            seq,
            value: core::hint::black_box(-120),
            samples: core::hint::black_box([1, 2, 3, 4]),
        };
        seq = seq.wrapping_add(1);
        let _ = tx.send(&reading);
        if let Ok(Some(got)) = rx.recv::<Reading>() {
            core::hint::black_box(got.sensor);
            core::hint::black_box(got.samples);
        }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
