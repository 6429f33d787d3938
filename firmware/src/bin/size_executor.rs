//! Footprint of embassy's thread-mode executor alone: the tasks of `size-async`
//! (an idle task and two more, awaiting futures that an interrupt completes) without
//! ringlink's channel and frames: the baseline of `size-async`.
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

/// Stands in for `size-async`'s frame writer and reader: the same task shape.
#[embassy_executor::task(pool_size = 2)]
async fn worker(id: u8) {
    loop {
        poll_fn(|cx| {
            if core::hint::black_box(FLAG.load(Ordering::Relaxed)) {
                Poll::Ready(core::hint::black_box(id))
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
    for id in 0..2 {
        if let Ok(token) = worker(id) {
            spawner.spawn(token);
        }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
