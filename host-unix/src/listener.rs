//! A ringlink server socket: owner-only by default, its name guarded by a lock file,
//! stale names reclaimed, peers checked at accept, and accept that survives running out
//! of file descriptors.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use ringlink_unix::{Listener, ListenerOptions};
//!
//! let listener = Listener::bind("demo", ListenerOptions::new().max_connections(64))?;
//! for stream in listener.incoming() {
//!     let mut stream = stream?;
//!     let peer = stream.peer_credentials()?;
//!     println!("connection from {peer}"); // "pid 4242, uid 1000"
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
//! For a filesystem name, `bind` first takes an exclusive `flock` on the name's lock file
//! (never waiting): `<path>.lock`, or, for a socket in a directory that others can write
//! to (such as `/tmp`, where Qt names live), a file in this user's private directory, where
//! nobody else can plant one. The lock file is used only when it is a regular file of this
//! user with a single link; it is opened without following a link or waiting on a FIFO.
//! While another live server holds it, `bind` fails with [`ErrorKind::AddressInUse`]
//! naming the path and the holder's pid. Holding the lock, it removes a socket of this
//! user left behind by a dead server (only if nothing accepts on it: a server that does
//! not use ringlink's lock, such as a Qt application, is never evicted, and another user's
//! socket is never removed), binds with the socket's mode already set (`fchmod` before
//! `bind` on Linux; elsewhere inside a private temporary directory, then linked into
//! place), listens, and writes its pid into the lock file. Dropping the listener removes
//! the socket and the lock file. If the process dies instead, the kernel drops the lock
//! and the next `bind` reclaims the name.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringlink_host::{Admission, Refusal};

use crate::lock::{LockPlace, NameLock, reclaim_stale};
use crate::name::IntoName;
use crate::sys;
use crate::{Access, Error, ErrorKind, ListenerOptions, Name, PeerPolicy, Stream};

/// The permission bits of a socket file with this access.
pub(crate) const fn access_mode(access: Access) -> u32 {
    match access {
        Access::Owner => 0o600,
        Access::Group => 0o660,
        _ => 0o666,
    }
}

/// The Unix-only listener options.
///
/// ```
/// use ringlink_unix::{ListenerOptions, ListenerOptionsExt};
///
/// let options = ListenerOptions::new().backlog(256);
/// assert_eq!(options.backlog_size(), 256);
/// ```
pub trait ListenerOptionsExt {
    /// How many connections the kernel queues before `accept` takes them (default 1024,
    /// capped by the kernel).
    fn backlog(self, backlog: u32) -> Self;
}

impl ListenerOptionsExt for ListenerOptions {
    fn backlog(self, backlog: u32) -> ListenerOptions {
        self.with_backlog(backlog)
    }
}

/// Shortest and longest pause of `accept` while the process is out of descriptors.
const BACKOFF_MIN: Duration = Duration::from_millis(1);
const BACKOFF_MAX: Duration = Duration::from_millis(100);

/// A ringlink server socket bound to a [`Name`].
///
/// The socket's descriptor is always in nonblocking mode, so it can be registered with
/// `epoll`/`poll`; [`accept`](Self::accept) waits (with `poll`) unless the listener is in
/// nonblocking mode.
#[derive(Debug)]
pub struct Listener {
    /// Removes the socket and lock file; declared first so it drops before the descriptor.
    _guard: Option<NameGuard>,
    fd: OwnedFd,
    name: Name,
    admission: Admission,
    nonblocking: AtomicBool,
}

