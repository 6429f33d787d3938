//! Connecting with a deadline: a missing server fails at once (`ServerNotFound`) or, when
//! asked to wait, after about the deadline (`TimedOut`); a server that appears in time is
//! reached; a full backlog ends at the deadline too. Upper bounds are generous because
//! the machine may be busy; lower bounds show the deadline was honoured, not skipped.
#![cfg(unix)]

use std::time::{Duration, Instant};

use ringlink_tests::{TempDir, TestChild};
use ringlink_unix::{
    ConnectOptions, ErrorKind, Listener, ListenerOptions, ListenerOptionsExt, Stream,
};

const CHILD: &str = env!("CARGO_BIN_EXE_ringlink-test-child");
const DEADLINE: Duration = Duration::from_millis(200);
const SLACK: Duration = Duration::from_secs(2);

#[test]
fn missing_server_without_waiting_is_server_not_found_at_once() {
    let dir = TempDir::new("ct-missing");
    let started = Instant::now();
    let err =
        Stream::connect(dir.sock("nobody"), ConnectOptions::new().timeout(DEADLINE)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ServerNotFound, "{err}");
    assert!(started.elapsed() < DEADLINE + SLACK);
    assert!(
        err.to_string().contains("nobody"),
        "the message names the path: {err}"
    );
}

#[test]
fn waiting_for_a_missing_server_times_out_after_the_deadline() {
    let dir = TempDir::new("ct-wait");
    let started = Instant::now();
    let err = Stream::connect(
        dir.sock("nobody"),
        ConnectOptions::new()
            .timeout(DEADLINE)
            .wait_for_server(true),
    )
    .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        took >= DEADLINE - Duration::from_millis(20),
        "gave up early: {took:?}"
    );
    assert!(took < DEADLINE + SLACK, "took {took:?}");
}

#[test]
fn a_stale_socket_is_connection_refused_or_a_timeout_when_waiting() {
    let dir = TempDir::new("ct-stale");
    let sock = dir.sock("s");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let err = Stream::connect(&sock, ConnectOptions::new().timeout(DEADLINE)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    let started = Instant::now();
    let err = Stream::connect(
        &sock,
        ConnectOptions::new()
            .timeout(DEADLINE)
            .wait_for_server(true),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(started.elapsed() < DEADLINE + SLACK);
}

#[test]
fn a_server_that_appears_before_the_deadline_is_reached() {
    let dir = TempDir::new("ct-late");
    let sock = dir.sock("s");
    let path = sock.clone();
    let connecting = std::thread::spawn(move || {
        Stream::connect(
            &path,
            ConnectOptions::new()
                .timeout(Duration::from_secs(20))
                .wait_for_server(true),
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let server = TestChild::spawn(CHILD, &["echo", sock.to_str().unwrap()]);
    server.wait_ready();
    let stream = connecting
        .join()
        .unwrap()
        .expect("connected once the server appeared");
    assert_eq!(stream.peer_credentials().unwrap().pid(), Some(server.pid()));
}

#[test]
fn a_full_backlog_ends_at_the_deadline() {
    let dir = TempDir::new("ct-backlog");
    let sock = dir.sock("s");
    let _listener = Listener::bind(&sock, ListenerOptions::new().backlog(1)).unwrap();
    let mut held = Vec::new();
    for _ in 0..64 {
        let started = Instant::now();
        match Stream::connect(&sock, ConnectOptions::new().timeout(DEADLINE)) {
            Ok(s) => held.push(s),
            Err(e) => {
                let took = started.elapsed();
                assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                assert!(
                    took >= DEADLINE - Duration::from_millis(20),
                    "gave up early: {took:?}"
                );
                assert!(took < DEADLINE + SLACK, "took {took:?}");
                return;
            }
        }
    }
    panic!(
        "{} connections fit in a backlog of 1 without accept",
        held.len()
    );
}
