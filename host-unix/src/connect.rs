//! Connecting with a deadline: the policy the blocking and the async `connect` share
//! (waiting for the server, growing pauses, the server-user check, error messages).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::sys;
use crate::{ConnectOptions, Error, ErrorKind, Name};

/// What one connection attempt came to.
pub(crate) enum Attempt {
    /// Connected.
    Connected(OwnedFd),
    /// A nonblocking connect is under way: wait until writable, then check `SO_ERROR`.
    InProgress(OwnedFd),
    /// Try again after this pause (server absent while waiting for it, or backlog full).
    RetryAfter(Duration),
}

/// The connect policy shared by the blocking and the async `connect`: deadline,
/// waiting for the server, growing pauses and error messages.
pub(crate) struct Connector<'a> {
    name: &'a Name,
    addr: sys::SockAddr,
    options: ConnectOptions,
    deadline: Option<Instant>,
    pause: Duration,
}

impl<'a> Connector<'a> {
    pub(crate) fn new(name: &'a Name, options: ConnectOptions) -> Result<Connector<'a>, Error> {
        Ok(Connector {
            name,
            addr: name.sockaddr()?,
            options,
            deadline: Instant::now().checked_add(options.connect_timeout()),
            pause: Duration::from_millis(1),
        })
    }

    /// Time left before the deadline (`None`: no deadline), or the timeout error.
    pub(crate) fn remaining(&self) -> Result<Option<Duration>, Error> {
        match self.deadline {
            None => Ok(None),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Err(self.timed_out())
                } else {
                    Ok(Some(left))
                }
            }
        }
    }

    pub(crate) fn timed_out(&self) -> Error {
        timed_out(self.name, &self.options)
    }

    /// One attempt. A blocking attempt (the sync API) may wait in the kernel for room in
    /// a full backlog, bounded by the deadline; a nonblocking one never waits.
    pub(crate) fn attempt(&mut self, blocking: bool) -> Result<Attempt, Error> {
        let remaining = self.remaining()?;
        let result = self.name.check_for_connect().and_then(|()| {
            let fd = sys::socket(!blocking).map_err(Error::os)?;
            if blocking {
                // On Linux a blocking connect waits for room in a full backlog for up to
                // SO_SNDTIMEO; bound that wait by the deadline (the write timeout is set after).
                sys::set_timeout(fd.as_raw_fd(), false, remaining).map_err(Error::os)?;
            }
            match sys::connect(fd.as_raw_fd(), &self.addr) {
                Ok(()) => Ok(Attempt::Connected(fd)),
                Err(e) if !blocking && e.raw_os_error() == Some(libc::EINPROGRESS) => {
                    Ok(Attempt::InProgress(fd))
                }
                Err(e) => Err(Error::os(e)),
            }
        });
        let err = match result {
            Ok(attempt) => return Ok(attempt),
            Err(e) => e,
        };
        if err.raw_os_error() == Some(libc::EINTR) {
            return Ok(Attempt::RetryAfter(Duration::ZERO));
        }
        let busy = matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EINPROGRESS));
        let absent = matches!(
            err.kind(),
            ErrorKind::ServerNotFound | ErrorKind::ConnectionRefused
        );
        if !(busy || (absent && self.options.waits_for_server())) {
            return Err(explain_connect_error(err, self.name));
        }
        let remaining = self.remaining()?;
        let pause = remaining.map_or(self.pause, |r| self.pause.min(r));
        self.pause = (self.pause * 2).min(Duration::from_millis(50));
        Ok(Attempt::RetryAfter(pause))
    }

    /// Explains an error that ended a connect under way.
    pub(crate) fn explain(&self, err: Error) -> Error {
        explain_connect_error(err, self.name)
    }

    /// The last step of every connect, before a byte is sent: refuses a server that runs as
    /// another user, unless the options opt out ([`ConnectOptions::verify_server_user`]).
    pub(crate) fn check_server(&self, fd: BorrowedFd<'_>) -> Result<(), Error> {
        if !self.options.verifies_server_user() {
            return Ok(());
        }
        let (uid, _, pid) = sys::peer_credentials(fd.as_raw_fd()).map_err(|e| {
            Error::os(e).with_message(format!("cannot learn who serves {}", self.name))
        })?;
        let own = sys::euid();
        if uid == own {
            return Ok(());
        }
        let pid = pid.map_or(String::new(), |p| format!(", pid {p}"));
        Err(Error::new(
            ErrorKind::AccessDenied,
            format!(
                "refusing to connect to {}: its server runs as uid {uid}{pid}, not as this user \
                 (uid {own}); another user may have planted the socket (use \
                 ConnectOptions::verify_server_user(false), or `ringlink connect --any-server`, \
                 to connect anyway)",
                self.name
            ),
        ))
    }
}

/// Connects a fresh blocking socket to `name`, honouring the deadline and `wait_for_server`.
pub(crate) fn connect_fd(name: &Name, options: &ConnectOptions) -> Result<OwnedFd, Error> {
    let mut connector = Connector::new(name, *options)?;
    loop {
        match connector.attempt(true)? {
            Attempt::Connected(fd) => {
                connector.check_server(fd.as_fd())?;
                return Ok(fd);
            }
            Attempt::RetryAfter(pause) => std::thread::sleep(pause),
            // Only nonblocking attempts report this; handled for completeness.
            Attempt::InProgress(fd) => {
                if !sys::poll(fd.as_raw_fd(), false, connector.remaining()?).map_err(Error::os)? {
                    return Err(connector.timed_out());
                }
                if let Some(e) = sys::take_error(fd.as_raw_fd()).map_err(Error::os)? {
                    return Err(connector.explain(Error::os(e)));
                }
                connector.check_server(fd.as_fd())?;
                return Ok(fd);
            }
        }
    }
}

fn timed_out(name: &Name, options: &ConnectOptions) -> Error {
    let what = if options.waits_for_server() {
        "no server appeared or accepted"
    } else {
        "the server did not accept"
    };
    Error::bare(ErrorKind::TimedOut).with_message(format!(
        "connecting to {name} timed out after {:?}: {what} in time",
        options.connect_timeout()
    ))
}

fn explain_connect_error(err: Error, name: &Name) -> Error {
    if err.message().is_some() {
        return err;
    }
    let message = match err.kind() {
        ErrorKind::ServerNotFound => format!(
            "no ringlink server at {name}: nothing listens on this name (start one, e.g. `ringlink listen NAME`)"
        ),
        ErrorKind::ConnectionRefused => format!(
            "connection refused at {name}: the socket exists but its server is gone (a new server reclaims the name)"
        ),
        ErrorKind::AccessDenied => format!(
            "permission denied connecting to {name}: the socket or its directory belongs to another user"
        ),
        ErrorKind::ResourceExhausted => {
            format!("cannot connect to {name}: out of file descriptors or kernel memory")
        }
        _ => format!("cannot connect to {name}"),
    };
    err.with_message(message)
}
