//! The one error type of ringlink's host adapters: a kind modelled on Qt's
//! `QLocalSocket::LocalSocketError`, a message a user can act on, and the operating-system
//! error as its source. `ringlink-unix` and `ringlink-windows` re-export it as their `Error`.

use std::fmt;
use std::io;

/// What went wrong, in the spirit of Qt's `QLocalSocket::LocalSocketError`.
///
/// Match on this, not on the message; the message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No socket exists at the name: no server was ever started, or it exited cleanly
    /// (Qt: `ServerNotFoundError`).
    ServerNotFound,
    /// A socket exists at the name but nobody accepts on it: its server died
    /// (Qt: `ConnectionRefusedError`).
    ConnectionRefused,
    /// The peer closed the connection or went away; bytes in flight may be lost
    /// (Qt: `PeerClosedError`).
    PeerClosed,
    /// The operating system, a directory check or a listener's peer policy refused access
    /// (Qt: `SocketAccessError`).
    AccessDenied,
    /// Out of file descriptors, kernel buffers or the listener's connection budget
    /// (Qt: `SocketResourceError`).
    ResourceExhausted,
    /// A deadline or a read/write timeout expired (Qt: `SocketTimeoutError`).
    TimedOut,
    /// A live server already holds the name (Qt: `AddressInUseError`).
    AddressInUse,
    /// The name cannot be used: empty, contains a separator (`/`, `\\`) or NUL where it
    /// may not, or too long for the platform (`sun_path` on Unix, the 256 characters of a
    /// pipe name on Windows).
    InvalidName,
    /// A frame is longer than the receiver's limit. The frame was skipped; the
    /// connection stays usable.
    FrameTooLarge,
    /// The peer does not speak ringlink's framed protocol (wrong magic, version or no hello).
    ProtocolMismatch,
    /// A frame's payload could not be decoded as the expected message type.
    InvalidData,
    /// The operation would block on a nonblocking stream or listener; try again when ready.
    WouldBlock,
    /// This platform does not support the operation, for example abstract names outside
    /// Linux (Qt: `UnsupportedSocketOperationError`).
    Unsupported,
    /// Any other operating-system error; see the source (Qt: `UnknownSocketError`).
    Other,
}

impl ErrorKind {
    /// A short description, used when an error has no message of its own.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ServerNotFound => "server not found",
            ErrorKind::ConnectionRefused => "connection refused",
            ErrorKind::PeerClosed => "peer closed the connection",
            ErrorKind::AccessDenied => "access denied",
            ErrorKind::ResourceExhausted => "resource exhausted",
            ErrorKind::TimedOut => "timed out",
            ErrorKind::AddressInUse => "name already in use",
            ErrorKind::InvalidName => "invalid name",
            ErrorKind::FrameTooLarge => "frame too large",
            ErrorKind::ProtocolMismatch => "protocol mismatch",
            ErrorKind::InvalidData => "invalid message",
            ErrorKind::WouldBlock => "operation would block",
            ErrorKind::Unsupported => "unsupported operation",
            ErrorKind::Other => "I/O error",
        }
    }

    fn to_io(self) -> io::ErrorKind {
        match self {
            ErrorKind::ServerNotFound => io::ErrorKind::NotFound,
            ErrorKind::ConnectionRefused => io::ErrorKind::ConnectionRefused,
            ErrorKind::PeerClosed => io::ErrorKind::BrokenPipe,
            ErrorKind::AccessDenied => io::ErrorKind::PermissionDenied,
            ErrorKind::ResourceExhausted => io::ErrorKind::OutOfMemory,
            ErrorKind::TimedOut => io::ErrorKind::TimedOut,
            ErrorKind::AddressInUse => io::ErrorKind::AddrInUse,
            ErrorKind::InvalidName => io::ErrorKind::InvalidInput,
            ErrorKind::FrameTooLarge | ErrorKind::ProtocolMismatch | ErrorKind::InvalidData => {
                io::ErrorKind::InvalidData
            }
            ErrorKind::WouldBlock => io::ErrorKind::WouldBlock,
            ErrorKind::Unsupported => io::ErrorKind::Unsupported,
            ErrorKind::Other => io::ErrorKind::Other,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of a ringlink host adapter: a [`kind`](Error::kind), a message naming what
/// failed (the path or pipe, the holder's pid, the limit) and the operating-system error as
/// [`source`](std::error::Error::source).
///
/// Creating an error on the hot path (`WouldBlock`, timeouts, peer closed) does not allocate.
/// It travels through `std::io` and comes back whole:
///
/// ```
/// use ringlink_host::{Error, ErrorKind};
///
/// let err = Error::new(ErrorKind::FrameTooLarge, "a frame of 9 bytes is over the limit of 8");
/// let io: std::io::Error = err.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
/// let back = Error::from(io);
/// assert_eq!(back.kind(), ErrorKind::FrameTooLarge);
/// assert_eq!(back.to_string(), "a frame of 9 bytes is over the limit of 8");
/// ```
pub struct Error {
    kind: ErrorKind,
    message: Option<Box<str>>,
    source: Option<io::Error>,
}

impl Error {
    /// An error of `kind` with a message for people.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: Some(message.into().into_boxed_str()),
            source: None,
        }
    }

    /// An error of `kind` without a message (no allocation).
    pub const fn bare(kind: ErrorKind) -> Error {
        Error {
            kind,
            message: None,
            source: None,
        }
    }

    /// Classifies an operating-system error (its raw code first, then its
    /// `io::ErrorKind`), keeping it as the source. `EAGAIN` and its Windows counterparts
    /// are [`ErrorKind::WouldBlock`]; a caller that set a timeout makes them
    /// [`ErrorKind::TimedOut`] with [`with_kind`](Error::with_kind).
    pub fn os(err: io::Error) -> Error {
        Error {
            kind: classify(&err),
            message: None,
            source: Some(err),
        }
    }

    /// Adds (or replaces) the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Error {
        self.message = Some(message.into().into_boxed_str());
        self
    }

    /// Replaces the kind, keeping message and source.
    pub fn with_kind(mut self, kind: ErrorKind) -> Error {
        self.kind = kind;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operating-system error behind this one, if any.
    pub fn os_error(&self) -> Option<&io::Error> {
        self.source.as_ref()
    }

    /// The raw OS error code behind this error, if any: `errno` on Unix, the Win32 error
    /// code on Windows.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.as_ref().and_then(io::Error::raw_os_error)
    }

    /// The message, if the error has one beyond its kind.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

