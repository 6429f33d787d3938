//! Two software tasks joined by a `static` [`Channel`]: task A runs in thread mode
//! and uses the blocking embedded-io calls; task B runs in the PendSV exception and
//! only ever calls what `ReadReady`/`WriteReady` promise will not block.
//!
//! A's wait strategy pends PendSV, so every time A would spin, B runs once: the
//! cooperative hand-over of a two-task system on one core.
//!
//! - Bytes: each side streams [`STREAM_LEN`] pseudo-random bytes to the other,
//!   in odd-sized pieces, and checks every byte it receives (full duplex: B's
//!   writes back up while A is still writing).
//! - Frames: A sends [`REQUESTS`] typed requests (postcard) with a blocking
//!   [`FrameWriter`] and reads each reply with a blocking [`FrameReader`]; B feeds
//!   what it reads into a [`FrameDecoder`] and answers. One request is larger than
//!   B accepts: B must report it as too large, skip it, and stay in sync.

use core::cell::RefCell;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SCB;
use critical_section::Mutex;
use embedded_io::{Read, ReadReady, Write, WriteReady};
use ringlink_core::channel::{Channel, Endpoint, Spin, WaitStrategy};
use ringlink_core::frame::{
    Decoded, FrameDecoder, FrameError, FrameReader, FrameWriter, MAX_HEADER_LEN, encode_len,
};
use serde::{Deserialize, Serialize};

use crate::pattern::Xorshift;
use crate::{Failure, Fault};

/// Bytes each task streams to the other.
pub const STREAM_LEN: usize = 6000;
const SEED_A: u32 = 0xa11c_e5ed;
const SEED_B: u32 = 0xb0b5_eed5;
/// Requests A sends in the frame phase.
pub const REQUESTS: u32 = 400;
/// The request that is too large for B.
const OVERSIZED_AT: u32 = 150;
/// Largest frame B accepts.
const B_MAX_FRAME: usize = 56;
/// Largest frame A sends or accepts.
const A_MAX_FRAME: usize = 64;
/// Task A panics (exit status 101) rather than hang if it waits this often.
const MAX_WAITS: u32 = 200_000;

/// Two rings of 64 bytes: small, so both directions fill up again and again.
static CHANNEL: Channel<64> = Channel::new();
/// Task B's state, reached by the PendSV handler.
static TASK_B: Mutex<RefCell<Option<TaskB>>> = Mutex::new(RefCell::new(None));
/// How often task A had to wait (each wait runs task B once).
static WAITS: AtomicU32 = AtomicU32::new(0);

/// A's wait strategy: run the peer task by pending PendSV.
struct RunTaskB;

impl WaitStrategy for RunTaskB {
    fn wait(&mut self) {
        let waits = WAITS.fetch_add(1, Ordering::Relaxed) + 1;
        assert!(waits < MAX_WAITS, "task B stopped making progress");
        SCB::set_pendsv();
        // PendSV outranks thread mode: it runs before the next instruction after these barriers.
        cortex_m::asm::dsb();
        cortex_m::asm::isb();
    }
}

/// A request of the frame phase.
#[derive(Serialize, Deserialize)]
struct Request {
    id: u32,
    values: heapless::Vec<u16, 16>,
}

/// B's answer to a frame.
#[derive(Serialize, Deserialize, PartialEq, Eq, defmt::Format)]
enum Reply {
    /// The sum of a request's values.
    Sum { id: u32, count: u8, sum: u32 },
    /// A frame of `len` bytes was larger than B accepts and was skipped.
    Skipped { len: u32 },
    /// A frame was not a valid request.
    Invalid,
}

/// Task B: checks A's stream and writes its own, then answers A's frames; never blocks.
struct TaskB {
    end: Endpoint<'static, Spin>,
    expect: Xorshift,
    received: usize,
    mismatches: usize,
    first_mismatch: Option<usize>,
    send: Xorshift,
    sent: usize,
    drop_one_byte: bool,
    decoder: FrameDecoder<B_MAX_FRAME>,
    /// The encoded reply frame being written, and how much of it is written.
    reply: heapless::Vec<u8, { B_MAX_FRAME + MAX_HEADER_LEN }>,
    reply_written: usize,
    /// Frames that arrived while a reply was still being written (A waits for
    /// each reply, so this stays 0).
    overlapping: u32,
}

impl TaskB {
    /// One turn: whatever can move without blocking.
    fn step(&mut self) {
        if self.received < STREAM_LEN || self.sent < STREAM_LEN {
            self.step_bytes();
        } else {
            self.step_frames();
        }
    }

