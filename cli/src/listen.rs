//! `ringlink listen`: a server that echoes or prints what each client sends, one thread
//! per connection, and removes its name on Ctrl-C.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringlink::{
    Access, Error, ErrorKind, FrameOptions, FramedStream, Listener, ListenerOptions, Stream,
};

use crate::args::{AccessArg, NameArgs};
use crate::names::resolve;

/// Set by SIGINT/SIGTERM so `listen` can stop and remove its name.
static STOP: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// On Windows Ctrl-C ends the process, and the pipe and its name go with it: there is
/// nothing to clean up.
#[cfg(windows)]
fn catch_stop_signals() {}

#[cfg(unix)]
fn catch_stop_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
}

/// `ringlink listen`: serves until SIGINT or SIGTERM, then removes the name (exit status 130).
pub fn listen(
    args: &NameArgs,
    echo: bool,
    framed: bool,
    access: AccessArg,
    max_connections: Option<usize>,
    idle: Option<Duration>,
) -> Result<i32, Error> {
    let name = resolve(args)?;
    let access = match access {
        AccessArg::Owner => Access::Owner,
        AccessArg::Group => Access::Group,
        AccessArg::Everyone => Access::Everyone,
    };
    let max_connections = max_connections.unwrap_or_else(default_max_connections);
    let options = ListenerOptions::new()
        .access(access)
        .max_connections(max_connections);
    let listener = Listener::bind(&name, options)?;
    catch_stop_signals();
    let mode = if framed { "framed" } else { "raw" };
    let what = if echo {
        "echoing"
    } else {
        "printing what clients send"
    };
    say!(
        "ringlink: listening on {} ({mode}, {what}, {}, at most {max_connections} connections; Ctrl-C to stop)",
        listener.name(),
        access_text(access)
    );
    let next_id = AtomicU64::new(1);
    let mut refused_seen = 0;
    let mut failures = FailureLog::default();
    while !STOP.load(Ordering::SeqCst) {
        let stream = match listener.accept_timeout(Duration::from_millis(200)) {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                let refused = listener.refused_count();
                if refused > refused_seen {
                    say!(
                        "ringlink: refused {} connection(s) (peer policy or connection limit)",
                        refused - refused_seen
                    );
                    refused_seen = refused;
                }
                continue;
            }
            Err(e) => {
                // Whatever failed (descriptors, memory, one bad connection), the
                // server goes on: say so (not on every retry) and pause.
                failures.note(&e);
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let peer = match stream.peer_credentials() {
            Ok(c) => c.to_string(),
            Err(e) => format!("unknown peer ({e})"),
        };
        say!("ringlink: connection #{id} from {peer}");
        // Out of threads, the closure and the stream in it are dropped: this
        // connection is closed (the client reads end of stream) and the server goes on.
        let started = std::thread::Builder::new()
            .name(format!("connection #{id}"))
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                let result = if framed {
                    serve_framed(stream, echo, idle)
                } else {
                    serve_raw(&stream, echo, idle)
                };
                match result {
                    Ok((inb, outb)) => {
                        say!("ringlink: connection #{id} closed ({inb} bytes in, {outb} out)")
                    }
                    Err(e) => say!("ringlink: connection #{id} ended: {e}"),
                }
            });
        if let Err(e) = started {
            say!("ringlink: connection #{id} refused: cannot start a thread for it ({e})");
        }
    }
    say!("ringlink: stopping; removing {}", listener.name());
    drop(listener);
    Ok(130)
}

/// Stack of each connection's thread: serving needs little, and many connections
/// should not reserve much address space.
const CONNECTION_STACK: usize = 256 * 1024;

