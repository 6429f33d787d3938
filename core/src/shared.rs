//! Many writers, one ring: [`SharedProducer`] lets interrupt handlers and tasks
//! send whole frames into one ring; frames never interleave, and the critical
//! section is held only to move indices, never for the copy.
//!
//! ```
//! use ringlink_core::frame::ring::{FrameConsumer, Received};
//! use ringlink_core::shared::SharedProducer;
//!
//! // A 256-byte ring carrying frames of at most 32 bytes.
//! static LOG: SharedProducer<256, 32> = SharedProducer::new();
//!
//! // From any context (interrupt handler, task, thread):
//! LOG.send(b"irq 3").unwrap();
//! LOG.send_msg(&("adc", 512u16)).unwrap();
//!
//! // One consumer, typically the main loop:
//! let mut rx = FrameConsumer::<_, 32>::new(LOG.take_consumer().unwrap());
//! assert_eq!(rx.recv_with(|p| p == b"irq 3").unwrap(), Received::Frame(true));
//! let Received::Frame((name, value)) = rx.recv_msg::<(heapless::String<8>, u16)>().unwrap() else {
//!     panic!("a whole frame is there")
//! };
//! assert_eq!((name.as_str(), value), ("adc", 512));
//! ```
//!
//! # Protocol
//!
//! The ring is an ordinary ringlink ring (read it with [`Consumer`] or
//! [`FrameConsumer`](crate::frame::ring::FrameConsumer)); its single producer side is
//! shared like this:
//!
//! - **The critical section owns `reserved`, `published` and `writers`**: they are
//!   read and written only inside it. `reserved` is the end of all space handed out
//!   (a wrapping byte counter), `published` is the ring's `tail`, `writers` counts
//!   reservations not yet finished.
//! - **Reserve** (inside the critical section): check that the frame fits in the
//!   free space minus what is reserved but unpublished, then move `reserved` past it
//!   and count one more writer.
//! - **Copy** (outside it): the writer alone owns the bytes of its reservation and
//!   writes header and payload there.
//! - **Finish** (inside it): count one writer less; the *last* writer out publishes
//!   everything reserved so far by storing the ring's `tail := reserved` (Release).
//!   Frames therefore appear whole and in reservation order; a preempted writer
//!   delays the frames reserved after its own until it finishes (on one core an
//!   interrupt handler's writes finish first, so this is the preempted task's next
//!   few instructions).
//! - The consumer owns `head`, as with any ring, and the free-space check reads it.
//!
//! Only atomic loads and stores and `critical_section` are used, so this works on
//! `thumbv6m` (no compare-and-swap).
//!
//! Not built under `--cfg loom`: it lives on [`RawRing`], which loom models do not cover.
#![cfg(not(loom))]

use core::cell::{Cell, UnsafeCell};
use core::mem::ManuallyDrop;

use critical_section::{CriticalSection, Mutex};
use serde::Serialize;

use crate::frame::ring::{SendError, frame_header};
use crate::ring::{Consumer, HEADER_SIZE, MAX_CAPACITY, RawRing, RingError};

/// Ring header and data, laid out as [`RawRing`] expects.
#[repr(C, align(128))]
struct Memory<const N: usize> {
    header: [u8; HEADER_SIZE],
    data: [u8; N],
}

/// Indices of the sharing protocol. Owned by the critical section.
#[derive(Debug, Clone, Copy)]
struct State {
    initialised: bool,
    consumer_taken: bool,
    /// No new reservations; the ring's `closed` flag is set once `writers` is 0.
    closing: bool,
    /// End of all reserved space (wrapping byte counter).
    reserved: u32,
    /// End of published space: the ring's `tail`.
    published: u32,
    /// Reservations handed out and not finished.
    writers: u32,
}

/// A ring of `N` bytes whose producer side is shared by many contexts, each
/// sending whole frames of at most `MAX` payload bytes.
///
/// See the [module docs](self) for the protocol. Sending never blocks: a frame that
/// does not fit now is refused with [`SendError::Full`].
pub struct SharedProducer<const N: usize, const MAX: usize> {
    mem: UnsafeCell<Memory<N>>,
    state: Mutex<Cell<State>>,
    /// Where an async consumer waits for frames; woken by the last writer out.
    #[cfg(feature = "async")]
    data: crate::waker::WakerSlot,
}

