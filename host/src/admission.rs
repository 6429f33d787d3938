//! What a listener checks before it hands out a connection, written once for every adapter
//! and flavour (blocking and tokio): the [`PeerPolicy`] and the `max_connections` limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::{Error, PeerCredentials, PeerPolicy, UserId};

/// Counts one accepted connection against its listener's `max_connections` until dropped.
/// A stream holds it for as long as the connection lives (also as the control connection of
/// shared memory).
#[derive(Debug)]
pub struct ConnectionSlot(Arc<AtomicUsize>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A listener's peer policy and connection limit, and what they refused.
#[derive(Debug)]
pub struct Admission {
    policy: PeerPolicy,
    /// Whether the OS already enforces the policy before a connection reaches accept (a
    /// Windows pipe whose access list admits its owner alone), so it is not checked again.
    enforced_by_os: bool,
    own: UserId,
    max_connections: Option<usize>,
    live: Arc<AtomicUsize>,
    refused: AtomicU64,
}

/// Why [`Admission::admit`] turned a connection away; the caller closes it and goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The peer policy refused the peer (or its credentials could not be read).
    Policy,
    /// `max_connections` connections are open.
    Limit,
}

impl Admission {
    /// Admission for a listener running as `own`.
    pub fn new(policy: PeerPolicy, own: UserId, max_connections: Option<usize>) -> Admission {
        Admission {
            policy,
            enforced_by_os: false,
            own,
            max_connections,
            live: Arc::new(AtomicUsize::new(0)),
            refused: AtomicU64::new(0),
        }
    }

    /// Marks the policy as already enforced by the OS's access control (it is then not
    /// checked at accept, so no credentials are read).
    pub fn enforced_by_os(mut self, enforced: bool) -> Admission {
        self.enforced_by_os = enforced;
        self
    }

    /// Checks a fresh connection: the policy against `peer()` (called only when a policy
    /// other than [`PeerPolicy::Any`] must be checked), then the limit. `Ok(slot)` admits it
    /// (`slot` is `None` without a limit); a refusal is counted in
    /// [`refused_count`](Self::refused_count).
    pub fn admit(
        &self,
        peer: impl FnOnce() -> Result<PeerCredentials, Error>,
    ) -> Result<Option<ConnectionSlot>, Refusal> {
        if self.policy != PeerPolicy::Any && !self.enforced_by_os {
            let allowed = peer().is_ok_and(|peer| self.policy.allows(&peer, &self.own));
            if !allowed {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Policy);
            }
        }
        let Some(max) = self.max_connections else {
            return Ok(None);
        };
        if self.live.fetch_add(1, Ordering::AcqRel) >= max {
            self.live.fetch_sub(1, Ordering::AcqRel);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Limit);
        }
        Ok(Some(ConnectionSlot(self.live.clone())))
    }

    /// The peer policy in force.
    pub fn policy(&self) -> &PeerPolicy {
        &self.policy
    }

    /// How many connections were closed at accept because of the peer policy or the
    /// connection limit.
    pub fn refused_count(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// How many accepted connections are open, when `max_connections` is set.
    pub fn open_connections(&self) -> Option<usize> {
        self.max_connections
            .map(|_| self.live.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_frees_a_slot_when_a_connection_closes() {
        let admission = Admission::new(PeerPolicy::Any, UserId::from_uid(1), Some(1));
        let first = admission.admit(|| unreachable!()).unwrap();
        assert_eq!(
            admission.admit(|| unreachable!()).unwrap_err(),
            Refusal::Limit
        );
        assert_eq!(admission.open_connections(), Some(1));
        drop(first);
        assert_eq!(admission.open_connections(), Some(0));
        assert!(admission.admit(|| unreachable!()).unwrap().is_some());
        assert_eq!(admission.refused_count(), 1);
    }

    #[test]
    fn the_policy_is_checked_unless_the_os_enforces_it() {
        let me = UserId::from_uid(1);
        let stranger = || Ok(PeerCredentials::new(Some(2), Some(UserId::from_uid(2))));
        let checked = Admission::new(PeerPolicy::SameUser, me.clone(), None);
        assert_eq!(checked.admit(stranger).unwrap_err(), Refusal::Policy);
        let unreadable = || Err(Error::bare(crate::ErrorKind::Other));
        assert_eq!(checked.admit(unreadable).unwrap_err(), Refusal::Policy);
        let by_os = Admission::new(PeerPolicy::SameUser, me, None).enforced_by_os(true);
        assert!(by_os.admit(|| unreachable!()).is_ok());
    }
}
