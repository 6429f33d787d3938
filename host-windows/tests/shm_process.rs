//! The Windows shared-memory transport across real process boundaries: echo, 1 GiB with
//! a checksum, a peer killed while the other side is parked (reading, and writing into
//! a full ring), a hostile peer that scribbles over the live mapping, 100 connections
//! at once, and framed mode negotiating shared memory by default and staying on the
//! pipe when either side opts out.
//!
//! Each test re-executes this test binary as its peer (`child_process`, which does
//! nothing in normal runs), with its role and the pipe name in the environment. Every
//! child is killed when its test ends.
#![cfg(windows)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringlink_windows::shm::{ShmOptions, ShmStream};
use ringlink_windows::{
    ConnectOptions, FrameOptions, FramedStream, Listener, ListenerOptions, Transports,
};

const ROLE: &str = "RINGLINK_WINDOWS_SHM_ROLE";
/// What a hello offers by default: the pipe and shared memory.
const BOTH: Transports = Transports::SOCKET.union(Transports::SHARED_MEMORY);
const NAME: &str = "RINGLINK_WINDOWS_SHM_NAME";

/// Not a real test: the body of the child processes. Does nothing unless started by
/// [`Peer::spawn`].
#[test]
fn child_process() {
    let (Ok(role), Ok(name)) = (std::env::var(ROLE), std::env::var(NAME)) else {
        return;
    };
    let code = match role.as_str() {
        "echo" => echo_server(&name),
        "idle-server" => idle_server(&name),
        "idle-client" => idle_client(&name),
        "hostile" => hostile_client(&name),
        "framed-echo" => framed_echo(&name, BOTH),
        "framed-echo-pipe" => framed_echo(&name, Transports::SOCKET),
        other => {
            eprintln!("unknown role {other}");
            2
        }
    };
    std::process::exit(code);
}

fn ready() {
    println!("READY");
    let _ = std::io::stdout().flush();
}

fn bind(name: &str) -> Listener {
    match Listener::bind(name, ListenerOptions::new()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind {name}: {e}");
            std::process::exit(1);
        }
    }
}

fn connect(name: &str) -> ShmStream {
    let options = ConnectOptions::new()
        .wait_for_server(true)
        .timeout(Duration::from_secs(20));
    match ShmStream::connect(name, options, &ShmOptions::new()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("connect {name}: {e}");
            std::process::exit(1);
        }
    }
}

/// Echoes every shared-memory connection ring to ring (`splice`), a thread each,
/// until killed.
fn echo_server(name: &str) -> i32 {
    let listener = bind(name);
    ready();
    loop {
        let Ok(handshake) = ShmStream::accept(&listener, &ShmOptions::new()) else {
            return 1;
        };
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut s = handshake.complete()?;
            loop {
                let (r, w) = s.split();
                if r.splice(w)? == 0 {
                    return Ok(());
                }
            }
        });
    }
}

/// Offers shared memory to one client, then neither reads nor writes until killed.
fn idle_server(name: &str) -> i32 {
    let listener = bind(name);
    ready();
    let Ok(handshake) = ShmStream::accept(&listener, &ShmOptions::new()) else {
        return 1;
    };
    let _held = handshake.complete();
    std::thread::sleep(Duration::from_secs(600));
    0
}

/// Takes the server's offer, then neither reads nor writes until killed.
fn idle_client(name: &str) -> i32 {
    let _held = connect(name);
    ready();
    std::thread::sleep(Duration::from_secs(600));
    0
}

/// Takes the server's offer, then writes random bytes all over the live mapping
/// (ring headers, indices, data, the stamps) until killed.
fn hostile_client(name: &str) -> i32 {
    let s = connect(name);
    let (ptr, len) = s.raw_mapping();
    ready();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = (x as usize) % len;
        // SAFETY: `at < len`, inside this process's view of the mapping, which `s`
        // keeps mapped; a volatile write, as the peer reads the memory concurrently.
        unsafe { ptr.add(at).write_volatile((x >> 32) as u8) };
    }
}

