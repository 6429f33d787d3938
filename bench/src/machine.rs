//! Facts about the machine and this process: CPU, load, memory high-water mark,
//! open-file and thread budgets. Linux `/proc` and cgroup files; absent facts are `None`.
//! On Windows the CPU set, the affinity and the CPU time come from Win32
//! (`crate::transports::sys`), and the Unix budgets are unknown.

use std::fs;

use serde::Serialize;

/// The machine a run was measured on, written into the JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `model name` of the first CPU.
    pub cpu: Option<String>,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Kernel release (`uname -r`).
    pub kernel: Option<String>,
    /// `std::env::consts::OS` / `ARCH`.
    pub os: String,
    /// Total memory in MiB.
    pub memory_mib: Option<u64>,
    /// 1-minute load average when the run started: other work on the machine skews figures.
    pub load_average_at_start: Option<f64>,
    /// Soft `RLIMIT_NOFILE` after raising it to the hard limit.
    pub open_file_limit: Option<u64>,
    /// How many more threads this process may start (cgroup `pids`, `threads-max`, `RLIMIT_NPROC`).
    pub thread_budget: Option<u64>,
    /// Whether `--quick` shortened the run.
    pub quick: bool,
    /// Rounds of every row (the median is reported).
    pub rounds: usize,
    /// One blocking wake-up between two threads on one core, µs (the median).
    pub wake_up_same_core_us: Option<f64>,
    /// One blocking wake-up of a thread on another core, µs (the median).
    pub wake_up_across_cores_us: Option<f64>,
    /// `--pin`: the CPUs of the server and the client side, when pinned.
    pub pinned: Option<(usize, usize)>,
    /// The Wine version a Windows run ran under (absent elsewhere): its absolute figures
    /// mean nothing, only its ratios do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wine: Option<String>,
}

impl Machine {
    /// Collects the facts now.
    pub fn probe(quick: bool) -> Machine {
        let cpu = fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        // Windows names the CPU in the environment.
        #[cfg(windows)]
        let cpu = cpu.or_else(|| std::env::var("PROCESSOR_IDENTIFIER").ok());
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string());
        let memory_mib = fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .map(|kib| kib / 1024)
        });
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            memory_mib,
            load_average_at_start: load_average(),
            open_file_limit: open_file_limit(),
            thread_budget: thread_budget(),
            quick,
            rounds: 1,
            wake_up_same_core_us: None,
            wake_up_across_cores_us: None,
            pinned: None,
            #[cfg(windows)]
            wine: crate::transports::sys::wine_version(),
            #[cfg(not(windows))]
            wine: None,
        }
    }

    /// Measures the wake-up latencies (same core, across cores) into the report.
    pub fn measure_wake_ups(&mut self) {
        let cpus = allowed_cpus();
        let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
        if let Some(&first) = cpus.first() {
            self.wake_up_same_core_us = wake_up_latency(first, first).map(us);
        }
        if let (Some(&a), Some(&b)) = (cpus.first(), cpus.get(1)) {
            self.wake_up_across_cores_us = wake_up_latency(a, b).map(us);
        }
    }
}

#[cfg(unix)]
/// The CPUs this thread may run on (`sched_getaffinity`).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable `cpu_set_t` of the size passed.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0
    {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below `CPU_SETSIZE`, within the set.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

#[cfg(unix)]
/// Restricts the calling thread (and the threads it starts from now on) to `cpus`.
pub fn set_affinity(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: `cpu_set_t` is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: `cpu` is below `CPU_SETSIZE`, within the set.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid `cpu_set_t` of the size passed; pid 0 is this thread.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(windows)]
pub use crate::transports::sys::{allowed_cpus, cpu_time, set_affinity};

/// CPU time of this process: on Windows a row's two sides share it (one process).
#[cfg(windows)]
pub fn cpu_time_with_children() -> Option<std::time::Duration> {
    cpu_time()
}

/// The soft open-file limit: Windows has none.
#[cfg(windows)]
pub fn open_file_limit() -> Option<u64> {
    None
}

/// How many more threads this process may start: unknown on Windows.
#[cfg(windows)]
pub fn thread_budget() -> Option<u64> {
    None
}

/// The median time of one blocking wake-up between a thread on `a` and one on `b`:
/// they hand a turn back and forth, each parking until the other wakes it, so every
/// hand-over is one wake-up of a sleeping thread (a futex wait and wake). `None` when
/// the threads cannot be pinned.
pub fn wake_up_latency(a: usize, b: usize) -> Option<std::time::Duration> {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::time::{Duration, Instant};
    const HAND_OVERS: u32 = 400;
    const BATCHES: usize = 7;
    let turn = AtomicU32::new(0);
    let failed = AtomicBool::new(false);
    let mut batches: Vec<Duration> = Vec::with_capacity(BATCHES);
    std::thread::scope(|scope| {
        let main = std::thread::current();
        let (turn, failed) = (&turn, &failed);
        let other = scope.spawn(move || {
            if set_affinity(&[b]).is_err() {
                failed.store(true, Ordering::Release);
                main.unpark();
                return;
            }
            // Odd turns are this thread's: answer each with the next even one.
            let mut next = 1;
            while next < HAND_OVERS * BATCHES as u32 {
                loop {
                    match turn.load(Ordering::Acquire) {
                        u32::MAX => return,
                        t if t == next => break,
                        _ => std::thread::park(),
                    }
                }
                turn.store(next + 1, Ordering::Release);
                main.unpark();
                next += 2;
            }
        });
        let restore = allowed_cpus();
        if set_affinity(&[a]).is_err() {
            failed.store(true, Ordering::Release);
        }
        let mut now = 0;
        for _ in 0..BATCHES {
            let started = Instant::now();
            for _ in 0..HAND_OVERS / 2 {
                if failed.load(Ordering::Acquire) {
                    break;
                }
                turn.store(now + 1, Ordering::Release);
                other.thread().unpark();
                while turn.load(Ordering::Acquire) != now + 2 && !failed.load(Ordering::Acquire) {
                    std::thread::park_timeout(Duration::from_millis(100));
                }
                now += 2;
            }
            batches.push(started.elapsed() / HAND_OVERS);
        }
        if failed.load(Ordering::Acquire) {
            // Release the other thread from its wait.
            turn.store(u32::MAX, Ordering::Release);
            other.thread().unpark();
        }
        let _ = set_affinity(&restore);
    });
    if failed.load(Ordering::Acquire) {
        return None;
    }
    batches.sort();
    batches.get(BATCHES / 2).copied()
}

/// The 1-minute load average.
pub fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
}

