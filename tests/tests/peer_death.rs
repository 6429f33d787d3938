//! A peer killed with SIGKILL in the middle of a transfer: the survivor gets an error
//! (or end of stream, for a raw reader) within its deadline, never a hang.
#![cfg(unix)]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use ringlink_tests::{TempDir, TestChild};
use ringlink_unix::{ErrorKind, FrameOptions, FramedStream, Listener, ListenerOptions};

const CHILD: &str = env!("CARGO_BIN_EXE_ringlink-test-child");
/// Generous: the machine running the tests may be busy.
const PROMPT: Duration = Duration::from_secs(5);

#[test]
fn reader_sees_end_of_stream_promptly_when_the_writer_is_killed() {
    let dir = TempDir::new("death-r");
    let sock = dir.sock("s");
    let listener = Listener::bind(&sock, ListenerOptions::new()).unwrap();
    let mut writer = TestChild::spawn(CHILD, &["flood", sock.to_str().unwrap()]);
    let stream = listener.accept_timeout(Duration::from_secs(20)).unwrap();
    writer.wait_ready();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0usize;
    while got < 1 << 20 {
        got += (&stream).read(&mut buf).unwrap();
    }
    writer.kill();
    let killed = Instant::now();
    loop {
        match (&stream).read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue, // bytes the kernel already had
            Err(e) => {
                assert_eq!(ringlink_unix::Error::from(e).kind(), ErrorKind::PeerClosed);
                break;
            }
        }
    }
    assert!(
        killed.elapsed() < PROMPT,
        "end of stream took {:?}",
        killed.elapsed()
    );
    // Writing to the dead peer is an error, not a signal.
    let err = (&stream).write_all(&[1u8; 1024]).unwrap_err();
    assert_eq!(
        ringlink_unix::Error::from(err).kind(),
        ErrorKind::PeerClosed
    );
}

#[test]
fn framed_reader_gets_peer_closed_when_the_writer_dies_mid_frame() {
    let dir = TempDir::new("death-f");
    let sock = dir.sock("s");
    let listener = Listener::bind(&sock, ListenerOptions::new()).unwrap();
    let mut writer = TestChild::spawn(CHILD, &["flood-framed", sock.to_str().unwrap()]);
    let stream = listener.accept_timeout(Duration::from_secs(20)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut framed = FramedStream::new(stream, FrameOptions::new().max_frame(64 << 20)).unwrap();
    writer.wait_ready();
    let reader = std::thread::spawn(move || {
        let result = framed.recv_frame().map(|f| f.map(<[u8]>::len));
        (result, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(200));
    writer.kill();
    let killed = Instant::now();
    let (result, done) = reader.join().unwrap();
    let err = result.expect_err("a frame cannot complete: its writer died");
    assert_eq!(err.kind(), ErrorKind::PeerClosed, "{err}");
    assert!(err.to_string().contains("middle of a frame"), "{err}");
    assert!(done.saturating_duration_since(killed) < PROMPT);
}

#[test]
fn writer_gets_peer_closed_promptly_when_the_reader_is_killed() {
    let dir = TempDir::new("death-w");
    let sock = dir.sock("s");
    let listener = Listener::bind(&sock, ListenerOptions::new()).unwrap();
    let mut reader = TestChild::spawn(CHILD, &["sink", sock.to_str().unwrap()]);
    let stream = listener.accept_timeout(Duration::from_secs(20)).unwrap();
    reader.wait_ready();
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (_r, mut w) = stream.into_split();
    let writer = std::thread::spawn(move || {
        let chunk = vec![3u8; 64 * 1024];
        let mut sent = 0u64;
        loop {
            if let Err(e) = w.write_all(&chunk) {
                return (ringlink_unix::Error::from(e), sent, Instant::now());
            }
            sent += chunk.len() as u64;
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    reader.kill();
    let killed = Instant::now();
    let (err, sent, failed) = writer.join().unwrap();
    assert!(sent > 0, "the transfer was under way");
    assert_eq!(err.kind(), ErrorKind::PeerClosed, "{err}");
    assert!(failed.saturating_duration_since(killed) < PROMPT);
}
