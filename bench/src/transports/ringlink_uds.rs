//! ringlink's raw Unix-socket transport (`ringlink_unix::{Listener, Stream}`), driven
//! as its docs suggest for many connections: nonblocking `try_read`/`try_write` on
//! every stream and one `epoll` thread per side ([`crate::readiness`]).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use ringlink_unix::{ConnectOptions, ErrorKind, Listener, ListenerOptions, Stream};

use crate::readiness::{self, NonblockingListener, NonblockingStream};
use crate::workload::{BenchError, ClientOutcome, ClientPlan, EchoPlan, Limit, Transport};

/// ringlink raw UDS.
pub struct RinglinkUds;

const EPOLL: &str = "epoll";

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

impl NonblockingStream for Conn {
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
    fn name(&self) -> &'static str {
        "ringlink-uds"
    }

    fn models(&self) -> &'static [&'static str] {
        &[EPOLL]
    }

    fn serve(
        &self,
        addr: &Path,
        plan: EchoPlan,
        limit: Limit<'_>,
        ready: &mut dyn FnMut(),
    ) -> Result<(), BenchError> {
        let listener = bind(addr, true)?;
        ready();
        readiness::serve(Accepting(listener), plan, limit)
    }

    fn run_client(
        &self,
        addr: &Path,
        plan: ClientPlan,
        limit: Limit<'_>,
    ) -> Result<ClientOutcome, BenchError> {
        let mut streams = Vec::with_capacity(plan.connections);
        for _ in 0..plan.connections {
            streams.push(Conn(connect(addr, limit)?));
        }
        readiness::run_client(streams, plan, limit)
    }
}
