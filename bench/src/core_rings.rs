//! The **core** case: ringlink's in-process [`Ring`] and [`Channel`] moving bytes between
//! two threads, against `rtrb`, `ringbuf` and `heapless::spsc` doing the same.
//!
//! A producer thread writes `chunk`-byte pieces for a fixed time, a consumer thread
//! reads up to `chunk` bytes at a time; both spin (then yield) when the ring is full or
//! empty.
//! Every ring holds [`CAPACITY`] bytes. `heapless::spsc` is a queue of `T`, so it runs
//! twice: as a queue of `[u8; chunk]` items (`heapless`) and byte by byte
//! (`heapless-bytes`); chunk 1 compares single-byte operations of every ring (each
//! ring's own one-item `push`/`pop` where it has one).

use std::hint::spin_loop;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ringlink_core::channel::{Channel, Endpoint, Spin};
use ringlink_core::ring::{Consumer, Producer, Ring};

use crate::names::Name;

/// Bytes every ring holds.
pub const CAPACITY: usize = 1 << 18;
/// Chunk sizes of the core case (1: single-byte operations).
pub const CHUNKS: [usize; 7] = [1, 64, 256, 1024, 4096, 16384, 65536];

/// The rings compared, in table order; `rtrb` is the baseline of the ratio column.
pub const IMPLS: [Name; 6] = [
    Name::RinglinkRing,
    Name::RinglinkChannel,
    Name::Rtrb,
    Name::Ringbuf,
    Name::Heapless,
    Name::HeaplessBytes,
];

/// What one core run measured.
#[derive(Debug, Clone, Copy)]
pub struct CoreOutcome {
    /// Bytes the consumer received (and checked against what the producer sent).
    pub bytes: u64,
    /// From the start signal to the consumer's last byte.
    pub elapsed: Duration,
}

impl CoreOutcome {
    /// Throughput in GiB/s.
    pub fn gib_per_s(&self) -> f64 {
        self.bytes as f64 / (1u64 << 30) as f64 / self.elapsed.as_secs_f64()
    }
}

/// Whether `imp` runs with `chunk` (`heapless` items of one byte are `heapless-bytes`).
pub fn applies(imp: Name, chunk: usize) -> bool {
    !(imp == Name::Heapless && chunk == 1)
}

/// Runs `imp` with `chunk` for `duration`. With `verify`, the consumer checks every
/// byte against the producer's pattern (slower; used by the tests).
pub fn run(
    imp: Name,
    chunk: usize,
    duration: Duration,
    verify: bool,
) -> Result<CoreOutcome, String> {
    match imp {
        Name::RinglinkRing => {
            let mut ring: Box<Ring<CAPACITY>> = Box::default();
            let (p, c) = ring.split();
            measure(p, c, chunk, duration, verify)
        }
        Name::RinglinkChannel => {
            let mut channel: Box<Channel<CAPACITY>> = Box::default();
            let (a, b) = channel.split();
            measure(a, b, chunk, duration, verify)
        }
        Name::Rtrb => {
            let (p, c) = rtrb::RingBuffer::<u8>::new(CAPACITY);
            measure(p, c, chunk, duration, verify)
        }
        Name::Ringbuf => {
            use ringbuf::traits::Split;
            let (p, c) = ringbuf::HeapRb::<u8>::new(CAPACITY).split();
            measure(RingbufProd(p), RingbufCons(c), chunk, duration, verify)
        }
        Name::HeaplessBytes => {
            let mut queue: Box<heapless::spsc::Queue<u8, CAPACITY>> = Box::default();
            let (p, c) = queue.split();
            measure(p, c, chunk, duration, verify)
        }
        // heapless recommends a power-of-two slot count; the queue holds one slot less.
        Name::Heapless => match chunk {
            64 => heapless_items::<64, 4096>(duration, verify),
            256 => heapless_items::<256, 1024>(duration, verify),
            1024 => heapless_items::<1024, 256>(duration, verify),
            4096 => heapless_items::<4096, 64>(duration, verify),
            16384 => heapless_items::<16384, 16>(duration, verify),
            65536 => heapless_items::<65536, 4>(duration, verify),
            _ => Err(format!("heapless items of {chunk} bytes are not built in")),
        },
        _ => Err(format!("{imp} is not a core ring")),
    }
}

fn heapless_items<const C: usize, const N: usize>(
    duration: Duration,
    verify: bool,
) -> Result<CoreOutcome, String> {
    let mut queue: Box<heapless::spsc::Queue<[u8; C], N>> = Box::default();
    let (p, c) = queue.split();
    measure(p, c, C, duration, verify)
}

