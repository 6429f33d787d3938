//! Footprint of async channel + frames on embassy: the `size-executor` image plus
//! two tasks exchanging length-prefixed frames (no postcard) through the
//! `embedded_io_async` endpoints of a `static` async channel. `size-async` minus
//! `size-executor` is what ringlink's async layer costs.
#![no_std]
#![no_main]

use core::future::poll_fn;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Poll;

// The critical-section implementation (single core: interrupts off).
use cortex_m as _;
use embassy_executor::Spawner;
use ringlink_core::asynch::{Channel, Endpoint, FrameReader, FrameWriter};

static FLAG: AtomicBool = AtomicBool::new(false);
static CHANNEL: Channel<64> = Channel::new();

#[cortex_m_rt::exception]
fn SysTick() {
    FLAG.store(true, Ordering::Relaxed);
}

#[embassy_executor::task]
async fn idle() {
    loop {
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

#[embassy_executor::task]
async fn writer(endpoint: Endpoint<'static>) {
    let mut tx = FrameWriter::<_, 32>::new(endpoint);
    loop {
        // black_box keeps the data opaque so the frame code is really linked in.
        let msg = core::hint::black_box([7u8; 24]);
        let len = core::hint::black_box(20);
        let _ = tx.write_frame(&msg[..len]).await;
    }
}

#[embassy_executor::task]
async fn reader(endpoint: Endpoint<'static>) {
    let mut rx = FrameReader::<_, 32>::new(endpoint);
    while let Ok(Some(frame)) = rx.read_frame().await {
        core::hint::black_box(frame);
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    if let Ok(token) = idle() {
        spawner.spawn(token);
    }
    let Some((a, b)) = CHANNEL.split_static() else {
        return;
    };
    if let (Ok(w), Ok(r)) = (writer(a), reader(b)) {
        spawner.spawn(w);
        spawner.spawn(r);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
