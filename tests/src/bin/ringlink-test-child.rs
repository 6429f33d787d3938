//! The other process of ringlink's cross-process tests: servers, clients and misbehaving
//! peers, chosen by the first argument. It prints `ready` once it has bound or connected,
//! reports results as single stdout lines, and exits when its stdin closes (so it never
//! outlives the test), or after two minutes at the latest.

#[cfg(unix)]
fn main() {
    unix::main();
}

#[cfg(not(unix))]
fn main() {
    eprintln!("ringlink-test-child runs on Unix only");
    std::process::exit(2);
}

#[cfg(unix)]
mod unix {
    use std::io::{self, BufRead, Read, Write};

    use std::sync::mpsc;
    use std::time::Duration;

    use ringlink_tests::TestMessage;
    use ringlink_unix::{
        Access, ConnectOptions, FrameOptions, FramedStream, Listener, ListenerOptions, Name,
        PeerPolicy, Stream,
    };

    const USAGE: &str = "usage: ringlink-test-child \
        <echo|sink|flood|bind-race|sigpipe|probe|list|uid-connect|uid-serve> ARGS";

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let commands = watch_stdin();
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(120));
            eprintln!("ringlink-test-child: watchdog expired");
            std::process::exit(3);
        });
        let arg = |i: usize| -> &str {
            args.get(i)
                .map(String::as_str)
                .unwrap_or_else(|| fail(USAGE))
        };
        match arg(0) {
            "echo" => echo(&args[1..]),
            "echo-tokio" => echo_tokio(arg(1), args.get(2).map(String::as_str) == Some("--framed")),
            "sink" => sink(arg(1)),
            "sink-server" => sink_server(arg(1)),
            "flood" => flood(arg(1)),
            "flood-framed" => flood_framed(arg(1)),
            "try-bind" => try_bind(arg(1)),
            "bind-race" => bind_race(arg(1), &commands),
            "sigpipe" => sigpipe(arg(1)),
            "probe" => probe(arg(1)),
            "list" => list(arg(1)),
            "uid-connect" => uid_connect(
                arg(1),
                arg(2).parse().unwrap_or_else(|_| fail("bad uid")),
                args.get(3).map(String::as_str) == Some("--any-server"),
            ),
            "uid-serve" => uid_serve(arg(1), arg(2).parse().unwrap_or_else(|_| fail("bad uid"))),
            _ => fail(USAGE),
        }
    }

    fn fail(message: &str) -> ! {
        eprintln!("ringlink-test-child: {message}");
        std::process::exit(2);
    }

    fn say(line: &str) {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Lines from stdin, for children that take commands; exits the process at end of input.
    fn watch_stdin() -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
            std::process::exit(0);
        });
        rx
    }

    fn name(arg: &str) -> Name {
        Name::new(arg).unwrap_or_else(|e| fail(&format!("bad name {arg}: {e}")))
    }

    #[derive(Clone, Copy)]
    enum Mode {
        Raw,
        Framed,
        Typed,
    }

    /// `echo NAME [--framed|--typed] [--max-frame N] [--nofile N] [--everyone] [--same-user]
    /// [--max-connections N]`: a thread-per-connection echo server. Framed mode echoes each
    /// frame; typed mode answers each `Ping` with a `Pong`.
    fn echo(args: &[String]) {
        let mut options = ListenerOptions::new();
        let mut mode = Mode::Raw;
        let mut frames = FrameOptions::new();
        let mut i = 1;
        while i < args.len() {
            match args[i].as_str() {
                "--framed" => mode = Mode::Framed,
                "--typed" => mode = Mode::Typed,
                "--max-frame" => {
                    let n = args
                        .get(i + 1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_else(|| fail("--max-frame N"));
                    frames = frames.max_frame(n);
                    i += 1;
                }
                "--nofile" => {
                    let n: u64 = args
                        .get(i + 1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_else(|| fail("--nofile N"));
                    ringlink_tests::set_fd_limit(n)
                        .unwrap_or_else(|e| fail(&format!("setrlimit: {e}")));
                    i += 1;
                }
                "--everyone" => options = options.access(Access::Everyone),
                "--same-user" => options = options.peer_policy(PeerPolicy::SameUser),
                "--max-connections" => {
                    let n = args
                        .get(i + 1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_else(|| fail("--max-connections N"));
                    options = options.max_connections(n);
                    i += 1;
                }
                other => fail(&format!("unknown echo option {other}")),
            }
            i += 1;
        }
        let listener =
            Listener::bind(name(&args[0]), options).unwrap_or_else(|e| fail(&format!("bind: {e}")));
        say("ready");
        loop {
            let stream = match listener.accept() {
                Ok(s) => s,
                Err(e) => fail(&format!("accept: {e}")),
            };
            let spawned =
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || match mode {
                        Mode::Raw => echo_bytes(&stream),
                        Mode::Framed => echo_frames(stream, frames),
                        Mode::Typed => echo_typed(stream, frames),
                    });
            if let Err(e) = spawned {
                eprintln!("ringlink-test-child: cannot spawn a connection thread: {e}");
            }
        }
    }

    fn echo_bytes(stream: &Stream) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match (&*stream).read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if (&*stream).write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    }

    fn echo_frames(stream: Stream, options: FrameOptions) {
        let Ok(mut framed) = FramedStream::new(stream, options) else {
            return;
        };
        loop {
            let frame = match framed.recv_frame() {
                Ok(Some(frame)) => frame.to_vec(),
                Ok(None) => return,
                // Report an oversized frame to the peer in-band, and carry on.
                Err(e) if e.kind() == ringlink_unix::ErrorKind::FrameTooLarge => {
                    b"too-large".to_vec()
                }
                Err(_) => return,
            };
            if framed.send_frame(&frame).is_err() {
                return;
            }
        }
    }

    fn echo_typed(stream: Stream, options: FrameOptions) {
        let Ok(mut framed) = FramedStream::new(stream, options) else {
            return;
        };
        while let Ok(Some(msg)) = framed.recv::<TestMessage>() {
            let reply = match msg {
                TestMessage::Ping { seq, mut data, .. } => {
                    data.reverse();
                    TestMessage::Pong { seq: seq + 1, data }
                }
                other => other,
            };
            if framed.send(&reply).is_err() {
                return;
            }
        }
    }

    /// `echo-tokio NAME [--framed]`: an echo server on a single-threaded tokio runtime,
    /// one task per connection.
    fn echo_tokio(arg: &str, framed: bool) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| fail(&format!("runtime: {e}")));
        runtime.block_on(async {
            let listener = ringlink_unix::tokio::Listener::bind(name(arg), ListenerOptions::new())
                .unwrap_or_else(|e| fail(&format!("bind: {e}")));
            say("ready");
            loop {
                let stream = listener
                    .accept()
                    .await
                    .unwrap_or_else(|e| fail(&format!("accept: {e}")));
                tokio::spawn(async move {
                    if framed {
                        let Ok(mut f) =
                            ringlink_unix::tokio::FramedStream::new(stream, FrameOptions::new())
                                .await
                        else {
                            return;
                        };
                        while let Ok(Some(frame)) = f.recv_frame().await {
                            let frame = frame.to_vec();
                            if f.send_frame(&frame).await.is_err() {
                                return;
                            }
                        }
                    } else {
                        let (mut r, mut w) = stream.into_split();
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                    }
                });
            }
        });
    }

    /// `sink NAME`: connects and reads everything until the peer goes away.
    fn sink(arg: &str) {
        let stream = Stream::connect(name(arg), ConnectOptions::new())
            .unwrap_or_else(|e| fail(&format!("connect: {e}")));
        say("ready");
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = (&stream).read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        say("done");
    }

    /// `sink-server NAME`: a raw server that reads and never answers (not a framed peer).
    fn sink_server(arg: &str) {
        let listener = Listener::bind(name(arg), ListenerOptions::new())
            .unwrap_or_else(|e| fail(&format!("bind: {e}")));
        say("ready");
        while let Ok(stream) = listener.accept() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = (&stream).read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    }

    /// `flood NAME`: connects and writes forever (until killed or the peer goes away).
    fn flood(arg: &str) {
        let stream = Stream::connect(name(arg), ConnectOptions::new())
            .unwrap_or_else(|e| fail(&format!("connect: {e}")));
        say("ready");
        let chunk: Vec<u8> = (0..64 * 1024u64)
            .map(|i| ringlink_tests::pattern_byte(7, i))
            .collect();
        while (&stream).write_all(&chunk).is_ok() {}
        say("done");
    }

    /// `flood-framed NAME`: connects in framed mode, announces a 64 MiB frame and streams
    /// its payload forever (until killed).
    fn flood_framed(arg: &str) {
        // It writes the frame on the socket itself, so the frames stay there.
        let options = FrameOptions::new()
            .max_frame(64 << 20)
            .transports(ringlink_unix::Transports::SOCKET);
        let framed = FramedStream::connect(name(arg), ConnectOptions::new(), options)
            .unwrap_or_else(|e| fail(&format!("connect: {e}")));
        let mut header = [0u8; ringlink_core::frame::MAX_HEADER_LEN];
        let n = ringlink_core::frame::encode_len(64 << 20, &mut header);
        let mut writer: &Stream = framed.get_ref();
        writer
            .write_all(&header[..n])
            .unwrap_or_else(|e| fail(&format!("write: {e}")));
        say("ready");
        let chunk = [5u8; 4096];
        // Slowly, so the frame is still incomplete when the test kills us.
        while writer.write_all(&chunk).is_ok() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `try-bind NAME`: binds, prints `ok PATH` or `error KIND MESSAGE`, then holds the
    /// listener until stdin closes.
    fn try_bind(arg: &str) {
        let bound = Name::new(arg).and_then(|n| Listener::bind(n, ListenerOptions::new()));
        match &bound {
            Ok(l) => say(&format!("ok {}", l.name())),
            Err(e) => say(&format!("error {:?} {e}", e.kind())),
        }
        loop {
            std::thread::park();
        }
    }

    /// `bind-race NAME`: binds when told `go`, prints `won` or `lost KIND`, then holds the
    /// listener until stdin closes.
    fn bind_race(arg: &str, commands: &mpsc::Receiver<String>) {
        let name = name(arg);
        say("ready");
        match commands.recv() {
            Ok(line) if line == "go" => {}
            _ => fail("expected go"),
        }
        let result = Listener::bind(&name, ListenerOptions::new());
        match &result {
            Ok(_) => say("won"),
            Err(e) => say(&format!("lost {:?} {e}", e.kind())),
        }
        // Hold the name until the test closes stdin (the stdin thread exits the process).
        loop {
            std::thread::park();
        }
    }

    /// `sigpipe NAME`: restores the default SIGPIPE action (death), connects, waits for
    /// the server to close, then writes: a ringlink write must fail with BrokenPipe instead
    /// of killing the process.
    fn sigpipe(arg: &str) {
        // SAFETY: installing the default disposition for SIGPIPE has no preconditions.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        let stream = Stream::connect(
            name(arg),
            ConnectOptions::new().read_timeout(Some(Duration::from_secs(20))),
        )
        .unwrap_or_else(|e| fail(&format!("connect: {e}")));
        say("ready");
        match (&stream).read(&mut [0u8; 1]) {
            Ok(0) => {}
            other => fail(&format!("expected end of stream, got {other:?}")),
        }
        // Through the std::io::Write impl, as most code will write.
        let mut writer: &Stream = &stream;
        for _ in 0..1000 {
            if let Err(e) = Write::write_all(&mut writer, &[0u8; 1024]) {
                let io_kind = e.kind();
                let ringlink_kind = ringlink_unix::Error::from(e).kind();
                say(&format!("error {io_kind:?} {ringlink_kind:?}"));
                // And through the inherent API.
                match stream.try_write(b"x") {
                    Err(e) => say(&format!("again {:?}", e.kind())),
                    Ok(n) => say(&format!("again wrote {n}")),
                }
                return;
            }
        }
        say("no error after 1000 writes");
    }

    /// `probe NAME`: prints `state STATE` (what `Name::state` says) or `error KIND MESSAGE`,
    /// then exits. Used to show that probing never blocks on what sits at a name.
    fn probe(arg: &str) {
        match Name::new(arg).and_then(|n| n.state()) {
            Ok(state) => say(&format!("state {state}")),
            Err(e) => say(&format!("error {:?} {e}", e.kind())),
        }
    }

    /// `list DIR`: what `ringlink ls` shows: one `LABEL STATE` line per socket of this user
    /// in `DIR`, then `end` (or `error KIND MESSAGE`).
    fn list(dir: &str) {
        match Name::list_dir(std::path::Path::new(dir)) {
            Ok(names) => {
                for (label, name) in names {
                    match name.state() {
                        Ok(state) => say(&format!("{label} {state}")),
                        Err(e) => say(&format!("{label} error {:?}", e.kind())),
                    }
                }
                say("end");
            }
            Err(e) => say(&format!("error {:?} {e}", e.kind())),
        }
    }

    /// Drops every privilege to `uid` (and the group of the same number); needs root.
    fn drop_to(uid: u32) {
        // SAFETY: plain system calls with integer/null arguments; a failure is reported.
        let dropped = unsafe {
            libc::setgroups(0, std::ptr::null()) == 0
                && libc::setgid(uid) == 0
                && libc::setuid(uid) == 0
        };
        if !dropped {
            fail(&format!(
                "cannot drop to uid {uid}: {}",
                io::Error::last_os_error()
            ));
        }
    }

    /// `uid-serve PATH UID`: drops to `UID` (needs root), binds `PATH` for every user and
    /// echoes, as another user's server planted in a shared directory would.
    fn uid_serve(path: &str, uid: u32) {
        drop_to(uid);
        let options = ListenerOptions::new()
            .access(Access::Everyone)
            .peer_policy(PeerPolicy::Any);
        let listener =
            Listener::bind(name(path), options).unwrap_or_else(|e| fail(&format!("bind: {e}")));
        say("ready");
        while let Ok(stream) = listener.accept() {
            std::thread::spawn(move || echo_bytes(&stream));
        }
    }

    /// `uid-connect PATH UID [--any-server]`: drops to `UID` (needs root), connects to `PATH`
    /// (checking the server's user unless `--any-server`) and reports `connect-error KIND`,
    /// `closed` (refused at accept) or `data`.
    fn uid_connect(path: &str, uid: u32, any_server: bool) {
        drop_to(uid);
        let options = ConnectOptions::new()
            .timeout(Duration::from_secs(5))
            .read_timeout(Some(Duration::from_secs(5)))
            .verify_server_user(!any_server);
        match Stream::connect(name(path), options) {
            Err(e) => say(&format!("connect-error {:?} {e}", e.kind())),
            Ok(stream) => {
                let _ = (&stream).write(b"hello");
                let mut buf = [0u8; 5];
                match (&stream).read(&mut buf) {
                    Ok(0) => say("closed"),
                    Ok(_) => say("data"),
                    Err(e) => match ringlink_unix::Error::from(e).kind() {
                        ringlink_unix::ErrorKind::PeerClosed => say("closed"),
                        kind => say(&format!("read-error {kind:?}")),
                    },
                }
            }
        }
    }
}