impl Listener {
    /// Binds a server socket to `name` and starts listening.
    ///
    /// Fails with [`ErrorKind::AddressInUse`] while another server lives at the name (the
    /// message names the path and the holder's pid), [`ErrorKind::AccessDenied`] when the
    /// directory or lock file belongs to someone else or is not what ringlink made (a FIFO,
    /// a link), or another user's dead socket sits at the name, and [`ErrorKind::InvalidName`] for
    /// names that cannot be a socket address.
    pub fn bind(name: impl IntoName, options: ListenerOptions) -> Result<Listener, Error> {
        let name = name.into_name()?;
        let addr = name.sockaddr()?;
        let fd = sys::socket(true)
            .map_err(|e| Error::os(e).with_message(format!("cannot create a socket for {name}")))?;
        let guard = match name.path() {
            None => {
                sys::bind(fd.as_raw_fd(), &addr).map_err(|e| bind_error(e, &name))?;
                None
            }
            Some(path) => {
                name.prepare_for_bind()?;
                let lock = NameLock::acquire(&LockPlace::of(&name, path)?, &name)?;
                reclaim_stale(path, &name)?;
                let mode = access_mode(options.access_level());
                if cfg!(any(target_os = "linux", target_os = "android"))
                    || name.private_dir_of().is_some()
                {
                    bind_in_place(fd.as_fd(), &addr, path, mode, &name)?;
                } else {
                    bind_via_private_dir(fd.as_fd(), path, mode, &name)?;
                }
                let meta = fs::symlink_metadata(path).map_err(|e| {
                    Error::os(e)
                        .with_message(format!("the socket {name} vanished right after bind"))
                })?;
                Some(NameGuard {
                    socket_path: path.to_path_buf(),
                    socket_id: (meta.dev(), meta.ino()),
                    lock,
                })
            }
        };
        sys::listen(fd.as_raw_fd(), options.backlog_size())
            .map_err(|e| Error::os(e).with_message(format!("cannot listen on {name}")))?;
        if let Some(guard) = &guard {
            guard.lock.write_pid();
        }
        Ok(Listener {
            _guard: guard,
            fd,
            name,
            admission: Admission::new(
                options.effective_peer_policy(),
                crate::peer::own_user(),
                options.max_connections_limit(),
            ),
            nonblocking: AtomicBool::new(options.is_nonblocking()),
        })
    }

    /// Accepts the next connection that passes the peer policy and the connection limit.
    ///
    /// Waits for one unless the listener is nonblocking ([`ErrorKind::WouldBlock`] then).
    /// Refused peers are closed and skipped (see [`refused_count`](Self::refused_count)).
    /// When the process runs out of file descriptors (`EMFILE`/`ENFILE`), a blocking
    /// `accept` backs off (1 ms doubling to 100 ms), keeps the queued connections waiting
    /// and resumes once descriptors are free; a nonblocking one returns
    /// [`ErrorKind::ResourceExhausted`] so its caller can back off.
    ///
    /// A connection that fails on its own (its peer gave up while queued) is skipped, so
    /// a blocking `accept` fails only when the listener itself cannot go on, and a loop
    /// over [`incoming`](Self::incoming) that stops at the first error keeps serving
    /// through descriptor exhaustion.
    pub fn accept(&self) -> Result<Stream, Error> {
        self.accept_until(None)
    }

