//! A server that runs out of file descriptors keeps listening: with `RLIMIT_NOFILE` 64
//! and far more clients than that, `accept` backs off without spinning, queued clients are
//! served as soon as descriptors are free, and new clients are served afterwards; and
//! `accept_timeout` keeps its promise there: its deadline is `TimedOut`, not a failure.
#![cfg(unix)]

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use ringlink_tests::{TempDir, TestChild, cannot_run, raise_fd_limit, set_fd_limit};
use ringlink_unix::{ConnectOptions, ErrorKind, Listener, ListenerOptions, Stream};

const CHILD: &str = env!("CARGO_BIN_EXE_ringlink-test-child");
const CLIENTS: usize = 150;

fn options() -> ConnectOptions {
    ConnectOptions::new()
        .timeout(Duration::from_secs(10))
        .read_timeout(Some(Duration::from_secs(20)))
        .write_timeout(Some(Duration::from_secs(20)))
}

fn echo_ok(stream: &Stream, byte: u8) {
    (&*stream).write_all(&[byte]).unwrap();
    let mut b = [0u8; 1];
    (&*stream).read_exact(&mut b).unwrap();
    assert_eq!(b[0], byte);
}

#[test]
fn a_server_out_of_descriptors_keeps_serving_once_they_close() {
    raise_fd_limit(4096);
    let dir = TempDir::new("nofile");
    let sock = dir.sock("s");
    let server = TestChild::spawn(CHILD, &["echo", sock.to_str().unwrap(), "--nofile", "64"]);
    server.wait_ready();

    let mut clients: Vec<Stream> = (0..CLIENTS)
        .map(|_| Stream::connect(&sock, options()).unwrap())
        .collect();
    for (i, c) in clients.iter().enumerate() {
        (&*c).write_all(&[i as u8]).unwrap();
    }
    // The first clients are served; the server then hits EMFILE with the rest queued.
    let mut b = [0u8; 1];
    (&clients[0]).read_exact(&mut b).unwrap();
    assert_eq!(b[0], 0);
    let cpu_before = server.cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    match (cpu_before, server.cpu_time()) {
        (Some(before), Some(after)) => {
            let used = after.saturating_sub(before);
            assert!(
                used < Duration::from_millis(500),
                "accept spun while out of descriptors: {used:?} CPU in 1 s"
            );
            eprintln!("server CPU while out of descriptors: {used:?} in 1 s");
        }
        _ => cannot_run(
            "fd_exhaustion: accept does not spin while out of descriptors",
            "the server's CPU time cannot be read from /proc/<pid>/stat here",
        ),
    }
    // The last client is still queued: no answer yet.
    let last = clients.last().unwrap();
    last.set_nonblocking(true).unwrap();
    assert!(
        last.try_read(&mut [0u8; 1]).is_err(),
        "the last client cannot have been served yet"
    );
    last.set_nonblocking(false).unwrap();

    // Free descriptors: close the first 100 clients; the queued ones get served.
    let rest = clients.split_off(100);
    drop(clients);
    let started = Instant::now();
    for (k, c) in rest.iter().enumerate() {
        let i = 100 + k;
        let mut b = [0u8; 1];
        (&*c)
            .read_exact(&mut b)
            .unwrap_or_else(|e| panic!("queued client {i} not served: {e}"));
        assert_eq!(b[0], i as u8);
    }
    eprintln!(
        "queued clients served {:?} after descriptors were freed",
        started.elapsed()
    );
    drop(rest);

    // And the server takes new clients.
    let fresh = Stream::connect(&sock, options()).unwrap();
    echo_ok(&fresh, 42);
}

/// Set in the environment of the copy of this test binary that runs out of descriptors
/// (the limit is per process, so it gets a process of its own).
const EXHAUSTED_CHILD: &str = "RINGLINK_TEST_OUT_OF_DESCRIPTORS";
const TIMED_OUT: &str = "accept_timeout while out of descriptors: TimedOut";

#[test]
fn accept_timeout_times_out_while_out_of_descriptors() {
    let me = "accept_timeout_times_out_while_out_of_descriptors";
    if std::env::var_os(EXHAUSTED_CHILD).is_some() {
        return accept_timeout_out_of_descriptors();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", me, "--nocapture", "--test-threads", "1"])
        .env(EXHAUSTED_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains(TIMED_OUT),
        "the process out of descriptors failed: {}\n{stdout}\n{stderr}",
        out.status
    );
}

/// In its own process: a queued connection, no descriptor left to take it, and
/// `accept_timeout` must end with `TimedOut` at its deadline, then accept the connection
/// once descriptors are free.
fn accept_timeout_out_of_descriptors() {
    let dir = TempDir::new("emfile");
    let sock = dir.sock("s");
    let listener = Listener::bind(&sock, ListenerOptions::new()).unwrap();
    let _queued = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    // Room for what is open already (the harness may pass some on), then nothing more.
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    set_fd_limit(64.max(open + 16)).unwrap();
    let mut hoard = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        hoard.push(file);
    }
    let started = Instant::now();
    let err = listener
        .accept_timeout(Duration::from_millis(300))
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    drop(hoard);
    listener
        .accept_timeout(Duration::from_secs(5))
        .expect("the queued connection, once descriptors are free");
    eprintln!("{TIMED_OUT} after {waited:?}, then served");
}
