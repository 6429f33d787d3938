//! Where both halves of one side of a shared-memory connection park: the connection's
//! one socket, which carries the wake-ups of both rings, polled by one half at a time.
//!
//! Each wake-up says which half it is for (see `park::Wake`). In one process the
//! reading and the writing half of a split stream may be parked at once on the same
//! socket: exactly one of them polls it (the *poller*), the other waits on a
//! process-local condition variable. The poller drains every pending wake-up
//! without blocking, records which half each was for (process-private state, never
//! the shared mapping), wakes the waiter, and returns only for its own wake-ups; when
//! it leaves, a waiting half takes over the polling. A hang-up (the peer is gone)
//! wakes both halves, each half keeps its own deadline, and wake-ups drained for a
//! half that is not parked are counted, so a peer that keeps sending them is an
//! `InvalidData` error rather than a poller that spins.
//!
//! No wake-up is lost: a half announces in the ring that it parks, checks the ring
//! again, and only then comes here; a wake-up sent after the announcement either
//! still lies in the socket (the next poll sees it) or was drained into this half's
//! pending flag, which is read under the same lock the waiter sleeps with.
//!
//! The tokio flavour uses the same state: a task that is not woken yet stores its
//! waker here, the reactor is given [`Parking::reactor_waker`] (which wakes every
//! stored task), and whichever task runs drains the socket for both.
//!
//! Generic over the socket ([`WakeSource`]) so that the loom models
//! (`host-unix/tests/loom_parking.rs`) check this very code with a mocked socket.

use std::io;
use std::task::Waker;
use std::time::Instant;

#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, Ordering};
#[cfg(loom)]
use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU32, Ordering};
#[cfg(not(loom))]
use std::sync::{Condvar, Mutex, MutexGuard};

/// How many wake-ups in a row may find nothing to do (no byte, no room, no close)
/// before the peer counts as hostile; and how many drains in a row may bring
/// wake-ups for a half that is not parked. An honest peer causes at most a few:
/// a wake-up it decided to send just before this side stopped waiting.
pub const MAX_IDLE_WAKES: u32 = 32;

/// Which half of this side a wake-up is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// The reading half: data arrived in its ring, or the peer's writer closed.
    Reader,
    /// The writing half: room was freed in its ring, or the peer's reader closed.
    Writer,
}

impl Half {
    fn index(self) -> usize {
        match self {
            Half::Reader => 0,
            Half::Writer => 1,
        }
    }
}

/// Outcome of parking.
#[derive(Debug, PartialEq, Eq)]
pub enum Park {
    /// A wake-up for this half came (or the socket was readable with nothing in it):
    /// check the ring again. Carries the stamp of the newest wake-up taken, if any.
    Woken(Option<u64>),
    /// The deadline passed.
    TimedOut,
    /// The peer's socket hung up: it is gone.
    PeerGone,
}

/// What a poll of the socket saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Bytes to drain.
    Readable,
    /// The peer's end hung up (there may be bytes to drain still).
    HungUp,
    /// The deadline passed first.
    TimedOut,
}

/// What one drain of the socket found.
#[derive(Debug, Default)]
pub struct Drained {
    /// Per half (reader, writer): the stamp of the newest wake-up for it, if one came.
    pub woke: [Option<u64>; 2],
    /// The peer's end is closed.
    pub gone: bool,
    /// Whether the socket is empty now (so readiness may be cleared); `false`
    /// when the drain stopped at its bound with more bytes waiting.
    pub empty: bool,
}

/// The socket both halves park on: the connection's Unix socket, or a mock in the
/// loom models.
pub trait WakeSource {
    /// Blocks until the socket is readable or hung up, or until `deadline`.
    fn wait(&self, deadline: Option<Instant>) -> io::Result<Readiness>;
    /// Takes pending wake-ups without blocking (a bounded amount). Malformed ones
    /// (a bad tag, a partial record) are an `InvalidData` error.
    fn drain(&self, into: &mut Drained) -> io::Result<()>;
}

