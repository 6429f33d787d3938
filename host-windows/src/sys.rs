//! The only module that talks to Win32: handles, events, overlapped I/O with timeouts
//! and cancellation, named pipes, the name guard mutex and security descriptors.
//!
//! Everything above this module is safe Rust; every `unsafe` block here names the
//! invariant it relies on.

use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr::{self, NonNull};
use std::sync::Mutex;
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    ERROR_IO_INCOMPLETE, ERROR_IO_PENDING, ERROR_OPERATION_ABORTED, GENERIC_READ, GENERIC_WRITE,
    GetLastError, HANDLE, INVALID_HANDLE_VALUE, LocalFree, WAIT_FAILED, WAIT_OBJECT_0,
    WAIT_TIMEOUT,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, GetSecurityInfo,
    SDDL_REVISION_1, SE_KERNEL_OBJECT,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
    SECURITY_ATTRIBUTES, TOKEN_INFORMATION_CLASS, TOKEN_QUERY, TokenPrimaryGroup, TokenUser,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, FindClose, FindFirstFileW,
    FindNextFileW, OPEN_EXISTING, PIPE_ACCESS_DUPLEX, ReadFile, SECURITY_IDENTIFICATION,
    SECURITY_SQOS_PRESENT, SYNCHRONIZE, WIN32_FIND_DATAW, WriteFile,
};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, DisconnectNamedPipe, GetNamedPipeClientProcessId,
    GetNamedPipeServerProcessId, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE,
    PIPE_UNLIMITED_INSTANCES, PIPE_WAIT, WaitNamedPipeW,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, CreateMutexW, GetCurrentProcess, INFINITE, OpenMutexW, OpenProcess,
    OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION, WaitForSingleObject,
};
use windows_sys::core::BOOL;

pub(crate) use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_BROKEN_PIPE, ERROR_FILE_NOT_FOUND,
    ERROR_NO_DATA, ERROR_PIPE_BUSY, ERROR_PIPE_CONNECTED, ERROR_PIPE_NOT_CONNECTED,
    ERROR_SEM_TIMEOUT,
};

/// The error of the last failed Win32 call on this thread.
fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// `Ok` for a nonzero `BOOL`, the thread's last error otherwise.
fn cvt(ok: BOOL) -> io::Result<()> {
    if ok != 0 { Ok(()) } else { Err(last_error()) }
}

/// Takes ownership of a handle a `Create*` call returned, or its error.
fn owned(handle: HANDLE) -> io::Result<OwnedHandle> {
    if handle.is_null() || handle == INVALID_HANDLE_VALUE {
        return Err(last_error());
    }
    // SAFETY: `handle` is a valid handle just returned to us by the system and owned by
    // nobody else; `OwnedHandle` closes it exactly once.
    Ok(unsafe { OwnedHandle::from_raw_handle(handle as RawHandle) })
}

fn raw(handle: &impl AsRawHandle) -> HANDLE {
    handle.as_raw_handle() as HANDLE
}

/// A NUL-terminated UTF-16 copy of `s` for the `W` functions.
pub(crate) fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

/// A timeout in milliseconds for the wait functions: `None` is `INFINITE`, a nonzero
/// duration rounds up to at least one millisecond, and long ones stop short of `INFINITE`.
pub(crate) fn millis(timeout: Option<Duration>) -> u32 {
    match timeout {
        None => INFINITE,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            u32::try_from(ms).unwrap_or(INFINITE - 1).min(INFINITE - 1)
        }
    }
}

/// Waits for `handle` to be signalled: `Ok(true)` when it is, `Ok(false)` on timeout.
fn wait(handle: HANDLE, timeout: Option<Duration>) -> io::Result<bool> {
    // SAFETY: `handle` is a live waitable handle owned by the caller for this call.
    match unsafe { WaitForSingleObject(handle, millis(timeout)) } {
        WAIT_OBJECT_0 => Ok(true),
        WAIT_TIMEOUT => Ok(false),
        WAIT_FAILED => Err(last_error()),
        other => Err(io::Error::other(format!(
            "unexpected wait result {other:#x}"
        ))),
    }
}