/// Framed echo server offering `transports`, a thread per connection, until killed.
fn framed_echo(name: &str, transports: Transports) -> i32 {
    let listener = bind(name);
    ready();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return 1 };
        std::thread::spawn(move || -> Result<(), ringlink_windows::Error> {
            let options = FrameOptions::new().transports(transports);
            let mut framed = FramedStream::new(stream, options)?;
            // Tell the client which transport this side ended up on, then echo.
            let shm = framed.is_shared_memory();
            framed.send_frame(if shm { b"shm" } else { b"pipe" })?;
            while let Some(frame) = framed.recv_frame()? {
                let frame = frame.to_vec();
                framed.send_frame(&frame)?;
            }
            Ok(())
        });
    }
    0
}

/// A child process of this binary in some role; killed on drop.
struct Peer {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Peer {
    fn spawn(role: &str, name: &str) -> Peer {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                "child_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, role)
            .env(NAME, name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer { child, lines }
    }

    /// Waits for the child's READY (the harness may print on the same line).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains("READY") => return,
                Ok(_) => {}
                Err(e) => panic!("the child never said READY: {e}"),
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "ringlink-shm-it-{tag}-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

/// Bytes `0..len` of the pattern for `seed`.
fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn client_of(name: &str) -> ShmStream {
    let options = ConnectOptions::new().timeout(Duration::from_secs(20));
    let mut s = ShmStream::connect(name, options, &ShmOptions::new()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60)));
    s.set_write_timeout(Some(Duration::from_secs(60)));
    s
}

#[test]
fn echo_across_processes() {
    let name = unique("echo");
    let peer = Peer::spawn("echo", &name);
    peer.wait_ready();
    let s = client_of(&name);
    assert_eq!(
        s.peer_credentials().unwrap().pid(),
        Some(peer.child.id()),
        "the pipe beside the mapping names the child"
    );
    let (mut r, mut w) = s.into_split();
    for len in [1usize, 7, 4096, 100_000, 1 << 20] {
        let data = pattern(len as u32, len);
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&sent).unwrap();
            w
        });
        let mut back = vec![0u8; len];
        r.read_exact(&mut back).unwrap();
        w = writer.join().unwrap();
        assert!(back == data, "{len} bytes came back changed");
    }
}

/// 1 GiB through the child and back: 1 MiB chunks, each stamped with its number, so a
/// lost, duplicated or reordered byte shows, and a checksum over everything received.
#[test]
fn one_gibibyte_with_checksum_across_processes() {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: u64 = 1024;
    let name = unique("gib");
    let peer = Peer::spawn("echo", &name);
    peer.wait_ready();
    let (mut r, mut w) = client_of(&name).into_split();
    let base = pattern(42, CHUNK);
    let chunk = |i: u64| {
        let mut c = base.clone();
        c[..8].copy_from_slice(&i.to_le_bytes());
        c
    };
    let checksum = |sum: u64, c: &[u8]| {
        c.chunks(8).fold(sum, |s, w| {
            let mut v = [0u8; 8];
            v[..w.len()].copy_from_slice(w);
            s.rotate_left(5) ^ u64::from_le_bytes(v)
        })
    };
    let expected = (0..CHUNKS).fold(0u64, |s, i| checksum(s, &chunk(i)));
    let started = Instant::now();
    let writer = std::thread::spawn(move || {
        let mut c = base.clone();
        for i in 0..CHUNKS {
            c[..8].copy_from_slice(&i.to_le_bytes());
            w.write_all(&c).unwrap();
        }
    });
    let mut got = vec![0u8; CHUNK];
    let mut sum = 0u64;
    for i in 0..CHUNKS {
        r.read_exact(&mut got).unwrap();
        assert_eq!(got[..8], i.to_le_bytes(), "chunk {i} out of order");
        sum = checksum(sum, &got);
    }
    writer.join().unwrap();
    assert_eq!(sum, expected, "checksum of 1 GiB echoed");
    eprintln!("1 GiB echoed in {:?}", started.elapsed());
}

