//! ringlink's shared memory on Windows (`ringlink_windows::shm`): two core rings in an
//! unnamed pagefile section per connection, negotiated over the connection's named
//! pipe, which stays open beside the mapping (a side that parks waits on its event and
//! on the peer's process).
//!
//! - `ringlink-shm`: the blocking `ShmStream`, one thread per connection on each side
//!   (as std's and ringlink-pipe's thread rows), spinning briefly before it parks.
//!   Each side sends back what it receives with `ShmReadHalf::splice`: one copy, ring
//!   to ring, where a pipe needs two (read into a buffer, write the buffer).
//! - `ringlink-shm-tokio`: `AsyncShmStream` on a current-thread tokio runtime per side,
//!   one task per connection (a task whose ring is empty parks on a registered wait,
//!   no spinning). The Windows handshake is blocking, so each connection's runs on
//!   tokio's blocking pool (`spawn_blocking`), as the crate's documentation says to;
//!   the streams then move to the tasks.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ringlink_windows::shm::tokio::AsyncShmStream;
use ringlink_windows::shm::{ShmHandshake, ShmOptions, ShmStream};
use ringlink_windows::{ConnectOptions, ErrorKind, Listener, ListenerOptions};

use super::async_driven::{AsyncDriven, AsyncSockets};
use super::pipe_name;
use super::ringlink_pipe::{TICK, to_io};
use crate::names::{Driver, Name};
use crate::shm_relay::ShmRelay;
use crate::threaded;
use crate::workload::{BenchError, ClientOutcome, ClientPlan, EchoPlan, Limit, Transport};

/// Longest a tokio-side accept or connect (with its handshake) may take.
const SETUP: Duration = Duration::from_secs(10);

/// ringlink shared memory, blocking, a thread per connection.
pub struct RinglinkShm;

/// ringlink shared memory on tokio.
pub struct RinglinkShmAsync;

/// A blocking accept (and the handshake after it) on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| io::Error::other("a shared-memory handshake panicked"))?
}

impl AsyncSockets for RinglinkShmAsync {
    const NAME: Name = Name::RinglinkShmTokio;
    type Stream = AsyncShmStream;
    type Listener = Arc<Listener>;

    fn bind(addr: &Path) -> io::Result<Self::Listener> {
        Listener::bind(pipe_name(addr), ListenerOptions::new())
            .map(Arc::new)
            .map_err(to_io)
    }

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream> {
        let listener = listener.clone();
        let shm = blocking(move || {
            let pipe = listener.accept_timeout(SETUP).map_err(to_io)?;
            ShmStream::offer(pipe, &ShmOptions::new()).map_err(to_io)
        })
        .await?;
        AsyncShmStream::from_std(shm)
    }

    async fn connect(addr: &Path) -> io::Result<Self::Stream> {
        let name = pipe_name(addr);
        let shm = blocking(move || {
            let connect = ConnectOptions::new().timeout(SETUP);
            ShmStream::connect(name, connect, &ShmOptions::new()).map_err(to_io)
        })
        .await?;
        AsyncShmStream::from_std(shm)
    }
}

static TOKIO: AsyncDriven<RinglinkShmAsync> = AsyncDriven::new();

impl Transport for RinglinkShm {
    fn name(&self) -> Name {
        Name::RinglinkShm
    }

    fn models(&self) -> &'static [Driver] {
        &[Driver::ThreadsSplice]
    }

    fn drivers(&self, _connections: usize) -> Vec<Driver> {
        self.models().to_vec()
    }

    fn unsupported(&self, _driver: Driver, connections: usize) -> Option<String> {
        threaded::threads_short(connections)
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
        let options = ShmOptions::new();
        ready();
        threaded::serve(
            || match listener.accept_timeout(TICK) {
                Ok(pipe) => Ok(Some(ShmRelay::new(
                    None,
                    Some(ShmHandshake::new(pipe, &options)),
                    limit,
                    false,
                ))),
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
        threaded::run_client(
            || {
                limit.check("connecting")?;
                let connect = ConnectOptions::new().timeout(limit.remaining());
                let shm = ShmStream::connect(pipe_name(addr), connect, &options)
                    .map_err(|e| BenchError::Io("shared-memory connect", to_io(e)))?;
                Ok(ShmRelay::new(Some(shm), None, limit, false))
            },
            plan,
            limit,
        )
    }
}
