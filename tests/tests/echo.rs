//! Echo across processes in raw, framed and typed modes: what goes into a ringlink
//! connection comes back from a server in another process, complete and in order.
#![cfg(unix)]

use std::io::{Read, Write};
use std::time::Duration;

use ringlink_tests::{FNV_START, TempDir, TestChild, TestMessage, fnv1a, pattern_byte};
use ringlink_unix::{ConnectOptions, ErrorKind, FrameOptions, FramedStream, Stream};

const CHILD: &str = env!("CARGO_BIN_EXE_ringlink-test-child");

fn options() -> ConnectOptions {
    ConnectOptions::new()
        .timeout(Duration::from_secs(10))
        .read_timeout(Some(Duration::from_secs(20)))
        .write_timeout(Some(Duration::from_secs(20)))
}

#[test]
fn raw_echo_across_processes_returns_every_byte_in_order() {
    let dir = TempDir::new("echo-raw");
    let sock = dir.sock("s");
    let server = TestChild::spawn(CHILD, &["echo", sock.to_str().unwrap()]);
    server.wait_ready();

    let stream = Stream::connect(&sock, options()).unwrap();
    let total: u64 = 4 << 20;
    let writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut sent = FNV_START;
        let mut offset = 0u64;
        let mut chunk = Vec::new();
        while offset < total {
            // Uneven chunk sizes exercise partial reads and writes.
            let len = (1 + (offset % 7919)).min(total - offset);
            chunk.clear();
            chunk.extend((offset..offset + len).map(|i| pattern_byte(1, i)));
            (&writer).write_all(&chunk).unwrap();
            sent = fnv1a(sent, &chunk);
            offset += len;
        }
        sent
    });
    let mut received = FNV_START;
    let mut offset = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while offset < total {
        let n = (&stream).read(&mut buf).unwrap();
        assert_ne!(n, 0, "server closed early at byte {offset}");
        for (i, &b) in buf[..n].iter().enumerate() {
            assert_eq!(
                b,
                pattern_byte(1, offset + i as u64),
                "byte {} differs",
                offset + i as u64
            );
        }
        received = fnv1a(received, &buf[..n]);
        offset += n as u64;
    }
    assert_eq!(sender.join().unwrap(), received);
    let cred = stream.peer_credentials().unwrap();
    assert_eq!(
        cred.pid(),
        Some(server.pid()),
        "peer pid is the server child"
    );
}

#[test]
fn framed_echo_across_processes_and_oversized_frames_stay_per_connection() {
    let dir = TempDir::new("echo-framed");
    let sock = dir.sock("s");
    let server = TestChild::spawn(
        CHILD,
        &[
            "echo",
            sock.to_str().unwrap(),
            "--framed",
            "--max-frame",
            "65536",
        ],
    );
    server.wait_ready();

    // `a` plays a peer that ignores the limit by writing its socket, so it keeps its
    // frames there; `b` takes the default (shared memory, on Linux).
    let socket_only = FrameOptions::new().transports(ringlink_unix::Transports::SOCKET);
    let mut a = FramedStream::connect(&sock, options(), socket_only).unwrap();
    let mut b = FramedStream::connect(&sock, options(), FrameOptions::new()).unwrap();
    assert_eq!(
        a.peer_hello().max_frame,
        65536,
        "the server's limit arrives in its hello"
    );

    for len in [0usize, 1, 100, 127, 128, 4096, 65536] {
        let payload: Vec<u8> = (0..len as u64)
            .map(|i| pattern_byte(len as u64, i))
            .collect();
        a.send_frame(&payload).unwrap();
        assert_eq!(
            a.recv_frame().unwrap().unwrap(),
            &payload[..],
            "frame of {len} bytes"
        );
    }

    // Our sender refuses a frame over the peer's limit, without sending anything.
    let err = a.send_frame(&vec![0u8; 65537]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FrameTooLarge);
    a.send_frame(b"still fine").unwrap();
    assert_eq!(a.recv_frame().unwrap().unwrap(), b"still fine");

    // A peer that ignores the limit: the server skips the frame, says so, and both
    // this connection and the other one keep working.
    let mut header = [0u8; ringlink_core::frame::MAX_HEADER_LEN];
    let n = ringlink_core::frame::encode_len(70_000, &mut header);
    let mut raw = a.get_ref();
    raw.write_all(&header[..n]).unwrap();
    raw.write_all(&vec![9u8; 70_000]).unwrap();
    assert_eq!(a.recv_frame().unwrap().unwrap(), b"too-large");
    a.send_frame(b"after").unwrap();
    assert_eq!(a.recv_frame().unwrap().unwrap(), b"after");
    b.send_frame(b"other connection").unwrap();
    assert_eq!(b.recv_frame().unwrap().unwrap(), b"other connection");
}

#[test]
fn typed_echo_across_processes() {
    let dir = TempDir::new("echo-typed");
    let sock = dir.sock("s");
    let server = TestChild::spawn(CHILD, &["echo", sock.to_str().unwrap(), "--typed"]);
    server.wait_ready();

    let mut stream = FramedStream::connect(&sock, options(), FrameOptions::new()).unwrap();
    for seq in 0..200u64 {
        let data: Vec<u8> = (0..seq * 13).map(|i| pattern_byte(seq, i)).collect();
        stream
            .send(&TestMessage::Ping {
                seq,
                data: data.clone(),
                label: format!("message {seq}"),
            })
            .unwrap();
        let reply: TestMessage = stream.recv().unwrap().expect("a reply");
        let mut reversed = data;
        reversed.reverse();
        assert_eq!(
            reply,
            TestMessage::Pong {
                seq: seq + 1,
                data: reversed
            }
        );
    }
}

#[test]
fn framed_client_against_raw_server_is_a_protocol_mismatch_not_a_hang() {
    let dir = TempDir::new("echo-mismatch");
    let sock = dir.sock("s");
    let server = TestChild::spawn(CHILD, &["sink-server", sock.to_str().unwrap()]);
    server.wait_ready();
    let started = std::time::Instant::now();
    let err = FramedStream::connect(
        &sock,
        options(),
        FrameOptions::new().handshake_timeout(Duration::from_millis(300)),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProtocolMismatch, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
