//! loom models of the SPSC ring: every interleaving of one producer and one consumer
//! (full, empty, wrap-around, grants, close) keeps bytes in order, loses none, and
//! never lets both sides touch the same byte at once (checked per byte by the ring's
//! loom-only shadow cells).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p ringlink-core --release --test loom`
//! (`cargo xtask loom`).
#![cfg(loom)]

use loom::thread;
use ringlink_core::ring::{GrantError, Ring};

fn leak<const N: usize>() -> &'static mut Ring<N> {
    Box::leak(Box::new(Ring::<N>::new()))
}

/// The producer pushes `total` bytes through a ring of 4 with copying writes of
/// varying sizes: the ring fills, wraps, and empties; the consumer sees 0..total.
#[test]
fn copy_write_read_full_empty_wrap() {
    loom::model(|| {
        let (mut tx, mut rx) = leak::<4>().split();
        const TOTAL: u8 = 7;
        let producer = thread::spawn(move || {
            let mut next = 0u8;
            while next < TOTAL {
                let chunk = [next, next + 1, next + 2];
                let len = usize::from((TOTAL - next).min(3));
                let n = tx.write(&chunk[..len]).unwrap();
                next += n as u8;
                if n == 0 {
                    thread::yield_now();
                }
            }
        });
        let mut expect = 0u8;
        while expect < TOTAL {
            let mut buf = [0u8; 3];
            let n = rx.read(&mut buf).unwrap();
            for &b in &buf[..n] {
                assert_eq!(b, expect, "bytes arrive in order, none lost or repeated");
                expect += 1;
            }
            if n == 0 {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(rx.available().unwrap(), 0);
    });
}

/// Zero-copy grants: the producer writes into exact grants, the consumer reads
/// straight from read grants and releases part of them.
#[test]
fn grants_commit_release() {
    loom::model(|| {
        let (mut tx, mut rx) = leak::<4>().split();
        const TOTAL: u8 = 6;
        let producer = thread::spawn(move || {
            let mut next = 0u8;
            while next < TOTAL {
                match tx.grant_exact(2) {
                    Ok(mut g) => {
                        g[0] = next;
                        g[1] = next + 1;
                        g.commit(2);
                        next += 2;
                    }
                    Err(GrantError::InsufficientSize { .. }) => thread::yield_now(),
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        });
        let mut expect = 0u8;
        while expect < TOTAL {
            match rx.read_grant() {
                Ok(g) => {
                    // Release only the first byte to exercise partial release.
                    assert_eq!(g[0], expect);
                    g.release(1);
                    expect += 1;
                }
                Err(GrantError::InsufficientSize { .. }) => thread::yield_now(),
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        producer.join().unwrap();
    });
}

/// A producer that writes and then drops: the consumer drains every byte and then
/// sees the ring finished, in every interleaving.
#[test]
fn close_after_write_is_seen_after_the_data() {
    loom::model(|| {
        let (mut tx, mut rx) = leak::<4>().split();
        let producer = thread::spawn(move || {
            assert_eq!(tx.write(&[1, 2, 3]).unwrap(), 3);
            drop(tx);
        });
        let mut got = Vec::new();
        loop {
            let mut buf = [0u8; 4];
            let n = rx.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            if n == 0 {
                if rx.is_finished().unwrap() {
                    break;
                }
                thread::yield_now();
            }
        }
        assert_eq!(
            got,
            [1, 2, 3],
            "closing never hides bytes written before it"
        );
        producer.join().unwrap();
    });
}

/// A consumer that drops: the producer eventually sees it closed.
#[test]
fn consumer_close_is_seen() {
    loom::model(|| {
        let (mut tx, rx) = leak::<2>().split();
        let consumer = thread::spawn(move || drop(rx));
        loop {
            if tx.is_consumer_closed() {
                break;
            }
            let _ = tx.write(&[9]).unwrap();
            thread::yield_now();
        }
        consumer.join().unwrap();
    });
}

/// A model of an eventfd (or futex) the sleeper blocks on: `notify` sets a
/// counter and wakes, `wait` blocks until the counter is set and clears it.
#[derive(Default)]
struct Event {
    signalled: loom::sync::Mutex<bool>,
    cond: loom::sync::Condvar,
}

impl Event {
    fn notify(&self) {
        *self.signalled.lock().unwrap() = true;
        self.cond.notify_one();
    }
    fn wait(&self) {
        let mut s = self.signalled.lock().unwrap();
        while !*s {
            s = self.cond.wait(s).unwrap();
        }
        *s = false;
    }
}

/// The consumer parks when the ring is empty; the producer notifies only when it
/// sees the consumer parked. A lost wake-up would leave the consumer blocked
/// forever, which loom reports as a deadlock.
#[test]
fn parking_consumer_never_misses_a_wakeup() {
    loom::model(|| {
        let (mut tx, mut rx) = leak::<2>().split();
        let event = std::sync::Arc::new(Event::default());
        let producer_event = event.clone();
        let producer = thread::spawn(move || {
            for b in 0..2u8 {
                while tx.write(&[b]).unwrap() == 0 {
                    thread::yield_now();
                }
                if tx.consumer_parked() {
                    producer_event.notify();
                }
            }
        });
        let mut got = 0u8;
        while got < 2 {
            let mut buf = [0u8; 2];
            let n = rx.read(&mut buf).unwrap();
            for &b in &buf[..n] {
                assert_eq!(b, got);
                got += 1;
            }
            if n == 0 && rx.prepare_park().unwrap() {
                event.wait();
                rx.unpark();
            }
        }
        producer.join().unwrap();
    });
}

/// The producer parks when the ring is full; the consumer notifies only when it
/// sees the producer parked.
#[test]
fn parking_producer_never_misses_a_wakeup() {
    loom::model(|| {
        let (mut tx, mut rx) = leak::<1>().split();
        let event = std::sync::Arc::new(Event::default());
        let consumer_event = event.clone();
        let consumer = thread::spawn(move || {
            let mut got = 0u8;
            while got < 2 {
                let mut buf = [0u8; 1];
                if rx.read(&mut buf).unwrap() == 1 {
                    assert_eq!(buf[0], got);
                    got += 1;
                    if rx.producer_parked() {
                        consumer_event.notify();
                    }
                } else {
                    thread::yield_now();
                }
            }
        });
        for b in 0..2u8 {
            while tx.write(&[b]).unwrap() == 0 {
                if tx.prepare_park().unwrap() {
                    event.wait();
                    tx.unpark();
                }
            }
        }
        consumer.join().unwrap();
    });
}

/// Both sides move bytes through grants and both may park: the producer on a full
/// ring, the consumer on an empty one. `commit_wakes` and `release_wakes` must
/// report every parked peer, or one side sleeps forever (a loom deadlock).
#[test]
fn parking_through_grants_never_misses_a_wakeup() {
    loom::model(|| {
        let (mut tx, mut rx) = leak::<1>().split();
        let data_event = std::sync::Arc::new(Event::default());
        let space_event = std::sync::Arc::new(Event::default());
        let (data, space) = (data_event.clone(), space_event.clone());
        let consumer = thread::spawn(move || {
            let mut got = 0u8;
            while got < 2 {
                match rx.read_grant() {
                    Ok(g) => {
                        assert_eq!(g[0], got);
                        got += 1;
                        if g.release_wakes(1) {
                            space.notify();
                        }
                    }
                    Err(_) => {
                        if rx.prepare_park().unwrap() {
                            data.wait();
                            rx.unpark();
                        }
                    }
                }
            }
        });
        for b in 0..2u8 {
            loop {
                match tx.grant_max(1) {
                    Ok(mut g) => {
                        g[0] = b;
                        if g.commit_wakes(1) {
                            data_event.notify();
                        }
                        break;
                    }
                    Err(_) => {
                        if tx.prepare_park().unwrap() {
                            space_event.wait();
                            tx.unpark();
                        }
                    }
                }
            }
        }
        consumer.join().unwrap();
    });
}

/// The waker protocol alone (`ringlink_core::waker`): the waiter registers, then
/// re-checks the published flag; the publisher stores the flag, then wakes. loom's
/// `block_on` parks the waiter until its waker is called, so a lost wake-up is a
/// deadlock. Removing either `SeqCst` fence of `WakerSlot` (or the re-check)
/// makes this model fail.
#[test]
fn waker_slot_register_then_check_against_publish_then_wake() {
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use ringlink_core::waker::WakerSlot;
    use std::task::Poll;

    loom::model(|| {
        let slot = Arc::new(WakerSlot::new());
        let published = Arc::new(AtomicBool::new(false));
        let (p_slot, p_published) = (slot.clone(), published.clone());
        let publisher = thread::spawn(move || {
            p_published.store(true, Ordering::Relaxed);
            p_slot.wake();
        });
        loom::future::block_on(std::future::poll_fn(|cx| {
            if published.load(Ordering::Relaxed) {
                return Poll::Ready(());
            }
            slot.register(cx.waker());
            if published.load(Ordering::Relaxed) {
                slot.disarm();
                return Poll::Ready(());
            }
            Poll::Pending
        }));
        publisher.join().unwrap();
    });
}

/// A model checker that explores every interleaving with up to 2 preemptions
/// (a ring, a waker slot and `block_on` together are too many atomics for all of
/// them; a lost wake-up needs one preemption between publish and check).
fn bounded() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder
}

/// An async ring for one model run, with `'static` halves for loom's threads.
/// [`free_async`] drops it at the end of the run: the wakers its slots hold are
/// loom `Arc`s, which loom requires to be freed.
fn leak_async<const N: usize>() -> *mut ringlink_core::asynch::Ring<N> {
    Box::into_raw(Box::new(ringlink_core::asynch::Ring::<N>::new()))
}

/// # Safety
/// `ring` comes from [`leak_async`], and both halves split from it are dropped.
unsafe fn free_async<const N: usize>(ring: *mut ringlink_core::asynch::Ring<N>) {
    // SAFETY: forwarded caller contract: nothing refers to the ring any more.
    drop(unsafe { Box::from_raw(ring) });
}

/// An async consumer awaits data while the producer commits bytes from another
/// thread: every byte arrives in order and the consumer is always woken (a lost
/// wake-up leaves `block_on` parked forever, which loom reports as a deadlock).
#[test]
fn awaiting_consumer_never_misses_a_wakeup() {
    bounded().check(|| {
        let ring = leak_async::<2>();
        // SAFETY: the ring lives until `free_async` below, after both halves are gone.
        let (mut tx, mut rx) = unsafe { &mut *ring }.split();
        let producer = thread::spawn(move || {
            for b in 0..2u8 {
                while tx.try_write(&[b]).unwrap() == 0 {
                    thread::yield_now();
                }
            }
        });
        let mut got = 0u8;
        while got < 2 {
            let mut buf = [0u8; 2];
            let n = loom::future::block_on(rx.read(&mut buf)).unwrap();
            for &b in &buf[..n] {
                assert_eq!(b, got);
                got += 1;
            }
        }
        producer.join().unwrap();
        drop(rx);
        // SAFETY: both halves are dropped (the producer's with its thread).
        unsafe { free_async(ring) };
    });
}

/// An async producer awaits space in a ring of one byte while the consumer frees
/// it from another thread; then the consumer's drop ends the producer's last wait.
#[test]
fn awaiting_producer_never_misses_a_wakeup() {
    bounded().check(|| {
        let ring = leak_async::<1>();
        // SAFETY: the ring lives until `free_async` below, after both halves are gone.
        let (mut tx, mut rx) = unsafe { &mut *ring }.split();
        let consumer = thread::spawn(move || {
            let mut buf = [0u8; 1];
            loop {
                if rx.try_read(&mut buf).unwrap() == 1 {
                    assert_eq!(buf[0], 0);
                    break;
                }
                thread::yield_now();
            }
            // Dropping the consumer must wake a producer that awaits space.
        });
        loom::future::block_on(tx.write_all(&[0])).unwrap();
        let last = loom::future::block_on(tx.write_all(&[1, 2]));
        assert!(
            last.is_ok() || last == Err(ringlink_core::channel::ChannelError::PeerClosed),
            "{last:?}"
        );
        consumer.join().unwrap();
        drop(tx);
        // SAFETY: both halves are dropped (the consumer's with its thread).
        unsafe { free_async(ring) };
    });
}
