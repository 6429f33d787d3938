//! A ringlink pipe server: owner-only access on every instance, a name nobody can take
//! over while it lives, and always one instance listening so clients never see the
//! pipe vanish between two connections.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use ringlink_windows::{Listener, ListenerOptions};
//!
//! let listener = Listener::bind("demo", ListenerOptions::new().max_connections(64))?;
//! for stream in listener.incoming() {
//!     let stream = stream?;
//!     println!("connection from pid {}", stream.peer_process_id()?);
//!     // Out of threads, this one connection is closed and the server goes on.
//!     let served = std::thread::Builder::new()
//!         .spawn(move || std::io::copy(&mut &stream, &mut &stream));
//!     if let Err(e) = served {
//!         eprintln!("connection refused: cannot start a thread: {e}");
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How a name is taken
//!
//! `bind` first creates a named kernel mutex derived from the pipe name (see
//! [`Listener::bind`]); while another live listener holds it, `bind` fails with
//! [`ErrorKind::AddressInUse`]. The kernel removes the mutex when its last handle
//! closes, so a crashed server frees the name at once. Then `bind` creates the first
//! pipe instance with `FILE_FLAG_FIRST_PIPE_INSTANCE`, which fails if any other
//! program (a Qt server, a squatter) already serves the name. The mutex makes the
//! guarantee hold even where the flag is not enforced (Wine).
//!
//! Every instance carries an explicit security descriptor: the current user owns it
//! and is the only one allowed in ([`Access::Owner`]), and remote clients are rejected.
//! Before a connected instance is handed out by `accept`, the next one is created, so a
//! client connecting at that moment finds an instance (or waits for one), never "not
//! found".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringlink_host::Admission;

use crate::name::IntoName;
use crate::stream::Side;
use crate::sys::{self, ConnectState, PendingInstance, SecurityDescriptor};
use crate::{Access, Error, ErrorKind, ListenerOptions, Name, PeerPolicy, Stream, UserId};

/// Client rights for [`Access::Everyone`] and [`Access::Group`]: `FILE_GENERIC_READ |
/// FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES | FILE_WRITE_EA`, deliberately without
/// `FILE_APPEND_DATA` (which on a pipe is `FILE_CREATE_PIPE_INSTANCE`).
const CLIENT_RIGHTS: u32 = 0x0012_019B;

/// The SDDL of the pipe's security descriptor with this access for a listener running as
/// `sid`: owner set explicitly, a protected DACL (nothing inherited).
pub(crate) fn pipe_sddl(access: Access, sid: &str, group: &str) -> String {
    match access {
        Access::Owner => format!("O:{sid}D:P(A;;GA;;;{sid})"),
        Access::Group => {
            format!("O:{sid}D:P(A;;GA;;;{sid})(A;;{CLIENT_RIGHTS:#x};;;{group})")
        }
        _ => format!("O:{sid}D:P(A;;GA;;;{sid})(A;;{CLIENT_RIGHTS:#x};;;AU)"),
    }
}

/// The Windows-only listener options.
///
/// ```
/// use ringlink_windows::{ListenerOptions, ListenerOptionsExt};
///
/// let options = ListenerOptions::new().buffer_size(256 * 1024);
/// assert_eq!(options.pipe_buffer_size(), 256 * 1024);
/// ```
pub trait ListenerOptionsExt {
    /// Size of the in and out buffers of every pipe instance (default
    /// [`DEFAULT_BUFFER_SIZE`](crate::DEFAULT_BUFFER_SIZE); at least 1 byte; the system may
    /// round it).
    fn buffer_size(self, bytes: u32) -> Self;
}

impl ListenerOptionsExt for ListenerOptions {
    fn buffer_size(self, bytes: u32) -> ListenerOptions {
        self.with_buffer_size(bytes)
    }
}

/// The admission of a listener with these options: its peer policy (not checked again
/// when the pipe's access list already admits the owner alone) and connection limit.
pub(crate) fn admission(options: &ListenerOptions) -> Result<Admission, Error> {
    let own = sys::own_sid().map_err(|e| {
        Error::os(e).with_message("cannot find out which user this process runs as")
    })?;
    let policy = options.effective_peer_policy();
    let by_os = options.access_level() == Access::Owner && policy == PeerPolicy::SameUser;
    Ok(Admission::new(
        policy,
        UserId::from_sid(own),
        options.max_connections_limit(),
    )
    .enforced_by_os(by_os))
}

