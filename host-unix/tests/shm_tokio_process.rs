//! The tokio `FramedStream` over shared memory (its default between two ringlink peers)
//! across real process boundaries: echo, 1 GiB with a checksum, a peer SIGKILLed while
//! this side's task is parked (reading and writing), a hostile peer that scribbles over
//! the live mapping (an error for that connection only), 100 connections at once, tokio
//! and blocking peers in both directions, and the fallback to the socket when a side
//! opts out.
//!
//! As in `shm_process.rs`, each test re-executes this test binary as its peer
//! (`child_process_entry`, ignored in normal runs).
#![cfg(all(target_os = "linux", feature = "tokio"))]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use ringlink_unix::shm::{ShmOptions, ShmStream};
use ringlink_unix::{ConnectOptions, ErrorKind, FrameOptions, HELLO_LEN, Hello, ListenerOptions};
use ringlink_unix::{Transports, tokio as rt};

mod support;
use support::{CHILD_ENV, byte_sum, spawn_child, temp_socket, thread_cpu, wait_child};

/// A message of the echo tests: an index and a payload of some length.
type Message = (u32, Vec<u8>);

fn message(i: u32) -> Message {
    (i, vec![i as u8; (i as usize * 37) % 3000])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn connect_options() -> ConnectOptions {
    ConnectOptions::new()
        .timeout(Duration::from_secs(20))
        .wait_for_server(true)
}

/// What a client role asks for and expects: the default offer and shared memory
/// (`shm`), an opt-out (`optout`), or the default offer declined by the server
/// (`declined`).
fn client_options(mode: &str) -> (FrameOptions, bool) {
    match mode {
        "shm" => (FrameOptions::new(), true),
        "optout" => (FrameOptions::new().transports(Transports::SOCKET), false),
        "declined" => (FrameOptions::new(), false),
        other => panic!("unknown client mode {other}"),
    }
}

/// Accepts one connection on a tokio listener within 20 s.
async fn accept(listener: &rt::Listener) -> rt::Stream {
    tokio::time::timeout(Duration::from_secs(20), listener.accept())
        .await
        .expect("the child connects within 20 s")
        .unwrap()
}

/// Within 20 s or the test fails (a hang is a failure, not a stuck run).
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within 20 s"))
}

/// The peer side of every test, selected by `RINGLINK_SHM_CHILD=role:path`.
#[test]
#[ignore = "runs only as the peer process of the other tests"]
fn child_process_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (role, path) = spec.split_once(':').unwrap();
    let path = path.to_string();
    if let Some(mode) = role.strip_prefix("blocking-client-") {
        // A blocking framed client that echoes messages until the server closes.
        let (options, shm) = client_options(mode);
        let mut f =
            ringlink_unix::FramedStream::connect(&path, connect_options(), options).unwrap();
        assert_eq!(f.is_shared_memory(), shm, "blocking client, {mode}");
        f.set_timeouts(Some(Duration::from_secs(20)), Some(Duration::from_secs(20)))
            .unwrap();
        while let Some(msg) = f.recv::<Message>().unwrap() {
            f.send(&msg).unwrap();
        }
        return;
    }
    if role == "hostile" {
        hostile_client(&path);
        return;
    }
    runtime().block_on(async move {
        if let Some(mode) = role.strip_prefix("tokio-client-") {
            // A tokio framed client that echoes messages until the server closes.
            let (options, shm) = client_options(mode);
            let mut f = rt::FramedStream::connect(&path, connect_options(), options)
                .await
                .unwrap();
            assert_eq!(f.is_shared_memory(), shm, "tokio client, {mode}");
            while let Some(msg) = f.recv::<Message>().await.unwrap() {
                f.send(&msg).await.unwrap();
            }
            return;
        }
        match role {
            "tokio-sink" => {
                // Receives frames until end of stream, then answers with the byte count
                // and sum, from the other half.
                let f = rt::FramedStream::connect(&path, connect_options(), FrameOptions::new())
                    .await
                    .unwrap();
                assert!(f.is_shared_memory());
                let (mut rx, mut tx) = f.into_split();
                let (mut count, mut sum) = (0u64, 0u64);
                while let Some(frame) = rx.recv_frame().await.unwrap() {
                    count += frame.len() as u64;
                    sum += byte_sum(frame);
                }
                tx.send(&(count, sum)).await.unwrap();
            }
            "tokio-idle" => {
                // Connects over shared memory, then neither reads nor writes.
                let f = rt::FramedStream::connect(&path, connect_options(), FrameOptions::new())
                    .await
                    .unwrap();
                assert!(f.is_shared_memory());
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(f);
            }
            "tokio-many" => {
                // 100 framed connections at once, each echoing until its server closes.
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..100 {
                    let path = path.clone();
                    tasks.spawn(async move {
                        let mut f = rt::FramedStream::connect(
                            &path,
                            connect_options(),
                            FrameOptions::new(),
                        )
                        .await
                        .unwrap();
                        assert!(f.is_shared_memory());
                        while let Some(msg) = f.recv::<Message>().await.unwrap() {
                            f.send(&msg).await.unwrap();
                        }
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done.unwrap();
                }
            }
            other => panic!("unknown child role {other}"),
        }
    });
}

/// A client that speaks the framed hello and the shared-memory handshake itself, then
/// writes random bytes all over the live mapping for 3 s.
fn hostile_client(path: &str) {
    let mut sock = ringlink_unix::Stream::connect(path, connect_options()).unwrap();
    sock.write_all(&Hello::new(&FrameOptions::new()).encode())
        .unwrap();
    let mut hello = [0u8; HELLO_LEN];
    sock.read_exact(&mut hello).unwrap();
    assert!(
        Hello::decode(&hello)
            .unwrap()
            .transports
            .contains(Transports::SHARED_MEMORY)
    );
    sock.write_all(b"R").unwrap(); // READY: now the server offers
    let s = ShmStream::accept_offer(sock, &ShmOptions::new()).unwrap();
    let (ptr, len) = s.raw_mapping();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        for _ in 0..4096 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = (x as usize) % len;
            // SAFETY: `off < len`, inside the live mapping; this process plays a peer
            // that deliberately corrupts shared memory.
            unsafe { ptr.add(off).write_volatile((x >> 32) as u8) };
        }
    }
}

