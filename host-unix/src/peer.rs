//! Who is on the other end of a Unix socket, as the kernel saw it at `connect`/`accept`
//! (`SO_PEERCRED` on Linux, `getpeereid` and friends elsewhere), in ringlink's portable
//! [`PeerCredentials`], and [`PeerCredentialsExt`] for what Unix alone reports.

use std::os::fd::RawFd;

use crate::sys;
use crate::{Error, PeerCredentials, UserId};

/// The credentials of the peer of the connected socket `fd`.
pub(crate) fn credentials(fd: RawFd) -> Result<PeerCredentials, Error> {
    let (uid, gid, pid) = sys::peer_credentials(fd).map_err(Error::os)?;
    let pid = pid.and_then(|p| u32::try_from(p).ok());
    Ok(PeerCredentials::new(pid, Some(UserId::from_uid(uid))).with_gid(gid))
}

/// The user this process runs as (its effective uid).
pub(crate) fn own_user() -> UserId {
    UserId::from_uid(sys::euid())
}

/// What a Unix peer's credentials carry beyond the portable pid and user.
///
/// ```
/// use ringlink_unix::{PeerCredentialsExt, Stream};
///
/// let (a, _b) = Stream::pair()?;
/// let peer = a.peer_credentials()?;
/// println!("peer uid {:?}, gid {:?}", peer.uid(), peer.gid());
/// assert!(peer.uid().is_some() && peer.gid().is_some());
/// # Ok::<(), ringlink_unix::Error>(())
/// ```
pub trait PeerCredentialsExt {
    /// The peer's effective user id.
    fn uid(&self) -> Option<u32>;
    /// The peer's effective group id.
    fn gid(&self) -> Option<u32>;
}

impl PeerCredentialsExt for PeerCredentials {
    fn uid(&self) -> Option<u32> {
        self.user().and_then(UserId::uid)
    }

    fn gid(&self) -> Option<u32> {
        self.unix_gid()
    }
}
