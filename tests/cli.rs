//! The `ringlink` command used as a newcomer would: `listen --echo` in one process,
//! `echo hi | ringlink connect` in another, then `probe`, `ls`, framed mode, a clear
//! failure for a missing server, and Ctrl-C removing the name.
//!
//! (An integration test of the facade package, kept with the other cross-process tests.)
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
}

impl Server {
    fn start(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let server = Server { child, lines };
        server.expect("listening on", Duration::from_secs(20));
        server
    }

    fn expect(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!("`ringlink listen` never said {needle:?}"),
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
    let server = Server::start(listen);

    let mut connect = rt.command();
    connect.args(["connect", "demo"]);
    let out = run_with_input(connect, b"hi\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    let logged = server.expect("connection #1 from uid", Duration::from_secs(10));
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
        eprintln!(
            "SKIPPED qt_local_sockets_and_ringlink_talk_both_ways: no python3 with PyQt5 (apt install python3-pyqt5)"
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
    let server = Server::start(listen);
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
