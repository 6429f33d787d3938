//! Shared helpers for ringlink's integration tests: private temporary directories,
//! child processes that are always reaped, deadlines, and deterministic test data.
//!
//! Every test builds its names inside a fresh temporary directory, so tests never
//! collide, and every wait in a test is bounded, so no test can hang.
#![cfg(unix)]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A typed message exchanged by the typed echo tests: the child answers each
/// `Ping` with a `Pong` whose `seq` is one more and whose `data` is reversed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestMessage {
    /// Sent by the test.
    Ping {
        /// Sequence number.
        seq: u64,
        /// Payload.
        data: Vec<u8>,
        /// A label, to exercise strings.
        label: String,
    },
    /// The child's answer.
    Pong {
        /// `seq + 1`.
        seq: u64,
        /// The payload reversed.
        data: Vec<u8>,
    },
}

/// A temporary directory (mode 0700, random name) removed with everything in it on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh directory under the system temp directory; `tag` makes it recognisable.
    pub fn new(tag: &str) -> TempDir {
        use std::os::unix::fs::DirBuilderExt;
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // Short names: socket paths must fit in sun_path.
        let path = std::env::temp_dir().join(format!(
            "rl-{tag}-{}-{}-{nanos:x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .expect("create a test directory");
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A socket path inside the directory.
    pub fn sock(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A child process of the test helper binary, killed and reaped on drop, whose stdout
/// lines are read with a timeout.
#[derive(Debug)]
pub struct TestChild {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl TestChild {
    /// Starts `exe` (pass `env!("CARGO_BIN_EXE_ringlink-test-child")`) with `args`.
    pub fn spawn(exe: &str, args: &[&str]) -> TestChild {
        Self::spawn_with(Command::new(exe).args(args))
    }

    /// Starts a prepared command with piped stdin/stdout.
    pub fn spawn_with(command: &mut Command) -> TestChild {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the test child");
        let stdin = child.stdin.take();
        let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        TestChild {
            child,
            stdin,
            lines: rx,
        }
    }

    /// The next line the child prints, or a panic naming `what` after `timeout`.
    pub fn line(&self, what: &str, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("test child printed no line for {what} within {timeout:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!(
                    "test child closed its output (exited or died) before printing a line for {what}"
                )
            }
        }
    }

    /// Waits for the child to print `ready` (it has bound or connected).
    pub fn wait_ready(&self) {
        let line = self.line("ready", Duration::from_secs(20));
        assert_eq!(line, "ready", "test child did not get ready");
    }

    /// Sends one line to the child's stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to the test child");
        stdin.flush().expect("flush the test child's stdin");
    }

    /// Closes the child's stdin, which tells well-behaved children to exit.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the child with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the child to exit, at most `timeout` (then kills it and panics).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the test child") {
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!("test child did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// CPU time (user + system) the child has used so far, from `/proc` (Linux only).
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        // SAFETY: `sysconf` has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let ticks = u64::try_from(ticks).ok().filter(|t| *t > 0)?;
        Some(Duration::from_millis((utime + stime) * 1000 / ticks))
    }
}

impl Drop for TestChild {
    fn drop(&mut self) {
        self.stdin = None;
        self.kill();
    }
}

/// Raises this process's soft `RLIMIT_NOFILE` to `want` (or the hard limit, if lower);
/// returns the new soft limit.
pub fn raise_fd_limit(want: u64) -> u64 {
    // SAFETY: `rlimit` is plain old data; all-zero is a valid value.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `lim` is a live out-parameter.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    let target = (want as libc::rlim_t).min(lim.rlim_max);
    if lim.rlim_cur < target {
        lim.rlim_cur = target;
        // SAFETY: `lim` is a live, initialised `rlimit`.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
    // SAFETY: `lim` is a live out-parameter.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    lim.rlim_cur as u64
}

/// Sets this process's soft and hard `RLIMIT_NOFILE` to `limit`.
pub fn set_fd_limit(limit: u64) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: limit as libc::rlim_t,
        rlim_max: limit as libc::rlim_t,
    };
    // SAFETY: `lim` is a live, initialised `rlimit`.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the tests run as root (some security tests need to switch users).
pub fn is_root() -> bool {
    // SAFETY: `geteuid` cannot fail and has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Deterministic pseudo-random bytes (xorshift), so a receiver can recompute what a
/// sender sent from `seed` and an offset alone.
pub fn pattern_byte(seed: u64, offset: u64) -> u8 {
    let mut x = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(offset.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    x as u8
}

/// FNV-1a over `bytes`, continuing from `state` (start with [`FNV_START`]).
pub fn fnv1a(mut state: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        state ^= u64::from(b);
        state = state.wrapping_mul(0x0000_0100_0000_01B3);
    }
    state
}

/// Initial state of [`fnv1a`].
pub const FNV_START: u64 = 0xCBF2_9CE4_8422_2325;

/// Runs `f` until it returns `Some`, sleeping briefly between tries, for at most `timeout`.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reports a check that cannot run here, in the test's output, and fails the test when
/// `CI=true`: in CI a check that cannot run is a failure, never a quiet pass. Returns
/// (so the caller can return early) only outside CI.
pub fn cannot_run(check: &str, reason: &str) {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if in_ci {
        panic!("{check} cannot run here ({reason}), and CI=true makes that a failure");
    }
    eprintln!("SKIPPED {check}: {reason} (set CI=true to make this a failure)");
}
