//! The floor: `std::os::unix::net::UnixStream`, blocking, one thread per connection on
//! both sides, the way a std user writes it. Where the process may not start that many
//! threads (the harness checks the thread budget before a run), the same sockets in
//! nonblocking mode are driven by one `epoll` thread per side, and the table says so.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::readiness;
use crate::workload::{
    BenchError, ClientOutcome, ClientPlan, EchoPlan, IoContext, Limit, Stop, Transport,
    connect_retrying, is_disconnect,
};

/// std's `UnixStream`.
pub struct StdUds;

/// std's `UnixStream`, nonblocking, always driven by one `epoll` thread per side: what a
/// thin adapter over `epoll` costs, without any adapter (opt-in with `--transports`).
pub struct StdEpoll;

const THREADS: &str = "threads";
const EPOLL: &str = "epoll";
/// Stack of each connection thread: their loops need little.
const STACK: usize = 64 * 1024;

impl Transport for StdUds {
    fn name(&self) -> &'static str {
        "std"
    }

    fn models(&self) -> &'static [&'static str] {
        &[THREADS, EPOLL]
    }

    fn choose_model(&self, connections: usize) -> &'static str {
        // Client and server threads, wherever the server runs, plus headroom.
        let needed = 2 * connections as u64 + 512;
        match crate::machine::thread_budget() {
            Some(budget) if budget < needed => EPOLL,
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
        thread::scope(|scope| {
            let mut handles = Vec::with_capacity(plan.connections);
            let mut result = Ok(());
            while handles.len() < plan.connections {
                if let Err(e) = limit.check("accepting") {
                    result = Err(e);
                    break;
                }
                match listener.accept() {
                    Ok((stream, _)) => {
                        let spawned = thread::Builder::new()
                            .stack_size(STACK)
                            .spawn_scoped(scope, move || echo(stream, plan.chunk, limit));
                        match spawned {
                            Ok(h) => handles.push(h),
                            Err(e) => {
                                result = Err(BenchError::Io("spawning a server thread", e));
                                break;
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        wait_readable(&listener, limit)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        result = Err(BenchError::Io("accept", e));
                        break;
                    }
                }
            }
            for h in handles {
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err(BenchError::Setup("a server thread panicked".into())));
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })
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
        threaded_client(addr, plan, limit)
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

/// Echoes on one blocking connection until the client closes it.
fn echo(mut stream: UnixStream, chunk: usize, limit: Limit<'_>) -> Result<(), BenchError> {
    stream
        .set_read_timeout(Some(limit.remaining().max(Duration::from_millis(1))))
        .during("read timeout")?;
    stream
        .set_write_timeout(Some(limit.remaining().max(Duration::from_millis(1))))
        .during("write timeout")?;
    let mut buf = vec![0_u8; chunk + 1];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => match stream.write_all(&buf[..n]) {
                Ok(()) => {}
                Err(e) if is_disconnect(&e) => return Ok(()),
                Err(e) => return Err(BenchError::Io("server write", e)),
            },
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if is_disconnect(&e) => return Ok(()),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return Err(BenchError::TimedOut("echoing"));
            }
            Err(e) => return Err(BenchError::Io("server read", e)),
        }
    }
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

/// Lets every client thread connect before the clock starts.
struct StartGate {
    ready: Mutex<usize>,
    arrived: Condvar,
    go: Mutex<Option<Instant>>,
    opened: Condvar,
}

/// A counter alone on its cache line, written by one thread.
#[repr(align(128))]
struct Counter(AtomicU64);

fn threaded_client(
    addr: &Path,
    plan: ClientPlan,
    limit: Limit<'_>,
) -> Result<ClientOutcome, BenchError> {
    let gate = StartGate {
        ready: Mutex::new(0),
        arrived: Condvar::new(),
        go: Mutex::new(None),
        opened: Condvar::new(),
    };
    let counters: Vec<Counter> = (0..plan.connections)
        .map(|_| Counter(AtomicU64::new(0)))
        .collect();
    let stop = AtomicBool::new(false);
    let target = match plan.stop {
        Stop::RoundTrips(n) => n * plan.chunk as u64,
        Stop::After(_) => u64::MAX,
    };
    thread::scope(|scope| {
        let mut handles = Vec::with_capacity(plan.connections);
        let mut result = Ok(());
        for counter in &counters {
            let (gate, stop) = (&gate, &stop);
            let spawned = thread::Builder::new()
                .stack_size(STACK)
                .spawn_scoped(scope, move || {
                    let stream = UnixStream::connect(addr).during("connect");
                    *gate.ready.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                    gate.arrived.notify_one();
                    let mut stream = stream?;
                    let start = {
                        let mut go = gate.go.lock().unwrap_or_else(|p| p.into_inner());
                        loop {
                            if let Some(start) = *go {
                                break start;
                            }
                            limit.check("waiting for the start")?;
                            go = gate
                                .opened
                                .wait_timeout(go, Duration::from_millis(50))
                                .unwrap_or_else(|p| p.into_inner())
                                .0;
                        }
                    };
                    exchange(&mut stream, plan.chunk, target, &counter.0, stop, limit)
                        .map(|()| start.elapsed())
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    result = Err(BenchError::Io("spawning a client thread", e));
                    break;
                }
            }
        }
        // Everyone connected (or failed to): start the clock.
        {
            let mut ready = gate.ready.lock().unwrap_or_else(|p| p.into_inner());
            while *ready < handles.len() {
                if let Err(e) = limit.check("connecting") {
                    result = result.and(Err(e));
                    break;
                }
                ready = gate
                    .arrived
                    .wait_timeout(ready, Duration::from_millis(50))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        let started = Instant::now();
        *gate.go.lock().unwrap_or_else(|p| p.into_inner()) = Some(started);
        gate.opened.notify_all();
        let mut elapsed = Duration::ZERO;
        let mut received = 0;
        if let Stop::After(d) = plan.stop {
            thread::sleep(d);
            elapsed = started.elapsed();
            received = counters.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
            stop.store(true, Ordering::Relaxed);
        }
        for h in handles {
            match h.join() {
                Ok(Ok(finished)) => elapsed = elapsed.max(finished),
                Ok(Err(e)) => result = result.and(Err(e)),
                Err(_) => {
                    result = result.and(Err(BenchError::Setup("a client thread panicked".into())))
                }
            }
        }
        if let Stop::RoundTrips(_) = plan.stop {
            received = counters.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
        }
        result.map(|()| ClientOutcome { elapsed, received })
    })
}

/// One client connection: write the chunk, write back what comes, until `target`
/// bytes have come back or `stop` is set.
fn exchange(
    stream: &mut UnixStream,
    chunk: usize,
    target: u64,
    counter: &AtomicU64,
    stop: &AtomicBool,
    limit: Limit<'_>,
) -> Result<(), BenchError> {
    stream
        .set_read_timeout(Some(limit.remaining().max(Duration::from_millis(1))))
        .during("read timeout")?;
    stream
        .set_write_timeout(Some(limit.remaining().max(Duration::from_millis(1))))
        .during("write timeout")?;
    let outgoing = vec![0x5a_u8; chunk];
    let mut buf = vec![0_u8; chunk + 1];
    stream.write_all(&outgoing).during("client write")?;
    let mut received = 0_u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => {
                return Err(BenchError::Protocol(
                    "server closed a connection early".into(),
                ));
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return Err(BenchError::TimedOut("exchanging"));
            }
            Err(e) => return Err(BenchError::Io("client read", e)),
        };
        received += n as u64;
        counter.store(received, Ordering::Relaxed);
        if received >= target {
            return if received == target {
                Ok(())
            } else {
                Err(BenchError::Protocol(
                    "server echoed more than it got".into(),
                ))
            };
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        stream.write_all(&outgoing[..n]).during("client write")?;
    }
}