/// The writing side of a ring, as its users write bytes into it.
trait Push: Send {
    /// Writes what fits of `data` (a whole chunk or its unwritten rest); 0 when full.
    fn push(&mut self, data: &[u8]) -> usize;
}

/// The reading side of a ring.
trait Pop: Send {
    /// Reads up to `out.len()` bytes; 0 when empty.
    fn pop(&mut self, out: &mut [u8]) -> usize;
}

impl Push for Producer<'_> {
    #[inline]
    fn push(&mut self, data: &[u8]) -> usize {
        if let [byte] = data {
            return usize::from(Producer::push(self, *byte).is_ok());
        }
        // A ring in this process is never corrupted; an error would end the run short.
        self.write(data).unwrap_or(0)
    }
}

impl Pop for Consumer<'_> {
    #[inline]
    fn pop(&mut self, out: &mut [u8]) -> usize {
        if let [slot] = out {
            return Consumer::pop(self).map_or(0, |b| {
                *slot = b;
                1
            });
        }
        self.read(out).unwrap_or(0)
    }
}

impl Push for Endpoint<'_, Spin> {
    #[inline]
    fn push(&mut self, data: &[u8]) -> usize {
        if let [byte] = data {
            return usize::from(Endpoint::push(self, *byte).is_ok());
        }
        self.try_write(data).unwrap_or(0)
    }
}

impl Pop for Endpoint<'_, Spin> {
    #[inline]
    fn pop(&mut self, out: &mut [u8]) -> usize {
        if let [slot] = out {
            return Endpoint::pop(self).map_or(0, |b| {
                *slot = b;
                1
            });
        }
        self.try_read(out).unwrap_or(0)
    }
}

impl Push for rtrb::Producer<u8> {
    #[inline]
    fn push(&mut self, data: &[u8]) -> usize {
        if let [byte] = data {
            return usize::from(rtrb::Producer::push(self, *byte).is_ok());
        }
        std::io::Write::write(self, data).unwrap_or(0)
    }
}

impl Pop for rtrb::Consumer<u8> {
    #[inline]
    fn pop(&mut self, out: &mut [u8]) -> usize {
        if let [slot] = out {
            return rtrb::Consumer::pop(self).map_or(0, |b| {
                *slot = b;
                1
            });
        }
        std::io::Read::read(self, out).unwrap_or(0)
    }
}

struct RingbufProd(ringbuf::HeapProd<u8>);
struct RingbufCons(ringbuf::HeapCons<u8>);

impl Push for RingbufProd {
    #[inline]
    fn push(&mut self, data: &[u8]) -> usize {
        ringbuf::traits::Producer::push_slice(&mut self.0, data)
    }
}

impl Pop for RingbufCons {
    #[inline]
    fn pop(&mut self, out: &mut [u8]) -> usize {
        ringbuf::traits::Consumer::pop_slice(&mut self.0, out)
    }
}

impl Push for heapless::spsc::Producer<'_, u8> {
    #[inline]
    fn push(&mut self, data: &[u8]) -> usize {
        let mut n = 0;
        for &b in data {
            if self.enqueue(b).is_err() {
                break;
            }
            n += 1;
        }
        n
    }
}

impl Pop for heapless::spsc::Consumer<'_, u8> {
    #[inline]
    fn pop(&mut self, out: &mut [u8]) -> usize {
        let mut n = 0;
        while n < out.len() {
            match self.dequeue() {
                Some(b) => out[n] = b,
                None => break,
            }
            n += 1;
        }
        n
    }
}

impl<const C: usize> Push for heapless::spsc::Producer<'_, [u8; C]> {
    #[inline]
    fn push(&mut self, data: &[u8]) -> usize {
        // Items are all or nothing, and the producer only ever offers whole chunks.
        match <[u8; C]>::try_from(data) {
            Ok(item) if self.enqueue(item).is_ok() => C,
            _ => 0,
        }
    }
}

impl<const C: usize> Pop for heapless::spsc::Consumer<'_, [u8; C]> {
    #[inline]
    fn pop(&mut self, out: &mut [u8]) -> usize {
        match self.dequeue() {
            Some(item) if out.len() >= C => {
                out[..C].copy_from_slice(&item);
                C
            }
            _ => 0,
        }
    }
}

/// The producer's bytes: stream offset `k` carries `(k % chunk) % 251`.
fn pattern(chunk: usize) -> Vec<u8> {
    (0..chunk).map(|i| (i % 251) as u8).collect()
}

/// Waits between attempts: spins a little, then yields the CPU (on a busy machine the
/// peer thread may not be running); gives up (`Err`) once `hard_stop` has passed.
struct Backoff {
    spins: u32,
    hard_stop: Instant,
}

