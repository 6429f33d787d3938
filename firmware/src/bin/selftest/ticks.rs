//! Many producers, one ring: the SysTick handler and thread mode both send typed,
//! framed messages (postcard) into one `static` [`SharedProducer`] while thread
//! mode also consumes them and checks every one.
//!
//! - **SysTick** (an interrupt: it must not wait) sends one [`Sample`] per tick.
//!   When the ring is full it *drops* that sample and counts the drop; every sample
//!   carries the drop count so far, so the consumer can account for every gap.
//! - **Thread mode** sends its own stream and *retries* when the ring is full: that
//!   stream must arrive complete. SysTick preempts these sends at random points,
//!   including between a reservation and its publication.
//! - The consumer checks stream, sequence number, payload and CRC of every message,
//!   and stalls now and then until the ring has overflowed, to force backpressure.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use ringlink_core::frame::ring::SendError;
use ringlink_core::frame::ring::{FrameConsumer, Received};
use ringlink_core::shared::SharedProducer;
use serde::{Deserialize, Serialize};

use crate::pattern::{crc32, payload};
use crate::{Failure, Fault};

/// Largest payload of a frame: a [`Sample`] with a full payload is 1 + 5 + 5 + 25 + 5 bytes.
const MAX_FRAME: usize = 48;
/// Payload bytes per sample, at most.
const MAX_PAYLOAD: usize = 24;
/// Ticks (samples produced by SysTick) in the test.
pub const TICKS: u32 = 5000;
/// The consumer stalls every this many ticks until the ring has overflowed.
const STALL_EVERY: u32 = 500;
/// Drops the consumer waits for during a stall.
const STALL_DROPS: u32 = 4;
/// Where the injected faults strike (away from the stalls at multiples of [`STALL_EVERY`]).
const FLIP_AT: u32 = 2345;
const SKIP_AT: u32 = 1666;
/// SysTick reload value: cycles of the core clock between ticks.
const RELOAD: u32 = 2_000;

/// The stream a sample belongs to.
const STREAM_TICK: u8 = 1;
const STREAM_THREAD: u8 = 2;

/// The one ring: 256 bytes hold only a handful of samples, so it fills up often.
static LOG: SharedProducer<256, MAX_FRAME> = SharedProducer::new();

/// Ticks so far: the next SysTick sequence number.
static TICK_SEQ: AtomicU32 = AtomicU32::new(0);
/// SysTick samples dropped because the ring was full.
static TICK_DROPS: AtomicU32 = AtomicU32::new(0);
/// Set by thread mode while it is inside a send.
static THREAD_SENDING: AtomicBool = AtomicBool::new(false);
/// Ticks that interrupted a thread-mode send.
static PREEMPTED_SENDS: AtomicU32 = AtomicU32::new(0);
/// The injected fault, for the handler.
static FAULT: AtomicU32 = AtomicU32::new(0);
/// Set once the injected bit flip is in the ring.
static FLIPPED: AtomicBool = AtomicBool::new(false);
/// Unexpected send errors in the handler (anything but `Full`).
static TICK_ERRORS: AtomicU32 = AtomicU32::new(0);

/// One typed message.
#[derive(Serialize, Deserialize)]
struct Sample {
    stream: u8,
    seq: u32,
    /// Samples of this stream dropped before this one was produced.
    dropped: u32,
    payload: heapless::Vec<u8, MAX_PAYLOAD>,
    /// CRC-32 of the fields above.
    crc: u32,
}

impl Sample {
    fn new(stream: u8, seq: u32, dropped: u32) -> Sample {
        let mut bytes = [0u8; MAX_PAYLOAD];
        let len = payload(stream, seq, &mut bytes);
        let mut sample = Sample {
            stream,
            seq,
            dropped,
            payload: heapless::Vec::from_slice(&bytes[..len]).unwrap_or_default(),
            crc: 0,
        };
        sample.crc = sample.checksum();
        sample
    }

    fn checksum(&self) -> u32 {
        crc32(&[
            &[self.stream],
            &self.seq.to_le_bytes(),
            &self.dropped.to_le_bytes(),
            &self.payload,
        ])
    }
}

