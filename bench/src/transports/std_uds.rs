//! The floor: `std::os::unix::net::UnixStream`, blocking, one thread per connection on
//! both sides, the way a std user writes it. Where the process may not start that many
//! threads (the harness checks the thread budget before a run), the same sockets in
//! nonblocking mode are driven by one `epoll` thread per side, and the table says so.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use crate::readiness;
use crate::threaded::{self, Copying};
use crate::workload::{
    BenchError, ClientOutcome, ClientPlan, EchoPlan, IoContext, Limit, Transport, connect_retrying,
};

/// std's `UnixStream`.
pub struct StdUds;

/// std's `UnixStream`, nonblocking, always driven by one `epoll` thread per side: what a
/// thin adapter over `epoll` costs, without any adapter (opt-in with `--transports`).
pub struct StdEpoll;

const THREADS: &str = "threads";
const EPOLL: &str = "epoll";

impl Transport for StdUds {
    fn name(&self) -> &'static str {
        "std"
    }

    fn models(&self) -> &'static [&'static str] {
        &[THREADS, EPOLL]
    }

    fn choose_model(&self, connections: usize) -> &'static str {
        // Client and server threads, wherever the server runs.
        match crate::machine::thread_budget() {
            Some(budget) if budget < threaded::threads_needed(connections) => EPOLL,
            _ => THREADS,
        }
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
        if plan.model == EPOLL {
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
        if plan.model == EPOLL {
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
    fn name(&self) -> &'static str {
        "std-epoll"
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
        let plan = EchoPlan {
            model: EPOLL,
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
            model: EPOLL,
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