/// Echoes `rounds` messages over a framed stream of either flavour.
async fn echo_tokio(f: &mut rt::FramedStream, rounds: u32) {
    for i in 0..rounds {
        let msg = message(i);
        within("a send", f.send(&msg)).await.unwrap();
        let back: Message = within("an echo", f.recv()).await.unwrap().expect("an echo");
        assert_eq!(back, msg);
    }
}

#[test]
fn tokio_framed_echo_across_processes_over_shared_memory() {
    let path = temp_socket("tokio-echo");
    runtime().block_on(async {
        let listener = rt::Listener::bind(&path, ListenerOptions::new()).unwrap();
        let child = spawn_child("tokio-client-shm", &path);
        let mut f = within(
            "the hello",
            rt::FramedStream::new(accept(&listener).await, FrameOptions::new()),
        )
        .await
        .unwrap();
        assert!(
            f.is_shared_memory(),
            "the default hello negotiated shared memory"
        );
        echo_tokio(&mut f, 2000).await;
        // Frames larger than a ring (256 KiB): both sides park on the way.
        for size in [100_000usize, 300_000, 1_000_000] {
            let msg = (
                size as u32,
                (0..size).map(|i| (i * 31) as u8).collect::<Vec<_>>(),
            );
            within("a large send", f.send(&msg)).await.unwrap();
            let back: Message = within("a large echo", f.recv()).await.unwrap().unwrap();
            assert!(back == msg, "echo of {size} bytes");
        }
        drop(f);
        assert!(wait_child(child, Duration::from_secs(20)).success());
    });
}

#[test]
fn tokio_framed_one_gibibyte_with_checksum_across_processes() {
    let path = temp_socket("tokio-gib");
    runtime().block_on(async {
        let listener = rt::Listener::bind(&path, ListenerOptions::new()).unwrap();
        let child = spawn_child("tokio-sink", &path);
        let f = rt::FramedStream::new(accept(&listener).await, FrameOptions::new())
            .await
            .unwrap();
        assert!(f.is_shared_memory());
        let (mut rx, mut tx) = f.into_split();
        assert!(tx.is_shared_memory() && rx.is_shared_memory());
        let chunk: Vec<u8> = (0..1_000_003u32).map(|i| (i ^ (i >> 8)) as u8).collect();
        let chunk_sum = byte_sum(&chunk);
        let total: u64 = 1 << 30;
        let (mut sent, mut sum) = (0u64, 0u64);
        let start = Instant::now();
        while sent < total {
            let n = (total - sent).min(chunk.len() as u64) as usize;
            tokio::time::timeout(Duration::from_secs(30), tx.send_frame(&chunk[..n]))
                .await
                .expect("the sink keeps reading")
                .unwrap();
            sum += if n == chunk.len() {
                chunk_sum
            } else {
                byte_sum(&chunk[..n])
            };
            sent += n as u64;
        }
        drop(tx); // end of stream for the sink
        let reply: (u64, u64) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("the sink answers")
            .unwrap()
            .expect("an answer, not end of stream");
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(reply, (total, sum), "byte count and checksum");
        eprintln!(
            "1 GiB of tokio frames through shared memory in {secs:.2} s ({:.0} MiB/s)",
            1024.0 / secs
        );
        assert!(wait_child(child, Duration::from_secs(20)).success());
    });
}

