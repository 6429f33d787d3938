//! [`WakerSlot`]: where a task that awaits a ring leaves its waker, and the one
//! place that picks how it is stored.
//!
//! - **Hosts** (compare-and-swap, an operating system: `target_has_atomic = "32"`
//!   and not `target_os = "none"`) and loom models: lock-free (the `AtomicWaker` state
//!   machine of futures/tokio: `register` and `wake` never wait for each other, and a
//!   `wake` that races a `register` makes the registering side wake its own waker).
//!   There, a critical section would be one process-wide lock.
//! - **Bare metal** (`thumbv6m`, which has no compare-and-swap, and every other
//!   `target_os = "none"`): a `critical_section::Mutex`, held only to move the waker
//!   in or out, never while it runs. On one core with interrupt priorities the
//!   lock-free slot could livelock: a task polled from a higher-priority interrupt
//!   that registers while a lower-priority `wake` is half-way would wake itself
//!   again and again, and the `wake` it preempted never finishes.
//!
//! # No lost wake-up
//!
//! Both sides follow one protocol, the same as the rings' parking protocol:
//!
//! - the **waiter** calls [`register`](WakerSlot::register) (stores its waker, raises
//!   the slot's `armed` flag, `SeqCst` fence) and *then* checks the ring once more;
//!   it returns `Pending` only if the ring still is not ready, and calls
//!   [`disarm`](WakerSlot::disarm) once it is;
//! - the **publisher** stores its ring index (Release) and *then* calls
//!   [`wake`](WakerSlot::wake) (`SeqCst` fence, reads `armed`, takes the waker only
//!   when it is raised, so an interrupt handler that commits while nobody waits pays a
//!   fence and a load).
//!
//! Of the two fences one comes first: either the publisher sees `armed` (and the
//! waker), or the waiter's re-check sees the new index. `core/tests/loom.rs` checks
//! this, and fails when either fence or the re-check is left out.
//!
//! ```
//! use core::task::{Context, Waker};
//! use ringlink_core::waker::WakerSlot;
//!
//! static SLOT: WakerSlot = WakerSlot::new();
//! let cx = Context::from_waker(Waker::noop());
//! SLOT.register(cx.waker()); // then check the ring again before returning Pending
//! SLOT.wake(); // the publisher, after its Release store: wakes the task once
//! SLOT.wake(); // nothing registered any more: does nothing
//! SLOT.disarm(); // the waiter found what it waited for
//! ```

use core::task::Waker;

use crate::sync::{AtomicU32, Ordering, fence};

#[cfg(any(loom, all(target_has_atomic = "32", not(target_os = "none"))))]
use self::atomic::Cell;
#[cfg(not(any(loom, all(target_has_atomic = "32", not(target_os = "none")))))]
use self::cs::Cell;

/// Holds the waker of the one task that awaits a ring (data for a consumer, space
/// for a producer); any number of contexts (threads, interrupt handlers) may wake it.
///
/// See the [module docs](self) for the protocol.
pub struct WakerSlot {
    /// Non-zero while the waiter may be asleep. Written only by the waiter.
    armed: AtomicU32,
    cell: Cell,
}

impl WakerSlot {
    /// An empty slot. Usable in `static` items.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        WakerSlot {
            armed: AtomicU32::new(0),
            cell: Cell::new(),
        }
    }

    /// An empty slot (loom models).
    #[cfg(loom)]
    pub fn new() -> Self {
        WakerSlot {
            armed: AtomicU32::new(0),
            cell: Cell::new(),
        }
    }

    /// The waiter's first half: stores `waker` for the next [`wake`](Self::wake) and
    /// raises the flag. Check the ring again afterwards, and return `Pending` only if
    /// it is still not ready. Only one task (the slot's owner) may call it.
    pub fn register(&self, waker: &Waker) {
        self.cell.register(waker);
        self.armed.store(1, Ordering::Relaxed);
        // Orders the flag (and the waker) before the caller's re-check of the ring,
        // against the fence in `wake`.
        fence(Ordering::SeqCst);
    }

    /// The waiter found the ring ready: publishers stop looking for a waker.
    pub fn disarm(&self) {
        self.armed.store(0, Ordering::Relaxed);
    }

    /// The publisher's half, after its Release store of the ring index: wakes the
    /// waiting task, if there is one. Callable from any context, any number at once.
    pub fn wake(&self) {
        // Orders the caller's index store before the flag's load, against the
        // fence in `register`.
        fence(Ordering::SeqCst);
        if self.armed.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(waker) = self.cell.take() {
            waker.wake();
        }
    }
}

impl Default for WakerSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for WakerSlot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WakerSlot")
            .field("armed", &(self.armed.load(Ordering::Relaxed) != 0))
            .finish_non_exhaustive()
    }
}

