//! The shared-memory transport across real process boundaries: echo, 1 GiB with a
//! checksum, a peer SIGKILLed while the other side is parked (both halves of a split
//! stream at once), a hostile peer that scribbles over the live mapping, peers that
//! abuse their wake-ups (blocking flags, saturation, wake-up storms for either half,
//! malformed wake-ups, offers with extra descriptors, a server that leaves), silent
//! clients beside a good one, one descriptor per side, and many connections at once.
//!
//! Each test re-executes this test binary as its peer (`child_process_entry`,
//! ignored in normal runs), connected over a Unix socket at a fresh path.
#![cfg(target_os = "linux")]

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
#[cfg(feature = "tokio")]
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringlink_unix::shm::{ShmOptions, ShmStream};
use ringlink_unix::{
    ConnectOptions, FrameOptions, FramedStream, Listener, ListenerOptions, Transports,
};

mod support;
use support::{
    CHILD_ENV, accept_within, byte_sum, spawn_child, spawn_peer, temp_socket, thread_cpu,
    wait_child,
};

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
        "paced-echo" => {
            // Echoes each byte: after 2 ms for `S` (a slow answer, so the other side
            // parks), after 2 µs of work for anything else (a quick one).
            let mut s = ShmStream::accept_offer(connect(), &ShmOptions::new()).unwrap();
            let mut b = [0u8; 1];
            while s.read(&mut b).unwrap() == 1 {
                if b[0] == b'S' {
                    std::thread::sleep(Duration::from_millis(2));
                } else {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_micros(2) {
                        std::hint::spin_loop();
                    }
                }
                s.write_all(&b).unwrap();
            }
        }
        "slow-echo" => {
            // Takes its time before it accepts the offer, then echoes.
            let sock = connect();
            std::thread::sleep(Duration::from_millis(300));
            let mut s = ShmStream::accept_offer(sock, &ShmOptions::new()).unwrap();
            let mut buf = [0u8; 4096];
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).unwrap();
            }
        }
        "count-fds" => {
            // Reports how many descriptors its side of the connection holds.
            let before = open_fds();
            let mut s = ShmStream::accept_offer(connect(), &ShmOptions::new()).unwrap();
            let held = (open_fds() - before) as u8;
            s.write_all(&[held]).unwrap();
            let mut b = [0u8; 1];
            assert_eq!(s.read(&mut b).unwrap(), 0);
        }
        "shm-connect-hold" => {
            // Connects through the listener; holds the connection until the server
            // closes it (exit 0), or exits with 3 if the server refused it.
            let connect = ConnectOptions::new()
                .timeout(Duration::from_secs(20))
                .wait_for_server(true);
            match ShmStream::connect(path, connect, &ShmOptions::new()) {
                Ok(mut s) => {
                    let mut b = [0u8; 1];
                    assert_eq!(s.read(&mut b).unwrap(), 0);
                }
                Err(_) => std::process::exit(3),
            }
        }
        "splice-echo" => {
            // Echoes ring to ring, without a buffer.
            let mut s = ShmStream::accept_offer(connect(), &ShmOptions::new()).unwrap();
            loop {
                let (rx, tx) = s.split();
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
        "framed-client" | "framed-client-socket" | "framed-client-any" => {
            // Connects through ringlink's secure socket with the default frame options
            // (shared memory offered), or opting out ("-socket"), checks what the hello
            // negotiated (not for "-any"), and echoes typed messages until the server closes.
            let options = match role {
                "framed-client-socket" => FrameOptions::new().transports(Transports::SOCKET),
                _ => FrameOptions::new(),
            };
            let connect = ConnectOptions::new()
                .timeout(Duration::from_secs(20))
                .wait_for_server(true);
            let mut f = FramedStream::connect(path, connect, options).unwrap();
            match role {
                "framed-client" => assert!(f.is_shared_memory(), "shared memory by default"),
                "framed-client-socket" => assert!(!f.is_shared_memory(), "this side opted out"),
                _ => {}
            }
            while let Some(msg) = f.recv::<(u32, Vec<u8>)>().unwrap() {
                f.send(&msg).unwrap();
            }
        }
        "abuse-wakes-client" => {
            // A hostile client: clears O_NONBLOCK on every wake-up descriptor it
            // holds, saturates what can be saturated, raises every parked flag so the
            // server wakes it on each commit, and never reads a wake-up; it keeps the
            // server's ring drained by moving `head` itself, so the server writes on.
            let s = ShmStream::accept_offer(connect(), &ShmOptions::new()).unwrap();
            abuse_wakes(&s);
            // Until the server closes its side (its `closed` flag in ring A).
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) && !peer_closed(&s, 0) {
                drain_rings(&s);
                std::thread::yield_now();
            }
        }
        "abuse-wakes-server-leaves" => {
            // A hostile server: offers, abuses its wake-ups as above, and leaves.
            let s = ShmStream::offer(connect(), &ShmOptions::new()).unwrap();
            abuse_wakes(&s);
            std::process::exit(0);
        }
        "wake-storm-server"
        | "wake-storm-writer-server"
        | "bad-tag-server"
        | "partial-wake-server" => {
            // A hostile server that wakes the client without end and sends nothing:
            // well-formed wake-ups for its reader (which waits) or for its writer
            // (which does not), or malformed ones.
            let s = ShmStream::offer(connect(), &ShmOptions::new()).unwrap();
            let record: &[u8] = match role {
                "wake-storm-server" => &wake_record(FOR_READER),
                "wake-storm-writer-server" => &wake_record(FOR_WRITER),
                "bad-tag-server" => &wake_record(0b11 << 62),
                _ => &[0x40, 0, 0],
            };
            // Until the client closes its side (its `closed` flag in ring B).
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) && !peer_closed(&s, 1) {
                for fd in s.raw_wake_fds() {
                    send_raw(fd, record);
                }
                if role == "partial-wake-server" {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        "semaphore-offer" => {
            // An offer that slips in a wake-up object of its own beside the memfd: a
            // semaphore-mode eventfd with a large count (each read takes one, so
            // `poll` would say "readable" forever).
            let sock = connect();
            let sem = || {
                // SAFETY: plain eventfd(2) call.
                let fd = unsafe { libc::eventfd(1 << 30, libc::EFD_SEMAPHORE | libc::EFD_CLOEXEC) };
                assert!(fd >= 0);
                // SAFETY: a fresh descriptor nothing else owns.
                unsafe { OwnedFd::from_raw_fd(fd) }
            };
            let (memfd, _map) = sealed_ring_mapping(4096);
            let b = sem();
            send_fds(&sock, b'S', &[memfd.as_raw_fd(), b.as_raw_fd()]);
            // Keep the descriptors alive until the answer (or the close).
            let mut byte = [0u8; 1];
            let _ = (&sock).read(&mut byte);
        }
        "never-reading-server" => {
            // A hostile server speaking the wire protocol itself: it makes its end of
            // the connection blocking, never reads a wake-up, raises every parked flag
            // (so the client wakes it on every commit), and frees the client's ring by
            // moving `head` itself, waking the client's writer when it had filled it.
            let sock = connect();
            let (memfd, (ptr, len)) = sealed_ring_mapping(4096);
            // SAFETY: fcntl on a descriptor this process owns.
            let flags = unsafe { libc::fcntl(sock.as_raw_fd(), libc::F_GETFL) };
            // SAFETY: as above.
            let cleared =
                unsafe { libc::fcntl(sock.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) };
            assert_eq!(cleared, 0);
            let rings = [ptr, ptr.wrapping_add(len / 2)];
            for ring in rings {
                poke_word(ring, PRODUCER_PARKED, 1);
                poke_word(ring, CONSUMER_PARKED, 1);
            }
            send_fds(&sock, b'S', &[memfd.as_raw_fd()]);
            let mut ack = [0u8; 1];
            assert_eq!((&sock).read(&mut ack).unwrap(), 1);
            let start = Instant::now();
            // SAFETY: a header word inside the live mapping.
            let closed = || unsafe { rings[1].add(TAIL + 4).cast::<u32>().read_volatile() != 0 };
            while start.elapsed() < Duration::from_secs(10) && !closed() {
                // SAFETY: as above.
                let tail = unsafe { rings[1].add(TAIL).cast::<u32>().read_volatile() };
                // SAFETY: as above.
                let head = unsafe { rings[1].add(HEAD).cast::<u32>().read_volatile() };
                if tail != head {
                    poke_word(rings[1], HEAD, tail);
                    send_raw(sock.as_raw_fd(), &wake_record(FOR_WRITER));
                }
                std::thread::yield_now();
            }
        }
        "silent-clients" => {
            // Two clients that connect and then say nothing at all.
            let _a = UnixStream::connect(path).unwrap();
            let _b = UnixStream::connect(path).unwrap();
            std::thread::sleep(Duration::from_secs(10));
        }
        "good-client" => {
            let connect = ConnectOptions::new().timeout(Duration::from_secs(5));
            let options = ShmOptions::new().handshake_timeout(Duration::from_secs(2));
            let mut s = ShmStream::connect(path, connect, &options).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5)));
            s.write_all(b"good").unwrap();
            let mut back = [0u8; 4];
            s.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"good");
        }
        other => panic!("unknown child role {other}"),
    }
}