/// A task parked in a receive over shared memory leaves the runtime's thread asleep:
/// it uses no CPU to speak of while it waits (a spinning thread would use all of it).
#[test]
fn a_parked_tokio_framed_receive_does_not_spin_the_runtime_thread() {
    let path = temp_socket("tokio-idle-cpu");
    runtime().block_on(async {
        let listener = rt::Listener::bind(&path, ListenerOptions::new()).unwrap();
        let mut child = spawn_child("tokio-idle", &path);
        let mut f = rt::FramedStream::new(accept(&listener).await, FrameOptions::new())
            .await
            .unwrap();
        assert!(f.is_shared_memory());
        let (cpu, start) = (thread_cpu(), Instant::now());
        let waited = tokio::time::timeout(Duration::from_millis(500), f.recv_frame()).await;
        let (cpu, took) = (thread_cpu() - cpu, start.elapsed());
        assert!(waited.is_err(), "an idle peer sends nothing");
        assert!(took >= Duration::from_millis(450), "{took:?}");
        assert!(
            cpu < Duration::from_millis(50),
            "{cpu:?} of CPU in {took:?} while parked"
        );
        let _ = child.kill();
        let _ = child.wait();
    });
}

/// Kills `child` after 300 ms, from a thread (this runtime's thread is parked).
fn kill_soon(child: &std::process::Child) -> std::thread::JoinHandle<()> {
    let pid = child.id();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    })
}

