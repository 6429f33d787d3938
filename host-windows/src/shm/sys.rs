//! The Win32 calls of the shared-memory transport: the unnamed section and its view,
//! what a view and a handle really are, wake-up events, waits that include the peer's
//! process, handle duplication into the peer, and the clock of the wake-up stamps.

use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr;
use std::sync::OnceLock;
use std::time::Duration;

use windows_sys::Wdk::Foundation::{NtQueryObject, ObjectTypeInformation};
use windows_sys::Win32::Foundation::{
    DuplicateHandle, HANDLE, INVALID_HANDLE_VALUE, UNICODE_STRING, WAIT_FAILED, WAIT_OBJECT_0,
    WAIT_TIMEOUT,
};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::SYNCHRONIZE;
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FILE_MAP_READ, FILE_MAP_WRITE, MEM_COMMIT, MEM_MAPPED,
    MEMORY_BASIC_INFORMATION, MEMORY_MAPPED_VIEW_ADDRESS, MapViewOfFile, PAGE_READWRITE,
    SECTION_MAP_READ, SECTION_MAP_WRITE, UnmapViewOfFile, VirtualQuery,
};
use windows_sys::Win32::System::Performance::{QueryPerformanceCounter, QueryPerformanceFrequency};
use windows_sys::Win32::System::ProcessStatus::GetMappedFileNameW;
use windows_sys::Win32::System::Threading::{
    CreateEventW, EVENT_MODIFY_STATE, GetCurrentProcess, OpenProcess, PROCESS_DUP_HANDLE,
    PROCESS_SYNCHRONIZE, SetEvent, WaitForMultipleObjects,
};

use crate::sys::{SecurityDescriptor, millis};

/// Access the accepting side takes to the section: map it for reading and writing,
/// nothing else (no `SECTION_EXTEND_SIZE`, no `WRITE_DAC`).
pub(super) const SECTION_ACCESS: u32 = SECTION_MAP_READ | SECTION_MAP_WRITE;
/// Access the accepting side takes to an event: set it and wait on it, nothing else.
pub(super) const EVENT_ACCESS: u32 = EVENT_MODIFY_STATE | SYNCHRONIZE;

fn raw(handle: &impl AsRawHandle) -> HANDLE {
    handle.as_raw_handle() as HANDLE
}

/// Takes ownership of a handle a `Create*`/`Open*` call returned, or its error.
fn owned(handle: HANDLE) -> io::Result<OwnedHandle> {
    if handle.is_null() || handle == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `handle` was just returned to us by the system and is owned by nobody else.
    Ok(unsafe { OwnedHandle::from_raw_handle(handle as RawHandle) })
}

/// The owner-only security descriptor of every section (built once).
fn owner_only() -> io::Result<&'static SecurityDescriptor> {
    static SD: OnceLock<SecurityDescriptor> = OnceLock::new();
    if let Some(sd) = SD.get() {
        return Ok(sd);
    }
    let sid = crate::sys::own_sid()?;
    let sd = SecurityDescriptor::from_sddl(&format!("O:{sid}D:P(A;;GA;;;{sid})"))?;
    Ok(SD.get_or_init(|| sd))
}

/// A pagefile-backed section of `len` bytes with no name (nothing can open it by name:
/// only a handle duplicated from ours reaches it) and an owner-only access list.
pub(super) fn create_section(len: usize) -> io::Result<OwnedHandle> {
    let sd = owner_only()?;
    let attributes: SECURITY_ATTRIBUTES = sd.attributes();
    let len = len as u64;
    // SAFETY: INVALID_HANDLE_VALUE asks for the pagefile; `attributes` points at a live
    // descriptor (static); no name.
    let h = unsafe {
        CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            &attributes,
            PAGE_READWRITE,
            (len >> 32) as u32,
            len as u32,
            ptr::null(),
        )
    };
    owned(h)
}

/// A mapped view of a section, unmapped on drop.
pub(super) struct Mapping {
    pub(super) ptr: *mut u8,
    pub(super) len: usize,
}

