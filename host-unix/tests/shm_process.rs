//! The shared-memory transport across real process boundaries: echo, 1 GiB with a
//! checksum, a peer SIGKILLed while the other side is parked, a hostile peer that
//! scribbles over the live mapping, and many connections at once.
//!
//! Each test re-executes this test binary as its peer (`child_process_entry`,
//! ignored in normal runs), connected over a Unix socket at a fresh path.
#![cfg(target_os = "linux")]

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringlink_unix::shm::{ShmOptions, ShmStream};
use ringlink_unix::{
    ConnectOptions, FrameOptions, FramedStream, Listener, ListenerOptions, Transports,
};

const CHILD_ENV: &str = "RINGLINK_SHM_CHILD";

/// A fresh directory per call: the pid, a per-process counter and the clock make
/// the name unique (tests of one binary run in parallel, and reruns reuse pids).
fn temp_socket(tag: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "ringlink-shm-{}-{tag}-{}-{since_epoch:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
    ));
    std::fs::create_dir(&dir).unwrap();
    dir.join("sock")
}

/// Starts this binary as a peer playing `role` against the socket at `path`.
fn spawn_child(role: &str, path: &std::path::Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{role}:{}", path.display()))
        // The child's own test-harness summary would read like ours.
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Starts a peer playing `role`, and returns it with the listener it will connect to.
fn spawn_peer(role: &str) -> (Child, UnixListener, PathBuf) {
    let path = temp_socket(role);
    let listener = UnixListener::bind(&path).unwrap();
    (spawn_child(role, &path), listener, path)
}

/// Accepts one connection within a deadline (so a child that failed to start cannot hang us).
fn accept_within(listener: &UnixListener, limit: Duration) -> UnixStream {
    listener.set_nonblocking(true).unwrap();
    let start = Instant::now();
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return s;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && start.elapsed() < limit => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("peer did not connect within {limit:?}: {e}"),
        }
    }
}