/// Offsets of the parked flags in a ring header (producer's and consumer's line).
const PRODUCER_PARKED: usize = 128 + 8;
const CONSUMER_PARKED: usize = 256 + 8;
const TAIL: usize = 128;
const HEAD: usize = 256;

/// The two rings of a stream's mapping: each ring's span is half of it.
fn rings(s: &ShmStream) -> [*mut u8; 2] {
    let (ptr, len) = s.raw_mapping();
    // SAFETY: `len / 2 < len`: the second ring starts inside the mapping.
    [ptr, unsafe { ptr.add(len / 2) }]
}

/// Writes a header word of the live mapping, as a hostile peer does.
fn poke_word(ring: *mut u8, at: usize, value: u32) {
    // SAFETY: `at` is a 4-aligned word of the ring's 384-byte header, inside the
    // mapping; this process plays a peer that writes shared memory at will.
    unsafe { ring.add(at).cast::<u32>().write_volatile(value) };
}

/// Everything a peer can do to its wake-up descriptors: clear `O_NONBLOCK` (on an
/// open file both sides share, that is the other side's flag too), saturate an
/// eventfd's counter (2^64 - 2: a further write blocks), never read them, and
/// raise every parked flag so the other side wakes it on every commit and release.
fn abuse_wakes(s: &ShmStream) {
    for fd in s.raw_wake_fds() {
        // SAFETY: fcntl on a descriptor the stream owns and keeps open.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        // SAFETY: as above.
        let cleared = unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) };
        assert_eq!(cleared, 0);
        if is_eventfd(fd) {
            let max: u64 = u64::MAX - 1;
            // SAFETY: writes 8 bytes from a valid u64.
            unsafe { libc::write(fd, (&max as *const u64).cast(), 8) };
        }
    }
    for ring in rings(s) {
        poke_word(ring, PRODUCER_PARKED, 1);
        poke_word(ring, CONSUMER_PARKED, 1);
    }
}