    /// Answers the frames A sends, one reply at a time.
    fn step_frames(&mut self) {
        self.flush_reply();
        let mut buf = [0u8; 32];
        if !self.reply.is_empty() || self.end.read_ready() != Ok(true) {
            return;
        }
        let Ok(n) = self.end.read(&mut buf) else {
            return;
        };
        let mut input = &buf[..n];
        while !input.is_empty() {
            let (reply, rest) = match self.decoder.feed(input) {
                Decoded::NeedMore => break,
                Decoded::Frame { payload, rest } => {
                    let reply = match postcard::from_bytes::<Request>(payload) {
                        Ok(req) => Reply::Sum {
                            id: req.id,
                            count: req.values.len() as u8,
                            sum: req.values.iter().map(|&v| u32::from(v)).sum(),
                        },
                        Err(_) => Reply::Invalid,
                    };
                    (reply, rest)
                }
                Decoded::TooLarge { len, rest, .. } => (Reply::Skipped { len: len as u32 }, rest),
                Decoded::BadHeader { rest, .. } => (Reply::Invalid, rest),
            };
            input = rest;
            self.queue_reply(&reply);
        }
        self.flush_reply();
    }

    /// Encodes a reply frame (header + postcard) into the outgoing buffer.
    fn queue_reply(&mut self, reply: &Reply) {
        if !self.reply.is_empty() {
            self.overlapping += 1;
            return;
        }
        let mut body = [0u8; B_MAX_FRAME];
        let Ok(body) = postcard::to_slice(reply, &mut body) else {
            return;
        };
        let mut header = [0u8; MAX_HEADER_LEN];
        let n = encode_len(body.len() as u32, &mut header);
        let _ = self.reply.extend_from_slice(&header[..n]);
        let _ = self.reply.extend_from_slice(body);
        self.reply_written = 0;
    }

    /// Writes as much of the outgoing reply as the ring takes now.
    fn flush_reply(&mut self) {
        while self.reply_written < self.reply.len() && self.end.write_ready() == Ok(true) {
            match self.end.write(&self.reply[self.reply_written..]) {
                Ok(n) => self.reply_written += n,
                Err(_) => return,
            }
        }
        if self.reply_written == self.reply.len() {
            self.reply.clear();
            self.reply_written = 0;
        }
    }

    /// Checks A's byte stream and writes B's own.
    fn step_bytes(&mut self) {
        let mut buf = [0u8; 48];
        // `read_ready` promises that `read` returns at once.
        if self.end.read_ready() == Ok(true)
            && let Ok(mut n) = self.end.read(&mut buf)
        {
            if self.drop_one_byte && self.received <= 1000 && self.received + n > 1000 {
                // Injected fault: the byte at offset 1000 is lost in transit.
                let at = 1000 - self.received;
                buf.copy_within(at + 1..n, at);
                n -= 1;
                self.drop_one_byte = false;
            }
            for &byte in &buf[..n] {
                if byte != self.expect.next_u8() {
                    self.mismatches += 1;
                    self.first_mismatch.get_or_insert(self.received);
                }
                self.received += 1;
            }
        }
        if self.sent < STREAM_LEN && self.end.write_ready() == Ok(true) {
            let n = buf.len().min(STREAM_LEN - self.sent);
            let mut peek = self.send;
            for b in &mut buf[..n] {
                *b = peek.next_u8();
            }
            // `write_ready` promises that `write` returns at once, having taken >= 1 byte.
            if let Ok(taken) = self.end.write(&buf[..n]) {
                for _ in 0..taken {
                    self.send.next_u8();
                }
                self.sent += taken;
            }
        }
    }
}

#[cortex_m_rt::exception]
fn PendSV() {
    critical_section::with(|cs| {
        if let Some(task) = TASK_B.borrow_ref_mut(cs).as_mut() {
            task.step();
        }
    });
}

/// What the channel test measured.
pub struct Report {
    /// Bytes A sent and B checked.
    pub a_to_b: usize,
    /// Bytes B sent and A checked.
    pub b_to_a: usize,
    /// Requests A sent and B answered correctly.
    pub requests: u32,
    /// Oversized frames B skipped and reported while staying in sync.
    pub skipped: u32,
    /// Times A waited (and so ran B).
    pub waits: u32,
}

