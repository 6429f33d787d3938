//! Footprint of ring + channel + frames, without postcard: length-prefixed frames
//! written and read over the embedded-io endpoints of a `static` channel.
#![no_std]
#![no_main]

// The critical-section implementation (single core: interrupts off).
use cortex_m as _;
use cortex_m_rt::entry;
use ringlink_core::channel::Channel;
use ringlink_core::frame::{FrameReader, FrameWriter};

static CHANNEL: Channel<64> = Channel::new();

#[entry]
fn main() -> ! {
    let Some((a, b)) = CHANNEL.split_static() else {
        panic!("split twice")
    };
    let mut tx = FrameWriter::<_, 32>::new(a);
    let mut rx = FrameReader::<_, 32>::new(b);
    loop {
        // black_box keeps the data opaque so the frame code is really linked in.
        let msg = core::hint::black_box([7u8; 24]);
        let len = core::hint::black_box(20);
        let _ = tx.write_frame(&msg[..len]);
        if let Ok(Some(frame)) = rx.read_frame() {
            core::hint::black_box(frame);
        }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