/// Whether the producer of ring `index` (0: A, offerer to acceptor; 1: B) has closed.
fn peer_closed(s: &ShmStream, index: usize) -> bool {
    // SAFETY: a header word inside the live mapping.
    unsafe { rings(s)[index].add(TAIL + 4).cast::<u32>().read_volatile() != 0 }
}

/// Frees both rings by moving each `head` to its `tail`, without reading.
fn drain_rings(s: &ShmStream) {
    for ring in rings(s) {
        // SAFETY: a header word inside the live mapping.
        let tail = unsafe { ring.add(TAIL).cast::<u32>().read_volatile() };
        poke_word(ring, HEAD, tail);
    }
}

fn is_eventfd(fd: i32) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|l| l.as_os_str() == "anon_inode:[eventfd]")
}

/// The wire format of a wake-up, spelled out as a peer sees it: a little-endian
/// `u64` whose top two bits say which half it is for, the rest its send time.
const FOR_READER: u64 = 0b01 << 62;
const FOR_WRITER: u64 = 0b10 << 62;

fn wake_record(tag: u64) -> [u8; 8] {
    (tag | 1).to_le_bytes()
}

/// Sends `bytes` on the socket `fd`, never blocking.
fn send_raw(fd: i32, bytes: &[u8]) {
    // SAFETY: sends from a valid buffer of `bytes.len()` bytes.
    unsafe {
        libc::send(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
}

/// Runs `f` on a thread and waits at most `limit` for it: a victim that blocks
/// forever fails the test instead of hanging it.
fn finishes_within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what}: still blocked after {limit:?}"))
}