fn wait_child(mut child: Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("peer process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn byte_sum(data: &[u8]) -> u64 {
    data.iter().map(|&b| u64::from(b)).sum()
}

/// The peer side of every test, selected by `RINGLINK_SHM_CHILD=role:path`.
#[test]
#[ignore = "runs only as the peer process of the other tests"]
fn child_process_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (role, path) = spec.split_once(':').unwrap();
    let connect = || UnixStream::connect(path).unwrap();
    match role {
        "echo" => {
            let mut s = ShmStream::accept_offer(connect(), &ShmOptions::new()).unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).unwrap();
            }
        }
        "splice-echo" => {
            // Echoes ring to ring, without a buffer.
            let mut s = ShmStream::accept_offer(connect(), &ShmOptions::new()).unwrap();
            loop {
                let (rx, tx) = s.halves();
                if rx.splice(tx).unwrap() == 0 {
                    break;
                }
            }
        }
        "grant-sink" => {
            // Reads in place through grants until end of stream, then answers with
            // the count and byte sum.
            let mut s = ShmStream::accept_offer(connect(), &ShmOptions::new()).unwrap();
            let (mut count, mut sum) = (0u64, 0u64);
            let mut copy = vec![0u8; 256 * 1024];
            while let Some(g) = s.read_grant().unwrap() {
                count += g.len() as u64;
                let n = g.copy_to(&mut copy);
                sum += byte_sum(&copy[..n]);
                g.release(n);
            }
            s.write_all(&count.to_le_bytes()).unwrap();
            s.write_all(&sum.to_le_bytes()).unwrap();
        }
        "sink" => {
            // Reads until end of stream, then answers with the count and byte sum.
            let mut s = ShmStream::accept_offer(connect(), &ShmOptions::new()).unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            let (mut count, mut sum) = (0u64, 0u64);
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                count += n as u64;
                sum += byte_sum(&buf[..n]);
            }
            s.write_all(&count.to_le_bytes()).unwrap();
            s.write_all(&sum.to_le_bytes()).unwrap();
        }
        "idle" => {
            let _s = ShmStream::accept_offer(connect(), &ShmOptions::new()).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        "hostile" => {
            let s = ShmStream::accept_offer(connect(), &ShmOptions::new()).unwrap();
            let (ptr, len) = s.raw_mapping();
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(3) {
                for _ in 0..4096 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let off = (x as usize) % len;
                    // SAFETY: `off < len`, inside the live mapping; this process plays
                    // a peer that deliberately corrupts shared memory.
                    unsafe { ptr.add(off).write_volatile((x >> 32) as u8) };
                }
            }
        }
        "many" => {
            let threads: Vec<_> = (0..16)
                .map(|_| {
                    let path = path.to_string();
                    std::thread::spawn(move || {
                        let sock = UnixStream::connect(&path).unwrap();
                        let mut s =
                            ShmStream::accept_offer(sock, &ShmOptions::new().capacity(4096))
                                .unwrap();
                        let mut buf = [0u8; 4096];
                        loop {
                            let n = s.read(&mut buf).unwrap();
                            if n == 0 {
                                break;
                            }
                            s.write_all(&buf[..n]).unwrap();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
        }
        "framed-client" => {
            // Connects through ringlink's secure socket, negotiates shared memory in
            // the hello, and echoes typed messages until the server closes.
            let options =
                FrameOptions::new().transports(Transports::SOCKET.union(Transports::SHARED_MEMORY));
            let connect = ConnectOptions::new()
                .timeout(Duration::from_secs(20))
                .wait_for_server(true);
            let mut f = FramedStream::connect(path, connect, options).unwrap();
            assert!(f.is_shared_memory(), "both sides offered shared memory");
            while let Some(msg) = f.recv::<(u32, Vec<u8>)>().unwrap() {
                f.send(&msg).unwrap();
            }
        }
        other => panic!("unknown child role {other}"),
    }
}

#[test]
fn echo_across_processes() {
    echo_sizes_through("echo");
}

#[test]
fn splice_echo_across_processes() {
    echo_sizes_through("splice-echo");
}

#[test]
fn write_grants_to_read_grants_with_checksum_across_processes() {
    let (child, listener, _p) = spawn_peer("grant-sink");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let mut s = ShmStream::offer(sock, &ShmOptions::new()).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30)));
    s.set_read_timeout(Some(Duration::from_secs(30)));
    let total: u64 = 64 << 20;
    let (mut sent, mut sum) = (0u64, 0u64);
    while sent < total {
        // Odd sizes, so grants end at every offset of the ring.
        let want = ((total - sent) as usize).min(70_001);
        let mut g = s.write_grant(want).unwrap();
        assert!(!g.is_empty() && g.len() <= want);
        let bytes: Vec<u8> = (0..g.len())
            .map(|i| ((sent + i as u64) % 251) as u8)
            .collect();
        assert_eq!(g.copy_from(&bytes), bytes.len());
        sum += byte_sum(&bytes);
        sent += g.len() as u64;
        let n = g.len();
        g.commit(n);
    }
    let (mut r, w) = s.into_split();
    drop(w);
    let mut reply = [0u8; 16];
    r.read_exact(&mut reply).unwrap();
    assert_eq!(u64::from_le_bytes(reply[..8].try_into().unwrap()), total);
    assert_eq!(u64::from_le_bytes(reply[8..].try_into().unwrap()), sum);
    assert!(wait_child(child, Duration::from_secs(20)).success());
}

fn echo_sizes_through(role: &str) {
    let (child, listener, _p) = spawn_peer(role);
    let sock = accept_within(&listener, Duration::from_secs(20));
    let mut s = ShmStream::offer(sock, &ShmOptions::new()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10)));
    for size in [1usize, 100, 4096, 100_000, 300_000] {
        let msg: Vec<u8> = (0..size).map(|i| (i * 31 + size) as u8).collect();
        let reader_msg = msg.clone();
        // Larger than a ring: write from one thread while reading in another.
        let (mut r, mut w) = s.into_split();
        let writer = std::thread::spawn(move || {
            w.write_all(&msg).unwrap();
            w
        });
        let mut back = vec![0u8; size];
        r.read_exact(&mut back).unwrap();
        assert!(back == reader_msg, "echo of {size} bytes differs");
        let w = writer.join().unwrap();
        s = reunite(r, w);
    }
    drop(s);
    assert!(wait_child(child, Duration::from_secs(20)).success());
}

