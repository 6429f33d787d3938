//! ringlink-core self-test on a Cortex-M3 (QEMU `lm3s6965evb`).
//!
//! Runs each test, logs with defmt over semihosting (decoded on the host by
//! `defmt-print`) and reports the verdict as the semihosting exit status:
//! `0` passed, `1` a check failed, `101` a panic.
//!
//! `fault=<name>` on the semihosting command line (QEMU `-append`) injects a
//! fault into a data path; the run must then fail. See [`Fault`].
#![no_std]
#![no_main]

mod pattern;
mod tasks;
mod ticks;

// The critical-section implementation (single core: interrupts off).
use cortex_m as _;
use cortex_m_rt::entry;
use defmt_semihosting as _;
use ringlink_core::channel::ChannelError;

/// Exit status of a run whose checks failed.
const EXIT_CHECK_FAILED: i32 = 1;
/// Exit status of a run that panicked.
const EXIT_PANIC: i32 = 101;

/// A fault injected into a data path to prove that the checks catch it.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum Fault {
    /// No fault: the run must pass.
    None,
    /// The SysTick producer flips a bit of one frame after writing it into the ring.
    FlipBit,
    /// The SysTick producer skips a sequence number without counting a drop.
    SkipSeq,
    /// Channel task B loses one byte of A's stream.
    DropByte,
}

impl Fault {
    /// The fault named by `fault=<name>` on the semihosting command line.
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
                Ok(other) if other.starts_with("fault=") => {
                    defmt::error!("unknown fault {=str}", other);
                    semihosting::process::exit(EXIT_CHECK_FAILED)
                }
                _ => continue,
            };
        }
        fault
    }
}

/// Why a test failed.
#[derive(Debug, defmt::Format)]
pub enum Failure {
    /// A test could not be set up.
    Setup(&'static str),
    /// A channel operation failed.
    Channel(ChannelError),
    /// A byte stream differed from the expected one at this offset.
    StreamMismatch {
        /// Offset of the first wrong byte.
        offset: usize,
    },
    /// Another check failed.
    Check(&'static str),
}

#[entry]
fn main() -> ! {
    let fault = Fault::from_command_line();
    if fault != Fault::None {
        defmt::warn!("injecting fault {}", fault);
    }
    if pattern::crc32(&[b"123456789"]) != 0xcbf4_3926 {
        fail("crc32 self-check", Failure::Check("crc32 of \"123456789\""));
    }

    let Some(peripherals) = cortex_m::Peripherals::take() else {
        fail("setup", Failure::Setup("core peripherals taken twice"))
    };

    match ticks::run(peripherals.SYST, fault) {
        Ok(r) => defmt::info!(
            "SysTick + thread mode -> SharedProducer -> FrameConsumer: {=u32} ticks: {=u32} samples checked, {=u32} dropped on a full ring (all accounted for); thread mode: {=u32} samples checked, {=u32} sends retried on a full ring; {=u32} stalls; {=u32} ticks preempted a thread-mode send",
            r.ticks,
            r.tick_received,
            r.tick_drops,
            r.thread_sent,
            r.thread_retries,
            r.stalls,
            r.preempted_sends
        ),
        Err(e) => fail("SysTick frames", e),
    }

    match tasks::run(fault) {
        Ok(r) => defmt::info!(
            "channel tasks: A -> B {=usize} bytes, B -> A {=usize} bytes checked; {=u32} typed requests answered, {=u32} oversized frame skipped in sync; A waited (ran B) {=u32} times",
            r.a_to_b,
            r.b_to_a,
            r.requests,
            r.skipped,
            r.waits
        ),
        Err(e) => fail("channel tasks", e),
    }

    defmt::info!("selftest passed");
    semihosting::process::exit(0)
}

fn fail(test: &str, failure: Failure) -> ! {
    defmt::error!("FAIL {=str}: {}", test, failure);
    semihosting::process::exit(EXIT_CHECK_FAILED)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    semihosting::process::exit(EXIT_PANIC)
}
