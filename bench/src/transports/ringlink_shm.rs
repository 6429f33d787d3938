//! ringlink's shared-memory transport (`ringlink_unix::shm`, Linux): two core rings in
//! a sealed `memfd` mapping per connection, wake-ups of both directions over the
//! connection's socket. Each side of a connection holds one descriptor, its socket,
//! which bounds the connection counts it can run.
//!
//! - `ringlink-shm`: the blocking `ShmStream`, one thread per connection on each side
//!   (as std's rows), spinning briefly before it parks (the default options). Each
//!   side sends back what it receives with `ShmReadHalf::splice`: one copy, ring to
//!   ring, where a socket needs two (read into a buffer, write the buffer). Beyond 50
//!   connections it runs as `ringlink-shm-tokio` does (the "driven by" column says so).
//! - `ringlink-shm` (one spinning loop), with more than one connection: one thread
//!   per side visits its nonblocking streams in turn, as a busy-polling event loop
//!   does; an empty ring is `WouldBlock` without a system call.
//! - `ringlink-shm-tokio`: `AsyncShmStream` on a current-thread tokio runtime per
//!   side, one task per connection (a task whose ring is empty parks in the reactor,
//!   no spinning): one thread drives all connections, as in tokio's rows.
//! - `ringlink-shm-copy` (on request): as `ringlink-shm`, but through `Read`/`Write`
//!   and a buffer, the way socket code moves bytes.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use ringlink_unix::shm::tokio::AsyncShmStream;
use ringlink_unix::shm::{ShmHandshake, ShmOptions, ShmStream};
use ringlink_unix::{ConnectOptions, ErrorKind, ListenerOptions};

use super::async_driven::{AsyncDriven, AsyncSockets};
use super::ringlink_uds::{bind, to_io};
use crate::names::{Driver, Name};
use crate::readiness::{self, TICK, TryIo};
use crate::shm_relay::ShmRelay;
use crate::threaded;
use crate::workload::{BenchError, ClientOutcome, ClientPlan, EchoPlan, Limit, Transport};

/// Descriptors of one side of a connection: its socket, which carries the wake-ups.
const FDS_PER_SIDE: u64 = 1;

/// Why a run of `connections` shared-memory connections cannot start here. Each
/// side has a process of its own, unless `--processes one` put both in this one.
fn descriptors_short(connections: usize) -> Option<String> {
    let sides = if crate::plan::one_process() && connections < crate::CHILD_CONNECTIONS {
        2
    } else {
        1
    };
    let fds = FDS_PER_SIDE * sides * connections as u64 + 64;
    match crate::machine::open_file_limit() {
        Some(limit) if fds > limit => {
            Some(format!("needs ~{fds} descriptors, the limit is {limit}"))
        }
        _ => None,
    }
}

/// ringlink shared memory on tokio.
pub struct RinglinkShmAsync;

impl AsyncSockets for RinglinkShmAsync {
    const NAME: Name = Name::RinglinkShmTokio;
    type Stream = AsyncShmStream;
    type Listener = ringlink_unix::tokio::Listener;

    fn unsupported(connections: usize) -> Option<String> {
        descriptors_short(connections)
    }

    fn bind(addr: &Path) -> io::Result<Self::Listener> {
        ringlink_unix::tokio::Listener::bind(addr, ListenerOptions::new()).map_err(to_io)
    }

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream> {
        let stream = listener.accept().await.map_err(to_io)?;
        // The handshake waits for the client in the reactor, as the reads do.
        AsyncShmStream::offer(stream, &ShmOptions::new())
            .await
            .map_err(to_io)
    }

    async fn connect(addr: &Path) -> io::Result<Self::Stream> {
        let connect = ConnectOptions::new().timeout(Duration::from_secs(10));
        AsyncShmStream::connect(addr, connect, &ShmOptions::new())
            .await
            .map_err(to_io)
    }
}

/// A nonblocking `ShmStream` visited by a spinning loop: an empty or full ring is
/// `WouldBlock` at once, without a system call; each side echoes with `splice`.
struct Polled(ShmStream);

impl TryIo for Polled {
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(&mut self.0, buf)
    }
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn try_echo(&mut self) -> Option<io::Result<usize>> {
        let (rx, tx) = self.0.split();
        Some(rx.splice(tx).map_err(to_io))
    }
}

/// Connections up to which `ringlink-shm` runs a thread per connection.
const MOST_THREADS: usize = 50;
static TOKIO: AsyncDriven<RinglinkShmAsync> = AsyncDriven::new();

