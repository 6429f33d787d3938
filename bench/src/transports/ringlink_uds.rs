//! ringlink's raw Unix-socket transport (`ringlink_unix::{Listener, Stream}`) under
//! each driver its peers use, one row each:
//! - threads: blocking `Stream`s, a thread per connection on each side (std's way);
//! - epoll: nonblocking `try_read`/`try_write` and one `epoll` thread per side
//!   ([`crate::readiness`]), as its docs suggest for many connections (std-epoll's way);
//! - tokio tasks: `ringlink_unix::tokio`'s `Listener` and `Stream`, a task per
//!   connection on a current-thread runtime per side (tokio's and interprocess's way).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::Duration;

use ringlink_unix::{ConnectOptions, ErrorKind, Listener, ListenerOptions, Stream};

use super::async_driven::{AsyncDriven, AsyncSockets};
use crate::names::{Driver, Name};
use crate::readiness::{self, NonblockingListener, TICK, TryIo};
use crate::threaded::{self, Copying};
use crate::workload::{BenchError, ClientOutcome, ClientPlan, EchoPlan, Limit, Transport};

/// ringlink raw UDS.
pub struct RinglinkUds;

/// ringlink raw UDS on tokio.
pub struct RinglinkUdsAsync;

static TOKIO: AsyncDriven<RinglinkUdsAsync> = AsyncDriven::new();

impl AsyncSockets for RinglinkUdsAsync {
    const NAME: Name = Name::RinglinkUds;
    type Stream = ringlink_unix::tokio::Stream;
    type Listener = ringlink_unix::tokio::Listener;

    fn bind(addr: &Path) -> io::Result<Self::Listener> {
        ringlink_unix::tokio::Listener::bind(addr, ListenerOptions::new()).map_err(to_io)
    }

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream> {
        listener.accept().await.map_err(to_io)
    }

    async fn connect(addr: &Path) -> io::Result<Self::Stream> {
        let options = ConnectOptions::new().timeout(Duration::from_secs(10));
        ringlink_unix::tokio::Stream::connect(addr, options)
            .await
            .map_err(to_io)
    }
}

/// A blocking stream with read and write timeouts at the end of the limit.
fn blocking(stream: Stream, limit: Limit<'_>) -> Result<Copying<Stream>, BenchError> {
    let left = Some(limit.remaining().max(Duration::from_millis(1)));
    let set =
        |r: Result<(), ringlink_unix::Error>| r.map_err(|e| BenchError::Io("timeouts", to_io(e)));
    set(stream.set_nonblocking(false))?;
    set(stream.set_read_timeout(left))?;
    set(stream.set_write_timeout(left))?;
    Ok(Copying(stream))
}

/// `WouldBlock` without the allocation a wrapped error would cost.
pub fn to_io(e: ringlink_unix::Error) -> io::Error {
    if e.kind() == ErrorKind::WouldBlock {
        io::ErrorKind::WouldBlock.into()
    } else {
        e.into()
    }
}

/// Binds `addr` with ringlink's defaults (owner-only socket, lock file, same-user peers).
pub fn bind(addr: &Path, nonblocking: bool) -> Result<Listener, BenchError> {
    Listener::bind(addr, ListenerOptions::new().nonblocking(nonblocking))
        .map_err(|e| BenchError::Io("bind", to_io(e)))
}

/// Connects to `addr` with a deadline inside the limit.
pub fn connect(addr: &Path, limit: Limit<'_>) -> Result<Stream, BenchError> {
    limit.check("connecting")?;
    Stream::connect(addr, ConnectOptions::new().timeout(limit.remaining()))
        .map_err(|e| BenchError::Io("connect", to_io(e)))
}

/// A ringlink stream for the epoll loops.
pub struct Conn(Stream);

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl TryIo for Conn {
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf).map_err(to_io)
    }
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf).map_err(to_io)
    }
}

/// A nonblocking ringlink listener for the epoll loops.
pub struct Accepting(Listener);

impl AsRawFd for Accepting {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl NonblockingListener for Accepting {
    type Stream = Conn;
    fn try_accept(&mut self) -> io::Result<Conn> {
        // `try_read`/`try_write` never block, whatever the stream's mode.
        self.0.accept().map(Conn).map_err(to_io)
    }
}

impl Transport for RinglinkUds {
    fn name(&self) -> Name {
        Name::RinglinkUds
    }

    fn models(&self) -> &'static [Driver] {
        &[Driver::Threads, Driver::Epoll, Driver::TokioTasks]
    }

    fn drivers(&self, _connections: usize) -> Vec<Driver> {
        self.models().to_vec()
    }

    fn unsupported(&self, driver: Driver, connections: usize) -> Option<String> {
        match driver {
            Driver::Threads => threaded::thread_per_connection_short(
                connections,
                "ringlink-uds's epoll and tokio rows are its rows",
            ),
            _ => None,
        }
    }

    fn serve(
        &self,
        addr: &Path,
        plan: EchoPlan,
        limit: Limit<'_>,
        ready: &mut dyn FnMut(),
    ) -> Result<(), BenchError> {
        match plan.model {
            Driver::TokioTasks => TOKIO.serve(addr, plan, limit, ready),
            Driver::Threads => {
                let listener = bind(addr, false)?;
                ready();
                threaded::serve(
                    || match listener.accept_timeout(TICK) {
                        Ok(stream) => blocking(stream, limit).map(Some),
                        Err(e) if e.kind() == ErrorKind::TimedOut => Ok(None),
                        Err(e) => Err(BenchError::Io("accept", to_io(e))),
                    },
                    plan,
                    limit,
                )
            }
            _ => {
                let listener = bind(addr, true)?;
                ready();
                readiness::serve(Accepting(listener), plan, limit)
            }
        }
    }

    fn run_client(
        &self,
        addr: &Path,
        plan: ClientPlan,
        limit: Limit<'_>,
    ) -> Result<ClientOutcome, BenchError> {
        match plan.model {
            Driver::TokioTasks => return TOKIO.run_client(addr, plan, limit),
            Driver::Threads => {
                return threaded::run_client(
                    || blocking(connect(addr, limit)?, limit),
                    plan,
                    limit,
                );
            }
            _ => {}
        }
        let mut streams = Vec::with_capacity(plan.connections);
        for _ in 0..plan.connections {
            streams.push(Conn(connect(addr, limit)?));
        }
        readiness::run_client(streams, plan, limit)
    }
}
