//! Footprint baseline: cortex-m-rt's vector table and reset code, and nothing of ringlink.
#![no_std]
#![no_main]

use cortex_m_rt::entry;

#[entry]
fn main() -> ! {
    loop {
        core::hint::black_box(0u32);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