/// Maps an OS error to a kind: the platform's raw code first (Qt maps most Win32 codes to
/// "unknown"; ringlink does not), then the portable `io::ErrorKind`.
fn classify(err: &io::Error) -> ErrorKind {
    if let Some(code) = err.raw_os_error() {
        return os_codes::classify(code).unwrap_or(match err.kind() {
            io::ErrorKind::WouldBlock => ErrorKind::WouldBlock,
            _ => ErrorKind::Other,
        });
    }
    match err.kind() {
        io::ErrorKind::NotFound => ErrorKind::ServerNotFound,
        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectionRefused,
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::NotConnected
        | io::ErrorKind::UnexpectedEof => ErrorKind::PeerClosed,
        io::ErrorKind::PermissionDenied => ErrorKind::AccessDenied,
        io::ErrorKind::OutOfMemory => ErrorKind::ResourceExhausted,
        io::ErrorKind::TimedOut => ErrorKind::TimedOut,
        io::ErrorKind::AddrInUse => ErrorKind::AddressInUse,
        io::ErrorKind::InvalidInput => ErrorKind::InvalidName,
        io::ErrorKind::InvalidData => ErrorKind::InvalidData,
        io::ErrorKind::WouldBlock => ErrorKind::WouldBlock,
        io::ErrorKind::Unsupported => ErrorKind::Unsupported,
        _ => ErrorKind::Other,
    }
}

/// `errno` values as kinds; unknown codes are [`ErrorKind::Other`].
#[cfg(unix)]
mod os_codes {
    use super::ErrorKind;

    pub(super) fn classify(code: i32) -> Option<ErrorKind> {
        Some(match code {
            libc::ENOENT | libc::ENOTDIR => ErrorKind::ServerNotFound,
            libc::ECONNREFUSED => ErrorKind::ConnectionRefused,
            libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN | libc::ECONNABORTED => {
                ErrorKind::PeerClosed
            }
            libc::EACCES | libc::EPERM => ErrorKind::AccessDenied,
            libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                ErrorKind::ResourceExhausted
            }
            libc::ETIMEDOUT => ErrorKind::TimedOut,
            libc::EADDRINUSE => ErrorKind::AddressInUse,
            libc::ENAMETOOLONG => ErrorKind::InvalidName,
            libc::EOPNOTSUPP | libc::ENOSYS => ErrorKind::Unsupported,
            code if code == libc::EAGAIN || code == libc::EWOULDBLOCK => ErrorKind::WouldBlock,
            _ => return None,
        })
    }
}

/// Win32 error codes as kinds; unknown codes are [`ErrorKind::Other`] (or `WouldBlock`
/// when std reads them so, as `WSAEWOULDBLOCK`).
#[cfg(windows)]
mod os_codes {
    use super::ErrorKind;
    use windows_sys::Win32::Foundation as w;