/// What the halves share, process-private.
#[derive(Default)]
struct State {
    /// A half is blocked in [`WakeSource::wait`]; nobody else may poll or drain.
    polling: bool,
    /// Per half: it is inside [`Parking::park`] (or its task waits in the reactor).
    parked: [bool; 2],
    /// Per half: a wake-up for it was drained and not yet taken.
    pending: [bool; 2],
    /// Per half: the newest stamp among the pending wake-ups.
    stamp: [Option<u64>; 2],
    /// Per half: drains that brought it wake-ups while it was not parked, since it
    /// last announced a park (`seen` is the [`Parking::announce`] count then).
    strays: [u32; 2],
    seen: [u32; 2],
    /// The peer hung up; every park from now on ends at once.
    gone: bool,
    /// The peer broke the wake-up protocol; every park from now on fails.
    broken: Option<String>,
    /// Parks that began while the other half was parked (for tests).
    overlaps: u64,
}

impl State {
    /// What ends a park of half `h` now, if anything.
    fn settled(&mut self, h: usize) -> Option<io::Result<Park>> {
        if let Some(why) = &self.broken {
            return Some(Err(io::Error::new(io::ErrorKind::InvalidData, why.clone())));
        }
        if self.pending[h] {
            self.pending[h] = false;
            return Some(Ok(Park::Woken(self.stamp[h].take())));
        }
        if self.gone {
            return Some(Ok(Park::PeerGone));
        }
        None
    }

    /// Records a drain's findings; returns whether it found anything at all.
    /// `announced`: each half's [`Parking::announce`] count.
    fn record(&mut self, drained: io::Result<Drained>, announced: [u32; 2]) -> bool {
        let drained = match drained {
            Ok(d) => d,
            Err(e) => {
                self.broken = Some(format!("shared-memory connection failed: {e}"));
                return true;
            }
        };
        let mut found = drained.gone;
        for (h, woke) in drained.woke.into_iter().enumerate() {
            let Some(stamp) = woke else { continue };
            found = true;
            self.pending[h] = true;
            self.stamp[h] = Some(stamp);
            if self.seen[h] != announced[h] {
                // A park was announced since: wake-ups sent for it are no strays.
                self.seen[h] = announced[h];
                self.strays[h] = 0;
            }
            if !self.parked[h] {
                self.strays[h] += 1;
                if self.strays[h] > MAX_IDLE_WAKES {
                    self.broken = Some(
                        "shared-memory connection failed: the peer keeps waking a half \
                         that does not wait"
                            .into(),
                    );
                }
            }
        }
        self.gone |= drained.gone;
        found
    }
}

/// The task wakers of the tokio flavour, apart from [`State`] so that the reactor's
/// waker holds nothing but them.
#[derive(Default)]
struct TaskWakers {
    slots: Mutex<[Option<Waker>; 2]>,
}

impl TaskWakers {
    fn wake(&self, halves: [bool; 2]) {
        let woken: Vec<Waker> = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots
                .iter_mut()
                .zip(halves)
                .filter_map(|(slot, wake)| if wake { slot.take() } else { None })
                .collect()
        };
        // Outside the lock: a waker may run its task right here.
        woken.into_iter().for_each(Waker::wake);
    }
}

impl std::task::Wake for TaskWakers {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        TaskWakers::wake(self, [true, true]);
    }
}

/// Where both halves of one side park; see the module docs.
pub struct Parking<S> {
    source: S,
    state: Mutex<State>,
    /// The waiting (non-polling) halves sleep on it.
    turn: Condvar,
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    wakers: std::sync::Arc<TaskWakers>,
    /// Per half: how many parks it announced in its ring (process-local, relaxed:
    /// only the stray count reads it).
    announced: [AtomicU32; 2],
}

impl<S: WakeSource> Parking<S> {
    /// Parking on `source`, which then carries nothing but wake-ups.
    pub fn new(source: S) -> Parking<S> {
        Parking {
            source,
            state: Mutex::new(State::default()),
            turn: Condvar::new(),
            wakers: Default::default(),
            announced: [AtomicU32::new(0), AtomicU32::new(0)],
        }
    }