// SAFETY: the ring header is only accessed through atomics (by the ring's
// `Producer`/`Consumer`); the data bytes are accessed by the one `Consumer`
// (published bytes) and by writers holding disjoint reservations handed out under
// the critical section (unpublished bytes); the protocol state lives in a
// `critical_section::Mutex`.
unsafe impl<const N: usize, const MAX: usize> Sync for SharedProducer<N, MAX> {}

impl<const N: usize, const MAX: usize> Default for SharedProducer<N, MAX> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const MAX: usize> SharedProducer<N, MAX> {
    const PARAMS_OK: () = {
        assert!(
            N.is_power_of_two() && N <= MAX_CAPACITY,
            "SharedProducer capacity must be a power of two no larger than 2^31"
        );
        assert!(
            MAX + crate::frame::MAX_HEADER_LEN <= N,
            "a frame of MAX bytes and its header must fit in the ring"
        );
    };

    /// An empty shared ring. Usable in `static` items; the ring header is written
    /// on first use.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::PARAMS_OK;
        SharedProducer {
            mem: UnsafeCell::new(Memory {
                header: [0; HEADER_SIZE],
                data: [0; N],
            }),
            state: Mutex::new(Cell::new(State {
                initialised: false,
                consumer_taken: false,
                closing: false,
                reserved: 0,
                published: 0,
                writers: 0,
            })),
            #[cfg(feature = "async")]
            data: crate::waker::WakerSlot::new(),
        }
    }

    /// The ring's capacity in bytes.
    pub const fn capacity(&self) -> usize {
        N
    }

    fn base(&self) -> *mut u8 {
        self.mem.get().cast::<u8>()
    }

    /// The ring view, writing its header first if nobody has yet.
    fn ring(&self, st: &mut State, _cs: CriticalSection<'_>) -> Result<RawRing<'_>, SendError> {
        let len = core::mem::size_of::<Memory<N>>();
        let ring = if st.initialised {
            // SAFETY: `mem` is ours, valid and 128-byte aligned for `len` bytes as
            // long as `self` is borrowed, and was initialised as a ring.
            unsafe { RawRing::attach(self.base(), len) }
        } else {
            st.initialised = true;
            // SAFETY: as above; inside the critical section and before anything
            // else touched the ring, so nobody uses the memory during init.
            unsafe { RawRing::init(self.base(), len, N) }
        };
        // Cannot fail: the layout and capacity are checked at compile time.
        ring.map_err(|_| SendError::Ring(RingError::Corrupted { head: 0, tail: 0 }))
    }

    /// The one consumer of the ring; `None` after the first call.
    pub fn take_consumer(&self) -> Option<Consumer<'_>> {
        critical_section::with(|cs| {
            let cell = self.state.borrow(cs);
            let mut st = cell.get();
            let ring = self.ring(&mut st, cs).ok();
            let taken = st.consumer_taken;
            st.consumer_taken = true;
            cell.set(st);
            if taken {
                return None;
            }
            // SAFETY: `consumer_taken`, set under the critical section, makes this
            // the only consumer of the ring.
            ring.map(|r| unsafe { r.local_consumer() })
        })
    }

    /// The one consumer of the ring as an async consumer, whose task is woken by
    /// every send that publishes (from any context, an interrupt handler included);
    /// `None` if a consumer was taken before. Wrap it in an async
    /// [`FrameConsumer`](crate::asynch::FrameConsumer) to await whole frames.
    #[cfg(feature = "async")]
    pub fn take_async_consumer(&self) -> Option<crate::asynch::Consumer<'_>> {
        // Nobody ever awaits space: sends never block.
        self.take_consumer()
            .map(|consumer| crate::asynch::Consumer::new(consumer, &self.data, None))
    }

    /// Wakes an async consumer after frames were published or the ring was closed.
    fn wake_consumer(&self) {
        #[cfg(feature = "async")]
        self.data.wake();
    }

    /// Refuses further frames ([`SendError::Closed`]) and marks the ring closed for
    /// writing once every frame in flight is published, so a consumer drains it and
    /// then sees the end ([`Received::Finished`](crate::frame::ring::Received::Finished)).
    pub fn close(&self) {
        critical_section::with(|cs| {
            let cell = self.state.borrow(cs);
            let mut st = cell.get();
            st.closing = true;
            if st.writers == 0 {
                self.mark_closed(&mut st, cs);
            }
            cell.set(st);
        });
        self.wake_consumer();
    }

    fn mark_closed(&self, st: &mut State, cs: CriticalSection<'_>) {
        if let Ok(ring) = self.ring(st, cs) {
            // SAFETY: inside the critical section with no writer in flight, this
            // temporary is the ring's only producer; dropping it stores `closed`.
            drop(unsafe { ring.local_producer() });
        }
    }

    /// Reserves `total` bytes (inside the critical section).
    fn reserve(&self, total: usize) -> Result<Reservation<'_, N, MAX>, SendError> {
        let start = critical_section::with(|cs| {
            let cell = self.state.borrow(cs);
            let mut st = cell.get();
            let result = self.reserve_locked(&mut st, total, cs);
            cell.set(st);
            result
        })?;
        let at = start as usize & (N - 1);
        let first_len = total.min(N - at);
        // SAFETY: `at + first_len <= N` and `total - first_len <= at` (`total <= N`
        // was checked), so both pieces lie in the data array; the bytes
        // `[start, start + total)` were reserved for this writer alone under the
        // critical section, are free (not readable by the consumer until published)
        // and no other reservation overlaps them.
        let (first, second) = unsafe {
            let data = self.base().add(HEADER_SIZE);
            (
                core::slice::from_raw_parts_mut(data.add(at), first_len),
                core::slice::from_raw_parts_mut(data, total - first_len),
            )
        };
        Ok(Reservation {
            owner: self,
            first,
            second,
        })
    }

    fn reserve_locked(
        &self,
        st: &mut State,
        total: usize,
        cs: CriticalSection<'_>,
    ) -> Result<u32, SendError> {
        if st.closing {
            return Err(SendError::Closed);
        }
        let ring = self.ring(st, cs)?;
        // SAFETY: inside the critical section, this temporary is the ring's only
        // producer (publishing also happens under it); `ManuallyDrop` keeps its drop
        // from marking the ring closed.
        let mut producer = ManuallyDrop::new(unsafe { ring.local_producer() });
        if producer.is_consumer_closed() {
            return Err(SendError::Closed);
        }
        let free = producer.free()?;
        let unpublished = st.reserved.wrapping_sub(st.published) as usize;
        let available = free.saturating_sub(unpublished);
        if total > available {
            return Err(SendError::Full {
                needed: total,
                free: available,
            });
        }
        let start = st.reserved;
        // `total <= N <= 2^31`: fits in the wrapping counter.
        st.reserved = start.wrapping_add(total as u32);
        st.writers += 1;
        Ok(start)
    }

    /// Ends a reservation (inside the critical section); the last writer out
    /// publishes, then wakes an async consumer (outside the critical section).
    fn finish(&self) {
        let published = critical_section::with(|cs| {
            let cell = self.state.borrow(cs);
            let mut st = cell.get();
            st.writers = st.writers.saturating_sub(1);
            let last = st.writers == 0;
            if last {
                self.publish(&mut st, cs);
                if st.closing {
                    self.mark_closed(&mut st, cs);
                }
            }
            cell.set(st);
            last
        });
        if published {
            self.wake_consumer();
        }
    }

    /// Moves the ring's `tail` to `reserved` (no writer in flight).
    fn publish(&self, st: &mut State, cs: CriticalSection<'_>) {
        let Ok(ring) = self.ring(st, cs) else { return };
        // SAFETY: as in `reserve_locked`; with no writer in flight, the grants
        // below are the only references to the unpublished bytes.
        let mut producer = ManuallyDrop::new(unsafe { ring.local_producer() });
        let mut pending = st.reserved.wrapping_sub(st.published) as usize;
        // At most two pieces: up to the end of the ring, then from its start.
        for _ in 0..2 {
            if pending == 0 {
                break;
            }
            let Ok(grant) = producer.grant_max(pending) else {
                break;
            };
            let n = grant.len();
            grant.commit(n);
            pending -= n;
            st.published = st.published.wrapping_add(n as u32);
        }
    }

    /// Sends a copy of `payload` as one frame.
    pub fn send(&self, payload: &[u8]) -> Result<(), SendError> {
        let (header, h) = frame_header(payload.len(), MAX, N)?;
        let mut r = self.reserve(h + payload.len())?;
        r.write_at(0, header.get(..h).unwrap_or(&[]));
        r.write_at(h, payload);
        Ok(())
    }

    /// Sends a frame of `len` payload bytes that `fill` writes in place (outside the
    /// critical section): inside the ring when contiguous, else in a `[u8; MAX]` on
    /// the stack that is then copied in. `fill` should write all `len` bytes.
    pub fn send_with<F: FnOnce(&mut [u8])>(&self, len: usize, fill: F) -> Result<(), SendError> {
        let (header, h) = frame_header(len, MAX, N)?;
        let mut r = self.reserve(h + len)?;
        r.write_at(0, header.get(..h).unwrap_or(&[]));
        match r.contiguous(h, len) {
            Some(payload) => fill(payload),
            None => fill_via_scratch::<N, MAX, F>(&mut r, h, len, fill),
        }
        Ok(())
    }

    /// Serializes `msg` with postcard straight into the ring (outside the critical
    /// section) as one frame.
    ///
    /// The size is computed first (`postcard::experimental::serialized_size`), so nothing is sent
    /// for a message that fails to serialize or is too large. A `Serialize` impl
    /// that produces different output on its second run gets its frame sent
    /// zero-padded or cut (the stream stays in sync) and an error back.
    pub fn send_msg<T: Serialize + ?Sized>(&self, msg: &T) -> Result<(), SendError> {
        let len = postcard::experimental::serialized_size(msg).map_err(SendError::Serialize)?;
        let (header, h) = frame_header(len, MAX, N)?;
        let mut r = self.reserve(h + len)?;
        r.write_at(0, header.get(..h).unwrap_or(&[]));
        let flavor = Pieces {
            reservation: &mut r,
            at: h,
        };
        match postcard::serialize_with_flavor::<T, _, usize>(msg, flavor) {
            Ok(end) if end == h + len => Ok(()),
            Ok(end) => {
                r.zero_from(end);
                Err(SendError::Serialize(postcard::Error::SerializeBufferFull))
            }
            Err(e) => Err(SendError::Serialize(e)),
        }
    }
}

