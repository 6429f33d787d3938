//! One thread driving many nonblocking connections with `epoll` (through mio), as a
//! `QLocalSocket` event loop does: the echo server and the timed client used by every
//! transport that offers nonblocking `try_read`/`try_write` on a file descriptor.
//!
//! Readiness is edge-triggered, so a side must drain a socket before it waits again.
//! Sockets are registered for reading only, and for writing only while a write is
//! blocked: a Unix socket signals "writable" each time its peer reads, and waking up
//! for that on every round trip would double the wake-ups of a ping-pong.
//! Every read buffer holds `chunk + 1` bytes while at most `chunk` bytes are ever in
//! flight per connection: a read that returns fewer bytes than the buffer holds has
//! emptied the socket, and no second read (to see `EAGAIN`) is needed. Tokio's
//! `poll_read` uses the same rule.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::workload::{
    BenchError, ClientOutcome, ClientPlan, EchoPlan, IoContext, Limit, Stop, is_disconnect,
};

/// A connected stream with nonblocking reads and writes (`WouldBlock` when nothing moves).
pub trait TryIo {
    /// Reads what is there; `Ok(0)` at end of stream.
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes what fits.
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Sends back what has arrived without a buffer in between (shared memory's
    /// ring-to-ring splice), if the stream can: `Ok(0)` at end of stream.
    fn try_echo(&mut self) -> Option<io::Result<usize>> {
        None
    }
}

/// A [`TryIo`] stream with a descriptor that epoll can watch.
pub trait NonblockingStream: TryIo + AsRawFd {}

impl<S: TryIo + AsRawFd> NonblockingStream for S {}

/// A listening socket with a nonblocking accept.
pub trait NonblockingListener: AsRawFd {
    /// What `try_accept` yields.
    type Stream: NonblockingStream;
    /// Accepts a pending connection (already nonblocking) or fails with `WouldBlock`.
    fn try_accept(&mut self) -> io::Result<Self::Stream>;
}

pub(crate) const LISTENER: Token = Token(usize::MAX);
/// Longest single wait, so deadlines and cancellation are noticed.
pub(crate) const TICK: Duration = Duration::from_millis(50);

pub(crate) fn register(
    poll: &Poll,
    fd: RawFd,
    token: Token,
    interest: Interest,
) -> Result<(), BenchError> {
    poll.registry()
        .register(&mut SourceFd(&fd), token, interest)
        .during("registering with epoll")
}

/// Adds or drops write interest when `blocked` differs from what is registered.
fn watch_writes(
    poll: &Poll,
    fd: RawFd,
    token: Token,
    blocked: bool,
    watching: &mut bool,
) -> Result<(), BenchError> {
    if blocked != *watching {
        let interest = if blocked {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        poll.registry()
            .reregister(&mut SourceFd(&fd), token, interest)
            .during("changing epoll interest")?;
        *watching = blocked;
    }
    Ok(())
}

/// What a connection needs after moving bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pumped {
    /// Waiting for input.
    Idle,
    /// A write would block: wait for the socket to become writable.
    WriteBlocked,
    /// The peer closed the connection.
    Closed,
}

/// One server-side connection: echoes `buf[start..end]` before reading again.
struct EchoConn<S> {
    stream: S,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    watching_writes: bool,
}

impl<S: TryIo> EchoConn<S> {
    fn new(stream: S, chunk: usize) -> EchoConn<S> {
        EchoConn {
            stream,
            buf: vec![0; chunk + 1].into_boxed_slice(),
            start: 0,
            end: 0,
            watching_writes: false,
        }
    }

    /// Moves bytes until the socket would block or the client has closed.
    fn pump(&mut self) -> Result<Pumped, BenchError> {
        let mut drained = false;
        loop {
            while self.start < self.end {
                match self.stream.try_write(&self.buf[self.start..self.end]) {
                    Ok(n) => self.start += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(Pumped::WriteBlocked);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if is_disconnect(&e) => return Ok(Pumped::Closed),
                    Err(e) => return Err(BenchError::Io("server write", e)),
                }
            }
            if drained {
                // A short read emptied the socket (see the module docs): wait for the next edge.
                return Ok(Pumped::Idle);
            }
            if let Some(echoed) = self.stream.try_echo() {
                return match echoed {
                    Ok(0) => Ok(Pumped::Closed),
                    Ok(_) => Ok(Pumped::Idle),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Pumped::Idle),
                    Err(e) if is_disconnect(&e) => Ok(Pumped::Closed),
                    Err(e) => Err(BenchError::Io("server echo", e)),
                };
            }
            match self.stream.try_read(&mut self.buf) {
                Ok(0) => return Ok(Pumped::Closed),
                Ok(n) => {
                    self.start = 0;
                    self.end = n;
                    drained = n < self.buf.len();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Pumped::Idle),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_disconnect(&e) => return Ok(Pumped::Closed),
                Err(e) => return Err(BenchError::Io("server read", e)),
            }
        }
    }
}