#[test]
fn peer_killed_while_the_reader_is_parked() {
    let name = unique("idle-server");
    let mut peer = Peer::spawn("idle-server", &name);
    peer.wait_ready();
    let mut s = client_of(&name);
    s.set_read_timeout(Some(Duration::from_secs(30)));
    let reader = std::thread::spawn(move || {
        let err = s.read(&mut [0u8; 16]).unwrap_err();
        (err, s.spin_stats().1)
    });
    // Long past any spin: the reader is parked.
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    peer.kill();
    let (err, parks) = reader.join().unwrap();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(parks >= 1, "the reader had parked");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn peer_killed_while_the_writer_is_parked_on_a_full_ring() {
    let name = unique("idle-client");
    let listener = Listener::bind(name.as_str(), ListenerOptions::new()).unwrap();
    let mut peer = Peer::spawn("idle-client", &name);
    let stream = listener.accept_timeout(Duration::from_secs(30)).unwrap();
    let mut s = ShmStream::offer(stream, &ShmOptions::new().capacity(4096)).unwrap();
    peer.wait_ready();
    s.set_write_timeout(Some(Duration::from_secs(30)));
    let writer = std::thread::spawn(move || {
        let err = s.write_all(&[1u8; 1 << 20]).unwrap_err();
        (err, s.spin_stats().1)
    });
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    peer.kill();
    let (err, parks) = writer.join().unwrap();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(parks >= 1, "the writer had parked on the full ring");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn hostile_peer_scribbling_over_the_mapping_is_an_error_not_a_crash() {
    let name = unique("hostile");
    let listener = Listener::bind(name.as_str(), ListenerOptions::new()).unwrap();
    let peer = Peer::spawn("hostile", &name);
    let stream = listener.accept_timeout(Duration::from_secs(30)).unwrap();
    let mut s = ShmStream::offer(stream, &ShmOptions::new().capacity(4096)).unwrap();
    peer.wait_ready();
    // An honest connection beside it, in this process: it must not notice.
    let (a, b) = ringlink_windows::Stream::pair().unwrap();
    let honest = std::thread::spawn(move || ShmStream::accept_offer(b, &ShmOptions::new()));
    let mut good = ShmStream::offer(a, &ShmOptions::new()).unwrap();
    let mut good_peer = honest.join().unwrap().unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)));
    s.set_write_timeout(Some(Duration::from_millis(200)));
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let mut corrupted = false;
    while start.elapsed() < Duration::from_secs(20) && !corrupted {
        let w = s.write(&buf[..1000]).map(|_| ());
        let r = s.read(&mut buf).map(|_| ());
        for res in [w, r] {
            if let Err(e) = res {
                match e.kind() {
                    ErrorKind::InvalidData => corrupted = true,
                    ErrorKind::TimedOut | ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => {}
                    other => panic!("unexpected error kind {other:?}: {e}"),
                }
            }
        }
        good.write_all(b"still fine").unwrap();
        let mut back = [0u8; 10];
        good_peer.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"still fine");
    }
    assert!(
        corrupted,
        "random writes over the mapping were not detected"
    );
}

#[test]
fn one_hundred_connections_at_once() {
    const CLIENTS: u32 = 100;
    let name = unique("many");
    let peer = Peer::spawn("echo", &name);
    peer.wait_ready();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(CLIENTS as usize));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (name, barrier) = (name.clone(), barrier.clone());
            std::thread::spawn(move || -> Result<(), String> {
                barrier.wait();
                let options = ConnectOptions::new().timeout(Duration::from_secs(60));
                let shm = ShmOptions::new()
                    .capacity(4096)
                    .handshake_timeout(Duration::from_secs(60));
                let mut s = ShmStream::connect(name.as_str(), options, &shm)
                    .map_err(|e| format!("client {i}: {e}"))?;
                s.set_read_timeout(Some(Duration::from_secs(60)));
                s.set_write_timeout(Some(Duration::from_secs(60)));
                for round in 0..20u32 {
                    let msg = pattern(i * 1000 + round, 1000);
                    s.write_all(&msg).map_err(|e| format!("client {i}: {e}"))?;
                    let mut back = [0u8; 1000];
                    s.read_exact(&mut back)
                        .map_err(|e| format!("client {i}: {e}"))?;
                    if back[..] != msg[..] {
                        return Err(format!("client {i} round {round}: bytes changed"));
                    }
                }
                Ok(())
            })
        })
        .collect();
    let failures: Vec<String> = clients
        .into_iter()
        .filter_map(|c| c.join().unwrap().err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
}