    /// Says that `half` announces a park in its ring (whether or not it then parks):
    /// the peer may send it wake-ups now, so those that come while it is not parked
    /// (it found bytes or room on its last look) count as strays afresh.
    pub fn announce(&self, half: Half) {
        self.announced[half.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn announced(&self) -> [u32; 2] {
        [0, 1].map(|h| self.announced[h].load(Ordering::Relaxed))
    }

    /// The socket.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// How many parks began while the other half was parked: for tests that
    /// mean to exercise the hand-off.
    #[cfg(test)]
    pub fn overlaps(&self) -> u64 {
        self.lock().overlaps
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code that holds the lock can panic; a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps until a wake-up for `half` comes, the peer is gone, or `deadline`.
    /// Call it only after announcing the park in the ring and checking the ring
    /// again. A wake-up that came before (drained while this half was busy) ends
    /// the park at once.
    pub fn park(&self, half: Half, deadline: Option<Instant>) -> io::Result<Park> {
        let h = half.index();
        let mut st = self.lock();
        st.parked[h] = true;
        st.strays[h] = 0;
        st.overlaps += u64::from(st.parked[1 - h]);
        let outcome = loop {
            if let Some(outcome) = st.settled(h) {
                break outcome;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break Ok(Park::TimedOut);
            }
            if st.polling {
                st = match deadline {
                    None => self.turn.wait(st).unwrap_or_else(|e| e.into_inner()),
                    Some(d) => {
                        let (st, _) = self
                            .turn
                            .wait_timeout(st, d - now)
                            .unwrap_or_else(|e| e.into_inner());
                        st
                    }
                };
                continue;
            }
            // This half polls: the socket is its alone until it takes the lock again.
            st.polling = true;
            drop(st);
            let ready = self.source.wait(deadline);
            st = self.lock();
            st.polling = false;
            let spurious = match ready {
                Ok(Readiness::TimedOut) => false,
                Ok(readiness) => {
                    let mut drained = Drained::default();
                    let result = self.source.drain(&mut drained).map(|()| drained);
                    let found = st.record(result, self.announced());
                    st.gone |= readiness == Readiness::HungUp;
                    !found && readiness == Readiness::Readable
                }
                Err(e) => {
                    st.polling = false;
                    self.turn.notify_all();
                    break Err(e);
                }
            };
            // Whatever came: the waiter looks at its flag, and takes over the
            // polling if this half is about to leave.
            self.turn.notify_all();
            if spurious && !st.pending[h] {
                // Readable with nothing in it: let the caller count it as idle.
                break Ok(Park::Woken(None));
            }
        };
        st.parked[h] = false;
        outcome
    }

    /// The tokio flavour, first step: ends a park of `half` if something already
    /// did (a wake-up drained by the other half's task, a hang-up, a broken peer);
    /// else stores `waker` to be woken when that happens, and returns `None`: then
    /// wait for the socket in the reactor with [`reactor_waker`](Self::reactor_waker)
    /// and [`drain_now`](Self::drain_now) when it is readable.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn poll_settled(&self, half: Half, waker: &Waker) -> Option<io::Result<Park>> {
        let h = half.index();
        let mut st = self.lock();
        if !st.parked[h] {
            st.parked[h] = true;
            st.strays[h] = 0;
        }
        match st.settled(h) {
            Some(outcome) => {
                st.parked[h] = false;
                drop(st);
                self.wakers.slots.lock().unwrap_or_else(|e| e.into_inner())[h] = None;
                Some(outcome)
            }
            None => {
                // Stored under the state lock: a drain that records a wake-up for this
                // half wakes the waker after, so it cannot slip between check and store.
                let mut slots = self.wakers.slots.lock().unwrap_or_else(|e| e.into_inner());
                match &mut slots[h] {
                    Some(w) if w.will_wake(waker) => {}
                    slot => *slot = Some(waker.clone()),
                }
                None
            }
        }
    }

    /// The tokio flavour: a half that stops waiting without [`poll_settled`]
    /// ending its park (its stream is dropped, or its wait timed out).
    ///
    /// [`poll_settled`]: Self::poll_settled
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn leave(&self, half: Half) {
        let h = half.index();
        self.lock().parked[h] = false;
        self.wakers.slots.lock().unwrap_or_else(|e| e.into_inner())[h] = None;
    }

    /// The waker to give the reactor for the socket: it wakes every task that
    /// waits here, so no task is stranded when another's registration replaced
    /// its own or when the task the reactor woke no longer polls.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn reactor_waker(&self) -> Waker {
        Waker::from(self.wakers.clone())
    }

    /// The tokio flavour: drains the socket (the reactor said it is readable) and
    /// wakes the tasks of the halves it brought news for. Returns whether the
    /// socket is empty now, so the caller may clear the readiness.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn drain_now(&self) -> bool {
        let mut st = self.lock();
        let mut drained = Drained::default();
        let result = self.source.drain(&mut drained);
        let empty = drained.empty || result.is_err();
        st.record(result.map(|()| drained), self.announced());
        let everyone = st.gone || st.broken.is_some();
        let wake = [0, 1].map(|h| everyone || st.pending[h]);
        drop(st);
        self.wakers.wake(wake);
        empty
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::time::Duration;

    /// A socket in memory: wake-ups for the reader (0) or the writer (1), and a hang-up.
    #[derive(Default)]
    struct Mock {
        queue: std::sync::Mutex<(VecDeque<usize>, bool)>,
        ready: std::sync::Condvar,
    }

    impl Mock {
        fn send(&self, h: usize) {
            self.queue.lock().unwrap().0.push_back(h);
            self.ready.notify_all();
        }
        fn hang_up(&self) {
            self.queue.lock().unwrap().1 = true;
            self.ready.notify_all();
        }
    }

    impl WakeSource for &Mock {
        fn wait(&self, deadline: Option<Instant>) -> io::Result<Readiness> {
            let mut q = self.queue.lock().unwrap();
            loop {
                if q.1 {
                    return Ok(Readiness::HungUp);
                }
                if !q.0.is_empty() {
                    return Ok(Readiness::Readable);
                }
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                if left.is_some_and(|l| l.is_zero()) {
                    return Ok(Readiness::TimedOut);
                }
                q = match left {
                    None => self.ready.wait(q).unwrap(),
                    Some(l) => self.ready.wait_timeout(q, l).unwrap().0,
                };
            }
        }
        fn drain(&self, into: &mut Drained) -> io::Result<()> {
            let mut q = self.queue.lock().unwrap();
            for h in q.0.drain(..) {
                if h > 1 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "bad tag"));
                }
                into.woke[h] = Some(1);
            }
            into.gone = q.1;
            into.empty = true;
            Ok(())
        }
    }

    #[test]
    fn deadlines_stay_per_half() {
        let mock = Mock::default();
        let parking = Parking::new(&mock);
        std::thread::scope(|s| {
            let reader = s.spawn(|| parking.park(Half::Reader, None).unwrap());
            let short = Instant::now() + Duration::from_millis(50);
            assert_eq!(
                parking.park(Half::Writer, Some(short)).unwrap(),
                Park::TimedOut
            );
            mock.send(0);
            assert_eq!(reader.join().unwrap(), Park::Woken(Some(1)));
        });
    }

    #[test]
    fn a_bad_tag_breaks_both_halves() {
        let mock = Mock::default();
        let parking = Parking::new(&mock);
        mock.send(7);
        let err = parking.park(Half::Reader, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = parking.park(Half::Writer, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn wake_ups_for_a_half_that_does_not_wait_are_bounded() {
        let mock = Mock::default();
        let parking = Parking::new(&mock);
        let deadline = Instant::now() + Duration::from_secs(10);
        let err = std::thread::scope(|s| {
            let reader = s.spawn(|| parking.park(Half::Reader, Some(deadline)));
            for _ in 0..=MAX_IDLE_WAKES * 4 {
                mock.send(1);
                std::thread::sleep(Duration::from_millis(1));
            }
            reader.join().unwrap()
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }

    #[test]
    fn a_hang_up_wakes_both_halves() {
        let mock = Mock::default();
        let parking = Parking::new(&mock);
        std::thread::scope(|s| {
            let r = s.spawn(|| parking.park(Half::Reader, None).unwrap());
            let w = s.spawn(|| parking.park(Half::Writer, None).unwrap());
            std::thread::sleep(Duration::from_millis(20));
            mock.hang_up();
            assert_eq!(r.join().unwrap(), Park::PeerGone);
            assert_eq!(w.join().unwrap(), Park::PeerGone);
        });
    }
}
