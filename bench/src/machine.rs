//! Facts about the machine and this process: CPU, load, memory high-water mark,
//! open-file and thread budgets. Linux `/proc` and cgroup files; absent facts are `None`.

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
        }
    }
}

/// The 1-minute load average.
pub fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
}

/// A `kB` field of `/proc/self/status` (`"VmRSS"`, `"VmHWM"`), in KiB.
pub fn status_kib(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// User plus system CPU time of this process so far.
pub fn cpu_time() -> Option<std::time::Duration> {
    // SAFETY: `rusage` is plain data; all-zero is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Some(std::time::Duration::from_micros(
        micros(usage.ru_utime) + micros(usage.ru_stime),
    ))
}

/// Descriptors the widest row needs in one process: 5,000 shared-memory connections
/// with both sides in the process, ten descriptors each.
const WANTED_DESCRIPTORS: libc::rlim_t = 5_000 * 10 + 4_096;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (10,000 connections need about
/// 20,000 descriptors in one process; shared memory needs five per side) and returns
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

/// The soft `RLIMIT_NOFILE`.
pub fn open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit`.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur)
}

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

#[cfg(test)]
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
    fn open_file_limit_rises_to_the_hard_limit() {
        let raised = raise_open_file_limit().unwrap();
        assert_eq!(open_file_limit(), Some(raised));
    }
}