/// Holds the name while the listener lives: the kernel drops it with the last handle,
/// also when the process dies.
#[derive(Debug)]
pub(crate) struct NameGuard {
    _mutex: std::os::windows::io::OwnedHandle,
}

impl NameGuard {
    /// Takes the guard of `name`, or fails with [`ErrorKind::AddressInUse`].
    pub(crate) fn acquire(name: &Name, security: &SecurityDescriptor) -> Result<NameGuard, Error> {
        let guard_name = sys::wide(&name.guard_name());
        match sys::create_guard_mutex(&guard_name, security) {
            Ok(mutex) => Ok(NameGuard { _mutex: mutex }),
            Err(e) => {
                let code = e.raw_os_error().map(|c| c as u32);
                let err = Error::os(e);
                Err(match code {
                    Some(sys::ERROR_ALREADY_EXISTS) => err.with_kind(ErrorKind::AddressInUse).with_message(format!(
                        "cannot listen on {name}: another ringlink server of this user already listens there"
                    )),
                    Some(sys::ERROR_ACCESS_DENIED) => err.with_kind(ErrorKind::AddressInUse).with_message(format!(
                        "cannot listen on {name}: a ringlink server of another user holds this name"
                    )),
                    _ => err.with_message(format!("cannot take the name {name}")),
                })
            }
        }
    }
}

/// The security and sizes every instance of one listener's pipe is created with.
#[derive(Debug)]
pub(crate) struct PipeConfig {
    pub(crate) name: Name,
    pub(crate) wide: Vec<u16>,
    pub(crate) security: SecurityDescriptor,
    /// Owner-only, whatever the pipe's access: for the name guard.
    pub(crate) guard_security: SecurityDescriptor,
    pub(crate) buffer_size: u32,
}

impl PipeConfig {
    pub(crate) fn new(name: Name, access: Access, buffer_size: u32) -> Result<PipeConfig, Error> {
        let sid = sys::current_user_sid().map_err(|e| {
            Error::os(e).with_message("cannot find out which user this process runs as")
        })?;
        let group = match access {
            Access::Group => sys::primary_group_sid().map_err(|e| {
                Error::os(e).with_message("cannot find out this process's primary group")
            })?,
            _ => String::new(),
        };
        let descriptor = |access: Access| {
            SecurityDescriptor::from_sddl(&pipe_sddl(access, &sid, &group)).map_err(|e| {
                Error::os(e)
                    .with_message(format!("cannot build the security descriptor for {name}"))
            })
        };
        let security = descriptor(access)?;
        let guard_security = descriptor(Access::Owner)?;
        Ok(PipeConfig {
            wide: name.wide(),
            name,
            security,
            guard_security,
            buffer_size,
        })
    }

    /// Creates one more instance (`first`: the one that claims the name).
    pub(crate) fn create_instance(
        &self,
        first: bool,
    ) -> Result<std::os::windows::io::OwnedHandle, Error> {
        sys::create_pipe(
            &self.wide,
            first,
            &self.security,
            self.buffer_size,
            self.buffer_size,
        )
        .map_err(|e| self.instance_error(e, first))
    }

    /// Explains why creating an instance failed.
    pub(crate) fn instance_error(&self, e: std::io::Error, first: bool) -> Error {
        let code = e.raw_os_error().map(|c| c as u32);
        let err = Error::os(e);
        match code {
            // The first-instance flag refuses a name some other server holds.
            Some(sys::ERROR_ACCESS_DENIED | sys::ERROR_PIPE_BUSY) if first => err
                .with_kind(ErrorKind::AddressInUse)
                .with_message(format!(
                    "cannot listen on {}: another program (or another user) already serves this pipe",
                    self.name
                )),
            _ => err.with_message(format!("cannot create an instance of {}", self.name)),
        }
    }
}

/// A ringlink named-pipe server bound to a [`Name`].
///
/// `accept` may be called from several threads; they take turns.
#[derive(Debug)]
pub struct Listener {
    config: PipeConfig,
    /// The instance clients connect to next. `None` only after creating it failed (out
    /// of resources); the next `accept` tries again.
    pending: Mutex<Option<PendingInstance>>,
    admission: Admission,
    nonblocking: AtomicBool,
    /// Declared last: the name stays taken until the instances above are closed.
    _guard: NameGuard,
}

