//! ringlink-core's async API on a Cortex-M3 (QEMU `lm3s6965evb`), on embassy's
//! thread-mode executor, which sleeps (`WFE`) whenever no task is ready.
//!
//! - **Interrupt to task**: the SysTick handler sends typed samples (sequence number,
//!   drop count, payload, CRC-32) through a `static` [`SharedProducer`]; a task awaits
//!   them with an async [`FrameConsumer`] and checks every one. The task is polled
//!   only when a send woke it: the polls are counted and bounded.
//! - **Task to task, both ways**: two tasks move byte streams through a `static`
//!   async [`Channel`] with `embedded_io_async` (every byte checked against the
//!   generator that made it), then typed request/reply frames with the async
//!   `FrameWriter` / `FrameReader`.
//!
//! Verdict by semihosting exit status: `0` passed, `1` a check failed, `101` a panic.
//! `fault=<name>` on the semihosting command line injects a fault ([`Fault`]); the
//! run must then fail.
#![no_std]
#![no_main]

#[path = "../selftest/pattern.rs"]
mod pattern;

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use defmt_semihosting as _;
use embassy_executor::Spawner;
use embedded_io_async::{Read, Write};
use ringlink_core::SharedProducer;
use ringlink_core::asynch::{Channel, Consumer, Endpoint, FrameConsumer, FrameReader, FrameWriter};
use serde::{Deserialize, Serialize};

use pattern::{Xorshift, crc32, payload};

/// Exit status of a run whose checks failed.
const EXIT_CHECK_FAILED: i32 = 1;
/// Exit status of a run that panicked.
const EXIT_PANIC: i32 = 101;

/// Samples SysTick produces.
const TICKS: u32 = 3000;
/// SysTick reload value: core clock cycles between ticks.
const RELOAD: u32 = 4_000;
/// Largest sample frame, and payload bytes per sample.
const MAX_FRAME: usize = 48;
const MAX_PAYLOAD: usize = 24;
/// Bytes each side of the channel sends; typed requests after them.
const STREAM_BYTES: usize = 24_000;
const REQUESTS: u32 = 300;
/// Where the injected faults strike.
const FLIP_AT: u32 = 1234;
const SKIP_AT: u32 = 777;
const DROP_AT: usize = 9_999;

/// A fault injected into a data path to prove that the checks catch it.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
#[repr(u32)]
enum Fault {
    None = 0,
    /// SysTick flips a bit of one sample after computing its CRC.
    FlipBit = 1,
    /// SysTick skips a sequence number without counting a drop.
    SkipSeq = 2,
    /// Channel task B loses one byte of A's stream.
    DropByte = 3,
}

impl Fault {
    fn from_command_line() -> Fault {
        let Ok(args) = semihosting::experimental::env::args::<128>() else {
            return Fault::None;
        };
        let mut fault = Fault::None;
        for arg in &args {
            fault = match arg {
                Ok("fault=flip-bit") => Fault::FlipBit,
                Ok("fault=skip-seq") => Fault::SkipSeq,
                Ok("fault=drop-byte") => Fault::DropByte,
                Ok(other) if other.starts_with("fault=") => fail("unknown fault"),
                _ => continue,
            };
        }
        fault
    }
}

static FAULT: AtomicU32 = AtomicU32::new(0);

fn fault() -> Fault {
    match FAULT.load(Ordering::Relaxed) {
        1 => Fault::FlipBit,
        2 => Fault::SkipSeq,
        3 => Fault::DropByte,
        _ => Fault::None,
    }
}

/// Samples from SysTick to the sample task.
static SAMPLES: SharedProducer<256, MAX_FRAME> = SharedProducer::new();
/// The two channel tasks' channel.
static CHANNEL: Channel<64> = Channel::new();

/// The next SysTick sequence number, and the samples it dropped on a full ring.
static TICK_SEQ: AtomicU32 = AtomicU32::new(0);
static TICK_DROPS: AtomicU32 = AtomicU32::new(0);
/// Tasks finished, and what they measured.
static DONE: AtomicU32 = AtomicU32::new(0);
static SAMPLE_POLLS: AtomicU32 = AtomicU32::new(0);
static SAMPLES_RECEIVED: AtomicU32 = AtomicU32::new(0);

/// One typed sample.
#[derive(Serialize, Deserialize)]
struct Sample {
    seq: u32,
    /// Samples dropped before this one.
    dropped: u32,
    payload: heapless::Vec<u8, MAX_PAYLOAD>,
    /// CRC-32 of the fields above.
    crc: u32,
}

fn sample_crc(seq: u32, dropped: u32, payload: &[u8]) -> u32 {
    crc32(&[&seq.to_le_bytes(), &dropped.to_le_bytes(), payload])
}

