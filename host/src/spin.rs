//! The spin before parking of the shared-memory transports, with a budget grounded in
//! the measured cost of a park: the policy both adapters (`ringlink-unix` on Linux,
//! `ringlink-windows`) follow, written once. The clock the stamps are read from is the
//! adapter's (`CLOCK_MONOTONIC`, `QueryPerformanceCounter`): any system-wide monotonic
//! clock in nanoseconds that both processes share.
//!
//! ```
//! use std::time::Duration;
//! use ringlink_host::spin::Spin;
//!
//! let mut spin = Spin::new(Duration::from_micros(200));
//! assert_eq!(spin.budget(), Spin::INITIAL);
//! // A park that began at 1 ms and was ended by a wake-up sent at 5 ms, seen at 5.08 ms:
//! // waking cost 80 µs, and the budget moves towards it.
//! spin.learn(1_000_000, Some(5_000_000), 5_080_000);
//! assert!(spin.budget() > Spin::INITIAL);
//! assert!(!spin.run(|| false), "nothing became ready within the budget");
//! ```

use std::time::{Duration, Instant};

/// The spin before parking, grounded in what parking costs here: the spin-then-block
/// rule spins for about as long as blocking costs, so a wait that ends during the
/// spin costs no more than it had to, and one that outlasts it costs at most twice
/// the best choice made in hindsight.
///
/// What blocking costs is measured as it happens: every wake-up the peer sends
/// carries its send time on the system-wide monotonic clock, and a parked side
/// that is woken takes `now - stamp` (the time from the peer's wake-up to this side
/// running again) as a sample of the cost, bounded by its own park-to-wake time.
/// The budget follows a moving average of those samples, within `1 µs..=max`.
///
/// How late the answer was plays no part: a peer that answered late because it had
/// parked itself (or was busy, or idle) moves the measured cost not at all, so a
/// burst of parks cannot shrink the budget to nothing and leave both sides parking
/// on every message where wake-ups are slow (on a VM, 40-140 µs across vCPUs).
/// An idle pair still parks after one budget. A stamp is the peer's word: a lie
/// can only move the budget within the same bounds a slow peer could.
///
/// The spin yields the CPU between probes, so on a machine with fewer cores than
/// busy threads it hands the core to the peer it waits for.
#[derive(Debug, Clone, Copy)]
pub struct Spin {
    max: Duration,
    /// The measured cost of a park, a moving average in nanoseconds.
    cost_ns: u64,
}

impl Spin {
    /// The shortest budget a side that spins at all spins for.
    pub const FLOOR: Duration = Duration::from_micros(1);
    /// The budget before the first park has been measured.
    pub const INITIAL: Duration = Duration::from_micros(50);
    /// Each sample moves the average by this fraction (1/2^SHIFT) of its distance.
    pub const SHIFT: u32 = 2;

    /// A spin of at most `max` (zero: never spin), starting from [`Spin::INITIAL`].
    pub fn new(max: Duration) -> Spin {
        Spin {
            max,
            cost_ns: Self::INITIAL.min(max).as_nanos() as u64,
        }
    }

    /// How long the next wait spins before it parks.
    pub fn budget(&self) -> Duration {
        if self.max.is_zero() {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.cost_ns).clamp(Self::FLOOR.min(self.max), self.max)
    }

    /// Spins up to the budget until `ready()` holds; returns whether it did.
    pub fn run(&mut self, mut ready: impl FnMut() -> bool) -> bool {
        let budget = self.budget();
        if budget.is_zero() {
            return false;
        }
        let start = Instant::now();
        loop {
            for _ in 0..32 {
                if ready() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= budget {
                return false;
            }
            std::thread::yield_now();
        }
    }

    /// Learns from a park that began at `parked_at` and was ended by a wake-up
    /// stamped `stamp` (both on the adapter's system-wide monotonic clock, in nanoseconds), seen at `woken_at`. A stamp from
    /// before the park (a stale wake-up that ended it at once) or from the future
    /// says nothing about the cost and is ignored.
    pub fn learn(&mut self, parked_at: u64, stamp: Option<u64>, woken_at: u64) {
        let Some(stamp) = stamp else { return };
        if stamp < parked_at || stamp > woken_at {
            return;
        }
        let max = self.max.as_nanos() as u64;
        let sample = (woken_at - stamp).min(max);
        let cost = self.cost_ns as i64;
        let next = cost + ((sample as i64 - cost) >> Self::SHIFT);
        self.cost_ns = next.max(0) as u64;
    }
}

/// The spin's counterpart on an async runtime: a task whose ring is empty or full
/// yields to the runtime (wakes itself and returns `Pending`) for up to the spin
/// budget before it parks. Yielding is not spinning inside `poll`: every other ready
/// task of the runtime runs in between, and a runtime with nothing else to do polls
/// this one again at once, which is what makes a hand-over as fast as on the blocking
/// stream. After the budget the task parks, so an idle connection costs nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct YieldClock {
    /// When the current wait began yielding; `None` when it is not yielding.
    since: Option<Instant>,
    yields: u32,
}

impl YieldClock {
    /// Whether the current wait should yield once more: it began yielding less than
    /// `budget` ago (the first call starts it). Every 32nd yield also hands the CPU
    /// to the OS, as the blocking spin does between probes: where the peer waits for
    /// this CPU (fewer cores than busy threads), it gets it. Never blocks.
    pub fn keep_yielding(&mut self, budget: Duration) -> bool {
        if budget.is_zero() {
            return false;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        self.yields = self.yields.wrapping_add(1);
        if self.yields % 32 == 0 {
            std::thread::yield_now();
        }
        since.elapsed() < budget
    }

    /// The wait is over (found what it waited for, or parks): the next one starts
    /// a fresh clock.
    pub fn stop(&mut self) {
        self.since = None;
    }
}