/// A sealed memfd holding two freshly initialised rings of `cap` bytes, as a
/// ringlink offerer makes it; the mapping is returned to keep it alive.
fn sealed_ring_mapping(cap: usize) -> (OwnedFd, (*mut u8, usize)) {
    let span = (ringlink_core::ring::HEADER_SIZE + cap).div_ceil(4096) * 4096;
    let len = 2 * span;
    // SAFETY: valid name and flags.
    let fd = unsafe {
        libc::memfd_create(
            c"hostile".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    assert!(fd >= 0);
    // SAFETY: a fresh descriptor nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain calls on our memfd.
    unsafe {
        assert_eq!(libc::ftruncate(fd, len as libc::off_t), 0);
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        assert_eq!(libc::fcntl(fd, libc::F_ADD_SEALS, seals), 0);
    }
    // SAFETY: a fresh shared mapping of our memfd.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED);
    let ptr = ptr.cast::<u8>();
    for at in [0, span] {
        // SAFETY: both rings lie inside the fresh mapping, which nobody uses yet.
        unsafe { ringlink_core::ring::RawRing::init(ptr.add(at), span, cap) }.unwrap();
    }
    (memfd, (ptr, len))
}

/// Sends `tag` with `fds` attached (`SCM_RIGHTS`).
fn send_fds(sock: &UnixStream, tag: u8, fds: &[i32]) {
    let mut byte = [tag];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cmsg = [0u64; 16];
    let data_len = std::mem::size_of_val(fds) as u32;
    // SAFETY: msghdr is plain data; the control buffer (128 bytes) holds one cmsghdr
    // with up to 16 descriptors, so the CMSG macros stay inside it.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(data_len) as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(data_len) as _;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr().cast::<u8>(),
            libc::CMSG_DATA(c),
            data_len as usize,
        );
        assert_eq!(libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL), 1);
    }
}

/// A hostile client must not block the server in a write or in its drop: it
/// clears `O_NONBLOCK` on its wake-up descriptors, saturates them, raises every
/// parked flag (so the server wakes it on each commit) and never reads one.
#[test]
fn a_client_abusing_its_wake_ups_cannot_block_the_server() {
    let (child, listener, _p) = spawn_peer("abuse-wakes-client");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let s = ShmStream::offer(sock, &ShmOptions::new()).unwrap();
    // Wait (bounded) until the attack is in place: the client's parked flag is up.
    let [ring_a, _] = rings(&s);
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: a header word inside the live mapping.
    while unsafe { ring_a.add(CONSUMER_PARKED).cast::<u32>().read_volatile() } == 0 {
        assert!(
            Instant::now() < deadline,
            "the client never raised its flag"
        );
        std::thread::yield_now();
    }
    let written = finishes_within(
        "the server writing, then dropping",
        Duration::from_secs(5),
        move || {
            let mut s = s;
            s.set_write_timeout(Some(Duration::from_secs(2)));
            let mut written = 0;
            for _ in 0..2000 {
                match s.write(&[7u8; 64]) {
                    Ok(n) => written += n,
                    Err(e) => panic!("the server's write failed: {e}"),
                }
            }
            drop(s);
            written
        },
    );
    assert_eq!(written, 2000 * 64);
    let _ = wait_child(child, Duration::from_secs(20));
}

/// A hostile server that never reads the client's wake-ups (and makes its end
/// blocking): every wake-up the client sends still returns at once, and its writes
/// and drop finish.
#[test]
fn a_server_that_never_reads_wake_ups_cannot_block_the_client() {
    let (child, listener, _p) = spawn_peer("never-reading-server");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let s = ShmStream::accept_offer(sock, &ShmOptions::new()).unwrap();
    let written = finishes_within(
        "the client writing, then dropping",
        Duration::from_secs(5),
        move || {
            let mut s = s;
            s.set_write_timeout(Some(Duration::from_secs(2)));
            let mut written = 0;
            // Far more commits, each one waking the "parked" server, than a socket
            // buffer holds wake-ups.
            for _ in 0..20_000 {
                written += s.write(&[3u8; 8]).expect("the client's write");
            }
            drop(s);
            written
        },
    );
    assert_eq!(written, 20_000 * 8);
    assert!(wait_child(child, Duration::from_secs(20)).success());
}

/// A hostile server abuses its wake-ups the same way and leaves: the client
/// finishes its writes with an error and drops its stream, within bounds.
#[test]
fn a_server_that_abuses_its_wake_ups_and_leaves_cannot_block_the_client() {
    let (child, listener, _p) = spawn_peer("abuse-wakes-server-leaves");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let s = ShmStream::accept_offer(sock, &ShmOptions::new()).unwrap();
    assert!(wait_child(child, Duration::from_secs(20)).success());
    let err = finishes_within(
        "the client writing, then dropping",
        Duration::from_secs(5),
        move || {
            let mut s = s;
            let err = loop {
                if let Err(e) = s.write(&[1u8; 1000]) {
                    break e;
                }
            };
            drop(s);
            err
        },
    );
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        ),
        "{err}"
    );
}

