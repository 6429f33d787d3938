//! Footprint of the ring alone: a `static` ring split once, bytes written and read back.
#![no_std]
#![no_main]

// The critical-section implementation (single core: interrupts off).
use cortex_m as _;
use cortex_m_rt::entry;
use ringlink_core::ring::Ring;

static RING: Ring<256> = Ring::new();

#[entry]
fn main() -> ! {
    let Some((mut tx, mut rx)) = RING.split_static() else {
        panic!("split twice")
    };
    let mut buf = [0u8; 32];
    loop {
        // black_box keeps the data opaque so the ring code is really linked in.
        let msg = core::hint::black_box([7u8; 24]);
        let _ = tx.write(&msg);
        let _ = rx.read(&mut buf);
        core::hint::black_box(&buf);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