/// The connection limit of `listen` without `--max-connections`: 1024, or what the
/// descriptor limit leaves room for (one descriptor per connection, a few for the
/// server itself), so a flood is refused before the process runs out of descriptors.
fn default_max_connections() -> usize {
    const DEFAULT: usize = 1024;
    #[cfg(unix)]
    {
        /// Descriptors the server keeps for itself (stdio, the socket, its lock file).
        const RESERVED: usize = 16;
        // SAFETY: `rlimit` is plain old data; all-zero is a valid value.
        let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
        // SAFETY: `limit` is a live out-parameter for the whole call.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0
            && limit.rlim_cur != libc::RLIM_INFINITY
        {
            let fds = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX);
            return DEFAULT.min(fds.saturating_sub(RESERVED).max(1));
        }
    }
    DEFAULT
}

/// Says that accept failed, once per kind of failure and then at most every 10 s,
/// so a server that keeps hitting a limit does not flood its log.
#[derive(Default)]
struct FailureLog {
    last: Option<(ErrorKind, Instant)>,
    repeated: u64,
}

impl FailureLog {
    fn note(&mut self, e: &Error) {
        let now = Instant::now();
        match self.last {
            Some((kind, at))
                if kind == e.kind() && now.duration_since(at) < Duration::from_secs(10) =>
            {
                self.repeated += 1;
            }
            _ => {
                let again = match self.repeated {
                    0 => String::new(),
                    n => format!(" (and {n} more failures before this one)"),
                };
                say!("ringlink: accept failed: {e}{again}; still listening");
                self.last = Some((e.kind(), now));
                self.repeated = 0;
            }
        }
    }
}

fn access_text(access: Access) -> &'static str {
    match access {
        Access::Owner => "only your user may connect",
        Access::Group => "your user and group may connect",
        _ => "every user may connect",
    }
}

/// Says that a connection was closed for being quiet for `idle`.
fn idle_error(e: Error, idle: Option<Duration>) -> Error {
    match idle {
        Some(idle) if e.kind() == ErrorKind::TimedOut => {
            let text = format!("closed: quiet for {idle:?} (--idle-timeout): {e}");
            e.with_message(text)
        }
        _ => e,
    }
}

fn serve_raw(stream: &Stream, echo: bool, idle: Option<Duration>) -> Result<(u64, u64), Error> {
    stream.set_read_timeout(idle)?;
    stream.set_write_timeout(idle)?;
    serve_raw_bytes(stream, echo).map_err(|e| idle_error(e, idle))
}

fn serve_raw_bytes(stream: &Stream, echo: bool) -> Result<(u64, u64), Error> {
    let (mut inb, mut outb) = (0u64, 0u64);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = (&*stream).read(&mut buf).map_err(Error::from)?;
        if n == 0 {
            return Ok((inb, outb));
        }
        inb += n as u64;
        if echo {
            (&*stream).write_all(&buf[..n]).map_err(Error::from)?;
            outb += n as u64;
        } else {
            let mut out = io::stdout().lock();
            out.write_all(&buf[..n])
                .and_then(|()| out.flush())
                .map_err(Error::from)?;
        }
    }
}

fn serve_framed(stream: Stream, echo: bool, idle: Option<Duration>) -> Result<(u64, u64), Error> {
    // The hello has its own timeout; after it, a whole frame must arrive within `idle`.
    let mut framed = FramedStream::new(stream, FrameOptions::new())?;
    framed.set_timeouts(idle, idle)?;
    serve_frames(&mut framed, echo).map_err(|e| idle_error(e, idle))
}

fn serve_frames(framed: &mut FramedStream, echo: bool) -> Result<(u64, u64), Error> {
    let (mut inb, mut outb) = (0u64, 0u64);
    loop {
        let frame = match framed.recv_frame() {
            Ok(Some(f)) => f.to_vec(),
            Ok(None) => return Ok((inb, outb)),
            Err(e) if e.kind() == ErrorKind::FrameTooLarge => {
                say!("ringlink: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
        inb += frame.len() as u64;
        if echo {
            framed.send_frame(&frame)?;
            outb += frame.len() as u64;
        } else {
            let mut out = io::stdout().lock();
            out.write_all(&frame)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
                .map_err(Error::from)?;
        }
    }
}