/// Runs task A to completion; task B runs whenever A waits.
pub fn run(fault: Fault) -> Result<Report, Failure> {
    let (a, b) = CHANNEL
        .split_static()
        .ok_or(Failure::Setup("channel split twice"))?;
    let (tx, rx, _) = a.into_parts();
    let mut a = Endpoint::new(tx, rx, RunTaskB);
    critical_section::with(|cs| {
        TASK_B.borrow_ref_mut(cs).replace(TaskB {
            end: b,
            expect: Xorshift::new(SEED_A),
            received: 0,
            mismatches: 0,
            first_mismatch: None,
            send: Xorshift::new(SEED_B),
            sent: 0,
            drop_one_byte: fault == Fault::DropByte,
            decoder: FrameDecoder::new(),
            reply: heapless::Vec::new(),
            reply_written: 0,
            overlapping: 0,
        })
    });

    // Task A: write the whole stream in odd-sized pieces with blocking writes...
    let mut stream = Xorshift::new(SEED_A);
    let mut sizes = Xorshift::new(7);
    let mut chunk = [0u8; 97];
    let mut sent = 0;
    while sent < STREAM_LEN {
        let n = sizes.between(1, chunk.len()).min(STREAM_LEN - sent);
        for b in &mut chunk[..n] {
            *b = stream.next_u8();
        }
        a.write_all(&chunk[..n]).map_err(Failure::Channel)?;
        sent += n;
    }
    // ...then read B's stream with blocking reads, checking every byte.
    let mut expect = Xorshift::new(SEED_B);
    let mut got = 0;
    while got < STREAM_LEN {
        let want = sizes.between(1, chunk.len()).min(STREAM_LEN - got);
        a.read_exact(&mut chunk[..want]).map_err(|e| match e {
            embedded_io::ReadExactError::UnexpectedEof => Failure::Check("B's stream ended early"),
            embedded_io::ReadExactError::Other(e) => Failure::Channel(e),
        })?;
        for &byte in &chunk[..want] {
            if byte != expect.next_u8() {
                return Err(Failure::StreamMismatch { offset: got });
            }
            got += 1;
        }
    }
    // Let B drain the last bytes A wrote (at most one ring's worth, 48 bytes a turn).
    for _ in 0..4 {
        SCB::set_pendsv();
        cortex_m::asm::dsb();
        cortex_m::asm::isb();
    }

    let (received, mismatches, first_mismatch) = critical_section::with(|cs| {
        TASK_B
            .borrow_ref(cs)
            .as_ref()
            .map(|t| (t.received, t.mismatches, t.first_mismatch))
            .unwrap_or_default()
    });
    if let Some(offset) = first_mismatch {
        defmt::error!("task B saw {=usize} wrong bytes", mismatches);
        return Err(Failure::StreamMismatch { offset });
    }
    if received != STREAM_LEN {
        defmt::error!(
            "task B received {=usize} of {=usize} bytes",
            received,
            STREAM_LEN
        );
        return Err(Failure::Check("task B did not receive the whole stream"));
    }
    if a.read_ready().map_err(Failure::Channel)? {
        return Err(Failure::Check("bytes left over after both streams"));
    }

    let (requests, skipped) = frames(&mut a)?;
    let overlapping = critical_section::with(|cs| {
        TASK_B
            .borrow_ref(cs)
            .as_ref()
            .map(|t| t.overlapping)
            .unwrap_or_default()
    });
    if overlapping != 0 {
        return Err(Failure::Check(
            "task B saw a request before its previous reply left",
        ));
    }
    Ok(Report {
        a_to_b: received,
        b_to_a: got,
        requests,
        skipped,
        waits: WAITS.load(Ordering::Relaxed),
    })
}

/// The frame phase, task A's side: request, reply, check; returns (answered, skipped).
fn frames(a: &mut Endpoint<'static, RunTaskB>) -> Result<(u32, u32), Failure> {
    let mut rng = Xorshift::new(0x5eed_f4a3);
    let mut answered = 0;
    let mut skipped = 0;
    for id in 0..REQUESTS {
        let expected = if id == OVERSIZED_AT {
            // Larger than B's maximum: B must skip it and say so.
            let big = [0xa5u8; A_MAX_FRAME];
            FrameWriter::<_, A_MAX_FRAME>::new(&mut *a)
                .write_frame(&big)
                .map_err(frame_failure)?;
            Reply::Skipped {
                len: big.len() as u32,
            }
        } else {
            let mut req = Request {
                id,
                values: heapless::Vec::new(),
            };
            for _ in 0..rng.between(0, req.values.capacity()) {
                let _ = req.values.push(rng.next_u32() as u16);
            }
            FrameWriter::<_, A_MAX_FRAME>::new(&mut *a)
                .send(&req)
                .map_err(frame_failure)?;
            Reply::Sum {
                id,
                count: req.values.len() as u8,
                sum: req.values.iter().map(|&v| u32::from(v)).sum(),
            }
        };
        let mut reader = FrameReader::<_, A_MAX_FRAME>::new(&mut *a);
        let reply: Reply = reader
            .recv()
            .map_err(frame_failure)?
            .ok_or(Failure::Check("task B closed the channel"))?;
        if !reader.is_idle() {
            return Err(Failure::Check("reader stopped inside a frame"));
        }
        if reply != expected {
            defmt::error!("request {=u32}: got {}, expected {}", id, reply, expected);
            return Err(Failure::Check("wrong reply"));
        }
        match reply {
            Reply::Skipped { .. } => skipped += 1,
            _ => answered += 1,
        }
    }
    Ok((answered, skipped))
}

fn frame_failure(e: FrameError<ringlink_core::channel::ChannelError>) -> Failure {
    defmt::error!("frame error: {}", defmt::Debug2Format(&e));
    Failure::Check("frame exchange failed")
}