#[cortex_m_rt::exception]
fn SysTick() {
    let mut seq = TICK_SEQ.load(Ordering::Relaxed);
    if seq >= TICKS {
        return;
    }
    if THREAD_SENDING.load(Ordering::Relaxed) {
        PREEMPTED_SENDS.fetch_add(1, Ordering::Relaxed);
    }
    let fault = FAULT.load(Ordering::Relaxed);
    if fault == Fault::SkipSeq as u32 && seq == SKIP_AT {
        // Injected fault: a sample vanishes without being counted as dropped.
        seq += 1;
    }
    TICK_SEQ.store(seq + 1, Ordering::Relaxed);
    let drops = TICK_DROPS.load(Ordering::Relaxed);
    let sample = Sample::new(STREAM_TICK, seq, drops);
    let flip = fault == Fault::FlipBit as u32 && seq >= FLIP_AT && !FLIPPED.load(Ordering::Relaxed);
    let sent = if flip {
        // Injected fault: one bit of a frame flips inside the ring (the first
        // frame from FLIP_AT on that is not dropped).
        let mut buf = [0u8; MAX_FRAME];
        match postcard::to_slice(&sample, &mut buf) {
            Ok(bytes) => {
                let len = bytes.len();
                LOG.send_with(len, |frame| {
                    frame.copy_from_slice(&buf[..len]);
                    frame[len / 2] ^= 0x10;
                })
            }
            Err(_) => Err(SendError::TooLarge {
                len: MAX_FRAME + 1,
                max: MAX_FRAME,
            }),
        }
    } else {
        LOG.send_msg(&sample)
    };
    match sent {
        Ok(()) => {
            if flip {
                FLIPPED.store(true, Ordering::Relaxed);
            }
        }
        Err(SendError::Full { .. }) => {
            TICK_DROPS.store(drops + 1, Ordering::Relaxed);
        }
        Err(_) => {
            TICK_ERRORS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Receives and checks one message: `Ok(false)` when no whole frame is there.
fn receive<'a>(
    rx: &mut FrameConsumer<ringlink_core::ring::Consumer<'a>, MAX_FRAME>,
    ticks: &mut Expect,
    thread: &mut Expect,
) -> Result<bool, Failure> {
    match rx.recv_msg::<Sample>() {
        Ok(Received::Frame(s)) if s.stream == STREAM_TICK => ticks.check(&s, true)?,
        Ok(Received::Frame(s)) if s.stream == STREAM_THREAD => thread.check(&s, false)?,
        Ok(Received::Frame(s)) => {
            defmt::error!("unknown stream {=u8}", s.stream);
            return Err(Failure::Check("unknown stream"));
        }
        Ok(Received::Pending) => return Ok(false),
        Ok(Received::Finished) => return Err(Failure::Check("ring closed")),
        Err(e) => {
            defmt::error!("receive failed: {}", e);
            return Err(Failure::Check("a frame did not decode"));
        }
    }
    Ok(true)
}

/// What the test measured.
pub struct Report {
    /// SysTick samples produced (ticks).
    pub ticks: u32,
    /// SysTick samples received and checked.
    pub tick_received: u32,
    /// SysTick samples dropped on a full ring (all accounted for by the consumer).
    pub tick_drops: u32,
    /// Thread-mode samples sent, received and checked.
    pub thread_sent: u32,
    /// Thread-mode sends refused on a full ring and retried.
    pub thread_retries: u32,
    /// Consumer stalls that forced the ring to overflow.
    pub stalls: u32,
    /// Ticks that interrupted a thread-mode send.
    pub preempted_sends: u32,
}

/// The consumer's view of one stream.
struct Expect {
    stream: u8,
    /// Next sequence number not yet seen.
    next: u32,
    received: u32,
}

impl Expect {
    /// Checks one message; `lossy` streams may skip numbers they counted as dropped.
    fn check(&mut self, s: &Sample, lossy: bool) -> Result<(), Failure> {
        if s.crc != s.checksum() {
            defmt::error!("stream {=u8} seq {=u32}: bad CRC", s.stream, s.seq);
            return Err(Failure::Check("CRC mismatch"));
        }
        let mut bytes = [0u8; MAX_PAYLOAD];
        let len = payload(s.stream, s.seq, &mut bytes);
        if s.payload.as_slice() != &bytes[..len] {
            return Err(Failure::Check(
                "payload differs from the one of its sequence number",
            ));
        }
        let in_order = if lossy {
            s.seq >= self.next
        } else {
            s.seq == self.next
        };
        // Every sample not received before this one must have been counted as dropped.
        let accounted = !lossy || s.dropped == s.seq - self.received;
        if !in_order || !accounted {
            defmt::error!(
                "stream {=u8}: got seq {=u32} (dropped {=u32}), expected seq {=u32} after {=u32} received",
                self.stream,
                s.seq,
                s.dropped,
                self.next,
                self.received
            );
            return Err(Failure::Check("sequence gap not accounted for by drops"));
        }
        self.next = s.seq + 1;
        self.received += 1;
        Ok(())
    }
}

/// Runs the test: SysTick at [`RELOAD`] cycles for [`TICKS`] ticks.
pub fn run(mut syst: SYST, fault: Fault) -> Result<Report, Failure> {
    FAULT.store(fault as u32, Ordering::Relaxed);
    let consumer = LOG
        .take_consumer()
        .ok_or(Failure::Setup("consumer taken twice"))?;
    let mut rx = FrameConsumer::<_, MAX_FRAME>::new(consumer);
    let mut ticks = Expect {
        stream: STREAM_TICK,
        next: 0,
        received: 0,
    };
    let mut thread = Expect {
        stream: STREAM_THREAD,
        next: 0,
        received: 0,
    };
    let mut thread_seq = 0u32;
    let mut thread_retries = 0u32;
    let mut stalls = 0u32;
    let mut next_stall = STALL_EVERY;

    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();

    let mut pending_thread: Option<Sample> = None;
    let mut stalling_until: Option<u32> = None;
    loop {
        let ticked = TICK_SEQ.load(Ordering::Relaxed);
        if ticked >= TICKS && stalling_until.is_none() {
            break;
        }
        // Thread mode produces as fast as it consumes; a refused sample is retried.
        let sample = pending_thread.take().unwrap_or_else(|| {
            thread_seq += 1;
            Sample::new(STREAM_THREAD, thread_seq - 1, 0)
        });
        THREAD_SENDING.store(true, Ordering::Relaxed);
        let sent = LOG.send_msg(&sample);
        THREAD_SENDING.store(false, Ordering::Relaxed);
        match sent {
            Ok(()) => {}
            Err(SendError::Full { .. }) => {
                thread_retries += 1;
                pending_thread = Some(sample);
            }
            Err(e) => {
                defmt::error!("thread send failed: {}", e);
                return Err(Failure::Check("thread-mode send failed"));
            }
        }

        // Now and then, stop consuming until SysTick has overflowed the ring a few
        // times; thread mode retries once per tick meanwhile.
        if let Some(until) = stalling_until {
            if TICK_DROPS.load(Ordering::Relaxed) < until && ticked < TICKS {
                cortex_m::asm::wfi();
                continue;
            }
            stalling_until = None;
        } else if ticked >= next_stall {
            next_stall += STALL_EVERY;
            stalls += 1;
            stalling_until = Some(TICK_DROPS.load(Ordering::Relaxed) + STALL_DROPS);
            continue;
        }
        while receive(&mut rx, &mut ticks, &mut thread)? {}
    }
    syst.disable_interrupt();
    syst.disable_counter();

    // Deliver the thread's last sample and drain the ring.
    loop {
        if let Some(sample) = pending_thread.take() {
            match LOG.send_msg(&sample) {
                Ok(()) => {}
                Err(SendError::Full { .. }) => {
                    thread_retries += 1;
                    pending_thread = Some(sample);
                }
                Err(_) => return Err(Failure::Check("thread-mode send failed")),
            }
        }
        while receive(&mut rx, &mut ticks, &mut thread)? {}
        if pending_thread.is_none() {
            break;
        }
    }

    let produced = TICK_SEQ.load(Ordering::Relaxed);
    let drops = TICK_DROPS.load(Ordering::Relaxed);
    if TICK_ERRORS.load(Ordering::Relaxed) != 0 {
        return Err(Failure::Check(
            "SysTick send failed other than on a full ring",
        ));
    }
    if ticks.received + drops != produced {
        defmt::error!(
            "SysTick: {=u32} received + {=u32} dropped != {=u32} produced",
            ticks.received,
            drops,
            produced
        );
        return Err(Failure::Check("SysTick samples lost without being counted"));
    }
    if thread.received != thread_seq {
        return Err(Failure::Check("thread-mode samples lost"));
    }
    if drops == 0 || thread_retries == 0 {
        return Err(Failure::Check(
            "the ring never filled up: backpressure untested",
        ));
    }
    Ok(Report {
        ticks: produced,
        tick_received: ticks.received,
        tick_drops: drops,
        thread_sent: thread_seq,
        thread_retries,
        stalls,
        preempted_sends: PREEMPTED_SENDS.load(Ordering::Relaxed),
    })
}