    /// Like [`accept`](Self::accept), giving up with [`ErrorKind::TimedOut`] after `timeout`,
    /// also when the deadline passes while it backs off out of descriptors.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Stream, Error> {
        self.accept_until(Some(
            Instant::now()
                .checked_add(timeout)
                .unwrap_or_else(far_future),
        ))
    }

    /// An endless iterator over [`accept`](Self::accept) results.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Accepts one pending connection without waiting: `Ok(None)` when none passes the
    /// policy right now. Used by the async listener.
    pub(crate) fn accept_pending(&self) -> Result<Option<Stream>, Error> {
        loop {
            match sys::accept(self.fd.as_raw_fd()) {
                Ok(fd) => {
                    if let Some(stream) = self.admit(fd) {
                        return Ok(Some(stream));
                    }
                }
                Err(e) => {
                    let err = Error::os(e);
                    return match err.kind() {
                        ErrorKind::WouldBlock => Ok(None),
                        // A peer that gave up while queued: not this listener's problem.
                        ErrorKind::PeerClosed => continue,
                        // Linux hands a dequeued connection's pending error to accept:
                        // that connection is gone, the listener is fine.
                        _ if err.raw_os_error() == Some(libc::EPROTO) => continue,
                        ErrorKind::ResourceExhausted => Err(err.with_message(format!(
                            "accept on {} failed: out of file descriptors or kernel memory; back off and retry",
                            self.name
                        ))),
                        _ => Err(err.with_message(format!("accept on {} failed", self.name))),
                    };
                }
            }
        }
    }

    fn accept_until(&self, deadline: Option<Instant>) -> Result<Stream, Error> {
        let mut pause = BACKOFF_MIN;
        loop {
            let err = match self.accept_pending() {
                Ok(Some(stream)) => return Ok(stream),
                Ok(None) if self.is_nonblocking() => {
                    return Err(Error::bare(ErrorKind::WouldBlock));
                }
                Ok(None) => {
                    pause = BACKOFF_MIN;
                    let left = self.time_left(deadline)?;
                    match sys::poll(self.fd.as_raw_fd(), true, left) {
                        Ok(_) => continue,
                        Err(e) => Error::os(e).with_message(format!(
                            "waiting for connections to {} failed",
                            self.name
                        )),
                    }
                }
                Err(e) => e,
            };
            if err.kind() != ErrorKind::ResourceExhausted || self.is_nonblocking() {
                return Err(err);
            }
            // Out of descriptors or kernel memory: the connections stay queued in the
            // backlog; try again once some descriptor may have been closed. Never spin,
            // and keep the promise of `accept_timeout`: its deadline is `TimedOut`.
            let nap = match self.time_left(deadline)? {
                Some(left) => pause.min(left),
                None => pause,
            };
            std::thread::sleep(nap);
            pause = (pause * 2).min(BACKOFF_MAX);
        }
    }

    /// What is left of `deadline` (`None`: no deadline), or [`ErrorKind::TimedOut`] once
    /// it has passed.
    fn time_left(&self, deadline: Option<Instant>) -> Result<Option<Duration>, Error> {
        let Some(d) = deadline else { return Ok(None) };
        let left = d.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::new(
                ErrorKind::TimedOut,
                format!("no connection to {} arrived in time", self.name),
            ));
        }
        Ok(Some(left))
    }

    /// Applies the peer policy and the connection limit to a fresh connection.
    fn admit(&self, fd: OwnedFd) -> Option<Stream> {
        let stream = Stream::from_fd(fd, false);
        match self.admission.admit(|| stream.peer_credentials()) {
            Ok(slot) => Some(stream.with_slot(slot.map(Arc::new))),
            Err(Refusal::Policy | Refusal::Limit) => None,
        }
    }

    /// The name this listener is bound to.
    pub fn name(&self) -> &Name {
        &self.name
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

    /// Switches whether [`accept`](Self::accept) waits.
    pub fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
    }

    /// Whether [`accept`](Self::accept) returns [`ErrorKind::WouldBlock`] instead of waiting.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
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

fn bind_error(e: io::Error, name: &Name) -> Error {
    let err = Error::os(e);
    let message = match err.kind() {
        ErrorKind::AddressInUse => {
            format!("ringlink name {name} is already in use by another server")
        }
        ErrorKind::AccessDenied => {
            format!("permission denied binding {name}: the directory is not writable by this user")
        }
        ErrorKind::ServerNotFound => format!("cannot bind {name}: its directory does not exist"),
        _ => format!("cannot bind {name}"),
    };
    err.with_message(message)
}

/// Binds at `path` with the socket already restricted to `mode`.
///
/// On Linux, `fchmod` on the unbound socket sets the mode `bind` gives the new file (still
/// narrowed by the umask), so the name is never visible with wider access; a `chmod` then
/// sets the exact mode. Elsewhere this is only used inside a `0700` directory.
fn bind_in_place(
    fd: BorrowedFd<'_>,
    addr: &sys::SockAddr,
    path: &Path,
    mode: u32,
    name: &Name,
) -> Result<(), Error> {
    // Elsewhere `fchmod` on a socket fails or does not carry over to the file.
    if cfg!(any(target_os = "linux", target_os = "android")) {
        sys::fchmod(fd, mode).map_err(Error::os)?;
    }
    sys::bind(fd.as_raw_fd(), addr).map_err(|e| bind_error(e, name))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| {
        let _ = fs::remove_file(path);
        Error::os(e).with_message(format!("cannot set the mode of {name}"))
    })
}