/// Accepts `plan.connections` connections on `listener` (already nonblocking) and
/// echoes on all of them from this thread until each has been closed by its client.
pub fn serve<L: NonblockingListener>(
    mut listener: L,
    plan: EchoPlan,
    limit: Limit<'_>,
) -> Result<(), BenchError> {
    let mut poll = Poll::new().during("creating epoll")?;
    let mut events = Events::with_capacity(1024);
    register(&poll, listener.as_raw_fd(), LISTENER, Interest::READABLE)?;
    let mut conns: Vec<Option<EchoConn<L::Stream>>> = Vec::with_capacity(plan.connections);
    let mut closed = 0;
    while closed < plan.connections {
        limit.check("serving")?;
        match poll.poll(&mut events, Some(TICK.min(limit.remaining()))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BenchError::Io("epoll wait", e)),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                while conns.len() < plan.connections {
                    match listener.try_accept() {
                        Ok(stream) => {
                            let token = Token(conns.len());
                            register(&poll, stream.as_raw_fd(), token, Interest::READABLE)?;
                            conns.push(Some(EchoConn::new(stream, plan.chunk)));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted || is_disconnect(&e) => {}
                        Err(e) => return Err(BenchError::Io("accept", e)),
                    }
                }
                continue;
            }
            let token = event.token();
            let slot = &mut conns[token.0];
            let Some(conn) = slot else { continue };
            match conn.pump()? {
                Pumped::Closed => {
                    // Dropping the stream closes it; epoll forgets a closed descriptor.
                    *slot = None;
                    closed += 1;
                }
                pumped => {
                    let blocked = pumped == Pumped::WriteBlocked;
                    let fd = conn.stream.as_raw_fd();
                    watch_writes(&poll, fd, token, blocked, &mut conn.watching_writes)?;
                }
            }
        }
    }
    Ok(())
}

/// One client-side connection: `owed` bytes still to write back.
struct ClientConn<S> {
    stream: S,
    owed: usize,
    received: u64,
    done: bool,
    watching_writes: bool,
}

/// Times `plan` over `streams` (connected, nonblocking) from this thread.
pub fn run_client<S: NonblockingStream>(
    mut streams: Vec<S>,
    plan: ClientPlan,
    limit: Limit<'_>,
) -> Result<ClientOutcome, BenchError> {
    let mut poll = Poll::new().during("creating epoll")?;
    let mut events = Events::with_capacity(1024);
    let mut conns = Vec::with_capacity(streams.len());
    for (i, stream) in streams.drain(..).enumerate() {
        register(&poll, stream.as_raw_fd(), Token(i), Interest::READABLE)?;
        conns.push(ClientConn::new(stream, plan.chunk));
    }
    let target = match plan.stop {
        Stop::RoundTrips(n) => n * plan.chunk as u64,
        Stop::After(_) => u64::MAX,
    };
    let outgoing = vec![0x5a_u8; plan.chunk];
    let mut buf = vec![0_u8; plan.chunk + 1];
    let mut pending = conns.len();
    let mut received = 0_u64;
    let started = Instant::now();
    for (i, conn) in conns.iter_mut().enumerate() {
        let blocked = flush(conn, &outgoing)?;
        let fd = conn.stream.as_raw_fd();
        watch_writes(&poll, fd, Token(i), blocked, &mut conn.watching_writes)?;
    }
    let elapsed = loop {
        if let Stop::After(d) = plan.stop {
            let elapsed = started.elapsed();
            if elapsed >= d {
                break elapsed;
            }
        }
        if pending == 0 {
            break started.elapsed();
        }
        limit.check("exchanging")?;
        let wait = match plan.stop {
            Stop::After(d) => TICK.min(d.saturating_sub(started.elapsed())),
            Stop::RoundTrips(_) => TICK,
        };
        match poll.poll(&mut events, Some(wait.min(limit.remaining()))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BenchError::Io("epoll wait", e)),
        }
        for event in events.iter() {
            let token = event.token();
            let conn = &mut conns[token.0];
            if conn.done {
                continue;
            }
            let blocked = conn.service(&mut buf, target, &outgoing, &mut received)?;
            if conn.done {
                pending -= 1;
            } else {
                let fd = conn.stream.as_raw_fd();
                watch_writes(&poll, fd, token, blocked, &mut conn.watching_writes)?;
            }
        }
    };
    Ok(ClientOutcome { elapsed, received })
}

impl<S: TryIo> ClientConn<S> {
    fn new(stream: S, chunk: usize) -> ClientConn<S> {
        ClientConn {
            stream,
            owed: chunk,
            received: 0,
            done: false,
            watching_writes: false,
        }
    }