impl Listener {
    /// Creates the pipe `name` and starts listening.
    ///
    /// Fails with [`ErrorKind::AddressInUse`] while another server lives at the name (a
    /// ringlink listener of any user, or any other program serving the pipe), and
    /// [`ErrorKind::InvalidName`] for names that cannot be a pipe.
    pub fn bind(name: impl IntoName, options: ListenerOptions) -> Result<Listener, Error> {
        let name = name.into_name()?;
        let config = PipeConfig::new(name, options.access_level(), options.pipe_buffer_size())?;
        let guard = NameGuard::acquire(&config.name, &config.guard_security)?;
        let first = config.create_instance(true)?;
        let pending = PendingInstance::new(first).map_err(Error::os)?;
        Ok(Listener {
            config,
            pending: Mutex::new(Some(pending)),
            admission: admission(&options)?,
            nonblocking: AtomicBool::new(options.is_nonblocking()),
            _guard: guard,
        })
    }

    /// Accepts the next connection within the connection limit.
    ///
    /// Waits for one unless the listener is nonblocking ([`ErrorKind::WouldBlock`] then).
    /// Connections over `max_connections` are closed and skipped (see
    /// [`refused_count`](Self::refused_count)). Out of resources, or when one client
    /// breaks its pipe instance, a blocking `accept` backs off (1 ms doubling to 100 ms)
    /// with a fresh instance and goes on, so it fails only when the listener itself cannot
    /// go on; a nonblocking one returns the error so its caller can back off.
    pub fn accept(&self) -> Result<Stream, Error> {
        self.accept_until(None)
    }

    /// Like [`accept`](Self::accept), giving up with [`ErrorKind::TimedOut`] after `timeout`,
    /// also when the deadline passes while it backs off.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Stream, Error> {
        self.accept_until(Instant::now().checked_add(timeout))
    }

    /// An endless iterator over [`accept`](Self::accept) results.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    fn accept_until(&self, deadline: Option<Instant>) -> Result<Stream, Error> {
        let mut pause = BACKOFF_MIN;
        loop {
            let wait = if self.is_nonblocking() {
                Some(Duration::ZERO)
            } else {
                deadline.map(|d| d.saturating_duration_since(Instant::now()))
            };
            let handle = match self.connect_next(wait) {
                Ok(Some(handle)) => handle,
                Ok(None) if self.is_nonblocking() => {
                    return Err(Error::bare(ErrorKind::WouldBlock));
                }
                Ok(None) => return Err(self.timed_out()),
                Err(e) if self.is_nonblocking() || !is_transient(&e) => return Err(e),
                Err(_) => {
                    // Out of resources, or one client broke its instance: back off and
                    // try again (a fresh instance is created), never spinning, and keep
                    // the promise of `accept_timeout`: its deadline is `TimedOut`.
                    let mut nap = pause;
                    if let Some(d) = deadline {
                        let left = d.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(self.timed_out());
                        }
                        nap = nap.min(left);
                    }
                    std::thread::sleep(nap);
                    pause = (pause * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            pause = BACKOFF_MIN;
            let stream = Stream::from_handle(handle, Side::Server);
            if let Some(stream) = self.admit(stream) {
                return Ok(stream);
            }
        }
    }

    fn timed_out(&self) -> Error {
        Error::new(
            ErrorKind::TimedOut,
            format!("no connection to {} arrived in time", self.config.name),
        )
    }

    /// Waits up to `wait` for a client on the pending instance; once one is connected,
    /// creates the next instance and returns the connected one's handle.
    fn connect_next(
        &self,
        wait: Option<Duration>,
    ) -> Result<Option<std::os::windows::io::OwnedHandle>, Error> {
        let mut pending = self
            .pending
            .lock()
            .map_err(|_| Error::new(ErrorKind::Other, "a thread panicked inside accept"))?;
        if pending.is_none() {
            let handle = self.config.create_instance(false)?;
            *pending = Some(PendingInstance::new(handle).map_err(Error::os)?);
        }
        let Some(instance) = pending.as_mut() else {
            unreachable!("filled just above");
        };
        let state = match instance.poll_connect(wait) {
            Ok(state) => state,
            Err(e) => {
                // This instance is unusable now; the next accept creates a fresh one.
                *pending = None;
                return Err(
                    Error::os(e).with_message(format!("accept on {} failed", self.config.name))
                );
            }
        };
        if state == ConnectState::Waiting {
            return Ok(None);
        }
        // The next instance exists before this one leaves, so clients never see a gap.
        // If it cannot be created (out of resources), the connection is still handed out
        // and the next accept retries.
        let next = self
            .config
            .create_instance(false)
            .and_then(|h| PendingInstance::new(h).map_err(Error::os))
            .ok();
        let connected = std::mem::replace(&mut *pending, next);
        Ok(connected.map(PendingInstance::into_handle))
    }

    /// Applies the peer policy and the connection limit to a fresh connection.
    fn admit(&self, stream: Stream) -> Option<Stream> {
        let slot = self.admission.admit(|| stream.peer_credentials()).ok()?;
        Some(stream.with_slot(slot.map(Arc::new)))
    }

    /// The name this listener serves.
    pub fn name(&self) -> &Name {
        &self.config.name
    }

    /// The peer policy in force (after applying the default for the access).
    pub fn peer_policy(&self) -> &PeerPolicy {
        self.admission.policy()
    }

    /// How many connections were closed at accept because of the peer policy or the
    /// connection limit.
    pub fn refused_count(&self) -> u64 {
        self.admission.refused_count()
    }

    /// How many accepted connections are open, when `max_connections` is set.
    pub fn open_connections(&self) -> Option<usize> {
        self.admission.open_connections()
    }

    /// Switches nonblocking accept on or off.
    pub fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
    }

    /// Whether [`accept`](Self::accept) returns [`ErrorKind::WouldBlock`] instead of waiting.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }
}