/// A manual-reset event for one overlapped operation at a time.
#[derive(Debug)]
pub(crate) struct Event(OwnedHandle);

impl Event {
    pub(crate) fn new() -> io::Result<Event> {
        // SAFETY: no security attributes and no name: plain arguments, checked result.
        let handle = unsafe { CreateEventW(ptr::null(), 1, 0, ptr::null()) };
        owned(handle).map(Event)
    }

    fn raw(&self) -> HANDLE {
        raw(&self.0)
    }
}

/// Events kept for reuse, so an I/O call normally does not create one. Concurrent
/// callers (one thread reading while another writes) each take their own.
#[derive(Debug, Default)]
pub(crate) struct EventPool(Mutex<Vec<Event>>);

/// Most events a pool keeps; more are closed when returned.
const POOL_MAX: usize = 4;

impl EventPool {
    fn take(&self) -> io::Result<Event> {
        let cached = self.0.lock().ok().and_then(|mut events| events.pop());
        match cached {
            Some(event) => Ok(event),
            None => Event::new(),
        }
    }

    fn give(&self, event: Event) {
        if let Ok(mut events) = self.0.lock() {
            if events.len() < POOL_MAX {
                events.push(event);
            }
        }
    }
}

/// How an overlapped operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completion {
    /// It completed, moving this many bytes.
    Done(u32),
    /// The timeout expired and the operation was cancelled after moving this many bytes
    /// (usually zero).
    TimedOut(u32),
}

/// Runs one overlapped operation on `handle` and waits at most `timeout` for it; on
/// timeout it is cancelled. Either way it has finished when this returns.
///
/// # Safety
///
/// `start` must start at most one overlapped operation on `handle` with the given
/// `OVERLAPPED` and return the start call's `BOOL`; any buffer it passes must stay
/// valid until this function returns (this function waits for the operation to
/// complete, so buffers borrowed by the caller qualify).
unsafe fn overlapped_io(
    handle: HANDLE,
    events: &EventPool,
    timeout: Option<Duration>,
    start: impl FnOnce(*mut OVERLAPPED) -> BOOL,
) -> io::Result<Completion> {
    let event = events.take()?;
    // SAFETY: OVERLAPPED is plain data; all-zero is its documented initial state.
    let mut overlapped: OVERLAPPED = unsafe { std::mem::zeroed() };
    overlapped.hEvent = event.raw();
    let ov: *mut OVERLAPPED = &mut overlapped;
    if start(ov) == 0 {
        // SAFETY: reads the calling thread's last-error value; no preconditions.
        let code = unsafe { GetLastError() };
        if code != ERROR_IO_PENDING {
            // The operation never started: nothing refers to `overlapped`.
            events.give(event);
            return Err(io::Error::from_raw_os_error(code as i32));
        }
    }
    // Started (maybe already complete). From here on, return only once it has finished.
    let mut timed_out = false;
    match wait(event.raw(), timeout) {
        Ok(true) => {}
        Ok(false) | Err(_) => {
            timed_out = true;
            // SAFETY: `ov` is the OVERLAPPED of the operation started above on `handle`.
            // Failure means it already completed, which the wait below observes.
            unsafe { CancelIoEx(handle, ov) };
        }
    }
    let mut moved = 0u32;
    // SAFETY: `ov` is the started operation's OVERLAPPED; `bwait = TRUE` blocks until it
    // has completed (normally or cancelled), after which the system no longer touches
    // `overlapped` or the caller's buffer.
    let ok = unsafe { GetOverlappedResult(handle, ov, &mut moved, 1) };
    let result = if ok != 0 {
        Ok(Completion::Done(moved))
    } else {
        let err = last_error();
        if timed_out && err.raw_os_error() == Some(ERROR_OPERATION_ABORTED as i32) {
            Ok(Completion::TimedOut(moved))
        } else {
            Err(err)
        }
    };
    events.give(event);
    result
}

