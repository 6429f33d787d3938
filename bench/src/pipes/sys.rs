//! The Win32 calls the Windows harness makes itself: the pipe instances of std's server
//! (std can open a pipe but not create one), and the process facts `crate::machine`
//! reads on Unix from `/proc` and `libc` (CPU set, affinity, CPU time, Wine's version).

use std::ffi::CStr;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr;
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    ERROR_PIPE_CONNECTED, FILETIME, GetLastError, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{FILE_FLAG_FIRST_PIPE_INSTANCE, PIPE_ACCESS_DUPLEX};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_TYPE_BYTE,
    PIPE_UNLIMITED_INSTANCES, PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetCurrentThread, GetProcessAffinityMask, GetProcessTimes,
    SetThreadAffinityMask,
};

/// Each direction's pipe buffer, as ringlink's and tokio's servers have by default.
pub const PIPE_BUFFER: u32 = 64 * 1024;

/// `name` as NUL-terminated UTF-16.
pub fn wide(name: &str) -> Vec<u16> {
    name.encode_utf16().chain(Some(0)).collect()
}

/// Creates one instance of the pipe `name` (NUL-terminated UTF-16) as a std user following
/// the Win32 documentation would: duplex, byte mode, blocking (so `std::fs::File` can do
/// its I/O), default security. `first` claims the name (`FILE_FLAG_FIRST_PIPE_INSTANCE`).
pub fn create_instance(name: &[u16], first: bool) -> io::Result<OwnedHandle> {
    assert_eq!(name.last(), Some(&0), "the name is NUL-terminated");
    let open_mode = PIPE_ACCESS_DUPLEX
        | if first {
            FILE_FLAG_FIRST_PIPE_INSTANCE
        } else {
            0
        };
    // SAFETY: `name` is NUL-terminated UTF-16 that outlives the call; a null security
    // attributes pointer asks for the default security descriptor.
    let handle = unsafe {
        CreateNamedPipeW(
            name.as_ptr(),
            open_mode,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
            PIPE_UNLIMITED_INSTANCES,
            PIPE_BUFFER,
            PIPE_BUFFER,
            0,
            ptr::null(),
        )
    };
    if handle == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `handle` is a fresh pipe handle owned by no one else.
    Ok(unsafe { OwnedHandle::from_raw_handle(handle) })
}

/// Waits, blocking, until a client opens `instance` (at once when one already has).
pub fn connect(instance: &OwnedHandle) -> io::Result<()> {
    // SAFETY: `instance` is a live pipe handle opened without `FILE_FLAG_OVERLAPPED`, so
    // no `OVERLAPPED` is passed and the call blocks until a client comes.
    let ok = unsafe { ConnectNamedPipe(instance.as_raw_handle(), ptr::null_mut()) };
    // SAFETY: reads this thread's last-error value; no preconditions.
    if ok != 0 || unsafe { GetLastError() } == ERROR_PIPE_CONNECTED {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The CPUs this process may run on (`GetProcessAffinityMask`).
pub fn allowed_cpus() -> Vec<usize> {
    let (mut process, mut system) = (0usize, 0usize);
    // SAFETY: the current-process pseudo-handle is always valid; both pointers are
    // valid, writable `usize`s.
    if unsafe { GetProcessAffinityMask(GetCurrentProcess(), &mut process, &mut system) } == 0 {
        return Vec::new();
    }
    (0..usize::BITS as usize)
        .filter(|cpu| process & (1 << cpu) != 0)
        .collect()
}

/// Restricts the calling thread to `cpus` (`SetThreadAffinityMask`). Unlike on Linux,
/// threads it starts later do not inherit this.
pub fn set_affinity(cpus: &[usize]) -> io::Result<()> {
    let mask = cpus
        .iter()
        .filter(|&&c| c < usize::BITS as usize)
        .fold(0usize, |m, &c| m | (1 << c));
    // SAFETY: the current-thread pseudo-handle is always valid; any mask is accepted or
    // refused with an error.
    if unsafe { SetThreadAffinityMask(GetCurrentThread(), mask) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// User plus kernel CPU time of this process so far (`GetProcessTimes`).
pub fn cpu_time() -> Option<Duration> {
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: the current-process pseudo-handle is always valid; the four pointers are
    // valid, writable `FILETIME`s.
    let ok = unsafe {
        GetProcessTimes(
            GetCurrentProcess(),
            &mut created,
            &mut exited,
            &mut kernel,
            &mut user,
        )
    };
    if ok == 0 {
        return None;
    }
    // FILETIME counts 100-nanosecond intervals.
    let ticks = |t: FILETIME| (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    Some(Duration::from_nanos(
        (ticks(kernel) + ticks(user)).saturating_mul(100),
    ))
}

/// Wine's version when this process runs under Wine (its `ntdll` exports
/// `wine_get_version`), `None` on Windows proper.
pub fn wine_version() -> Option<String> {
    // SAFETY: the name is a NUL-terminated ASCII string; ntdll is loaded in every process.
    let ntdll = unsafe { GetModuleHandleA(c"ntdll.dll".as_ptr().cast()) };
    if ntdll.is_null() {
        return None;
    }
    // SAFETY: `ntdll` is a loaded module; the symbol name is NUL-terminated ASCII.
    let get = unsafe { GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()) }?;
    // SAFETY: Wine's `wine_get_version` takes no arguments and returns a pointer to a
    // static NUL-terminated string; the transmute gives the function that signature.
    let version = unsafe {
        let get: unsafe extern "C" fn() -> *const std::ffi::c_char = std::mem::transmute(get);
        get()
    };
    if version.is_null() {
        return None;
    }
    // SAFETY: `version` points to Wine's static NUL-terminated version string.
    Some(
        unsafe { CStr::from_ptr(version) }
            .to_string_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_facts_are_read() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        let before = cpu_time().expect("GetProcessTimes");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(cpu_time().unwrap() > before);
        set_affinity(&cpus).unwrap();
    }
}