/// A server that wakes the client again and again with nothing to read (the
/// effect of a semaphore-mode eventfd, or of a peer that keeps writing one) is an
/// `InvalidData` error for that connection, at once and for little CPU: not a
/// core spinning until the read times out.
#[test]
fn a_wake_up_storm_is_an_error_not_a_spinning_core() {
    parked_reader_fails_with_invalid_data("wake-storm-server");
}

/// A storm of wake-ups for the writing half, which does not wait, while the
/// reading half is parked (and so drains the socket for both): the same error,
/// not a reader that polls without end.
#[test]
fn a_wake_up_storm_for_the_half_that_does_not_wait_is_an_error_too() {
    parked_reader_fails_with_invalid_data("wake-storm-writer-server");
}

/// A wake-up whose tag names no half is an `InvalidData` error.
#[test]
fn a_wake_up_with_a_bad_tag_is_invalid_data() {
    parked_reader_fails_with_invalid_data("bad-tag-server");
}

/// Bytes that are not whole wake-up records are an `InvalidData` error.
#[test]
fn a_partial_wake_up_is_invalid_data() {
    parked_reader_fails_with_invalid_data("partial-wake-server");
}

/// The client parks to read while the server (`role`) plays a hostile waker: the
/// read fails with `InvalidData` soon, for little CPU.
fn parked_reader_fails_with_invalid_data(role: &str) {
    let (child, listener, _p) = spawn_peer(role);
    let sock = accept_within(&listener, Duration::from_secs(20));
    let mut s = ShmStream::accept_offer(sock, &ShmOptions::new()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3)));
    let (cpu, start) = (thread_cpu(), Instant::now());
    let mut b = [0u8; 16];
    let err = s.read(&mut b).unwrap_err();
    let (cpu, took) = (thread_cpu() - cpu, start.elapsed());
    eprintln!("{role}: {err} after {took:?}, {cpu:?} of CPU");
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(cpu < Duration::from_millis(300), "used {cpu:?} of CPU");
    drop(s);
    let _ = wait_child(child, Duration::from_secs(20));
}

/// The same storm against the tokio stream: the task's read fails with
/// `InvalidData` instead of keeping the runtime thread busy.
#[cfg(feature = "tokio")]
#[test]
fn a_wake_up_storm_is_an_error_for_the_tokio_stream_too() {
    use ringlink_unix::shm::tokio::AsyncShmStream;
    use tokio::io::AsyncReadExt;

    let (child, listener, _p) = spawn_peer("wake-storm-server");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let s = ShmStream::accept_offer(sock, &ShmOptions::new()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (cpu, start) = (thread_cpu(), Instant::now());
    let result = rt.block_on(async {
        let mut s = AsyncShmStream::from_std(s).unwrap();
        let mut b = [0u8; 16];
        tokio::time::timeout(Duration::from_secs(3), s.read(&mut b)).await
    });
    let (cpu, took) = (thread_cpu() - cpu, start.elapsed());
    let err = result.expect("the read ended before 3 s").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(cpu < Duration::from_millis(300), "used {cpu:?} of CPU");
    drop(rt);
    let _ = wait_child(child, Duration::from_secs(20));
}

/// An offer that carries a wake-up object of its own beside the memfd (here a
/// semaphore-mode eventfd): the offer is refused before it is acknowledged.
#[test]
fn an_offer_with_an_extra_descriptor_is_refused() {
    let (child, listener, _p) = spawn_peer("semaphore-offer");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let (cpu, start) = (thread_cpu(), Instant::now());
    let result = ShmStream::accept_offer(sock, &ShmOptions::new()).map(|mut s| {
        // Accepted: an idle read must still not spin.
        s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
    });
    let cpu = thread_cpu() - cpu;
    assert!(
        cpu < Duration::from_millis(300),
        "used {cpu:?} of CPU in {:?}",
        start.elapsed()
    );
    let err = result.expect_err("an offer with an extra descriptor was accepted");
    assert_eq!(err.kind(), ringlink_unix::ErrorKind::InvalidData, "{err}");
    let _ = wait_child(child, Duration::from_secs(20));
}

/// Two clients that connect and say nothing must not cost a good client anything:
/// the accept loop hands each handshake to the connection's own thread.
#[test]
fn silent_clients_do_not_delay_a_good_one() {
    let path = temp_socket("silent");
    let listener = Listener::bind(&path, ListenerOptions::new()).unwrap();
    let silent = spawn_child("silent-clients", &path);
    let options = ShmOptions::new().handshake_timeout(Duration::from_secs(3));
    let (accepted_tx, accepted) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        for _ in 0..3 {
            let handshake = ShmStream::accept(&listener, &options).unwrap();
            accepted_tx.send(()).unwrap();
            std::thread::spawn(move || {
                // A silent client's handshake times out here, on its own thread.
                if let Ok(mut s) = handshake.complete() {
                    let mut buf = [0u8; 4];
                    if s.read_exact(&mut buf).is_ok() {
                        let _ = s.write_all(&buf);
                    }
                }
            });
        }
    });
    for _ in 0..2 {
        accepted
            .recv_timeout(Duration::from_secs(20))
            .expect("the silent clients connect");
    }
    let start = Instant::now();
    let good = spawn_child("good-client", &path);
    let status = wait_child(good, Duration::from_secs(20));
    let took = start.elapsed();
    assert!(
        status.success(),
        "the good client failed behind two silent ones"
    );
    assert!(
        took < Duration::from_millis(2500),
        "the good client took {took:?}"
    );
    server.join().unwrap();
    let mut silent = silent;
    let _ = silent.kill();
    let _ = silent.wait();
}