// SAFETY: the view is plain memory; all concurrent access to it goes through the rings'
// atomics (indices), their one producer and consumer each, and volatile stamps.
unsafe impl Send for Mapping {}
// SAFETY: as for `Send`.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the whole section for reading and writing and finds how long the view is.
    /// A handle that is not a section with both map rights fails here.
    pub(super) fn map(section: &OwnedHandle) -> io::Result<Mapping> {
        // SAFETY: a new view of the whole section (size 0); the system picks the address.
        let view = unsafe { MapViewOfFile(raw(section), FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, 0) };
        if view.Value.is_null() {
            return Err(io::Error::last_os_error());
        }
        let mut map = Mapping {
            ptr: view.Value.cast(),
            len: 0,
        };
        let info = map.query()?;
        map.len = info.RegionSize;
        Ok(map)
    }

    /// What the system says about the view's first region.
    pub(super) fn query(&self) -> io::Result<MEMORY_BASIC_INFORMATION> {
        // SAFETY: MEMORY_BASIC_INFORMATION is plain data, filled in by the call.
        let mut info: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<MEMORY_BASIC_INFORMATION>();
        // SAFETY: `info` is valid for writes of `size` bytes; any address may be queried.
        let got = unsafe { VirtualQuery(self.ptr.cast_const().cast(), &mut info, size) };
        if got == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(info)
    }

    /// Checks the view is what the transport needs: mapped (a section), every page of
    /// the first `len` committed and read-write (a `SEC_RESERVE` section, whose pages
    /// fault on first touch, is refused), and backed by the pagefile, not by a file
    /// (whose pages could fail to read in, on a network share say).
    pub(super) fn check(&self, len: usize) -> Result<(), &'static str> {
        let info = self.query().map_err(|_| "the view cannot be queried")?;
        if info.Type != MEM_MAPPED {
            return Err("the handle is not a section");
        }
        if info.State != MEM_COMMIT || info.Protect != PAGE_READWRITE || info.RegionSize < len {
            return Err("the section's pages are not all committed and writable");
        }
        let mut name = [0u16; 260];
        // SAFETY: `name` is valid for `name.len()` UTF-16 units; the address is our view.
        let n = unsafe {
            GetMappedFileNameW(
                GetCurrentProcess(),
                self.ptr.cast_const().cast::<c_void>(),
                name.as_mut_ptr(),
                name.len() as u32,
            )
        };
        if n != 0 {
            return Err("the section is backed by a file, not by the pagefile");
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let view = MEMORY_MAPPED_VIEW_ADDRESS {
            Value: self.ptr.cast(),
        };
        // SAFETY: `ptr` is the base MapViewOfFile returned; no ring handle outlives the
        // mapping (they are dropped first, see `Shared`).
        unsafe { UnmapViewOfFile(view) };
    }
}

/// The type name of the object behind `handle` (`"Event"`, `"Section"`, ...), from the
/// kernel: the only way to tell what a handle taken from the peer stands for.
pub(super) fn object_type(handle: &OwnedHandle) -> io::Result<String> {
    // OBJECT_TYPE_INFORMATION begins with the type name; the name's buffer follows
    // inside the same output buffer. 1 KiB holds it with room to spare.
    let mut buf = [0u64; 128];
    let size = std::mem::size_of_val(&buf);
    let mut needed = 0u32;
    // SAFETY: `buf` is valid for writes of `size` bytes and 8-aligned; `handle` is live.
    let status = unsafe {
        NtQueryObject(
            raw(handle),
            ObjectTypeInformation,
            buf.as_mut_ptr().cast(),
            size as u32,
            &mut needed,
        )
    };
    if status < 0 {
        return Err(io::Error::other(format!(
            "NtQueryObject failed ({status:#x})"
        )));
    }
    // SAFETY: on success the buffer starts with an OBJECT_TYPE_INFORMATION, whose first
    // field is the type name.
    let name: UNICODE_STRING = unsafe { buf.as_ptr().cast::<UNICODE_STRING>().read() };
    let start = buf.as_ptr() as usize;
    let at = name.Buffer as usize;
    let units = usize::from(name.Length) / 2;
    if at < start || at + units * 2 > start + size || at % 2 != 0 {
        return Err(io::Error::other(
            "NtQueryObject returned a name outside its buffer",
        ));
    }
    // SAFETY: the name lies inside `buf` (checked above), which lives until the copy ends.
    let units = unsafe { std::slice::from_raw_parts(name.Buffer.cast_const(), units) };
    Ok(String::from_utf16_lossy(units))
}

/// An unnamed auto-reset event, not signalled: one half's wake-up.
pub(super) fn create_event() -> io::Result<OwnedHandle> {
    // SAFETY: no security attributes (unnamed: only a duplicated handle reaches it), auto
    // reset, not signalled, no name.
    owned(unsafe { CreateEventW(ptr::null(), 0, 0, ptr::null()) })
}

/// Signals `event`; never blocks. A failure (a handle that is no event) is ignored: the
/// handshake checked the type, and a wake-up that cannot be sent is a peer that will
/// time out or see our close.
pub(super) fn set_event(event: &OwnedHandle) {
    // SAFETY: `event` is a live handle borrowed for the call.
    unsafe { SetEvent(raw(event)) };
}

/// How a wait on a half's event and the peer's process ended.
pub(super) enum Waited {
    Event,
    PeerExited,
    TimedOut,
}

/// Waits for `event` or for `process` to exit, at most `timeout`.
pub(super) fn wait_event_or_exit(
    event: &OwnedHandle,
    process: &OwnedHandle,
    timeout: Option<Duration>,
) -> io::Result<Waited> {
    let handles = [raw(event), raw(process)];
    // SAFETY: both handles are live and waitable for the duration of the call.
    let r = unsafe { WaitForMultipleObjects(2, handles.as_ptr(), 0, millis(timeout)) };
    match r {
        WAIT_OBJECT_0 => Ok(Waited::Event),
        r if r == WAIT_OBJECT_0 + 1 => Ok(Waited::PeerExited),
        WAIT_TIMEOUT => Ok(Waited::TimedOut),
        WAIT_FAILED => Err(io::Error::last_os_error()),
        other => Err(io::Error::other(format!(
            "unexpected wait result {other:#x}"
        ))),
    }
}