fn framed_client(name: &str, transports: Transports) -> (FramedStream, String) {
    let options = FrameOptions::new().transports(transports);
    let mut f = FramedStream::connect(name, ConnectOptions::new(), options).unwrap();
    f.set_timeouts(Some(Duration::from_secs(30)), Some(Duration::from_secs(30)))
        .unwrap();
    let server_side = String::from_utf8(f.recv_frame().unwrap().unwrap().to_vec()).unwrap();
    (f, server_side)
}

fn framed_round_trips(f: &mut FramedStream) {
    for len in [0usize, 1, 127, 128, 70_000, 1 << 20] {
        let payload = pattern(len as u32, len);
        f.send_frame(&payload).unwrap();
        assert_eq!(f.recv_frame().unwrap().unwrap(), &payload[..], "{len}");
    }
    f.send(&(42u32, "answer")).unwrap();
    let back: (u32, String) = f.recv().unwrap().unwrap();
    assert_eq!(back, (42, "answer".to_string()));
}

#[test]
fn framed_mode_negotiates_shared_memory_across_processes() {
    let name = unique("framed");
    let peer = Peer::spawn("framed-echo", &name);
    peer.wait_ready();
    let (mut f, server) = framed_client(&name, BOTH);
    assert!(
        f.is_shared_memory(),
        "the default hellos negotiate shared memory"
    );
    assert_eq!(server, "shm");
    framed_round_trips(&mut f);
    // Nonblocking over shared memory: nothing there is WouldBlock at once, not a wait.
    f.set_nonblocking(true).unwrap();
    let t = Instant::now();
    let err = f.recv_frame().unwrap_err();
    assert_eq!(err.kind(), ringlink_windows::ErrorKind::WouldBlock, "{err}");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    f.set_nonblocking(false).unwrap();
    // Split: two threads, one per direction, still through shared memory.
    let (mut rx, mut tx) = f.into_split();
    assert!(tx.is_shared_memory());
    let sender = std::thread::spawn(move || {
        for i in 0..200u32 {
            tx.send_frame(&pattern(i, 3000)).unwrap();
        }
    });
    for i in 0..200u32 {
        assert_eq!(rx.recv_frame().unwrap().unwrap(), &pattern(i, 3000)[..]);
    }
    sender.join().unwrap();
}

#[test]
fn framed_mode_stays_on_the_pipe_when_either_side_opts_out() {
    // The server opts out.
    let name = unique("framed-pipe");
    let peer = Peer::spawn("framed-echo-pipe", &name);
    peer.wait_ready();
    let (mut f, server) = framed_client(&name, BOTH);
    assert!(!f.is_shared_memory());
    assert_eq!(server, "pipe");
    framed_round_trips(&mut f);
    // The client opts out of a server that offers shared memory.
    let name = unique("framed-opt-out");
    let peer = Peer::spawn("framed-echo", &name);
    peer.wait_ready();
    let (mut f, server) = framed_client(&name, Transports::SOCKET);
    assert!(!f.is_shared_memory());
    assert_eq!(server, "pipe");
    framed_round_trips(&mut f);
}

/// A tokio task parked on an idle ring (its wait registered with the thread pool) is
/// woken with an error when the peer's process is killed.
#[cfg(feature = "tokio")]
#[test]
fn a_parked_tokio_task_sees_the_peer_killed() {
    use ringlink_windows::shm::tokio::AsyncShmStream;
    use tokio::io::AsyncReadExt;
    let name = unique("tokio-idle");
    let mut peer = Peer::spawn("idle-server", &name);
    peer.wait_ready();
    let s = client_of(&name);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (killed_tx, killed_rx) = mpsc::channel::<Instant>();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        peer.kill();
        killed_tx.send(t).unwrap();
    });
    let err = runtime.block_on(async move {
        let mut s = AsyncShmStream::from_std(s).unwrap();
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf));
        read.await.expect("woken, not timed out").unwrap_err()
    });
    let killed_at = killed_rx.recv().unwrap();
    killer.join().unwrap();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(
        killed_at.elapsed() < Duration::from_secs(5),
        "{:?}",
        killed_at.elapsed()
    );
}
