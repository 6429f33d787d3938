//! ringlink's framed Unix-socket transport (`ringlink_unix::FramedStream`): the hello
//! handshake on every connection, then length-prefixed frames. A chunk is one frame;
//! the server echoes every frame it receives, the client sends a frame of the same
//! size for every frame it receives. One `epoll` thread per side, polling the stream
//! under each framed connection.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use mio::{Events, Interest, Poll, Token};
use ringlink_unix::{ConnectOptions, ErrorKind, FrameOptions, FramedStream, Stream, Transports};

/// Framed mode on the socket: this row measures framed UDS under epoll (shared memory,
/// which framed mode negotiates by default, has rows of its own).
fn socket_only() -> FrameOptions {
    FrameOptions::new().transports(Transports::SOCKET)
}

use super::ringlink_uds::{bind, to_io};
use crate::names::{Driver, Name};
use crate::readiness::{LISTENER, TICK, register};
use crate::workload::{
    BenchError, ClientOutcome, ClientPlan, EchoPlan, IoContext, Limit, Stop, Transport,
};

/// ringlink framed UDS.
pub struct RinglinkFramed;

fn framed_error(what: &'static str, e: ringlink_unix::Error) -> BenchError {
    BenchError::Io(what, to_io(e))
}

/// Whether a framed call failed only because the socket has nothing (more) now.
fn would_block(e: &ringlink_unix::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
}

fn poll_once(poll: &mut Poll, events: &mut Events, limit: Limit<'_>) -> Result<(), BenchError> {
    match poll.poll(events, Some(TICK.min(limit.remaining()))) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
        Err(e) => Err(BenchError::Io("epoll wait", e)),
    }
}

/// Echoes every frame the connection has until it would block; `Ok(true)` (and the
/// slot emptied) once the client has closed it.
fn echo_frames(slot: &mut Option<FramedStream>, scratch: &mut Vec<u8>) -> Result<bool, BenchError> {
    let Some(framed) = slot else {
        return Ok(false);
    };
    let gone = loop {
        match framed.recv_frame() {
            Ok(Some(frame)) => {
                // Echoing needs a copy: the received frame borrows the stream.
                scratch.clear();
                scratch.extend_from_slice(frame);
            }
            Ok(None) => break true,
            Err(e) if would_block(&e) => break false,
            Err(e) if e.kind() == ErrorKind::PeerClosed => break true,
            Err(e) => return Err(framed_error("server receive", e)),
        }
        match framed.send_frame(scratch) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::PeerClosed => break true,
            Err(e) => return Err(framed_error("server send", e)),
        }
    };
    if gone {
        *slot = None;
    }
    Ok(gone)
}

impl Transport for RinglinkFramed {
    fn name(&self) -> Name {
        Name::RinglinkFramed
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
        let listener = bind(addr, true)?;
        ready();
        let mut poll = Poll::new().during("creating epoll")?;
        let mut events = Events::with_capacity(1024);
        register(&poll, listener.as_raw_fd(), LISTENER, Interest::READABLE)?;
        let mut conns: Vec<Option<FramedStream>> = Vec::with_capacity(plan.connections);
        let mut scratch = Vec::with_capacity(plan.chunk);
        let mut closed = 0;
        while closed < plan.connections {
            limit.check("serving")?;
            poll_once(&mut poll, &mut events, limit)?;
            for event in events.iter() {
                if event.token() == LISTENER {
                    while conns.len() < plan.connections {
                        let stream = match listener.accept() {
                            Ok(s) => s,
                            Err(e) if would_block(&e) => break,
                            Err(e) => return Err(framed_error("accept", e)),
                        };
                        stream
                            .set_nonblocking(true)
                            .map_err(|e| framed_error("nonblocking stream", e))?;
                        let framed = FramedStream::new(stream, socket_only())
                            .map_err(|e| framed_error("server handshake", e))?;
                        let fd = framed.get_ref().as_raw_fd();
                        register(&poll, fd, Token(conns.len()), Interest::READABLE)?;
                        let mut framed = Some(framed);
                        // The handshake may have read the client's first frames along
                        // with its hello: they wait in the decoder, and the socket
                        // will not signal them again.
                        if echo_frames(&mut framed, &mut scratch)? {
                            closed += 1;
                        }
                        conns.push(framed);
                    }
                    continue;
                }
                if echo_frames(&mut conns[event.token().0], &mut scratch)? {
                    closed += 1;
                }
            }
        }
        Ok(())
    }

    fn run_client(
        &self,
        addr: &Path,
        plan: ClientPlan,
        limit: Limit<'_>,
    ) -> Result<ClientOutcome, BenchError> {
        let mut poll = Poll::new().during("creating epoll")?;
        let mut events = Events::with_capacity(1024);
        let mut conns = Vec::with_capacity(plan.connections);
        for i in 0..plan.connections {
            limit.check("connecting")?;
            let options = ConnectOptions::new()
                .timeout(limit.remaining())
                .nonblocking(true);
            let stream = Stream::connect(addr, options).map_err(|e| framed_error("connect", e))?;
            let framed = FramedStream::new(stream, socket_only())
                .map_err(|e| framed_error("client handshake", e))?;
            register(
                &poll,
                framed.get_ref().as_raw_fd(),
                Token(i),
                Interest::READABLE,
            )?;
            conns.push((framed, 0_u64, false));
        }
        let target = match plan.stop {
            Stop::RoundTrips(n) => n * plan.chunk as u64,
            Stop::After(_) => u64::MAX,
        };
        let outgoing = vec![0x5a_u8; plan.chunk];
        let mut pending = conns.len();
        let mut received = 0_u64;
        let started = std::time::Instant::now();
        for (framed, _, _) in &mut conns {
            framed
                .send_frame(&outgoing)
                .map_err(|e| framed_error("client send", e))?;
        }
        let elapsed = loop {
            if let Stop::After(d) = plan.stop
                && started.elapsed() >= d
            {
                break started.elapsed();
            }
            if pending == 0 {
                break started.elapsed();
            }
            limit.check("exchanging")?;
            poll_once(&mut poll, &mut events, limit)?;
            for event in events.iter() {
                let (framed, got, done) = &mut conns[event.token().0];
                if *done {
                    continue;
                }
                loop {
                    let n = match framed.recv_frame() {
                        Ok(Some(frame)) => frame.len(),
                        Ok(None) => {
                            return Err(BenchError::Protocol(
                                "server closed a connection early".into(),
                            ));
                        }
                        Err(e) if would_block(&e) => break,
                        Err(e) => return Err(framed_error("client receive", e)),
                    };
                    *got += n as u64;
                    received += n as u64;
                    if *got >= target {
                        if *got > target {
                            return Err(BenchError::Protocol(
                                "server echoed more than it got".into(),
                            ));
                        }
                        *done = true;
                        pending -= 1;
                        break;
                    }
                    framed
                        .send_frame(&outgoing[..n])
                        .map_err(|e| framed_error("client send", e))?;
                }
            }
        };
        Ok(ClientOutcome { elapsed, received })
    }
}