    pub(super) fn classify(code: i32) -> Option<ErrorKind> {
        Some(match code as u32 {
            w::ERROR_FILE_NOT_FOUND | w::ERROR_PATH_NOT_FOUND | w::ERROR_BAD_NETPATH => {
                ErrorKind::ServerNotFound
            }
            w::ERROR_BROKEN_PIPE
            | w::ERROR_NO_DATA
            | w::ERROR_PIPE_NOT_CONNECTED
            | w::ERROR_NETNAME_DELETED => ErrorKind::PeerClosed,
            w::ERROR_ACCESS_DENIED
            | w::ERROR_PRIVILEGE_NOT_HELD
            | w::ERROR_BAD_IMPERSONATION_LEVEL
            | w::ERROR_CANT_OPEN_ANONYMOUS => ErrorKind::AccessDenied,
            w::ERROR_NOT_ENOUGH_MEMORY
            | w::ERROR_OUTOFMEMORY
            | w::ERROR_TOO_MANY_OPEN_FILES
            | w::ERROR_NO_SYSTEM_RESOURCES
            | w::ERROR_NONPAGED_SYSTEM_RESOURCES
            | w::ERROR_PAGED_SYSTEM_RESOURCES
            | w::ERROR_WORKING_SET_QUOTA
            | w::ERROR_COMMITMENT_LIMIT
            | w::ERROR_NOT_ENOUGH_QUOTA
            | w::ERROR_PIPE_BUSY => ErrorKind::ResourceExhausted,
            w::ERROR_SEM_TIMEOUT | w::ERROR_TIMEOUT | w::WAIT_TIMEOUT => ErrorKind::TimedOut,
            w::ERROR_ALREADY_EXISTS => ErrorKind::AddressInUse,
            w::ERROR_INVALID_NAME | w::ERROR_BAD_PATHNAME | w::ERROR_FILENAME_EXCED_RANGE => {
                ErrorKind::InvalidName
            }
            w::ERROR_NOT_SUPPORTED | w::ERROR_CALL_NOT_IMPLEMENTED => ErrorKind::Unsupported,
            _ => return None,
        })
    }
}

/// Elsewhere only the portable `io::ErrorKind` says what happened.
#[cfg(not(any(unix, windows)))]
mod os_codes {
    use super::ErrorKind;

    pub(super) fn classify(_code: i32) -> Option<ErrorKind> {
        None
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(m) = &self.message {
            d.field("message", m);
        }
        if let Some(s) = &self.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            // Without a message of our own, the OS error is the most precise text there is.
            None => match &self.source {
                Some(s) => write!(f, "{}: {s}", self.kind),
                None => f.write_str(self.kind.as_str()),
            },
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Shown by Display already when there is no message.
        if self.message.is_some() {
            self.source
                .as_ref()
                .map(|s| s as &(dyn std::error::Error + 'static))
        } else {
            None
        }
    }
}

impl embedded_io::Error for Error {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind as E;
        match self.kind {
            ErrorKind::ServerNotFound => E::NotFound,
            ErrorKind::ConnectionRefused => E::ConnectionRefused,
            ErrorKind::PeerClosed => E::BrokenPipe,
            ErrorKind::AccessDenied => E::PermissionDenied,
            ErrorKind::ResourceExhausted => E::OutOfMemory,
            ErrorKind::TimedOut => E::TimedOut,
            ErrorKind::AddressInUse => E::AddrInUse,
            ErrorKind::InvalidName => E::InvalidInput,
            ErrorKind::FrameTooLarge | ErrorKind::ProtocolMismatch | ErrorKind::InvalidData => {
                E::InvalidData
            }
            ErrorKind::WouldBlock => E::Other,
            ErrorKind::Unsupported => E::Unsupported,
            ErrorKind::Other => E::Other,
        }
    }
}

impl From<io::Error> for Error {
    /// Recovers a ringlink error carried inside an `io::Error`, or classifies an OS error.
    fn from(err: io::Error) -> Error {
        if err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            if let Some(inner) = err.into_inner() {
                if let Ok(e) = inner.downcast::<Error>() {
                    return *e;
                }
            }
            return Error::bare(ErrorKind::Other);
        }
        Error::os(err)
    }
}

