//! The `ringlink` command used as a newcomer would: `listen --echo` in one process,
//! `echo hi | ringlink connect` in another, then `probe`, `ls`, framed mode, a clear
//! failure for a missing server, and Ctrl-C removing the name. Then as an attacker
//! would: `listen` out of descriptors, out of threads, with its stderr closed, and
//! flooded with frame headers that claim 1 MiB each; `connect --framed` fed bytes that
//! are not UTF-8.
//!
//! (The integration test of the ringlink-cli package; it shares the helpers of ringlink-tests.)
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringlink_tests::{cannot_run, eventually, is_root, raise_fd_limit, set_fd_limit};

const RINGLINK: &str = env!("CARGO_BIN_EXE_ringlink");

/// A private runtime directory for plain names, removed on drop.
struct Runtime(PathBuf);

impl Runtime {
    fn new(tag: &str) -> Runtime {
        let dir = std::env::temp_dir().join(format!("rl-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        Runtime(dir)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(RINGLINK);
        cmd.env("XDG_RUNTIME_DIR", &self.0);
        cmd
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `ringlink listen` process whose stderr lines are collected; killed on drop.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The "listening on" line.
    banner: String,
}

impl Server {
    fn start(cmd: Command) -> Server {
        Server::try_start(cmd).unwrap()
    }

    /// Like [`start`](Self::start), giving back the error when the process cannot start.
    fn try_start(mut cmd: Command) -> std::io::Result<Server> {
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            child,
            lines,
            banner: String::new(),
        };
        server.banner = server.expect("listening on", Duration::from_secs(20));
        Ok(server)
    }

    fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!(
                    "`ringlink listen` never said {needle:?} (exit status: {:?})",
                    self.child.try_wait()
                ),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Whether the server process is still running.
    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Panics with the server's exit status and what it said if it is not running.
    fn assert_running(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            let said: Vec<String> = self.lines.try_iter().collect();
            let last = &said[said.len().saturating_sub(3)..];
            panic!("`ringlink listen` died {when}: {status}; its last words: {last:?}");
        }
    }
}

fn run_with_input(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!(
                "ringlink did not finish: {:?}",
                child.wait_with_output().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn echo_hi_through_listen_and_connect() {
    let rt = Runtime::new("echo");
    let mut listen = rt.command();
    listen.args(["listen", "demo", "--echo"]);
    let mut server = Server::start(listen);

    let mut connect = rt.command();
    connect.args(["connect", "demo"]);
    let out = run_with_input(connect, b"hi\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    let logged = server.expect("connection #1 from pid", Duration::from_secs(10));
    assert!(logged.contains(" pid "), "{logged}");

    let mut probe = rt.command();
    probe.args(["probe", "demo"]);
    let out = probe.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("live (pid {})", server.child.id())),
        "{text}"
    );

    let mut ls = rt.command();
    ls.arg("ls");
    let out = ls.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("demo") && l.contains("live")),
        "{text}"
    );
}

#[test]
fn framed_lines_come_back_as_lines() {
    let rt = Runtime::new("framed");
    let mut listen = rt.command();
    listen.args(["listen", "f", "--echo", "--framed"]);
    let _server = Server::start(listen);
    let mut connect = rt.command();
    connect.args(["connect", "f", "--framed"]);
    let out = run_with_input(connect, b"one\n\ntwo three\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n\ntwo three\n");
}

#[test]
fn connecting_to_a_missing_server_fails_clearly() {
    let rt = Runtime::new("missing");
    let mut connect = rt.command();
    connect.args(["connect", "nobody", "--timeout", "0.2"]);
    let out = run_with_input(connect, b"");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ringlink: error:") && err.contains("no ringlink server"),
        "{err}"
    );

    let mut probe = rt.command();
    probe.args(["probe", "nobody"]);
    assert_eq!(probe.output().unwrap().status.code(), Some(1));

    let mut wait = rt.command();
    wait.args(["connect", "nobody", "--wait", "--timeout", "0.2"]);
    let started = Instant::now();
    let out = run_with_input(wait, b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timed out"),
        "{out:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn ctrl_c_stops_the_server_and_removes_its_name() {
    let rt = Runtime::new("sigint");
    let mut listen = rt.command();
    listen.args(["listen", "gone"]);
    let mut server = Server::start(listen);
    let sock: &Path = &rt.0.join("ringlink").join("gone");
    assert!(sock.exists());
    let pid = server.child.id() as libc::pid_t;
    // SAFETY: plain system call; `pid` is our own live child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "listen did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(130));
    assert!(!sock.exists(), "the socket was removed");
    assert!(
        !rt.0.join("ringlink").join("gone.lock").exists(),
        "the lock file was removed"
    );
}