#[cfg(any(loom, all(target_has_atomic = "32", not(target_os = "none"))))]
mod atomic {
    use core::cell::UnsafeCell;
    use core::task::Waker;

    use crate::sync::{AtomicU32, Ordering};

    /// Nobody is registering or taking; the cell may hold a waker.
    const WAITING: u32 = 0;
    /// `register` owns the cell.
    const REGISTERING: u32 = 0b01;
    /// `take` owns the cell (or `register` does, and must wake when it is done).
    const WAKING: u32 = 0b10;

    /// A waker cell with one registering side and any number of taking sides.
    pub(super) struct Cell {
        state: AtomicU32,
        waker: UnsafeCell<Option<Waker>>,
    }

    // SAFETY: the waker is only touched by the side that moved `state` out of
    // `WAITING` (a compare-and-swap or `fetch_or` hands it to exactly one side),
    // and the hand-over is ordered by the AcqRel read-modify-writes on `state`.
    unsafe impl Sync for Cell {}
    // SAFETY: a `Waker` is `Send`.
    unsafe impl Send for Cell {}

    impl Cell {
        #[cfg(not(loom))]
        pub(super) const fn new() -> Self {
            Cell {
                state: AtomicU32::new(WAITING),
                waker: UnsafeCell::new(None),
            }
        }

        #[cfg(loom)]
        pub(super) fn new() -> Self {
            Cell {
                state: AtomicU32::new(WAITING),
                waker: UnsafeCell::new(None),
            }
        }

        pub(super) fn register(&self, waker: &Waker) {
            match self.state.compare_exchange(
                WAITING,
                REGISTERING,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // SAFETY: `REGISTERING` gives this side the cell; a concurrent
                    // `take` only sets `WAKING` and leaves the cell alone.
                    let cell = unsafe { &mut *self.waker.get() };
                    match cell {
                        Some(old) if old.will_wake(waker) => {}
                        _ => *cell = Some(waker.clone()),
                    }
                    let done = self.state.compare_exchange(
                        REGISTERING,
                        WAITING,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                    if done.is_err() {
                        // A `take` came while we held the cell and left the waking to us.
                        // SAFETY: the state is `REGISTERING | WAKING`: still ours.
                        let woken = unsafe { &mut *self.waker.get() }.take();
                        self.state.store(WAITING, Ordering::Release);
                        if let Some(w) = woken {
                            w.wake();
                        }
                    }
                }
                // A `take` holds the cell right now and may take the old waker: wake
                // this one ourselves, so the task polls (and re-checks) once more.
                // The `take` is a few instructions from done: let it finish.
                Err(_) => {
                    waker.wake_by_ref();
                    crate::sync::spin_loop();
                }
            }
        }

        pub(super) fn take(&self) -> Option<Waker> {
            match self.state.fetch_or(WAKING, Ordering::AcqRel) {
                WAITING => {
                    // SAFETY: this side moved the state from `WAITING` to `WAKING`.
                    let w = unsafe { &mut *self.waker.get() }.take();
                    self.state.fetch_and(!WAKING, Ordering::Release);
                    w
                }
                // `register` holds the cell and will see `WAKING`, or another `take`
                // is emptying it: either way the task gets woken.
                _ => None,
            }
        }
    }
}

#[cfg(not(any(loom, all(target_has_atomic = "32", not(target_os = "none")))))]
mod cs {
    use core::cell::RefCell;
    use core::task::Waker;

    use critical_section::Mutex;

    /// A waker cell behind a critical section (targets without compare-and-swap).
    pub(super) struct Cell {
        waker: Mutex<RefCell<Option<Waker>>>,
    }

    impl Cell {
        pub(super) const fn new() -> Self {
            Cell {
                waker: Mutex::new(RefCell::new(None)),
            }
        }

        pub(super) fn register(&self, waker: &Waker) {
            // Clone outside the critical section: only the move happens inside.
            let mut new = Some(waker.clone());
            let old = critical_section::with(|cs| {
                let mut cell = self.waker.borrow_ref_mut(cs);
                match &*cell {
                    Some(old) if old.will_wake(waker) => None,
                    _ => core::mem::replace(&mut *cell, new.take()),
                }
            });
            // Dropped outside the critical section too.
            drop((old, new));
        }

        pub(super) fn take(&self) -> Option<Waker> {
            critical_section::with(|cs| self.waker.borrow_ref_mut(cs).take())
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn wakes_once_per_registration_and_only_when_armed() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let slot = WakerSlot::new();
        slot.wake();
        slot.register(&waker);
        slot.register(&waker);
        slot.wake();
        slot.wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        slot.register(&waker);
        slot.disarm();
        slot.wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "disarmed: not woken");
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<WakerSlot>();
    }
}