/// Opens the peer process: to wait for its exit, and (accepting side, during the
/// handshake) to duplicate the offered handles out of it.
pub(super) fn open_process(pid: u32, duplicate: bool) -> io::Result<OwnedHandle> {
    let access = PROCESS_SYNCHRONIZE | if duplicate { PROCESS_DUP_HANDLE } else { 0 };
    // SAFETY: plain arguments; a null result is handled by `owned`.
    owned(unsafe { OpenProcess(access, 0, pid) })
}

/// Duplicates the handle `value` of `process` into this process with `access` only:
/// a new handle that this process alone owns, whatever `value` names there. A value
/// that is no handle of `process` fails; one that is some other object of it gives a
/// handle to that object (which the caller checks the type of).
pub(super) fn duplicate_from(
    process: &OwnedHandle,
    value: u64,
    access: u32,
) -> io::Result<OwnedHandle> {
    let source = usize::try_from(value).map_err(|_| io::Error::other("handle value too large"))?;
    let mut out: HANDLE = ptr::null_mut();
    // SAFETY: `process` is live with PROCESS_DUP_HANDLE; `source` is interpreted in its
    // handle table, never in ours; `out` receives a new handle in this process.
    let ok = unsafe {
        DuplicateHandle(
            raw(process),
            source as HANDLE,
            GetCurrentProcess(),
            &mut out,
            access,
            0,
            0,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    owned(out)
}

/// The value of a handle of this process, to tell the peer.
pub(super) fn handle_value(handle: &OwnedHandle) -> u64 {
    raw(handle) as usize as u64
}

/// Nanoseconds on the performance counter, which every process of the machine shares:
/// a stamp one side leaves with a wake-up is comparable with the other's clock.
pub(super) fn monotonic_ns() -> u64 {
    static FREQUENCY: OnceLock<u64> = OnceLock::new();
    let frequency = *FREQUENCY.get_or_init(|| {
        let mut f = 0i64;
        // SAFETY: `f` is a valid out pointer; the call cannot fail since Windows XP.
        unsafe { QueryPerformanceFrequency(&mut f) };
        (f as u64).max(1)
    });
    let mut count = 0i64;
    // SAFETY: `count` is a valid out pointer.
    unsafe { QueryPerformanceCounter(&mut count) };
    ((count as u64 as u128) * 1_000_000_000 / u128::from(frequency)) as u64
}

/// A wait registered with the system thread pool (`RegisterWaitForSingleObject`):
/// `callback(context)` runs once when the object is signalled. Dropping it
/// unregisters the wait and returns only after a callback that had started has
/// returned, so the context may be freed right after.
#[cfg(feature = "tokio")]
pub(super) struct RegisteredWait(HANDLE);

// SAFETY: the wait handle is a thread-pool object usable from any thread.
#[cfg(feature = "tokio")]
unsafe impl Send for RegisteredWait {}
// SAFETY: as for `Send`; `&RegisteredWait` allows nothing.
#[cfg(feature = "tokio")]
unsafe impl Sync for RegisteredWait {}

#[cfg(feature = "tokio")]
impl RegisteredWait {
    /// # Safety
    ///
    /// `object` must stay open, and `context` valid for `callback`, until the returned
    /// value is dropped.
    pub(super) unsafe fn new(
        object: &OwnedHandle,
        callback: unsafe extern "system" fn(*mut c_void, bool),
        context: *const c_void,
    ) -> io::Result<RegisteredWait> {
        use windows_sys::Win32::System::Threading::{
            INFINITE, RegisterWaitForSingleObject, WT_EXECUTEINWAITTHREAD, WT_EXECUTEONLYONCE,
        };
        let mut wait: HANDLE = ptr::null_mut();
        // SAFETY: `object` is live and `context` valid until the wait is unregistered
        // (caller); the callback only touches what `context` points to, briefly, in
        // the wait thread.
        let ok = unsafe {
            RegisterWaitForSingleObject(
                &mut wait,
                raw(object),
                Some(callback),
                context,
                INFINITE,
                WT_EXECUTEONLYONCE | WT_EXECUTEINWAITTHREAD,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RegisteredWait(wait))
    }
}

#[cfg(feature = "tokio")]
impl Drop for RegisteredWait {
    fn drop(&mut self) {
        use windows_sys::Win32::System::Threading::UnregisterWaitEx;
        // SAFETY: the wait came from RegisterWaitForSingleObject and is unregistered
        // once; INVALID_HANDLE_VALUE waits for a running callback to return (it only
        // wakes a task, so this takes microseconds at most).
        unsafe { UnregisterWaitEx(self.0, INVALID_HANDLE_VALUE) };
    }
}
