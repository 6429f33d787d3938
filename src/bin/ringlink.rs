//! The `ringlink` command: run a server, connect to one, probe and list names from a shell.
//!
//! ```text
//! ringlink listen demo --echo          # terminal 1
//! echo hi | ringlink connect demo      # terminal 2: prints "hi"
//! ringlink probe demo && ringlink ls
//! ```

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Local IPC over ringlink: Unix domain sockets (named pipes on Windows) that are private
/// to your user by default.
///
/// A NAME without '/' (like `demo`) lives in your private directory
/// ($XDG_RUNTIME_DIR/ringlink, else $TMPDIR/ringlink-<uid>); a NAME with '/' is a socket
/// path used as given. `--qt` uses the name Qt's QLocalServer/QLocalSocket would
/// ($TMPDIR or /tmp), so a Qt program and ringlink can talk in raw mode.
/// On Windows a NAME is the pipe \\.\pipe\NAME (also Qt's), owner-only by default.
#[derive(Debug, Parser)]
#[command(name = "ringlink", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a server on NAME; logs each connection (peer uid and pid) to stderr.
    ///
    /// Without --echo, what clients send is written to stdout. Stop it with Ctrl-C: the
    /// socket and its lock file are removed.
    #[command(
        after_help = "Examples:\n  ringlink listen demo --echo\n  ringlink listen demo --framed --echo\n  ringlink listen /tmp/app.sock --access group"
    )]
    Listen {
        #[command(flatten)]
        name: NameArgs,
        /// Send back everything each client sends (frames, with --framed).
        #[arg(long)]
        echo: bool,
        /// Speak ringlink's framed protocol (hello, then length-prefixed frames).
        #[arg(long)]
        framed: bool,
        /// Who may open the socket file.
        #[arg(long, value_enum, default_value_t = AccessArg::Owner)]
        access: AccessArg,
        /// Close connections beyond this many open at once [default: 1024, or fewer when
        /// the descriptor limit (ulimit -n) is lower].
        #[arg(long, value_name = "N")]
        max_connections: Option<usize>,
        /// Close a connection that sends nothing (with --framed: no whole frame) for this
        /// many seconds, or that takes as long to accept what is sent back, so peers that
        /// go quiet or trickle cannot hold every connection slot; 0: never.
        #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
        idle_timeout: f64,
    },
    /// Connect to NAME: stdin goes to the server, what it sends goes to stdout.
    ///
    /// Ends when the server closes the connection (after stdin ends, ringlink says so to the
    /// server by shutting down its side). With --framed, each stdin line is one frame and each
    /// frame received is printed as a line.
    ///
    /// With --qt (or --keep-open) the connection is not half-closed, because Qt's
    /// QLocalSocket treats that as a disconnect and drops its unsent replies; connect then
    /// exits when the server closes or --idle seconds after stdin ended and nothing arrived.
    /// Named pipes cannot half-close, so on Windows this is always the behaviour.
    #[command(
        after_help = "Examples:\n  echo hi | ringlink connect demo\n  ringlink connect demo --wait --timeout 10"
    )]
    Connect {
        #[command(flatten)]
        name: NameArgs,
        /// Speak ringlink's framed protocol.
        #[arg(long)]
        framed: bool,
        /// Wait for the server to appear (until the timeout) instead of failing at once.
        #[arg(long)]
        wait: bool,
        /// Give up connecting after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
        timeout: f64,
        /// Do not half-close when stdin ends (the default with --qt).
        #[arg(long)]
        keep_open: bool,
        /// With --keep-open: exit this many seconds after stdin ended and nothing arrived.
        #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
        idle: f64,
        /// Connect even when the server runs as another user. By default such a server is
        /// refused before anything is sent: anyone can plant a socket in a shared directory
        /// (Qt names live in /tmp) or squat a pipe name.
        #[arg(long)]
        any_server: bool,
    },
    /// Exit 0 when a live server answers on NAME, 1 otherwise (prints what it found).
    Probe {
        #[command(flatten)]
        name: NameArgs,
    },
    /// List your ringlink names, live or stale.
    Ls {
        /// List the sockets you own in Qt's directory ($TMPDIR or /tmp) instead.
        #[arg(long)]
        qt: bool,
    },
}