/// Reads into `buf` with a timeout (`Some(ZERO)`: only what is there now).
pub(crate) fn read(
    handle: &OwnedHandle,
    events: &EventPool,
    buf: &mut [u8],
    timeout: Option<Duration>,
) -> io::Result<Completion> {
    let h = raw(handle);
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    let data = buf.as_mut_ptr();
    // SAFETY: one ReadFile into `buf` (`len` bytes at most); `buf` is borrowed for the
    // whole call and overlapped_io returns only after the read finished.
    unsafe {
        overlapped_io(h, events, timeout, |ov| {
            ReadFile(h, data, len, ptr::null_mut(), ov)
        })
    }
}

/// Writes from `buf` with a timeout (`Some(ZERO)`: only if it goes through at once).
/// A zero-length `buf` is not written (named pipes treat it inconsistently).
pub(crate) fn write(
    handle: &OwnedHandle,
    events: &EventPool,
    buf: &[u8],
    timeout: Option<Duration>,
) -> io::Result<Completion> {
    if buf.is_empty() {
        return Ok(Completion::Done(0));
    }
    let h = raw(handle);
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    let data = buf.as_ptr();
    // SAFETY: one WriteFile from `buf` (`len` bytes at most); `buf` is borrowed for the
    // whole call and overlapped_io returns only after the write finished.
    unsafe {
        overlapped_io(h, events, timeout, |ov| {
            WriteFile(h, data, len, ptr::null_mut(), ov)
        })
    }
}