/// Binds inside a fresh `0700` directory next to `path`, sets the mode, then hard-links
/// the socket into place (failing if something appeared there) and removes the directory.
/// The name becomes visible only with its final mode, on any Unix.
pub(crate) fn bind_via_private_dir(
    fd: BorrowedFd<'_>,
    path: &Path,
    mode: u32,
    name: &Name,
) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = parent.join(format!(".rl{:x}-{n:x}", sys::pid()));
    let temp = dir.join("s");
    let temp_addr = sys::SockAddr::path(&temp)
        .ok()
        .filter(|_| temp.as_os_str().len() <= sys::SUN_PATH_MAX)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidName,
                format!("socket path {name} is too close to the sun_path limit to bind it safely on this platform; use a shorter path"),
            )
        })?;
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| {
            Error::os(e).with_message(format!(
                "cannot create a temporary directory next to {name}"
            ))
        })?;
    let result = (|| {
        sys::bind(fd.as_raw_fd(), &temp_addr).map_err(|e| bind_error(e, name))?;
        fs::set_permissions(&temp, fs::Permissions::from_mode(mode)).map_err(Error::os)?;
        fs::hard_link(&temp, path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Error::os(e)
                    .with_kind(ErrorKind::AddressInUse)
                    .with_message(format!("{name} appeared while binding it"))
            } else {
                Error::os(e).with_message(format!("cannot move the socket into place at {name}"))
            }
        })
    })();
    let _ = fs::remove_file(&temp);
    let _ = fs::remove_dir(&dir);
    result
}

/// The socket file and lock of a bound filesystem name, removed on drop.
#[derive(Debug)]
struct NameGuard {
    socket_path: PathBuf,
    /// `(device, inode)` of the socket we bound, so drop never removes a successor's socket.
    socket_id: (u64, u64),
    /// Released after the socket is removed (field drop order).
    lock: NameLock,
}

