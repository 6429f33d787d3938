//! A client that waits for its server, with a deadline, and says what went wrong the way
//! a user wants to hear it: what happened, what to do, and an exit code a script can test.
//!
//! ```text
//! cargo run --example wait_for_server [NAME] [SECONDS]
//! cargo run --example echo_server [NAME]          # within SECONDS, in another terminal
//! ```
//!
//! `NAME` defaults to `ringlink-echo-example`, `SECONDS` to 10. The client retries until a
//! server listens on the name or the deadline passes, then checks the server with one
//! echoed line (any echo server does, `echo_server` for one). Exit codes (BSD's
//! `sysexits.h`): 0 the server answered, 69 (`EX_UNAVAILABLE`) no server within the
//! deadline or it went away, 77 (`EX_NOPERM`) access denied, 64 (`EX_USAGE`) a bad name
//! or argument, 1 anything else.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ringlink::{ConnectOptions, Error, ErrorKind, Stream};

/// The name used when none is given.
const DEFAULT_NAME: &str = "ringlink-echo-example";

/// How long to wait for the server when no deadline is given.
const DEFAULT_SECONDS: u64 = 10;

/// What the client sends to see that the server answers.
const PING: &[u8] = b"ping\n";

/// Exit codes, from `sysexits.h`.
const EX_USAGE: u8 = 64;
const EX_UNAVAILABLE: u8 = 69;
const EX_NOPERM: u8 = 77;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| DEFAULT_NAME.to_string());
    let seconds = match args.next().map(|s| s.parse::<u64>()) {
        None => DEFAULT_SECONDS,
        Some(Ok(seconds)) => seconds,
        Some(Err(_)) => {
            eprintln!("usage: wait_for_server [NAME] [SECONDS]");
            return ExitCode::from(EX_USAGE);
        }
    };
    let deadline = Duration::from_secs(seconds);

    eprintln!("wait_for_server: waiting up to {seconds}s for a server on {name}");
    let started = Instant::now();
    match ping(&name, deadline) {
        Ok(()) => {
            println!(
                "wait_for_server: {name} answered after {:.2}s",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let (code, advice) = explain(&e, &name, seconds);
            eprintln!("wait_for_server: {advice}");
            eprintln!("wait_for_server: ({e})");
            ExitCode::from(code)
        }
    }
}

/// Connects within `deadline`, waiting for the server to appear, and checks that it echoes.
fn ping(name: &str, deadline: Duration) -> Result<(), Error> {
    let options = ConnectOptions::new()
        .timeout(deadline)
        .wait_for_server(true)
        .read_timeout(Some(Duration::from_secs(5)))
        .write_timeout(Some(Duration::from_secs(5)));
    let mut stream = Stream::connect(name, options)?;
    stream.write_all(PING)?;
    let mut reply = [0u8; PING.len()];
    stream.read_exact(&mut reply)?;
    if reply == PING {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::ProtocolMismatch,
            format!("sent {PING:?}, got {reply:?} back"),
        ))
    }
}

/// The exit code and the sentence for a user, by what went wrong (never by the message,
/// which is for people and may change).
fn explain(e: &Error, name: &str, seconds: u64) -> (u8, String) {
    match e.kind() {
        ErrorKind::TimedOut => (
            EX_UNAVAILABLE,
            format!(
                "no server answered on {name} within {seconds}s; start one with \
                 `cargo run --example echo_server {name}`, or wait longer"
            ),
        ),
        ErrorKind::ServerNotFound => (
            EX_UNAVAILABLE,
            format!("no server listens on {name}; start one and try again"),
        ),
        ErrorKind::ConnectionRefused => (
            EX_UNAVAILABLE,
            format!("the server of {name} died and left its name behind; restart it"),
        ),
        ErrorKind::PeerClosed => (
            EX_UNAVAILABLE,
            format!(
                "the server of {name} closed the connection (stopped, or at its connection \
                 limit); try again later"
            ),
        ),
        ErrorKind::ResourceExhausted => (
            EX_UNAVAILABLE,
            format!("the server of {name} or this system is out of resources; try again later"),
        ),
        ErrorKind::AccessDenied => (
            EX_NOPERM,
            format!(
                "access to {name} was denied: it is served by another user, or its directory \
                 is not private to you"
            ),
        ),
        ErrorKind::InvalidName => (
            EX_USAGE,
            format!("{name:?} cannot be a name here (empty, a separator, or too long)"),
        ),
        ErrorKind::ProtocolMismatch => (
            1,
            format!("something answers on {name}, but it is not an echo server"),
        ),
        _ => (1, format!("cannot reach the server of {name}")),
    }
}
