//! Footprint of embassy's thread-mode executor alone: one task that awaits a
//! future completed by an interrupt, no ringlink code (the baseline of `size-async`).
#![no_std]
#![no_main]

use core::future::poll_fn;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Poll;

// The critical-section implementation (single core: interrupts off).
use cortex_m as _;
use embassy_executor::Spawner;

static FLAG: AtomicBool = AtomicBool::new(false);

#[cortex_m_rt::exception]
fn SysTick() {
    FLAG.store(true, Ordering::Relaxed);
}

#[embassy_executor::task]
async fn idle() {
    loop {
        // black_box keeps the loop opaque so the task is really there.
        poll_fn(|cx| {
            if core::hint::black_box(FLAG.swap(false, Ordering::Relaxed)) {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    if let Ok(token) = idle() {
        spawner.spawn(token);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
