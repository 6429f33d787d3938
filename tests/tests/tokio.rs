//! The tokio API across processes: a tokio echo server in a child, hundreds of concurrent
//! tokio clients in raw and framed mode, each checking every byte it gets back.
#![cfg(unix)]

use std::time::Duration;

use ringlink_tests::{FNV_START, TempDir, TestChild, fnv1a, pattern_byte, raise_fd_limit};
use ringlink_unix::tokio::{FramedStream, Stream};
use ringlink_unix::{ConnectOptions, ErrorKind, FrameOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHILD: &str = env!("CARGO_BIN_EXE_ringlink-test-child");
const CLIENTS: u64 = 300;

fn connect_options() -> ConnectOptions {
    ConnectOptions::new().timeout(Duration::from_secs(20))
}

#[tokio::test]
async fn concurrent_raw_tokio_clients_against_a_tokio_server() {
    raise_fd_limit(4096);
    let dir = TempDir::new("tokio-raw");
    let sock = dir.sock("s");
    let server = TestChild::spawn(CHILD, &["echo-tokio", sock.to_str().unwrap()]);
    server.wait_ready();
    let mut tasks = Vec::new();
    for id in 0..CLIENTS {
        let sock = sock.clone();
        tasks.push(tokio::spawn(async move {
            let stream = Stream::connect(&sock, connect_options()).await.unwrap();
            let (mut r, mut w) = stream.into_split();
            let len = 20_000 + id * 97;
            let data: Vec<u8> = (0..len).map(|i| pattern_byte(id, i)).collect();
            let sent = fnv1a(FNV_START, &data);
            let writer = tokio::spawn(async move {
                for chunk in data.chunks(1 + (id as usize % 3000)) {
                    w.write_all(chunk).await.unwrap();
                }
                w // dropping the write half would end the echo early
            });
            let mut back = vec![0u8; len as usize];
            r.read_exact(&mut back).await.unwrap();
            drop(writer.await.unwrap());
            assert!(
                back.iter()
                    .enumerate()
                    .all(|(i, &b)| b == pattern_byte(id, i as u64)),
                "client {id}"
            );
            // After our end of stream, the echo ends too: nothing duplicated.
            assert_eq!(r.read(&mut [0u8; 1]).await.unwrap(), 0, "client {id}");
            assert_eq!(fnv1a(FNV_START, &back), sent);
        }));
    }
    let all = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("clients finished in time");
}

#[tokio::test]
async fn framed_tokio_clients_against_a_tokio_server() {
    let dir = TempDir::new("tokio-framed");
    let sock = dir.sock("s");
    let server = TestChild::spawn(CHILD, &["echo-tokio", sock.to_str().unwrap(), "--framed"]);
    server.wait_ready();
    let mut tasks = Vec::new();
    for id in 0..50u64 {
        let sock = sock.clone();
        tasks.push(tokio::spawn(async move {
            let mut f = FramedStream::connect(&sock, connect_options(), FrameOptions::new())
                .await
                .unwrap();
            for seq in 0..40u64 {
                let len = (seq * 517 + id) % 20_000;
                let frame: Vec<u8> = (0..len).map(|i| pattern_byte(id * 1000 + seq, i)).collect();
                f.send_frame(&frame).await.unwrap();
                assert_eq!(
                    f.recv_frame().await.unwrap().unwrap(),
                    &frame[..],
                    "client {id} frame {seq}"
                );
            }
            let err = f.send_frame(&vec![0u8; (1 << 20) + 1]).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FrameTooLarge);
        }));
    }
    let all = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("clients finished in time");
}

#[tokio::test]
async fn tokio_connect_to_a_missing_server_honours_the_deadline() {
    let dir = TempDir::new("tokio-missing");
    let started = std::time::Instant::now();
    let options = ConnectOptions::new()
        .timeout(Duration::from_millis(200))
        .wait_for_server(true);
    let err = Stream::connect(dir.sock("nobody"), options)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(started.elapsed() >= Duration::from_millis(180));
    assert!(started.elapsed() < Duration::from_secs(3));
}
