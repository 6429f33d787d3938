//! The floor: `std::os::unix::net::UnixStream`, blocking, one thread per connection on
//! both sides, the way a std user writes it (`std`), and the same sockets in
//! nonblocking mode driven by one `epoll` thread per side (`std-epoll`): the like of
//! ringlink-uds under each of those drivers. Where the process may not start a thread
//! per connection, `std`'s row is not run and says why.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use crate::names::{Driver, Name};
use crate::readiness;
use crate::threaded::{self, Copying};
use crate::workload::{
    BenchError, ClientOutcome, ClientPlan, EchoPlan, IoContext, Limit, Transport, connect_retrying,
};

/// std's `UnixStream`.
pub struct StdUds;

/// std's `UnixStream`, nonblocking, driven by one `epoll` thread per side: what a
/// thin adapter over `epoll` costs, without any adapter.
pub struct StdEpoll;

impl Transport for StdUds {
    fn name(&self) -> Name {
        Name::Std
    }

    fn models(&self) -> &'static [Driver] {
        &[Driver::Threads]
    }

    fn unsupported(&self, _driver: Driver, connections: usize) -> Option<String> {
        threaded::thread_per_connection_short(connections, "std-epoll is std's row")
    }

    fn serve(
        &self,
        addr: &Path,
        plan: EchoPlan,
        limit: Limit<'_>,
        ready: &mut dyn FnMut(),
    ) -> Result<(), BenchError> {
        let listener = UnixListener::bind(addr).during("bind")?;
        listener
            .set_nonblocking(true)
            .during("nonblocking listener")?;
        ready();
        if plan.model == Driver::Epoll {
            return readiness::serve(listener, plan, limit);
        }
        threaded::serve(
            || match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).during("blocking stream")?;
                    with_timeouts(stream, limit).map(|s| Some(Copying(s)))
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    wait_readable(&listener, limit);
                    Ok(None)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(None),
                Err(e) => Err(BenchError::Io("accept", e)),
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
        if plan.model == Driver::Epoll {
            let mut streams = Vec::with_capacity(plan.connections);
            for _ in 0..plan.connections {
                let stream = connect_retrying(limit, || UnixStream::connect(addr))?;
                stream.set_nonblocking(true).during("nonblocking stream")?;
                streams.push(stream);
            }
            return readiness::run_client(streams, plan, limit);
        }
        threaded::run_client(
            || with_timeouts(UnixStream::connect(addr).during("connect")?, limit).map(Copying),
            plan,
            limit,
        )
    }
}

impl Transport for StdEpoll {
    fn name(&self) -> Name {
        Name::StdEpoll
    }

    fn models(&self) -> &'static [Driver] {
        &[Driver::Epoll]
    }

    fn serve(
        &self,
        addr: &Path,
        plan: EchoPlan,
        limit: Limit<'_>,
        ready: &mut dyn FnMut(),
    ) -> Result<(), BenchError> {
        let plan = EchoPlan {
            model: Driver::Epoll,
            ..plan
        };
        StdUds.serve(addr, plan, limit, ready)
    }

    fn run_client(
        &self,
        addr: &Path,
        plan: ClientPlan,
        limit: Limit<'_>,
    ) -> Result<ClientOutcome, BenchError> {
        let plan = ClientPlan {
            model: Driver::Epoll,
            ..plan
        };
        StdUds.run_client(addr, plan, limit)
    }
}

/// Read and write timeouts at the end of the limit, so no thread blocks forever.
fn with_timeouts(stream: UnixStream, limit: Limit<'_>) -> Result<UnixStream, BenchError> {
    let left = Some(limit.remaining().max(Duration::from_millis(1)));
    stream.set_read_timeout(left).during("read timeout")?;
    stream.set_write_timeout(left).during("write timeout")?;
    Ok(stream)
}

/// Waits up to 50 ms for a connection on the nonblocking listener.
fn wait_readable(listener: &UnixListener, limit: Limit<'_>) {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = limit.remaining().min(Duration::from_millis(50)).as_millis() as libc::c_int;
    // SAFETY: `pfd` is one valid `pollfd`; a failed poll only means we look again.
    unsafe { libc::poll(&mut pfd, 1, ms) };
}
