//! Footprint of many-writer frames: a `static` SharedProducer written from SysTick
//! and thread mode, read by a FrameConsumer (no postcard).
#![no_std]
#![no_main]

// The critical-section implementation (single core: interrupts off).
use cortex_m as _;
use cortex_m_rt::{entry, exception};
use ringlink_core::frame::ring::{FrameConsumer, Received};
use ringlink_core::shared::SharedProducer;

static LOG: SharedProducer<256, 32> = SharedProducer::new();

#[exception]
fn SysTick() {
    // black_box keeps the data opaque so the frame code is really linked in.
    let _ = LOG.send(&core::hint::black_box([1u8; 12]));
}

#[entry]
fn main() -> ! {
    let Some(consumer) = LOG.take_consumer() else {
        panic!("consumer taken twice")
    };
    let mut rx = FrameConsumer::<_, 32>::new(consumer);
    loop {
        let _ = LOG.send(&core::hint::black_box([2u8; 20]));
        if let Ok(Received::Frame(len)) = rx.recv_with(|frame| frame.len()) {
            core::hint::black_box(len);
        }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
