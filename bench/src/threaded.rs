//! One thread per connection on each side, with blocking reads and writes: how std's
//! `UnixStream` (a `File` over a named pipe on Windows) and ringlink's shared-memory
//! `ShmStream` are used when every connection may have its own thread. Streams must come
//! with read and write timeouts inside the run's limit, so no thread can block forever
//! (std's blocking pipes have none: their transport says what bounds them instead).
//!
//! A connection is driven through [`Relay`]: wait for bytes and send them straight
//! back. [`Copying`] does it as every socket user does (read into a buffer, write the
//! buffer); a transport with a better way (shared memory's ring-to-ring `splice`)
//! implements it itself.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::workload::{
    BenchError, ClientOutcome, ClientPlan, EchoPlan, IoContext, Limit, Stop, is_disconnect,
};

/// Stack of each connection thread: their loops need little.
const STACK: usize = 64 * 1024;

/// Threads the model needs for `connections` on both sides, with headroom.
pub fn threads_needed(connections: usize) -> u64 {
    2 * connections as u64 + 512
}

/// Why `connections` connections cannot each have a thread on both sides here
/// (the cgroup's, the kernel's or the user's thread limit); `None` when they can.
pub fn threads_short(connections: usize) -> Option<String> {
    let threads = threads_needed(connections);
    match crate::machine::thread_budget() {
        Some(budget) if budget < threads => {
            Some(format!("needs ~{threads} threads, {budget} are left"))
        }
        _ => None,
    }
}

/// Why a thread per connection on each side is not run with `connections`: at the
/// child-process scale (10,000), or when the threads are short. Seen on a 2-vCPU VM: a
/// listener behind one accepting thread that spawns a thread per connection (std's and
/// ringlink-uds's alike) left 10,000 blocking clients past the row's limit in some runs,
/// which failed the whole run. `instead` names the rows that serve this size.
#[cfg(unix)]
pub fn thread_per_connection_short(connections: usize, instead: &str) -> Option<String> {
    if connections >= crate::CHILD_CONNECTIONS {
        return Some(format!(
            "a thread per connection does not connect 10,000 clients within the row limit here; {instead} at this size"
        ));
    }
    threads_short(connections)
}

/// How one blocking connection moves the workload's bytes.
pub trait Relay {
    /// Sends all of `data`.
    fn send(&mut self, data: &[u8]) -> io::Result<()>;
    /// Waits for bytes and sends them back as they are; returns how many
    /// (`0`: the peer closed the stream). `buf` holds any chunk of the run.
    fn relay(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

/// [`Relay`] through a buffer: read what came, write it back.
pub struct Copying<S>(pub S);

impl<S: Read + Write + Send> Relay for Copying<S> {
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)
    }