#[derive(Debug, Args)]
struct NameArgs {
    /// A plain name (`demo`), or a socket path (anything with a '/').
    #[arg(value_name = "NAME")]
    name: String,
    /// Resolve NAME the way Qt's QLocalServer does: $TMPDIR/NAME or /tmp/NAME.
    #[arg(long, conflicts_with = "abstract_name")]
    qt: bool,
    /// Use a Linux abstract socket name (@NAME, no file).
    #[arg(long = "abstract")]
    abstract_name: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AccessArg {
    /// Only your user (0600).
    Owner,
    /// Your user and group (0660).
    Group,
    /// Every user (0666).
    Everyone,
}

fn main() {
    let cli = Cli::parse();
    std::process::exit(imp::run(cli));
}

/// Writes one line to stderr. A closed or full stderr never stops ringlink (a server
/// piped into `head -1` keeps serving), so failures are ignored, unlike `eprintln!`,
/// which panics on them.
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

#[cfg(not(any(unix, windows)))]
mod imp {
    pub fn run(_: super::Cli) -> i32 {
        say!("ringlink: this command supports Unix and Windows only");
        2
    }
}

#[cfg(any(unix, windows))]
mod imp {
    use std::io::{self, BufRead, Read, Write};
    use std::net::Shutdown;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use host::{
        Access, ConnectOptions, Error, ErrorKind, FrameOptions, FramedStream, Listener,
        ListenerOptions, Name, NameState, Stream,
    };
    #[cfg(unix)]
    use ringlink::unix as host;
    #[cfg(windows)]
    use ringlink::windows as host;

    use super::{AccessArg, Cli, Command, NameArgs};

    /// Set by SIGINT/SIGTERM so `listen` can stop and remove its name.
    static STOP: AtomicBool = AtomicBool::new(false);

    pub fn run(cli: Cli) -> i32 {
        let result = match cli.command {
            Command::Listen {
                name,
                echo,
                framed,
                access,
                max_connections,
                idle_timeout,
            } => seconds("--idle-timeout", idle_timeout).and_then(|idle| {
                let idle = (!idle.is_zero()).then_some(idle);
                listen(&name, echo, framed, access, max_connections, idle)
            }),
            Command::Connect {
                name,
                framed,
                wait,
                timeout,
                keep_open,
                idle,
                any_server,
            } => connect(
                &name,
                framed,
                wait,
                timeout,
                // Named pipes have no half-close: Windows always keeps the connection open.
                (keep_open || name.qt || cfg!(windows)).then_some(idle),
                any_server,
            ),
            Command::Probe { name } => probe(&name),
            Command::Ls { qt } => ls(qt),
        };
        match result {
            Ok(code) => code,
            Err(e) => {
                report(&e);
                1
            }
        }
    }

    fn report(e: &Error) {
        let mut text = format!("ringlink: error: {e}");
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        say!("{text}");
    }

    fn resolve(args: &NameArgs) -> Result<Name, Error> {
        if args.qt {
            Name::qt(&args.name)
        } else if args.abstract_name {
            Name::abstract_name(&args.name)
        } else {
            Name::new(&args.name)
        }
    }

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

