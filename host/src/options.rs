//! The options of `Listener::bind` and `Stream::connect`, the same on every OS.
//!
//! What one OS alone has (a socket's backlog on Unix, a pipe's buffer size on Windows) is
//! set through that OS's extension trait (`ringlink::unix::ListenerOptionsExt`,
//! `ringlink::windows::ListenerOptionsExt`); the value is kept here so that options built on
//! one OS compile everywhere.
//!
//! ```
//! use std::time::Duration;
//! use ringlink_host::{Access, ConnectOptions, ListenerOptions, PeerPolicy};
//!
//! let server = ListenerOptions::new()
//!     .access(Access::Owner)
//!     .peer_policy(PeerPolicy::same_user())
//!     .max_connections(1000);
//! let client = ConnectOptions::new()
//!     .timeout(Duration::from_millis(200))
//!     .wait_for_server(true)
//!     .write_timeout(Some(Duration::from_secs(1)));
//! assert_eq!(client.connect_timeout(), Duration::from_millis(200));
//! assert_eq!(server.max_connections_limit(), Some(1000));
//! ```

use std::time::Duration;

use crate::PeerPolicy;

/// Who may open a listener's name, enforced by the OS at open: a socket file's permission
/// bits on Unix (`0600`, `0660`, `0666`), the pipe's access list on Windows (the owner; plus
/// the owner's primary group or every authenticated user as clients, never as pipe
/// creators).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Access {
    /// Only the user the listener runs as. The default.
    #[default]
    Owner,
    /// The owner and its group.
    Group,
    /// Every user.
    Everyone,
}

/// How `Stream::connect` connects and how the new stream behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    timeout: Duration,
    wait_for_server: bool,
    verify_server_user: bool,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    nonblocking: bool,
}

impl ConnectOptions {
    /// The defaults: a 30 s connect deadline (Qt's `waitForConnected` default), fail at once
    /// when no server exists, only servers running as this user, no read or write
    /// timeout, blocking I/O.
    pub const fn new() -> ConnectOptions {
        ConnectOptions {
            timeout: Duration::from_secs(30),
            wait_for_server: false,
            verify_server_user: true,
            read_timeout: None,
            write_timeout: None,
            nonblocking: false,
        }
    }

    /// The deadline for the whole connect, including waiting for the server to appear
    /// and for room in its backlog (a busy pipe on Windows).
    pub const fn timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.timeout = timeout;
        self
    }

    /// Keep retrying (with a growing pause of at most 50 ms) while the server does not exist
    /// yet or its name is stale, until the [`timeout`](Self::timeout); then fail with
    /// [`ErrorKind::TimedOut`](crate::ErrorKind::TimedOut). Off by default: a missing server
    /// fails at once with [`ErrorKind::ServerNotFound`](crate::ErrorKind::ServerNotFound).
    pub const fn wait_for_server(mut self, wait: bool) -> ConnectOptions {
        self.wait_for_server = wait;
        self
    }

    /// Whether to refuse a server that does not run as the user this process runs as (on
    /// by default). Anyone may create a socket in a shared directory such as `/tmp` (where
    /// Qt names live), squat a Linux abstract name or create a pipe name first, and wait for
    /// clients; so right after connecting, before a byte is sent, the client asks the OS
    /// who serves (`SO_PEERCRED`/`getpeereid` on Unix, the pipe's owner on Windows) and
    /// refuses another user with [`ErrorKind::AccessDenied`](crate::ErrorKind::AccessDenied).
    /// Turn it off to reach a server of another user on purpose.
    pub const fn verify_server_user(mut self, verify: bool) -> ConnectOptions {
        self.verify_server_user = verify;
        self
    }

    /// Read timeout of the new stream (see `Stream::set_read_timeout`).
    pub const fn read_timeout(mut self, timeout: Option<Duration>) -> ConnectOptions {
        self.read_timeout = timeout;
        self
    }

    /// Write timeout of the new stream (see `Stream::set_write_timeout`).
    pub const fn write_timeout(mut self, timeout: Option<Duration>) -> ConnectOptions {
        self.write_timeout = timeout;
        self
    }

    /// Whether the new stream is in nonblocking mode (see `Stream::set_nonblocking`).
    pub const fn nonblocking(mut self, nonblocking: bool) -> ConnectOptions {
        self.nonblocking = nonblocking;
        self
    }

    /// The connect deadline set with [`timeout`](Self::timeout).
    pub const fn connect_timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether [`wait_for_server`](Self::wait_for_server) is on.
    pub const fn waits_for_server(&self) -> bool {
        self.wait_for_server
    }

    /// Whether [`verify_server_user`](Self::verify_server_user) is on.
    pub const fn verifies_server_user(&self) -> bool {
        self.verify_server_user
    }

    /// The read timeout the new stream gets.
    pub const fn stream_read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// The write timeout the new stream gets.
    pub const fn stream_write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    /// Whether the new stream starts in nonblocking mode.
    pub const fn is_nonblocking(&self) -> bool {
        self.nonblocking
    }
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions::new()
    }
}

