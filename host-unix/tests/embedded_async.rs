//! One async protocol function, written against `embedded_io_async`, used unchanged
//! on a ringlink-core async channel and over a ringlink tokio connection to another
//! process; and a task awaiting an empty core channel is polled only when woken.
#![cfg(all(unix, feature = "tokio"))]

use std::future::poll_fn;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use embedded_io_async::{Read, Write};
use ringlink_core::asynch::{Channel, FrameReader, FrameWriter};
use ringlink_core::frame::FrameError;
use ringlink_unix::tokio::{Listener, Stream};
use ringlink_unix::{ConnectOptions, ListenerOptions};

/// The protocol, server side: answers each `u32` with its square and a running
/// count, until the stream ends. Written once, for any `embedded_io_async` stream.
async fn serve<S: Read + Write>(stream: S) -> Result<u32, FrameError<S::Error>> {
    let mut rx = FrameReader::<_, 16>::new(stream);
    let mut answered = 0u32;
    while let Some(n) = rx.recv::<u32>().await? {
        answered += 1;
        FrameWriter::<_, 16>::new(rx.get_mut())
            .send(&(n.wrapping_mul(n), answered))
            .await?;
    }
    Ok(answered)
}

/// The protocol, client side: asks for the squares of `0..count` and checks them.
async fn ask<S: Read + Write>(stream: &mut S, count: u32) -> Result<(), FrameError<S::Error>> {
    for n in 0..count {
        FrameWriter::<_, 16>::new(&mut *stream).send(&n).await?;
        let reply = FrameReader::<_, 16>::new(&mut *stream)
            .recv::<(u32, u32)>()
            .await?;
        assert_eq!(reply, Some((n * n, n + 1)), "reply {n}");
    }
    Ok(())
}

const REQUESTS: u32 = 500;

#[tokio::test(flavor = "current_thread")]
async fn one_protocol_function_on_a_core_channel() {
    let (mut client, server) = Box::leak(Box::new(Channel::<64>::new())).split();
    let server = tokio::spawn(serve(server));
    ask(&mut client, REQUESTS).await.unwrap();
    drop(client);
    assert_eq!(server.await.unwrap().unwrap(), REQUESTS);
}

fn temp_socket() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ringlink-eioa-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("sock")
}

/// Set in the environment of the server process: the socket it serves.
const SERVER_ENV: &str = "RINGLINK_EIOA_SERVER";

/// The other process of `the_same_function_across_a_process_boundary` (ignored in
/// normal runs): runs the very same `serve` on one accepted ringlink tokio stream and
/// prints how many requests it answered.
#[test]
#[ignore = "the server process of the_same_function_across_a_process_boundary"]
fn server_process_entry() {
    let Some(name) = std::env::var_os(SERVER_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answered = runtime.block_on(async move {
        let listener = Listener::bind(PathBuf::from(name), ListenerOptions::new()).unwrap();
        let stream = listener.accept().await.unwrap();
        serve(stream).await.unwrap()
    });
    println!("answered {answered}");
}

/// A firmware-style protocol function serves a desktop client across a real process
/// boundary: the server is another process running `serve` on a ringlink tokio stream,
/// the client runs `ask` on its own ringlink tokio stream.
#[tokio::test(flavor = "current_thread")]
async fn the_same_function_across_a_process_boundary() {
    let name = temp_socket();
    let server = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "server_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SERVER_ENV, &name)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let options = ConnectOptions::new()
        .wait_for_server(true)
        .timeout(std::time::Duration::from_secs(20));
    let mut client = Stream::connect(&name, options).await.unwrap();
    let peer = client.peer_credentials().unwrap();
    assert_eq!(peer.pid(), Some(server.id()), "served by the other process");
    ask(&mut client, REQUESTS).await.unwrap();
    drop(client);
    let output = server.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "server process failed: {stdout}");
    assert!(
        stdout.contains(&format!("answered {REQUESTS}")),
        "server process said: {stdout}"
    );
    let _ = std::fs::remove_dir_all(name.parent().unwrap());
}

/// A task awaiting an empty core channel is not polled while other tasks run many
/// turns (no polling loop), and runs once the peer writes (woken within one turn).
#[tokio::test(flavor = "current_thread")]
async fn an_idle_reader_is_polled_only_when_woken() {
    let (mut writer, mut reader) = Box::leak(Box::new(Channel::<16>::new())).split();
    let polls = Arc::new(AtomicUsize::new(0));
    let counted = polls.clone();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 4];
        let n = {
            let mut read = std::pin::pin!(reader.read(&mut buf));
            poll_fn(|cx| {
                counted.fetch_add(1, Ordering::SeqCst);
                read.as_mut().poll(cx)
            })
            .await
            .unwrap()
        };
        (n, buf)
    });
    // Let the reader run until it waits, then many more executor turns.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(polls.load(Ordering::SeqCst), 1, "polled once, then asleep");
    writer.write_all(b"wake").await.unwrap();
    tokio::task::yield_now().await;
    assert!(
        task.is_finished(),
        "woken and done within one executor turn"
    );
    let (n, buf) = task.await.unwrap();
    assert_eq!((n, &buf), (4, b"wake"));
    assert_eq!(polls.load(Ordering::SeqCst), 2);
}
