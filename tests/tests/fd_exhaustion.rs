//! A server that runs out of file descriptors keeps listening: with `RLIMIT_NOFILE` 64
//! and far more clients than that, `accept` backs off without spinning, queued clients are
//! served as soon as descriptors are free, and new clients are served afterwards.
#![cfg(unix)]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use ringlink_tests::{TempDir, TestChild, raise_fd_limit};
use ringlink_unix::{ConnectOptions, Stream};

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
    if let (Some(before), Some(after)) = (cpu_before, server.cpu_time()) {
        let used = after.saturating_sub(before);
        assert!(
            used < Duration::from_millis(500),
            "accept spun while out of descriptors: {used:?} CPU in 1 s"
        );
        eprintln!("server CPU while out of descriptors: {used:?} in 1 s");
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