#[test]
fn help_explains_names() {
    let out = Command::new(RINGLINK).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for word in ["listen", "connect", "probe", "ls", "XDG_RUNTIME_DIR"] {
        assert!(text.contains(word), "--help mentions {word}: {text}");
    }
    let out = Command::new(RINGLINK)
        .args(["listen", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--qt") && text.contains("--echo") && text.contains("--framed"),
        "{text}"
    );
}

const QT_ECHO_SERVER: &str = r#"
import sys
from PyQt5.QtCore import QCoreApplication, QTimer
from PyQt5.QtNetwork import QLocalServer
app = QCoreApplication(sys.argv)
server = QLocalServer()
if not server.listen(sys.argv[1]):
    print("error", server.errorString(), flush=True)
    sys.exit(1)
print("listening", server.fullServerName(), flush=True)
conns = []
def on_new():
    s = server.nextPendingConnection()
    conns.append(s)
    s.readyRead.connect(lambda: s.write(s.readAll()))
server.newConnection.connect(on_new)
QTimer.singleShot(20000, app.quit)
app.exec_()
"#;

const QT_CLIENT: &str = r#"
import sys
from PyQt5.QtCore import QCoreApplication
from PyQt5.QtNetwork import QLocalSocket
app = QCoreApplication(sys.argv)
s = QLocalSocket()
s.connectToServer(sys.argv[1])
if not s.waitForConnected(5000):
    print("error", s.errorString(), flush=True)
    sys.exit(1)
s.write(b"hello from Qt\n")
s.waitForBytesWritten(5000)
data = b""
while len(data) < 14 and s.waitForReadyRead(5000):
    data += bytes(s.readAll())
sys.stdout.write(data.decode())
"#;

/// A Python with PyQt5's QtNetwork, if this machine has one.
fn python_with_qt() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|python| {
        Command::new(python)
            .args([
                "-c",
                "from PyQt5.QtNetwork import QLocalServer, QLocalSocket",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[test]
fn qt_local_sockets_and_ringlink_talk_both_ways() {
    let Some(python) = python_with_qt() else {
        cannot_run(
            "qt_local_sockets_and_ringlink_talk_both_ways",
            "no python3 with PyQt5 (`cargo xtask setup` installs python3-pyqt5)",
        );
        return;
    };
    // Qt and ringlink resolve `--qt` names in $TMPDIR; give both the same private one.
    let rt = Runtime::new("qt");
    std::fs::write(rt.0.join("server.py"), QT_ECHO_SERVER).unwrap();
    std::fs::write(rt.0.join("client.py"), QT_CLIENT).unwrap();

    // A Qt server, a ringlink client.
    let mut qt = Command::new(python);
    qt.arg(rt.0.join("server.py"))
        .arg("qtname")
        .env("TMPDIR", &rt.0);
    let mut qt = qt.stdout(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(qt.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(
        first.trim(),
        format!("listening {}", rt.0.join("qtname").display())
    );
    let mut connect = rt.command();
    connect
        .args(["connect", "qtname", "--qt"])
        .env("TMPDIR", &rt.0);
    let out = run_with_input(connect, b"hi from ringlink\n");
    let _ = qt.kill();
    let _ = qt.wait();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi from ringlink\n");

    // A ringlink server, a Qt client.
    let mut listen = rt.command();
    listen
        .args(["listen", "rlname", "--qt", "--echo"])
        .env("TMPDIR", &rt.0);
    let mut server = Server::start(listen);
    let mut client = Command::new(python);
    client
        .arg(rt.0.join("client.py"))
        .arg("rlname")
        .env("TMPDIR", &rt.0);
    let out = run_with_input(client, b"");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from Qt\n");
    server.expect("closed (14 bytes in, 14 out)", Duration::from_secs(10));
}

/// A raw client of the plain name `name` in `rt`: attacker code, no ringlink inside.
fn raw_client(rt: &Runtime, name: &str) -> UnixStream {
    let c = UnixStream::connect(rt.0.join("ringlink").join(name)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

fn echo_ok(c: &mut UnixStream, byte: u8) {
    c.write_all(&[byte]).unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    assert_eq!(b[0], byte);
}

/// Whether a client's connection was closed by the server (end of stream or reset).
fn closed_by_server(c: &mut UnixStream) -> bool {
    match c.read(&mut [0u8; 1]) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

/// Starts `cmd` with at most `n` descriptors (soft and hard limit).
fn with_fd_limit(cmd: &mut Command, n: u64) {
    // SAFETY: runs between fork and exec and only calls `setrlimit`, which is
    // async-signal-safe and allocates nothing.
    unsafe { cmd.pre_exec(move || set_fd_limit(n)) };
}

#[test]
fn listen_keeps_serving_through_descriptor_exhaustion() {
    raise_fd_limit(4096);
    let rt = Runtime::new("nofile");
    let mut listen = rt.command();
    // A limit above the descriptors, so the server really runs out of them.
    listen.args(["listen", "n", "--echo", "--max-connections", "1000"]);
    with_fd_limit(&mut listen, 64);
    let mut server = Server::start(listen);

    let mut clients: Vec<UnixStream> = (0..150).map(|_| raw_client(&rt, "n")).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(&[i as u8]).unwrap();
    }
    let mut b = [0u8; 1];
    clients[0].read_exact(&mut b).unwrap();
    // Out of descriptors with ~90 clients queued, `listen` goes through several of its
    // 200 ms accept rounds: each one must end as a plain timeout, not a fatal error.
    std::thread::sleep(Duration::from_secs(1));
    server.assert_running("while out of descriptors");
    let last = clients.last().unwrap();
    last.set_nonblocking(true).unwrap();
    assert!(
        (&*last).read(&mut [0u8; 1]).is_err(),
        "the last client cannot have been served yet"
    );
    last.set_nonblocking(false).unwrap();

    // Free descriptors: the queued clients are served, then new ones.
    let mut rest = clients.split_off(100);
    drop(clients);
    let started = Instant::now();
    for (k, c) in rest.iter_mut().enumerate() {
        let mut b = [0u8; 1];
        c.read_exact(&mut b)
            .unwrap_or_else(|e| panic!("queued client {} not served: {e}", 100 + k));
        assert_eq!(b[0], (100 + k) as u8);
    }
    eprintln!(
        "queued clients served {:?} after descriptors were freed",
        started.elapsed()
    );
    drop(rest);
    echo_ok(&mut raw_client(&rt, "n"), 42);
    server.assert_running("after descriptors were freed");
}

#[test]
fn listen_caps_connections_below_its_descriptor_limit() {
    let rt = Runtime::new("cap");
    let mut listen = rt.command();
    listen.args(["listen", "c", "--echo"]);
    with_fd_limit(&mut listen, 64);
    let mut server = Server::start(listen);
    assert!(
        server.banner.contains("at most 48 connections"),
        "{}",
        server.banner
    );
    // Clients over the cap are refused at once instead of waiting for descriptors.
    let mut clients: Vec<UnixStream> = (0..60).map(|_| raw_client(&rt, "c")).collect();
    for (i, c) in clients.iter_mut().take(48).enumerate() {
        echo_ok(c, i as u8);
    }
    for (i, c) in clients.iter_mut().enumerate().skip(48) {
        assert!(closed_by_server(c), "client {i} over the cap is refused");
    }
    server.expect("refused 12 connection(s)", Duration::from_secs(10));
    server.assert_running("at its connection cap");
}

#[test]
fn a_connection_without_a_thread_is_refused_and_listen_goes_on() {
    let rt = Runtime::new("nproc");
    let mut listen = rt.command();
    listen.args(["listen", "t", "--echo", "--access", "everyone"]);
    let nproc = |n: u64| {
        let lim = libc::rlimit {
            rlim_cur: n as libc::rlim_t,
            rlim_max: n as libc::rlim_t,
        };
        // SAFETY: `lim` is a live, initialised `rlimit`.
        match unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &lim) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    };
    // How many connection threads can start.
    let threads = if is_root() {
        // Root ignores RLIMIT_NPROC: run `listen` as a user id of its own, which has no
        // other process, so a limit of 2 leaves room for one connection thread.
        let uid = 61_000 + std::process::id() % 4_000;
        std::os::unix::fs::chown(&rt.0, Some(uid), Some(uid)).unwrap();
        // SAFETY: runs between fork and exec and only makes system calls that are
        // async-signal-safe and allocate nothing.
        unsafe {
            listen.pre_exec(move || {
                nproc(2)?;
                let ok = libc::setgroups(0, std::ptr::null()) == 0
                    && libc::setgid(uid) == 0
                    && libc::setuid(uid) == 0;
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            })
        };
        1
    } else {
        // Every process of this user counts, so with a limit of 1 no thread can start.
        // SAFETY: as above.
        unsafe { listen.pre_exec(move || nproc(1)) };
        0
    };
    let mut server = match Server::try_start(listen) {
        Ok(server) => server,
        Err(e) => {
            return cannot_run(
                "a_connection_without_a_thread_is_refused_and_listen_goes_on",
                &format!("cannot start `ringlink listen` under another user or RLIMIT_NPROC: {e}"),
            );
        }
    };
    let mut served: Vec<UnixStream> = (0..threads).map(|_| raw_client(&rt, "t")).collect();
    for (i, c) in served.iter_mut().enumerate() {
        echo_ok(c, i as u8);
    }
    for _ in 0..3 {
        let mut refused = raw_client(&rt, "t");
        assert!(closed_by_server(&mut refused), "no thread, no service");
        server.expect("cannot start a thread", Duration::from_secs(10));
        server.assert_running("after a thread could not start");
    }
    if threads > 0 {
        // Once a connection ends its thread is gone, and the next client is served.
        drop(served);
        let again = eventually(Duration::from_secs(10), || {
            let mut c = raw_client(&rt, "t");
            c.write_all(&[7]).ok()?;
            let mut b = [0u8; 1];
            c.read_exact(&mut b).ok().filter(|_| b[0] == 7)
        });
        assert!(again.is_some(), "a client is served once a thread is free");
    }
    server.assert_running("at the end");
}

#[test]
fn a_closed_stderr_never_stops_listen() {
    let rt = Runtime::new("stderr");
    let mut listen = rt.command();
    listen.args(["listen", "e", "--echo"]);
    let mut child = listen
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    // Read one line and close the pipe, as `ringlink listen 2>&1 | head -1` does.
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let (_, lines) = mpsc::channel();
    let mut server = Server {
        child,
        lines,
        banner: first,
    };
    assert!(server.banner.contains("listening on"), "{}", server.banner);
    for i in 0..3 {
        // Each connection is logged twice, into the closed pipe.
        echo_ok(&mut raw_client(&rt, "e"), i);
    }
    server.assert_running("with its stderr closed");
    assert!(server.is_running());
}

/// How many threads of `pid` are blocked in `recvfrom(2)`, from `/proc` (Linux).
fn threads_receiving(pid: u32) -> Option<usize> {
    let mut n = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let call = std::fs::read_to_string(task.ok()?.path().join("syscall")).ok()?;
        let number: i64 = call.split_whitespace().next()?.parse().unwrap_or(-1);
        n += usize::from(number == libc::SYS_recvfrom);
    }
    Some(n)
}

/// Resident memory of `pid` in KiB, from `/proc` (Linux).
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Opens 1000 connections to `ringlink listen` started with `args`, each sending
/// `attack` and then nothing, and checks the server stays far below 64 MiB resident once
/// every connection waits for more (about 30 MiB: a thread and a small buffer each).
fn a_thousand_idle_connections_cost_little(check: &str, args: &[&str], attack: &[u8]) {
    const CLIENTS: usize = 1000;
    const LIMIT_KIB: u64 = 64 * 1024;
    if raise_fd_limit(4096) < 2 * CLIENTS as u64 + 100 {
        return cannot_run(
            check,
            "the descriptor limit is too low for 1000 connections",
        );
    }
    let rt = Runtime::new("rss");
    let mut listen = rt.command();
    listen.arg("listen").arg("m").args(args);
    let mut server = Server::start(listen);
    let pid = server.child.id();
    if threads_receiving(pid).is_none() || resident_kib(pid).is_none() {
        return cannot_run(check, "no /proc/<pid>/task/*/syscall or VmRSS here");
    }
    let base = resident_kib(pid).unwrap();
    let mut clients = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let mut c = raw_client(&rt, "m");
        c.write_all(attack).unwrap();
        clients.push(c);
        if i % 100 == 99 {
            let rss = resident_kib(pid).unwrap();
            assert!(
                rss < LIMIT_KIB,
                "{rss} KiB resident after {} connections: memory follows what peers claim",
                i + 1
            );
        }
    }
    // Once every connection's thread waits for more bytes, it has taken whatever memory
    // it takes for what it got; a server over the bound fails at once.
    let settled = eventually(Duration::from_secs(30), || {
        let rss = resident_kib(pid)?;
        let waiting = threads_receiving(pid)?;
        (rss >= LIMIT_KIB || waiting >= CLIENTS).then_some((rss, waiting))
    });
    let Some((rss, waiting)) = settled else {
        panic!(
            "only {:?} of {CLIENTS} connections reached their wait",
            threads_receiving(pid)
        );
    };
    eprintln!(
        "listen {args:?}: {base} KiB resident before, {rss} KiB with {waiting} of {CLIENTS} connections waiting"
    );
    assert!(
        rss < LIMIT_KIB,
        "{rss} KiB resident with {waiting} connections waiting: memory follows what peers claim, not what they sent"
    );
    let rss = resident_kib(pid).unwrap();
    assert!(
        rss < LIMIT_KIB,
        "{rss} KiB resident once all connections wait"
    );
    server.assert_running("under the flood");
    drop(clients);
}

#[test]
fn frame_headers_that_claim_a_mebibyte_cost_listen_nothing() {
    // The payload of the claimed 1 MiB frame never comes.
    let attack = hello_and_mebibyte_header();
    assert_eq!(attack.len(), 16 + 3);
    a_thousand_idle_connections_cost_little(
        "frame_headers_that_claim_a_mebibyte_cost_listen_nothing",
        &["--framed"],
        &attack,
    );
}

#[test]
fn framed_connect_sends_lines_that_are_not_utf8_as_they_are() {
    let rt = Runtime::new("bytes");
    let mut listen = rt.command();
    listen.args(["listen", "b", "--echo", "--framed"]);
    let _server = Server::start(listen);
    let mut connect = rt.command();
    connect.args(["connect", "b", "--framed"]);
    let input = b"caf\xe9\n\xff\xfe binary\r\nlast\n";
    let out = run_with_input(connect, input);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"caf\xe9\n\xff\xfe binary\nlast\n");

    // A line over the server's frame limit is not sent, and the exit status says so.
    let mut connect = rt.command();
    connect.args(["connect", "b", "--framed"]);
    let mut input = b"before\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', (1 << 20) + 1));
    input.extend_from_slice(b"\nafter\n");
    let out = run_with_input(connect, &input);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(out.stdout, b"before\nafter\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1048577 bytes is over the server's frame limit"),
        "{err}"
    );
}

/// A ringlink hello (magic, version 1, max frame 1 MiB, socket transport) followed by the
/// header of a 1 MiB frame, as a hostile framed client sends it before its payload.
fn hello_and_mebibyte_header() -> Vec<u8> {
    let mut attack = b"RLNK\x01\0\0\0".to_vec();
    attack.extend_from_slice(&(1u32 << 20).to_le_bytes());
    attack.extend_from_slice(&1u32.to_le_bytes());
    let mut header = [0u8; ringlink::core::frame::MAX_HEADER_LEN];
    let n = ringlink::core::frame::encode_len(1 << 20, &mut header);
    attack.extend_from_slice(&header[..n]);
    attack
}

/// Whether a fresh client of `name` is served (one byte echoed) rather than closed at
/// the connection limit. Framed servers get a hello and a one-byte frame.
fn served(rt: &Runtime, name: &str, framed: bool) -> bool {
    let Ok(mut c) = UnixStream::connect(rt.0.join("ringlink").join(name)) else {
        return false;
    };
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut expect = vec![7u8];
    if framed {
        let mut hello = hello_and_mebibyte_header();
        hello.truncate(16);
        let _ = c.write_all(&hello);
        let mut peer_hello = [0u8; 16];
        if c.read_exact(&mut peer_hello).is_err() {
            return false;
        }
        expect = vec![1, 7];
    }
    if c.write_all(&expect).is_err() {
        return false;
    }
    let mut got = vec![0u8; expect.len()];
    c.read_exact(&mut got).is_ok() && got == expect
}

#[test]
fn peers_that_go_quiet_or_trickle_cannot_hold_every_slot_of_listen() {
    const SLOTS: usize = 4;
    for framed in [false, true] {
        let rt = Runtime::new(if framed { "trickle" } else { "quiet" });
        let mut listen = rt.command();
        listen.args(["listen", "q", "--echo", "--idle-timeout", "0.5"]);
        listen.args(["--max-connections", &SLOTS.to_string()]);
        if framed {
            listen.arg("--framed");
        }
        let mut server = Server::start(listen);
        // Raw attackers connect and say nothing (in raw mode every byte is data, so one
        // that trickles is a client in use); framed ones send a hello and a header
        // claiming 1 MiB, then trickle its payload a byte every 50 ms, so no read ever
        // waits long and only a bound on the whole frame ends them.
        let mut attackers: Vec<UnixStream> = (0..SLOTS).map(|_| raw_client(&rt, "q")).collect();
        for (i, c) in attackers.iter_mut().enumerate() {
            if framed {
                c.write_all(&hello_and_mebibyte_header()).unwrap();
            }
            server.expect(
                &format!("connection #{} from", i + 1),
                Duration::from_secs(10),
            );
        }
        let started = Instant::now();
        let (stop_tx, stop) = mpsc::channel::<()>();
        let trickler = std::thread::spawn(move || {
            while stop.recv_timeout(Duration::from_millis(50))
                == Err(mpsc::RecvTimeoutError::Timeout)
            {
                if framed {
                    for c in &mut attackers {
                        let _ = c.write_all(b"x");
                    }
                }
            }
            drop(attackers);
        });
        let ok = eventually(Duration::from_secs(5), || {
            served(&rt, "q", framed).then_some(())
        });
        let waited = started.elapsed();
        drop(stop_tx);
        trickler.join().unwrap();
        server.assert_running("under quiet and trickling peers");
        assert!(
            ok.is_some(),
            "framed {framed}: {SLOTS} peers that send nothing, or trickle one frame, kept every connection slot of `ringlink listen --idle-timeout 0.5` for {waited:?}"
        );
        eprintln!("framed {framed}: a good client was served {waited:?} after the slots filled");
    }
}

#[test]
fn names_with_control_characters_are_refused_in_every_form() {
    let rt = Runtime::new("ctl");
    // A newline, an escape and a C1 control (U+009B, a terminal's CSI), as a plain
    // name, a path, a Qt name and a Linux abstract name: each would forge lines in
    // listen's log or in `ls`.
    for bad in ["a\nb", "a\u{1b}[2Jb", "a\u{9b}2Jb"] {
        let path = rt.0.join(bad);
        let path = path.to_str().unwrap();
        let mut forms = vec![vec![bad], vec![path], vec![bad, "--qt"]];
        if cfg!(target_os = "linux") {
            forms.push(vec![bad, "--abstract"]);
        }
        for form in forms {
            let mut listen = rt.command();
            listen.arg("listen").args(&form);
            let mut child = listen
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // A listen that accepted the name would run forever: bound the wait.
            let status = eventually(Duration::from_secs(20), || child.try_wait().unwrap());
            if status.is_none() {
                let _ = child.kill();
            }
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                status.and_then(|s| s.code()),
                Some(1),
                "listen {form:?}: {err}"
            );
            assert!(err.contains("control character"), "listen {form:?}: {err}");
            assert!(!err.contains("listening on"), "listen {form:?}: {err}");
        }
    }
}

#[test]
fn probe_says_occupied_where_a_planted_lock_makes_listen_refuse() {
    let rt = Runtime::new("lockprobe");
    let dir = rt.0.join("ringlink");
    std::fs::create_dir(&dir).unwrap();
    std::fs::create_dir(dir.join("d.lock")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/ringlink-target", dir.join("s.lock")).unwrap();
    for name in ["d", "s"] {
        let mut listen = rt.command();
        listen.args(["listen", name]);
        let out = run_with_input(listen, b"");
        assert_eq!(out.status.code(), Some(1), "listen {name}: {out:?}");
        let mut probe = rt.command();
        probe.args(["probe", name]);
        let out = run_with_input(probe, b"");
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "probe {name}: {out:?}");
        assert!(
            said.contains("occupied"),
            "probe {name} must agree with listen, which refuses the name: {said}"
        );
    }
    assert!(
        std::fs::symlink_metadata(dir.join("s.lock"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the planted link is left alone"
    );
}
