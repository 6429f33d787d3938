//! `cargo xtask examples`: the programs of `examples/`, written once against the portable
//! API, built and run on every OS ringlink supports, so a signature or a behaviour that
//! differs between OSes fails the build (issue 12's "parity the build enforces").
//!
//! Parts, each runnable alone (`cargo xtask examples [linux|wine|check]...`):
//! - `linux`: built with `$CARGO` and run as a user runs them: the echo pair (words as
//!   arguments, then 64 KiB on standard input); `wait_for_server` with no server (it must
//!   wait out its deadline, then exit 69 saying no server answered) and with a server
//!   started once it waits; `typed_tokio` with [`TYPED_CLIENTS`] concurrent clients
//!   against a server in another process.
//! - `wine`: built for `x86_64-pc-windows-gnu` in the target directory `cargo xtask cross`
//!   builds the workspace in; the echo pair, `wait_for_server` (server started once it
//!   waits) and `typed_tokio` run under Wine (named pipes, tokio's named-pipe reactor).
//! - `check`: the library crates and the examples type-checked with `-D warnings` and all
//!   features for [`CHECK_TARGETS`] (macOS, FreeBSD) with Debian's cargo
//!   (`-Zbuild-std=std`, `cargo check`: no linking, so no SDK), in `cargo xtask cross`'s
//!   target directory.
//!
//! Every process runs with a deadline and is killed when its part ends, so nothing hangs CI.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::wine::{self, Wine};
use crate::{cargo, cmd, cross, target_dir};

