//! loom models of where both halves of a shared-memory side park (`shm::parking`):
//! with the connection's one socket mocked, every interleaving of a reader and a
//! writer half parking at once and a peer waking them loses no wake-up (each half
//! is woken by the wake-up meant for it, whoever polls the socket), and a hang-up
//! wakes both.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p ringlink-unix --release --test
//! loom_parking` (`cargo xtask loom`).
#![cfg(all(loom, target_os = "linux"))]

use std::collections::VecDeque;
use std::io;
use std::time::Instant;

use loom::sync::atomic::{AtomicBool, Ordering, fence};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use ringlink_unix::shm_parking::{Drained, Half, Park, Parking, Readiness, WakeSource};

/// The connection's socket: wake-up records (the half each is for) and a hang-up.
#[derive(Default)]
struct Socket {
    queue: Mutex<(VecDeque<Half>, bool)>,
    readable: Condvar,
}

impl Socket {
    fn send(&self, half: Half) {
        self.queue.lock().unwrap().0.push_back(half);
        self.readable.notify_all();
    }

    fn hang_up(&self) {
        self.queue.lock().unwrap().1 = true;
        self.readable.notify_all();
    }
}

/// The parking's handle on the socket, which the peer's thread holds too.
struct Shared(Arc<Socket>);

impl WakeSource for Shared {
    fn wait(&self, _deadline: Option<Instant>) -> io::Result<Readiness> {
        let mut q = self.0.queue.lock().unwrap();
        loop {
            if q.1 {
                return Ok(Readiness::HungUp);
            }
            if !q.0.is_empty() {
                return Ok(Readiness::Readable);
            }
            q = self.0.readable.wait(q).unwrap();
        }
    }

    fn drain(&self, into: &mut Drained) -> io::Result<()> {
        let mut q = self.0.queue.lock().unwrap();
        for half in q.0.drain(..) {
            let i = match half {
                Half::Reader => 0,
                Half::Writer => 1,
            };
            into.woke[i] = Some(1);
        }
        into.gone = q.1;
        into.empty = true;
        Ok(())
    }
}

/// Runs `f` under loom, every interleaving with up to three preemptions (a hand-off
/// bug needs two: the poller stopped between its poll and its drain, the waiter
/// between its look at the flags and its wait), which keeps the models to seconds.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// One ring's state as a half sees it: whether there is something for it (data for
/// a reader, room for a writer), and its announcement that it parks.
#[derive(Default)]
struct Ring {
    ready: AtomicBool,
    parked: AtomicBool,
}

/// A half waits as the streams do: look at the ring, announce the park, look again,
/// then park; a wake-up that finds nothing sends it round again.
fn wait_for(ring: &Ring, parking: &Parking<Shared>, half: Half) -> Park {
    loop {
        if ring.ready.load(Ordering::SeqCst) {
            return Park::Woken(None);
        }
        parking.announce(half);
        // As the ring does: the announcement, a full fence, the second look.
        ring.parked.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if ring.ready.load(Ordering::SeqCst) {
            ring.parked.store(false, Ordering::SeqCst);
            return Park::Woken(None);
        }
        let parked = parking.park(half, None).unwrap();
        ring.parked.store(false, Ordering::SeqCst);
        if parked == Park::PeerGone {
            return parked;
        }
    }
}

/// The peer makes something ready for `half` and wakes it if it announced a park.
fn peer_signals(ring: &Ring, socket: &Socket, half: Half) {
    ring.ready.store(true, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    if ring.parked.load(Ordering::SeqCst) {
        socket.send(half);
    }
}

/// Both halves parked at once on the one socket, the peer waking each: whichever
/// half polls, both are woken (no lost wake-up, no wake-up taken by the wrong half).
#[test]
fn both_halves_parked_are_each_woken() {
    model(|| {
        let socket = Arc::new(Socket::default());
        let parking = Arc::new(Parking::new(Shared(socket.clone())));
        let rings = Arc::new([Ring::default(), Ring::default()]);
        let writer = {
            let (parking, rings) = (parking.clone(), rings.clone());
            thread::spawn(move || wait_for(&rings[1], &parking, Half::Writer))
        };
        let peer = {
            let (socket, rings) = (socket.clone(), rings.clone());
            thread::spawn(move || {
                peer_signals(&rings[1], &socket, Half::Writer);
                peer_signals(&rings[0], &socket, Half::Reader);
            })
        };
        assert_eq!(
            wait_for(&rings[0], &parking, Half::Reader),
            Park::Woken(None)
        );
        assert_eq!(writer.join().unwrap(), Park::Woken(None));
        peer.join().unwrap();
    });
}

/// Only the other half's wake-up comes at first: if the reader polls, it hands it
/// over and keeps waiting; then its own comes and it leaves too.
#[test]
fn the_poller_hands_over_the_other_halfs_wake_up() {
    model(|| {
        let socket = Arc::new(Socket::default());
        let parking = Arc::new(Parking::new(Shared(socket.clone())));
        let rings = Arc::new([Ring::default(), Ring::default()]);
        let reader = {
            let (parking, rings) = (parking.clone(), rings.clone());
            thread::spawn(move || wait_for(&rings[0], &parking, Half::Reader))
        };
        let peer = {
            let (socket, rings) = (socket.clone(), rings.clone());
            thread::spawn(move || peer_signals(&rings[1], &socket, Half::Writer))
        };
        assert_eq!(
            wait_for(&rings[1], &parking, Half::Writer),
            Park::Woken(None)
        );
        peer.join().unwrap();
        peer_signals(&rings[0], &socket, Half::Reader);
        assert_eq!(reader.join().unwrap(), Park::Woken(None));
    });
}

/// The peer hangs up while both halves wait: both are woken with `PeerGone`.
#[test]
fn a_hang_up_wakes_both_halves() {
    model(|| {
        let socket = Arc::new(Socket::default());
        let parking = Arc::new(Parking::new(Shared(socket.clone())));
        let rings = Arc::new([Ring::default(), Ring::default()]);
        let writer = {
            let (parking, rings) = (parking.clone(), rings.clone());
            thread::spawn(move || wait_for(&rings[1], &parking, Half::Writer))
        };
        let peer = {
            let socket = socket.clone();
            thread::spawn(move || socket.hang_up())
        };
        assert_eq!(wait_for(&rings[0], &parking, Half::Reader), Park::PeerGone);
        assert_eq!(writer.join().unwrap(), Park::PeerGone);
        peer.join().unwrap();
    });
}