#[test]
fn a_tokio_framed_task_parked_on_a_peer_that_is_killed_is_woken_at_once() {
    let rt = runtime();
    // Parked in a receive: the dead peer ends the frames (between two frames, as a
    // dead socket peer does), without waiting for any timeout.
    let path = temp_socket("tokio-kill-read");
    rt.block_on(async {
        let listener = rt::Listener::bind(&path, ListenerOptions::new()).unwrap();
        let mut child = spawn_child("tokio-idle", &path);
        let mut f = rt::FramedStream::new(accept(&listener).await, FrameOptions::new())
            .await
            .unwrap();
        assert!(f.is_shared_memory());
        let killer = kill_soon(&child);
        let start = Instant::now();
        match within("a receive woken by the dead peer", f.recv_frame()).await {
            Ok(None) => {}
            Err(e) => assert_eq!(e.kind(), ErrorKind::PeerClosed, "{e}"),
            Ok(Some(frame)) => panic!("a frame from an idle peer: {frame:?}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        killer.join().unwrap();
        let _ = child.wait();
    });
    // Parked in a send on a full ring: the dead peer is an error.
    let path = temp_socket("tokio-kill-write");
    rt.block_on(async {
        let listener = rt::Listener::bind(&path, ListenerOptions::new()).unwrap();
        let mut child = spawn_child("tokio-idle", &path);
        let mut f = rt::FramedStream::new(accept(&listener).await, FrameOptions::new())
            .await
            .unwrap();
        assert!(f.is_shared_memory());
        let killer = kill_soon(&child);
        let start = Instant::now();
        let frame = vec![5u8; 64 * 1024];
        let err = within("a send woken by the dead peer", async {
            loop {
                if let Err(e) = f.send_frame(&frame).await {
                    break e;
                }
            }
        })
        .await;
        assert_eq!(err.kind(), ErrorKind::PeerClosed, "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        killer.join().unwrap();
        let _ = child.wait();
    });
}

/// A peer writing garbage all over the mapping fails its own connection for good
/// (`InvalidData` when an index it wrote is impossible, `ProtocolMismatch` when
/// bytes it wrote into the data area were read as a malformed frame header first);
/// a healthy connection served by the same runtime meanwhile goes on echoing.
#[test]
fn a_hostile_peer_fails_its_connection_only() {
    let path = temp_socket("tokio-hostile");
    runtime().block_on(async {
        let listener = rt::Listener::bind(&path, ListenerOptions::new()).unwrap();
        let good_child = spawn_child("tokio-client-shm", &path);
        let mut good = rt::FramedStream::new(accept(&listener).await, FrameOptions::new())
            .await
            .unwrap();
        assert!(good.is_shared_memory());
        let hostile_child = spawn_child("hostile", &path);
        let mut bad = rt::FramedStream::new(accept(&listener).await, FrameOptions::new())
            .await
            .unwrap();
        assert!(bad.is_shared_memory());
        let attack = async {
            let quick = Duration::from_millis(200);
            let start = Instant::now();
            // Large enough to fill the ring (the peer never reads) within a few
            // sends, so each further send looks at the index the peer scribbles on.
            let payload = vec![3u8; 64 * 1024];
            while start.elapsed() < Duration::from_secs(10) {
                // Sends and receives that give up after a while, so the loop goes on
                // whatever the garbage does to either ring.
                let sent = tokio::time::timeout(quick, bad.send_frame(&payload)).await;
                let received = tokio::time::timeout(quick, bad.recv_frame())
                    .await
                    .map(|r| r.map(|_| ()));
                for result in [sent, received] {
                    match result {
                        // The connection failed for good: an impossible index, or
                        // garbage read as a malformed frame header (which leaves the
                        // frame stream out of sync: every later receive says so
                        // without reading the ring again).
                        Ok(Err(e))
                            if matches!(
                                e.kind(),
                                ErrorKind::InvalidData | ErrorKind::ProtocolMismatch
                            ) =>
                        {
                            return Some(e);
                        }
                        // Garbage that is a well-formed header of an oversized frame
                        // (skipped), or a close flag the peer set.
                        Ok(Err(e)) => assert!(
                            matches!(e.kind(), ErrorKind::FrameTooLarge | ErrorKind::PeerClosed),
                            "unexpected error: {e}"
                        ),
                        Ok(Ok(())) | Err(_) => {}
                    }
                }
            }
            None
        };
        let healthy = echo_tokio(&mut good, 300);
        let (failed, ()) = tokio::join!(attack, healthy);
        let Some(failed) = failed else {
            panic!("random writes over the mapping did not fail the connection within 10 s");
        };
        eprintln!("the hostile connection failed: {failed}");
        drop(bad);
        echo_tokio(&mut good, 100).await;
        drop(good);
        assert!(wait_child(good_child, Duration::from_secs(20)).success());
        let _ = wait_child(hostile_child, Duration::from_secs(20));
    });
}

#[test]
fn a_hundred_tokio_framed_connections_at_once_over_shared_memory() {
    let path = temp_socket("tokio-many");
    runtime().block_on(async {
        let listener = rt::Listener::bind(&path, ListenerOptions::new()).unwrap();
        let child = spawn_child("tokio-many", &path);
        {
            {
                let mut tasks = tokio::task::JoinSet::new();
                for c in 0..100u32 {
                    let stream = accept(&listener).await;
                    tasks.spawn(async move {
                        let mut f = within(
                            "the hello",
                            rt::FramedStream::new(stream, FrameOptions::new()),
                        )
                        .await
                        .unwrap();
                        assert!(f.is_shared_memory(), "connection {c}");
                        echo_tokio(&mut f, 50).await;
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done.unwrap();
                }
            }
        }
        assert!(wait_child(child, Duration::from_secs(30)).success());
    });
}

/// Every pairing of a tokio or blocking server with a tokio or blocking client, with
/// the default offer on both sides (shared memory), the client opting out, and the
/// server opting out (both: the socket).
#[test]
fn tokio_and_blocking_framed_peers_interoperate_and_fall_back_to_the_socket() {
    let rt = runtime();
    for server_tokio in [true, false] {
        for client in ["tokio", "blocking"] {
            for (server_options, mode) in [
                (FrameOptions::new(), "shm"),
                (FrameOptions::new(), "optout"),
                (
                    FrameOptions::new().transports(Transports::SOCKET),
                    "declined",
                ),
            ] {
                let what = format!("tokio server: {server_tokio}, {client} client, {mode}");
                let shm = mode == "shm";
                let path = temp_socket("tokio-interop");
                let role = format!("{client}-client-{mode}");
                if server_tokio {
                    rt.block_on(async {
                        let listener = rt::Listener::bind(&path, ListenerOptions::new()).unwrap();
                        let child = spawn_child(&role, &path);
                        let mut f = rt::FramedStream::new(accept(&listener).await, server_options)
                            .await
                            .unwrap();
                        assert_eq!(f.is_shared_memory(), shm, "{what}");
                        echo_tokio(&mut f, 200).await;
                        drop(f);
                        assert!(
                            wait_child(child, Duration::from_secs(20)).success(),
                            "{what}"
                        );
                    });
                } else {
                    let listener =
                        ringlink_unix::Listener::bind(&path, ListenerOptions::new()).unwrap();
                    let child = spawn_child(&role, &path);
                    let stream = listener.accept_timeout(Duration::from_secs(20)).unwrap();
                    let mut f = ringlink_unix::FramedStream::new(stream, server_options).unwrap();
                    assert_eq!(f.is_shared_memory(), shm, "{what}");
                    f.set_timeouts(Some(Duration::from_secs(20)), Some(Duration::from_secs(20)))
                        .unwrap();
                    for i in 0..200 {
                        let msg = message(i);
                        f.send(&msg).unwrap();
                        assert_eq!(f.recv::<Message>().unwrap(), Some(msg), "{what}");
                    }
                    drop(f);
                    assert!(
                        wait_child(child, Duration::from_secs(20)).success(),
                        "{what}"
                    );
                }
            }
        }
    }
}
