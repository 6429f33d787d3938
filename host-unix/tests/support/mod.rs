//! What the cross-process tests share: fresh socket paths, this test binary re-run as
//! the peer (its `child_process_entry` test, selected by [`CHILD_ENV`]), bounded
//! accepts and waits, and a byte checksum.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::ErrorKind;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const CHILD_ENV: &str = "RINGLINK_SHM_CHILD";

/// A fresh directory per call: the pid, a per-process counter and the clock make
/// the name unique (tests of one binary run in parallel, and reruns reuse pids).
pub fn temp_socket(tag: &str) -> PathBuf {
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
pub fn spawn_child(role: &str, path: &std::path::Path) -> Child {
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
pub fn spawn_peer(role: &str) -> (Child, UnixListener, PathBuf) {
    let path = temp_socket(role);
    let listener = UnixListener::bind(&path).unwrap();
    (spawn_child(role, &path), listener, path)
}

/// Accepts one connection within a deadline (so a child that failed to start cannot hang us).
pub fn accept_within(listener: &UnixListener, limit: Duration) -> UnixStream {
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

pub fn wait_child(mut child: Child, limit: Duration) -> std::process::ExitStatus {
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

pub fn byte_sum(data: &[u8]) -> u64 {
    data.iter().map(|&b| u64::from(b)).sum()
}

/// CPU time (user + system) the calling thread has used.
pub fn thread_cpu() -> Duration {
    // SAFETY: `rusage` is plain data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a `rusage`.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