impl Drop for NameGuard {
    fn drop(&mut self) {
        if let Ok(meta) = fs::symlink_metadata(&self.socket_path) {
            if (meta.dev(), meta.ino()) == self.socket_id {
                let _ = fs::remove_file(&self.socket_path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConnectOptions;
    use crate::lock::lock_holder_pid;
    use crate::name::lock_path_of;
    use std::io::{Read, Write};
    use std::os::unix::fs::FileTypeExt;
    use std::sync::atomic::AtomicUsize;

    fn temp_name(tag: &str) -> (PathBuf, Name) {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringlink-listener-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        let name = Name::from_path(dir.join("sock")).unwrap();
        (dir, name)
    }

    #[test]
    fn listener_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Listener>();
    }

    #[test]
    fn bind_accept_echo_and_clean_up() {
        let (dir, name) = temp_name("echo");
        let listener = Listener::bind(&name, ListenerOptions::new()).unwrap();
        let path = name.path().unwrap().to_path_buf();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o777, 0o600);
        let lock = lock_path_of(&path);
        assert_eq!(lock_holder_pid(&name), Some(sys::pid()));
        let client = Stream::connect(&name, ConnectOptions::new()).unwrap();
        let server = listener.accept_timeout(Duration::from_secs(5)).unwrap();
        (&client).write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        (&server).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
        assert_eq!(
            server.peer_credentials().unwrap().pid(),
            u32::try_from(sys::pid()).ok()
        );
        drop(listener);
        assert!(!path.exists(), "socket removed on drop");
        assert!(!lock.exists(), "lock removed on drop");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn second_bind_names_path_and_pid() {
        let (dir, name) = temp_name("second");
        let _first = Listener::bind(&name, ListenerOptions::new()).unwrap();
        let err = Listener::bind(&name, ListenerOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddressInUse);
        let text = err.to_string();
        assert!(text.contains(&name.to_string()), "{text}");
        assert!(text.contains(&format!("pid {}", sys::pid())), "{text}");
        drop(_first);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn stale_socket_is_reclaimed_but_foreign_files_are_not() {
        let (dir, name) = temp_name("stale");
        let path = name.path().unwrap().to_path_buf();
        // A socket nobody accepts on, as a killed server leaves behind.
        let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(stale);
        let listener = Listener::bind(&name, ListenerOptions::new()).unwrap();
        drop(listener);
        fs::write(&path, b"precious").unwrap();
        let err = Listener::bind(&name, ListenerOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddressInUse);
        assert_eq!(fs::read(&path).unwrap(), b"precious");
        fs::remove_file(&path).unwrap();
        // A live server that ignores ringlink's lock is never evicted.
        let foreign = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let err = Listener::bind(&name, ListenerOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddressInUse);
        assert!(path.exists());
        drop(foreign);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn state_tells_live_stale_and_absent_and_lists_sockets() {
        let (dir, name) = temp_name("state");
        assert_eq!(name.state().unwrap(), crate::NameState::Absent);
        let listener = Listener::bind(&name, ListenerOptions::new()).unwrap();
        assert_eq!(
            name.state().unwrap(),
            crate::NameState::Live {
                pid: u32::try_from(sys::pid()).ok()
            }
        );
        let listed = Name::list_dir(&dir).unwrap();
        assert_eq!(listed.len(), 1, "the lock file is not listed");
        assert_eq!(listed[0].0, "sock");
        drop(listener);
        let stale = std::os::unix::net::UnixListener::bind(name.path().unwrap()).unwrap();
        drop(stale);
        assert_eq!(name.state().unwrap(), crate::NameState::Stale);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn access_sets_the_mode_despite_the_umask() {
        let (dir, name) = temp_name("mode");
        let listener = Listener::bind(&name, ListenerOptions::new().access(Access::Group)).unwrap();
        let mode = fs::metadata(name.path().unwrap()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o660);
        assert_eq!(listener.peer_policy(), &PeerPolicy::Any);
        drop(listener);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bind_via_private_dir_links_with_final_mode() {
        let (dir, name) = temp_name("portable");
        let fd = sys::socket(true).unwrap();
        bind_via_private_dir(fd.as_fd(), name.path().unwrap(), 0o600, &name).unwrap();
        let meta = fs::symlink_metadata(name.path().unwrap()).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "temporary directory removed"
        );
        sys::listen(fd.as_raw_fd(), 4).unwrap();
        Stream::connect(&name, ConnectOptions::new()).unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn max_connections_closes_the_extra_ones() {
        let (dir, name) = temp_name("max");
        let listener = Listener::bind(&name, ListenerOptions::new().max_connections(1)).unwrap();
        let a = Stream::connect(&name, ConnectOptions::new()).unwrap();
        let b = Stream::connect(&name, ConnectOptions::new()).unwrap();
        let first = listener.accept_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(listener.open_connections(), Some(1));
        let err = listener
            .accept_timeout(Duration::from_millis(50))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert_eq!(listener.refused_count(), 1);
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(
            (&b).read(&mut [0u8; 1]).unwrap(),
            0,
            "over-limit peer reads end of stream"
        );
        drop(first);
        assert_eq!(listener.open_connections(), Some(0));
        let _c = Stream::connect(&name, ConnectOptions::new()).unwrap();
        listener.accept_timeout(Duration::from_secs(5)).unwrap();
        drop(a);
        drop(listener);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn nonblocking_accept_would_block() {
        let (dir, name) = temp_name("nb");
        let listener = Listener::bind(&name, ListenerOptions::new().nonblocking(true)).unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
        let _c = Stream::connect(&name, ConnectOptions::new()).unwrap();
        listener.accept().unwrap();
        drop(listener);
        fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_names_bind_once_and_connect() {
        let name = Name::abstract_name(&format!("ringlink-test-{}", std::process::id())).unwrap();
        let listener = Listener::bind(&name, ListenerOptions::new()).unwrap();
        assert_eq!(
            Listener::bind(&name, ListenerOptions::new())
                .unwrap_err()
                .kind(),
            ErrorKind::AddressInUse
        );
        let c = Stream::connect(&name, ConnectOptions::new()).unwrap();
        let s = listener.accept_timeout(Duration::from_secs(5)).unwrap();
        (&c).write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        (&s).read_exact(&mut b).unwrap();
    }
}