/// A burst of slow answers makes every wait park; afterwards quick answers (2 µs of
/// work on the peer) must be caught by the spin again, not parked for one by one:
/// the budget follows what a park costs, and the peer's lateness does not shrink it.
#[test]
fn the_spin_budget_recovers_after_a_burst_of_parks() {
    let (child, listener, _p) = spawn_peer("paced-echo");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let mut s = ShmStream::offer(sock, &ShmOptions::new()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10)));
    let round = |s: &mut ShmStream, byte: u8| {
        s.write_all(&[byte]).unwrap();
        let mut back = [0u8; 1];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back[0], byte);
    };
    for _ in 0..10 {
        round(&mut s, b'F');
    }
    const SLOW: u64 = 30;
    let (_, before) = s.spin_stats();
    for _ in 0..SLOW {
        round(&mut s, b'S');
    }
    let ([budget, _], after_burst) = s.spin_stats();
    assert!(
        after_burst - before >= SLOW / 2,
        "the slow answers were parked for ({} parks)",
        after_burst - before
    );
    assert!(
        budget >= Duration::from_micros(2),
        "after a burst of parks the read budget is {budget:?}: it shrank with the peer's lateness"
    );
    const QUICK: u64 = 2000;
    for _ in 0..QUICK {
        round(&mut s, b'F');
    }
    let ([budget_now, _], end) = s.spin_stats();
    let parks = end - after_burst;
    eprintln!(
        "budget after the burst {budget:?}, at the end {budget_now:?}; {parks} parks in {QUICK} quick rounds"
    );
    assert!(
        parks < QUICK / 4,
        "{parks} of {QUICK} quick answers were parked for (budget {budget:?} after the burst)"
    );
    drop(s);
    assert!(wait_child(child, Duration::from_secs(20)).success());
}

/// Descriptors this process has open.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Each side of a connection holds one descriptor once it is up, its socket: the
/// memfd is closed once mapped, and the wake-ups of both directions travel over
/// the socket (so 5000 connections with both sides in one process, and 10,000 with
/// one side, fit a 20,000-descriptor limit).
#[test]
fn a_connection_holds_one_descriptor_on_each_side() {
    let (child, listener, _p) = spawn_peer("count-fds");
    let before = open_fds();
    let sock = accept_within(&listener, Duration::from_secs(20));
    let mut s = ShmStream::offer(sock, &ShmOptions::new()).unwrap();
    assert_eq!(open_fds() - before, 1, "the offering side's descriptors");
    let mut held = [0u8; 1];
    s.read_exact(&mut held).unwrap();
    assert_eq!(held[0], 1, "the accepting side's descriptors");
    drop(s);
    assert!(wait_child(child, Duration::from_secs(20)).success());
}