impl Backoff {
    #[inline]
    fn wait(&mut self) -> Result<(), String> {
        self.spins = self.spins.wrapping_add(1);
        if self.spins < 64 {
            spin_loop();
            return Ok(());
        }
        if self.spins.is_multiple_of(64) && Instant::now() >= self.hard_stop {
            return Err("a core ring stopped moving bytes".into());
        }
        thread::yield_now();
        Ok(())
    }

    #[inline]
    fn reset(&mut self) {
        self.spins = 0;
    }
}

fn measure<P: Push, C: Pop>(
    producer: P,
    consumer: C,
    chunk: usize,
    duration: Duration,
    verify: bool,
) -> Result<CoreOutcome, String> {
    let src = pattern(chunk);
    let stop = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let start = Barrier::new(3);
    let hard_stop = Instant::now() + duration + Duration::from_secs(20);
    thread::scope(|scope| {
        // Each side's handle moves to its thread, as it does in a program: left on this
        // stack, the two handles share a cache line, and a ring that keeps its own index
        // in its handle (ringlink's do: they never trust the copy in the ring's memory)
        // would pay a line transfer per operation that no user pays.
        let sender = scope.spawn(|| -> Result<u64, String> {
            let mut producer = producer;
            let mut backoff = Backoff {
                spins: 0,
                hard_stop,
            };
            start.wait();
            let mut sent = 0u64;
            let result = loop {
                if stop.load(Ordering::Relaxed) {
                    break Ok(sent);
                }
                let mut off = 0;
                while off < chunk {
                    let n = producer.push(&src[off..]);
                    if n == 0
                        && let Err(e) = backoff.wait()
                    {
                        done.store(true, Ordering::Release);
                        return Err(e);
                    }
                    if n > 0 {
                        backoff.reset();
                    }
                    off += n;
                }
                sent += chunk as u64;
            };
            done.store(true, Ordering::Release);
            result
        });
        let receiver = scope.spawn(|| -> Result<(u64, Instant), String> {
            let mut consumer = consumer;
            let mut backoff = Backoff {
                spins: 0,
                hard_stop,
            };
            let mut buf = vec![0u8; chunk];
            start.wait();
            let mut received = 0u64;
            let mut draining = false;
            loop {
                let n = consumer.pop(&mut buf);
                if n > 0 {
                    if verify {
                        for (i, &b) in buf[..n].iter().enumerate() {
                            let at = (received as usize + i) % chunk;
                            if b != src[at] {
                                return Err(format!(
                                    "byte {} is {b}, expected {}",
                                    received as usize + i,
                                    src[at]
                                ));
                            }
                        }
                    }
                    std::hint::black_box(&buf[..n]);
                    received += n as u64;
                    backoff.reset();
                    continue;
                }
                if draining {
                    return Ok((received, Instant::now()));
                }
                if done.load(Ordering::Acquire) {
                    // Everything the producer wrote is visible now: empty the ring once more.
                    draining = true;
                    continue;
                }
                backoff.wait()?;
            }
        });
        start.wait();
        let started = Instant::now();
        thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        let sent = sender
            .join()
            .map_err(|_| "the producer panicked".to_string())??;
        let (received, finished) = receiver
            .join()
            .map_err(|_| "the consumer panicked".to_string())??;
        if sent != received {
            return Err(format!("sent {sent} bytes, received {received}"));
        }
        Ok(CoreOutcome {
            bytes: received,
            elapsed: finished - started,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ring_delivers_every_byte_in_order() {
        for imp in IMPLS {
            for chunk in CHUNKS {
                if !applies(imp, chunk) {
                    continue;
                }
                // On a loaded machine a thread may not run at all in a short window:
                // lengthen it until something moved (every run checks every byte).
                let mut out = None;
                for ms in [20, 200, 2000] {
                    let o = run(imp, chunk, Duration::from_millis(ms), true)
                        .unwrap_or_else(|e| panic!("{imp} chunk {chunk}: {e}"));
                    out = Some(o);
                    if o.bytes >= chunk as u64 {
                        break;
                    }
                }
                let out = out.unwrap();
                assert!(
                    out.bytes >= chunk as u64,
                    "{imp} chunk {chunk} moved {} bytes",
                    out.bytes
                );
                assert!(out.gib_per_s() > 0.0);
            }
        }
    }

    #[test]
    fn unknown_rings_and_chunks_are_errors() {
        assert!(run(Name::Std, 64, Duration::from_millis(1), false).is_err());
        assert!(run(Name::Heapless, 100, Duration::from_millis(1), false).is_err());
        assert!(!applies(Name::Heapless, 1));
    }
}