/// ringlink shared memory, blocking, a thread per connection; `COPY` relays
/// through `Read`/`Write` and a buffer instead of `splice`.
pub struct RinglinkShmThreads<const COPY: bool>;

impl<const COPY: bool> Transport for RinglinkShmThreads<COPY> {
    fn name(&self) -> Name {
        if COPY {
            Name::RinglinkShmCopy
        } else {
            Name::RinglinkShm
        }
    }

    fn models(&self) -> &'static [Driver] {
        if COPY {
            &[Driver::ThreadsCopy]
        } else {
            &[Driver::ThreadsSplice, Driver::TokioTasks, Driver::SpinLoop]
        }
    }

    /// `ringlink-shm` runs a thread per connection up to [`MOST_THREADS`]
    /// connections and tokio tasks beyond: past a few dozen threads per core the
    /// spinning threads only take turns, and one reactor per side does better.
    /// With more than one connection it also runs one spinning loop per side.
    fn drivers(&self, connections: usize) -> Vec<Driver> {
        let mut drivers = if !COPY && connections > MOST_THREADS {
            vec![Driver::TokioTasks]
        } else {
            vec![self.models()[0]]
        };
        if !COPY && connections > 1 {
            drivers.push(Driver::SpinLoop);
        }
        drivers
    }

    fn unsupported(&self, driver: Driver, connections: usize) -> Option<String> {
        descriptors_short(connections).or_else(|| match driver {
            Driver::TokioTasks => None,
            _ => threaded::threads_short(connections),
        })
    }

    fn serve(
        &self,
        addr: &Path,
        plan: EchoPlan,
        limit: Limit<'_>,
        ready: &mut dyn FnMut(),
    ) -> Result<(), BenchError> {
        if plan.model == Driver::TokioTasks {
            return TOKIO.serve(addr, plan, limit, ready);
        }
        let listener = bind(addr, false)?;
        let options = ShmOptions::new();
        ready();
        if plan.model == Driver::SpinLoop {
            let mut streams = Vec::with_capacity(plan.connections);
            while streams.len() < plan.connections {
                limit.check("accepting")?;
                match listener.accept_timeout(TICK) {
                    Ok(stream) => {
                        let mut shm = ShmHandshake::new(stream, &options)
                            .complete()
                            .map_err(|e| BenchError::Io("shared-memory handshake", to_io(e)))?;
                        shm.set_nonblocking(true);
                        streams.push(Polled(shm));
                    }
                    Err(e) if e.kind() == ErrorKind::TimedOut => {}
                    Err(e) => return Err(BenchError::Io("accept", to_io(e))),
                }
            }
            return readiness::spin_serve(streams, plan, limit);
        }
        threaded::serve(
            || match listener.accept_timeout(TICK) {
                Ok(stream) => {
                    let handshake = ShmHandshake::new(stream, &options);
                    Ok(Some(ShmRelay::new(None, Some(handshake), limit, COPY)))
                }
                Err(e) if e.kind() == ErrorKind::TimedOut => Ok(None),
                Err(e) => Err(BenchError::Io("accept", to_io(e))),
            },
            plan,
            limit,
        )
    }

    fn run_client(
        &self,
        addr: &Path,
        plan: ClientPlan,
        limit: Limit<'_>,
    ) -> Result<ClientOutcome, BenchError> {
        if plan.model == Driver::TokioTasks {
            return TOKIO.run_client(addr, plan, limit);
        }
        let options = ShmOptions::new();
        if plan.model == Driver::SpinLoop {
            let mut streams = Vec::with_capacity(plan.connections);
            for _ in 0..plan.connections {
                limit.check("connecting")?;
                let connect = ConnectOptions::new().timeout(limit.remaining());
                let mut shm = ShmStream::connect(addr, connect, &options)
                    .map_err(|e| BenchError::Io("shared-memory connect", to_io(e)))?;
                shm.set_nonblocking(true);
                streams.push(Polled(shm));
            }
            return readiness::spin_client(streams, plan, limit);
        }
        threaded::run_client(
            || {
                limit.check("connecting")?;
                let connect = ConnectOptions::new().timeout(limit.remaining());
                let shm = ShmStream::connect(addr, connect, &options)
                    .map_err(|e| BenchError::Io("shared-memory connect", to_io(e)))?;
                Ok(ShmRelay::new(Some(shm), None, limit, COPY))
            },
            plan,
            limit,
        )
    }
}