/// Shortest and longest pause of a blocking `accept` after a transient failure.
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(1);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_millis(100);

/// Whether an accept failure concerns one connection or a passing shortage (out of
/// resources, a client that broke its instance), not the listener itself.
pub(crate) fn is_transient(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ResourceExhausted | ErrorKind::PeerClosed
    )
}

/// Iterator over incoming connections, from [`Listener::incoming`]. Never ends.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a Listener,
}

impl Iterator for Incoming<'_> {
    type Item = Result<Stream, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.listener.accept())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnectOptions, Stream};

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn listener_is_send_and_sync() {
        assert_send_sync::<Listener>();
    }

    fn unique(tag: &str) -> String {
        use std::sync::atomic::AtomicU32;
        static N: AtomicU32 = AtomicU32::new(0);
        format!(
            "ringlink-listener-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    #[test]
    fn every_instance_carries_the_owner_only_descriptor() {
        let name = unique("sd");
        let listener = Listener::bind(name.as_str(), ListenerOptions::new()).unwrap();
        let sid = sys::current_user_sid().unwrap();
        for _ in 0..2 {
            // The first instance, then one created by accept.
            let client = Stream::connect(name.as_str(), ConnectOptions::new()).unwrap();
            let _server = listener.accept().unwrap();
            let sddl = sys::security_sddl(&client).unwrap();
            assert!(sddl.starts_with(&format!("O:{sid}")), "{sddl}");
            let dacl = &sddl[sddl.find("D:").unwrap()..];
            assert_eq!(dacl.matches('(').count(), 1, "exactly one entry: {sddl}");
            assert!(dacl.contains(&sid), "{sddl}");
        }
    }

    #[test]
    fn a_second_bind_is_refused_until_the_first_listener_is_gone() {
        let name = unique("twice");
        let first = Listener::bind(name.as_str(), ListenerOptions::new()).unwrap();
        let err = Listener::bind(name.as_str(), ListenerOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddressInUse, "{err}");
        // Pipe names are case-insensitive; so is the guard.
        let err = Listener::bind(name.to_uppercase().as_str(), ListenerOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddressInUse, "{err}");
        assert_eq!(
            first.name().state().unwrap(),
            crate::NameState::Live { pid: None }
        );
        drop(first);
        assert_eq!(
            Name::new(&name).unwrap().state().unwrap(),
            crate::NameState::Absent
        );
        Listener::bind(name.as_str(), ListenerOptions::new()).unwrap();
    }

    #[test]
    fn racing_binds_have_exactly_one_winner() {
        for round in 0..50 {
            let name = unique("race");
            let barrier = Arc::new(std::sync::Barrier::new(4));
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let (name, barrier) = (name.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        Listener::bind(name.as_str(), ListenerOptions::new())
                    })
                })
                .collect();
            let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            let winners = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(winners, 1, "round {round}: {results:?}");
            for r in &results {
                if let Err(e) = r {
                    assert_eq!(e.kind(), ErrorKind::AddressInUse);
                }
            }
        }
    }

    #[test]
    fn the_next_instance_exists_before_accept_returns() {
        let name = unique("next");
        let listener = Listener::bind(name.as_str(), ListenerOptions::new()).unwrap();
        let _a = Stream::connect(name.as_str(), ConnectOptions::new()).unwrap();
        let _server_a = listener.accept().unwrap();
        // No accept is running now, yet a client finds a free instance at once.
        let quick = ConnectOptions::new().timeout(Duration::from_millis(1000));
        let t = Instant::now();
        let _b = Stream::connect(name.as_str(), quick).unwrap();
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn busy_pipes_are_retried_until_the_deadline() {
        let name = unique("busy");
        let listener = Listener::bind(name.as_str(), ListenerOptions::new()).unwrap();
        // The only instance is taken and nobody accepts: the next client sees PIPE_BUSY.
        let _first = Stream::connect(name.as_str(), ConnectOptions::new()).unwrap();
        let short = ConnectOptions::new().timeout(Duration::from_millis(300));
        let t = Instant::now();
        let err = Stream::connect(name.as_str(), short).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "{:?}",
            t.elapsed()
        );
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        // Once accept creates the next instance, a waiting client gets in.
        let waiter = {
            let name = name.clone();
            std::thread::spawn(move || {
                let patient = ConnectOptions::new().timeout(Duration::from_secs(10));
                Stream::connect(name.as_str(), patient)
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        let _server = listener.accept().unwrap();
        waiter.join().unwrap().unwrap();
    }

    #[test]
    fn accept_timeout_nonblocking_and_connection_limit() {
        let name = unique("limit");
        let listener =
            Listener::bind(name.as_str(), ListenerOptions::new().max_connections(1)).unwrap();
        let t = Instant::now();
        let err = listener
            .accept_timeout(Duration::from_millis(50))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(45));
        listener.set_nonblocking(true);
        assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
        listener.set_nonblocking(false);

        let a = Stream::connect(name.as_str(), ConnectOptions::new()).unwrap();
        let server_a = listener.accept().unwrap();
        assert_eq!(listener.open_connections(), Some(1));
        let b = Stream::connect(name.as_str(), ConnectOptions::new()).unwrap();
        // b is over the limit: closed at accept, so accept keeps waiting.
        let err = listener
            .accept_timeout(Duration::from_millis(100))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert_eq!(listener.refused_count(), 1);
        let mut buf = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut &b, &mut buf).unwrap(), 0);
        drop((a, server_a));
        assert_eq!(listener.open_connections(), Some(0));
    }

    #[test]
    fn the_peer_policy_reads_the_peers_user_from_its_token() {
        let own = UserId::from_sid(sys::own_sid().unwrap());
        // Access wider than the owner: the policy is checked at accept with the client's
        // token, and a policy naming another user refuses this process's own client.
        let name = unique("policy");
        let others = ListenerOptions::new()
            .access(Access::Everyone)
            .peer_policy(PeerPolicy::users([UserId::from_sid("S-1-5-18")]));
        let listener = Listener::bind(name.as_str(), others).unwrap();
        let refused = Stream::connect(name.as_str(), ConnectOptions::new()).unwrap();
        let err = listener
            .accept_timeout(Duration::from_millis(200))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert_eq!(listener.refused_count(), 1);
        assert_eq!(
            std::io::Read::read(&mut &refused, &mut [0u8; 1]).unwrap(),
            0
        );
        drop(listener);

        let name = unique("policy-same");
        let same = ListenerOptions::new()
            .access(Access::Everyone)
            .peer_policy(PeerPolicy::same_user());
        let listener = Listener::bind(name.as_str(), same).unwrap();
        let client = Stream::connect(name.as_str(), ConnectOptions::new()).unwrap();
        let served = listener.accept_timeout(Duration::from_secs(5)).unwrap();
        let peer = served.peer_credentials().unwrap();
        assert_eq!(peer.pid(), Some(std::process::id()));
        assert_eq!(peer.user(), Some(&own));
        assert_eq!(client.peer_credentials().unwrap().user(), Some(&own));
        assert_eq!(listener.refused_count(), 0);
    }

    #[test]
    fn sddl_is_owner_only_unless_widened() {
        let owner = pipe_sddl(Access::Owner, "S-1-5-21-1", "S-1-5-21-513");
        assert_eq!(owner, "O:S-1-5-21-1D:P(A;;GA;;;S-1-5-21-1)");
        let group = pipe_sddl(Access::Group, "S-1-5-21-1", "S-1-5-21-513");
        assert!(group.ends_with("(A;;0x12019b;;;S-1-5-21-513)"), "{group}");
        let everyone = pipe_sddl(Access::Everyone, "S-1-5-21-1", "");
        assert!(everyone.ends_with("(A;;0x12019b;;;AU)"), "{everyone}");
        // Clients of other users must never get FILE_CREATE_PIPE_INSTANCE (0x4).
        assert_eq!(CLIENT_RIGHTS & 0x4, 0);
    }
}