#[cortex_m_rt::exception]
fn SysTick() {
    let mut seq = TICK_SEQ.load(Ordering::Relaxed);
    if seq >= TICKS {
        return;
    }
    let fault = fault();
    if fault == Fault::SkipSeq && seq == SKIP_AT {
        seq += 1; // injected: a sample vanishes without being counted
    }
    TICK_SEQ.store(seq + 1, Ordering::Relaxed);
    let dropped = TICK_DROPS.load(Ordering::Relaxed);
    let mut bytes = [0u8; MAX_PAYLOAD];
    let len = payload(1, seq, &mut bytes);
    let body = bytes.get(..len).unwrap_or(&[]);
    let mut sample = Sample {
        seq,
        dropped,
        payload: heapless::Vec::from_slice(body).unwrap_or_default(),
        crc: sample_crc(seq, dropped, body),
    };
    if fault == Fault::FlipBit && seq == FLIP_AT {
        sample.seq ^= 1 << 3; // injected: a bit flips after the CRC was taken
    }
    match SAMPLES.send_msg(&sample) {
        Ok(()) => {}
        Err(ringlink_core::frame::ring::SendError::Full { .. }) => {
            TICK_DROPS.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => fail("SysTick send"),
    }
    if seq + 1 >= TICKS {
        SAMPLES.close();
    }
}

/// Awaits every sample SysTick sends and checks it.
#[embassy_executor::task]
async fn samples(consumer: Consumer<'static>) {
    let mut frames = FrameConsumer::<MAX_FRAME>::new(consumer);
    let mut received = 0u32;
    loop {
        let mut next = pin!(frames.recv_msg::<Sample>());
        let sample = counted(&SAMPLE_POLLS, next.as_mut()).await;
        let sample = match sample {
            Ok(Some(sample)) => sample,
            Ok(None) => break,
            Err(e) => {
                defmt::error!("sample {=u32}: {}", received, e);
                fail("sample frame")
            }
        };
        if sample.crc != sample_crc(sample.seq, sample.dropped, &sample.payload) {
            defmt::error!("sample {=u32}: CRC mismatch", sample.seq);
            fail("sample CRC");
        }
        if sample.seq != received + sample.dropped {
            defmt::error!(
                "sample {=u32} after {=u32} received and {=u32} dropped",
                sample.seq,
                received,
                sample.dropped
            );
            fail("sample sequence");
        }
        let mut expect = [0u8; MAX_PAYLOAD];
        let len = payload(1, sample.seq, &mut expect);
        if expect.get(..len) != Some(&sample.payload[..]) {
            fail("sample payload");
        }
        received += 1;
    }
    if received + TICK_DROPS.load(Ordering::Relaxed) != TICKS {
        fail("samples missing at the end");
    }
    SAMPLES_RECEIVED.store(received, Ordering::Relaxed);
    finished();
}

/// Polls `future`, counting every poll in `polls`.
async fn counted<F: Future + Unpin>(polls: &AtomicU32, mut future: F) -> F::Output {
    poll_fn(|cx| {
        polls.fetch_add(1, Ordering::Relaxed);
        core::pin::Pin::new(&mut future).poll(cx)
    })
    .await
}

/// A typed request and its reply over the channel.
#[derive(Serialize, Deserialize)]
struct Request {
    seq: u32,
    crc: u32,
}

/// Task A: sends its byte stream in chunks, reads back as many bytes of B's stream
/// after each; then sends typed requests and checks the replies.
#[embassy_executor::task]
async fn side_a(mut ep: Endpoint<'static>) {
    let (mut mine, mut theirs, mut chunks) =
        (Xorshift::new(0xA), Xorshift::new(0xB), Xorshift::new(7));
    let mut sent = 0;
    let mut buf = [0u8; 48];
    while sent < STREAM_BYTES {
        let k = chunks.between(1, buf.len()).min(STREAM_BYTES - sent);
        let chunk = buf.get_mut(..k).unwrap_or(&mut []);
        chunk.iter_mut().for_each(|b| *b = mine.next_u8());
        if ep.write_all(chunk).await.is_err() {
            fail("A: write");
        }
        let mut got = 0;
        while got < k {
            let n = match ep.read(buf.get_mut(..k - got).unwrap_or(&mut [])).await {
                Ok(0) | Err(_) => fail("A: read"),
                Ok(n) => n,
            };
            check_bytes(
                &mut theirs,
                buf.get(..n).unwrap_or(&[]),
                sent + got,
                "B -> A",
            );
            got += n;
        }
        sent += k;
    }
    for seq in 0..REQUESTS {
        let request = Request {
            seq,
            crc: crc32(&[&seq.to_le_bytes()]),
        };
        if FrameWriter::<_, 16>::new(&mut ep)
            .send(&request)
            .await
            .is_err()
        {
            fail("A: send request");
        }
        match FrameReader::<_, 16>::new(&mut ep).recv::<Request>().await {
            Ok(Some(reply)) if reply.seq == seq && reply.crc == !request.crc => {}
            _ => fail("A: reply"),
        }
    }
    drop(ep); // B sees the end of the stream
    finished();
}

/// Task B: reads A's stream and answers every byte with one of its own; then
/// answers typed requests until A is gone.
#[embassy_executor::task]
async fn side_b(mut ep: Endpoint<'static>) {
    let (mut theirs, mut mine) = (Xorshift::new(0xA), Xorshift::new(0xB));
    let mut received = 0;
    let mut buf = [0u8; 64];
    let mut out = [0u8; 64];
    let drop_byte = fault() == Fault::DropByte;
    while received < STREAM_BYTES {
        let read = match ep.read(&mut buf).await {
            Ok(0) | Err(_) => fail("B: read"),
            Ok(n) => n,
        };
        let mut n = read;
        let mut data = buf.get(..n).unwrap_or(&[]);
        if drop_byte && (received..received + n).contains(&DROP_AT) {
            // Injected: the byte at DROP_AT is lost.
            let at = DROP_AT - received;
            buf.copy_within(at + 1..n, at);
            n -= 1;
            received += 1;
            data = buf.get(..n).unwrap_or(&[]);
        }
        check_bytes(&mut theirs, data, received, "A -> B");
        received += n;
        // One byte back for every byte read (a lost one included): A never waits.
        let reply = out.get_mut(..read).unwrap_or(&mut []);
        reply.iter_mut().for_each(|b| *b = mine.next_u8());
        if ep.write_all(reply).await.is_err() {
            fail("B: write");
        }
    }
    let mut requests = 0;
    loop {
        let request = match FrameReader::<_, 16>::new(&mut ep).recv::<Request>().await {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(_) => fail("B: request"),
        };
        if request.seq != requests || request.crc != crc32(&[&request.seq.to_le_bytes()]) {
            fail("B: request contents");
        }
        let reply = Request {
            seq: request.seq,
            crc: !request.crc,
        };
        if FrameWriter::<_, 16>::new(&mut ep)
            .send(&reply)
            .await
            .is_err()
        {
            fail("B: send reply");
        }
        requests += 1;
    }
    if requests != REQUESTS {
        fail("B: requests missing");
    }
    finished();
}

/// Checks `data` against the generator of the stream it belongs to.
fn check_bytes(expect: &mut Xorshift, data: &[u8], offset: usize, stream: &str) {
    for (i, &b) in data.iter().enumerate() {
        if b != expect.next_u8() {
            defmt::error!("{=str}: wrong byte at offset {=usize}", stream, offset + i);
            fail("channel byte stream");
        }
    }
}

/// One task is done; the last one reports and ends the run.
fn finished() {
    if DONE.fetch_add(1, Ordering::Relaxed) + 1 < 3 {
        return;
    }
    let received = SAMPLES_RECEIVED.load(Ordering::Relaxed);
    let polls = SAMPLE_POLLS.load(Ordering::Relaxed);
    defmt::info!(
        "SysTick -> SharedProducer -> awaiting task: {=u32} samples checked, {=u32} dropped on a full ring, {=u32} polls",
        received,
        TICK_DROPS.load(Ordering::Relaxed),
        polls
    );
    // Woken only by sends: at most two polls per sample (one that found it pending,
    // one after the wake-up), plus the end of the stream.
    if polls > 2 * received + 2 {
        fail("the sample task was polled more than its wake-ups explain");
    }
    defmt::info!(
        "async channel: {=usize} bytes each way checked, {=u32} typed requests answered",
        STREAM_BYTES,
        REQUESTS
    );
    defmt::info!("selftest-async passed");
    semihosting::process::exit(0)
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let fault = Fault::from_command_line();
    FAULT.store(fault as u32, Ordering::Relaxed);
    if fault != Fault::None {
        defmt::warn!("injecting fault {}", fault);
    }
    let (Some((a, b)), Some(consumer)) = (CHANNEL.split_static(), SAMPLES.take_async_consumer())
    else {
        fail("setup: split twice")
    };
    match (samples(consumer), side_a(a), side_b(b)) {
        (Ok(s), Ok(a), Ok(b)) => {
            spawner.spawn(s);
            spawner.spawn(a);
            spawner.spawn(b);
        }
        _ => fail("setup: spawn"),
    }
    let Some(mut peripherals) = cortex_m::Peripherals::take() else {
        fail("setup: core peripherals taken twice")
    };
    start_systick(&mut peripherals.SYST);
}

fn start_systick(syst: &mut SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_counter();
    syst.enable_interrupt();
}

fn fail(what: &str) -> ! {
    defmt::error!("FAIL {=str}", what);
    semihosting::process::exit(EXIT_CHECK_FAILED)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    semihosting::process::exit(EXIT_PANIC)
}