/// Waits until the pipe has data or has been closed by the peer, for at most `timeout`.
/// A zero-byte read completes when data arrives without consuming it.
pub(crate) fn wait_readable(
    handle: &OwnedHandle,
    events: &EventPool,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let h = raw(handle);
    let mut nothing = [0u8; 0];
    let data = nothing.as_mut_ptr();
    // SAFETY: a zero-length ReadFile; the (empty) buffer outlives the call.
    let done = unsafe {
        overlapped_io(h, events, timeout, |ov| {
            ReadFile(h, data, 0, ptr::null_mut(), ov)
        })
    };
    match done {
        Ok(Completion::Done(_)) => Ok(true),
        Ok(Completion::TimedOut(_)) => Ok(false),
        // End of stream is readable (a read returns 0).
        Err(e) if is_closed(&e) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Whether `err` says the other end of the pipe is gone.
pub(crate) fn is_closed(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error().map(|c| c as u32),
        Some(ERROR_BROKEN_PIPE | ERROR_NO_DATA | ERROR_PIPE_NOT_CONNECTED)
    )
}

/// The process id of the client (`server == true`) or server at the other end.
pub(crate) fn peer_process_id(handle: &impl AsRawHandle, server: bool) -> io::Result<u32> {
    let mut pid = 0u32;
    // SAFETY: `handle` is a live pipe handle and `pid` a valid out pointer.
    cvt(unsafe {
        if server {
            GetNamedPipeClientProcessId(raw(handle), &mut pid)
        } else {
            GetNamedPipeServerProcessId(raw(handle), &mut pid)
        }
    })?;
    Ok(pid)
}

/// Disconnects a server instance from its client (discarding unread data).
fn disconnect_raw(handle: HANDLE) -> io::Result<()> {
    // SAFETY: callers pass a live server pipe handle they own.
    cvt(unsafe { DisconnectNamedPipe(handle) })
}

/// Security attributes for tokio's `ServerOptions`, pointing at `security`; valid while
/// `security` lives.
#[cfg(feature = "tokio")]
pub(crate) fn security_attributes(security: &SecurityDescriptor) -> SECURITY_ATTRIBUTES {
    security.attributes()
}

/// Creates one pipe instance: byte mode, overlapped, remote clients rejected, with
/// `security` applied. `first` adds `FILE_FLAG_FIRST_PIPE_INSTANCE`.
pub(crate) fn create_pipe(
    name: &[u16],
    first: bool,
    security: &SecurityDescriptor,
    in_buffer: u32,
    out_buffer: u32,
) -> io::Result<OwnedHandle> {
    let attributes = security.attributes();
    let open_mode = PIPE_ACCESS_DUPLEX
        | FILE_FLAG_OVERLAPPED
        | if first {
            FILE_FLAG_FIRST_PIPE_INSTANCE
        } else {
            0
        };
    let pipe_mode = PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS;
    debug_assert_eq!(name.last(), Some(&0));
    // SAFETY: `name` is NUL-terminated UTF-16; `attributes` points to a live security
    // descriptor owned by `security` for the duration of the call.
    let handle = unsafe {
        CreateNamedPipeW(
            name.as_ptr(),
            open_mode,
            pipe_mode,
            PIPE_UNLIMITED_INSTANCES,
            out_buffer,
            in_buffer,
            0,
            &attributes,
        )
    };
    owned(handle)
}

/// Opens the client end of a pipe: read/write, overlapped, and an identification-only
/// impersonation level so the server cannot act as this user.
pub(crate) fn open_pipe(name: &[u16]) -> io::Result<OwnedHandle> {
    debug_assert_eq!(name.last(), Some(&0));
    // SAFETY: `name` is NUL-terminated UTF-16; no security attributes or template.
    let handle = unsafe {
        CreateFileW(
            name.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            0,
            ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
            ptr::null_mut(),
        )
    };
    owned(handle)
}

/// Waits up to `timeout` for an instance of the pipe to become free.
pub(crate) fn wait_named_pipe(name: &[u16], timeout: Duration) -> io::Result<()> {
    debug_assert_eq!(name.last(), Some(&0));
    // 0 would mean "the server's default": always ask for at least one millisecond.
    let ms = millis(Some(timeout)).max(1);
    // SAFETY: `name` is NUL-terminated UTF-16.
    cvt(unsafe { WaitNamedPipeW(name.as_ptr(), ms) })
}

/// Creates the named mutex that guards a pipe name. Fails with `ERROR_ALREADY_EXISTS`
/// when another live listener holds it (its handle keeps the mutex alive), or
/// `ERROR_ACCESS_DENIED` when another user's listener does.
pub(crate) fn create_guard_mutex(
    name: &[u16],
    security: &SecurityDescriptor,
) -> io::Result<OwnedHandle> {
    let attributes = security.attributes();
    // SAFETY: `name` is NUL-terminated UTF-16 and `attributes` points to a live
    // descriptor owned by `security`.
    let handle = unsafe { CreateMutexW(&attributes, 0, name.as_ptr()) };
    // Read the last error before anything else can overwrite it.
    // SAFETY: no preconditions.
    let code = unsafe { GetLastError() };
    let handle = owned(handle)?;
    if code == ERROR_ALREADY_EXISTS {
        return Err(io::Error::from_raw_os_error(code as i32));
    }
    Ok(handle)
}

/// The string SID of the user this process runs as, looked up once.
pub(crate) fn own_sid() -> io::Result<&'static str> {
    static SID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(sid) = SID.get() {
        return Ok(sid);
    }
    let sid = current_user_sid()?;
    Ok(SID.get_or_init(|| sid))
}

/// The string SID (`S-1-5-21-…`) of the user this process runs as.
pub(crate) fn current_user_sid() -> io::Result<String> {
    // SAFETY: the pseudo-handle of this process is always valid; TokenUser fills a
    // TOKEN_USER whose first field is the SID pointer.
    unsafe { token_sid(GetCurrentProcess(), TokenUser) }
}