/// Space reserved for one frame: up to two pieces (when it wraps). Dropping it
/// finishes the reservation (the last writer out publishes).
#[must_use = "dropping a reservation sends it as it is"]
struct Reservation<'a, const N: usize, const MAX: usize> {
    owner: &'a SharedProducer<N, MAX>,
    first: &'a mut [u8],
    second: &'a mut [u8],
}

impl<const N: usize, const MAX: usize> Reservation<'_, N, MAX> {
    /// Copies `bytes` to `offset` in the reservation, across the two pieces
    /// (bytes beyond the reservation are ignored).
    fn write_at(&mut self, offset: usize, bytes: &[u8]) {
        let split = self.first.len();
        for (i, &b) in bytes.iter().enumerate() {
            let pos = offset + i;
            let slot = if pos < split {
                self.first.get_mut(pos)
            } else {
                self.second.get_mut(pos - split)
            };
            if let Some(slot) = slot {
                *slot = b;
            }
        }
    }

    /// Zeroes the reservation from `offset` on.
    fn zero_from(&mut self, offset: usize) {
        let split = self.first.len();
        if let Some(tail) = self.first.get_mut(offset.min(split)..) {
            tail.fill(0);
        }
        if let Some(tail) = self.second.get_mut(offset.saturating_sub(split)..) {
            tail.fill(0);
        }
    }

    /// `len` bytes at `offset` if they lie in one piece.
    fn contiguous(&mut self, offset: usize, len: usize) -> Option<&mut [u8]> {
        let split = self.first.len();
        if offset + len <= split {
            self.first.get_mut(offset..offset + len)
        } else if offset >= split {
            self.second.get_mut(offset - split..offset - split + len)
        } else {
            None
        }
    }
}