/// A shared-memory connection keeps the listener's connection slot while it lives:
/// with `max_connections(1)` a second client is refused, and one is open.
#[test]
fn max_connections_counts_shared_memory_connections() {
    let path = temp_socket("shm-max");
    let listener = Listener::bind(&path, ListenerOptions::new().max_connections(1)).unwrap();
    let first = spawn_child("shm-connect-hold", &path);
    let stream = listener.accept_timeout(Duration::from_secs(20)).unwrap();
    let shm = ringlink_unix::shm::ShmHandshake::new(stream, &ShmOptions::new())
        .complete()
        .unwrap();
    assert_eq!(
        listener.open_connections(),
        Some(1),
        "the shared-memory connection holds its slot"
    );
    let second = spawn_child("shm-connect-hold", &path);
    let deadline = Instant::now() + Duration::from_secs(20);
    while listener.refused_count() == 0 {
        assert!(Instant::now() < deadline, "the second client never came");
        if let Ok(extra) = listener.accept_timeout(Duration::from_millis(100)) {
            panic!("a second connection was admitted: {extra:?}");
        }
    }
    assert_eq!(wait_child(second, Duration::from_secs(20)).code(), Some(3));
    assert_eq!(listener.open_connections(), Some(1));
    drop(shm);
    assert!(wait_child(first, Duration::from_secs(20)).success());
    assert_eq!(listener.open_connections(), Some(0));
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
    r.reunite(w).expect("halves of one stream")
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

/// Both halves of a split stream parked at once on the connection's one socket (the
/// reader on an empty ring, the writer on a full one): a SIGKILLed peer wakes both.
#[test]
fn peer_killed_while_both_halves_are_parked() {
    let (mut child, listener, _p) = spawn_peer("idle");
    let sock = accept_within(&listener, Duration::from_secs(20));
    let s = ShmStream::offer(sock, &ShmOptions::new().capacity(4096)).unwrap();
    let [ring_a, ring_b] = rings(&s).map(|p| p as usize);
    let (mut rx, mut tx) = s.into_split();
    // No timeouts: only the dead peer's socket can wake these.
    let reader = std::thread::spawn(move || rx.read(&mut [0u8; 1]).unwrap_err());
    let writer = std::thread::spawn(move || tx.write_all(&[1u8; 1 << 20]).unwrap_err());
    // SAFETY: header words inside the live mapping (the halves keep it mapped).
    let flag = |ring: usize, at: usize| unsafe {
        (ring as *const u8).add(at).cast::<u32>().read_volatile() != 0
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(flag(ring_a, PRODUCER_PARKED) && flag(ring_b, CONSUMER_PARKED)) {
        assert!(Instant::now() < deadline, "the halves never both parked");
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    child.kill().unwrap();
    for (what, err) in [("reader", reader.join()), ("writer", writer.join())] {
        let err = err.unwrap();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{what}: {err}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
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
    let mut f = FramedStream::new(stream, FrameOptions::new()).unwrap();
    assert!(
        f.is_shared_memory(),
        "the default hello negotiated shared memory"
    );
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

/// A framed stream split into halves sends from one thread while another receives,
/// over shared memory (the default); dropping the sender ends the stream.
#[test]
fn a_split_framed_stream_sends_and_receives_on_two_threads_over_shared_memory() {
    fn send<T: Send>(_: &T) {}
    let path = temp_socket("framed-split");
    let listener = Listener::bind(&path, ListenerOptions::new()).unwrap();
    let child = spawn_child("framed-client", &path);
    let mut f = FramedStream::new(listener.accept().unwrap(), FrameOptions::new()).unwrap();
    assert!(f.is_shared_memory());
    f.set_timeouts(Some(Duration::from_secs(20)), Some(Duration::from_secs(20)))
        .unwrap();
    let (mut rx, mut tx) = f.into_split();
    assert!(tx.is_shared_memory());
    send(&rx);
    send(&tx);
    const N: u32 = 500;
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            tx.send(&(i, vec![i as u8; (i as usize * 53) % 5000]))
                .unwrap();
        }
    });
    for i in 0..N {
        let back: (u32, Vec<u8>) = rx.recv().unwrap().expect("an echo");
        assert_eq!(back, (i, vec![i as u8; (i as usize * 53) % 5000]));
    }
    sender.join().unwrap();
    assert_eq!(
        rx.recv::<(u32, Vec<u8>)>().unwrap(),
        None,
        "the client closed after our end"
    );
    assert!(wait_child(child, Duration::from_secs(20)).success());
}

#[test]
fn framed_mode_stays_on_the_socket_when_either_side_opts_out() {
    for (server, client) in [
        (FrameOptions::new(), "framed-client-socket"),
        (
            FrameOptions::new().transports(Transports::SOCKET),
            "framed-client-any",
        ),
    ] {
        let path = temp_socket("framed-socket");
        let listener = Listener::bind(&path, ListenerOptions::new()).unwrap();
        let child = spawn_child(client, &path);
        let mut f = FramedStream::new(listener.accept().unwrap(), server).unwrap();
        assert!(!f.is_shared_memory(), "{client}: one side opted out");
        f.set_timeouts(Some(Duration::from_secs(20)), Some(Duration::from_secs(20)))
            .unwrap();
        f.send(&(7u32, vec![7u8; 3])).unwrap();
        let back: (u32, Vec<u8>) = f.recv().unwrap().expect("an echo");
        assert_eq!(back, (7, vec![7u8; 3]));
        drop(f);
        assert!(wait_child(child, Duration::from_secs(20)).success());
    }
    // Two unnamed sockets (no side to create the mapping): the socket, by default too.
    let (a, b) = ringlink_unix::Stream::pair().unwrap();
    let t = std::thread::spawn(move || FramedStream::new(b, FrameOptions::new()).unwrap());
    let mut a = FramedStream::new(a, FrameOptions::new()).unwrap();
    let mut b = t.join().unwrap();
    assert!(!a.is_shared_memory() && !b.is_shared_memory());
    a.send(&7u8).unwrap();
    assert_eq!(b.recv::<u8>().unwrap(), Some(7));
}

/// A framed stream set nonblocking through `FramedStream::set_nonblocking` says
/// `WouldBlock` over shared memory too, instead of waiting for the frame.
#[test]
fn a_nonblocking_framed_stream_over_shared_memory_does_not_block() {
    let path = temp_socket("framed-nonblocking");
    let listener = Listener::bind(&path, ListenerOptions::new()).unwrap();
    let child = spawn_child("framed-client", &path);
    let stream = listener.accept().unwrap();
    // A socket already nonblocking when the hello runs (as under an event loop).
    stream.set_nonblocking(true).unwrap();
    let mut f = FramedStream::new(stream, FrameOptions::new()).unwrap();
    assert!(f.is_shared_memory());
    // Without nonblocking mode the read would wait out this timeout.
    f.set_timeouts(Some(Duration::from_secs(5)), None).unwrap();
    f.set_nonblocking(true).unwrap();
    let err = finishes_within_ref(|| f.recv::<(u32, Vec<u8>)>().unwrap_err());
    assert_eq!(err.kind(), ringlink_unix::ErrorKind::WouldBlock, "{err}");
    f.set_nonblocking(false).unwrap();
    f.set_timeouts(Some(Duration::from_secs(20)), Some(Duration::from_secs(20)))
        .unwrap();
    f.send(&(1u32, vec![1u8])).unwrap();
    let back: (u32, Vec<u8>) = f.recv().unwrap().expect("an echo");
    assert_eq!(back, (1, vec![1u8]));
    drop(f);
    assert!(wait_child(child, Duration::from_secs(20)).success());
}

/// Runs `f` here and fails if it took longer than a blocking call would be allowed.
fn finishes_within_ref<T>(f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "blocked for {:?}",
        start.elapsed()
    );
    out
}

/// The tokio handshake waits in the reactor: while a slow client takes 300 ms to
/// answer the offer, other tasks on the same single-threaded runtime keep running.
#[cfg(feature = "tokio")]
#[test]
fn the_tokio_handshake_does_not_block_the_runtime() {
    use ringlink_unix::shm::tokio::AsyncShmStream;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = temp_socket("tokio-handshake");
    rt.block_on(async {
        let listener = ringlink_unix::tokio::Listener::bind(&path, ListenerOptions::new()).unwrap();
        let child = spawn_child("slow-echo", &path);
        let stream = tokio::time::timeout(Duration::from_secs(20), listener.accept())
            .await
            .expect("the child connects")
            .unwrap();
        let ticks = std::sync::Arc::new(AtomicU64::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let mut s = AsyncShmStream::offer(stream, &ShmOptions::new())
            .await
            .unwrap();
        let during = ticks.load(Ordering::Relaxed);
        assert!(
            during >= 10,
            "only {during} ticks while the handshake waited"
        );
        s.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut back))
            .await
            .expect("an echo")
            .unwrap();
        assert_eq!(&back, b"ping");
        ticker.abort();
        drop(s);
        assert!(wait_child(child, Duration::from_secs(20)).success());
    });
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
        // Many small round trips: each one parks, and stale wake-ups from the
        // rounds before must never add up to a "peer waking us for nothing".
        for round in 0..300u32 {
            s.write_all(&[round as u8]).await.unwrap();
            let mut back = [0u8; 1];
            tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut back))
                .await
                .expect("an echo within 20 s")
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(back[0], round as u8);
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