/// A part: its name, and what it runs.
type Part = (&'static str, fn() -> Result<(), String>);

/// The parts, in order. One line per part.
#[rustfmt::skip]
const PARTS: &[Part] = &[
    ("linux", linux),
    ("check", check),
    ("wine", under_wine),
];

/// The targets type-checked without a linker (no SDK or sysroot here).
pub const CHECK_TARGETS: &[&str] = &[
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-unknown-freebsd",
];

/// The library packages (with their examples) type-checked for [`CHECK_TARGETS`].
const LIBRARIES: &[&str] = &[
    "ringlink",
    "ringlink-core",
    "ringlink-host",
    "ringlink-unix",
    "ringlink-windows",
];

/// Clients `typed_tokio client` runs at once.
const TYPED_CLIENTS: usize = 16;

/// Deadline `wait_for_server` gets when no server ever comes.
const NO_SERVER_SECONDS: u64 = 1;

/// Longest a server may take to say it listens (Wine starts slowly when cold).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest one client may run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes the echo pair exchanges through standard input.
const STDIN_ECHO_BYTES: usize = 64 * 1024;

/// Runs the task: `cargo xtask examples [linux|wine|check]...`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut chosen = Vec::new();
    for arg in args {
        match PARTS.iter().find(|(name, _)| name == arg) {
            Some(part) => chosen.push(part),
            None => {
                let names: Vec<&str> = PARTS.iter().map(|(name, _)| *name).collect();
                return Err(format!(
                    "usage: cargo xtask examples [{}]...",
                    names.join("|")
                ));
            }
        }
    }
    if chosen.is_empty() {
        chosen.extend(PARTS);
    }
    for (name, part) in chosen {
        let started = Instant::now();
        part().map_err(|e| format!("examples {name}: {e}"))?;
        println!(
            "examples: {name} ok in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// A unique name for one scenario of this run.
fn unique_name(what: &str) -> String {
    format!("ringlink-xtask-{what}-{}", std::process::id())
}

/// Builds the examples for Linux and runs them.
fn linux() -> Result<(), String> {
    cmd::run(cargo().args([
        "build",
        "--package",
        "ringlink",
        "--examples",
        "--features",
        "tokio",
    ]))?;
    let dir = target_dir().join("debug/examples");
    let example = |name: &str| Command::new(dir.join(name));
    echo_pair(&example, &unique_name("echo"), true)?;
    wait_without_server(&example)?;
    wait_then_serve(&example, &unique_name("wait"))?;
    typed_tokio(&example, &unique_name("typed"))
}

/// Builds the examples for Windows and runs them under Wine.
fn under_wine() -> Result<(), String> {
    cmd::run(wine::windows_cargo("build").args([
        "--package",
        "ringlink",
        "--examples",
        "--features",
        "tokio",
    ]))?;
    let wine = Wine::start()?;
    let dir = wine::windows_bin_dir().join("examples");
    let example = |name: &str| wine.command(&dir.join(format!("{name}.exe")));
    // Wine processes start slowly: one echo exchange, one wait and the tokio pair make the point.
    let result = echo_pair(&example, &unique_name("wine-echo"), false)
        .and_then(|()| wait_then_serve(&example, &unique_name("wine-wait")))
        .and_then(|()| typed_tokio(&example, &unique_name("wine-typed")));
    drop(wine);
    result
}

/// Type-checks the libraries and examples for [`CHECK_TARGETS`] with `-D warnings`.
fn check() -> Result<(), String> {
    let mut check = cross::debian_cargo("std");
    check
        .env("RUSTFLAGS", "-D warnings")
        .args(["check", "--lib", "--examples", "--all-features"]);
    for package in LIBRARIES {
        check.args(["--package", package]);
    }
    // One cargo run for every target: one build graph, the host's proc macros shared.
    for target in CHECK_TARGETS {
        check.args(["--target", target]);
    }
    cmd::run(&mut check)
}

/// `echo_server` in one process, `echo_client` in others: the words come back, and so do
/// [`STDIN_ECHO_BYTES`] sent through standard input when `stdin_too`.
fn echo_pair(example: &dyn Fn(&str) -> Command, name: &str, stdin_too: bool) -> Result<(), String> {
    let mut server = Process::spawn(example("echo_server").arg(name), "echo_server", b"", true)?;
    server.wait_for_line("listening on", READY_TIMEOUT)?;

    let words = ["hello", "from", "echo_client"];
    let done = Process::spawn(
        example("echo_client").arg(name).args(words),
        "echo_client",
        b"",
        false,
    )?
    .finish(CLIENT_TIMEOUT)?;
    done.expect_success()?;
    let expected = format!("{}\n", words.join(" "));
    if done.stdout_text() != expected {
        return Err(format!(
            "echo_client printed {:?}, expected {expected:?}",
            done.stdout_text()
        ));
    }
    println!("examples: echo_client got {expected:?} back");

    if stdin_too {
        let input: Vec<u8> = (0..STDIN_ECHO_BYTES)
            .map(|i| {
                if i % 64 == 63 {
                    b'\n'
                } else {
                    b'a' + (i % 26) as u8
                }
            })
            .collect();
        let done = Process::spawn(
            example("echo_client").arg(name),
            "echo_client <stdin",
            &input,
            false,
        )?
        .finish(CLIENT_TIMEOUT)?;
        done.expect_success()?;
        if done.stdout != input {
            return Err(format!(
                "echo_client echoed {} bytes of standard input wrongly ({} came back)",
                input.len(),
                done.stdout.len()
            ));
        }
        println!(
            "examples: echo_client got its {} bytes of standard input back",
            input.len()
        );
    }
    server.stop();
    Ok(())
}

/// `wait_for_server` with no server: it waits its deadline out, then fails the way the
/// example promises (exit 69, "no server answered"), and not much later.
fn wait_without_server(example: &dyn Fn(&str) -> Command) -> Result<(), String> {
    let name = unique_name("nobody");
    let seconds = NO_SERVER_SECONDS.to_string();
    let done = Process::spawn(
        example("wait_for_server").args([name.as_str(), &seconds]),
        "wait_for_server (no server)",
        b"",
        false,
    )?
    .finish(CLIENT_TIMEOUT)?;
    let deadline = Duration::from_secs(NO_SERVER_SECONDS);
    let slack = Duration::from_secs(5);
    if done.status.code() != Some(69) || !done.stderr.contains("no server answered") {
        return Err(format!(
            "wait_for_server with no server exited with {} and said {:?}; expected exit 69 \
             and \"no server answered\"",
            done.status, done.stderr
        ));
    }
    if done.elapsed < deadline.mul_f32(0.9) || done.elapsed > deadline + slack {
        return Err(format!(
            "wait_for_server with a {}s deadline gave up after {:.2}s",
            NO_SERVER_SECONDS,
            done.elapsed.as_secs_f64()
        ));
    }
    println!(
        "examples: wait_for_server without a server exited 69 after {:.2}s (deadline {}s)",
        done.elapsed.as_secs_f64(),
        NO_SERVER_SECONDS
    );
    Ok(())
}

/// `wait_for_server` first; once it says it waits, `echo_server`: the client connects
/// and exits 0.
fn wait_then_serve(example: &dyn Fn(&str) -> Command, name: &str) -> Result<(), String> {
    let mut client = Process::spawn(
        example("wait_for_server").args([name, "30"]),
        "wait_for_server",
        b"",
        true,
    )?;
    client.wait_for_line("waiting up to", READY_TIMEOUT)?;
    let mut server = Process::spawn(example("echo_server").arg(name), "echo_server", b"", true)?;
    let done = client.finish(CLIENT_TIMEOUT)?;
    server.stop();
    done.expect_success()?;
    println!("examples: wait_for_server found the server started after it");
    Ok(())
}

/// `typed_tokio server` in one process, `typed_tokio client` with [`TYPED_CLIENTS`]
/// concurrent clients in another.
fn typed_tokio(example: &dyn Fn(&str) -> Command, name: &str) -> Result<(), String> {
    let mut server = Process::spawn(
        example("typed_tokio").args(["server", name]),
        "typed_tokio server",
        b"",
        true,
    )?;
    server.wait_for_line("listening on", READY_TIMEOUT)?;
    let done = Process::spawn(
        example("typed_tokio").args(["client", name, &TYPED_CLIENTS.to_string()]),
        "typed_tokio client",
        b"",
        false,
    )?
    .finish(CLIENT_TIMEOUT)?;
    server.stop();
    done.expect_success()?;
    let expected = format!("{TYPED_CLIENTS} clients");
    if !done.stdout_text().contains(&expected) {
        return Err(format!(
            "typed_tokio client printed {:?}, expected a line with {expected:?}",
            done.stdout_text()
        ));
    }
    print!("examples: {}", done.stdout_text());
    Ok(())
}

/// A child process whose output is collected (and, for servers, shown as it comes), with a
/// watch for one line; killed when dropped.
struct Process {
    child: Child,
    what: String,
    started: Instant,
    stdin: Option<JoinHandle<()>>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    /// Each line of either output, as it arrives.
    lines: mpsc::Receiver<String>,
}

/// How a process ended.
struct Finished {
    what: String,
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
}

impl Process {
    /// Starts `cmd` with `input` on its standard input; `show` prints its lines as they come.
    fn spawn(cmd: &mut Command, what: &str, input: &[u8], show: bool) -> Result<Process, String> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        println!("$ {}", cmd::display(cmd));
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        let started = Instant::now();
        let (tx, lines) = mpsc::channel();
        let mut stdin = child.stdin.take();
        let input = input.to_vec();
        // Written by a thread, so a child that echoes while it reads cannot deadlock us.
        let stdin = std::thread::spawn(move || {
            if let Some(pipe) = stdin.as_mut() {
                let _ = pipe.write_all(&input);
            }
        });
        let stdout = child
            .stdout
            .take()
            .map(|s| collect(s, what, show, tx.clone()));
        let stderr = child.stderr.take().map(|s| collect(s, what, show, tx));
        Ok(Process {
            child,
            what: what.to_string(),
            started,
            stdin: Some(stdin),
            stdout,
            stderr,
            lines,
        })
    }

    /// Waits until a line containing `needle` appears, at most `timeout`.
    fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(()),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{} did not print {needle:?} within {}s",
                        self.what,
                        timeout.as_secs()
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                    return Err(format!(
                        "{} exited ({status}) before printing {needle:?}",
                        self.what
                    ));
                }
            }
        }
    }

    /// Waits for the process to exit, at most `timeout` (then kills it).
    fn finish(mut self, timeout: Duration) -> Result<Finished, String> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    self.stop();
                    return Err(format!(
                        "{} did not exit within {}s and was killed",
                        self.what,
                        timeout.as_secs()
                    ));
                }
                // A short poll: the exit time is part of what the no-server case checks.
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(format!("cannot wait for {}: {e}", self.what)),
            }
        };
        let elapsed = self.started.elapsed();
        let join =
            |h: Option<JoinHandle<Vec<u8>>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        if let Some(stdin) = self.stdin.take() {
            let _ = stdin.join();
        }
        let stdout = join(self.stdout.take());
        let stderr = String::from_utf8_lossy(&join(self.stderr.take())).into_owned();
        Ok(Finished {
            what: self.what.clone(),
            status,
            stdout,
            stderr,
            elapsed,
        })
    }

    /// Kills the process (a server that serves until stopped).
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Finished {
    fn expect_success(&self) -> Result<(), String> {
        if self.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed ({}): {}",
                self.what,
                self.status,
                self.stderr.trim()
            ))
        }
    }

    /// Standard output as text; Windows programs may end lines with `\r\n`.
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).replace("\r\n", "\n")
    }
}

/// Reads `pipe` to its end on a thread: every line goes to `lines` (and to our output when
/// `show`), and all bytes are returned.
fn collect(
    pipe: impl Read + Send + 'static,
    what: &str,
    show: bool,
    lines: mpsc::Sender<String>,
) -> JoinHandle<Vec<u8>> {
    let what = what.to_string();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut all = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    all.extend_from_slice(&line);
                    let text = String::from_utf8_lossy(&line).trim_end().to_string();
                    if show {
                        println!("  [{what}] {text}");
                    }
                    let _ = lines.send(text);
                }
            }
        }
        all
    })
}
