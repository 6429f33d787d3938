//! ringlink's named-pipe transport (`ringlink_windows::{Listener, Stream}`) under each
//! driver its peers use, one row each:
//! - threads: blocking `Stream`s with read and write timeouts, a thread per connection
//!   on each side (std's way);
//! - tokio tasks: `ringlink_windows::tokio`'s `Listener` and `Stream`, a task per
//!   connection on a current-thread runtime per side (tokio's and interprocess's way).

use std::io;
use std::path::Path;
use std::time::Duration;

use ringlink_windows::{ConnectOptions, ErrorKind, Listener, ListenerOptions, Stream};

use super::async_driven::{AsyncDriven, AsyncSockets};
use super::pipe_name;
use crate::names::{Driver, Name};
use crate::threaded::{self, Copying};
use crate::workload::{BenchError, ClientOutcome, ClientPlan, EchoPlan, Limit, Transport};

/// How long a blocking accept waits before the limit is looked at again.
pub const TICK: Duration = Duration::from_millis(50);

/// ringlink over named pipes.
pub struct RinglinkPipe;

/// ringlink over named pipes on tokio.
pub struct RinglinkPipeAsync;

static TOKIO: AsyncDriven<RinglinkPipeAsync> = AsyncDriven::new();

/// `WouldBlock` without the allocation a wrapped error would cost.
pub fn to_io(e: ringlink_windows::Error) -> io::Error {
    if e.kind() == ErrorKind::WouldBlock {
        io::ErrorKind::WouldBlock.into()
    } else {
        e.into()
    }
}

impl AsyncSockets for RinglinkPipeAsync {
    const NAME: Name = Name::RinglinkPipe;
    type Stream = ringlink_windows::tokio::Stream;
    type Listener = ringlink_windows::tokio::Listener;

    fn bind(addr: &Path) -> io::Result<Self::Listener> {
        ringlink_windows::tokio::Listener::bind(pipe_name(addr), ListenerOptions::new())
            .map_err(to_io)
    }

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream> {
        listener.accept().await.map_err(to_io)
    }

    async fn connect(addr: &Path) -> io::Result<Self::Stream> {
        let options = ConnectOptions::new().timeout(Duration::from_secs(10));
        ringlink_windows::tokio::Stream::connect(pipe_name(addr), options)
            .await
            .map_err(to_io)
    }
}

/// A blocking stream with read and write timeouts at the end of the limit.
fn blocking(stream: Stream, limit: Limit<'_>) -> Result<Copying<Stream>, BenchError> {
    let left = Some(limit.remaining().max(Duration::from_millis(1)));
    let set = |r: Result<(), ringlink_windows::Error>| {
        r.map_err(|e| BenchError::Io("timeouts", to_io(e)))
    };
    set(stream.set_nonblocking(false))?;
    set(stream.set_read_timeout(left))?;
    set(stream.set_write_timeout(left))?;
    Ok(Copying(stream))
}

/// Connects to `addr` with a deadline inside the limit.
fn connect(addr: &Path, limit: Limit<'_>) -> Result<Stream, BenchError> {
    limit.check("connecting")?;
    Stream::connect(
        pipe_name(addr),
        ConnectOptions::new().timeout(limit.remaining()),
    )
    .map_err(|e| BenchError::Io("connect", to_io(e)))
}

impl Transport for RinglinkPipe {
    fn name(&self) -> Name {
        Name::RinglinkPipe
    }

    fn models(&self) -> &'static [Driver] {
        &[Driver::Threads, Driver::TokioTasks]
    }

    fn drivers(&self, _connections: usize) -> Vec<Driver> {
        self.models().to_vec()
    }

    fn unsupported(&self, driver: Driver, connections: usize) -> Option<String> {
        match driver {
            Driver::Threads => threaded::threads_short(connections),
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
        if plan.model == Driver::TokioTasks {
            return TOKIO.serve(addr, plan, limit, ready);
        }
        let listener = Listener::bind(pipe_name(addr), ListenerOptions::new())
            .map_err(|e| BenchError::Io("bind", to_io(e)))?;
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

    fn run_client(
        &self,
        addr: &Path,
        plan: ClientPlan,
        limit: Limit<'_>,
    ) -> Result<ClientOutcome, BenchError> {
        if plan.model == Driver::TokioTasks {
            return TOKIO.run_client(addr, plan, limit);
        }
        threaded::run_client(|| blocking(connect(addr, limit)?, limit), plan, limit)
    }
}
