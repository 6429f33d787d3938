//! The one error type of `ringlink-windows`: a kind modelled on Qt's `QLocalSocket::LocalSocketError`,
//! a message a user can act on, and the operating-system error as its source.

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
    /// The name cannot be used: empty, contains `\\` or NUL where it may not, or longer
    /// than the 256 characters of a pipe name.
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

/// An error of `ringlink-windows`: a [`kind`](Error::kind), a message naming what failed
/// (the pipe, the limit) and the operating-system error as
/// [`source`](std::error::Error::source).
///
/// Creating an error on the hot path (`WouldBlock`, timeouts, peer closed) does not allocate.
///
/// ```
/// use ringlink_windows::{ConnectOptions, ErrorKind, Stream};
///
/// let err = Stream::connect("ringlink-doc-nobody-listens", ConnectOptions::new()).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ServerNotFound);
/// println!("{err}"); // names the path and says how to start a server
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
    pub(crate) const fn bare(kind: ErrorKind) -> Error {
        Error {
            kind,
            message: None,
            source: None,
        }
    }

    /// Classifies an operating-system error, keeping it as the source.
    pub(crate) fn os(err: io::Error) -> Error {
        Error {
            kind: classify(&err),
            message: None,
            source: Some(err),
        }
    }

    /// Adds (or replaces) the message.
    pub(crate) fn with_message(mut self, message: impl Into<String>) -> Error {
        self.message = Some(message.into().into_boxed_str());
        self
    }

    /// Replaces the kind, keeping message and source.
    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Error {
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

    /// The raw Win32 error code behind this error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.as_ref().and_then(io::Error::raw_os_error)
    }

    /// The message, if the error has one beyond its kind.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

/// Maps an OS error to a kind: Win32 codes first (Qt maps every one of them to
/// "unknown"; ringlink does not), then the portable `io::ErrorKind`.
fn classify(err: &io::Error) -> ErrorKind {
    use windows_sys::Win32::Foundation as w;
    if let Some(code) = err.raw_os_error() {
        return match code as u32 {
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
            _ => match err.kind() {
                io::ErrorKind::WouldBlock => ErrorKind::WouldBlock,
                _ => ErrorKind::Other,
            },
        };
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
    use windows_sys::Win32::Foundation as w;

    fn os(code: u32) -> Error {
        Error::os(io::Error::from_raw_os_error(code as i32))
    }

    #[test]
    fn win32_pipe_errors_get_their_own_kinds() {
        assert_eq!(
            os(w::ERROR_FILE_NOT_FOUND).kind(),
            ErrorKind::ServerNotFound
        );
        assert_eq!(os(w::ERROR_BROKEN_PIPE).kind(), ErrorKind::PeerClosed);
        assert_eq!(os(w::ERROR_NO_DATA).kind(), ErrorKind::PeerClosed);
        assert_eq!(
            os(w::ERROR_PIPE_NOT_CONNECTED).kind(),
            ErrorKind::PeerClosed
        );
        assert_eq!(os(w::ERROR_ACCESS_DENIED).kind(), ErrorKind::AccessDenied);
        assert_eq!(os(w::ERROR_PIPE_BUSY).kind(), ErrorKind::ResourceExhausted);
        assert_eq!(os(w::ERROR_SEM_TIMEOUT).kind(), ErrorKind::TimedOut);
        assert_eq!(os(w::ERROR_ALREADY_EXISTS).kind(), ErrorKind::AddressInUse);
        assert_eq!(os(w::ERROR_INVALID_NAME).kind(), ErrorKind::InvalidName);
        assert_eq!(
            os(w::ERROR_NO_SYSTEM_RESOURCES).kind(),
            ErrorKind::ResourceExhausted
        );
    }

    #[test]
    fn os_errors_round_trip_through_io_error() {
        let e = os(w::ERROR_BROKEN_PIPE);
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(io.raw_os_error(), Some(w::ERROR_BROKEN_PIPE as i32));
        assert_eq!(Error::from(io).kind(), ErrorKind::PeerClosed);
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
    fn error_is_send_sync_and_small() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert!(std::mem::size_of::<Error>() <= 32);
    }
}