fn reunite(r: ringlink_unix::shm::ShmReadHalf, w: ringlink_unix::shm::ShmWriteHalf) -> ShmStream {
    ShmStream::from_halves(r, w).expect("halves of one stream")
}

#[test]
fn one_gibibyte_with_checksum_across_processes() {
    let (child, listener, _p) = spawn_peer("sink");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let mut s = ShmStream::offer(sock, &ShmOptions::new()).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30)));
    s.set_read_timeout(Some(Duration::from_secs(60)));
    let chunk: Vec<u8> = (0..1_000_003u32).map(|i| (i ^ (i >> 8)) as u8).collect();
    let chunk_sum = byte_sum(&chunk);
    let total: u64 = 1 << 30;
    let (mut sent, mut sum) = (0u64, 0u64);
    let start = Instant::now();
    while sent < total {
        let n = (total - sent).min(chunk.len() as u64) as usize;
        s.write_all(&chunk[..n]).unwrap();
        sum += if n == chunk.len() {
            chunk_sum
        } else {
            byte_sum(&chunk[..n])
        };
        sent += n as u64;
    }
    let (mut r, w) = s.into_split();
    drop(w); // end of stream for the sink
    let mut reply = [0u8; 16];
    r.read_exact(&mut reply).unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        u64::from_le_bytes(reply[..8].try_into().unwrap()),
        total,
        "byte count"
    );
    assert_eq!(
        u64::from_le_bytes(reply[8..].try_into().unwrap()),
        sum,
        "checksum"
    );
    eprintln!(
        "1 GiB through shared memory in {secs:.2} s ({:.0} MiB/s)",
        1024.0 / secs
    );
    assert!(wait_child(child, Duration::from_secs(20)).success());
}

#[test]
fn peer_killed_while_reader_is_parked() {
    let (mut child, listener, _p) = spawn_peer("idle");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let mut s = ShmStream::offer(sock, &ShmOptions::new()).unwrap();
    let pid = child.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    });
    let start = Instant::now();
    let mut b = [0u8; 1];
    // No timeout: only the dead peer's socket can wake this read.
    let err = s.read(&mut b).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    killer.join().unwrap();
    let _ = child.wait();
}

#[test]
fn peer_killed_while_writer_is_parked_on_a_full_ring() {
    let (mut child, listener, _p) = spawn_peer("idle");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let mut s = ShmStream::offer(sock, &ShmOptions::new().capacity(4096)).unwrap();
    let pid = child.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    });
    let start = Instant::now();
    let err = s.write_all(&[1u8; 1 << 20]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
    killer.join().unwrap();
    let _ = child.wait();
}

#[test]
fn hostile_peer_scribbling_over_the_mapping_is_an_error_not_a_crash() {
    let (child, listener, _p) = spawn_peer("hostile");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let mut s = ShmStream::offer(sock, &ShmOptions::new().capacity(4096)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)));
    s.set_write_timeout(Some(Duration::from_millis(200)));
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let mut corrupted = false;
    // Keep using the connection while the peer writes random bytes everywhere.
    while start.elapsed() < Duration::from_secs(10) {
        let w = s.write(&buf[..1000]);
        let r = s.read(&mut buf);
        for res in [w.map(|_| ()), r.map(|_| ())] {
            if let Err(e) = res {
                match e.kind() {
                    ErrorKind::InvalidData => corrupted = true,
                    ErrorKind::TimedOut | ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => {}
                    other => panic!("unexpected error kind {other:?}: {e}"),
                }
            }
        }
        if corrupted {
            break;
        }
    }
    assert!(
        corrupted,
        "random writes over the ring headers were not detected"
    );
    drop(s);
    let _ = wait_child(child, Duration::from_secs(20));
}