impl From<Error> for io::Error {
    /// Plain OS errors come back as themselves (same `raw_os_error`); anything else is
    /// wrapped with the matching `io::ErrorKind` and can be recovered with `Error::from`.
    fn from(err: Error) -> io::Error {
        let io_kind = err.kind.to_io();
        if err.message.is_none() {
            match err.source {
                Some(s) if s.kind() == io_kind => return s,
                None => return io::Error::from(io_kind),
                Some(_) => {}
            }
        }
        io::Error::new(io_kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw OS error meaning "the peer closed the pipe" on this platform.
    #[cfg(unix)]
    const PEER_GONE: i32 = libc::EPIPE;
    #[cfg(windows)]
    const PEER_GONE: i32 = windows_sys::Win32::Foundation::ERROR_BROKEN_PIPE as i32;

    #[cfg(any(unix, windows))]
    #[test]
    fn os_errors_round_trip_through_io_error() {
        let e = Error::os(io::Error::from_raw_os_error(PEER_GONE));
        assert_eq!(e.kind(), ErrorKind::PeerClosed);
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(io.raw_os_error(), Some(PEER_GONE));
        assert_eq!(Error::from(io).kind(), ErrorKind::PeerClosed);
    }

    #[cfg(unix)]
    #[test]
    fn errno_values_get_their_kinds() {
        let codes = [
            libc::ENOENT,
            libc::ECONNREFUSED,
            libc::ECONNRESET,
            libc::EACCES,
            libc::EMFILE,
            libc::EADDRINUSE,
            libc::ENAMETOOLONG,
            libc::EAGAIN,
            libc::EIO,
        ];
        let kinds: Vec<ErrorKind> = codes
            .into_iter()
            .map(|code| Error::os(io::Error::from_raw_os_error(code)).kind())
            .collect();
        use ErrorKind::*;
        let expected = [
            ServerNotFound,
            ConnectionRefused,
            PeerClosed,
            AccessDenied,
            ResourceExhausted,
            AddressInUse,
            InvalidName,
            WouldBlock,
            Other,
        ];
        assert_eq!(kinds, expected);
    }

    #[cfg(windows)]
    #[test]
    fn win32_pipe_errors_get_their_own_kinds() {
        use windows_sys::Win32::Foundation as w;
        let kind = |code: u32| Error::os(io::Error::from_raw_os_error(code as i32)).kind();
        assert_eq!(kind(w::ERROR_FILE_NOT_FOUND), ErrorKind::ServerNotFound);
        assert_eq!(kind(w::ERROR_BROKEN_PIPE), ErrorKind::PeerClosed);
        assert_eq!(kind(w::ERROR_NO_DATA), ErrorKind::PeerClosed);
        assert_eq!(kind(w::ERROR_PIPE_NOT_CONNECTED), ErrorKind::PeerClosed);
        assert_eq!(kind(w::ERROR_ACCESS_DENIED), ErrorKind::AccessDenied);
        assert_eq!(kind(w::ERROR_PIPE_BUSY), ErrorKind::ResourceExhausted);
        assert_eq!(kind(w::ERROR_SEM_TIMEOUT), ErrorKind::TimedOut);
        assert_eq!(kind(w::ERROR_ALREADY_EXISTS), ErrorKind::AddressInUse);
        assert_eq!(kind(w::ERROR_INVALID_NAME), ErrorKind::InvalidName);
        assert_eq!(
            kind(w::ERROR_NO_SYSTEM_RESOURCES),
            ErrorKind::ResourceExhausted
        );
        assert_eq!(kind(w::ERROR_GEN_FAILURE), ErrorKind::Other);
        assert_eq!(kind(10035), ErrorKind::WouldBlock, "WSAEWOULDBLOCK");
    }

    #[test]
    fn portable_kinds_classify_errors_without_a_code() {
        let kind = |k: io::ErrorKind| Error::os(io::Error::from(k)).kind();
        assert_eq!(kind(io::ErrorKind::NotFound), ErrorKind::ServerNotFound);
        assert_eq!(kind(io::ErrorKind::UnexpectedEof), ErrorKind::PeerClosed);
        assert_eq!(kind(io::ErrorKind::WouldBlock), ErrorKind::WouldBlock);
        assert_eq!(kind(io::ErrorKind::WriteZero), ErrorKind::Other);
    }

    #[test]
    fn ringlink_errors_survive_io_error() {
        let e = Error::new(
            ErrorKind::FrameTooLarge,
            "frame of 9 bytes over the limit of 8",
        );
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        let back = Error::from(io);
        assert_eq!(back.kind(), ErrorKind::FrameTooLarge);
        assert!(back.to_string().contains("limit of 8"));
    }

    #[test]
    fn timeouts_keep_their_kind_in_io() {
        let e =
            Error::os(io::Error::from(io::ErrorKind::WouldBlock)).with_kind(ErrorKind::TimedOut);
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn display_prefers_the_message_then_the_os_error() {
        let bare = Error::bare(ErrorKind::WouldBlock);
        assert_eq!(bare.to_string(), "operation would block");
        let os = Error::os(io::Error::new(io::ErrorKind::NotFound, "no such pipe"));
        assert_eq!(os.to_string(), "server not found: no such pipe");
        assert!(
            std::error::Error::source(&os).is_none(),
            "shown by Display already"
        );
        let told = os.with_message("cannot connect to demo");
        assert_eq!(told.to_string(), "cannot connect to demo");
        assert!(std::error::Error::source(&told).is_some());
    }

    #[test]
    fn error_is_send_sync_and_small() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert!(std::mem::size_of::<Error>() <= 32);
    }
}
