//! 1,000 connections at once to a server in another process, driven from a single thread
//! with the nonblocking API (`try_read`/`try_write` + `poll` on the raw descriptors), the
//! way an event loop uses ringlink: no loss, no duplication, no reordering.
#![cfg(unix)]

use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ringlink_tests::{FNV_START, TempDir, TestChild, fnv1a, pattern_byte, raise_fd_limit};
use ringlink_unix::{ConnectOptions, ErrorKind, Stream};

const CHILD: &str = env!("CARGO_BIN_EXE_ringlink-test-child");
const CONNECTIONS: usize = 1000;
const BYTES_PER_CONNECTION: u64 = 48 * 1024;

struct Conn {
    stream: Stream,
    sent: u64,
    received: u64,
    sent_sum: u64,
    received_sum: u64,
}

#[test]
fn a_thousand_concurrent_connections_echo_with_checksums() {
    let limit = raise_fd_limit(4096);
    assert!(
        limit >= 2 * CONNECTIONS as u64 + 64,
        "need file descriptors for the test; soft limit is {limit}"
    );
    let dir = TempDir::new("many");
    let sock = dir.sock("s");
    let server = TestChild::spawn(CHILD, &["echo", sock.to_str().unwrap()]);
    server.wait_ready();

    let mut conns: Vec<Conn> = (0..CONNECTIONS)
        .map(|i| {
            let stream = Stream::connect(
                &sock,
                ConnectOptions::new()
                    .timeout(Duration::from_secs(20))
                    .nonblocking(true),
            )
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            Conn {
                stream,
                sent: 0,
                received: 0,
                sent_sum: FNV_START,
                received_sum: FNV_START,
            }
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = vec![0u8; 16 * 1024];
    let mut chunk = Vec::with_capacity(4096);
    let mut pollfds: Vec<libc::pollfd> = Vec::with_capacity(CONNECTIONS);
    let mut would_block = 0u64;
    loop {
        pollfds.clear();
        let mut index = Vec::with_capacity(CONNECTIONS);
        for (i, c) in conns.iter().enumerate() {
            if c.received < BYTES_PER_CONNECTION {
                let mut events = libc::POLLIN;
                if c.sent < BYTES_PER_CONNECTION {
                    events |= libc::POLLOUT;
                }
                pollfds.push(libc::pollfd {
                    fd: c.stream.as_raw_fd(),
                    events,
                    revents: 0,
                });
                index.push(i);
            }
        }
        if pollfds.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "echo of {CONNECTIONS} connections did not finish in time"
        );
        // SAFETY: `pollfds` is a live array of `len` initialised `pollfd`s.
        let ready =
            unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, 1000) };
        assert!(ready >= 0, "poll: {}", std::io::Error::last_os_error());
        for (pfd, &i) in pollfds.iter().zip(&index) {
            let c = &mut conns[i];
            let seed = i as u64;
            if pfd.revents & libc::POLLOUT != 0 {
                let len = (BYTES_PER_CONNECTION - c.sent).min(1 + (c.sent * 31 + seed) % 4096);
                chunk.clear();
                chunk.extend((c.sent..c.sent + len).map(|o| pattern_byte(seed, o)));
                match c.stream.try_write(&chunk) {
                    Ok(n) => {
                        c.sent_sum = fnv1a(c.sent_sum, &chunk[..n]);
                        c.sent += n as u64;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => would_block += 1,
                    Err(e) => panic!("connection {i}: write failed: {e}"),
                }
            }
            if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                loop {
                    match c.stream.try_read(&mut buf) {
                        Ok(0) => panic!("connection {i}: server closed after {} bytes", c.received),
                        Ok(n) => {
                            for (k, &b) in buf[..n].iter().enumerate() {
                                let at = c.received + k as u64;
                                assert_eq!(
                                    b,
                                    pattern_byte(seed, at),
                                    "connection {i}: byte {at} wrong"
                                );
                            }
                            c.received_sum = fnv1a(c.received_sum, &buf[..n]);
                            c.received += n as u64;
                            assert!(
                                c.received <= c.sent,
                                "connection {i}: more bytes back than sent"
                            );
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("connection {i}: read failed: {e}"),
                    }
                }
            }
        }
    }

    // Nothing extra arrives: after our end of stream, the echo ends too.
    for (i, c) in conns.iter().enumerate() {
        assert_eq!(c.received, BYTES_PER_CONNECTION);
        assert_eq!(c.sent_sum, c.received_sum, "connection {i}: checksum");
        c.stream.shutdown(Shutdown::Write).unwrap();
    }
    for (i, c) in conns.iter().enumerate() {
        c.stream.set_nonblocking(false).unwrap();
        c.stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let n = std::io::Read::read(&mut &c.stream, &mut buf)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        assert_eq!(n, 0, "connection {i}: duplicated bytes after the echo");
    }
    eprintln!(
        "{CONNECTIONS} connections x {BYTES_PER_CONNECTION} bytes echoed; {would_block} writes would have blocked"
    );
    drop(server);
}