    fn listen(
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
                #[cfg(unix)]
                Ok(c) => format!(
                    "uid {} gid {} pid {}",
                    c.uid,
                    c.gid,
                    c.pid.map_or("unknown".to_string(), |p| p.to_string())
                ),
                #[cfg(windows)]
                Ok(c) => format!("pid {}", c.pid),
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

    fn serve_framed(
        stream: Stream,
        echo: bool,
        idle: Option<Duration>,
    ) -> Result<(u64, u64), Error> {
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

    fn seconds(flag: &str, value: f64) -> Result<Duration, Error> {
        Duration::try_from_secs_f64(value).map_err(|_| {
            Error::new(
                ErrorKind::InvalidName,
                format!("{flag} {value} is not a number of seconds"),
            )
        })
    }

    fn connect(
        args: &NameArgs,
        framed: bool,
        wait: bool,
        timeout: f64,
        keep_open_idle: Option<f64>,
        any_server: bool,
    ) -> Result<i32, Error> {
        let name = resolve(args)?;
        let timeout = seconds("--timeout", timeout)?;
        let idle = keep_open_idle.map(|i| seconds("--idle", i)).transpose()?;
        let options = ConnectOptions::new()
            .timeout(timeout)
            .wait_for_server(wait)
            .verify_server_user(!any_server);
        let stream = Stream::connect(&name, options)?;
        if framed {
            connect_framed(stream, idle)
        } else {
            connect_raw(stream, idle)
        }
    }

    /// stdin → socket, socket → stdout. Without `idle`, half-closes at the end of stdin
    /// and runs until the server closes; with it, keeps the connection open and also stops
    /// once stdin has ended and nothing arrived for `idle`.
    fn connect_raw(stream: Stream, idle: Option<Duration>) -> Result<i32, Error> {
        let (mut reader, mut writer) = stream.into_split();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = io::copy(&mut io::stdin().lock(), &mut writer);
            if idle.is_none() {
                drop(writer); // shuts down writing: the server sees end of stream
            } else {
                // Hand the write half over, so dropping it does not half-close.
                let _ = done_tx.send(writer);
            }
        });
        if let Some(idle) = idle {
            reader.stream().set_read_timeout(Some(idle))?;
        }
        let mut stdin_done = None;
        let mut out = io::stdout().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if stdin_done.is_none() {
                stdin_done = done_rx.try_recv().ok();
            }
            let n = match reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) if idle.is_some() && e.kind() == io::ErrorKind::TimedOut => {
                    if stdin_done.is_some() || done_rx.try_recv().is_ok() {
                        return Ok(0);
                    }
                    continue;
                }
                Err(e) => return Err(Error::from(e)),
            };
            if n == 0 {
                return Ok(0);
            }
            out.write_all(&buf[..n])
                .and_then(|()| out.flush())
                .map_err(Error::from)?;
        }
    }

    /// Like [`connect_raw`] with one frame per line (its bytes as they are, UTF-8 or
    /// not; without the `\n` or `\r\n`); with `idle`, also stops once stdin has ended and
    /// no frame arrived for `idle`. A line over the server's frame limit is not sent, and
    /// that, or a failure to read stdin, makes the exit status 1.
    fn connect_framed(stream: Stream, idle: Option<Duration>) -> Result<i32, Error> {
        let mut framed = FramedStream::new(stream, FrameOptions::new())?;
        let peer_max = framed.peer_hello().max_frame;
        if let Some(idle) = idle {
            framed.set_timeouts(Some(idle), None)?;
        }
        // Frames go out from the stdin thread while this one receives, over shared
        // memory (the default) or the socket.
        let (mut framed, mut sender) = framed.into_split();
        let stdin_done = std::sync::Arc::new(AtomicBool::new(false));
        let stdin_failed = std::sync::Arc::new(AtomicBool::new(false));
        let (done, failed) = (stdin_done.clone(), stdin_failed.clone());
        std::thread::spawn(move || {
            let mut input = io::stdin().lock();
            let mut line = Vec::new();
            loop {
                match read_frame_line(&mut input, &mut line, peer_max) {
                    Ok(Line::End) => break,
                    Ok(Line::Frame) => {}
                    Ok(Line::TooLong(len)) => {
                        say!(
                            "ringlink: error: a line of {len} bytes is over the server's frame limit of {peer_max}; not sent"
                        );
                        failed.store(true, Ordering::SeqCst);
                        continue;
                    }
                    Err(e) => {
                        say!("ringlink: error: cannot read stdin: {e}; stopped sending");
                        failed.store(true, Ordering::SeqCst);
                        break;
                    }
                }
                // `read_frame_line` checked the length against the peer's `u32` limit.
                let Ok(len) = u32::try_from(line.len()) else {
                    unreachable!("a line over the frame limit is TooLong");
                };
                debug_assert!(len <= peer_max);
                if sender.send_frame(&line).is_err() {
                    return;
                }
            }
            done.store(true, Ordering::SeqCst);
            if idle.is_none() {
                // The end of what we send: over shared memory, dropping the sender.
                if !sender.is_shared_memory() {
                    let _ = sender.get_ref().shutdown(Shutdown::Write);
                }
                drop(sender);
            }
        });
        let status = || i32::from(stdin_failed.load(Ordering::SeqCst));
        let mut out = io::stdout().lock();
        loop {
            let frame = match framed.recv_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(status()),
                Err(e) if idle.is_some() && e.kind() == ErrorKind::TimedOut => {
                    if stdin_done.load(Ordering::SeqCst) {
                        return Ok(status());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            out.write_all(frame)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
                .map_err(Error::from)?;
        }
    }

    /// What [`read_frame_line`] found.
    enum Line {
        /// A line is in the buffer, its end of line removed.
        Frame,
        /// A line of this many bytes was over the limit and skipped.
        TooLong(u64),
        /// End of input.
        End,
    }

    /// Reads one line of raw bytes into `line`, holding at most `max` bytes (plus its end
    /// of line) however long the line is.
    fn read_frame_line(input: &mut impl BufRead, line: &mut Vec<u8>, max: u32) -> io::Result<Line> {
        line.clear();
        let limit = u64::from(max) + 2; // the line and "\r\n"
        let n = input.by_ref().take(limit).read_until(b'\n', line)?;
        if n == 0 {
            return Ok(Line::End);
        }
        if line.last() != Some(&b'\n') && n as u64 == limit {
            // Longer than any frame the server takes: skip the rest of it.
            let mut skipped = limit;
            loop {
                let buf = input.fill_buf()?;
                if buf.is_empty() {
                    break;
                }
                let (used, end) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (buf.len(), false),
                };
                input.consume(used);
                skipped += used as u64;
                if end {
                    break;
                }
            }
            line.clear();
            return Ok(Line::TooLong(skipped));
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if line.len() as u64 > u64::from(max) {
            return Ok(Line::TooLong(line.len() as u64));
        }
        Ok(Line::Frame)
    }

    fn probe(args: &NameArgs) -> Result<i32, Error> {
        let name = resolve(args)?;
        let state = name.state()?;
        match state {
            NameState::Live { .. } => {
                println!("{name}: {state}");
                Ok(0)
            }
            NameState::Stale => {
                println!("{name}: stale (its server died; the next `ringlink listen` reclaims it)");
                Ok(1)
            }
            NameState::Occupied => {
                println!(
                    "{name}: occupied by something ringlink will not replace (a file that is not a \
                     socket, another user's dead socket, or a lock file ringlink did not make); \
                     `ringlink listen` refuses it: remove it or pick another name"
                );
                Ok(1)
            }
            _ => {
                println!("{name}: no server");
                Ok(1)
            }
        }
    }

    fn ls(qt: bool) -> Result<i32, Error> {
        let dir = if qt {
            Name::qt("x")?
                .path()
                .and_then(|p| p.parent())
                .map(|p| p.to_path_buf())
                .unwrap_or_default()
        } else {
            Name::private_dir()?
        };
        let names = Name::list_dir(&dir)?;
        if names.is_empty() {
            eprintln!("ringlink: no names in {}", dir.display());
            return Ok(0);
        }
        let width = names
            .iter()
            .map(|(label, _)| label.len())
            .max()
            .unwrap_or(4)
            .max(4);
        println!("{:<width$}  {:<16}  PATH", "NAME", "STATE");
        for (label, name) in names {
            let state = match name.state() {
                Ok(s) => s.to_string(),
                Err(e) => format!("unknown ({})", e.kind()),
            };
            println!("{label:<width$}  {state:<16}  {name}");
        }
        Ok(0)
    }
}
