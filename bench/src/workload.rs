//! What a run asks of a transport, and [`Transport`], the one trait every transport
//! (ringlink or peer) implements: an echo server and a client that times the exchange.
//!
//! Both cases are Qt's: a client writes `chunk` bytes on every connection, the server
//! echoes what it receives, and the client writes back whatever it receives. So exactly
//! `chunk` bytes circulate per connection; **pingPong** is `chunk = 1` until every
//! connection has made its round trips, **dataExchange** runs for a fixed time and
//! counts the bytes received.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::names::{Driver, Name};

/// Round trips of a pingPong run, split evenly over its connections (Qt's figure).
#[cfg(unix)]
pub const PING_PONG_ROUND_TRIPS: u64 = 100_000;
/// Round trips of a pingPong run on Windows: under Wine a pipe round trip costs a few
/// wineserver calls, so Qt's 100,000 would take 15-25 s a row.
#[cfg(windows)]
pub const PING_PONG_ROUND_TRIPS: u64 = 10_000;

/// When a client stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this many round trips on every connection (pingPong).
    RoundTrips(u64),
    /// After this long (dataExchange); bytes received until then count.
    After(Duration),
}

/// The client side of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientPlan {
    /// Connections, all driven by one client (one thread unless the model says otherwise).
    pub connections: usize,
    /// Bytes circulating per connection.
    pub chunk: usize,
    /// When to stop.
    pub stop: Stop,
    /// How the transport drives its connections: one of [`Transport::models`].
    pub model: Driver,
}

impl ClientPlan {
    /// Bytes the client must receive in all: `Some` for pingPong.
    pub fn expected_bytes(&self) -> Option<u64> {
        match self.stop {
            Stop::RoundTrips(n) => Some(n * self.chunk as u64 * self.connections as u64),
            Stop::After(_) => None,
        }
    }

    /// The server side matching this client.
    pub fn echo_plan(&self) -> EchoPlan {
        EchoPlan {
            connections: self.connections,
            chunk: self.chunk,
            model: self.model,
        }
    }
}

/// The server side of a run: accept `connections`, echo everything, return once
/// every connection has been closed by its client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoPlan {
    /// Connections to accept.
    pub connections: usize,
    /// The most bytes a connection can have in flight (the read buffer needs no more).
    pub chunk: usize,
    /// How the transport drives its connections: one of [`Transport::models`].
    pub model: Driver,
}

/// What a client measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientOutcome {
    /// From the first write to the last counted receive.
    pub elapsed: Duration,
    /// Bytes received in that time, over all connections.
    pub received: u64,
}

/// Bounds every loop of a run: a deadline, and a flag that cancels the run early
/// (set by the harness when the other side has failed).
#[derive(Clone, Copy)]
pub struct Limit<'a> {
    /// Give up at this instant.
    pub deadline: Instant,
    /// Give up as soon as this is set.
    pub cancel: &'a AtomicBool,
}

impl Limit<'_> {
    /// Whether the run must stop now.
    pub fn expired(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }

    /// Time left until the deadline (zero once past).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// `Err(TimedOut)` once the run must stop.
    pub fn check(&self, what: &'static str) -> Result<(), BenchError> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(BenchError::Cancelled)
        } else if Instant::now() >= self.deadline {
            Err(BenchError::TimedOut(what))
        } else {
            Ok(())
        }
    }
}

/// Why a run failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BenchError {
    /// An I/O call failed; the string says which.
    Io(&'static str, io::Error),
    /// The deadline passed while waiting for the named step.
    TimedOut(&'static str),
    /// The harness cancelled the run (the other side failed first).
    Cancelled,
    /// A peer broke the workload's rules (early end of stream, too many bytes, ...).
    Protocol(String),
    /// The run could not be set up (threads, child process, limits).
    Setup(String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Io(what, e) => write!(f, "{what}: {e}"),
            BenchError::TimedOut(what) => write!(f, "timed out while {what}"),
            BenchError::Cancelled => f.write_str("cancelled"),
            BenchError::Protocol(m) => write!(f, "protocol: {m}"),
            BenchError::Setup(m) => write!(f, "setup: {m}"),
        }
    }
}

