//! Who is on the other end of a connection, the same on every OS: a process id and a user
//! identity ([`UserId`]: a uid on Unix, a SID on Windows), and the [`PeerPolicy`] a
//! listener checks them against at accept.
//!
//! ```
//! use ringlink_host::{PeerCredentials, PeerPolicy, UserId};
//!
//! let me = UserId::from_uid(1000);
//! let peer = PeerCredentials::new(Some(4242), Some(me.clone()));
//! assert_eq!(peer.pid(), Some(4242));
//! assert!(PeerPolicy::same_user().allows(&peer, &me));
//! assert!(!PeerPolicy::users([UserId::from_uid(0)]).allows(&peer, &me));
//! println!("{peer}"); // "pid 4242, uid 1000"
//! ```

use std::fmt;

/// A user as the operating system knows it: a numeric uid on Unix, a security identifier
/// (SID, in its `S-1-5-...` string form) on Windows. Two values are equal when they name the
/// same user; [`Display`](fmt::Display) prints `uid 1000` or the SID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Repr);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Repr {
    Uid(u32),
    Sid(Box<str>),
}

impl UserId {
    /// The Unix user with this uid.
    pub const fn from_uid(uid: u32) -> UserId {
        UserId(Repr::Uid(uid))
    }

    /// The Windows user with this SID, in string form (`S-1-5-21-...`); the string is
    /// kept in upper case, as Windows prints SIDs.
    pub fn from_sid(sid: &str) -> UserId {
        UserId(Repr::Sid(sid.trim().to_ascii_uppercase().into()))
    }

    /// The uid, when this is a Unix user.
    pub const fn uid(&self) -> Option<u32> {
        match &self.0 {
            Repr::Uid(uid) => Some(*uid),
            Repr::Sid(_) => None,
        }
    }

    /// The SID string, when this is a Windows user.
    pub fn sid(&self) -> Option<&str> {
        match &self.0 {
            Repr::Uid(_) => None,
            Repr::Sid(sid) => Some(sid),
        }
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Uid(uid) => write!(f, "uid {uid}"),
            Repr::Sid(sid) => f.write_str(sid),
        }
    }
}

/// Who is on the other end of a connection, as the kernel reported it.
///
/// [`pid`](Self::pid) and [`user`](Self::user) exist on every OS (either may be unknown
/// where the OS does not tell); what one OS alone reports, such as the Unix group id, is read
/// through that OS's extension trait (`ringlink::unix::PeerCredentialsExt`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerCredentials {
    pid: Option<u32>,
    user: Option<UserId>,
    gid: Option<u32>,
}

impl PeerCredentials {
    /// Credentials of a peer with this process id and user.
    pub const fn new(pid: Option<u32>, user: Option<UserId>) -> PeerCredentials {
        PeerCredentials {
            pid,
            user,
            gid: None,
        }
    }

    /// The same credentials with the peer's Unix group id.
    pub const fn with_gid(mut self, gid: u32) -> PeerCredentials {
        self.gid = Some(gid);
        self
    }

    /// The peer's process id, where the OS reports it (Linux, macOS, Windows; not FreeBSD).
    pub const fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The user the peer runs as, where the OS reports it.
    pub const fn user(&self) -> Option<&UserId> {
        self.user.as_ref()
    }

    /// The peer's Unix group id (read it through `ringlink::unix::PeerCredentialsExt`).
    #[doc(hidden)]
    pub const fn unix_gid(&self) -> Option<u32> {
        self.gid
    }
}

impl fmt::Display for PeerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid}")?,
            None => f.write_str("pid unknown")?,
        }
        match &self.user {
            Some(user) => write!(f, ", {user}"),
            None => f.write_str(", user unknown"),
        }
    }
}

/// Which peers a listener accepts, checked against the peer's [`PeerCredentials`] right
/// after accept. A refused peer's connection is closed at once (it reads end of stream) and
/// counted in the listener's `refused_count`.
///
/// ```
/// use ringlink_host::{PeerPolicy, UserId};
///
/// let policy = PeerPolicy::users([UserId::from_uid(1000), UserId::from_uid(1001)]);
/// assert_ne!(policy, PeerPolicy::any());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerPolicy {
    /// Any peer that can reach the listener.
    Any,
    /// Only peers running as the listener's own user.
    SameUser,
    /// Only peers running as one of these users.
    Users(Vec<UserId>),
}

impl PeerPolicy {
    /// Any peer that can reach the listener.
    pub const fn any() -> PeerPolicy {
        PeerPolicy::Any
    }

    /// Only peers running as the listener's own user.
    pub const fn same_user() -> PeerPolicy {
        PeerPolicy::SameUser
    }

    /// Only peers running as one of `users`.
    pub fn users(users: impl IntoIterator<Item = UserId>) -> PeerPolicy {
        PeerPolicy::Users(users.into_iter().collect())
    }

    /// Whether a peer with these credentials may connect to a listener running as `own`.
    /// A peer whose user the OS did not report is allowed only by [`PeerPolicy::Any`].
    pub fn allows(&self, peer: &PeerCredentials, own: &UserId) -> bool {
        match (self, peer.user()) {
            (PeerPolicy::Any, _) => true,
            (_, None) => false,
            (PeerPolicy::SameUser, Some(user)) => user == own,
            (PeerPolicy::Users(users), Some(user)) => users.contains(user),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_of_unknown_user_passes_only_any() {
        let me = UserId::from_uid(7);
        let peer = PeerCredentials::new(Some(1), None);
        assert!(PeerPolicy::any().allows(&peer, &me));
        assert!(!PeerPolicy::same_user().allows(&peer, &me));
        assert!(!PeerPolicy::users([me.clone()]).allows(&peer, &me));
    }

    #[test]
    fn sids_compare_case_insensitively_and_never_equal_a_uid() {
        assert_eq!(UserId::from_sid("s-1-5-18"), UserId::from_sid("S-1-5-18"));
        assert_ne!(UserId::from_sid("S-1-5-18"), UserId::from_uid(18));
        assert_eq!(UserId::from_sid("S-1-5-18").sid(), Some("S-1-5-18"));
        assert_eq!(UserId::from_uid(3).uid(), Some(3));
        let other = PeerCredentials::new(None, Some(UserId::from_sid("S-1-5-21-1")));
        assert!(!PeerPolicy::same_user().allows(&other, &UserId::from_sid("S-1-5-21-2")));
    }

    #[test]
    fn display_names_pid_and_user() {
        let peer = PeerCredentials::new(Some(9), Some(UserId::from_uid(1000))).with_gid(5);
        assert_eq!(peer.to_string(), "pid 9, uid 1000");
        assert_eq!(peer.unix_gid(), Some(5));
        assert_eq!(
            PeerCredentials::new(None, None).to_string(),
            "pid unknown, user unknown"
        );
    }
}
