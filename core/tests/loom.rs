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