impl<const N: usize, const MAX: usize> Drop for Reservation<'_, N, MAX> {
    fn drop(&mut self) {
        // Give up our references to the bytes before the publisher takes its own.
        self.first = &mut [];
        self.second = &mut [];
        self.owner.finish();
    }
}

/// The wrap-around path of [`SharedProducer::send_with`]; out of line so the fast
/// path's stack frame does not carry the `[u8; MAX]`.
#[inline(never)]
#[cold]
fn fill_via_scratch<const N: usize, const MAX: usize, F: FnOnce(&mut [u8])>(
    r: &mut Reservation<'_, N, MAX>,
    offset: usize,
    len: usize,
    fill: F,
) {
    let mut scratch = [0u8; MAX];
    let payload = scratch.get_mut(..len).unwrap_or(&mut []);
    fill(payload);
    r.write_at(offset, payload);
}

/// A postcard flavor writing into a reservation from `at` on.
struct Pieces<'r, 'a, const N: usize, const MAX: usize> {
    reservation: &'r mut Reservation<'a, N, MAX>,
    at: usize,
}

impl<const N: usize, const MAX: usize> postcard::ser_flavors::Flavor for Pieces<'_, '_, N, MAX> {
    type Output = usize;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        let split = self.reservation.first.len();
        let slot = if self.at < split {
            self.reservation.first.get_mut(self.at)
        } else {
            self.reservation.second.get_mut(self.at - split)
        };
        let slot = slot.ok_or(postcard::Error::SerializeBufferFull)?;
        *slot = byte;
        self.at += 1;
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        match self.reservation.contiguous(self.at, bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.at += bytes.len();
                Ok(())
            }
            None => bytes.iter().try_for_each(|&b| self.try_push(b)),
        }
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.at)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::frame::ring::{FrameConsumer, Received};

    fn assert_sync<T: Sync>() {}

    #[test]
    fn is_sync() {
        assert_sync::<SharedProducer<64, 8>>();
    }

    #[test]
    fn frames_wrap_and_arrive_whole() {
        let shared = SharedProducer::<32, 12>::new();
        let mut rx = FrameConsumer::<_, 12>::new(shared.take_consumer().unwrap());
        assert!(shared.take_consumer().is_none());
        for i in 0..300u32 {
            let len = (i % 13) as usize;
            match i % 3 {
                0 => shared.send(&std::vec![i as u8; len]).unwrap(),
                1 => shared.send_with(len, |p| p.fill(i as u8)).unwrap(),
                _ => shared
                    .send_msg(&std::vec![i as u8; len.saturating_sub(1)][..])
                    .unwrap(),
            }
            let got = rx.recv_with(|p| p.to_vec()).unwrap();
            let expect = match i % 3 {
                2 => {
                    let mut v = std::vec![(len.saturating_sub(1)) as u8];
                    v.extend(std::vec![i as u8; len.saturating_sub(1)]);
                    v
                }
                _ => std::vec![i as u8; len],
            };
            assert_eq!(got, Received::Frame(expect), "frame {i}");
        }
    }

    #[test]
    fn full_closed_and_too_large() {
        let shared = SharedProducer::<16, 8>::new();
        assert_eq!(
            shared.send(&[0; 9]),
            Err(SendError::TooLarge { len: 9, max: 8 })
        );
        shared.send(&[1; 8]).unwrap();
        assert_eq!(
            shared.send(&[1; 7]),
            Err(SendError::Full { needed: 8, free: 7 })
        );
        let rx = shared.take_consumer().unwrap();
        drop(rx);
        assert_eq!(shared.send(b""), Err(SendError::Closed));
    }

    #[test]
    fn nested_writer_is_published_when_the_outer_one_finishes() {
        // On one core an interrupt preempts a writer in the middle of its copy.
        let shared = SharedProducer::<64, 16>::new();
        let mut rx = FrameConsumer::<_, 16>::new(shared.take_consumer().unwrap());
        shared
            .send_with(3, |outer| {
                outer.copy_from_slice(b"one");
                shared.send(b"two").unwrap(); // the "interrupt"
            })
            .unwrap();
        assert_eq!(
            rx.recv_with(|p| p.to_vec()).unwrap(),
            Received::Frame(b"one".to_vec())
        );
        assert_eq!(
            rx.recv_with(|p| p.to_vec()).unwrap(),
            Received::Frame(b"two".to_vec())
        );
        assert_eq!(rx.recv_with(|_| ()).unwrap(), Received::Pending);
        shared.close();
        assert_eq!(rx.recv_with(|_| ()).unwrap(), Received::Finished);
        assert_eq!(shared.send(b"late"), Err(SendError::Closed));
    }

    #[test]
    fn threads_never_interleave_or_lose_frames() {
        const WRITERS: u32 = 4;
        const PER_WRITER: u32 = 20_000;
        let shared = SharedProducer::<256, 40>::new();
        let rx = shared.take_consumer().unwrap();
        std::thread::scope(|s| {
            for w in 0..WRITERS {
                let shared = &shared;
                s.spawn(move || {
                    for seq in 0..PER_WRITER {
                        // [writer, seq (4 bytes), filler...] with a length that varies.
                        let len = 5 + (seq as usize * 7 + w as usize) % 30;
                        loop {
                            let r = shared.send_with(len, |p| {
                                p[0] = w as u8;
                                p[1..5].copy_from_slice(&seq.to_le_bytes());
                                for (i, b) in p[5..].iter_mut().enumerate() {
                                    *b = (seq as u8).wrapping_add(i as u8) ^ w as u8;
                                }
                            });
                            match r {
                                Ok(()) => break,
                                Err(SendError::Full { .. }) => std::thread::yield_now(),
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                });
            }
            let mut rx = FrameConsumer::<_, 40>::new(rx);
            let mut next = [0u32; WRITERS as usize];
            let mut total = 0;
            while total < WRITERS * PER_WRITER {
                match rx.recv_with(|p| {
                    let w = p[0] as usize;
                    let seq = u32::from_le_bytes(p[1..5].try_into().unwrap());
                    assert_eq!(p.len(), 5 + (seq as usize * 7 + w) % 30);
                    for (i, b) in p[5..].iter().enumerate() {
                        assert_eq!(*b, (seq as u8).wrapping_add(i as u8) ^ w as u8);
                    }
                    (w, seq)
                }) {
                    Ok(Received::Frame((w, seq))) => {
                        assert_eq!(seq, next[w], "writer {w} in order, none lost");
                        next[w] += 1;
                        total += 1;
                    }
                    Ok(Received::Pending) => std::thread::yield_now(),
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(next, [PER_WRITER; WRITERS as usize]);
        });
    }
}

#[cfg(all(test, feature = "async"))]
mod async_tests {
    extern crate std;
    use super::*;
    use crate::asynch::FrameConsumer;
    use crate::asynch::test_support::{CountingWaker, block_on_parking};
    use core::pin::pin;
    use core::task::{Context, Poll};

    #[test]
    fn a_send_wakes_the_awaiting_consumer_once() {
        let shared = SharedProducer::<64, 16>::new();
        let mut rx = FrameConsumer::<16>::new(shared.take_async_consumer().unwrap());
        assert!(shared.take_async_consumer().is_none());
        let count = CountingWaker::new();
        let waker = count.waker();
        let mut cx = Context::from_waker(&waker);
        let mut recv = pin!(rx.recv_with(|p| p.len()));
        assert!(recv.as_mut().poll(&mut cx).is_pending());
        assert!(recv.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count.wakes(), 0, "an idle consumer is not polled again");
        shared.send(b"irq").unwrap();
        assert_eq!(count.wakes(), 1, "the send woke it within the same call");
        assert_eq!(recv.as_mut().poll(&mut cx), Poll::Ready(Ok(Some(3))));
        shared.send(b"x").unwrap();
        assert_eq!(count.wakes(), 1, "nobody waits: no wake-up");
    }

    #[test]
    fn threads_feed_an_awaiting_task_until_closed() {
        let shared = SharedProducer::<128, 16>::new();
        let mut rx = FrameConsumer::<16>::new(shared.take_async_consumer().unwrap());
        const PER_WRITER: u32 = 5_000;
        std::thread::scope(|s| {
            let shared = &shared;
            let writers: std::vec::Vec<_> = (0..2u8)
                .map(|w| {
                    s.spawn(move || {
                        for seq in 0..PER_WRITER {
                            while let Err(SendError::Full { .. }) = shared.send_msg(&(w, seq)) {
                                std::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            s.spawn(move || {
                for w in writers {
                    w.join().unwrap();
                }
                shared.close();
            });
            block_on_parking(async {
                let mut next = [0u32; 2];
                while let Some((w, seq)) = rx.recv_msg::<(u8, u32)>().await.unwrap() {
                    assert_eq!(seq, next[usize::from(w)], "in order, none lost");
                    next[usize::from(w)] += 1;
                }
                assert_eq!(next, [PER_WRITER; 2]);
            });
        });
    }
}