#[test]
fn many_connections_at_once() {
    let (child, listener, _p) = spawn_peer("many");
    let socks: Vec<_> = (0..16)
        .map(|_| accept_within(&listener, Duration::from_secs(20)))
        .collect();
    let workers: Vec<_> = socks
        .into_iter()
        .enumerate()
        .map(|(i, sock)| {
            std::thread::spawn(move || {
                let mut s = ShmStream::offer(sock, &ShmOptions::new().capacity(4096)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20)));
                let mut sum_out = 0u64;
                let mut sum_in = 0u64;
                for round in 0..200u32 {
                    let msg: Vec<u8> = (0..1000u32).map(|k| (k + round + i as u32) as u8).collect();
                    s.write_all(&msg).unwrap();
                    sum_out += byte_sum(&msg);
                    let mut back = [0u8; 1000];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(&back[..], &msg[..], "connection {i} round {round}");
                    sum_in += byte_sum(&back);
                }
                assert_eq!(sum_in, sum_out);
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert!(wait_child(child, Duration::from_secs(30)).success());
}

#[test]
fn framed_mode_negotiates_shared_memory_across_processes() {
    let path = temp_socket("framed");
    let listener = Listener::bind(&path, ListenerOptions::new()).unwrap();
    let child = spawn_child("framed-client", &path);
    let stream = listener.accept().unwrap();
    let options =
        FrameOptions::new().transports(Transports::SOCKET.union(Transports::SHARED_MEMORY));
    let mut f = FramedStream::new(stream, options).unwrap();
    assert!(f.is_shared_memory(), "the hello negotiated shared memory");
    f.set_timeouts(Some(Duration::from_secs(20)), Some(Duration::from_secs(20)))
        .unwrap();
    for i in 0..2000u32 {
        let msg = (i, vec![i as u8; (i as usize * 37) % 3000]);
        f.send(&msg).unwrap();
        let back: (u32, Vec<u8>) = f.recv().unwrap().expect("an echo, not end of stream");
        assert_eq!(back, msg);
    }
    drop(f);
    assert!(wait_child(child, Duration::from_secs(20)).success());
}

#[test]
fn framed_mode_stays_on_the_socket_unless_both_offer_shared_memory() {
    let (a, b) = ringlink_unix::Stream::pair().unwrap();
    let shm = FrameOptions::new().transports(Transports::SOCKET.union(Transports::SHARED_MEMORY));
    let t = std::thread::spawn(move || FramedStream::new(b, FrameOptions::new()).unwrap());
    let mut a = FramedStream::new(a, shm).unwrap();
    let mut b = t.join().unwrap();
    assert!(!a.is_shared_memory() && !b.is_shared_memory());
    a.send(&7u8).unwrap();
    assert_eq!(b.recv::<u8>().unwrap(), Some(7));
}

/// The tokio stream parks in the reactor (no spinning thread) and wakes for data,
/// for space, and for a dead peer.
#[cfg(feature = "tokio")]
#[test]
fn tokio_stream_parks_in_the_reactor_and_sees_a_dead_peer() {
    use ringlink_unix::shm::tokio::AsyncShmStream;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Echo across processes, with messages larger than the ring (both sides park).
    let (child, listener, _p) = spawn_peer("echo");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let s = ShmStream::offer(sock, &ShmOptions::new().capacity(4096)).unwrap();
    rt.block_on(async {
        let mut s = AsyncShmStream::from_std(s).unwrap();
        for size in [1usize, 4096, 100_000] {
            let msg: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
            let mut back = vec![0u8; size];
            let (mut r, mut w) = tokio::io::split(&mut s);
            let write = async { w.write_all(&msg).await };
            let read = async { r.read_exact(&mut back).await.map(|_| ()) };
            let (a, b) =
                tokio::time::timeout(Duration::from_secs(20), async { tokio::join!(write, read) })
                    .await
                    .expect("echo within 20 s");
            a.unwrap();
            b.unwrap();
            assert!(back == msg, "echo of {size} bytes");
        }
        s.shutdown().await.unwrap();
        let mut rest = [0u8; 1];
        assert_eq!(
            s.read(&mut rest).await.unwrap(),
            0,
            "the child closes after our shutdown"
        );
    });
    assert!(wait_child(child, Duration::from_secs(20)).success());

    // A parked reader is woken by the peer's death, not by a timeout.
    let (mut child, listener, _p) = spawn_peer("idle");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let s = ShmStream::offer(sock, &ShmOptions::new()).unwrap();
    let pid = child.id();
    rt.block_on(async {
        let mut s = AsyncShmStream::from_std(s).unwrap();
        let start = Instant::now();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        });
        let mut b = [0u8; 1];
        let err = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b))
            .await
            .expect("woken by the dead peer")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
        killer.join().unwrap();
    });
    let _ = child.wait();
}