    fn relay(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        self.0.write_all(&buf[..n])?;
        Ok(n)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut
}

/// Accepts `plan.connections` connections with `accept` (which returns `Ok(None)` when
/// none came within a short wait) and echoes on each in its own thread until its
/// client closes it.
pub fn serve<S: Relay + Send>(
    accept: impl FnMut() -> Result<Option<S>, BenchError>,
    plan: EchoPlan,
    limit: Limit<'_>,
) -> Result<(), BenchError> {
    serve_opening(STACK, accept, Ok, plan, limit)
}

/// As [`serve`], for connections that must be opened in their own thread (their
/// ports may not move between threads): `accept` hands out what `open` turns into a
/// connection inside the thread, which has a stack of `stack` bytes.
pub fn serve_opening<P: Send, S: Relay>(
    stack: usize,
    mut accept: impl FnMut() -> Result<Option<P>, BenchError>,
    open: impl Fn(P) -> Result<S, BenchError> + Sync,
    plan: EchoPlan,
    limit: Limit<'_>,
) -> Result<(), BenchError> {
    thread::scope(|scope| {
        let mut handles = Vec::with_capacity(plan.connections);
        let mut result = Ok(());
        while handles.len() < plan.connections {
            let stream = match limit.check("accepting").and_then(|()| accept()) {
                Ok(Some(stream)) => stream,
                Ok(None) => continue,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let spawned = thread::Builder::new()
                .stack_size(stack)
                .spawn_scoped(scope, {
                    let open = &open;
                    move || echo(open(stream)?, plan.chunk)
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    result = Err(BenchError::Io("spawning a server thread", e));
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

/// Echoes on one blocking connection until the client closes it.
fn echo<S: Relay>(mut stream: S, chunk: usize) -> Result<(), BenchError> {
    let mut buf = vec![0_u8; chunk + 1];
    loop {
        match stream.relay(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if is_disconnect(&e) => return Ok(()),
            Err(e) if is_timeout(&e) => return Err(BenchError::TimedOut("echoing")),
            Err(e) => return Err(BenchError::Io("server echo", e)),
        }
    }
}

/// Lets every client thread connect before the clock starts.
struct StartGate {
    ready: Mutex<usize>,
    arrived: Condvar,
    go: Mutex<Option<Instant>>,
    opened: Condvar,
}

impl StartGate {
    /// A client thread has connected (or failed to).
    fn arrive(&self) {
        *self.ready.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.arrived.notify_one();
    }

    /// Waits for the start; returns its instant.
    fn wait_for_start(&self, limit: Limit<'_>) -> Result<Instant, BenchError> {
        let mut go = self.go.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(start) = *go {
                return Ok(start);
            }
            limit.check("waiting for the start")?;
            go = self
                .opened
                .wait_timeout(go, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until `threads` have arrived, then starts the clock for all of them.
    fn open(&self, threads: usize, limit: Limit<'_>) -> Result<Instant, BenchError> {
        let mut waited = Ok(());
        {
            let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
            while *ready < threads {
                if let Err(e) = limit.check("connecting") {
                    waited = Err(e);
                    break;
                }
                ready = self
                    .arrived
                    .wait_timeout(ready, Duration::from_millis(50))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        // Open the gate even after a failure, so every thread ends.
        let started = Instant::now();
        *self.go.lock().unwrap_or_else(|p| p.into_inner()) = Some(started);
        self.opened.notify_all();
        waited.map(|()| started)
    }
}

/// A counter alone on its cache line, written by one thread.
#[repr(align(128))]
struct Counter(AtomicU64);

/// Connects `plan.connections` streams with `connect`, one thread each, and times the
/// exchange once all are connected.
pub fn run_client<S: Relay>(
    connect: impl Fn() -> Result<S, BenchError> + Sync,
    plan: ClientPlan,
    limit: Limit<'_>,
) -> Result<ClientOutcome, BenchError> {
    run_client_with_stack(STACK, connect, plan, limit)
}

/// As [`run_client`], with `stack` bytes of stack for each connection's thread.
pub fn run_client_with_stack<S: Relay>(
    stack: usize,
    connect: impl Fn() -> Result<S, BenchError> + Sync,
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
            let (gate, stop, connect) = (&gate, &stop, &connect);
            let spawned = thread::Builder::new()
                .stack_size(stack)
                .spawn_scoped(scope, move || {
                    let stream = connect();
                    gate.arrive();
                    let mut stream = stream?;
                    let start = gate.wait_for_start(limit)?;
                    exchange(&mut stream, plan.chunk, target, &counter.0, stop)
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
        let started = gate.open(handles.len(), limit);
        let mut elapsed = Duration::ZERO;
        let mut received = 0;
        match (started, plan.stop) {
            (Ok(started), Stop::After(d)) => {
                thread::sleep(d);
                elapsed = started.elapsed();
                received = counters.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
                stop.store(true, Ordering::Relaxed);
            }
            (Ok(_), Stop::RoundTrips(_)) => {}
            (Err(e), _) => {
                stop.store(true, Ordering::Relaxed);
                result = result.and(Err(e));
            }
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

/// One client connection: send the chunk, then send back what comes, until
/// `target` bytes have come back or `stop` is set. (What comes back last is sent
/// once more; the server echoes it into a connection about to close.)
fn exchange<S: Relay>(
    stream: &mut S,
    chunk: usize,
    target: u64,
    counter: &AtomicU64,
    stop: &AtomicBool,
) -> Result<(), BenchError> {
    let mut buf = vec![0_u8; chunk + 1];
    stream.send(&vec![0x5a_u8; chunk]).during("client write")?;
    let mut received = 0_u64;
    loop {
        let n = match stream.relay(&mut buf) {
            Ok(0) => {
                return Err(BenchError::Protocol(
                    "server closed a connection early".into(),
                ));
            }
            Ok(n) => n,
            Err(e) if is_timeout(&e) => return Err(BenchError::TimedOut("exchanging")),
            Err(e) => return Err(BenchError::Io("client exchange", e)),
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
    }
}