#[cfg(unix)]
/// A `kB` field of `/proc/self/status` (`"VmRSS"`, `"VmHWM"`), in KiB.
pub fn status_kib(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(unix)]
/// User plus system CPU time of this process so far.
pub fn cpu_time() -> Option<std::time::Duration> {
    rusage(libc::RUSAGE_SELF)
}

#[cfg(unix)]
/// CPU time (user + system) of this process and of every child process it has
/// waited for: a row's server child and Qt's program count once they are reaped.
pub fn cpu_time_with_children() -> Option<std::time::Duration> {
    Some(rusage(libc::RUSAGE_SELF)? + rusage(libc::RUSAGE_CHILDREN)?)
}

#[cfg(unix)]
fn rusage(who: libc::c_int) -> Option<std::time::Duration> {
    // SAFETY: `rusage` is plain data; all-zero is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`; `who` is RUSAGE_SELF or RUSAGE_CHILDREN.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return None;
    }
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Some(std::time::Duration::from_micros(
        micros(usage.ru_utime) + micros(usage.ru_stime),
    ))
}

#[cfg(unix)]
/// Descriptors a privileged run asks for in one process: the widest rows hold 5,000
/// connections with both sides in the process, two descriptors each with ringlink's
/// shared memory (one per side, its socket); the rest is room for the peers' own.
const WANTED_DESCRIPTORS: libc::rlim_t = 5_000 * 10 + 4_096;

#[cfg(unix)]
/// Raises the soft `RLIMIT_NOFILE` to the hard limit (10,000 connections need about
/// 20,000 descriptors in one process; shared memory needs one per side) and returns
/// the new soft limit. A privileged process first raises the hard limit itself to
/// [`WANTED_DESCRIPTORS`] (within the kernel's `fs.nr_open`); elsewhere that
/// attempt fails quietly and the rows that need more print "not run".
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let nr_open = fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<libc::rlim_t>().ok());
    let wanted = nr_open.map_or(WANTED_DESCRIPTORS, |n| n.min(WANTED_DESCRIPTORS));
    if lim.rlim_max < wanted {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: wanted,
        };
        // SAFETY: `raised` is a valid `rlimit`; without CAP_SYS_RESOURCE the call
        // fails with EPERM and changes nothing.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        }
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid `rlimit` with `rlim_cur <= rlim_max`.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

#[cfg(unix)]
/// The soft `RLIMIT_NOFILE`.
pub fn open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit`.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur)
}

#[cfg(unix)]
/// How many more threads this process may start: the smallest of the cgroup's free
/// `pids`, the kernel's `threads-max` and `RLIMIT_NPROC` (each when known).
pub fn thread_budget() -> Option<u64> {
    let read_u64 =
        |path: &str| -> Option<u64> { fs::read_to_string(path).ok()?.trim().parse().ok() };
    let mut budget: Option<u64> = None;
    let mut limit = |v: u64| budget = Some(budget.map_or(v, |b| b.min(v)));
    if let Some(path) = fs::read_to_string("/proc/self/cgroup").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
    }) {
        let dir = format!("/sys/fs/cgroup{}", path.trim_end_matches('/'));
        if let (Some(max), Some(current)) = (
            read_u64(&format!("{dir}/pids.max")),
            read_u64(&format!("{dir}/pids.current")),
        ) {
            limit(max.saturating_sub(current));
        }
    }
    if let Some(max) = read_u64("/proc/sys/kernel/threads-max") {
        limit(max);
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut lim) } == 0
        && lim.rlim_cur != libc::RLIM_INFINITY
    {
        limit(lim.rlim_cur);
    }
    budget
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory_figures() {
        let rss = status_kib("VmRSS").expect("VmRSS on Linux");
        let hwm = status_kib("VmHWM").expect("VmHWM on Linux");
        assert!(rss > 0 && hwm >= rss, "rss {rss} hwm {hwm}");
        assert_eq!(status_kib("NoSuchField"), None);
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_time().unwrap();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(cpu_time().unwrap() > before);
    }

    #[test]
    fn wake_ups_are_measured_on_one_core_and_across_two() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        let same = wake_up_latency(cpus[0], cpus[0]).expect("pinning to an allowed CPU");
        assert!(same > std::time::Duration::ZERO && same < std::time::Duration::from_millis(50));
        assert_eq!(allowed_cpus(), cpus, "the caller's affinity is restored");
    }

    #[test]
    fn open_file_limit_rises_to_the_hard_limit() {
        let raised = raise_open_file_limit().unwrap();
        assert_eq!(open_file_limit(), Some(raised));
    }
}