impl std::error::Error for BenchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BenchError::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Adds context to an `io::Result`.
pub trait IoContext<T> {
    /// Names the step that failed.
    fn during(self, what: &'static str) -> Result<T, BenchError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn during(self, what: &'static str) -> Result<T, BenchError> {
        self.map_err(|e| BenchError::Io(what, e))
    }
}

/// One way of carrying bytes between a client and a server: ringlink's transports
/// and the peers they are measured against each implement it once.
pub trait Transport: Sync {
    /// The name in tables and JSON (`"std"`, `"tokio"`, `"ringlink-uds"`, ...).
    fn name(&self) -> Name;

    /// The drivers this transport can run under, the preferred first.
    fn models(&self) -> &'static [Driver];

    /// The drivers a run measures with `connections` connections on each side, one
    /// row each. Decided once, by the harness, so a server and a client in two
    /// processes agree.
    fn drivers(&self, connections: usize) -> Vec<Driver> {
        let _ = connections;
        vec![self.models()[0]]
    }

    /// Why this transport cannot run `connections` connections under `driver` on this
    /// machine (descriptors, threads); `None` when it can. Such rows are reported as
    /// not run.
    fn unsupported(&self, driver: Driver, connections: usize) -> Option<String> {
        let _ = (driver, connections);
        None
    }

    /// Binds `addr`, calls `ready` once clients may connect, echoes on
    /// `plan.connections` connections and returns when each has been closed by its
    /// client.
    fn serve(
        &self,
        addr: &Path,
        plan: EchoPlan,
        limit: Limit<'_>,
        ready: &mut dyn FnMut(),
    ) -> Result<(), BenchError>;

    /// Opens `plan.connections` connections to `addr` (untimed), then times the
    /// exchange until `plan.stop`, and closes them.
    fn run_client(
        &self,
        addr: &Path,
        plan: ClientPlan,
        limit: Limit<'_>,
    ) -> Result<ClientOutcome, BenchError>;
}

#[cfg(unix)]
/// Retries `connect` while the server's backlog is full (`EAGAIN` on a nonblocking
/// Unix-socket connect, `ECONNREFUSED` is not retried), until the limit.
pub fn connect_retrying<S>(
    limit: Limit<'_>,
    mut connect: impl FnMut() -> io::Result<S>,
) -> Result<S, BenchError> {
    loop {
        match connect() {
            Ok(s) => return Ok(s),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                limit.check("connecting")?;
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => return Err(BenchError::Io("connect", e)),
        }
    }
}

/// Whether a failed write or read means the peer has simply gone (end of a run).
pub fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_pong_expects_every_round_trip() {
        let plan = ClientPlan {
            connections: 10,
            chunk: 1,
            stop: Stop::RoundTrips(PING_PONG_ROUND_TRIPS / 10),
            model: Driver::Threads,
        };
        assert_eq!(plan.expected_bytes(), Some(PING_PONG_ROUND_TRIPS));
        let plan = ClientPlan {
            stop: Stop::After(Duration::from_millis(1)),
            ..plan
        };
        assert_eq!(plan.expected_bytes(), None);
        assert_eq!(plan.echo_plan().connections, 10);
    }

    #[test]
    fn limit_expires_and_cancels() {
        let cancel = AtomicBool::new(false);
        let limit = Limit {
            deadline: Instant::now() + Duration::from_secs(60),
            cancel: &cancel,
        };
        assert!(limit.check("x").is_ok());
        cancel.store(true, Ordering::Relaxed);
        assert!(matches!(limit.check("x"), Err(BenchError::Cancelled)));
        let cancel = AtomicBool::new(false);
        let past = Limit {
            deadline: Instant::now(),
            cancel: &cancel,
        };
        assert!(matches!(past.check("x"), Err(BenchError::TimedOut("x"))));
    }
}