    /// Reads what came back (until the stream would block or a short read emptied
    /// it), then writes back what is owed. Sets `done` at `target` bytes; returns
    /// whether a write would block.
    fn service(
        &mut self,
        buf: &mut [u8],
        target: u64,
        outgoing: &[u8],
        received: &mut u64,
    ) -> Result<bool, BenchError> {
        if target == u64::MAX && self.owed == 0 {
            // A timed exchange echoes what comes back, in place where the stream can.
            if let Some(echoed) = self.stream.try_echo() {
                return match echoed {
                    Ok(0) => Err(BenchError::Protocol(
                        "server closed a connection early".into(),
                    )),
                    Ok(n) => {
                        self.received += n as u64;
                        *received += n as u64;
                        Ok(false)
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
                    Err(e) => Err(BenchError::Io("client echo", e)),
                };
            }
        }
        loop {
            match self.stream.try_read(buf) {
                Ok(0) => {
                    return Err(BenchError::Protocol(
                        "server closed a connection early".into(),
                    ));
                }
                Ok(n) => {
                    self.received += n as u64;
                    *received += n as u64;
                    if self.received >= target {
                        if self.received > target {
                            return Err(BenchError::Protocol(
                                "server echoed more than it got".into(),
                            ));
                        }
                        self.done = true;
                        return Ok(false);
                    }
                    self.owed += n;
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(BenchError::Io("client read", e)),
            }
        }
        flush(self, outgoing)
    }
}

/// Writes what the connection owes until done (`Ok(false)`) or the socket is full
/// (`Ok(true)`).
fn flush<S: TryIo>(conn: &mut ClientConn<S>, outgoing: &[u8]) -> Result<bool, BenchError> {
    while conn.owed > 0 {
        match conn.stream.try_write(&outgoing[..conn.owed]) {
            Ok(n) => conn.owed -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BenchError::Io("client write", e)),
        }
    }
    Ok(false)
}

/// Polls between two looks at the deadline in [`spin_serve`] and [`spin_client`].
const POLLS_PER_CHECK: u32 = 1 << 12;

/// Echoes on `streams` (connected, nonblocking) from this thread, visiting each in
/// turn and spinning while none has anything (a busy-polling loop: no system call
/// while the transport needs none), until each has been closed by its client.
pub fn spin_serve<S: TryIo>(
    streams: Vec<S>,
    plan: EchoPlan,
    limit: Limit<'_>,
) -> Result<(), BenchError> {
    let mut conns: Vec<EchoConn<S>> = streams
        .into_iter()
        .map(|s| EchoConn::new(s, plan.chunk))
        .collect();
    let mut polls = 0_u32;
    while !conns.is_empty() {
        let mut i = 0;
        while i < conns.len() {
            if conns[i].pump()? == Pumped::Closed {
                conns.swap_remove(i);
            } else {
                i += 1;
            }
        }
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(POLLS_PER_CHECK) {
            limit.check("serving")?;
        }
        std::hint::spin_loop();
    }
    Ok(())
}

/// Times `plan` over `streams` (connected, nonblocking) from this thread, visiting
/// each in turn and spinning while none has anything.
pub fn spin_client<S: TryIo>(
    streams: Vec<S>,
    plan: ClientPlan,
    limit: Limit<'_>,
) -> Result<ClientOutcome, BenchError> {
    let mut conns: Vec<ClientConn<S>> = streams
        .into_iter()
        .map(|s| ClientConn::new(s, plan.chunk))
        .collect();
    let target = match plan.stop {
        Stop::RoundTrips(n) => n * plan.chunk as u64,
        Stop::After(_) => u64::MAX,
    };
    let outgoing = vec![0x5a_u8; plan.chunk];
    let mut buf = vec![0_u8; plan.chunk + 1];
    let mut received = 0_u64;
    let mut pending = conns.len();
    let started = Instant::now();
    for conn in &mut conns {
        flush(conn, &outgoing)?;
    }
    let mut polls = 0_u32;
    let elapsed = loop {
        for conn in conns.iter_mut().filter(|c| !c.done) {
            conn.service(&mut buf, target, &outgoing, &mut received)?;
            if conn.done {
                pending -= 1;
            }
        }
        if pending == 0 {
            break started.elapsed();
        }
        // A timed run looks at the clock on every pass (a pass may move megabytes).
        if let Stop::After(d) = plan.stop {
            let elapsed = started.elapsed();
            if elapsed >= d {
                break elapsed;
            }
        }
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(POLLS_PER_CHECK) {
            limit.check("exchanging")?;
        }
        std::hint::spin_loop();
    };
    Ok(ClientOutcome { elapsed, received })
}

impl TryIo for std::os::unix::net::UnixStream {
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(self, buf)
    }
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(self, buf)
    }
}

impl NonblockingListener for std::os::unix::net::UnixListener {
    type Stream = std::os::unix::net::UnixStream;
    fn try_accept(&mut self) -> io::Result<Self::Stream> {
        let (stream, _) = self.accept()?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    }
}
