//! Parking and waking: each half's pair of auto-reset events, the send time a wake-up
//! leaves in the mapping's control page, and the guard against a peer that wakes this
//! side for nothing.

use super::*;

/// Outcome of parking.
pub(super) enum Park {
    /// The half's event was signalled: check the ring again. Carries the stamp the
    /// peer left with it, if any.
    Woken(Option<u64>),
    /// The deadline passed.
    TimedOut,
    /// The peer's process exited.
    PeerGone,
}

/// How many wake-ups in a row may find nothing to do (no byte, no room, no close)
/// before the peer counts as hostile. An honest peer causes at most a few: a
/// wake-up it decided to send before this side took the bytes it announced.
pub(super) const MAX_IDLE_WAKES: u32 = 32;

/// One half's wake-ups: the auto-reset event it sleeps on, and the event of the peer's
/// opposite half on the same ring (the reader's pairs with the peer's writer), which
/// it signals. Each event has one waiter, so a half can never take its own wake-up.
///
/// `SetEvent` never blocks, and an auto-reset event holds at most one pending
/// wake-up, so nothing the peer does to the events can block this side or queue up
/// work for it: a storm of signals ends each park at once, which the idle count turns
/// into an error.
pub(super) struct Wake {
    /// The event this half waits on.
    own: OwnedHandle,
    /// The event the peer's opposite half waits on.
    peer: OwnedHandle,
    /// Where the peer leaves the send time of a wake-up of `own` (in the mapping).
    own_stamp: *mut u64,
    /// Where this half leaves the send time of a wake-up of `peer` (in the mapping).
    peer_stamp: *mut u64,
    /// Wake-ups in a row that found nothing to do; see [`MAX_IDLE_WAKES`].
    pub(super) idle: u32,
}

// SAFETY: the stamp pointers point into the mapping that the half owning this `Wake`
// keeps alive (`Arc<Shared>`), and are only read and written with volatile accesses
// (the peer may write them at any time); the handles may be used from any thread.
unsafe impl Send for Wake {}
// SAFETY: as for `Send`: `&Wake` only signals the peer's event and writes a stamp.
unsafe impl Sync for Wake {}

impl Wake {
    /// # Safety
    ///
    /// `own_stamp` and `peer_stamp` must be 8-aligned, inside a mapping that outlives
    /// this `Wake`.
    pub(super) unsafe fn new(
        own: OwnedHandle,
        peer: OwnedHandle,
        own_stamp: *mut u64,
        peer_stamp: *mut u64,
    ) -> Wake {
        Wake {
            own,
            peer,
            own_stamp,
            peer_stamp,
            idle: 0,
        }
    }

    /// Wakes the peer's half; never blocks. The send time ([`monotonic_ns`]) goes into
    /// the control page first, from which the woken side learns what its park cost.
    pub(super) fn notify(&self) {
        // SAFETY: `peer_stamp` is aligned and inside the live mapping (see `new`); a
        // volatile write, as the peer reads it concurrently.
        unsafe { self.peer_stamp.write_volatile(monotonic_ns()) };
        set_event(&self.peer);
    }

    /// The event this half sleeps on, and the one it signals: for tests that play a
    /// hostile peer.
    pub(super) fn events(&self) -> [&OwnedHandle; 2] {
        [&self.own, &self.peer]
    }

    /// Counts a wake-up that found nothing to do, or forgets the count when it did
    /// (`progress`). Too many in a row is the peer waking us for nothing: an error.
    pub(super) fn count(&mut self, progress: bool) -> io::Result<()> {
        if progress {
            self.idle = 0;
            return Ok(());
        }
        self.idle += 1;
        if self.idle > MAX_IDLE_WAKES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "shared-memory connection failed: the peer keeps waking this side with nothing to do",
            ));
        }
        Ok(())
    }

    /// The send time the peer left with its last wake-up of this half, if any.
    pub(super) fn stamp(&self) -> Option<u64> {
        // SAFETY: `own_stamp` is aligned and inside the live mapping (see `new`); the
        // peer may write it at any time, so it is read once, volatile, and only ever
        // used as a bounded sample (see `Spin::learn`).
        let stamp = unsafe { self.own_stamp.read_volatile() };
        (stamp != 0).then_some(stamp)
    }

    /// Sleeps until woken, the peer's process exits, or `deadline`.
    pub(super) fn park(&self, peer: &OwnedHandle, deadline: Option<Instant>) -> io::Result<Park> {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Park::TimedOut);
                }
                Some(left)
            }
        };
        match wait_event_or_exit(&self.own, peer, timeout)? {
            Waited::Event => Ok(Park::Woken(self.stamp())),
            Waited::PeerExited => Ok(Park::PeerGone),
            Waited::TimedOut => Ok(Park::TimedOut),
        }
    }
}