/// The string SID of the user the process `pid` runs as (from its primary token).
pub(crate) fn process_user_sid(pid: u32) -> io::Result<String> {
    // SAFETY: no pointers; a null result is handled by `owned`.
    let process = owned(unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) })?;
    // SAFETY: `process` is an open process handle with query rights, alive for the call;
    // TokenUser fills a TOKEN_USER whose first field is the SID pointer.
    unsafe { token_sid(raw(&process), TokenUser) }
}

/// The string SID of this process's primary group (the group new objects get).
pub(crate) fn primary_group_sid() -> io::Result<String> {
    // SAFETY: the pseudo-handle of this process is always valid; TokenPrimaryGroup fills a
    // TOKEN_PRIMARY_GROUP whose first field is the SID pointer.
    unsafe { token_sid(GetCurrentProcess(), TokenPrimaryGroup) }
}

/// Queries `class` of the token of `process` and formats the SID it starts with.
///
/// # Safety
///
/// `process` must be a valid process handle with query rights, and `class` an information
/// class whose structure begins with a `PSID` that points into the returned buffer
/// (`TokenUser`, `TokenPrimaryGroup`, `TokenOwner`).
unsafe fn token_sid(process: HANDLE, class: TOKEN_INFORMATION_CLASS) -> io::Result<String> {
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: `process` is valid by the caller's guarantee; `token` receives a new handle.
    cvt(unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) })?;
    let token = owned(token)?;
    // The structure plus the SID it points to; 256 bytes cover the largest SID (68 bytes).
    let mut buffer = [0u64; 32];
    let mut needed = 0u32;
    // SAFETY: `buffer` is 256 writable bytes, 8-aligned as the token structures require.
    cvt(unsafe {
        GetTokenInformation(
            raw(&token),
            class,
            buffer.as_mut_ptr().cast::<c_void>(),
            std::mem::size_of_val(&buffer) as u32,
            &mut needed,
        )
    })?;
    // SAFETY: the query succeeded and, by the caller's guarantee, `buffer` starts with a
    // SID pointer into `buffer`, which lives until the end of this function.
    let sid: PSID = unsafe { *buffer.as_ptr().cast::<PSID>() };
    let mut text: *mut u16 = ptr::null_mut();
    // SAFETY: `sid` is valid (see above); `text` receives a LocalAlloc'ed string.
    cvt(unsafe { ConvertSidToStringSidW(sid, &mut text) })?;
    // SAFETY: `text` is a NUL-terminated UTF-16 string allocated by the call above.
    let sid_string = unsafe { from_wide_nul(text) };
    // SAFETY: `text` came from LocalAlloc (ConvertSidToStringSidW) and is freed once.
    unsafe { LocalFree(text.cast()) };
    Ok(sid_string)
}