/// Default size of each direction's pipe buffer on Windows (bytes): nonzero, so a writer
/// is not blocked until the reader reads.
pub const DEFAULT_BUFFER_SIZE: u32 = 64 * 1024;

/// Default listen backlog on Unix (capped by the kernel).
pub const DEFAULT_BACKLOG: u32 = 1024;

/// How `Listener::bind` creates the listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerOptions {
    access: Access,
    max_connections: Option<usize>,
    peer_policy: Option<PeerPolicy>,
    nonblocking: bool,
    backlog: u32,
    buffer_size: u32,
}

impl ListenerOptions {
    /// The defaults: [`Access::Owner`], no connection limit, blocking accept, and a peer
    /// policy that follows the access (see [`peer_policy`](Self::peer_policy)).
    pub fn new() -> ListenerOptions {
        ListenerOptions {
            access: Access::Owner,
            max_connections: None,
            peer_policy: None,
            nonblocking: false,
            backlog: DEFAULT_BACKLOG,
            buffer_size: DEFAULT_BUFFER_SIZE,
        }
    }

    /// Who may open the name. Widening beyond [`Access::Owner`] is an explicit choice.
    pub fn access(mut self, access: Access) -> ListenerOptions {
        self.access = access;
        self
    }

    /// The most connections accepted from this listener that may be open at once; a
    /// connection over the limit is closed as soon as it is accepted.
    pub fn max_connections(mut self, max: usize) -> ListenerOptions {
        self.max_connections = Some(max);
        self
    }

    /// Which peers to accept. Unset, it is [`PeerPolicy::SameUser`] with
    /// [`Access::Owner`] (this also protects Linux abstract names, which have no
    /// permission bits) and [`PeerPolicy::Any`] with wider access.
    pub fn peer_policy(mut self, policy: PeerPolicy) -> ListenerOptions {
        self.peer_policy = Some(policy);
        self
    }

    /// Whether `Listener::accept` returns
    /// [`ErrorKind::WouldBlock`](crate::ErrorKind::WouldBlock) instead of waiting.
    pub fn nonblocking(mut self, nonblocking: bool) -> ListenerOptions {
        self.nonblocking = nonblocking;
        self
    }

    /// The access set with [`access`](Self::access).
    pub fn access_level(&self) -> Access {
        self.access
    }

    /// The limit set with [`max_connections`](Self::max_connections).
    pub fn max_connections_limit(&self) -> Option<usize> {
        self.max_connections
    }

    /// The policy in force: the one set, or the default for the access.
    pub fn effective_peer_policy(&self) -> PeerPolicy {
        self.peer_policy.clone().unwrap_or(match self.access {
            Access::Owner => PeerPolicy::SameUser,
            _ => PeerPolicy::Any,
        })
    }

    /// Whether accept starts in nonblocking mode.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking
    }

    /// The Unix listen backlog (set with `ringlink::unix::ListenerOptionsExt::backlog`).
    pub fn backlog_size(&self) -> u32 {
        self.backlog
    }

    /// The Windows pipe buffer size (set with
    /// `ringlink::windows::ListenerOptionsExt::buffer_size`).
    pub fn pipe_buffer_size(&self) -> u32 {
        self.buffer_size
    }

    /// Sets the Unix listen backlog (at least 1); for the Unix extension trait.
    #[doc(hidden)]
    pub fn with_backlog(mut self, backlog: u32) -> ListenerOptions {
        self.backlog = backlog.max(1);
        self
    }

    /// Sets the Windows pipe buffer size (at least 1); for the Windows extension trait.
    #[doc(hidden)]
    pub fn with_buffer_size(mut self, bytes: u32) -> ListenerOptions {
        self.buffer_size = bytes.max(1);
        self
    }
}

impl Default for ListenerOptions {
    fn default() -> ListenerOptions {
        ListenerOptions::new()
    }
}
