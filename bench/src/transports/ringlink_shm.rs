//! ringlink's shared-memory transport (`ringlink_unix::shm::ShmStream`, Linux): two
//! core rings in a sealed `memfd` mapping per connection, spin-then-park wake-ups on
//! `eventfd`s, the socket kept only to notice a dead peer. Its reads and writes are
//! blocking (there is no descriptor that becomes readable when a ring fills), so it
//! runs one thread per connection on each side, like std. Each side of a connection
//! holds five descriptors, which bounds the connection counts it can run.

use std::path::Path;
use std::time::Duration;

use ringlink_unix::shm::{ShmOptions, ShmStream};
use ringlink_unix::{ConnectOptions, ErrorKind};

use super::ringlink_uds::{bind, to_io};
use crate::readiness::TICK;
use crate::threaded;
use crate::workload::{BenchError, ClientOutcome, ClientPlan, EchoPlan, Limit, Transport};

/// ringlink shared memory.
pub struct RinglinkShm;

const THREADS: &str = "threads";
/// Descriptors of one connection, both sides in one process (socket and four eventfds each).
const FDS_PER_CONNECTION: u64 = 10;

fn with_timeouts(mut stream: ShmStream, limit: Limit<'_>) -> ShmStream {
    let left = Some(limit.remaining().max(Duration::from_millis(1)));
    stream.set_read_timeout(left);
    stream.set_write_timeout(left);
    stream
}

impl Transport for RinglinkShm {
    fn name(&self) -> &'static str {
        "ringlink-shm"
    }

    fn models(&self) -> &'static [&'static str] {
        &[THREADS]
    }

    fn unsupported(&self, connections: usize) -> Option<String> {
        let fds = FDS_PER_CONNECTION * connections as u64 + 64;
        if let Some(limit) = crate::machine::open_file_limit()
            && fds > limit
        {
            return Some(format!("needs ~{fds} descriptors, the limit is {limit}"));
        }
        let threads = threaded::threads_needed(connections);
        match crate::machine::thread_budget() {
            Some(budget) if budget < threads => {
                Some(format!("needs ~{threads} threads, {budget} are left"))
            }
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
        let listener = bind(addr, false)?;
        let options = ShmOptions::new();
        ready();
        threaded::serve(
            || match listener.accept_timeout(TICK) {
                Ok(stream) => {
                    let shm = ShmStream::offer(stream, &options)
                        .map_err(|e| BenchError::Io("shared-memory offer", e))?;
                    Ok(Some(with_timeouts(shm, limit)))
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
        let options = ShmOptions::new();
        threaded::run_client(
            || {
                limit.check("connecting")?;
                let connect = ConnectOptions::new().timeout(limit.remaining());
                let shm = ShmStream::connect(addr, connect, &options)
                    .map_err(|e| BenchError::Io("shared-memory connect", to_io(e)))?;
                Ok(with_timeouts(shm, limit))
            },
            plan,
            limit,
        )
    }
}