/// Copies a NUL-terminated UTF-16 string.
///
/// # Safety
///
/// `text` must point to a readable, NUL-terminated UTF-16 string.
unsafe fn from_wide_nul(text: *const u16) -> String {
    let mut len = 0;
    // SAFETY: the string is NUL-terminated, so every index up to the NUL is readable.
    while unsafe { *text.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` units before the NUL are readable (just scanned).
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, len) })
}

/// The string SID of the owner of the object behind `handle` (which needs
/// `READ_CONTROL`).
pub(crate) fn owner_sid(handle: &impl AsRawHandle) -> io::Result<String> {
    let mut owner: PSID = ptr::null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: `handle` is live; `owner` will point into `descriptor`, a LocalAlloc'ed
    // block freed below after the owner was formatted.
    let code = unsafe {
        GetSecurityInfo(
            raw(handle),
            SE_KERNEL_OBJECT,
            OWNER_SECURITY_INFORMATION,
            &mut owner,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut descriptor,
        )
    };
    if code != 0 {
        return Err(io::Error::from_raw_os_error(code as i32));
    }
    let mut text: *mut u16 = ptr::null_mut();
    let converted = if owner.is_null() {
        Err(io::Error::other("the object has no owner"))
    } else {
        // SAFETY: `owner` points into the live `descriptor`; `text` receives a
        // LocalAlloc'ed string.
        cvt(unsafe { ConvertSidToStringSidW(owner, &mut text) })
    };
    // SAFETY: `descriptor` came from LocalAlloc (GetSecurityInfo) and is freed once; the
    // owner SID inside it is not used after this.
    unsafe { LocalFree(descriptor) };
    converted?;
    // SAFETY: `text` is the NUL-terminated string allocated by the conversion.
    let sid = unsafe { from_wide_nul(text) };
    // SAFETY: `text` came from LocalAlloc and is freed once.
    unsafe { LocalFree(text.cast()) };
    Ok(sid)
}

/// The owner and access list of the object behind `handle`, as SDDL (`O:…D:…`).
#[cfg(test)]
pub(crate) fn security_sddl(handle: &impl AsRawHandle) -> io::Result<String> {
    use windows_sys::Win32::Security::Authorization::ConvertSecurityDescriptorToStringSecurityDescriptorW;
    use windows_sys::Win32::Security::DACL_SECURITY_INFORMATION;
    let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
    let what = OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION;
    // SAFETY: `handle` is live; only `descriptor` is requested (the other out pointers may
    // be null), which receives a LocalAlloc'ed descriptor freed below.
    let code = unsafe {
        GetSecurityInfo(
            raw(handle),
            SE_KERNEL_OBJECT,
            what,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut descriptor,
        )
    };
    if code != 0 {
        return Err(io::Error::from_raw_os_error(code as i32));
    }
    let mut text: *mut u16 = ptr::null_mut();
    // SAFETY: `descriptor` is valid (returned above); `text` receives a LocalAlloc'ed string.
    let converted = cvt(unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            descriptor,
            SDDL_REVISION_1,
            what,
            &mut text,
            ptr::null_mut(),
        )
    });
    // SAFETY: `descriptor` came from LocalAlloc (GetSecurityInfo) and is freed once.
    unsafe { LocalFree(descriptor) };
    converted?;
    // SAFETY: `text` is the NUL-terminated string allocated by the conversion.
    let sddl = unsafe { from_wide_nul(text) };
    // SAFETY: `text` came from LocalAlloc and is freed once.
    unsafe { LocalFree(text.cast()) };
    Ok(sddl)
}

/// Whether a mutex of this name exists and this user may open it (no handle is kept).
pub(crate) fn mutex_exists(name: &[u16]) -> bool {
    debug_assert_eq!(name.last(), Some(&0));
    // SAFETY: `name` is NUL-terminated UTF-16; the handle, if any, is closed at once.
    let handle = unsafe { OpenMutexW(SYNCHRONIZE, 0, name.as_ptr()) };
    owned(handle).is_ok()
}

/// The names (without the `\\.\pipe\` prefix) of every pipe on this machine.
pub(crate) fn list_pipes() -> io::Result<Vec<String>> {
    let pattern = wide(r"\\.\pipe\*");
    // SAFETY: WIN32_FIND_DATAW is plain data; all-zero is a valid value to be filled in.
    let mut data: WIN32_FIND_DATAW = unsafe { std::mem::zeroed() };
    // SAFETY: `pattern` is NUL-terminated; `data` is a valid out structure.
    let find = unsafe { FindFirstFileW(pattern.as_ptr(), &mut data) };
    if find == INVALID_HANDLE_VALUE {
        let err = last_error();
        if err.raw_os_error() == Some(ERROR_FILE_NOT_FOUND as i32) {
            return Ok(Vec::new());
        }
        return Err(err);
    }
    let mut names = Vec::new();
    loop {
        // SAFETY: `cFileName` is a NUL-terminated array filled in by the find call.
        names.push(unsafe { from_wide_nul(data.cFileName.as_ptr()) });
        // SAFETY: `find` is the live search handle; `data` a valid out structure.
        if unsafe { FindNextFileW(find, &mut data) } == 0 {
            break;
        }
    }
    // SAFETY: `find` came from FindFirstFileW and is closed once.
    unsafe { FindClose(find) };
    Ok(names)
}

/// How a pipe name answers, without connecting: `Ok(true)` when it exists (an instance
/// is free or all are busy), `Ok(false)` when it does not.
pub(crate) fn pipe_exists(name: &[u16]) -> io::Result<bool> {
    match wait_named_pipe(name, Duration::from_millis(1)) {
        Ok(()) => Ok(true),
        Err(e) => match e.raw_os_error().map(|c| c as u32) {
            Some(ERROR_SEM_TIMEOUT | ERROR_PIPE_BUSY) => Ok(true),
            Some(ERROR_FILE_NOT_FOUND) => Ok(false),
            _ => Err(e),
        },
    }
}

/// A self-relative security descriptor made from SDDL, freed on drop.
#[derive(Debug)]
pub(crate) struct SecurityDescriptor(NonNull<c_void>);

// SAFETY: the descriptor is immutable memory owned by this value; Win32 only reads it.
unsafe impl Send for SecurityDescriptor {}
// SAFETY: as above: shared references only ever read it.
unsafe impl Sync for SecurityDescriptor {}

impl SecurityDescriptor {
    pub(crate) fn from_sddl(sddl: &str) -> io::Result<SecurityDescriptor> {
        let text = wide(sddl);
        let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: `text` is NUL-terminated UTF-16; `descriptor` receives a LocalAlloc'ed
        // descriptor we own from now on.
        cvt(unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                ptr::null_mut(),
            )
        })?;
        NonNull::new(descriptor)
            .map(SecurityDescriptor)
            .ok_or_else(|| io::Error::other("the system returned no security descriptor"))
    }

    /// Non-inheritable security attributes pointing at this descriptor; valid while
    /// `self` lives.
    pub(crate) fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.0.as_ptr(),
            bInheritHandle: 0,
        }
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated with LocalAlloc by ConvertStringSecurityDescriptor…W, freed once.
        unsafe { LocalFree(self.0.as_ptr()) };
    }
}

/// A server pipe instance waiting for a client, with its `ConnectNamedPipe` possibly
/// in flight. The `OVERLAPPED` lives on the heap at a fixed address until the
/// operation has finished, so a wait can time out and be resumed by a later call.
#[derive(Debug)]
pub(crate) struct PendingInstance {
    /// `None` only after `into_handle` moved it out.
    handle: Option<OwnedHandle>,
    event: Event,
    /// Heap `OVERLAPPED` of the connect in flight; freed in `Drop` after it finished.
    overlapped: NonNull<OVERLAPPED>,
    connecting: bool,
}

// SAFETY: the raw pointer is owned by this value (a heap allocation only it frees), and
// the handles may be used from any thread.
unsafe impl Send for PendingInstance {}

/// What [`PendingInstance::poll_connect`] saw.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ConnectState {
    /// A client is connected to this instance.
    Connected,
    /// No client yet (the wait timed out).
    Waiting,
}

impl PendingInstance {
    pub(crate) fn new(handle: OwnedHandle) -> io::Result<PendingInstance> {
        let event = Event::new()?;
        // SAFETY: all-zero is OVERLAPPED's documented initial state.
        let mut overlapped: Box<OVERLAPPED> = Box::new(unsafe { std::mem::zeroed() });
        overlapped.hEvent = event.raw();
        Ok(PendingInstance {
            handle: Some(handle),
            event,
            overlapped: NonNull::from(Box::leak(overlapped)),
            connecting: false,
        })
    }

    /// Waits up to `timeout` for a client. A client that came and went before being
    /// accepted is disconnected and the instance listens again.
    pub(crate) fn poll_connect(&mut self, timeout: Option<Duration>) -> io::Result<ConnectState> {
        let h = self.raw_handle();
        loop {
            if !self.connecting {
                // SAFETY: `overlapped` is this instance's heap OVERLAPPED, not in use by
                // any other operation (`connecting` is false).
                let ok = unsafe { ConnectNamedPipe(h, self.overlapped.as_ptr()) };
                if ok == 0 {
                    // SAFETY: no preconditions.
                    match unsafe { GetLastError() } {
                        ERROR_IO_PENDING => self.connecting = true,
                        ERROR_PIPE_CONNECTED => return Ok(ConnectState::Connected),
                        ERROR_NO_DATA => {
                            // The client connected and closed already.
                            disconnect_raw(h)?;
                            continue;
                        }
                        code => return Err(io::Error::from_raw_os_error(code as i32)),
                    }
                } else {
                    return Ok(ConnectState::Connected);
                }
            }
            if !wait(self.event.raw(), timeout)? {
                return Ok(ConnectState::Waiting);
            }
            let mut moved = 0u32;
            // SAFETY: the event is signalled, so the connect started above has finished
            // and the system is done with `overlapped`.
            let ok = unsafe { GetOverlappedResult(h, self.overlapped.as_ptr(), &mut moved, 0) };
            self.connecting = false;
            if ok != 0 {
                return Ok(ConnectState::Connected);
            }
            let err = last_error();
            match err.raw_os_error().map(|c| c as u32) {
                Some(ERROR_NO_DATA) => disconnect_raw(h)?,
                Some(ERROR_IO_INCOMPLETE) => self.connecting = true,
                _ => return Err(err),
            }
        }
    }

    /// The connected instance's handle, once [`poll_connect`](Self::poll_connect) said so.
    pub(crate) fn into_handle(mut self) -> OwnedHandle {
        debug_assert!(!self.connecting);
        match self.handle.take() {
            Some(handle) => handle,
            None => unreachable!("only into_handle takes the handle, and it consumes self"),
        }
    }

    fn raw_handle(&self) -> HANDLE {
        self.handle.as_ref().map_or(ptr::null_mut(), raw)
    }
}

impl Drop for PendingInstance {
    fn drop(&mut self) {
        let h = self.raw_handle();
        if self.connecting && !h.is_null() {
            let mut moved = 0u32;
            // SAFETY: the connect in flight uses `overlapped`; cancel it and wait until
            // it has finished before the memory is freed below.
            unsafe {
                CancelIoEx(h, self.overlapped.as_ptr());
                GetOverlappedResult(h, self.overlapped.as_ptr(), &mut moved, 1);
            }
        }
        // SAFETY: `overlapped` came from Box::leak in `new` and no operation uses it any
        // more (none in flight, or the one in flight has finished above).
        drop(unsafe { Box::from_raw(self.overlapped.as_ptr()) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_rounds_up_and_never_means_infinite_by_accident() {
        assert_eq!(millis(None), INFINITE);
        assert_eq!(millis(Some(Duration::ZERO)), 0);
        assert_eq!(millis(Some(Duration::from_nanos(1))), 1);
        assert_eq!(millis(Some(Duration::from_micros(1500))), 2);
        assert_eq!(millis(Some(Duration::from_secs(u64::MAX))), INFINITE - 1);
    }

    #[test]
    fn the_current_user_has_a_sid() {
        let sid = current_user_sid().unwrap();
        assert!(sid.starts_with("S-1-"), "{sid}");
    }

    #[test]
    fn a_guard_mutex_exists_once() {
        let sid = current_user_sid().unwrap();
        let sd = SecurityDescriptor::from_sddl(&format!("D:P(A;;GA;;;{sid})")).unwrap();
        let name = wide(&format!("Local\\ringlink-sys-test-{}", std::process::id()));
        let first = create_guard_mutex(&name, &sd).unwrap();
        let err = create_guard_mutex(&name, &sd).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(ERROR_ALREADY_EXISTS as i32));
        drop(first);
        create_guard_mutex(&name, &sd).unwrap();
    }
}
